"""What the database keeps: old jobs folded into usage totals, interaction tokens dropped once Discord's expire."""

from __future__ import annotations

import asyncio
import sqlite3
from dataclasses import replace
from pathlib import Path
from typing import Any

import asyncpg
import pytest

from fluxbot.config import ConfigError, load_settings
from fluxbot.jobs.housekeeping import FORGET_TOKENS_EVERY, PRUNE_EVERY, TOKEN_LIFETIME
from fluxbot.jobs.lifecycle import Job, JobStatus, Outcome, Reply
from fluxbot.jobs.service import Jobs
from fluxbot.limits import Limits
from fluxbot.providers.acedata import AceDataFlux
from fluxbot.providers.base import Image, JobRequest
from fluxbot.storage import Store
from tests.conftest import open_store
from tests.doubles import Clock, RecordingReplier

DAY = 86_400.0
NOW = 1_764_000_000.0  # 2025-11-24 16:00 UTC
OLD = NOW - 100 * DAY  # 2025-08-16
GUILD = 555_000_000_000_000_001
ANYONE = Limits(member_jobs=1000)


def reply(user_id: int, guild_id: int | None = GUILD) -> Reply:
    return Reply(user_id=user_id, guild_id=guild_id, channel_id=8, application_id=9, interaction_token=f"tok-{user_id}",
                 message_id=1)  # fmt: skip


async def job(store: Store, user: int, *, at: float, count: int = 1, ends: JobStatus | None = JobStatus.SUCCEEDED,
              guild: int | None = GUILD, model: str = "flux-dev") -> Job:  # fmt: skip
    request = JobRequest("generate", "a lighthouse", model, "1024x1024", count=count)
    made = await store.admit("acedata", request, reply(user, guild), limits=ANYONE, now=at)
    assert made is not None
    if ends is not None:
        images = tuple(Image(f"https://img.test/{made.id}-{n}.png") for n in range(count))
        outcome = Outcome(ends, images=images if ends is JobStatus.SUCCEEDED else (), message="done")
        assert await store.finish(made.id, outcome, now=at + 10)
    return made


async def totals(location: tuple[str, Path | str]) -> list[tuple[Any, ...]]:
    """The usage_totals table, read straight from the database (both engines)."""
    engine, where = location
    query = "SELECT guild_id, user_id, day, model, jobs, images, failed FROM usage_totals ORDER BY 1, 2, 3, 4"
    if engine == "sqlite":
        with sqlite3.connect(Path(where) / "jobs.db") as file:
            return [tuple(row) for row in file.execute(query)]
    server = await asyncpg.connect(str(where))
    try:
        return [tuple(row) for row in await server.fetch(query)]
    finally:
        await server.close()


async def test_old_finished_jobs_are_folded_into_totals_and_deleted(
    store: Store, store_location: tuple[str, Path | str]
) -> None:
    kept_open = await job(store, 1, at=OLD, ends=None)  # never finished: not pruned, whatever its age
    gone = [
        await job(store, 1, at=OLD, count=2),
        await job(store, 1, at=OLD + 60, ends=JobStatus.FAILED),
        await job(store, 1, at=OLD + 120, ends=JobStatus.TIMED_OUT),
        await job(store, 2, at=OLD + 180, guild=None),  # a DM job without a server's rules
    ]
    recent = await job(store, 1, at=NOW - DAY)
    await store.meta.set("kept", "yes")

    assert await store.retention.prune(NOW - 90 * DAY, batch=2) == 2, "one batch at a time"
    assert await store.retention.prune(NOW - 90 * DAY, batch=2) == 2
    assert await store.retention.prune(NOW - 90 * DAY, batch=2) == 0
    for pruned in gone:
        assert await store.get_job(pruned.id) is None
    assert [(await store.get_job(j.id)) is not None for j in (kept_open, recent)] == [True, True]
    assert await store.meta.get("kept") == "yes"
    assert await totals(store_location) == [
        (0, 2, "2025-08-16", "flux-dev", 1, 1, 0),
        (GUILD, 1, "2025-08-16", "flux-dev", 3, 3, 2),  # a timed-out job's images count, as the budgets count them
    ]

    later = await job(store, 1, at=OLD + 240, model="flux-pro")
    same_day = await job(store, 1, at=OLD + 300, count=3)
    assert await store.retention.prune(NOW - 90 * DAY) == 2
    assert [(await store.get_job(j.id)) for j in (later, same_day)] == [None, None]
    assert await totals(store_location) == [
        (0, 2, "2025-08-16", "flux-dev", 1, 1, 0),
        (GUILD, 1, "2025-08-16", "flux-dev", 4, 6, 2),
        (GUILD, 1, "2025-08-16", "flux-pro", 1, 1, 0),
    ]


async def test_tokens_are_dropped_once_discord_has_expired_them(store: Store) -> None:
    old = await job(store, 1, at=NOW - TOKEN_LIFETIME - 60, ends=None)
    fresh = await job(store, 2, at=NOW - 60)
    assert await store.retention.forget_tokens(NOW - TOKEN_LIFETIME) == 1
    assert await store.retention.forget_tokens(NOW - TOKEN_LIFETIME) == 0, "nothing left to drop"
    dropped, kept = await store.get_job(old.id), await store.get_job(fresh.id)
    assert dropped is not None
    assert kept is not None
    assert (dropped.reply.interaction_token, kept.reply.interaction_token) == ("", "tok-2")
    assert replace(dropped.reply, interaction_token="tok-1") == old.reply, "nothing else about the reply changes"


async def test_two_processes_pruning_at_once_count_each_job_once(database_url: str) -> None:
    first = await open_store("postgres", database_url, instance="a")
    second = await open_store("postgres", database_url, instance="b")
    try:
        for n in range(40):
            await job(first, 1, at=OLD + n)
        pruned = await asyncio.gather(*(s.retention.prune(NOW - 90 * DAY, batch=3) for s in (first, second) * 5))
        while (more := await first.retention.prune(NOW - 90 * DAY, batch=3)) > 0:
            pruned.append(more)
        assert sum(pruned) == 40
        assert await totals(("postgres", database_url)) == [(GUILD, 1, "2025-08-16", "flux-dev", 40, 40, 0)]
    finally:
        await first.close()
        await second.close()


async def test_housekeeping_runs_on_its_own_schedule(store: Store, client: AceDataFlux, clock: Clock) -> None:
    clock.now = NOW
    service = Jobs(store, client, RecordingReplier(), poll_interval=3, job_timeout=600, clock=clock,
                   retention_days=90)  # fmt: skip
    old = await job(store, 1, at=OLD)
    talking = await job(store, 2, at=NOW - TOKEN_LIFETIME - 1, ends=None)
    await service.round()
    assert await store.get_job(old.id) is None, "pruned at the first round"
    current = await store.get_job(talking.id)
    assert current is not None
    assert current.reply.interaction_token == ""

    newer = await job(store, 3, at=clock.now - TOKEN_LIFETIME + 30, ends=None)
    clock.now += 40  # its token is now past Discord's lifetime, but the next drop is not due yet
    await service.round()
    assert (await _token(store, newer.id)) == "tok-3"
    clock.now += FORGET_TOKENS_EVERY
    await service.round()
    assert (await _token(store, newer.id)) == ""

    again = await job(store, 4, at=OLD)
    clock.now += PRUNE_EVERY / 2
    await service.round()
    assert await store.get_job(again.id) is not None, "pruning runs hourly"
    clock.now += PRUNE_EVERY / 2
    await service.round()
    assert await store.get_job(again.id) is None


async def test_without_a_retention_nothing_is_pruned(store: Store, client: AceDataFlux) -> None:
    service = Jobs(store, client, RecordingReplier(), poll_interval=3, job_timeout=600, clock=lambda: NOW)
    old = await job(store, 1, at=OLD)
    await service.round()
    assert await store.get_job(old.id) is not None


def test_the_retention_is_zero_or_at_least_32_days() -> None:
    base = {"DISCORD_TOKEN": "t", "ACEDATA_API_TOKEN": "k", "DATABASE_URL": "postgresql://u@h/db"}
    assert load_settings(base, None).job_retention_days == 90
    assert load_settings({**base, "JOB_RETENTION_DAYS": "0"}, None).job_retention_days == 0
    assert load_settings({**base, "JOB_RETENTION_DAYS": "32"}, None).job_retention_days == 32
    with pytest.raises(
        ConfigError, match=r"^JOB_RETENTION_DAYS: expects 0 \(keep every job\) or at least 32 days, got 7$"
    ):
        load_settings({**base, "JOB_RETENTION_DAYS": "7"}, None)


async def _token(store: Store, job_id: int) -> str:
    found = await store.get_job(job_id)
    assert found is not None
    return found.reply.interaction_token
