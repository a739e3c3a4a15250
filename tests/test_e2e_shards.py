"""End to end with shards: the real bot as SHARD_COUNT/SHARD_IDS make it, against a fake Discord with one guild on
each of two shards, routing each guild's interactions to the connection of its shard."""

from __future__ import annotations

import asyncio
import re
import sqlite3
from pathlib import Path

import pytest

from tests.botprocess import BotProcess
from tests.e2e import (
    World,
    bot_env,
    final_reply,
    free_port,
    guild_on_shard,
    option,
    running_bot,
    running_bots,
    shard_envs,
)
from tests.fakes.discord_api import FakeDiscord
from tests.fakes.flux_api import FakeFlux


def metrics_env(instance: str, **extra: str) -> dict[str, str]:
    """Global commands (the guilds are not all the development server), /metrics on a port of its own."""
    port = str(free_port())
    return {"INSTANCE_NAME": instance, "METRICS_PORT": port, "METRICS_HOST": "127.0.0.1", "DEV_GUILD_ID": "", **extra}


def samples(metrics: str) -> list[str]:
    """The sample lines of a Prometheus exposition."""
    return [line for line in metrics.splitlines() if line and not line.startswith("#")]


async def test_one_process_on_both_shards_serves_a_guild_on_each(
    sharded: tuple[FakeDiscord, FakeFlux], tmp_path: Path
) -> None:
    discord, flux = sharded
    first, second = guild_on_shard(discord, 0, 2), guild_on_shard(discord, 1, 2)
    env = metrics_env("shards-01", SHARD_COUNT="2", SHARD_IDS="0,1")
    async with running_bot(discord, flux, tmp_path, **env) as world:
        assert sorted(discord.identified_shards()) == [(0, 2), (1, 2)]
        on_first, on_second = await asyncio.gather(
            discord.send_slash_command("imagine", [option("prompt", "a fox on shard 0")], guild_id=first),
            discord.send_slash_command("imagine", [option("prompt", "a heron on shard 1")], guild_id=second),
        )
        done = await asyncio.gather(final_reply(world, on_first, "Done"), final_reply(world, on_second, "Done"))
        assert [message["guild_id"] for message in done] == [str(first), str(second)]
        descriptions = [message["embeds"][0]["description"] for message in done]
        assert ("fox" in descriptions[0], "heron" in descriptions[1]) == (True, True)
        assert sorted(b["prompt"] for b in flux.submits) == ["a fox on shard 0", "a heron on shard 1"]

        status, health = await world.healthz()
        assert (status, health["healthy"], health["gateway"]) == (200, True, True)
        assert [(s["id"], s["connected"]) for s in health["shards"]] == [(0, True), (1, True)]
        assert all(isinstance(s["latency_seconds"], float) and s["latency_seconds"] >= 0 for s in health["shards"])

        metrics = samples(await world.metrics())
        labelled = [re.search(r'[{,]instance="shards-01"[,}]', line) for line in metrics]
        assert all(labelled), "every series has the instance label"
        assert 'fluxbot_shard_connected{instance="shards-01",shard="0"} 1.0' in metrics
        assert 'fluxbot_shard_connected{instance="shards-01",shard="1"} 1.0' in metrics
        assert len([line for line in metrics if line.startswith("fluxbot_shard_latency_seconds{")]) == 2
        submitted = 'fluxbot_jobs_submitted_total{instance="shards-01",model="flux-dev",provider="acedata"} 2.0'
        assert submitted in metrics
        await discord.wait_for(lambda: "in 2 server(s), on shard(s) 0, 1 of 2" in world.bot.output)


async def test_a_process_given_shard_1_of_2_connects_only_that_shard(
    sharded: tuple[FakeDiscord, FakeFlux], tmp_path: Path
) -> None:
    discord, flux = sharded
    first, second = guild_on_shard(discord, 0, 2), guild_on_shard(discord, 1, 2)
    async with running_bot(discord, flux, tmp_path, **metrics_env("shard-1", SHARD_COUNT="2", SHARD_IDS="1")) as world:
        interaction = await discord.send_slash_command("imagine", [option("prompt", "on shard 1")], guild_id=second)
        await final_reply(world, interaction, "Done")
        with pytest.raises(AssertionError, match="no identified gateway connection holds its shard"):
            await discord.send_slash_command("imagine", [option("prompt", "nobody runs shard 0")], guild_id=first)
        assert discord.identified_shards() == [(1, 2)], "shard 0 is another process's"
        status, health = await world.healthz()
        assert (status, health["gateway"]) == (200, True), "healthy: every shard of this process is connected"
        assert [(s["id"], s["connected"]) for s in health["shards"]] == [(1, True)]
        metrics = samples(await world.metrics())
        assert [line.rsplit(" ", 1)[0] for line in metrics if line.startswith("fluxbot_shard_connected")] == [
            'fluxbot_shard_connected{instance="shard-1",shard="1"}'
        ]
    assert discord.identified_shards() == [(1, 2)]


async def test_health_is_red_until_every_shard_of_the_process_is_connected(
    sharded: tuple[FakeDiscord, FakeFlux], tmp_path: Path
) -> None:
    """Without SHARD_COUNT the bot runs every shard Discord recommends (here 2); discord.py waits 5 s between two
    IDENTIFYs (Discord's session start limit), so shard 0 is connected well before shard 1 and /healthz says so."""
    discord, flux = sharded
    world = World(discord, flux, BotProcess(bot_env(discord, flux, tmp_path, **metrics_env("a")), tmp_path))
    await world.bot.start()
    try:
        await discord.wait_shards_ready([0], 2, timeout=30)
        assert discord.connected_shards == [(0, 2)]
        assert [r.status for r in discord.requests if r.path.endswith("/gateway/bot")] == [200], "asked how many"
        status, health = await world.healthz()
        assert (status, health["healthy"], health["gateway"], health["database"]) == (503, False, False, True)
        assert [(s["id"], s["connected"], s["latency_seconds"]) for s in health["shards"]][1] == (1, False, None)
        assert health["shards"][0]["connected"] is True
        assert re.search(r'^fluxbot_shard_connected\{instance="a",shard="1"\} 0\.0$', await world.metrics(), re.M)
        await discord.wait_shards_ready([0, 1], 2, timeout=30)
        status, health = await world.healthz()
        assert (status, [s["connected"] for s in health["shards"]]) == (200, [True, True])
    finally:
        assert await world.bot.stop() == 0
    assert "Traceback" not in world.bot.output


def jobs_in(world: World) -> list[tuple[int | None, str]]:
    """(guild id or None for a DM, prompt) of every job in the bot's SQLite database."""
    with sqlite3.connect(world.bot.env["DATABASE_PATH"]) as db:
        rows = db.execute("SELECT guild_id, prompt FROM jobs ORDER BY id").fetchall()
    return [(guild, str(prompt)) for guild, prompt in rows]


async def test_two_processes_on_shards_0_and_1_each_serve_the_guild_of_their_shard(
    sharded: tuple[FakeDiscord, FakeFlux], tmp_path: Path
) -> None:
    """The shape of a sharded deployment (here each on its own SQLite file; PostgreSQL lets them share one)."""
    discord, flux = sharded
    first, second = guild_on_shard(discord, 0, 2), guild_on_shard(discord, 1, 2)
    envs = [{**env, "DATABASE_PATH": str(tmp_path / f"shard-{n}.db")} for n, env in enumerate(shard_envs(2))]
    async with running_bots(discord, flux, tmp_path, *envs, DEV_GUILD_ID="") as [zero, one]:
        assert sorted(discord.identified_shards()) == [(0, 2), (1, 2)]
        sent = await asyncio.gather(
            discord.send_slash_command("imagine", [option("prompt", "for shard 0")], guild_id=first),
            discord.send_slash_command("imagine", [option("prompt", "for shard 1")], guild_id=second),
            discord.send_slash_command("imagine", [option("prompt", "in a DM")], guild=False),
        )
        await asyncio.gather(*(final_reply(zero, interaction, "Done") for interaction in sent))
        assert set(jobs_in(zero)) == {(first, "for shard 0"), (None, "in a DM")}, "DMs reach shard 0"
        assert jobs_in(one) == [(second, "for shard 1")]
        for world, shard in ((zero, 0), (one, 1)):
            status, health = await world.healthz()
            assert (status, [s["id"] for s in health["shards"]]) == (200, [shard])
            assert f'fluxbot_shard_connected{{instance="fluxbot-{shard}",shard="{shard}"}} 1.0' in await world.metrics()
