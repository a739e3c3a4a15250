"""The documentation: every relative link and picture resolves, and the README names every setting and command."""

from __future__ import annotations

import re
from pathlib import Path
from urllib.parse import unquote

import pytest

from tests.botprocess import ROOT

DOCUMENTS = sorted([ROOT / "README.md", ROOT / "CONTRIBUTING.md", *ROOT.glob("docs/**/*.md")])
FENCE = re.compile(r"^```.*?^```", re.M | re.S)
CODE = re.compile(r"`[^`\n]+`")
MARKDOWN_LINK = re.compile(r"!?\[[^\]]*\]\(\s*<?([^)\s>]+)>?(?:\s+\"[^\"]*\")?\s*\)")
HTML_LINK = re.compile(r"<(?:img|a)\b[^>]*?\b(?:src|href)=\"([^\"]+)\"", re.I)
EXTERNAL = re.compile(r"^[a-z][a-z0-9+.-]*:", re.I)  # https:, mailto:, ...


def prose(text: str) -> str:
    """The text without code blocks and code spans: a link written as code is an example, not a link."""
    return CODE.sub("", FENCE.sub("", text))


def targets(document: Path) -> list[str]:
    """Every link and image target the document has, in order."""
    text = prose(document.read_text())
    return [*MARKDOWN_LINK.findall(text), *HTML_LINK.findall(text)]


def anchors(document: Path) -> set[str]:
    """The anchors GitHub gives the document's headings: lower case, punctuation dropped, spaces as hyphens."""
    found: set[str] = set()
    for heading in re.findall(r"^#{1,6} +(.+?) *#*$", FENCE.sub("", document.read_text()), re.M):
        text = re.sub(r"\[([^\]]*)\]\([^)]*\)", r"\1", heading).replace("`", "")
        slug = re.sub(r"[^\w\- ]", "", text.lower()).replace(" ", "-")
        unique, n = slug, 0
        while unique in found:
            n += 1
            unique = f"{slug}-{n}"
        found.add(unique)
    return found


@pytest.mark.parametrize("document", DOCUMENTS, ids=lambda path: str(path.relative_to(ROOT)))
def test_every_relative_link_and_picture_resolves_to_a_file_in_the_repository(document: Path) -> None:
    broken = []
    for target in targets(document):
        if EXTERNAL.match(target):
            continue
        path, _, anchor = unquote(target).partition("#")
        file = (document.parent / path).resolve() if path else document
        if not file.is_relative_to(ROOT) or not file.exists():
            broken.append(f"{target}: no such file")
        elif anchor and file.suffix == ".md" and anchor not in anchors(file):
            broken.append(f"{target}: {file.relative_to(ROOT)} has no heading with the anchor #{anchor}")
    assert broken == [], f"{document.relative_to(ROOT)} links to what is not there"


def test_the_link_check_sees_links_pictures_and_anchors() -> None:
    """The check above can fail: it finds each kind of link, and no link written as code."""
    readme = ROOT / "README.md"
    found = targets(readme)
    assert any(target.endswith(".png") for target in found), "the README shows pictures"
    assert any("#" in target for target in found), "the README links to sections"
    assert "docs/architecture.md" in found
    assert "quick-start" in anchors(readme)
    assert "several-processes-postgresql" in anchors(readme)
    assert prose("see `[x](missing.md)` and\n```\n[y](gone.md)\n```\n") == "see  and\n\n"


def test_every_picture_in_docs_pictures_is_shown_in_the_readme() -> None:
    shown = {Path(target).name for target in targets(ROOT / "README.md") if target.endswith(".png")}
    made = {path.name for path in (ROOT / "docs" / "pictures").glob("*.png")}
    assert made - shown == set(), "each picture the script makes has a place in the README"


def test_the_readme_settings_table_names_every_setting_the_bot_reads() -> None:
    read = set(re.findall(r'"([A-Z][A-Z0-9_]+)"', (ROOT / "fluxbot" / "config.py").read_text()))
    settings = read - {"DEBUG", "INFO", "WARNING", "ERROR"}  # log level values, not settings
    readme = ROOT / "README.md"
    table = readme.read_text().split("\n## Settings reference\n")[1].split("\n## ")[0]
    named = set(re.findall(r"^\| `([A-Z][A-Z0-9_]+)`", table, re.M))
    named |= set(re.findall(r"^\| `[A-Z][A-Z0-9_]+` / `([A-Z][A-Z0-9_]+)`", table, re.M))
    assert settings - named == set(), "every setting has a row in the README's settings table"


def test_the_readme_lists_every_command_the_cogs_define() -> None:
    readme = " ".join((ROOT / "README.md").read_text().split())
    cogs = "\n".join(path.read_text() for path in sorted((ROOT / "cogs").glob("*.py")))
    groups = dict(re.findall(r"^\s*(\w+) = app_commands\.Group\(\s*name=\"([a-z]+)\"", cogs, re.M))
    commands = [f"/{name}" for name in re.findall(r"@app_commands\.command\(name=\"([a-z]+)\"", cogs)]
    commands += [f"/fluxadmin {name}" for name in re.findall(r"@admin\.command\(name=\"([a-z]+)\"", cogs)]
    for group, name in re.findall(r"@(\w+)\.command\(name=\"([a-z]+)\"", cogs):
        if group in groups and group != "admin":
            commands.append(f"/fluxadmin {groups[group]} {name}")
    assert len(commands) >= 20, "the search finds the commands"
    missing = [command for command in commands if f"`{command}" not in readme]
    assert missing == [], "the README's command tables name every command"
