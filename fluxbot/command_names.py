"""The command texts of the catalogs: what discord.py asks the translator for when it syncs the commands.

`pybabel extract` (configured in pyproject.toml) runs `extract_commands` on this file. It builds the bot's real
command tree for each provider (the commands are made from provider data: models, options, choices), asks each
command for its translated payload as `tree.sync()` does, and records every text the translator is asked for with
its message context (`i18n.command_context`), so the catalogs hold exactly what Discord will be sent.
"""

from __future__ import annotations

import asyncio
import contextlib
import tempfile
from collections.abc import AsyncIterator, Collection, Iterator, Mapping, Sequence
from pathlib import Path
from typing import IO, Any

import aiohttp
import discord
from discord import app_commands
from discord.app_commands import TranslationContextLocation as Where

from fluxbot import catalog, i18n

#: What a translator is told about each kind of command text (Discord's rules for it).
RULES = {
    i18n.COMMAND_NAME: "A command name: lowercase where the script has case, no spaces, 1-32 characters.",
    i18n.OPTION_NAME: "An option name: lowercase where the script has case, no spaces, 1-32 characters.",
    i18n.CONTEXT_MENU: "A menu entry (right-click a message → Apps): 1-32 characters, spaces allowed.",
    i18n.COMMAND_DESCRIPTION: "At most 100 characters.",
    i18n.OPTION_DESCRIPTION: "At most 100 characters.",
    i18n.CHOICE: "A choice in an option's list: at most 100 characters.",
}
#: The one extension whose commands are built from the provider's data.
PROVIDER_EXTENSION = "cogs.images"
#: How many of a text's uses its comment names (an option like `reset` is in many commands).
USES_SHOWN = 3

Text = tuple[str | None, str]


class _Recorder(app_commands.Translator):
    """Translates nothing; remembers each text it is asked for, and where it is used."""

    def __init__(self) -> None:
        self.uses: dict[Text, list[str]] = {}
        self._option = ""

    async def translate(
        self, string: app_commands.locale_str, locale: discord.Locale, context: app_commands.TranslationContextTypes
    ) -> str | None:
        """Record the text (once per use: discord.py asks once per locale)."""
        data: Any = context.data
        if context.location in (Where.parameter_name, Where.parameter_description):
            self._option = f"/{data.command.qualified_name}, option {data.name}"
            use = self._option
        elif context.location is Where.choice_name:
            use = f"{self._option}, a choice"  # discord.py asks for an option's choices right after the option
        elif isinstance(data, app_commands.ContextMenu):
            use = "the message menu"
        else:
            use = f"/{data.qualified_name}"
        uses = self.uses.setdefault((i18n.command_context(context), string.message), [])
        if use not in uses:
            uses.append(use)
        return None


@contextlib.asynccontextmanager
async def command_tree(
    provider: str, extensions: Sequence[str]
) -> AsyncIterator[app_commands.CommandTree[discord.Client]]:
    """The command tree of the bot running `provider` with these extensions (nothing connects to Discord)."""
    from fluxbot.bot import FluxBot  # here: the bot imports i18n, which this module imports
    from fluxbot.config import load_settings
    from fluxbot.providers import build_providers
    from fluxbot.storage import SQLiteStore

    with tempfile.TemporaryDirectory() as folder:
        environ = {
            "DISCORD_TOKEN": "not-a-token",
            "FLUX_PROVIDER": provider,
            catalog.PROVIDERS[provider].key_setting: "not-a-key",
            "DATABASE_PATH": str(Path(folder) / "fluxbot.db"),
        }
        settings = load_settings(environ, env_file=None)
        store = await SQLiteStore.open(settings.database_path)
        try:
            async with aiohttp.ClientSession() as session:
                providers = build_providers(settings, session)
                bot = FluxBot(settings=settings, store=store, providers=providers, session=session)
                for extension in extensions:
                    await bot.load_extension(extension)
                yield bot.tree
        finally:
            await store.close()


async def provider_commands(translator: app_commands.Translator) -> dict[str, list[dict[str, Any]]]:
    """Each provider's commands as `tree.sync()` sends them with `translator`: every command for the first provider,
    the ones built from provider data (/imagine, /edit) for the others.

    Once per process: the `/fluxadmin` group is a module-level object its cogs add their commands to on import.
    """
    from fluxbot.bot import EXTENSIONS

    payloads: dict[str, list[dict[str, Any]]] = {}
    for provider in catalog.PROVIDERS:
        extensions = EXTENSIONS if not payloads else (PROVIDER_EXTENSION,)
        async with command_tree(provider, extensions) as tree:
            commands = tree.get_commands()
            payloads[provider] = [await command.get_translated_payload(tree, translator) for command in commands]
    return payloads


async def command_texts() -> Mapping[Text, list[str]]:
    """Every command text of every provider's commands, by (message context, English text), with its uses."""
    recorder = _Recorder()
    await provider_commands(recorder)
    return recorder.uses


def extract_commands(
    fileobj: IO[bytes], keywords: Collection[str], comment_tags: Collection[str], options: Mapping[str, Any]
) -> Iterator[tuple[int, str, tuple[str, str] | str, list[str]]]:
    """Babel's extraction method for this file: each command text, with its context, rules and uses."""
    for (context, message), uses in asyncio.run(command_texts()).items():
        more = f" and {len(uses) - USES_SHOWN} more" if len(uses) > USES_SHOWN else ""
        used = f"Used in {'; '.join(uses[:USES_SHOWN])}{more}."
        if context is None:
            yield 1, "gettext", message, [used]
        else:
            yield 1, "pgettext", (context, message), [RULES[context], used]
