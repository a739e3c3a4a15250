"""The bot's own words in the member's or the server's language: gettext catalogs (`fluxbot/locales`) read with
Babel, with English as the source (a message's id is its English text).

Ephemeral answers take the member's locale (`member_locale`), what everyone in a channel sees the server's
(`channel_locale`: a locale the server chose with `/fluxadmin language`, else Discord's server language). A message
a catalog lacks, and a locale with no catalog, are said in English. Prompts are never passed through here: they are
only ever a placeholder's value, inserted as they are.

Commands are localized the Discord way: `CommandTranslator` gives discord.py each name, description and choice
from the catalogs when the commands are synced; the message context (msgctxt) tells a name from a description.
"""

from __future__ import annotations

import datetime as dt
import functools
import io
import logging
import string
from collections.abc import Mapping
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from typing import Protocol

import discord
from babel import Locale, UnknownLocaleError, dates, numbers
from babel.messages.mofile import write_mo
from babel.messages.pofile import read_po
from babel.support import Translations
from discord import app_commands
from discord.app_commands import TranslationContextLocation as Where

log = logging.getLogger(__name__)

#: The locale of the source texts, and of every text a catalog lacks.
SOURCE = "en-US"
#: The catalogs, by Discord's name of their locale: their folder under `fluxbot/locales` (gettext's spelling).
CATALOGS: Mapping[str, str] = {"de": "de", "es-ES": "es_ES", "fr": "fr", "pt-BR": "pt_BR", "ja": "ja"}
#: Each language the bot speaks, in its own words (the `/fluxadmin language` choices and the settings card).
LANGUAGE_NAMES: Mapping[str, str] = {
    SOURCE: "English",
    "de": "Deutsch",
    "es-ES": "Español (España)",
    "fr": "Français",
    "pt-BR": "Português (Brasil)",
    "ja": "日本語",
}
LOCALES_DIR = Path(__file__).parent / "locales"
DOMAIN = "fluxbot"

#: The message contexts of the command texts (a name follows Discord's naming rules, a description does not).
COMMAND_NAME = "command name"
COMMAND_DESCRIPTION = "command description"
OPTION_NAME = "option name"
OPTION_DESCRIPTION = "option description"
CHOICE = "choice"
CONTEXT_MENU = "context menu"

LocaleValue = discord.Locale | str | None


class HasLocales(Protocol):
    """What the locale helpers read of an interaction (a `discord.Interaction`, or a stand-in in tests)."""

    @property
    def locale(self) -> LocaleValue:
        """The member's client language."""

    @property
    def guild_locale(self) -> LocaleValue:
        """The server's language in Discord (None in a DM)."""


@dataclass(frozen=True)
class Catalog:
    """One locale's messages: gettext's lookups (with plural rules) and the translated texts by (context, id)."""

    locale: Locale
    translations: Translations
    messages: Mapping[tuple[str | None, str], str]


def N_(message: str) -> str:
    """Mark a message kept in a constant for extraction; `text` translates it where it is shown."""
    return message


def _name(locale: LocaleValue) -> str:
    if isinstance(locale, discord.Locale):
        return locale.value
    return locale or SOURCE


def catalog_locale(locale: LocaleValue) -> str | None:
    """The catalog that speaks to `locale`: its own, else one of the same language (`es-419`: `es-ES`), else None
    (English)."""
    name = _name(locale)
    if name in CATALOGS:
        return name
    language = name.replace("_", "-").split("-")[0].lower()
    return next((known for known in CATALOGS if known.split("-")[0] == language), None)


def read_catalog(path: Path, locale: str) -> Catalog:
    """A .po file as a catalog: compiled in memory, so no .mo file is kept that could lag behind its .po."""
    with path.open("rb") as file:
        parsed = read_po(file, locale=CATALOGS[locale], domain=DOMAIN)
    compiled = io.BytesIO()
    write_mo(compiled, parsed)  # leaves out untranslated and fuzzy messages: they fall back to English
    compiled.seek(0)
    messages = {
        (message.context, message.id): message.string
        for message in parsed
        if isinstance(message.id, str) and message.id and isinstance(message.string, str) and message.string
        if not message.fuzzy
    }
    return Catalog(Locale.parse(CATALOGS[locale]), Translations(compiled, domain=DOMAIN), messages)


@functools.cache
def catalogs() -> Mapping[str, Catalog]:
    """Every catalog, read once (at start: `CommandTranslator.load`)."""
    return {
        locale: read_catalog(LOCALES_DIR / folder / "LC_MESSAGES" / f"{DOMAIN}.po", locale)
        for locale, folder in CATALOGS.items()
    }


def _catalog(locale: LocaleValue) -> Catalog | None:
    found = catalog_locale(locale)
    return catalogs()[found] if found is not None else None


def _format(template: str, english: str, values: Mapping[str, object]) -> str:
    """`template` with its `{name}` placeholders filled; a translation that does not fit them falls back to the
    English text (a literal brace is written twice)."""
    for candidate in (template, english):
        try:
            return candidate.format_map(values)
        except (KeyError, IndexError, ValueError, AttributeError):
            log.warning("the message %r does not fit its placeholders %s", candidate, sorted(values))
    return english  # the code gave the wrong values: said as written rather than not at all


def text(locale: LocaleValue, message: str, **values: object) -> str:
    """`message` (its English text) in `locale`, its `{name}` placeholders filled from `values`."""
    found = _catalog(locale)
    translated = found.translations.gettext(message) if found is not None else message
    return _format(translated, message, values)


def text_in(locale: LocaleValue, context: str, message: str, **values: object) -> str:
    """`text` for a message whose translation depends on what it is about (`context`: "none" of a task, of a
    ceiling); the catalogs keep it under that message context."""
    found = _catalog(locale)
    translated = str(found.translations.pgettext(context, message)) if found is not None else message
    return _format(translated, message, values)


def plural(locale: LocaleValue, singular: str, plural: str, n: int, **values: object) -> str:
    """The form of the message that fits the number `n` in `locale` ("1 image", "4 images"); `{n}` is `n` written
    for the locale."""
    found = _catalog(locale)
    english = singular if n == 1 else plural
    translated = found.translations.ngettext(singular, plural, n) if found is not None else english
    return _format(translated, english, {"n": number(locale, n), **values})


def option_name(locale: LocaleValue, name: str) -> str:
    """A command option's name as Discord shows it in `locale` (its localized name), else as it is."""
    found = _catalog(locale)
    return found.messages.get((OPTION_NAME, name), name) if found is not None else name


def babel_locale(locale: LocaleValue) -> Locale:
    """The locale numbers and dates are written for: the catalog's, or the English one asked for (`en-GB`)."""
    found = _catalog(locale)
    if found is not None:
        return found.locale
    name = _name(locale).replace("-", "_")
    if name.lower().startswith("en"):
        try:
            return Locale.parse(name)
        except (ValueError, LookupError, UnknownLocaleError):
            pass
    return Locale.parse(SOURCE.replace("-", "_"))


def number(locale: LocaleValue, value: int | float | Decimal) -> str:
    """A number as the locale writes it (1,234.5 / 1.234,5)."""
    return numbers.format_decimal(value, locale=babel_locale(locale))


def date_text(locale: LocaleValue, day: dt.date) -> str:
    """A day as the locale writes it."""
    return dates.format_date(day, format="medium", locale=babel_locale(locale))


def datetime_text(locale: LocaleValue, moment: dt.datetime) -> str:
    """A moment as the locale writes it, in UTC (the bot's days and quotas are UTC days)."""
    return dates.format_datetime(moment, format="medium", tzinfo=dt.UTC, locale=babel_locale(locale)) + " UTC"


def discord_time(moment: float, style: str = "R") -> str:
    """A moment as Discord writes it for each reader, in their own language and time zone (`R`: "in 3 hours",
    `f`: the date and time)."""
    return f"<t:{int(moment)}:{style}>"


def language_name(locale: LocaleValue, shown_in: LocaleValue) -> str:
    """The name of the language of `locale` in the language of `shown_in` (`de` for `fr`: "allemand"); the region
    only where a catalog is for one ("español (España)")."""
    name = _name(locale)
    try:
        parsed = Locale.parse(name.replace("-", "_"))
    except (ValueError, LookupError, UnknownLocaleError):
        return name
    within = babel_locale(shown_in)
    regional = "_" in CATALOGS.get(name, "")
    shown = parsed.get_display_name(within) if regional else parsed.get_language_name(within)
    return shown or name


def member_locale(interaction: HasLocales) -> str:
    """The locale of an answer only this member sees: their client's."""
    return _name(interaction.locale)


def channel_locale(interaction: HasLocales, forced: str | None) -> str:
    """The locale of what everyone in the channel sees: the one the server chose (`forced`), else the server's
    language in Discord, else (a DM) the member's."""
    return forced or _name(interaction.guild_locale or interaction.locale)


def server_locale(forced: str | None, guild: discord.Guild | None) -> str:
    """The locale of a post everyone on a server sees that answers no interaction (a moderation-log post, a budget
    notice): the one the server chose (`forced`), else its language in Discord when the guild is known, else
    English."""
    return forced or _name(guild.preferred_locale if guild is not None else None)


def placeholders(message: str) -> set[str]:
    """The `{name}` placeholders of a message (what a translation must keep)."""
    return {field for _, field, _, _ in string.Formatter().parse(message) if field is not None}


def command_context(context: app_commands.TranslationContextTypes) -> str | None:
    """The message context of a command text discord.py asks to translate (None: a plain message)."""
    location = context.location
    if location in (Where.command_name, Where.group_name):
        return CONTEXT_MENU if isinstance(context.data, app_commands.ContextMenu) else COMMAND_NAME
    return {
        Where.command_description: COMMAND_DESCRIPTION,
        Where.group_description: COMMAND_DESCRIPTION,
        Where.parameter_name: OPTION_NAME,
        Where.parameter_description: OPTION_DESCRIPTION,
        Where.choice_name: CHOICE,
    }.get(location)


class CommandTranslator(app_commands.Translator):
    """Command names, descriptions, options and choices from the catalogs (discord.py asks for each locale when
    the commands are synced)."""

    async def load(self) -> None:
        """Read the catalogs now: a broken one stops the start, not the first command."""
        catalogs()

    async def translate(
        self, string: app_commands.locale_str, locale: discord.Locale, context: app_commands.TranslationContextTypes
    ) -> str | None:
        """The text in `locale`, or None (Discord then shows the English) when no catalog has it."""
        found = _catalog(locale)
        if found is None:
            return None
        return found.messages.get((command_context(context), string.message))
