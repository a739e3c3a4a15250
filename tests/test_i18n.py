"""The message catalogs: complete for every locale, in line with the code, and what the commands are synced with."""

from __future__ import annotations

import datetime as dt
import subprocess
import sys
import tomllib
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import discord
import pytest
import re2  # type: ignore[import-untyped]
from babel.messages.catalog import Catalog as PoCatalog
from babel.messages.plurals import get_plural
from babel.messages.pofile import read_po
from discord import app_commands

from fluxbot import i18n
from fluxbot.bot import commands_digest
from fluxbot.command_names import provider_commands
from fluxbot.limits import GuildSettings, Limits
from fluxbot.settings_cards import settings_card
from tests.botprocess import ROOT

TEMPLATE = i18n.LOCALES_DIR / "fluxbot.pot"
#: Discord's rule for the name of a slash command, a subcommand or an option (its docs: "Application Commands").
NAME = re2.compile(r"^[-_\p{L}\p{N}\p{Devanagari}\p{Thai}]{1,32}$")
NEEDS_MANAGE_SERVER = "Only members with the **Manage Server** permission can change fluxbot's settings here."
CANCELLED = ("Cancelled {n} waiting job of {member}.", "Cancelled {n} waiting jobs of {member}.")


def read(path: Path, locale: str | None = None) -> PoCatalog:
    with path.open("rb") as file:
        return read_po(file, locale=locale)


def entries(catalog: PoCatalog) -> dict[tuple[str | None, Any], Any]:
    """A catalog's messages (not its header) by (context, id), with what a template says of each."""
    return {
        (m.context, m.id): (sorted(m.auto_comments), sorted(m.locations), sorted(m.flags - {"fuzzy"}))
        for m in catalog
        if m.id
    }


def po_file(folder: str) -> Path:
    return i18n.LOCALES_DIR / folder / "LC_MESSAGES" / f"{i18n.DOMAIN}.po"


def forms(message: Any) -> list[str]:
    return list(message) if isinstance(message, tuple | list) else [message]


# -- the catalogs are complete and in line with the code -------------------------------------------------------


def test_the_committed_template_is_what_extraction_finds_in_the_code_and_the_command_tree(tmp_path: Path) -> None:
    fresh = tmp_path / "fluxbot.pot"
    # As CONTRIBUTING says: pybabel extract, configured in pyproject.toml (`-m` puts the checkout on sys.path).
    done = subprocess.run(
        [sys.executable, "-m", "babel.messages.frontend", "extract", "-o", str(fresh)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr
    assert "Traceback" not in done.stderr
    assert entries(read(fresh)) == entries(read(TEMPLATE)), (
        "fluxbot/locales/fluxbot.pot is stale: run `PYTHONPATH=. .venv/bin/pybabel extract` and "
        "`.venv/bin/pybabel update`, then translate what is new (CONTRIBUTING.md, Translations)"
    )
    assert len(entries(read(TEMPLATE))) > 150, "the command texts and the messages are all extracted"


@pytest.mark.parametrize(("locale", "folder"), list(i18n.CATALOGS.items()))
def test_every_catalog_translates_every_message_of_the_template_and_nothing_else(locale: str, folder: str) -> None:
    template = {key for key in entries(read(TEMPLATE))}
    catalog = read(po_file(folder), folder)
    problems = []
    for message in catalog:
        if not message.id:
            continue
        translated = forms(message.string)
        if message.fuzzy:
            problems.append(f"fuzzy (check it, then drop the flag): {message.id!r}")
        if not all(translated):
            problems.append(f"not translated: {message.id!r}")
        if isinstance(message.id, tuple) and len(translated) != catalog.num_plurals:
            problems.append(f"{len(translated)} plural forms, {locale} has {catalog.num_plurals}: {message.id!r}")
    have = {(m.context, m.id) for m in catalog if m.id}
    problems += [f"missing: {key[1]!r} ({key[0]})" for key in sorted(template - have, key=str)]
    problems += [f"not in the template (run pybabel update): {key[1]!r}" for key in sorted(have - template, key=str)]
    problems += [f"obsolete (run pybabel update): {key!r}" for key in catalog.obsolete]
    assert problems == [], f"{folder}/LC_MESSAGES/fluxbot.po:\n" + "\n".join(problems)


@pytest.mark.parametrize("folder", list(i18n.CATALOGS.values()))
def test_a_translation_keeps_exactly_the_placeholders_of_the_english_text(folder: str) -> None:
    wrong = []
    for message in read(po_file(folder), folder):
        if not message.id:
            continue
        english = set().union(*(i18n.placeholders(text) for text in forms(message.id)))
        for text in forms(message.string):
            have = i18n.placeholders(text)
            # A plural form may leave out the number ("一件", "one job"), never anything else.
            if not have <= english or not english - {"n"} <= have:
                wrong.append(f"{text!r} has {sorted(have)}, the English text {sorted(english)}")
    assert wrong == []


@pytest.mark.parametrize("folder", list(i18n.CATALOGS.values()))
def test_each_catalog_has_its_languages_plural_rule(folder: str) -> None:
    catalog = read(po_file(folder), folder)
    rule = get_plural(folder)
    assert (catalog.num_plurals, catalog.plural_expr) == (rule.num_plurals, rule.plural_expr)


def test_the_wheel_carries_every_catalog() -> None:
    globs = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]["package-data"]["fluxbot"]
    carried = {path for glob in globs for path in (ROOT / "fluxbot").glob(glob)}
    assert carried == {TEMPLATE, *(po_file(folder) for folder in i18n.CATALOGS.values())}


# -- the commands as they are synced ----------------------------------------------------------------------------

_synced: dict[str, list[dict[str, Any]]] = {}


async def synced() -> dict[str, list[dict[str, Any]]]:
    """Each provider's commands as the bot syncs them (built once: a process loads the cogs once)."""
    if not _synced:
        _synced.update(await provider_commands(i18n.CommandTranslator()))
    return _synced


@dataclass(frozen=True)
class Node:
    """A command, option or choice of the synced payload, with what its siblings are called."""

    where: str
    data: dict[str, Any]
    kind: str  # "command", "context menu", "option" or "choice"


def walk(commands: list[dict[str, Any]]) -> Iterator[tuple[Node, list[Node]]]:
    """Every command, subcommand, option and choice, each with the siblings whose names must differ from its own."""

    def children(where: str, options: list[dict[str, Any]]) -> Iterator[tuple[Node, list[Node]]]:
        nodes = [Node(f"{where} {o['name']}", o, "command" if o["type"] in (1, 2) else "option") for o in options]
        for node in nodes:
            yield node, nodes
            yield from children(node.where, node.data.get("options", []))
            choices = [Node(f"{node.where}: {c['name']}", c, "choice") for c in node.data.get("choices", [])]
            yield from ((choice, choices) for choice in choices)

    top = [Node(c["name"], c, "command" if c.get("type", 1) == 1 else "context menu") for c in commands]
    for node in top:
        yield node, [n for n in top if n.kind == node.kind]
        yield from children(f"/{node.where}", node.data.get("options", []))


async def test_every_command_option_and_choice_is_synced_with_the_five_localizations() -> None:
    for provider, commands in (await synced()).items():
        for node, _ in walk(commands):
            names = node.data.get("name_localizations") or {}
            assert set(i18n.CATALOGS) <= set(names), f"{provider} {node.where}: name in {sorted(names)}"
            if node.kind in ("command", "option"):
                descriptions = node.data.get("description_localizations") or {}
                assert set(i18n.CATALOGS) <= set(descriptions), f"{provider} {node.where}: description"
            assert set(names) <= {locale.value for locale in discord.Locale}, "only Discord's locale names"


async def test_localized_names_follow_discords_rules_and_stay_apart_from_their_siblings() -> None:
    broken = []
    for provider, commands in (await synced()).items():
        for node, siblings in walk(commands):
            for locale, name in (node.data.get("name_localizations") or {}).items():
                where = f"{provider} {node.where} [{locale}] {name!r}"
                if node.kind in ("command", "option") and not (NAME.fullmatch(name) and name == name.lower()):
                    broken.append(f"{where}: lowercase letters, digits, - or _ only, 1-32 of them")
                if node.kind == "context menu" and not 1 <= len(name) <= 32:
                    broken.append(f"{where}: 1-32 characters")
                if node.kind == "choice" and not 1 <= len(name) <= 100:
                    broken.append(f"{where}: 1-100 characters")
                same = [s.where for s in siblings if s is not node and localized(s, locale) == name]
                if same:
                    broken.append(f"{where}: also the name of {same}")
            for locale, description in (node.data.get("description_localizations") or {}).items():
                if not 1 <= len(description) <= 100:
                    broken.append(f"{provider} {node.where} [{locale}]: a description of 1-100 characters")
    assert broken == []


def localized(node: Node, locale: str) -> str:
    return str((node.data.get("name_localizations") or {}).get(locale, node.data["name"]))


async def test_the_commands_are_synced_under_their_english_names_with_translations_beside_them() -> None:
    commands = {c["name"]: c for c in (await synced())["acedata"]}
    assert commands["imagine"]["name_localizations"]["de"] == "generieren"
    assert commands["Edit with Flux"]["name_localizations"]["ja"] == "Flux で編集"
    language = next(o for o in commands["fluxadmin"]["options"] if o["name"] == "language")
    follow = language["options"][0]["choices"][0]
    assert (follow["name"], follow["value"]) == ("Follow Discord's server language", "discord")
    assert follow["name_localizations"]["pt-BR"] == "Seguir o idioma do servidor no Discord"
    assert "ko" not in commands["imagine"]["name_localizations"], "a locale with no catalog shows the English"
    assert commands["imagine"]["name_localizations"]["es-419"] == "imaginar", "Latin American Spanish gets Spain's"


async def test_the_sync_hash_changes_with_a_translation_not_only_with_a_command() -> None:
    class Translated(app_commands.Translator):
        def __init__(self, word: str) -> None:
            self.word = word

        async def translate(self, string: app_commands.locale_str, locale: discord.Locale, context: Any) -> str | None:
            return self.word if locale is discord.Locale.german else None

    client = discord.Client(intents=discord.Intents.none())
    tree: app_commands.CommandTree[discord.Client] = app_commands.CommandTree(client)

    @tree.command(name="imagine", description="Create images")
    async def imagine(interaction: discord.Interaction) -> None:
        """A command."""

    untranslated = await commands_digest(tree)
    await tree.set_translator(Translated("bilder"))
    first = await commands_digest(tree)
    assert first != untranslated
    assert await commands_digest(tree) == first, "the same translations hash the same"
    await tree.set_translator(Translated("erzeugen"))
    assert await commands_digest(tree) != first, "a changed translation syncs again"


async def test_the_translator_answers_only_for_locales_with_a_catalog() -> None:
    translator = i18n.CommandTranslator()
    await translator.load()
    never = app_commands.Choice(name="never", value="never")
    choice: app_commands.TranslationContextTypes = app_commands.TranslationContext(
        app_commands.TranslationContextLocation.choice_name, never
    )

    async def translate(locale: discord.Locale) -> str | None:
        return await translator.translate(app_commands.locale_str("never"), locale, choice)

    assert await translate(discord.Locale.german) == "nie"
    assert await translate(discord.Locale.spain_spanish) == "nunca"
    assert await translate(discord.Locale.korean) is None, "Discord then shows the English"
    assert await translate(discord.Locale.american_english) is None, "English is the source: no localization"
    other: app_commands.TranslationContextTypes = app_commands.TranslationContext(
        app_commands.TranslationContextLocation.other, None
    )
    follow = app_commands.locale_str("Follow Discord's server language")
    assert await translator.translate(follow, discord.Locale.german, other) is None, (
        "a text is looked up in its own context: this one is a choice, not a plain message"
    )


# -- messages -----------------------------------------------------------------------------------------------------


def test_a_message_is_said_in_the_locale_with_its_placeholders_filled() -> None:
    assert i18n.text("de", NEEDS_MANAGE_SERVER).startswith("Nur Mitglieder mit der Berechtigung **Server verwalten**")
    assert i18n.text(discord.Locale.japanese, NEEDS_MANAGE_SERVER).endswith("権限を持つメンバーだけです。")
    said = i18n.text("fr", "{member} has no jobs waiting in line.", member="<@1> {prompt}")
    assert said == "<@1> {prompt} n'a aucune tâche en attente.", "a value is inserted as it is, never parsed"


@pytest.mark.parametrize("locale", ["ko", "en-US", "en-GB", None, "xx-YY", ""])
def test_a_locale_with_no_catalog_gets_the_english_text(locale: str | None) -> None:
    assert i18n.text(locale, NEEDS_MANAGE_SERVER) == NEEDS_MANAGE_SERVER
    assert i18n.plural(locale, *CANCELLED, 3, member="@a") == "Cancelled 3 waiting jobs of @a."


def test_a_message_a_catalog_lacks_is_said_in_english_never_as_an_id_or_empty() -> None:
    assert i18n.text("de", "A message no catalog has, for {who}.", who="you") == "A message no catalog has, for you."
    assert i18n.plural("ja", "{n} new thing", "{n} new things", 1) == "1 new thing"
    assert i18n.plural("ja", "{n} new thing", "{n} new things", 2) == "2 new things"


@pytest.mark.parametrize(
    ("locale", "n", "said"),
    [
        ("de", 1, "1 wartender Auftrag von @a abgebrochen."),
        ("de", 4, "4 wartende Aufträge von @a abgebrochen."),
        ("de", 1234, "1.234 wartende Aufträge von @a abgebrochen."),
        ("fr", 1, "1 tâche en attente de @a annulée."),
        ("fr", 4, "4 tâches en attente de @a annulées."),
        ("pt-BR", 2, "2 tarefas na fila de @a canceladas."),
        ("es-ES", 1, "Se ha cancelado 1 trabajo en espera de @a."),
        ("es-ES", 5, "Se han cancelado 5 trabajos en espera de @a."),
        ("ja", 1, "@a の待機中のジョブを 1 件キャンセルしました。"),
        ("ja", 4, "@a の待機中のジョブを 4 件キャンセルしました。"),
        ("en-US", 1, "Cancelled 1 waiting job of @a."),
        ("en-US", 4, "Cancelled 4 waiting jobs of @a."),
    ],
)
def test_plural_forms_follow_the_locales_rules(locale: str, n: int, said: str) -> None:
    assert i18n.plural(locale, *CANCELLED, n, member="@a") == said


def test_a_translation_with_a_wrong_placeholder_falls_back_to_english(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    po = tmp_path / "fluxbot.po"
    po.write_text(
        'msgid ""\nmsgstr ""\n"Language: de\\n"\n"Content-Type: text/plain; charset=utf-8\\n"\n\n'
        'msgid "{member} has no jobs waiting in line."\nmsgstr "{mitglied} hat nichts in der Warteschlange."\n'
    )
    monkeypatch.setattr(i18n, "catalogs", lambda: {"de": i18n.read_catalog(po, "de")})
    assert i18n.text("de", "{member} has no jobs waiting in line.", member="@a") == "@a has no jobs waiting in line."
    assert "does not fit its placeholders" in caplog.text
    assert i18n.text("de", "{member} has no jobs waiting in line.") == "{member} has no jobs waiting in line.", (
        "values the code forgot: the English as written, never an error"
    )


def test_numbers_and_dates_are_written_for_the_locale() -> None:
    moment = dt.datetime(2026, 3, 4, 15, 30, tzinfo=dt.UTC)
    assert (i18n.number("de", 1234.5), i18n.number("en-US", 1234.5), i18n.number("ko", 1234.5)) == (
        "1.234,5",
        "1,234.5",
        "1,234.5",
    )
    assert i18n.date_text("de", moment.date()) == "04.03.2026"
    assert i18n.date_text("en-GB", moment.date()) == "4 Mar 2026"
    assert i18n.datetime_text("ja", moment) == "2026/03/04 15:30:00 UTC"
    assert i18n.datetime_text("en-US", moment.astimezone(dt.timezone(dt.timedelta(hours=2)))).endswith(
        "3:30:00\u202fPM UTC"
    ), "said in UTC, whatever zone the moment was in"


# -- which locale -------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Asked:
    locale: discord.Locale | str | None
    guild_locale: discord.Locale | str | None


def test_an_ephemeral_answer_takes_the_members_locale() -> None:
    assert i18n.member_locale(Asked(discord.Locale.german, discord.Locale.brazil_portuguese)) == "de"
    assert i18n.member_locale(Asked("ko", None)) == "ko"


def test_what_everyone_sees_takes_the_servers_forced_locale_else_discords_server_language() -> None:
    asked = Asked(discord.Locale.german, discord.Locale.brazil_portuguese)
    assert i18n.channel_locale(asked, None) == "pt-BR"
    assert i18n.channel_locale(asked, "ja") == "ja"
    assert i18n.channel_locale(Asked("fr", None), None) == "fr", "a DM: the member's"


def test_a_language_is_named_in_the_language_of_whoever_reads() -> None:
    assert i18n.language_name("de", "fr") == "allemand"
    assert i18n.language_name("pt-BR", "de") == "Portugiesisch (Brasilien)"
    assert i18n.language_name("en-US", "ja") == "英語"
    assert i18n.language_name("ko", "xx") == "Korean", "an unknown reader reads English"


# -- the server's setting -----------------------------------------------------------------------------------------


def test_a_servers_language_is_stored_and_older_or_broken_settings_follow_discord() -> None:
    chosen = GuildSettings(locale="pt-BR")
    assert GuildSettings.from_json(chosen.to_json()) == chosen
    assert GuildSettings.from_json('{"dms": false}').locale is None, "settings saved before the language existed"
    assert GuildSettings.from_json('{"locale": 7}').locale is None
    assert GuildSettings.from_json('{"locale": ""}').locale is None


def test_the_settings_card_shows_the_servers_language() -> None:
    def language(settings: GuildSettings) -> str:
        embed = settings_card(settings, Limits(), "flux-dev", serve_dms=True, locale=None)
        return next(f.value for f in embed.fields if f.name == "Language of what everyone sees") or ""

    assert language(GuildSettings()) == "Discord's server language"
    assert language(GuildSettings(locale="ja")) == "日本語 (`ja`)"
