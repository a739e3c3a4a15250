"""PostgreSQL only: several stores ("processes") on one database, migrations, signals, locks, and the password.

The store's whole interface runs on PostgreSQL too, through tests/test_store.py and the job tests; these are
what only a database shared by several processes has.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator
from dataclasses import replace

import asyncpg
import pytest

from fluxbot.jobs.lifecycle import FailureKind, JobStatus, JobTask, Outcome, Reply, Transition
from fluxbot.jobs.service import NO_LIMITS
from fluxbot.limits import Limits
from fluxbot.storage import PostgresStore, Signal, StoreUnavailable
from fluxbot.web import callback_secret
from tests.pgserver import PgServer
from tests.test_store import REPLY, REQUEST

#: A Discord snowflake needs 64 bits.
SNOWFLAKE = 1190413227513741362


@pytest.fixture
async def stores(database_url: str) -> AsyncIterator[tuple[PostgresStore, PostgresStore]]:
    """Two stores on one database, as two processes would have them."""
    a = await PostgresStore.open(database_url, instance="process-a", pool_size=4)
    b = await PostgresStore.open(database_url, instance="process-b", pool_size=4)
    yield a, b
    await b.close()
    await a.close()


def member(user_id: int, message_id: int | None = 1001) -> Reply:
    return replace(REPLY, user_id=user_id, message_id=message_id)


async def until(condition, what: str, timeout: float = 10.0) -> None:
    """Wait until `condition()` is true (checked every few ms), or fail saying what did not happen."""
    try:
        async with asyncio.timeout(timeout):
            while not await condition():
                await asyncio.sleep(0.01)
    except TimeoutError:
        pytest.fail(f"{what}: not within {timeout} s")


async def lock_waiters(server: PgServer) -> list[int]:
    """The server processes waiting for an advisory lock."""
    admin = await server.admin()
    try:
        rows = await admin.fetch("SELECT pid FROM pg_locks WHERE locktype = 'advisory' AND NOT granted")
    finally:
        await admin.close()
    return [int(r[0]) for r in rows]


async def test_ten_commands_of_one_member_through_two_processes_admit_exactly_the_limit(
    stores: tuple[PostgresStore, PostgresStore],
) -> None:
    a, b = stores
    limits = Limits(member_jobs=3)
    results = await asyncio.gather(*(s.admit("acedata", REQUEST, member(42), limits=limits) for s in [a, b] * 5))
    admitted = [job for job in results if job is not None]
    assert len(admitted) == 3
    assert {job.owner for job in admitted} <= {"process-a", "process-b"}
    assert (await b.usage(42)).in_flight == 3
    daily = Limits(member_jobs=100, daily_images=4)  # two images a job: two more jobs fit today
    more = await asyncio.gather(*(s.admit("acedata", REQUEST, member(43), limits=daily) for s in [a, b] * 5))
    assert len([job for job in more if job is not None]) == 2


async def test_claims_from_two_processes_take_each_job_once_in_order_and_hold_the_global_cap(
    stores: tuple[PostgresStore, PostgresStore],
) -> None:
    a, b = stores
    queued = [await (a if i % 2 else b).admit("acedata", REQUEST, member(i), limits=NO_LIMITS) for i in range(30)]
    ids = [job.id for job in queued if job is not None]
    claims = await asyncio.gather(*(s.claim(8) for s in [a, b] * 10))
    claimed = [job for job in claims if job is not None]
    assert sorted(job.id for job in claimed) == ids[:8], "the oldest eight, each once, the cap of both together"
    assert all(job.status is JobStatus.PENDING for job in claimed)
    assert all(job is None or job.owner == s.instance for s, job in zip([a, b] * 10, claims, strict=True))
    assert {job.owner for job in claimed} == {"process-a", "process-b"}

    for job in claimed[:3]:  # three slots free up
        owner = a if job.owner == "process-a" else b
        assert await owner.finish(job.id, Outcome(JobStatus.SUCCEEDED))
    again = [job for job in await asyncio.gather(*(s.claim(8) for s in [b, a] * 4)) if job is not None]
    assert sorted(job.id for job in again) == ids[8:11], "the next in line, still within the cap"
    assert (await a.reports.count_undelivered())["pending"] == 8


async def test_a_live_lease_keeps_the_jobs_and_an_expired_one_gives_them_all_up(
    stores: tuple[PostgresStore, PostgresStore],
) -> None:
    a, b = stores
    jobs = [await a.admit("acedata", REQUEST, member(1), limits=NO_LIMITS, now=900.0) for _ in range(5)]
    assert all(job is not None and job.owner == "process-a" for job in jobs)
    pending = await a.claim(100)
    submitted = await a.claim(100)
    finished = await a.claim(100)
    delivered = await a.claim(100)
    assert pending
    assert submitted
    assert finished
    assert delivered
    assert await a.mark_submitted(submitted.id, [JobTask(1, "task-1")])
    assert await a.finish(finished.id, Outcome(JobStatus.SUCCEEDED))
    assert await a.finish(delivered.id, Outcome(JobStatus.FAILED, message="no"))
    assert await a.mark_delivered(delivered.id, "interaction")
    await a.leases.renew(seconds=30, now=1000.0)
    await b.leases.renew(seconds=30, now=1000.0)

    assert await b.leases.adopt_orphans(now=1029.0) == [], "a's lease is live: its jobs stay a's"
    adopted = await b.leases.adopt_orphans(now=1031.0)
    undelivered = [j for j in jobs if j is not None and j.id != delivered.id]
    assert [job.id for job in adopted] == [j.id for j in undelivered], "every undelivered job, oldest first"
    assert {job.status for job in adopted} == {JobStatus.QUEUED, JobStatus.PENDING, JobStatus.SUBMITTED,
                                               JobStatus.SUCCEEDED}  # fmt: skip
    assert all(job.owner == "process-b" for job in adopted)
    assert await b.leases.adopt_orphans(now=1031.0) == [], "b's own jobs are not adopted again"
    assert await a.leases.adopt_orphans(now=1020.0) == [], "b's lease is live"
    assert not await a.mark_delivered(finished.id, "interaction"), "a no longer owns it"
    assert await b.mark_delivered(finished.id, "interaction")


async def test_leases_run_on_the_databases_clock_and_a_clean_shutdown_gives_the_jobs_up_at_once(
    stores: tuple[PostgresStore, PostgresStore],
) -> None:
    a, b = stores
    job = await a.admit("acedata", REQUEST, member(1), limits=NO_LIMITS, now=1.0)  # an old job, a fresh lease
    assert job is not None
    await a.leases.renew(seconds=30)
    assert await b.leases.adopt_orphans() == [], "the lease is 30 s from the database's now, whatever `now` the job had"
    await a.leases.end()
    [adopted] = await b.leases.adopt_orphans()
    assert (adopted.id, adopted.owner) == (job.id, "process-b")


async def test_a_job_without_an_owner_is_adopted(stores: tuple[PostgresStore, PostgresStore], database_url) -> None:
    a, b = stores
    job = await a.admit("acedata", REQUEST, member(1), limits=NO_LIMITS)
    assert job is not None
    db = await asyncpg.connect(database_url)
    try:
        await db.execute("UPDATE jobs SET owner = NULL")  # as a job from before migration 7
    finally:
        await db.close()
    await a.leases.renew(seconds=30)
    [adopted] = await b.leases.adopt_orphans()
    assert adopted.owner == "process-b"


async def test_only_the_owner_finishes_a_job_and_anyone_cancels_a_queued_one(
    stores: tuple[PostgresStore, PostgresStore],
) -> None:
    a, b = stores
    job = await a.admit("acedata", REQUEST, member(1), limits=NO_LIMITS)
    queued = await a.admit("acedata", REQUEST, member(2), limits=NO_LIMITS)
    assert job is not None
    assert queued is not None
    claimed = await a.claim(10)
    assert claimed is not None
    assert claimed.id == job.id
    assert not await b.finish(job.id, Outcome(JobStatus.SUCCEEDED)), "b does not own it"
    assert await a.finish(job.id, Outcome(JobStatus.SUCCEEDED))
    assert not await b.mark_delivered(job.id, "interaction")
    cancelled = Outcome.failed(FailureKind.CANCELLED, "cancelled by a moderator")
    assert await b.finish(queued.id, cancelled, transition=Transition.CANCEL)
    shown = await a.get_job(queued.id)
    assert shown is not None
    assert (shown.status, shown.owner) == (JobStatus.FAILED, "process-b"), "b shows it"
    assert await b.mark_delivered(queued.id, "interaction")


async def test_signals_reach_the_other_process_and_not_the_sender(stores: tuple[PostgresStore, PostgresStore]) -> None:
    a, b = stores
    heard_a: list[tuple[Signal, str]] = []
    heard_b: list[tuple[Signal, str]] = []
    a.listen(lambda signal, payload: heard_a.append((signal, payload)))
    b.listen(lambda signal, payload: heard_b.append((signal, payload)))
    await a.signal(Signal.HINT, "acedata task-1")
    await a.signal(Signal.SETTINGS)
    await a.signal(Signal.SETTINGS, str(SNOWFLAKE))

    async def b_heard_all() -> bool:
        return len(heard_b) == 3

    await until(b_heard_all, "b hears a's three signals")
    assert heard_b == [(Signal.HINT, "acedata task-1"), (Signal.SETTINGS, ""), (Signal.SETTINGS, str(SNOWFLAKE))]
    await b.signal(Signal.HINT, "kie task-2")

    async def a_heard_b() -> bool:
        return bool(heard_a)

    await until(a_heard_b, "a hears b")
    assert heard_a == [(Signal.HINT, "kie task-2")], "a's own signals, sent before, never reached a"


async def test_a_failing_handler_and_a_lost_connection_do_not_stop_the_signals(
    stores: tuple[PostgresStore, PostgresStore], pg_server: PgServer, caplog: pytest.LogCaptureFixture
) -> None:
    a, b = stores
    caplog.set_level(logging.INFO, logger="fluxbot.storage.postgres_signals")
    heard: list[str] = []

    def broken(signal: Signal, payload: str) -> None:
        raise RuntimeError("a handler's bug")

    b.listen(broken)
    b.listen(lambda signal, payload: heard.append(payload))
    pid = b.listener.server_pid
    assert pid is not None
    admin = await pg_server.admin()
    try:
        assert await admin.fetchval("SELECT pg_terminate_backend($1)", pid)
    finally:
        await admin.close()

    async def listening_again() -> bool:
        return b.listener.connected and b.listener.server_pid != pid

    await until(listening_again, "b listens again")
    await a.signal(Signal.SETTINGS, "7")

    async def heard_it() -> bool:
        return heard == ["7"]

    await until(heard_it, "b hears a after reconnecting")
    messages = [r.getMessage() for r in caplog.records]
    assert any("lost the connection that listens" in m for m in messages)
    assert any("listening for other processes' signals again" in m for m in messages)
    assert any("a settings signal's handler failed" in m for m in messages)


async def test_exclusive_excludes_across_processes(
    stores: tuple[PostgresStore, PostgresStore], pg_server: PgServer
) -> None:
    a, b = stores
    inside: list[str] = []

    async def b_takes_it() -> None:
        async with b.exclusive("command-sync"):
            inside.append("b")

    async with a.exclusive("command-sync"):
        inside.append("a")
        waiting = asyncio.create_task(b_takes_it())

        async def b_waits() -> bool:
            return bool(await lock_waiters(pg_server))

        await until(b_waits, "b waits for the lock")
        assert inside == ["a"], "b is kept out while a holds it"
        async with b.exclusive("another-name"):  # other names are not held up
            inside.append("b-other")
    await asyncio.wait_for(waiting, 10)
    assert inside == ["a", "b-other", "b"]


async def test_a_connection_cut_mid_statement_is_unavailable_and_the_next_statement_works(
    stores: tuple[PostgresStore, PostgresStore], pg_server: PgServer
) -> None:
    a, b = stores

    async def b_takes_it() -> None:
        async with b.exclusive("held"):
            pass

    async with a.exclusive("held"):
        waiting = asyncio.create_task(b_takes_it())

        async def b_waits() -> bool:
            return bool(await lock_waiters(pg_server))

        await until(b_waits, "b waits for the lock")
        [pid] = await lock_waiters(pg_server)
        admin = await pg_server.admin()
        try:
            await admin.execute("SELECT pg_terminate_backend($1)", pid)  # as a server shutting down does
        finally:
            await admin.close()
        with pytest.raises(StoreUnavailable, match="terminating connection"):
            await asyncio.wait_for(waiting, 10)
    assert await b.meta.get("k") is None, "the pool connects again"
    await b.close()
    with pytest.raises(StoreUnavailable, match="closed"):
        await b.meta.get("k")


async def test_two_processes_starting_together_share_one_callback_secret(
    stores: tuple[PostgresStore, PostgresStore],
) -> None:
    a, b = stores
    first, second = await asyncio.gather(callback_secret(a), callback_secret(b))
    assert first == second, "a callback for one process's job may reach the other, behind one load balancer"
    assert await a.meta.get("callback_secret") == first
