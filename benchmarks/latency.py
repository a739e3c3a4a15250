"""Sections A, B and D: how soon a finished task reaches the member, how many lookups that takes, and idling."""

from __future__ import annotations

import asyncio
import random
import time
from dataclasses import dataclass
from pathlib import Path

import aiohttp

from benchmarks.harness import (
    SEED,
    Watch,
    bot,
    callback_env,
    commands,
    completion_latencies,
    durations,
    job_number,
    knobs,
    timed_by,
)
from tests.fakes.flux_api import FakeFlux

#: How often the provider's own SDK polls one task.
SDK_INTERVAL = 3.0
#: Task durations of sections A and B, in seconds.
SHORTEST, LONGEST = 2.0, 20.0
#: Everything a section waits for comes well within this.
PATIENCE = 180.0


@dataclass
class Run:
    """One scenario's figures: completion → member latencies, provider lookups, deliveries."""

    latencies: list[float]
    lookups: int
    jobs: int
    delivered: int
    settings: str = ""

    @property
    def lookups_per_job(self) -> float:
        """Provider lookup calls (a batched lookup counts once) per job."""
        return self.lookups / self.jobs


async def bot_polling(tmp: Path, seconds: list[float], spread: float) -> Run:
    """The bot in polling mode: command i's task takes seconds[i]; commands spread over `spread` seconds."""
    async with bot(tmp, MAX_JOBS_IN_FLIGHT="1000") as world:
        world.flux.hold = True
        world.flux.task_seconds = timed_by(seconds)
        watch = Watch(world)
        sent = await commands(world, len(seconds), spread, "polling")
        delivered = await watch.wait_delivered(sent, PATIENCE)
        lookups = len(world.flux.lookups)
        latencies = completion_latencies(world.flux, sent, delivered, lambda _: True)
        return Run(latencies, lookups, len(sent), len(delivered), knobs(world.bot.env))


async def sdk_polling(seconds: list[float], spread: float) -> Run:
    """One coroutine per job that submits, then looks its task up every 3 s, like the provider's SDK."""
    flux = FakeFlux()
    flux.hold = True
    flux.task_seconds = timed_by(seconds)
    await flux.start()
    headers = {"authorization": f"Bearer {flux.token}"}
    seen: dict[str, float] = {}
    begin = time.monotonic()
    try:
        async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=0)) as session:

            async def sdk_job(i: int) -> None:
                await asyncio.sleep(max(0.0, begin + i * spread / len(seconds) - time.monotonic()))
                body = {"action": "generate", "prompt": f"sdk {i}", "size": "1024x1024", "async": True}
                async with session.post(f"{flux.base_url}/flux/images", json=body, headers=headers) as resp:
                    task_id = str((await resp.json())["task_id"])
                while True:
                    await asyncio.sleep(SDK_INTERVAL)
                    lookup = {"action": "retrieve", "id": task_id}
                    async with session.post(f"{flux.base_url}/flux/tasks", json=lookup, headers=headers) as resp:
                        if "response" in await resp.json():
                            seen[task_id] = time.monotonic()
                            return

            await asyncio.wait_for(asyncio.gather(*(sdk_job(i) for i in range(len(seconds)))), PATIENCE)
        latencies = [at - done for task_id, at in seen.items() if (done := flux.tasks[task_id].done_at) is not None]
        return Run(latencies, len(flux.lookups), len(seconds), len(seen))
    finally:
        await flux.close()


async def polling(tmp: Path, jobs: int, spread: float) -> tuple[Run, Run]:
    """Section A: the bot and the SDK-like poller side by side, at the same time, on the same task durations."""
    seconds = durations(jobs, SHORTEST, LONGEST)
    ours, sdk = await asyncio.gather(bot_polling(tmp, seconds, spread), sdk_polling(seconds, spread))
    return ours, sdk


async def callbacks(tmp: Path, jobs: int, spread: float, lost: float) -> tuple[Run, Run]:
    """Section B: the bot with a callback URL; the fake provider loses the callback of a share `lost` of tasks.

    Returns the figures of the tasks whose callback was lost and of those whose callback came.
    """
    seconds = durations(jobs, SHORTEST, LONGEST, salt=1)
    losing = set(random.Random(SEED + 2).sample(range(jobs), round(jobs * lost)))
    async with bot(tmp, MAX_JOBS_IN_FLIGHT="1000", **callback_env()) as world:
        world.flux.hold = True
        world.flux.task_seconds = timed_by(seconds)
        world.flux.loses_callback = lambda task: job_number(task) in losing
        watch = Watch(world)
        sent = await commands(world, jobs, spread, "callback")
        delivered = await watch.wait_delivered(sent, PATIENCE)
        lookups, settings = len(world.flux.lookups), knobs(world.bot.env)

        def run(group: set[int]) -> Run:
            latencies = completion_latencies(world.flux, sent, delivered, lambda n: n in group)
            done = sum(1 for n, s in enumerate(sent) if n in group and s.token in delivered)
            return Run(latencies, lookups, jobs, done, settings)

        return run(losing), run(set(range(jobs)) - losing)


async def idle(tmp: Path, seconds: float) -> tuple[int, int, str]:
    """Section D: provider calls over `seconds` with nothing pending, after a few jobs ran to the end.

    Returns (calls while idle, jobs delivered before, settings).
    """
    async with bot(tmp) as world:
        world.flux.hold = True
        world.flux.task_seconds = timed_by([2.0, 3.0, 4.0])
        watch = Watch(world)
        sent = await commands(world, 3, 0, "idle")
        delivered = await watch.wait_delivered(sent, 60)
        await asyncio.sleep(1.0)  # the last delivery's bookkeeping settles
        before = len(world.flux.requests)
        await asyncio.sleep(seconds)
        return len(world.flux.requests) - before, len(delivered), knobs(world.bot.env)
