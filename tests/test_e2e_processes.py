"""End to end on PostgreSQL: two real bot processes on shards 0 and 1 of 2 share one database and its rules.

One of them is SIGKILLed while its jobs are at the provider; the other takes them over and delivers each once,
on its original reply. Limits hold for both processes together.
"""

from __future__ import annotations

import asyncio
import re
import time
from datetime import datetime
from pathlib import Path

import asyncpg

from tests.e2e import World, final_reply, free_port, guild_on_shard, option, running_bots, shard_envs
from tests.fakes.discord_api import FakeDiscord, SentInteraction
from tests.fakes.flux_api import FakeFlux

FIRST_MEMBER = 200_000_000_000_000_000
#: The lease (20 s) plus one look for orphans (5 s), and room for the lookup and the delivery.
TAKEOVER_LIMIT = 30.0
LOG_TIME = re.compile(r"^(\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d{3}) .*took over (\d+) job", re.M)


def results_shown(discord: FakeDiscord, interaction: SentInteraction) -> int:
    """How many times the interaction's own reply was edited into a finished result."""
    shown = 0
    for r in discord.requests:
        if r.method != "PATCH" or interaction.token not in r.path or not isinstance(r.json, dict):
            continue
        embeds = r.json.get("embeds") or [{}]
        shown += str(embeds[0].get("title", "")).endswith("Done")
    return shown


async def jobs_owned_by(database_url: str, world: World) -> int:
    """How many jobs a run of this process owns now (its runs are named `<INSTANCE_NAME>-<pid>-<random>`)."""
    connection = await asyncpg.connect(database_url)
    try:
        found = await connection.fetchval(
            "SELECT COUNT(*) FROM jobs WHERE owner LIKE $1", f"{world.bot.env['INSTANCE_NAME']}-{world.bot.pid}-%"
        )
    finally:
        await connection.close()
    return int(found)


def takeovers(world: World) -> list[tuple[float, int]]:
    """(when, how many jobs) of each take-over the process logged, as epoch seconds."""
    found = []
    for stamp, count in LOG_TIME.findall(world.bot.output):
        found.append((datetime.strptime(stamp, "%Y-%m-%d %H:%M:%S,%f").timestamp(), int(count)))
    return found


async def test_a_killed_process_s_jobs_are_delivered_once_by_the_other_and_never_again(
    sharded: tuple[FakeDiscord, FakeFlux], database_url: str, tmp_path: Path
) -> None:
    discord, flux = sharded
    flux.hold = True
    guilds = [guild_on_shard(discord, 0, 2), guild_on_shard(discord, 1, 2)]
    envs = shard_envs(2)
    async with running_bots(discord, flux, tmp_path, *envs, DATABASE_URL=database_url, DEV_GUILD_ID="") as both:
        killed, survivor = both
        sent = [
            await discord.send_slash_command(
                "imagine", [option("prompt", f"fail over {i}")], user_id=FIRST_MEMBER + i, guild_id=guilds[i % 2]
            )
            for i in range(6)
        ]
        await asyncio.gather(*(final_reply(w, s, "Flux is working on it") for w, s in zip(both * 3, sent, strict=True)))
        assert len(flux.submits) == 6

        # Claims are global: a process may have claimed a job whose command the other one took.
        owned = await jobs_owned_by(database_url, killed)
        assert 1 <= owned <= 5
        killed_at = time.time()
        await killed.bot.kill()
        for task_id in list(flux.tasks):
            flux.finish(task_id)
        await asyncio.gather(*(final_reply(survivor, s, "Done", timeout=TAKEOVER_LIMIT + 15) for s in sent))
        [(taken_at, count)] = [t for t in takeovers(survivor) if t[0] >= killed_at]
        print(f"\nfailover: {count} job(s) taken over {taken_at - killed_at:.1f} s after the SIGKILL")
        assert count == owned, "every job the killed process had"
        assert taken_at - killed_at <= TAKEOVER_LIMIT
        assert [results_shown(discord, s) for s in sent] == [1] * 6, "each delivered once, on its own reply"

        requests_before = len(discord.requests)
        await killed.start()  # the same shard again, a new run
        await asyncio.sleep(7)  # past a look for orphans on both processes
        assert len(flux.submits) == 6, "nothing submitted again"
        assert [results_shown(discord, s) for s in sent] == [1] * 6, "nothing delivered again"
        edits = [r for r in discord.requests[requests_before:] if r.method == "PATCH"]
        assert edits == [], "no reply touched after the restart"
        assert takeovers(killed) == [], "nothing left to take over"
        syncs = [r for r in discord.requests if r.method == "PUT" and r.path.endswith("/commands")]
        assert len(syncs) == 1, "three starts, one command sync: the definitions did not change"
        print(f"failover: after the restart, {len(flux.submits)} submits and one result per reply")


def card_title(discord: FakeDiscord, interaction: SentInteraction) -> str:
    """The title of the reply's first embed ("" for a plain message, such as a refusal)."""
    embeds = (discord.original_response(interaction) or {}).get("embeds") or [{}]
    return str(embeds[0].get("title", ""))


async def test_limits_and_the_line_hold_for_both_processes_together(
    sharded: tuple[FakeDiscord, FakeFlux], database_url: str, tmp_path: Path
) -> None:
    discord, flux = sharded
    flux.hold = True
    guilds = [guild_on_shard(discord, 0, 2), guild_on_shard(discord, 1, 2)]
    settings = {"DATABASE_URL": database_url, "DEV_GUILD_ID": "", "MAX_JOBS_PER_MEMBER": "3", "MAX_JOBS_IN_FLIGHT": "4"}
    async with running_bots(discord, flux, tmp_path, *shard_envs(2), **settings) as both:
        ten = await asyncio.gather(
            *(
                discord.send_slash_command("imagine", [option("prompt", f"mine {i}")], guild_id=guilds[i % 2])
                for i in range(10)
            )
        )
        await discord.wait_for(lambda: all(discord.callbacks_for(s) for s in ten), timeout=10)
        await discord.wait_for(lambda: len(flux.submits) >= 3, timeout=10)
        await asyncio.sleep(1)
        admitted = [s for s in ten if card_title(discord, s)]
        assert len(admitted) == 3, [card_title(discord, s) for s in ten]
        assert len(flux.submits) == 3, "one member, ten commands at once over two processes: exactly the limit"
        assert {s.payload["guild_id"] for s in ten} == {str(g) for g in guilds}

        # Six more members, one after the other, alternating processes: one free slot, then a line.
        others = []
        for i in range(6):
            others.append(
                await discord.send_slash_command(
                    "imagine", [option("prompt", f"other {i}")], user_id=FIRST_MEMBER + i, guild_id=guilds[i % 2]
                )
            )
        await asyncio.sleep(2)
        assert len(flux.submits) == 4, "MAX_JOBS_IN_FLIGHT counts the jobs of both processes"

        started = []
        for _ in range(5):  # free one slot at a time: the oldest in line starts, whichever process has it
            running = [t for t in flux.tasks.values() if t.response is None]
            flux.finish(running[0].id)
            count = len(flux.submits)
            await discord.wait_for(lambda count=count: len(flux.submits) > count, timeout=20)  # type: ignore[misc]
            started.append(str(list(flux.tasks.values())[-1].request["prompt"]))
        assert started == [f"other {i}" for i in range(1, 6)], "the line keeps arrival order across processes"

        for task in flux.tasks.values():
            if task.response is None:
                flux.finish(task.id)
        owner = {str(guilds[0]): both[0], str(guilds[1]): both[1]}
        everyone = [*admitted, *others]
        await asyncio.gather(*(final_reply(owner[s.payload["guild_id"]], s, "Done", timeout=30) for s in everyone))
        assert len(flux.submits) == 9


async def test_a_dm_follows_the_rules_of_a_server_on_another_process_s_shard_changed_there(
    sharded: tuple[FakeDiscord, FakeFlux], database_url: str, tmp_path: Path
) -> None:
    """DMs reach shard 0's process; the member's only server is on shard 1, whose moderators change its rules on
    the other process. The change applies at once (a signal), and its server is known (Discord's REST list)."""
    discord, flux = sharded
    there = guild_on_shard(discord, 1, 2)
    member = FIRST_MEMBER + 77
    discord.set_member(member, [], guild_id=there)
    async with running_bots(discord, flux, tmp_path, *shard_envs(2), DATABASE_URL=database_url, DEV_GUILD_ID=""):
        first = await discord.send_slash_command("imagine", [option("prompt", "a dm")], guild=False, user_id=member)
        await discord.wait_for(lambda: bool(flux.submits), timeout=10)

        dms_off = [{"name": "dms", "type": 1, "options": [option("allowed", False, kind=5)]}]
        changed = await discord.send_slash_command("fluxadmin", dms_off, guild_id=there)
        assert discord.callbacks_for(changed)
        refused = await discord.send_slash_command("imagine", [option("prompt", "again")], guild=False, user_id=member)
        answer = discord.callbacks_for(refused)[0].json
        assert answer["data"]["content"] == (
            f"The moderators of **{discord.guild(there).name}** have turned off fluxbot in direct messages. "
            "Please use me in a channel there."
        )
        assert len(flux.submits) == 1
        assert discord.callbacks_for(first)


async def owner_of(database_url: str, task_id: str) -> str:
    """The run that owns the job of a provider task."""
    connection = await asyncpg.connect(database_url)
    try:
        return str(await connection.fetchval("SELECT owner FROM jobs WHERE task_id = $1", task_id))
    finally:
        await connection.close()


def lookups_of(flux: FakeFlux, task_id: str) -> int:
    """How many lookup calls asked about the task."""
    return sum(1 for body in flux.lookups if task_id in (body.get("ids") or [body.get("id")]))


async def test_a_callback_that_reaches_the_other_process_makes_one_lookup_and_one_delivery(
    sharded: tuple[FakeDiscord, FakeFlux], database_url: str, tmp_path: Path
) -> None:
    """Behind one load balancer a callback may reach either process: the one that got it tells the owner."""
    discord, flux = sharded
    flux.hold, flux.auto_callback = True, False  # the test delivers the callback, to the process it chooses
    ports = [free_port(), free_port()]
    envs = [
        {**env, "CALLBACK_BASE_URL": "http://fluxbot.example.org", "CALLBACK_HOST": "127.0.0.1",
         "CALLBACK_PORT": str(port)}
        for env, port in zip(shard_envs(2), ports, strict=True)
    ]  # fmt: skip
    async with running_bots(discord, flux, tmp_path, *envs, DATABASE_URL=database_url, DEV_GUILD_ID="") as both:
        sent = await discord.send_slash_command(
            "imagine", [option("prompt", "a callback elsewhere")], guild_id=guild_on_shard(discord, 0, 2)
        )
        await final_reply(both[0], sent, "Flux is working on it")
        [task] = flux.tasks.values()
        owner = await owner_of(database_url, task.id)
        other = 1 if owner.startswith("fluxbot-0-") else 0
        flux.finish(task.id)
        url = str(task.request["callback_url"]).replace(
            "http://fluxbot.example.org", f"http://127.0.0.1:{ports[other]}"
        )
        assert await flux.send_callback(task.id, url=url) == 200

        await final_reply(both[0], sent, "Done", timeout=10)
        await asyncio.sleep(1)
        assert lookups_of(flux, task.id) == 1, "the owner looked it up once; the process that got the call did not"
        assert results_shown(discord, sent) == 1
