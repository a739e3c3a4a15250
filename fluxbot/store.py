"""SQLite storage for jobs: schema migrations, WAL, and every state change as one conditional statement."""

from __future__ import annotations

import asyncio
import json
import logging
import os
import time
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from enum import StrEnum
from pathlib import Path
from typing import Any

import aiosqlite

from fluxbot.limits import GuildSettings, Limits, Usage, day_start
from fluxbot.providers.base import Image, JobRequest

try:
    import fcntl
except ImportError:  # no flock on this platform (Windows): the store runs without its one-process lock
    _HAS_FLOCK = False
else:
    _HAS_FLOCK = True

log = logging.getLogger(__name__)

_DAY = 86_400  # seconds


class JobStatus(StrEnum):
    """A job's life: queued → pending → submitted → succeeded | failed | timed_out (then delivered_at is set)."""

    QUEUED = "queued"  # accepted, waiting for a free slot at the provider; nothing sent
    PENDING = "pending"  # its submit is under way
    SUBMITTED = "submitted"  # the provider has it; task_id is stored
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    TIMED_OUT = "timed_out"

    @property
    def finished(self) -> bool:
        """True once the job has its final outcome."""
        return self in FINISHED_STATUSES


OPEN_STATUSES = (JobStatus.QUEUED, JobStatus.PENDING, JobStatus.SUBMITTED)
FINISHED_STATUSES = (JobStatus.SUCCEEDED, JobStatus.FAILED, JobStatus.TIMED_OUT)
_OPEN = "({})".format(", ".join(f"'{s.value}'" for s in OPEN_STATUSES))
_FINISHED = "({})".format(", ".join(f"'{s.value}'" for s in FINISHED_STATUSES))
_AT_PROVIDER = "('pending', 'submitted')"

# A member's open jobs, last command and images since a moment (failed jobs make none): what the limits count.
# `admit` checks them in its INSERT and `usage` reports them, from these same subqueries.
_MEMBER_OPEN_JOBS = f"SELECT COUNT(*) FROM jobs WHERE user_id = :user AND status IN {_OPEN}"  # noqa: S608
_MEMBER_LAST_COMMAND = "SELECT MAX(created_at) FROM jobs WHERE user_id = :user"
_MEMBER_IMAGES_SINCE = (
    "SELECT COALESCE(SUM(count), 0) FROM jobs WHERE user_id = :user AND created_at >= :since AND status != 'failed'"
)

_MIGRATIONS: tuple[str, ...] = (
    """
    CREATE TABLE jobs (
        id INTEGER PRIMARY KEY,
        status TEXT NOT NULL,
        action TEXT NOT NULL,
        provider TEXT NOT NULL,
        model TEXT NOT NULL,
        prompt TEXT NOT NULL,
        size TEXT NOT NULL,
        count INTEGER NOT NULL,
        image_url TEXT,
        user_id INTEGER NOT NULL,
        guild_id INTEGER,
        channel_id INTEGER,
        application_id INTEGER NOT NULL,
        interaction_token TEXT NOT NULL,
        message_id INTEGER,
        task_id TEXT,
        images TEXT NOT NULL DEFAULT '[]',
        inference_seconds REAL,
        error_kind TEXT,
        error_message TEXT,
        created_at REAL NOT NULL,
        submitted_at REAL,
        finished_at REAL,
        delivered_at REAL,
        delivered_via TEXT
    );
    CREATE INDEX jobs_open ON jobs (status) WHERE delivered_at IS NULL;
    CREATE INDEX jobs_task ON jobs (provider, task_id);
    CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
    """,
    """
    ALTER TABLE jobs ADD COLUMN upload_limit INTEGER;
    ALTER TABLE jobs ADD COLUMN expects_callback INTEGER NOT NULL DEFAULT 0;
    """,
    """
    ALTER TABLE jobs ADD COLUMN deleted_at REAL;
    CREATE INDEX jobs_user ON jobs (user_id, id);
    CREATE TABLE edit_sources (
        id INTEGER PRIMARY KEY,
        user_id INTEGER NOT NULL,
        images TEXT NOT NULL,
        created_at REAL NOT NULL
    );
    """,
    """
    CREATE TABLE guild_settings (guild_id INTEGER PRIMARY KEY, settings TEXT NOT NULL);
    CREATE INDEX jobs_guild_created ON jobs (guild_id, created_at);
    """,
    """
    ALTER TABLE jobs ADD COLUMN options TEXT NOT NULL DEFAULT '{}';
    """,
)


@dataclass(frozen=True)
class MemberUsage:
    """One member's jobs on one server over the report's days."""

    user_id: int
    images: int
    jobs: int
    failures: int


@dataclass(frozen=True)
class DayUsage:
    """One UTC day's jobs on one server."""

    day: date
    images: int
    jobs: int
    failures: int


@dataclass(frozen=True)
class GuildReport:
    """A server's usage over the last `days` UTC days (today included), and its open jobs by status."""

    days: int
    members: list[MemberUsage]  # the busiest first, at most REPORT_MEMBERS
    more_members: int  # members left out of `members`
    per_day: list[DayUsage]  # days with at least one job, newest first
    open_jobs: dict[str, int]


REPORT_MEMBERS = 20


@dataclass(frozen=True)
class EditImage:
    """An image a member may edit: where it is, and the aspect ratio to keep."""

    url: str
    ratio: str


@dataclass(frozen=True)
class Reply:
    """Who asked, and how to reach the message that answers them (the interaction token edits it)."""

    user_id: int
    guild_id: int | None
    channel_id: int | None
    application_id: int
    interaction_token: str = field(repr=False)
    message_id: int | None = None
    #: The most bytes one uploaded file may have where the reply is (Discord tells us per interaction).
    upload_limit: int | None = None


@dataclass(frozen=True)
class Job:
    """One row of the jobs table."""

    id: int
    status: JobStatus
    action: str
    provider: str
    model: str
    prompt: str
    size: str
    count: int
    image_url: str | None
    user_id: int
    guild_id: int | None
    channel_id: int | None
    application_id: int
    interaction_token: str = field(repr=False)
    message_id: int | None = None
    task_id: str | None = None
    images: tuple[Image, ...] = ()
    inference_seconds: float | None = None
    error_kind: str | None = None
    error_message: str | None = None
    created_at: float = 0.0
    submitted_at: float | None = None
    finished_at: float | None = None
    delivered_at: float | None = None
    delivered_via: str | None = None
    upload_limit: int | None = None
    expects_callback: bool = False
    deleted_at: float | None = None
    #: Provider-specific options the job was asked with (output_format, ...).
    options: dict[str, Any] = field(default_factory=dict)


class StoreError(Exception):
    """The database cannot be used; the message says why and what to do, in one line."""


class SchemaTooNew(StoreError):
    """The database was written by a newer fluxbot: its schema version is above every one this code knows."""

    def __init__(self, path: Path | str, version: int, known: int) -> None:
        super().__init__(
            f"{path} has schema version {version}, but this fluxbot knows versions up to {known}; "
            "run the newer fluxbot or restore a backup"
        )
        self.version = version
        self.known = known


class DatabaseInUse(StoreError):
    """Another process has the SQLite file open."""

    def __init__(self, path: Path | str) -> None:
        super().__init__(
            f"{path} is in use by another fluxbot process; stop it first "
            "(SQLite serves one process; DATABASE_URL, for PostgreSQL, serves several)"
        )


def _hold_process_lock(path: Path | str) -> int | None:
    """Lock `<path>.lock` for this process, or raise DatabaseInUse; None where the platform has no flock.

    Two processes on one file would each resume and deliver the other's jobs. An flock belongs to the open
    file, so the kernel drops it when the process dies, however it dies: a lock is never left stale.
    """
    if not _HAS_FLOCK:
        log.info("no file locking on this platform: nothing stops a second fluxbot from using %s", path)
        return None
    fd = os.open(f"{path}.lock", os.O_RDWR | os.O_CREAT, 0o644)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        os.close(fd)
        raise DatabaseInUse(path) from None
    except BaseException:
        os.close(fd)
        raise
    return fd


def _release_process_lock(fd: int | None) -> None:
    if fd is not None:
        os.close(fd)  # closing the descriptor releases its flock


class Store:
    """The jobs database. Open with `await Store.open(path)`, close with `await store.close()`."""

    def __init__(self, db: aiosqlite.Connection) -> None:
        self._db = db
        # One connection serves every coroutine: a statement and its fetch or commit must not interleave with
        # another coroutine's commit ("cannot commit transaction - SQL statements in progress").
        self._lock = asyncio.Lock()
        self._process_lock: int | None = None  # the descriptor holding `<db>.lock`, see _hold_process_lock

    @classmethod
    async def open(cls, path: Path | str) -> Store:
        """Open (and create or migrate) the database at `path`; refuse it while another process has it open."""
        held = _hold_process_lock(path)
        connection = aiosqlite.connect(path)
        try:
            db = await connection
        except BaseException:
            _release_process_lock(held)
            # A failed connect queues the worker thread's stop without waiting for it; if the event loop closed
            # first, the thread would die printing a traceback. Wait for it here instead.
            await asyncio.to_thread(connection._thread.join, 5)
            raise
        store = cls(db)
        store._process_lock = held
        try:
            db.row_factory = aiosqlite.Row
            await db.execute("PRAGMA busy_timeout=5000")
            await store._migrate(path)  # first: a database this fluxbot cannot read is left as it was
            await db.execute("PRAGMA journal_mode=WAL")
            await db.execute("PRAGMA synchronous=NORMAL")
        except BaseException:
            # aiosqlite's worker thread is not a daemon: left open, it would keep the process from exiting.
            await store.close()
            raise
        return store

    async def close(self) -> None:
        """Close the connection, then let another process open the file."""
        try:
            await self._db.close()
        finally:
            _release_process_lock(self._process_lock)
            self._process_lock = None

    async def _migrate(self, path: Path | str) -> None:
        async with self._lock, self._db.execute("PRAGMA user_version") as cur:
            row = await cur.fetchone()
        version = int(row[0]) if row else 0
        if version > len(_MIGRATIONS):
            raise SchemaTooNew(path, version, len(_MIGRATIONS))
        for number, script in enumerate(_MIGRATIONS[version:], start=version + 1):
            await self._db.executescript(f"BEGIN; {script}; PRAGMA user_version = {number}; COMMIT;")
            log.info("database migrated to schema version %d", number)

    async def admit(
        self,
        provider: str,
        request: JobRequest,
        reply: Reply,
        *,
        limits: Limits,
        expects_callback: bool = False,
        now: float | None = None,
    ) -> Job | None:
        """Queue a job if the member's limits allow it, in one statement; None when they do not.

        The check and the insert are one SQL statement, so commands arriving at the same instant cannot
        together exceed a limit.
        """
        created = _now(now)
        since = day_start(created)
        row = await self._write_returning(
            f"""INSERT INTO jobs (status, action, provider, model, prompt, size, count, image_url, user_id,
                   guild_id, channel_id, application_id, interaction_token, message_id, created_at,
                   upload_limit, expects_callback, options)
               SELECT :status, :action, :provider, :model, :prompt, :size, :count, :image_url, :user, :guild,
                      :channel, :application, :token, :message, :created, :upload_limit, :expects_callback, :options
               WHERE ({_MEMBER_OPEN_JOBS}) < :member_jobs
                 AND (:cooldown = 0 OR COALESCE(({_MEMBER_LAST_COMMAND}), 0) <= :created - :cooldown)
                 AND (:daily = 0 OR ({_MEMBER_IMAGES_SINCE}) + :count <= :daily)
               RETURNING *""",
            {
                "status": JobStatus.QUEUED, "action": request.action, "provider": provider, "model": request.model,
                "prompt": request.prompt, "size": request.size, "count": request.count,
                "image_url": request.image_url, "user": reply.user_id, "guild": reply.guild_id,
                "channel": reply.channel_id, "application": reply.application_id, "token": reply.interaction_token,
                "message": reply.message_id, "created": created, "upload_limit": reply.upload_limit,
                "expects_callback": expects_callback, "options": _dump_options(request),
                "member_jobs": limits.member_jobs, "cooldown": limits.cooldown_seconds, "since": since,
                "daily": limits.daily_images,
            },
        )  # fmt: skip
        return _job_from_row(row) if row else None

    async def usage(self, user_id: int, *, now: float | None = None) -> Usage:
        """A member's open jobs, last command and images today (UTC), across every server."""
        since = day_start(_now(now))
        async with (
            self._lock,
            self._db.execute(
                f"SELECT ({_MEMBER_OPEN_JOBS}), ({_MEMBER_LAST_COMMAND}), ({_MEMBER_IMAGES_SINCE})",
                {"user": user_id, "since": since},
            ) as cur,
        ):
            row = await cur.fetchone()
        assert row is not None
        return Usage(int(row[0]), row[1], int(row[2]))

    async def claim_next(self, cap: int) -> Job | None:
        """Move the oldest queued job (with a reply) to pending if fewer than `cap` jobs are at the provider."""
        row = await self._write_returning(
            # "delivered_at IS NULL" is always true for these states; it lets SQLite use the jobs_open index
            # instead of scanning the whole history.
            f"""UPDATE jobs SET status = 'pending'
                WHERE id = (SELECT id FROM jobs WHERE status = 'queued' AND message_id IS NOT NULL
                            AND delivered_at IS NULL
                            ORDER BY id LIMIT 1)
                  AND (SELECT COUNT(*) FROM jobs WHERE status IN {_AT_PROVIDER} AND delivered_at IS NULL) < ?
                RETURNING *""",  # noqa: S608
            (cap,),
        )
        return _job_from_row(row) if row else None

    async def queue_positions(self) -> dict[int, int]:
        """Every queued job's place in line: 1 for the next to start, 2 for the one after it, ..."""
        async with (
            self._lock,
            self._db.execute(
                """SELECT id, ROW_NUMBER() OVER (ORDER BY id) FROM jobs
                   WHERE status = 'queued' AND message_id IS NOT NULL AND delivered_at IS NULL"""
            ) as cur,
        ):
            return {int(r[0]): int(r[1]) for r in await cur.fetchall()}

    async def guild_report(self, guild_id: int, *, days: int = 1, now: float | None = None) -> GuildReport:
        """Usage on one server over the last `days` UTC days: per member, per day, and the jobs open now."""
        since = day_start(_now(now)) - (days - 1) * _DAY
        # Images count unless the job failed; a timed-out job may still have been billed, so it counts too.
        totals = """COALESCE(SUM(CASE WHEN status != 'failed' THEN count ELSE 0 END), 0), COUNT(*),
                    COALESCE(SUM(status IN ('failed', 'timed_out')), 0)"""
        async with (
            self._lock,
            self._db.execute(
                f"""SELECT user_id, {totals} FROM jobs WHERE guild_id = ? AND created_at >= ?
                    GROUP BY user_id ORDER BY 2 DESC, 3 DESC""",  # noqa: S608
                (guild_id, since),
            ) as cur,
        ):
            members = [MemberUsage(int(r[0]), int(r[1]), int(r[2]), int(r[3])) for r in await cur.fetchall()]
        async with (
            self._lock,
            self._db.execute(
                f"""SELECT CAST((created_at - ?) / {_DAY} AS INTEGER) AS day, {totals}
                    FROM jobs WHERE guild_id = ? AND created_at >= ? GROUP BY day ORDER BY day DESC""",  # noqa: S608
                (since, guild_id, since),
            ) as cur,
        ):
            first = datetime.fromtimestamp(since, tz=UTC).date()
            per_day = [
                DayUsage(first + timedelta(days=int(r[0])), int(r[1]), int(r[2]), int(r[3]))
                for r in await cur.fetchall()
            ]
        async with (
            self._lock,
            self._db.execute(
                f"SELECT status, COUNT(*) FROM jobs WHERE guild_id = ? AND status IN {_OPEN} GROUP BY status",  # noqa: S608
                (guild_id,),
            ) as cur,
        ):
            open_jobs = {str(r[0]): int(r[1]) for r in await cur.fetchall()}
        shown = members[:REPORT_MEMBERS]
        return GuildReport(days, shown, len(members) - len(shown), per_day, open_jobs)

    async def queued_jobs_of(self, guild_id: int, user_id: int) -> list[Job]:
        """A member's jobs still waiting in the queue on one server."""
        return await self._select(
            "WHERE guild_id = ? AND user_id = ? AND status = 'queued' ORDER BY id", (guild_id, user_id)
        )

    async def guild_settings(self, guild_id: int) -> GuildSettings:
        """A server's settings (all defaults when it never changed any)."""
        async with (
            self._lock,
            self._db.execute("SELECT settings FROM guild_settings WHERE guild_id = ?", (guild_id,)) as cur,
        ):
            row = await cur.fetchone()
        return GuildSettings.from_json(row[0]) if row else GuildSettings()

    async def save_guild_settings(self, guild_id: int, settings: GuildSettings) -> None:
        """Store a server's settings."""
        await self._write(
            """INSERT INTO guild_settings (guild_id, settings) VALUES (?, ?)
               ON CONFLICT (guild_id) DO UPDATE SET settings = excluded.settings""",
            (guild_id, settings.to_json()),
        )

    async def get_job(self, job_id: int) -> Job | None:
        """The job with this id, or None."""
        rows = await self._select("WHERE id = ?", (job_id,))
        return rows[0] if rows else None

    async def job_for_task(self, provider: str, task_id: str) -> Job | None:
        """The job a provider task belongs to, or None."""
        rows = await self._select("WHERE provider = ? AND task_id = ?", (provider, task_id))
        return rows[0] if rows else None

    async def mark_submitted(self, job_id: int, task_id: str, *, now: float | None = None) -> bool:
        """Store the provider's task id; False when the job was no longer pending."""
        return await self._update(
            "SET status = ?, task_id = ?, submitted_at = ? WHERE id = ? AND status = ?",
            (JobStatus.SUBMITTED, task_id, _now(now), job_id, JobStatus.PENDING),
        )

    async def set_message(self, job_id: int, message_id: int) -> None:
        """Remember the id of the reply message."""
        await self._update("SET message_id = ? WHERE id = ?", (message_id, job_id))

    async def finish(
        self,
        job_id: int,
        status: JobStatus,
        *,
        images: Sequence[Image] = (),
        inference_seconds: float | None = None,
        error_kind: str | None = None,
        error_message: str | None = None,
        only_queued: bool = False,
        now: float | None = None,
    ) -> bool:
        """Give an open job its outcome; exactly one caller gets True for a job, whatever races.

        `only_queued`: only if it has not started yet (a cancel must not close a job whose submit is under way).
        """
        if not status.finished:
            raise ValueError(f"{status} is not a final status")
        return await self._update(
            f"""SET status = ?, images = ?, inference_seconds = ?, error_kind = ?, error_message = ?,
                   finished_at = ?
               WHERE id = ? AND status IN {"('queued')" if only_queued else _OPEN}""",
            (status, _dump_images(images), inference_seconds, error_kind, error_message, _now(now), job_id),
        )

    async def mark_delivered(self, job_id: int, via: str, *, now: float | None = None) -> bool:
        """Record that the finished job's reply shows its outcome; False when it already did."""
        return await self._update(
            # The interaction token is useless once the outcome is shown; it is not kept.
            f"""SET delivered_at = ?, delivered_via = ?, interaction_token = ''
               WHERE id = ? AND delivered_at IS NULL AND status IN {_FINISHED}""",
            (_now(now), via, job_id),
        )

    async def jobs_with_status(self, status: JobStatus) -> list[Job]:
        """Undelivered jobs in `status`, oldest first."""
        return await self._select("WHERE status = ? AND delivered_at IS NULL ORDER BY id", (status,))

    async def undelivered_jobs(self) -> list[Job]:
        """Finished jobs whose reply does not show the outcome yet, oldest first."""
        return await self._select(f"WHERE status IN {_FINISHED} AND delivered_at IS NULL ORDER BY id", ())

    async def recent_jobs(self, user_id: int, *, limit: int, offset: int = 0) -> tuple[list[Job], int]:
        """A member's jobs, newest first, one page of them, and how many there are in all."""
        jobs = await self._select("WHERE user_id = ? ORDER BY id DESC LIMIT ? OFFSET ?", (user_id, limit, offset))
        async with self._lock, self._db.execute("SELECT COUNT(*) FROM jobs WHERE user_id = ?", (user_id,)) as cur:
            row = await cur.fetchone()
        return jobs, int(row[0]) if row else 0

    async def mark_reply_deleted(self, job_id: int, *, now: float | None = None) -> None:
        """Remember that the job's result message was deleted on request."""
        await self._update("SET deleted_at = ? WHERE id = ?", (_now(now), job_id))

    async def add_edit_source(self, user_id: int, images: Sequence[EditImage], *, now: float | None = None) -> int:
        """Keep the images a member may edit (from a result or a message) until the edit prompt comes back."""
        payload = json.dumps([{"url": i.url, "ratio": i.ratio} for i in images])
        async with self._lock:  # one commit for both: this runs before the edit prompt can open
            # A prompt left open for a day is not coming back.
            await self._db.execute("DELETE FROM edit_sources WHERE created_at < ?", (_now(now) - _DAY,))
            async with self._db.execute(
                "INSERT INTO edit_sources (user_id, images, created_at) VALUES (?, ?, ?) RETURNING id",
                (user_id, payload, _now(now)),
            ) as cur:
                row = await cur.fetchone()
            await self._db.commit()
        assert row is not None
        return int(row[0])

    async def get_edit_source(self, source_id: int) -> tuple[int, list[EditImage]] | None:
        """(member id, images) of an edit source, or None."""
        async with (
            self._lock,
            self._db.execute("SELECT user_id, images FROM edit_sources WHERE id = ?", (source_id,)) as cur,
        ):
            row = await cur.fetchone()
        if row is None:
            return None
        return int(row[0]), [EditImage(i["url"], i["ratio"]) for i in json.loads(row[1])]

    async def count_undelivered(self) -> dict[str, int]:
        """How many jobs are in each state among those still open or awaiting delivery (every state, zeros too)."""
        query = "SELECT status, COUNT(*) FROM jobs WHERE delivered_at IS NULL GROUP BY status"  # the jobs_open index
        async with self._lock, self._db.execute(query) as cur:
            counts = {str(r[0]): int(r[1]) for r in await cur.fetchall()}
        return {state.value: counts.get(state.value, 0) for state in JobStatus}

    async def get_meta(self, key: str) -> str | None:
        """A value from the key/value table."""
        async with self._lock, self._db.execute("SELECT value FROM meta WHERE key = ?", (key,)) as cur:
            row = await cur.fetchone()
        return str(row[0]) if row else None

    async def set_meta(self, key: str, value: str) -> None:
        """Store a value in the key/value table."""
        await self._write(
            "INSERT INTO meta (key, value) VALUES (?, ?) ON CONFLICT (key) DO UPDATE SET value = excluded.value",
            (key, value),
        )

    async def _update(self, clause: str, params: Iterable[Any]) -> bool:
        return await self._write(f"UPDATE jobs {clause}", tuple(params)) == 1

    async def _write(self, sql: str, params: Iterable[Any]) -> int:
        """Run one changing statement and commit; returns how many rows it changed."""
        async with self._lock:
            cur = await self._db.execute(sql, tuple(params))
            try:
                changed = cur.rowcount
            finally:
                await cur.close()
            await self._db.commit()
        return changed

    async def _write_returning(self, sql: str, params: Sequence[Any] | Mapping[str, Any]) -> Any:
        """Run one changing statement (with RETURNING) and commit; returns its first row, or None."""
        async with self._lock:
            cur = await self._db.execute(sql, params)
            try:
                rows = list(await cur.fetchall())
            finally:
                await cur.close()
            await self._db.commit()
        return rows[0] if rows else None

    async def _select(self, clause: str, params: Iterable[Any]) -> list[Job]:
        async with self._lock, self._db.execute(f"SELECT * FROM jobs {clause}", tuple(params)) as cur:  # noqa: S608
            rows = await cur.fetchall()
        return [_job_from_row(row) for row in rows]


def _now(now: float | None) -> float:
    return time.time() if now is None else now


def _dump_options(request: JobRequest) -> str:
    return json.dumps(dict(request.options))


def _dump_images(images: Sequence[Image]) -> str:
    return json.dumps([{"url": i.url, "seed": i.seed} for i in images])


def _job_from_row(row: aiosqlite.Row) -> Job:
    data = dict(row)
    data["status"] = JobStatus(data["status"])
    data["expects_callback"] = bool(data["expects_callback"])
    data["options"] = json.loads(data["options"])
    data["images"] = tuple(Image(url=i["url"], seed=i.get("seed")) for i in json.loads(data["images"]))
    return Job(**data)
