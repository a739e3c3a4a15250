"""Helpers for end-to-end tests: the real bot process wired to the fake Discord and the fake Flux API."""

from __future__ import annotations

import contextlib
import socket
import sqlite3
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tests.botprocess import BotProcess
from tests.fakes.discord_api import FakeDiscord, RecordedRequest, SentInteraction
from tests.fakes.flux_api import FakeFlux

EPHEMERAL = 64
DEFERRED_CHANNEL_MESSAGE = 5
CHANNEL_MESSAGE = 4


@dataclass
class World:
    """The fakes and the bot process of one test."""

    discord: FakeDiscord
    flux: FakeFlux
    bot: BotProcess

    async def restart(self) -> None:
        """SIGKILL the bot (if it still runs) and start it again."""
        await self.bot.kill()
        connections = self.discord.identify_count
        await self.bot.start()
        await self.discord.wait_for(lambda: self.discord.identify_count > connections, timeout=30)
        await self.discord.wait_ready(timeout=30)


def bot_env(discord: FakeDiscord, flux: FakeFlux, tmp_path: Path, **extra: str) -> dict[str, str]:
    """The bot's environment: pointed at the fakes, fast polling, DEBUG logs (to prove they hold no token)."""
    env = {
        "FAKE_DISCORD_URL": discord.base_url,
        "DISCORD_TOKEN": discord.bot_token,
        "ACEDATA_API_TOKEN": flux.token,
        "FLUX_API_BASE_URL": flux.base_url,
        "DATABASE_PATH": str(tmp_path / "data" / "fluxbot.db"),
        "POLL_INTERVAL_SECONDS": "0.2",
        "DEV_GUILD_ID": str(discord.guild_id),
        "LOG_LEVEL": "DEBUG",
    }
    env.update(extra)
    return {k: v for k, v in env.items() if v}


@contextlib.asynccontextmanager
async def running_bot(discord: FakeDiscord, flux: FakeFlux, tmp_path: Path, **env: str) -> AsyncIterator[World]:
    """Start the bot with `env`, wait until its commands are synced; on exit SIGTERM it and check its logs."""
    bot = BotProcess(bot_env(discord, flux, tmp_path, **env), tmp_path)
    await bot.start()
    try:
        await discord.wait_ready(timeout=30)
        scope = "global" if env.get("DEV_GUILD_ID") == "" else str(discord.guild_id)
        await discord.wait_for(lambda: bool(discord.commands.get(scope)), timeout=30)
        yield World(discord, flux, bot)
    finally:
        assert await bot.stop() == 0, "SIGTERM ends the bot cleanly"
        kie_secrets = (bot.env.get(name, "") for name in ("KIE_API_TOKEN", "KIE_WEBHOOK_HMAC_KEY"))
        secrets = [discord.bot_token, flux.token, *(i.token for i in discord.interactions), *filter(None, kie_secrets)]
        leaked = [s for s in secrets if s in bot.output]
        assert not leaked, "a token reached the bot's log output"


def free_port() -> int:
    """A loopback port nothing listens on right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def option(name: str, value: Any, kind: int = 3) -> dict[str, Any]:
    """A slash-command option as Discord sends it."""
    return {"name": name, "type": kind, "value": value}


def first_callback(world: World, interaction: SentInteraction) -> RecordedRequest:
    """How the bot answered the interaction."""
    callbacks = world.discord.callbacks_for(interaction)
    assert callbacks, "the interaction was not answered"
    return callbacks[0]


async def final_reply(world: World, interaction: SentInteraction, title: str, timeout: float = 30) -> dict[str, Any]:
    """Wait until the reply's first embed title ends with `title`, and return the message."""

    def shown() -> bool:
        message = world.discord.original_response(interaction)
        embeds = (message or {}).get("embeds") or []
        return bool(embeds) and str(embeds[0].get("title", "")).endswith(title)

    await world.discord.wait_for(shown, timeout=timeout)
    message = world.discord.original_response(interaction)
    assert message is not None
    return message


async def held_job(world: World, prompt: str) -> tuple[SentInteraction, dict[str, Any], str]:
    """Start a job the fake provider keeps running; return its interaction, queued reply and task id."""
    world.flux.hold = True
    before = set(world.flux.tasks)
    interaction = await world.discord.send_slash_command("imagine", [option("prompt", prompt)])
    queued = await final_reply(world, interaction, "Flux is working on it")
    [task_id] = set(world.flux.tasks) - before
    return interaction, queued, task_id


def reply_edits(world: World, interaction: SentInteraction) -> list[RecordedRequest]:
    """Every edit of the interaction's reply through its token."""
    return [r for r in world.discord.requests if r.method == "PATCH" and interaction.token in r.path]


def last_edit(world: World, interaction: SentInteraction) -> RecordedRequest:
    """The latest edit of the reply through the interaction token."""
    edits = reply_edits(world, interaction)
    assert edits, "the reply was never edited"
    return edits[-1]


def delivered_via(world: World) -> str | None:
    """How the newest job was delivered, as the bot recorded it in its database."""
    with sqlite3.connect(Path(world.bot.env["DATABASE_PATH"])) as db:
        row = db.execute("SELECT delivered_via FROM jobs ORDER BY id DESC LIMIT 1").fetchone()
    return str(row[0]) if row and row[0] is not None else None


def fields(embed: dict[str, Any]) -> dict[str, str]:
    """An embed's fields by name."""
    return {f["name"]: f["value"] for f in embed.get("fields", [])}
