"""The README's pictures: each page shows what Discord would show of the bot's real cards, and Chromium turns a
page into a PNG (docs/pictures/)."""

from __future__ import annotations

import re
import struct
from html.parser import HTMLParser
from pathlib import Path

import pytest

from docs.pictures import make
from docs.pictures.layout import TEMPLATE, Message, Renderer, field_rows, galleries
from docs.pictures.markdown import Names, blocks, inline
from docs.pictures.scenes import NAMES, Samples, Scene, finished, scenes

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
VOID = {"img", "br", "meta"}
BLOCKS = {"div", "h3", "button", "blockquote", "article"}


class Text(HTMLParser):
    """The text a reader sees, and separately the text behind spoilers (hidden until clicked)."""

    def __init__(self) -> None:
        super().__init__()
        self.shown: list[str] = []
        self.spoiled: list[str] = []
        self._skip = 0
        self._spoilers: list[int] = []  # depth of each open spoiler span
        self._depth = 0

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag in VOID:
            return
        if tag in BLOCKS:
            self.shown.append(" ")
        self._depth += 1
        if tag in ("style", "title"):
            self._skip += 1
        if tag == "span" and ("class", "spoiler") in attrs:
            self._spoilers.append(self._depth)

    def handle_endtag(self, tag: str) -> None:
        if tag in VOID:
            return
        if tag in BLOCKS:
            self.shown.append(" ")
        if tag in ("style", "title"):
            self._skip -= 1
        if self._spoilers and self._spoilers[-1] == self._depth:
            self._spoilers.pop()
        self._depth -= 1

    def handle_data(self, data: str) -> None:
        if not self._skip:
            (self.spoiled if self._spoilers else self.shown).append(data)


def text_of(page: str) -> Text:
    parser = Text()
    parser.feed(page.replace("<br>", "\n"))
    return parser


def visible(page: str) -> str:
    return " ".join("".join(text_of(page).shown).split())


@pytest.fixture(scope="module")
def pages(tmp_path_factory: pytest.TempPathFactory) -> dict[str, tuple[Scene, str]]:
    folder = tmp_path_factory.mktemp("pages")
    return {scene.name: (scene, page.read_text(encoding="utf-8")) for scene, page in make.write_pages(folder)}


def test_every_card_shows_its_title_fields_footer_and_buttons(pages: dict[str, tuple[Scene, str]]) -> None:
    assert {"progress", "result-gallery", "failure", "details", "jobs", "settings", "usage", "modlog"} <= set(pages)
    for name, (scene, page) in pages.items():
        seen = visible(page)
        for embed, _ in galleries(scene.message.embeds):
            expected = [embed.get("title"), (embed.get("footer") or {}).get("text")]
            expected += [f["name"] for f in embed.get("fields", [])]
            # values without markup read as they are written; the others are checked below
            expected += [
                f["value"].replace("`", "") for f in embed.get("fields", []) if not re.search(r"[<|\[*]", f["value"])
            ]
            for text in filter(None, expected):
                assert " ".join(text.split()) in seen, (name, text)
        for row in scene.message.components:
            for button in row["components"]:
                assert button["label"] in seen, (name, button["label"])
                if "emoji" in button:
                    assert button["emoji"]["name"] in seen


def test_mentions_timestamps_and_links_read_as_discord_writes_them(pages: dict[str, tuple[Scene, str]]) -> None:
    progress = visible(pages["progress"][1])
    assert "Imagine for @Alice" in progress
    assert "9s (started 9 seconds ago)" in progress
    assert "Usually ready in about 14s" in progress
    assert "asked June 14, 2025 6:29 PM, finished after 18s" in visible(pages["details"][1])
    settings = visible(pages["settings"][1])
    assert "#art, #showcase" in settings
    assert "@Artists" in settings
    assert "Alice used /imagine" in visible(pages["result-gallery"][1])
    jobs = pages["jobs"][1]
    assert '<a class="link" href="https://discord.com/channels/' in jobs
    assert "#131 ⏳ queued · flux-dev · 4s ago · reply" in visible(jobs)


def test_a_spoiler_is_hidden(pages: dict[str, tuple[Scene, str]]) -> None:
    modlog = text_of(pages["modlog"][1])
    assert "a gory battle scene, lots of blood" in "".join(modlog.spoiled)
    assert "gory" not in " ".join(modlog.shown)
    # the page's CSS keeps a spoiler's text (and its links) out of sight
    css = TEMPLATE.read_text(encoding="utf-8")
    assert re.search(r"\.spoiler \{[^}]*color: transparent", css)
    assert re.search(r"\.spoiler \* \{[^}]*visibility: hidden", css)
    # a spoiler result: the links are behind spoiler marks, the uploads are blurred and not shown in the embed
    _, page = pages["result-spoiler"]
    assert "".join(text_of(page).spoiled) == "1 · 2 · 3 · 4"
    assert page.count('class="tile hidden"') == 4
    assert page.count("SPOILER</span>") == 4
    assert 'class="embed-media"' not in page


def test_a_result_is_one_embed_with_a_gallery_of_four_images(pages: dict[str, tuple[Scene, str]]) -> None:
    scene, page = pages["result-gallery"]
    assert len(scene.message.embeds) == 4  # what the bot sends: four embeds sharing one URL
    assert page.count('<article class="embed"') == 1  # what Discord shows: one embed ...
    gallery = re.search(r'<div class="embed-media"><div class="gallery n4">(.*?)</div></div>', page, re.S)
    assert gallery is not None  # ... with the four images in its grid
    sources = re.findall(r'<img src="([^"]+)"', gallery.group(1))
    assert len(sources) == 4
    assert [Path(s.removeprefix("file://")).name for s in sources] == [f"painting-{n}.png" for n in range(1, 5)]
    assert re.search(r'class="button primary">.*Re-roll', page)
    assert 'class="button danger">' in page
    assert "Only you can see this" not in page


def test_only_ephemeral_replies_say_only_you_can_see_them(pages: dict[str, tuple[Scene, str]]) -> None:
    ephemeral = {name for name, (_, page) in pages.items() if "Only you can see this" in page}
    assert ephemeral == {"details", "jobs", "settings", "usage"}


def test_inline_fields_sit_in_rows_of_three() -> None:
    embed = scenes(Samples(Path("unused")))[2].message.embeds[0]
    rows = field_rows(embed["fields"])
    assert [[f["name"] for f in row] for row in rows] == [
        ["Model", "Size", "Images"],
        ["Seeds", "Time", "Task"],
        ["Originals"],
    ]
    html = Renderer(NAMES, {}).embed(embed, [], {})
    assert html.count("grid-column:1 / 5") == 2
    assert html.count("grid-column:1 / 13") == 1
    assert f"border-left-color:#{embed['color']:06x}" in html


def test_discord_markdown_basics() -> None:
    names = Names(now=1_000_000.0, users={42: "Alice"}, channels={7: "art"}, roles={9: "Artists"})
    assert inline("**bold** and `co*de*` and *it*", names) == (
        '<strong>bold</strong> and <code class="inline">co*de*</code> and <em>it</em>'
    )
    assert inline("[1](https://x.test/a.png) <@42> <#7> <@&9>", names) == (
        '<a class="link" href="https://x.test/a.png">1</a> <span class="mention">@Alice</span> '
        '<span class="mention">#art</span> <span class="mention">@Artists</span>'
    )
    assert inline("||secret <b>||", names) == "<span class=spoiler>secret &lt;b&gt;</span>"
    assert inline(r"not \*\*bold\*\*", names) == "not **bold**"
    assert inline("<t:999880:R>, <t:1003600:R>, <t:0:f>", names) == (
        '<span class="timestamp">2 minutes ago</span>, <span class="timestamp">in 1 hour</span>, '
        '<span class="timestamp">January 1, 1970 12:00 AM</span>'
    )
    assert blocks("**Imagine** for <@42>\n> a cat\n> on a mat", names) == (
        '<div class="lines"><strong>Imagine</strong> for <span class="mention">@Alice</span></div>'
        '<div class="quote"><div class="bar"></div><blockquote>a cat<br>on a mat</blockquote></div>'
    )


def test_an_image_with_no_sample_is_refused_not_fetched(tmp_path: Path) -> None:
    samples = Samples(tmp_path)
    result = finished(samples)
    embed = {"title": "x", "image": {"url": "https://elsewhere.example/cat.png"}}
    with pytest.raises(ValueError, match=re.escape("no sample image for https://elsewhere.example/cat.png")):
        Renderer(NAMES, samples.images()).message(Message(samples.bot, [embed]))
    assert result.images[0].url in samples.images()


def test_an_unknown_picture_name_lists_the_known_ones(tmp_path: Path) -> None:
    with pytest.raises(make.UnknownPicture, match=re.escape("No picture called nope. Pick from: queued, progress")):
        make.write_pages(tmp_path, ["nope"])
    assert not (tmp_path / "samples").exists()  # nothing drawn for nothing


def test_chromium_screenshots_a_card(tmp_path: Path) -> None:
    pages = make.write_pages(tmp_path / "pages", ["modlog"])
    [picture] = make.take(pages, tmp_path / "out")
    data = picture.read_bytes()
    assert picture.name == "modlog.png"
    assert data.startswith(PNG_SIGNATURE)
    width, height = struct.unpack(">II", data[16:24])
    # the card at twice the CSS pixels: about 380 by 240 CSS pixels for this one
    assert 500 <= width <= 1520
    assert 300 <= height <= 1000
    assert len(data) > 10_000  # a blank picture of that size compresses to a few kB
