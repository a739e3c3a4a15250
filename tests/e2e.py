"""Helpers for end-to-end tests: real bot processes wired to the fake Discord and the fake Flux API."""

from __future__ import annotations

import collections
import contextlib
import json
import socket
import sqlite3
from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp

from fluxbot.providers.base import KEY_CHECK_TASK
from tests.botprocess import BotProcess
from tests.fakes.discord_api import FakeDiscord, RecordedRequest, SentInteraction
from tests.fakes.discord_guilds import guild_id_on_shard
from tests.fakes.flux_api import FakeFlux, SeenRequest

EPHEMERAL = 64
DEFERRED_CHANNEL_MESSAGE = 5
CHANNEL_MESSAGE = 4


@dataclass
class World:
    """The fakes and one bot process of a test (a test with several processes has one World each)."""

    discord: FakeDiscord
    flux: FakeFlux
    bot: BotProcess

    @property
    def shards(self) -> tuple[list[int], int]:
        """The shards this bot runs and the shard count, as it reads SHARD_IDS and SHARD_COUNT (unset: every
        shard the fake recommends)."""
        count = int(self.bot.env.get("SHARD_COUNT") or self.discord.recommended_shards)
        given = self.bot.env.get("SHARD_IDS")
        return ([int(i) for i in given.split(",")] if given else list(range(count))), count

    async def start(self) -> None:
        """Start the bot process; return once each of its shards identified anew and is ready."""
        ids, count = self.shards
        before = collections.Counter(self.discord.identified_shards())

        def identified() -> bool:
            now = collections.Counter(self.discord.identified_shards())
            return all(now[(i, count)] > before[(i, count)] for i in ids)

        await self.bot.start()
        await self.discord.wait_for(identified, timeout=30, message=f"the bot did not identify shards {ids}")
        await self.discord.wait_shards_ready(ids, count, timeout=30)

    async def restart(self) -> None:
        """SIGKILL the bot (if it still runs) and start it again."""
        await self.bot.kill()
        await self.start()

    @property
    def metrics_url(self) -> str:
        """Where this bot serves /healthz and /metrics (it must be started with METRICS_PORT)."""
        return f"http://127.0.0.1:{self.bot.env['METRICS_PORT']}"

    async def healthz(self) -> tuple[int, dict[str, Any]]:
        """This bot's /healthz: the status and the JSON."""
        async with aiohttp.ClientSession() as session, session.get(f"{self.metrics_url}/healthz") as resp:
            return resp.status, json.loads(await resp.text())

    async def metrics(self) -> str:
        """This bot's /metrics text."""
        async with aiohttp.ClientSession() as session, session.get(f"{self.metrics_url}/metrics") as resp:
            assert resp.status == 200
            return await resp.text()


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
    """Start the bot with `env`, wait until its shards are ready and its commands synced; on exit SIGTERM it and
    check its logs."""
    async with running_bots(discord, flux, tmp_path, env) as [world]:
        yield world


@contextlib.asynccontextmanager
async def running_bots(
    discord: FakeDiscord, flux: FakeFlux, tmp_path: Path, *envs: Mapping[str, str], **shared: str
) -> AsyncIterator[list[World]]:
    """Start one bot process per entry of `envs` (each over `shared`, over `bot_env`'s defaults), one after the
    other, each waited for until its shards are ready and the commands synced; on exit SIGTERM every one and check
    each exited cleanly and logged no token. They share DATABASE_PATH unless an entry sets its own; `shard_envs`
    makes one entry per shard."""
    worlds: list[World] = []
    try:
        for env in envs:
            merged = {**shared, **env}
            world = World(discord, flux, BotProcess(bot_env(discord, flux, tmp_path, **merged), tmp_path))
            worlds.append(world)
            await world.start()
            await wait_commands(discord, "global" if merged.get("DEV_GUILD_ID") == "" else str(discord.guild_id))
        yield worlds
    finally:
        codes = [await world.bot.stop() for world in worlds]
        assert codes == [0] * len(worlds), "SIGTERM ends every bot cleanly"
        for world in worlds:
            bot = world.bot
            provider_secrets = ("KIE_API_TOKEN", "KIE_WEBHOOK_HMAC_KEY", "BFL_API_KEY", "BFL_WEBHOOK_SECRET", "FAL_KEY")
            other_secrets = (bot.env.get(name, "") for name in provider_secrets)
            interactions = (i.token for i in discord.interactions)
            secrets = [discord.bot_token, flux.token, *interactions, *filter(None, other_secrets)]
            leaked = [s for s in secrets if s in bot.output]
            assert not leaked, "a token reached the bot's log output"


async def wait_commands(discord: FakeDiscord, scope: str) -> None:
    """Wait until the fake has commands synced to `scope` (a guild id, or "global")."""
    await discord.wait_for(lambda: bool(discord.commands.get(scope)), timeout=30, message=f"no commands in {scope}")


def shard_envs(shard_count: int, **extra: str) -> list[dict[str, str]]:
    """One bot environment per shard of `shard_count` (for `running_bots`): SHARD_COUNT, its SHARD_IDS, an
    INSTANCE_NAME `fluxbot-<shard>` and a METRICS_PORT of its own on 127.0.0.1, with `extra` over them."""
    return [
        {
            "SHARD_COUNT": str(shard_count),
            "SHARD_IDS": str(shard),
            "INSTANCE_NAME": f"fluxbot-{shard}",
            "METRICS_PORT": str(free_port()),
            "METRICS_HOST": "127.0.0.1",
            **extra,
        }
        for shard in range(shard_count)
    ]


def sharded_discord(shard_count: int, **options: Any) -> FakeDiscord:
    """A fake Discord (not started) recommending `shard_count` shards, with one guild on each shard; its default
    guild is on shard 0. `guild_on_shard` finds them."""
    discord = FakeDiscord(guild_id=guild_id_on_shard(0, shard_count), recommended_shards=shard_count, **options)
    for shard in range(1, shard_count):
        discord.add_guild(guild_id_on_shard(shard, shard_count))
    return discord


def guild_on_shard(discord: FakeDiscord, shard: int, shard_count: int) -> int:
    """The id of the fake's first guild on `shard` of `shard_count`."""
    found = [guild.id for guild in discord.guilds.values() if guild.on_shard(shard, shard_count)]
    assert found, f"the fake has no guild on shard {shard} of {shard_count}"
    return found[0]


def job_requests(flux: FakeFlux) -> list[SeenRequest]:
    """What the bot asked the provider for jobs: every request but the start-up key check."""
    return [r for r in flux.requests if not (isinstance(r.body, dict) and r.body.get("ids") == [KEY_CHECK_TASK])]


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


def close_every_way_but_dms(world: World, interaction: SentInteraction, reply: dict[str, Any]) -> None:
    """Make the job's reply and its channel unreachable (token expired, Missing Access), so a result goes by DM."""
    world.discord.expire_token(interaction)
    missing_access = {"message": "Missing Access", "code": 50001}
    channel = world.discord.channel_id
    world.discord.fail_next("PATCH", rf"/channels/{channel}/messages/{reply['id']}$", 403, missing_access, times=5)
    world.discord.fail_next("POST", rf"/channels/{channel}/messages$", 403, missing_access, times=5)


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
