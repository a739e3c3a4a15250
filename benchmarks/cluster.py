"""Section H: one process on SQLite against two processes on PostgreSQL, on the same 2-shard fake Discord.

The SQLite process runs both shards; the PostgreSQL processes run shard 0 and shard 1 of 2 on one database.
Commands alternate between a guild on each shard, each from a member of its own, so with PostgreSQL each
process takes half of them (each job then runs on whichever process claims it from the shared queue). Every
scenario has fresh fakes and a fresh database.
"""

from __future__ import annotations

import asyncio
import re
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from benchmarks.harness import (
    ACK_LIMIT,
    BASE,
    CHANNEL_POST,
    FIRST_MEMBER,
    MENTION,
    TRAILING_NUMBER,
    Watch,
    completion_latencies,
    durations,
    knobs,
    member_of,
    timed_by,
    until,
)
from tests.botprocess import BotProcess
from tests.e2e import World, bot_env, free_port, guild_on_shard, shard_envs, sharded_discord, wait_commands
from tests.fakes.discord_api import FakeDiscord, SentInteraction
from tests.fakes.flux_api import FakeFlux
from tests.pgserver import PgServer

ENGINES = ("sqlite", "postgres")
LABELS = {"sqlite": "SQLite ×1", "postgres": "PostgreSQL ×2"}
SHARDS = 2
#: Task durations of the burst and the load, in seconds.
SHORTEST, LONGEST = 2.0, 20.0
TASKS = f"{SHORTEST:.0f}–{LONGEST:.0f} s"
#: Everything a scenario waits for comes well within this.
PATIENCE = 300.0
#: How often a process on PostgreSQL looks for jobs whose owner's lease ran out (the bot's ADOPT_EVERY).
ADOPT_LOOK = 5.0
TOOK_OVER = re.compile(r"^(\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d{3}) .*took over (\d+) job", re.M)
#: prometheus-client writes every value as a float (`15.0`, `1.234567e+06`).
ROUND_TRIPS = re.compile(r"^fluxbot_database_round_trips_total\{[^}]*\} (\S+)$", re.M)
PROVIDER_CALLS = ("/flux/images", "/flux/tasks")


@asynccontextmanager
async def postgres_server() -> AsyncIterator[PgServer]:
    """A real PostgreSQL server with the bot's role and a migrated template, stopped (and removed) at the end."""
    server = PgServer()
    try:
        await asyncio.to_thread(server.start)
        await server.prepare()
        yield server
    finally:
        server.stop()  # not awaited: it runs to the end even when the run is being cancelled (Ctrl-C)


@dataclass
class Cluster:
    """The fakes of one scenario and the bot processes on them: one (SQLite) or one per shard (PostgreSQL)."""

    engine: str
    discord: FakeDiscord
    flux: FakeFlux
    worlds: list[World]
    #: A guild on shard 0, a guild on shard 1.
    guilds: list[int]
    pg: PgServer
    #: The PostgreSQL database's name (None on SQLite).
    database: str | None

    @property
    def settings(self) -> str:
        """The report's settings line: the knobs, then the database and who runs which shards."""
        env = self.worlds[0].bot.env
        shards = " + ".join(w.bot.env["SHARD_IDS"] for w in self.worlds)
        database = "PostgreSQL (one database)" if env.get("DATABASE_URL") else "SQLite file"
        return f"{knobs(env)}, database={database}, shards {shards} of {env['SHARD_COUNT']}"

    async def round_trips(self) -> int:
        """Database round trips so far, summed over the processes (from each one's /metrics)."""
        total = 0
        for world in self.worlds:
            found = ROUND_TRIPS.search(await world.metrics())
            total += int(float(found[1])) if found else 0
        return total

    async def owned_by(self, world: World) -> set[int]:
        """The command numbers of the jobs a process owns (all of them on SQLite), read from the shared database.

        On PostgreSQL a job belongs to the process that claimed it from the shared queue, which need not be
        the one that took the command; the owner is the run's name, `<INSTANCE_NAME>-<pid>-<random>`.
        """
        if self.database is None:
            return set(range(len(self.discord.interactions)))
        admin = await self.pg.admin(self.database)
        try:
            owner = f"{world.bot.env['INSTANCE_NAME']}-{world.bot.pid}-%"
            rows = await admin.fetch("SELECT prompt FROM jobs WHERE owner LIKE $1", owner)
        finally:
            await admin.close()
        return {int(found[1]) for row in rows if (found := TRAILING_NUMBER.search(str(row["prompt"])))}


def sqlite_envs() -> list[dict[str, str]]:
    """One process running both shards."""
    port = str(free_port())
    env = {"SHARD_COUNT": str(SHARDS), "SHARD_IDS": "0,1", "INSTANCE_NAME": "fluxbot-sqlite", "METRICS_PORT": port}
    return [{**env, "METRICS_HOST": "127.0.0.1"}]


@asynccontextmanager
async def cluster(engine: str, tmp: Path, pg: PgServer, **env: str) -> AsyncIterator[Cluster]:
    """Fresh fakes, a fresh database and the engine's processes, started together; all stopped on the way out."""
    tmp.mkdir(parents=True, exist_ok=True)  # noqa: ASYNC240 - once, before anything runs
    discord, flux = sharded_discord(SHARDS), FakeFlux()
    worlds: list[World] = []
    database: str | None = None
    try:
        await discord.start()
        await flux.start()
        if engine == "postgres":
            database = await pg.create_database()
            envs = shard_envs(SHARDS, DATABASE_URL=pg.url(database))
        else:
            envs = sqlite_envs()
        for extra in envs:  # global commands: the two guilds are not one development server
            settings = {**BASE, "DEV_GUILD_ID": "", **extra, **env}
            worlds.append(World(discord, flux, BotProcess(bot_env(discord, flux, tmp, **settings), tmp)))
        await asyncio.gather(*(w.start() for w in worlds))
        await wait_commands(discord, "global")
        guilds = [guild_on_shard(discord, shard, SHARDS) for shard in range(SHARDS)]
        yield Cluster(engine, discord, flux, worlds, guilds, pg, database)
    finally:
        await asyncio.gather(*(w.bot.stop() for w in worlds), return_exceptions=True)
        await flux.close()
        await discord.close()
        if database is not None:
            await pg.drop_database(database)


async def commands(cl: Cluster, n: int, seconds: float, prompt: str) -> list[SentInteraction]:
    """n /imagine commands from n members over `seconds`, alternating guilds (shards); command i ends in i."""
    begin = time.monotonic()

    async def one(i: int) -> SentInteraction:
        await asyncio.sleep(max(0.0, begin + i * seconds / n - time.monotonic()))
        options = [{"name": "prompt", "type": 3, "value": f"{prompt} {i}"}]
        return await cl.discord.send_slash_command(
            "imagine", options, user_id=FIRST_MEMBER + i, guild_id=cl.guilds[i % SHARDS], wait_for_ack=False
        )

    return list(await asyncio.gather(*(one(i) for i in range(n))))


def results_shown(discord: FakeDiscord, sent: list[SentInteraction]) -> list[int]:
    """For each command, how many times its result reached Discord (reply edits and channel posts)."""
    tokens = {s.token: n for n, s in enumerate(sent)}
    members = {member_of(s): n for n, s in enumerate(sent)}
    shown = [0] * len(sent)
    for r in discord.requests:
        if r.status != 200 or not isinstance(r.json, dict):
            continue
        if not str((r.json.get("embeds") or [{}])[0].get("title", "")).startswith("✅"):
            continue
        if r.method == "PATCH":
            for token, n in tokens.items():
                if token in r.path:
                    shown[n] += 1
        elif r.method == "POST" and CHANNEL_POST.search(r.path):
            for member in MENTION.findall(str(r.json.get("content", ""))):
                if int(member) in members:
                    shown[members[int(member)]] += 1
    return shown


@dataclass
class Burst:
    """The burst's figures on one engine."""

    latencies: list[float]
    late: int
    delivered: int
    jobs: int
    settings: str


async def burst(engine: str, tmp: Path, pg: PgServer, jobs: int, seconds: float) -> Burst:
    """`jobs` commands over `seconds`: INTERACTION_CREATE → deferral, and whether every job was delivered."""
    async with cluster(engine, tmp, pg, MAX_JOBS_IN_FLIGHT="1000") as cl:
        cl.flux.hold = True
        cl.flux.task_seconds = timed_by(durations(jobs, SHORTEST, LONGEST, salt=3))
        watch = Watch(cl.worlds[0])  # it reads the fake Discord, which all the processes share
        sent = await commands(cl, jobs, seconds, "burst")
        await until(lambda: len(watch.deferred(sent)) == len(sent), 2 * ACK_LIMIT + 5, step=0.05)
        latencies = list(watch.deferred(sent).values())
        delivered = await watch.wait_delivered(sent, PATIENCE)
        late = sum(1 for t in latencies if t > ACK_LIMIT) + len(sent) - len(latencies)
        return Burst(latencies, late, len(delivered), jobs, cl.settings)


@dataclass
class Load:
    """The polling load's figures on one engine."""

    latencies: list[float]
    provider_calls: int
    round_trips: int
    delivered: int
    jobs: int
    settings: str


async def load(engine: str, tmp: Path, pg: PgServer, jobs: int, spread: float) -> Load:
    """`jobs` jobs of 2 to 20 s (seeded) in polling mode, commands over `spread` s: task end → member, calls per job."""
    async with cluster(engine, tmp, pg, MAX_JOBS_IN_FLIGHT="1000") as cl:
        cl.flux.hold = True
        cl.flux.task_seconds = timed_by(durations(jobs, SHORTEST, LONGEST))
        watch = Watch(cl.worlds[0])
        calls_before, trips_before = len(cl.flux.requests), await cl.round_trips()
        sent = await commands(cl, jobs, spread, "load")
        delivered = await watch.wait_delivered(sent, PATIENCE)
        trips = await cl.round_trips() - trips_before
        calls = sum(1 for r in cl.flux.requests[calls_before:] if r.path in PROVIDER_CALLS)
        latencies = completion_latencies(cl.flux, sent, delivered, lambda _: True)
        return Load(latencies, calls, trips, len(delivered), jobs, cl.settings)


@dataclass
class Failover:
    """The SIGKILL's figures on one engine."""

    #: Seconds from the SIGKILL to the first "took over" line after it (None: none came).
    taken_over: float | None
    #: How many jobs the "took over" lines after the kill name, and how many the killed process owned.
    adopted: int
    owned: int
    #: Seconds from the SIGKILL to the last of the killed process's jobs delivered (None: not all were).
    delivered_after: float | None
    #: Jobs whose result reached Discord exactly once.
    once: int
    jobs: int
    settings: str


def took_over(world: World, since: float) -> list[tuple[float, int]]:
    """(epoch seconds, jobs) of each "took over" line the process logged at or after `since` (epoch)."""
    found = []
    for stamp, count in TOOK_OVER.findall(world.bot.output):
        at = datetime.strptime(stamp, "%Y-%m-%d %H:%M:%S,%f").timestamp()
        if at >= since - 0.001:  # the log's clock is read to the millisecond
            found.append((at, int(count)))
    return found


async def failover(engine: str, tmp: Path, pg: PgServer, jobs: int) -> Failover:
    """`jobs` jobs held at the provider, then a SIGKILL: PostgreSQL's shard-0 process (shard 1's takes over), or
    the SQLite process (started again at once). The tasks all finish at the moment of the kill, so what the
    figures measure is the take-over, not the provider."""
    async with cluster(engine, tmp, pg, MAX_JOBS_IN_FLIGHT="1000") as cl:
        cl.flux.hold = True
        watch = Watch(cl.worlds[0])
        sent = await commands(cl, jobs, 0, "failover")

        def running() -> bool:
            cards = (cl.discord.original_response(s) or {} for s in sent)
            return all(str((c.get("embeds") or [{}])[0].get("title", "")).startswith("🎨") for c in cards)

        await until(running, 120, step=0.05)  # every task id is stored: each card says its job is running
        killed, taker = cl.worlds[0], cl.worlds[-1]  # on SQLite the same process, started again
        its_jobs = [sent[n] for n in sorted(await cl.owned_by(killed))]
        killed_at, killed_mono = time.time(), time.monotonic()
        await killed.bot.kill()
        for task_id in list(cl.flux.tasks):
            cl.flux.finish(task_id)
        if engine == "sqlite":
            await killed.start()
        delivered = await watch.wait_delivered(sent, PATIENCE)
        theirs = [delivered[s.token] for s in its_jobs if s.token in delivered]
        await asyncio.sleep(ADOPT_LOOK + 1)  # past another look for orphans: a job adopted twice would show now
        lines = took_over(taker, killed_at)
        once = sum(1 for count in results_shown(cl.discord, sent) if count == 1)
        return Failover(
            taken_over=lines[0][0] - killed_at if lines else None,
            adopted=sum(count for _, count in lines),
            owned=len(its_jobs),
            delivered_after=max(theirs) - killed_mono if theirs and len(theirs) == len(its_jobs) else None,
            once=once,
            jobs=jobs,
            settings=cl.settings,
        )
