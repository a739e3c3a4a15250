"""fluxbot benchmark: the real bot process against the fakes on loopback; prints figures, asserts nothing.

Run: .venv/bin/python -m benchmarks.run            (about 4 minutes)
     .venv/bin/python -m benchmarks.run --quick    (about 3 minutes: the 300-command queue burst is not scaled)
"""

from __future__ import annotations

import argparse
import asyncio
import math
import os
import platform
import random
import re
import sqlite3
import sys
import tempfile
import time
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from pathlib import Path

import aiohttp

from tests.botprocess import BotProcess
from tests.e2e import World, bot_env, free_port
from tests.fakes.discord_api import FakeDiscord, SentInteraction
from tests.fakes.flux_api import FakeFlux

FAST = {"LOG_LEVEL": "WARNING", "MAX_JOBS_PER_MEMBER": "100", "MAX_JOBS_IN_FLIGHT": "1000"}
#: The settings the report states for every figure.
KNOBS = ("MAX_JOBS_IN_FLIGHT", "MAX_JOBS_PER_MEMBER", "LOG_LEVEL", "POLL_INTERVAL_SECONDS")
SEED = 20240601
WEBHOOK_MESSAGE = re.compile(r"/webhooks/\d+/([^/]+)/messages/")


def pct(values: list[float], p: float) -> float:
    """The p-th percentile (nearest rank)."""
    ordered = sorted(values)
    return ordered[max(0, math.ceil(p / 100 * len(ordered)) - 1)]


def ms(values: list[float]) -> str:
    """p50 and p99 in milliseconds, with the sample size."""
    return f"p50 {pct(values, 50) * 1000:7.1f} ms   p99 {pct(values, 99) * 1000:7.1f} ms   (n={len(values)})"


def proc_usage(pid: int) -> tuple[float, float]:
    """(peak resident MiB, CPU seconds) of a process, from /proc."""
    status = Path(f"/proc/{pid}/status").read_text()
    peak_kib = next(int(line.split()[1]) for line in status.splitlines() if line.startswith("VmHWM:"))
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    ticks = os.sysconf("SC_CLK_TCK")
    return peak_kib / 1024, (int(fields[11]) + int(fields[12])) / ticks


def knobs(env: dict[str, str]) -> str:
    """The report's settings line for a bot started with `env`."""
    return "settings: " + ", ".join(f"{name}={env.get(name, '(default)')}" for name in KNOBS)


class Replies:
    """Reads the fake Discord's requests as they come in: message edits, and when each reply showed its result."""

    def __init__(self, world: World) -> None:
        self._requests = world.discord.requests
        self._seen = len(self._requests)
        #: Message edits (PATCH of channel messages and of webhook messages) since this was made.
        self.edits = 0
        #: Interaction token -> time.monotonic() when its reply was first edited into the result.
        self.results: dict[str, float] = {}

    def update(self) -> dict[str, float]:
        """Read the requests that arrived since the last call; return `results`."""
        for r in self._requests[self._seen :]:
            if r.method != "PATCH" or "/messages/" not in r.path:
                continue
            self.edits += 1
            token = WEBHOOK_MESSAGE.search(r.path)
            if token is None or token[1] in self.results or r.status != 200 or not isinstance(r.json, dict):
                continue
            embeds = r.json.get("embeds") or []
            if embeds and str(embeds[0].get("title", "")).startswith("✅"):
                self.results[token[1]] = r.received_at
        self._seen = len(self._requests)
        return self.results

    async def wait(self, sent: list[SentInteraction], timeout: float) -> None:
        """Wait until every reply in `sent` shows its result."""
        tokens = {s.token for s in sent}
        await until(lambda: tokens <= self.update().keys(), timeout, "results")


@asynccontextmanager
async def bot(tmp: Path, **env: str) -> AsyncIterator[World]:
    """Fresh fakes and a started bot."""
    tmp.mkdir(parents=True, exist_ok=True)  # noqa: ASYNC240 - once, before anything runs
    discord, flux = FakeDiscord(), FakeFlux()
    await discord.start()
    await flux.start()
    process = BotProcess(bot_env(discord, flux, tmp, **{**FAST, **env}), tmp)
    try:
        await process.start()
        await discord.wait_ready(timeout=60)
        await discord.wait_for(lambda: bool(discord.commands.get(str(discord.guild_id))), timeout=60)
        yield World(discord, flux, process)
    finally:
        await process.stop()
        await flux.close()
        await discord.close()


async def burst(world: World, n: int, prompt: str) -> list[SentInteraction]:
    """n /imagine commands from n members at the same instant."""
    return await asyncio.gather(
        *(
            world.discord.send_slash_command(
                "imagine", [{"name": "prompt", "type": 3, "value": f"{prompt} {i}"}], user_id=10**17 + i,
                wait_for_ack=False,
            )
            for i in range(n)
        )
    )  # fmt: skip


async def until(condition: Callable[[], bool], timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise TimeoutError(what)
        await asyncio.sleep(0.01)


async def acknowledgement(tmp: Path) -> tuple[list[float], str]:
    """Seconds from each command of a burst of 200 to its interaction callback."""
    async with bot(tmp) as world:
        world.flux.hold = True
        sent = await burst(world, 200, "ack")
        await until(lambda: all(world.discord.callbacks_for(s) for s in sent), 60, "acks")
        return [world.discord.callbacks_for(s)[0].received_at - s.sent_at for s in sent], knobs(world.bot.env)


async def completion_to_delivery(tmp: Path, jobs: int, **env: str) -> tuple[list[float], str]:
    """Seconds from each task's finish (one at a time, over five poll intervals) to its reply showing the result."""
    async with bot(tmp, **env) as world:
        world.flux.hold = True
        sent = await burst(world, jobs, "delivery")
        await until(lambda: len(world.flux.submits) == jobs, 60, "submits")
        await asyncio.sleep(1.0)
        rng = random.Random(SEED)
        spread = 5 * float(world.bot.env["POLL_INTERVAL_SECONDS"])
        by_prompt = {t.request["prompt"]: t.id for t in world.flux.tasks.values()}
        order = [by_prompt[f"delivery {i}"] for i in range(jobs)]
        rng.shuffle(order)
        moments = sorted(rng.uniform(0, spread) for _ in order)
        replies = Replies(world)
        finished: dict[str, float] = {}
        begin = time.monotonic()
        for task_id, moment in zip(order, moments, strict=True):
            await asyncio.sleep(max(0.0, begin + moment - time.monotonic()))
            world.flux.finish(task_id)
            finished[task_id] = time.monotonic()
        await replies.wait(sent, 60)
        latencies = [replies.results[s.token] - finished[by_prompt[f"delivery {i}"]] for i, s in enumerate(sent)]
        return latencies, knobs(world.bot.env)


async def calls_per_job(tmp: Path, jobs: int, seconds: float) -> tuple[float, float, str]:
    """Provider calls per job for fluxbot (Ace Data, batched lookups) and for an SDK-style client polling every 3 s."""
    async with bot(tmp, POLL_INTERVAL_SECONDS="3") as world:
        world.flux.hold = True
        sent = await burst(world, jobs, "calls")
        await until(lambda: len(world.flux.submits) == jobs, 60, "submits")
        await asyncio.sleep(seconds)
        replies = Replies(world)
        for task_id in list(world.flux.tasks):
            world.flux.finish(task_id)
        await replies.wait(sent, 60)
        ours = len(world.flux.requests) / jobs
        settings = knobs(world.bot.env)

    flux = FakeFlux()
    flux.hold = True
    await flux.start()
    headers = {"authorization": f"Bearer {flux.token}"}
    try:
        async with aiohttp.ClientSession() as session:

            async def sdk_job(i: int) -> None:
                body = {"action": "generate", "prompt": f"sdk {i}", "size": "1024x1024", "async": True}
                async with session.post(f"{flux.base_url}/flux/images", json=body, headers=headers) as resp:
                    task_id = (await resp.json())["task_id"]
                while True:
                    await asyncio.sleep(3)
                    lookup = {"action": "retrieve", "id": task_id}
                    async with session.post(f"{flux.base_url}/flux/tasks", json=lookup, headers=headers) as resp:
                        if "response" in await resp.json():
                            return

            runs = [asyncio.create_task(sdk_job(i)) for i in range(jobs)]
            await asyncio.sleep(seconds + 0.5)
            for task_id in list(flux.tasks):
                flux.finish(task_id)
            await asyncio.gather(*runs)
        baseline = len(flux.requests) / jobs
    finally:
        await flux.close()
    return ours, baseline, settings


async def queue_burst(tmp: Path, jobs: int) -> tuple[float, int, str]:
    """Seconds from a burst of `jobs` commands at the default in-flight cap to the last result, and the edits made."""
    env = {"MAX_JOBS_IN_FLIGHT": "20", "MAX_JOBS_PER_MEMBER": "100", "POLL_INTERVAL_SECONDS": "3"}
    async with bot(tmp, **env) as world:
        world.flux.lookups_before_done = 1  # a task finishes at its second lookup: about one poll after its submit
        replies = Replies(world)
        sent = await burst(world, jobs, "queue")
        await replies.wait(sent, 900)
        took = max(replies.results[s.token] for s in sent) - min(s.sent_at for s in sent)
        return took, replies.edits, knobs(world.bot.env)


async def in_flight(tmp: Path, jobs: int, seconds: float) -> tuple[float, float, float, float, str]:
    """Peak RSS and CPU seconds of the bot idle, and with `jobs` jobs in flight for `seconds`."""
    async with bot(tmp, POLL_INTERVAL_SECONDS="3") as world:
        pid = world.bot.pid
        await asyncio.sleep(1)
        idle_mem, idle_cpu = proc_usage(pid)
        world.flux.hold = True
        await burst(world, jobs, "load")
        await until(lambda: len(world.flux.submits) == jobs, 120, "submits")
        await asyncio.sleep(seconds)
        mem, cpu = proc_usage(pid)
        return idle_mem, idle_cpu, mem, cpu, knobs(world.bot.env)


async def resume(tmp: Path, jobs: int) -> tuple[float, float, str]:
    """Seconds from process start to the resume log line, and to the first lookup of every job."""
    tmp.mkdir(parents=True, exist_ok=True)  # noqa: ASYNC240 - once, before anything runs
    discord, flux = FakeDiscord(), FakeFlux()
    await discord.start()
    await flux.start()
    env = bot_env(discord, flux, tmp, **{**FAST, "LOG_LEVEL": "INFO", "POLL_INTERVAL_SECONDS": "3"})
    db_path = Path(env["DATABASE_PATH"])
    db_path.parent.mkdir(parents=True, exist_ok=True)
    seeder = BotProcess({**env, "DISCORD_TOKEN": "x"}, tmp)  # runs the migrations, then fails to log in
    await seeder.start()
    await until(lambda: db_path.exists() and "schema version" in seeder.output, 30, "schema")
    await asyncio.sleep(0.5)
    await seeder.kill()
    now = time.time()
    with sqlite3.connect(db_path) as db:
        db.executemany(
            """INSERT INTO jobs (status, action, provider, model, prompt, size, count, user_id, guild_id,
                   channel_id, application_id, interaction_token, message_id, task_id, created_at, submitted_at)
               VALUES ('submitted', 'generate', 'acedata', 'flux-dev', ?, '1024x1024', 1, ?, ?, ?, ?, 'tok',
                       ?, ?, ?, ?)""",
            [(f"seeded {i}", 10**17 + i, discord.guild_id, discord.channel_id, discord.application_id, 10**18 + i,
              f"seeded-task-{i}", now, now) for i in range(jobs)],
        )  # fmt: skip
    process = BotProcess(env, tmp)
    started = time.monotonic()
    await process.start()
    try:
        await until(lambda: "resuming:" in process.output, 120, "resume")
        resumed = time.monotonic() - started
        await until(lambda: len(flux.lookups) >= math.ceil(jobs / 50), 120, "first round")
        first_round = time.monotonic() - started
    finally:
        await process.stop()
        await flux.close()
        await discord.close()
    return resumed, first_round, knobs(env)


async def main(quick: bool) -> None:
    scale = 0.2 if quick else 1.0
    began = time.monotonic()
    print(f"fluxbot benchmark · Python {platform.python_version()} · {platform.machine()} · {os.cpu_count()} cores")
    print("every figure is followed by the bot settings it ran with ((default) = the shipped default)")
    with tempfile.TemporaryDirectory() as tmp_dir:
        tmp = Path(tmp_dir)
        acks, settings = await acknowledgement(tmp / "ack")
        print(f"acknowledgement, burst of 200 commands:      {ms(acks)}")
        print(f"    {settings}")
        spread = "50 tasks finishing one at a time at random moments over 5 poll intervals"
        polled, settings = await completion_to_delivery(tmp / "poll", 50, POLL_INTERVAL_SECONDS="3")
        print(f"completion → delivery, polling every 3 s:    {ms(polled)}")
        print(f"    {settings}; {spread}")
        port = free_port()
        called, settings = await completion_to_delivery(
            tmp / "callback", 50, POLL_INTERVAL_SECONDS="3", CALLBACK_BASE_URL=f"http://127.0.0.1:{port}",
            CALLBACK_HOST="127.0.0.1", CALLBACK_PORT=str(port),
        )  # fmt: skip
        print(f"completion → delivery, callbacks:            {ms(called)}")
        print(f"    {settings}; {spread}")
        queued = 300
        took, edits, settings = await queue_burst(tmp / "queue", queued)
        print(
            f"queue burst at the default cap, {queued} commands: last result after {took:.1f} s, "
            f"{edits} message edits ({edits / queued:.1f} per job)"
        )
        print(f"    {settings}; each task finishes at its second lookup")
        jobs, seconds = int(100 * scale) or 20, 30 * scale or 6
        ours, baseline, settings = await calls_per_job(tmp / "calls", jobs, seconds)
        print(
            f"provider calls per job, Ace Data provider (batched lookups), {jobs} jobs of ~{seconds:.0f} s: "
            f"fluxbot {ours:.2f}, per-job polling every 3 s {baseline:.2f}, ratio {baseline / ours:.1f}x fewer"
        )
        print(f"    {settings}")
        load = int(1000 * scale) or 200
        idle_mem, idle_cpu, mem, cpu, settings = await in_flight(tmp / "load", load, 15)
        print(
            f"{load} jobs in flight for 15 s: peak RSS {mem:.0f} MiB (idle {idle_mem:.0f} MiB, {mem / idle_mem:.2f}x), "
            f"CPU {cpu:.1f} s (idle start-up {idle_cpu:.1f} s)"
        )
        print(f"    {settings}")
        backlog = int(10_000 * scale)
        resumed, first_round, settings = await resume(tmp / "resume", backlog)
        print(
            f"start-up with {backlog} unfinished jobs: resumed after {resumed:.2f} s, "
            f"all looked up after {first_round:.2f} s ({math.ceil(backlog / 50)} batched lookups)"
        )
        print(f"    {settings}")
    print(f"benchmark run time: {time.monotonic() - began:.0f} s")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--quick", action="store_true", help="a smaller run (a fifth of the sizes)")
    asyncio.run(main(parser.parse_args().quick))
    sys.exit(0)
