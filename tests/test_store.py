"""The store's state transitions on a real SQLite file."""

from __future__ import annotations

import asyncio
import logging
import sqlite3
import threading
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest

from fluxbot.jobs.lifecycle import FailureKind, Job, JobStatus, JobTask, Outcome, Reply, Transition
from fluxbot.jobs.service import NO_LIMITS
from fluxbot.providers.base import Image, JobRequest
from fluxbot.storage import SQLiteStore, Store, sqlite_engine
from fluxbot.storage.sqlite_engine import DatabaseInUse
from fluxbot.storage.sqlite_schema import MIGRATIONS, SchemaTooNew
from tests.conftest import earlier_run

REQUEST = JobRequest("generate", "a white siamese cat", "flux-dev", "1024x1024", count=2)
REPLY = Reply(user_id=42, guild_id=7, channel_id=8, application_id=9, interaction_token="interaction-token-secret",
              message_id=1001)  # fmt: skip


async def create(store: Store, *, prompt: str = "a white siamese cat", now: float | None = None) -> Job:
    """A job whose submit is under way: admitted (queued), then claimed (pending)."""
    job = await store.admit("acedata", replace(REQUEST, prompt=prompt), REPLY, limits=NO_LIMITS, now=now)
    assert job is not None
    assert job.status is JobStatus.QUEUED
    claimed = await store.claim(1000)
    assert claimed is not None
    assert claimed.id == job.id
    return claimed


async def test_a_job_goes_from_pending_to_delivered(store: Store) -> None:
    job = await create(store, now=100.0)
    assert job.status is JobStatus.PENDING
    assert (job.created_at, job.reply.message_id, job.count) == (100.0, 1001, 2)
    assert "interaction-token-secret" not in repr(job)

    assert await store.mark_submitted(job.id, [JobTask(1, "task-1")], now=101.0)
    assert not await store.mark_submitted(job.id, [JobTask(1, "task-2")]), "a job is submitted once"
    submitted = await store.get_job(job.id)
    assert submitted is not None
    assert (submitted.status, submitted.task_id, submitted.submitted_at) == (JobStatus.SUBMITTED, "task-1", 101.0)
    assert [j.id for j in await store.jobs_with_status(JobStatus.SUBMITTED)] == [job.id]

    images = [Image("https://x/1.png", 5), Image("https://x/2.png", None)]
    assert await store.finish(job.id, Outcome(JobStatus.SUCCEEDED, tuple(images), 2.5), now=130.0)
    assert not await store.finish(job.id, Outcome(JobStatus.FAILED, message="late")), "finalized once"
    done = await store.get_job(job.id)
    assert done is not None
    assert done.status is JobStatus.SUCCEEDED
    assert done.images == tuple(images)
    assert (done.inference_seconds, done.finished_at, done.error_message) == (2.5, 130.0, None)
    assert [j.id for j in await store.undelivered_jobs()] == [job.id]

    assert await store.mark_delivered(job.id, "interaction", now=131.0)
    assert not await store.mark_delivered(job.id, "interaction"), "delivered once"
    assert await store.undelivered_jobs() == []
    delivered = await store.get_job(job.id)
    assert delivered is not None
    assert (delivered.delivered_at, delivered.delivered_via) == (131.0, "interaction")
    assert delivered.reply.interaction_token == "", "the token is not kept once the outcome is shown"


async def test_an_unfinished_job_cannot_be_marked_delivered(store: Store) -> None:
    job = await create(store)
    assert not await store.mark_delivered(job.id, "interaction")
    with pytest.raises(ValueError, match="finish cannot lead to submitted"):
        await store.finish(job.id, Outcome(JobStatus.SUBMITTED))
    with pytest.raises(ValueError, match="cancel cannot lead to succeeded"):
        await store.finish(job.id, Outcome(JobStatus.SUCCEEDED), transition=Transition.CANCEL)


async def test_a_pending_job_can_fail_without_a_task(store: Store) -> None:
    job = await create(store)
    assert await store.finish(job.id, Outcome.failed(FailureKind.AUTH, "key"))
    assert not await store.mark_submitted(job.id, [JobTask(1, "late-task")])
    failed = await store.get_job(job.id)
    assert failed is not None
    assert (failed.status, failed.error_kind, failed.task_id) == (JobStatus.FAILED, FailureKind.AUTH, None)


async def test_racing_finishers_win_once(store: Store) -> None:
    job = await create(store)
    await store.mark_submitted(job.id, [JobTask(1, "task")])
    results = await asyncio.gather(
        *(store.finish(job.id, Outcome(status)) for status in [JobStatus.SUCCEEDED, JobStatus.FAILED] * 5)
    )
    assert results.count(True) == 1


async def test_data_survives_reopening_and_schema_is_versioned(tmp_path: Path) -> None:
    path = tmp_path / "jobs.db"
    first = await SQLiteStore.open(path)
    try:
        job = await create(first, prompt="persisted")
        await first.meta.set("k", "v1")
        await first.meta.set("k", "v2")
    finally:
        await first.close()

    second = await SQLiteStore.open(path)
    try:
        again = await second.get_job(job.id)
        assert again is not None
        assert again.prompt == "persisted"
        assert await second.meta.get("k") == "v2"
        assert await second.meta.get("missing") is None
    finally:
        await second.close()
    with sqlite3.connect(path) as raw:
        assert raw.execute("PRAGMA user_version").fetchone()[0] == len(MIGRATIONS)
        assert raw.execute("PRAGMA journal_mode").fetchone()[0] == "wal"


async def test_a_version_1_database_with_jobs_is_upgraded(tmp_path: Path) -> None:
    path = tmp_path / "old.db"
    with sqlite3.connect(path) as raw:
        raw.executescript(MIGRATIONS[0] + "; PRAGMA user_version = 1;")
        raw.execute(
            """INSERT INTO jobs (status, action, provider, model, prompt, size, count, user_id, application_id,
                   interaction_token, created_at) VALUES ('submitted', 'generate', 'acedata', 'flux-dev',
                   'from before', '1024x1024', 1, 42, 9, 'tok', 1.0)"""
        )
    store = await SQLiteStore.open(path)
    try:
        [job] = await store.jobs_with_status(JobStatus.SUBMITTED)
        assert (job.prompt, job.reply.upload_limit, job.expects_callback) == ("from before", None, False)
    finally:
        await store.close()
    with sqlite3.connect(path) as raw:
        assert raw.execute("PRAGMA user_version").fetchone()[0] == len(MIGRATIONS)


async def test_a_path_that_cannot_be_opened_leaves_no_worker_thread(tmp_path: Path) -> None:
    (tmp_path / "a-folder.db").mkdir()
    with pytest.raises(sqlite3.OperationalError):
        await SQLiteStore.open(tmp_path / "a-folder.db")
    # A worker left running would print "Event loop is closed" from its thread once asyncio.run() returns.
    workers = [t for t in threading.enumerate() if "_connection_worker_thread" in t.name]
    assert workers == []


async def test_a_database_from_a_newer_schema_is_refused_and_left_as_it_was(tmp_path: Path) -> None:
    path = tmp_path / "jobs.db"
    newer = len(MIGRATIONS) + 4
    with sqlite3.connect(path) as raw:
        raw.executescript(f"CREATE TABLE jobs_v{newer} (id INTEGER PRIMARY KEY); PRAGMA user_version = {newer};")
    raw.close()
    before = path.read_bytes()
    with pytest.raises(SchemaTooNew) as refused:
        await SQLiteStore.open(path)
    assert str(refused.value) == (
        f"{path} has schema version {newer}, but this fluxbot knows versions up to {len(MIGRATIONS)}; "
        "run the newer fluxbot or restore a backup"
    )
    assert path.read_bytes() == before, "not migrated, not switched to WAL: the newer fluxbot finds it as it was"
    assert not (tmp_path / "jobs.db-wal").exists()
    with pytest.raises(SchemaTooNew):  # not DatabaseInUse: the refusal released the lock
        await SQLiteStore.open(path)


async def test_a_second_store_on_the_same_file_is_refused_until_the_first_closes(tmp_path: Path) -> None:
    path = tmp_path / "jobs.db"
    first = await SQLiteStore.open(path)
    try:
        job = await create(first, prompt="the first one's")
        with pytest.raises(DatabaseInUse) as refused:
            await SQLiteStore.open(path)
        message = str(refused.value)
        assert message.startswith(f"{path} is in use by another fluxbot process")
        assert "SQLite serves one process" in message
        assert "DATABASE_URL" in message
        assert "\n" not in message
        assert await first.mark_submitted(job.id, [JobTask(1, "task-1")]), "the first store works on, unharmed"
    finally:
        await first.close()
    second = await SQLiteStore.open(path)
    try:
        again = await second.get_job(job.id)
        assert again is not None
        assert (again.status, again.task_id) == (JobStatus.SUBMITTED, "task-1")
    finally:
        await second.close()


async def test_without_file_locks_the_store_opens_and_says_so(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.setattr(sqlite_engine, "_HAS_FLOCK", False)
    caplog.set_level(logging.INFO, logger="fluxbot.storage.sqlite_engine")
    store = await SQLiteStore.open(tmp_path / "jobs.db")
    try:
        await create(store)
    finally:
        await store.close()
    assert any("no file locking on this platform" in r.getMessage() for r in caplog.records)
    assert not (tmp_path / "jobs.db.lock").exists()


async def test_the_run_that_works_on_a_job_owns_it_and_only_it_finishes_and_delivers_it(store: Store) -> None:
    job = await create(store)
    assert job.owner == store.instance, "admitted and claimed by this run"
    with earlier_run(store):
        assert not await store.finish(job.id, Outcome(JobStatus.SUCCEEDED)), "another run cannot finish it"
    assert await store.finish(job.id, Outcome(JobStatus.SUCCEEDED))
    with earlier_run(store):
        assert not await store.mark_delivered(job.id, "interaction"), "nor deliver it"
    assert await store.mark_delivered(job.id, "interaction")


async def test_a_cancel_wins_whoever_queued_the_job_and_makes_it_the_cancellers(store: Store) -> None:
    with earlier_run(store):
        job = await store.admit("acedata", REQUEST, REPLY, limits=NO_LIMITS)
    assert job is not None
    assert job.owner == "earlier-run"
    cancelled = Outcome.failed(FailureKind.CANCELLED, "cancelled")
    assert await store.finish(job.id, cancelled, transition=Transition.CANCEL)
    done = await store.get_job(job.id)
    assert done is not None
    assert (done.status, done.owner) == (JobStatus.FAILED, store.instance)
    assert await store.mark_delivered(job.id, "interaction"), "the canceller shows it"


async def test_adopting_takes_every_undelivered_job_of_a_run_that_is_gone(store: Store) -> None:
    with earlier_run(store):
        await store.leases.renew(seconds=0.0)  # it renewed once, long ago, then died
        # Not answered yet, so no claim takes it (its run died between the admission and the reply).
        queued = await store.admit("acedata", REQUEST, replace(REPLY, message_id=None), limits=NO_LIMITS)
        pending = await create(store)
        submitted = await create(store)
        await store.mark_submitted(submitted.id, [JobTask(1, "task-1")])
        finished = await create(store)
        await store.finish(finished.id, Outcome(JobStatus.SUCCEEDED))
        delivered = await create(store)
        await store.finish(delivered.id, Outcome(JobStatus.SUCCEEDED))
        await store.mark_delivered(delivered.id, "interaction")
    mine = await create(store)
    await store.leases.renew(seconds=60.0)
    assert queued is not None

    adopted = await store.leases.adopt_orphans()
    assert [j.id for j in adopted] == [queued.id, pending.id, submitted.id, finished.id]
    assert {j.owner for j in adopted} == {store.instance}
    assert [j.status for j in adopted] == [JobStatus.QUEUED, JobStatus.PENDING, JobStatus.SUBMITTED,
                                           JobStatus.SUCCEEDED]  # fmt: skip
    assert await store.leases.adopt_orphans() == [], "adopted once"
    current = await store.get_job(mine.id)
    assert current is not None
    assert current.owner == store.instance
    await store.leases.end()


async def test_the_third_refusal_within_the_window_pauses_the_member_until_a_pardon(store: Store) -> None:
    strikes = store.strikes
    rules: dict[str, Any] = {"strikes": 3, "window": 600.0, "pause": 3600.0}
    assert await strikes.record_refusal(7, 42, **rules, now=1000.0) is None
    assert await strikes.record_refusal(7, 42, **rules, now=1100.0) is None
    assert await strikes.record_refusal(8, 42, **rules, now=1150.0) is None, "another server counts apart"
    assert await strikes.record_refusal(7, 43, **rules, now=1150.0) is None, "so does another member"
    assert await strikes.record_refusal(7, 42, **rules, now=2000.0) is None, "the first two are out of the window"
    assert await strikes.record_refusal(7, 42, **rules, now=2100.0) is None
    assert await strikes.record_refusal(7, 42, **rules, now=2200.0) == 5800.0, "three within ten minutes"
    assert await strikes.paused_until(7, 42, now=3000.0) == 5800.0
    assert await strikes.paused_until(7, 42, now=5800.0) is None, "the pause ends by itself"
    assert await strikes.paused_until(8, 42, now=3000.0) is None

    assert await strikes.pardon(7, 42) is False, "at the real time, that pause is long over"
    await strikes.record_refusal(7, 44, strikes=1, window=60.0, pause=60.0)
    assert await strikes.paused_until(7, 44) is not None
    assert await strikes.pardon(7, 44) is True
    assert await strikes.paused_until(7, 44) is None
    assert await strikes.record_refusal(7, 44, strikes=0, window=60.0, pause=60.0) is None, "0 strikes: never"
