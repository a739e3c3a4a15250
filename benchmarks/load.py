"""Sections C, E, F and G: the bot under many commands, many jobs, and a restart with jobs unfinished."""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass
from pathlib import Path

from benchmarks.harness import ACK_LIMIT, Watch, bot, commands, durations, knobs, proc_usage, timed_by, until

#: Everything a section waits for comes well within this.
PATIENCE = 300.0


@dataclass
class Deferrals:
    """Section C's figures for one burst."""

    latencies: list[float]
    late: int
    delivered: int
    jobs: int
    settings: str


async def deferral(tmp: Path, jobs: int, seconds: float) -> Deferrals:
    """Section C: `jobs` commands from as many members over `seconds`; INTERACTION_CREATE → deferral, deliveries."""
    async with bot(tmp, MAX_JOBS_IN_FLIGHT="1000") as world:
        world.flux.hold = True
        world.flux.task_seconds = timed_by(durations(jobs, 2.0, 20.0, salt=3))
        watch = Watch(world)
        sent = await commands(world, jobs, seconds, "burst")
        await until(lambda: len(watch.deferred(sent)) == len(sent), 2 * ACK_LIMIT + 5, step=0.05)
        latencies = list(watch.deferred(sent).values())
        delivered = await watch.wait_delivered(sent, PATIENCE)
        late = sum(1 for t in latencies if t > ACK_LIMIT) + len(sent) - len(latencies)
        return Deferrals(latencies, late, len(delivered), jobs, knobs(world.bot.env))


async def queue_burst(tmp: Path, jobs: int) -> tuple[float, int, int, str]:
    """Section E: `jobs` commands at once at the shipped in-flight cap, tasks of 2 to 6 s.

    Returns (seconds to the last result, message edits, jobs delivered, settings).
    """
    async with bot(tmp) as world:
        world.flux.hold = True
        world.flux.task_seconds = timed_by(durations(jobs, 2.0, 6.0, salt=4))
        watch = Watch(world)
        sent = await commands(world, jobs, 0, "queue")
        delivered = await watch.wait_delivered(sent, 900)
        took = max(delivered.values(), default=time.monotonic()) - min(s.sent_at for s in sent)
        return took, watch.edits, len(delivered), knobs(world.bot.env)


async def in_flight(tmp: Path, jobs: int, seconds: float) -> tuple[float, float, float, float, str]:
    """Section F: peak RSS and CPU seconds of the bot idle, and with `jobs` jobs in flight for `seconds`."""
    async with bot(tmp, MAX_JOBS_IN_FLIGHT="1000") as world:
        pid = world.bot.pid
        await asyncio.sleep(1)
        idle_mem, idle_cpu = proc_usage(pid)
        world.flux.hold = True
        await commands(world, jobs, 0, "load")
        await until(lambda: len(world.flux.submits) >= jobs, 120)
        await asyncio.sleep(seconds)
        mem, cpu = proc_usage(pid)
        return idle_mem, idle_cpu, mem, cpu, knobs(world.bot.env)


async def restart(tmp: Path, jobs: int) -> tuple[float, float, int, str]:
    """Section G: `jobs` jobs at the provider, the bot SIGKILLed and started again.

    Returns seconds from the new process's start to its gateway login and to every task having been looked up
    once, the lookup calls that took, and the settings.
    """
    async with bot(tmp, MAX_JOBS_IN_FLIGHT="1000") as world:
        world.flux.hold = True
        await commands(world, jobs, 0, "restart")
        await until(lambda: len(world.flux.submits) >= jobs, 120)
        await asyncio.sleep(2)  # the task ids are recorded
        await world.bot.kill()
        task_ids = set(world.flux.tasks)
        first = len(world.flux.requests)
        logins = world.discord.identify_count
        started = time.monotonic()
        await world.bot.start()
        await until(lambda: world.discord.identify_count > logins, 60)
        login = time.monotonic() - started
        looked: set[str] = set()
        lookups = 0

        def all_looked_up() -> bool:
            nonlocal first, lookups
            for r in world.flux.requests[first:]:
                if r.path == "/flux/tasks" and isinstance(r.body, dict):
                    lookups += 1
                    looked.update(str(i) for i in r.body.get("ids") or [r.body.get("id")])
            first = len(world.flux.requests)
            return task_ids <= looked

        await until(all_looked_up, 120)
        return login, time.monotonic() - started, lookups, knobs(world.bot.env)
