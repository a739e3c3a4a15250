"""fluxbot benchmark: the real bot process against the fakes on loopback; prints figures, asserts nothing.

Run: .venv/bin/python -m benchmarks.run            (about two minutes)
"""

from __future__ import annotations

import argparse
import asyncio
import math
import os
import platform
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


def pct(values: list[float], p: float) -> float:
    """The p-th percentile (nearest rank)."""
    ordered = sorted(values)
    return ordered[max(0, math.ceil(p / 100 * len(ordered)) - 1)]


def ms(values: list[float]) -> str:
    return f"p50 {pct(values, 50) * 1000:7.1f} ms   p99 {pct(values, 99) * 1000:7.1f} ms   (n={len(values)})"


def proc_usage(pid: int) -> tuple[float, float]:
    """(peak resident MiB, CPU seconds) of a process, from /proc."""
    status = Path(f"/proc/{pid}/status").read_text()
    peak_kib = next(int(line.split()[1]) for line in status.splitlines() if line.startswith("VmHWM:"))
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    ticks = os.sysconf("SC_CLK_TCK")
    return peak_kib / 1024, (int(fields[11]) + int(fields[12])) / ticks


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


def done_at(world: World, interaction: SentInteraction) -> float | None:
    """When the reply was edited into the result."""
    for r in world.discord.requests:
        if r.method == "PATCH" and interaction.token in r.path and r.status == 200 and isinstance(r.json, dict):
            embeds = r.json.get("embeds") or []
            if embeds and str(embeds[0].get("title", "")).startswith("✅"):
                return r.received_at
    return None


async def acknowledgement(tmp: Path) -> list[float]:
    async with bot(tmp) as world:
        world.flux.hold = True
        sent = await burst(world, 200, "ack")
        await until(lambda: all(world.discord.callbacks_for(s) for s in sent), 60, "acks")
        return [world.discord.callbacks_for(s)[0].received_at - s.sent_at for s in sent]


async def completion_to_delivery(tmp: Path, **env: str) -> tuple[list[float], int]:
    async with bot(tmp, **env) as world:
        world.flux.hold = True
        sent = await burst(world, 50, "delivery")
        await until(lambda: len(world.flux.submits) == 50, 60, "submits")
        await asyncio.sleep(1.0)
        finished: dict[str, float] = {}
        for task_id in list(world.flux.tasks):
            world.flux.finish(task_id)
            finished[task_id] = time.monotonic()
        await until(lambda: all(done_at(world, s) is not None for s in sent), 60, "deliveries")
        by_prompt = {t.request["prompt"]: t.id for t in world.flux.tasks.values()}
        latencies = []
        for i, s in enumerate(sent):
            delivered = done_at(world, s)
            assert delivered is not None
            latencies.append(delivered - finished[by_prompt[f"delivery {i}"]])
        return latencies, len(world.flux.requests)


async def calls_per_job(tmp: Path, jobs: int, seconds: float) -> tuple[float, float]:
    """Provider calls per job for fluxbot and for an SDK-style client polling each job every 3 s."""
    async with bot(tmp, POLL_INTERVAL_SECONDS="3") as world:
        world.flux.hold = True
        sent = await burst(world, jobs, "calls")
        await until(lambda: len(world.flux.submits) == jobs, 60, "submits")
        await asyncio.sleep(seconds)
        for task_id in list(world.flux.tasks):
            world.flux.finish(task_id)
        await until(lambda: all(done_at(world, s) is not None for s in sent), 60, "deliveries")
        ours = len(world.flux.requests) / jobs

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
    return ours, baseline


async def in_flight(tmp: Path, jobs: int, seconds: float) -> tuple[float, float, float, float]:
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
        return idle_mem, idle_cpu, mem, cpu


async def resume(tmp: Path, jobs: int) -> tuple[float, float]:
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
    return resumed, first_round


async def main(quick: bool) -> None:
    scale = 0.2 if quick else 1.0
    print(f"fluxbot benchmark · Python {platform.python_version()} · {platform.machine()} · {os.cpu_count()} cores")
    with tempfile.TemporaryDirectory() as tmp_dir:
        tmp = Path(tmp_dir)
        acks = await acknowledgement(tmp / "ack")
        print(f"acknowledgement, burst of 200 commands:      {ms(acks)}")
        polled, _ = await completion_to_delivery(tmp / "poll", POLL_INTERVAL_SECONDS="3")
        print(f"completion → delivery, polling every 3 s:    {ms(polled)}")
        port = free_port()
        called, _ = await completion_to_delivery(
            tmp / "callback", POLL_INTERVAL_SECONDS="3", CALLBACK_BASE_URL=f"http://127.0.0.1:{port}",
            CALLBACK_HOST="127.0.0.1", CALLBACK_PORT=str(port),
        )  # fmt: skip
        print(f"completion → delivery, callbacks:            {ms(called)}")
        jobs, seconds = int(100 * scale) or 20, 30 * scale or 6
        ours, baseline = await calls_per_job(tmp / "calls", jobs, seconds)
        print(
            f"provider calls per job ({jobs} jobs of ~{seconds:.0f} s): fluxbot {ours:.2f}, "
            f"per-job polling every 3 s {baseline:.2f}, ratio {baseline / ours:.1f}x fewer"
        )
        load = int(1000 * scale) or 200
        idle_mem, idle_cpu, mem, cpu = await in_flight(tmp / "load", load, 15)
        print(
            f"{load} jobs in flight for 15 s: peak RSS {mem:.0f} MiB (idle {idle_mem:.0f} MiB, {mem / idle_mem:.2f}x), "
            f"CPU {cpu:.1f} s (idle start-up {idle_cpu:.1f} s)"
        )
        backlog = int(10_000 * scale)
        resumed, first_round = await resume(tmp / "resume", backlog)
        print(
            f"start-up with {backlog} unfinished jobs: resumed after {resumed:.2f} s, "
            f"all looked up after {first_round:.2f} s ({math.ceil(backlog / 50)} batched lookups)"
        )


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--quick", action="store_true", help="a smaller run (a fifth of the sizes)")
    asyncio.run(main(parser.parse_args().quick))
    sys.exit(0)
