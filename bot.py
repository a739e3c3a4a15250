"""Entry point: load settings, set up logging, run FluxBot."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
import sqlite3
import sys

import aiohttp
import discord

from fluxbot.bot import FluxBot
from fluxbot.config import ConfigError, Settings, load_settings
from fluxbot.logs import setup_logging
from fluxbot.providers.acedata import AceDataFlux
from fluxbot.store import Store

log = logging.getLogger("fluxbot")


async def run(settings: Settings) -> None:
    """Create the shared resources, run the bot until it stops, close everything in reverse order."""
    async with aiohttp.ClientSession() as session:
        try:
            store = await Store.open(settings.database_path)
        except (sqlite3.Error, OSError) as exc:
            raise ConfigError(
                "DATABASE_PATH", f"a SQLite file the bot can open ({settings.database_path}: {exc})"
            ) from None
        try:
            provider = AceDataFlux(session, settings.acedata_api_token, settings.flux_api_base_url)
            async with FluxBot(settings=settings, store=store, provider=provider) as bot:
                loop = asyncio.get_running_loop()
                with contextlib.suppress(NotImplementedError):
                    loop.add_signal_handler(signal.SIGTERM, lambda: asyncio.ensure_future(bot.close()))
                await bot.start(settings.discord_token.reveal())
        finally:
            await store.close()


def main() -> int:
    """Run the bot; configuration problems end with one line and exit code 2."""
    try:
        settings = load_settings()
    except ConfigError as exc:
        print(f"fluxbot: configuration error: {exc}", file=sys.stderr)
        return 2
    setup_logging(settings.log_level, settings.secrets())
    try:
        asyncio.run(run(settings))
    except ConfigError as exc:
        print(f"fluxbot: configuration error: {exc}", file=sys.stderr)
        return 2
    except discord.LoginFailure:
        log.error("Discord rejected DISCORD_TOKEN: check the bot token in the developer portal")
        return 2
    except KeyboardInterrupt:
        pass
    return 0


if __name__ == "__main__":
    sys.exit(main())
