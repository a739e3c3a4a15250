"""Entry point: load settings, set up logging, run FluxBot."""

from __future__ import annotations

import sys

# Before anything else is imported: the code below needs Python 3.11 and would fail with an obscure error.
if sys.version_info < (3, 11):  # noqa: UP036 - the check is for the Pythons the project does not support
    sys.exit(f"fluxbot needs Python 3.11 or newer; this is Python {'.'.join(map(str, sys.version_info[:3]))}.")

import asyncio
import contextlib
import logging
import signal

import aiohttp
import discord

from fluxbot.bot import FluxBot
from fluxbot.config import ConfigError, ConfigErrors, Settings, load_settings
from fluxbot.logs import setup_logging
from fluxbot.providers import build_providers
from fluxbot.startup import check_provider_key
from fluxbot.storage import StoreError, database_setting, open_store
from fluxbot.web import WebServer, callback_secret, callback_url

log = logging.getLogger("fluxbot")


class DiscordUnreachable(Exception):
    """Discord could not be reached to log in (no network, DNS, a proxy): a supervisor should try again later."""


async def run(settings: Settings) -> None:
    """Create the shared resources, run the bot until it stops, close everything in reverse order."""
    async with contextlib.AsyncExitStack() as resources:
        session = await resources.enter_async_context(aiohttp.ClientSession())
        store = await open_store(settings)
        resources.push_async_callback(store.close)
        clients = build_providers(settings, session)
        # Asked while logging in to Discord: a key the provider refuses stops the start, not the first /imagine.
        key_check = asyncio.create_task(check_provider_key(clients[settings.provider], settings.provider_info))
        secret = await callback_secret(store) if settings.callback_base_url else None
        url = callback_url(settings.callback_base_url, secret) if settings.callback_base_url and secret else None
        bot = FluxBot(settings=settings, store=store, providers=clients, session=session, callback_url=url)
        await resources.enter_async_context(bot)
        for server in web_servers(settings, bot, secret):
            await server.start()
            resources.push_async_callback(server.close)
        try:
            await bot.login(settings.discord_token.reveal())
        except (aiohttp.ClientError, OSError, TimeoutError) as exc:
            key_check.cancel()
            raise DiscordUnreachable(f"{type(exc).__name__}: {exc}") from None
        finally:
            await asyncio.wait({key_check})
        if not key_check.cancelled():
            key_check.result()  # ConfigError when the provider refused the key
        with contextlib.suppress(NotImplementedError):
            for stop in (signal.SIGTERM, signal.SIGINT):
                asyncio.get_running_loop().add_signal_handler(stop, lambda: asyncio.ensure_future(bot.close()))
        await bot.connect()


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


def _config_problems(exc: ConfigError) -> int:
    """Print every configuration problem, one line each; the exit code for them."""
    for error in exc.errors if isinstance(exc, ConfigErrors) else (exc,):
        print(f"fluxbot: configuration error: {error}", file=sys.stderr)
    return 2


def main() -> int:
    """Run the bot; configuration and database problems end with one line each and exit code 2, an unreachable
    Discord with one line and exit code 1 (a supervisor restarts it)."""
    try:
        settings = load_settings()
    except ConfigError as exc:
        return _config_problems(exc)
    setup_logging(settings.log_level, settings.secrets())
    try:
        asyncio.run(run(settings))
    except ConfigError as exc:
        return _config_problems(exc)
    except StoreError as exc:
        print(f"fluxbot: {database_setting(settings)}: {exc}", file=sys.stderr)
        return 2
    except discord.LoginFailure:
        log.error("Discord rejected DISCORD_TOKEN: check the bot token in the developer portal")
        return 2
    except DiscordUnreachable as exc:
        print(f"fluxbot: cannot reach Discord to log in ({exc}); check the network, then start again", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        pass
    return 0


if __name__ == "__main__":
    sys.exit(main())
