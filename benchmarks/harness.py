"""What every benchmark section shares: a bot against fresh fakes, commands, and reading what reached the fakes.

The benchmark only talks to the bot through the fakes (and starts, kills and stops its process), so it runs
unchanged on any version of the bot in the worktree.
"""

from __future__ import annotations

import asyncio
import math
import os
import random
import re
import time
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path

from tests.botprocess import BotProcess
from tests.e2e import World, bot_env, free_port
from tests.fakes.discord_api import FakeDiscord, SentInteraction
from tests.fakes.flux_api import FakeFlux, FakeTask

#: The e2e tests' fast polling and DEBUG logs, taken out (an empty value is not passed): every bot of the
#: benchmark runs with the shipped defaults, except what its section sets and states.
BASE = {"POLL_INTERVAL_SECONDS": "", "LOG_LEVEL": ""}
#: The settings the report states for every figure.
KNOBS = ("MAX_JOBS_IN_FLIGHT", "MAX_JOBS_PER_MEMBER", "LOG_LEVEL", "POLL_INTERVAL_SECONDS")
SEED = 20240601
#: Discord's limit for answering an interaction.
ACK_LIMIT = 3.0
FIRST_MEMBER = 10**17
WEBHOOK_MESSAGE = re.compile(r"/webhooks/\d+/([^/]+)/messages/")
CHANNEL_POST = re.compile(r"/channels/\d+/messages$")
INTERACTION_CALLBACK = re.compile(r"/interactions/(\d+)/[^/]+/callback$")
MENTION = re.compile(r"<@!?(\d+)>")
TRAILING_NUMBER = re.compile(r"(\d+)\s*$")


def pct(values: list[float], p: float) -> float:
    """The p-th percentile (nearest rank)."""
    ordered = sorted(values)
    return ordered[max(0, math.ceil(p / 100 * len(ordered)) - 1)]


def ms(values: list[float], *, worst: bool = False) -> str:
    """p50 and p99 (and the maximum, when asked) in milliseconds, with the sample size."""
    if not values:
        return "no samples"
    text = f"p50 {pct(values, 50) * 1000:7.1f} ms   p99 {pct(values, 99) * 1000:7.1f} ms"
    if worst:
        text += f"   max {max(values) * 1000:7.1f} ms"
    return f"{text}   (n={len(values)})"


def ratio(ours: float, theirs: float) -> str:
    """ours / theirs, or "n/a" when theirs is zero."""
    return f"{ours / theirs:.3f}" if theirs else "n/a"


def proc_usage(pid: int) -> tuple[float, float]:
    """(peak resident MiB, CPU seconds) of a process, from /proc."""
    status = Path(f"/proc/{pid}/status").read_text()
    peak_kib = next(int(line.split()[1]) for line in status.splitlines() if line.startswith("VmHWM:"))
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    ticks = os.sysconf("SC_CLK_TCK")
    return peak_kib / 1024, (int(fields[11]) + int(fields[12])) / ticks


def knobs(env: dict[str, str]) -> str:
    """The report's settings line for a bot started with `env`."""
    shown = [f"{name}={env.get(name, '(default)')}" for name in KNOBS]
    shown.append("callbacks=" + ("on" if env.get("CALLBACK_BASE_URL") else "off"))
    return "settings: " + ", ".join(shown)


def callback_env() -> dict[str, str]:
    """Settings that make the bot take provider callbacks on a free loopback port (as the e2e tests do)."""
    port = free_port()
    return {"CALLBACK_BASE_URL": f"http://127.0.0.1:{port}", "CALLBACK_HOST": "127.0.0.1", "CALLBACK_PORT": str(port)}


def durations(n: int, low: float, high: float, salt: int = 0) -> list[float]:
    """n task durations spread uniformly over [low, high] seconds, the same every run."""
    rng = random.Random(SEED + salt)
    return [rng.uniform(low, high) for _ in range(n)]


def job_number(task: FakeTask) -> int | None:
    """Which command a task came from: the number its prompt ends with."""
    found = TRAILING_NUMBER.search(str(task.request.get("prompt", "")))
    return int(found[1]) if found else None


def timed_by(seconds: list[float]) -> Callable[[FakeTask], float | None]:
    """A `FakeFlux.task_seconds` that gives command i's task seconds[i]."""

    def task_seconds(task: FakeTask) -> float | None:
        number = job_number(task)
        return seconds[number] if number is not None and number < len(seconds) else None

    return task_seconds


@asynccontextmanager
async def bot(tmp: Path, **env: str) -> AsyncIterator[World]:
    """Fresh fakes and a started bot, with `BASE` and `env` over the shipped defaults."""
    tmp.mkdir(parents=True, exist_ok=True)  # noqa: ASYNC240 - once, before anything runs
    discord, flux = FakeDiscord(), FakeFlux()
    await discord.start()
    await flux.start()
    process = BotProcess(bot_env(discord, flux, tmp, **{**BASE, **env}), tmp)
    try:
        await process.start()
        await discord.wait_ready(timeout=60)
        await discord.wait_for(lambda: bool(discord.commands.get(str(discord.guild_id))), timeout=60)
        yield World(discord, flux, process)
    finally:
        await process.stop()
        await flux.close()
        await discord.close()


async def commands(world: World, n: int, seconds: float, prompt: str) -> list[SentInteraction]:
    """n /imagine commands from n members, evenly spread over `seconds` (all at once for 0); command i ends in i."""
    begin = time.monotonic()

    async def one(i: int) -> SentInteraction:
        await asyncio.sleep(max(0.0, begin + i * seconds / n - time.monotonic()))
        options = [{"name": "prompt", "type": 3, "value": f"{prompt} {i}"}]
        return await world.discord.send_slash_command("imagine", options, user_id=FIRST_MEMBER + i, wait_for_ack=False)

    return list(await asyncio.gather(*(one(i) for i in range(n))))


async def until(condition: Callable[[], bool], timeout: float, *, step: float = 0.01) -> bool:
    """Wait until `condition` holds or `timeout` passed; whether it holds."""
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            return False
        await asyncio.sleep(step)
    return True


def member_of(sent: SentInteraction) -> int:
    """The member who sent an interaction."""
    user = (sent.payload.get("member") or {}).get("user") or sent.payload.get("user") or {}
    return int(user["id"])


@dataclass
class Watch:
    """Reads the fake Discord's requests as they arrive: deferrals, message edits, and when each result landed."""

    world: World
    seen: int = 0
    #: Message edits (PATCH of channel and webhook messages).
    edits: int = 0

    def __post_init__(self) -> None:
        self.seen = len(self.world.discord.requests)
        #: Interaction id -> time.monotonic() its first callback (the deferral) reached the fake Discord.
        self.acks: dict[int, float] = {}
        #: Interaction token -> when its reply was first edited into the result.
        self.results: dict[str, float] = {}
        #: Member id -> when a channel post with their result arrived (when the reply could not be edited).
        self.posts: dict[int, float] = {}

    def update(self) -> None:
        """Read the requests that arrived since the last call."""
        requests = self.world.discord.requests
        for r in requests[self.seen :]:
            callback = INTERACTION_CALLBACK.search(r.path) if r.method == "POST" else None
            if callback is not None:
                self.acks.setdefault(int(callback[1]), r.received_at)
                continue
            if r.method == "PATCH" and "/messages/" in r.path:
                self.edits += 1
            if r.status != 200 or not isinstance(r.json, dict):
                continue
            embeds = r.json.get("embeds") or [{}]
            is_result = str(embeds[0].get("title", "")).startswith("✅")
            token = WEBHOOK_MESSAGE.search(r.path)
            if r.method == "PATCH" and token is not None and is_result:
                self.results.setdefault(token[1], r.received_at)
            elif r.method == "POST" and CHANNEL_POST.search(r.path) and is_result:
                for member in MENTION.findall(str(r.json.get("content", ""))):
                    self.posts.setdefault(int(member), r.received_at)
        self.seen = len(requests)

    def delivered(self, sent: list[SentInteraction]) -> dict[str, float]:
        """Interaction token -> when its result reached the fake Discord, for the jobs delivered so far."""
        self.update()
        found: dict[str, float] = {}
        for s in sent:
            at = self.results.get(s.token, self.posts.get(member_of(s)))
            if at is not None:
                found[s.token] = at
        return found

    def deferred(self, sent: list[SentInteraction]) -> dict[int, float]:
        """Interaction id -> seconds from its INTERACTION_CREATE to its first callback, for those answered."""
        self.update()
        return {s.id: self.acks[s.id] - s.sent_at for s in sent if s.id in self.acks}

    async def wait_delivered(self, sent: list[SentInteraction], timeout: float) -> dict[str, float]:
        """Wait (at most `timeout`) until every job of `sent` was delivered; those delivered."""
        await until(lambda: len(self.delivered(sent)) == len(sent), timeout, step=0.05)
        return self.delivered(sent)


def task_by_command(flux: FakeFlux) -> dict[int, FakeTask]:
    """Command number -> the provider task it made."""
    return {n: t for t in flux.tasks.values() if (n := job_number(t)) is not None}


def completion_latencies(
    flux: FakeFlux, sent: list[SentInteraction], delivered: dict[str, float], which: Callable[[int], bool]
) -> list[float]:
    """Seconds from each task's end to its result reaching Discord, for the delivered commands `which` picks."""
    tasks = task_by_command(flux)
    latencies = []
    for number, s in enumerate(sent):
        task = tasks.get(number)
        if which(number) and task is not None and task.done_at is not None and s.token in delivered:
            latencies.append(delivered[s.token] - task.done_at)
    return latencies
