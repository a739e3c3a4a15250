"""Entry point: load settings, set up logging, run FluxBot."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
import sys

import aiohttp
import discord

from fluxbot.bot import FluxBot
from fluxbot.config import ConfigError, Settings, load_settings
from fluxbot.logs import setup_logging
from fluxbot.providers import build_providers
from fluxbot.storage import StoreError, database_setting, open_store
from fluxbot.web import WebServer, callback_secret, callback_url

log = logging.getLogger("fluxbot")


async def run(settings: Settings) -> None:
    """Create the shared resources, run the bot until it stops, close everything in reverse order."""
    async with contextlib.AsyncExitStack() as resources:
        session = await resources.enter_async_context(aiohttp.ClientSession())
        store = await open_store(settings)
        resources.push_async_callback(store.close)
        clients = build_providers(settings, session)
        secret = await callback_secret(store) if settings.callback_base_url else None
        url = callback_url(settings.callback_base_url, secret) if settings.callback_base_url and secret else None
        bot = FluxBot(settings=settings, store=store, providers=clients, session=session, callback_url=url)
        await resources.enter_async_context(bot)
        for server in web_servers(settings, bot, secret):
            await server.start()
            resources.push_async_callback(server.close)
        with contextlib.suppress(NotImplementedError):
            for stop in (signal.SIGTERM, signal.SIGINT):
                asyncio.get_running_loop().add_signal_handler(stop, lambda: asyncio.ensure_future(bot.close()))
        await bot.start(settings.discord_token.reveal())


def web_servers(settings: Settings, bot: FluxBot, secret: str | None) -> list[WebServer]:
    """The servers to run: callbacks when CALLBACK_BASE_URL is set, health/metrics on METRICS_PORT (or with them)."""
    servers: list[WebServer] = []
    if secret is not None:
        callbacks = WebServer(host=settings.callback_host, port=settings.callback_port, setting="CALLBACK_PORT")
        callbacks.serve_callbacks(bot.jobs, secret)
        if settings.metrics_port in (None, settings.callback_port):
            callbacks.serve_health(bot, instance=settings.instance_name)
        servers.append(callbacks)
    if settings.metrics_port is not None and (secret is None or settings.metrics_port != settings.callback_port):
        health = WebServer(host=settings.metrics_host, port=settings.metrics_port, setting="METRICS_PORT")
        health.serve_health(bot, instance=settings.instance_name)
        servers.append(health)
    return servers


def main() -> int:
    """Run the bot; configuration and database problems end with one line and exit code 2."""
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
    except StoreError as exc:
        print(f"fluxbot: {database_setting(settings)}: {exc}", file=sys.stderr)
        return 2
    except discord.LoginFailure:
        log.error("Discord rejected DISCORD_TOKEN: check the bot token in the developer portal")
        return 2
    except KeyboardInterrupt:
        pass
    return 0


if __name__ == "__main__":
    sys.exit(main())
