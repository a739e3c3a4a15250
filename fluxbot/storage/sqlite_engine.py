"""The SQLite connections behind `SQLiteStore`: one writer that commits queued writes together, one reader.

WAL mode lets the reader run while the writer writes, so reads never queue behind writes. Writes wait in a
priority queue: a member's admission (the only write before the command is acknowledged) goes ahead of the
background's writes, and whatever is queued when the writer is free is committed in one transaction.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import logging
import os
import sqlite3
from collections.abc import Awaitable, Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiosqlite

from fluxbot.storage.base import StoreError, StoreUnavailable

try:
    import fcntl
except ImportError:  # no flock on this platform (Windows): the store runs without its one-process lock
    _HAS_FLOCK = False
else:
    _HAS_FLOCK = True

log = logging.getLogger(__name__)
Row = sqlite3.Row
#: A write: statements on the writer connection, inside the transaction the writer opened.
Write = Callable[[aiosqlite.Connection], Awaitable[Any]]

#: Brings a database's schema up to date (`sqlite_schema.migrate`).
Migrate = Callable[[aiosqlite.Connection, Path | str], Awaitable[None]]
#: Admissions go first: a member is waiting for them.
URGENT, BACKGROUND = 0, 1
#: The most writes one transaction commits, so an urgent write never waits long behind a batch.
MAX_BATCH = 32
#: Errors of one statement that leave the transaction usable (the others in the batch still commit).
_STATEMENT_ERRORS = (sqlite3.IntegrityError, sqlite3.ProgrammingError, sqlite3.InterfaceError, ValueError)


@dataclass(order=True)
class _Queued:
    priority: int
    order: int
    write: Write = field(compare=False)
    done: asyncio.Future[Any] = field(compare=False)


async def atomic(db: aiosqlite.Connection, work: Callable[[], Awaitable[Any]]) -> Any:
    """Run a write of several statements all or nothing (a savepoint inside the writer's transaction)."""
    await db.execute("SAVEPOINT fluxbot_write")
    try:
        result = await work()
    except BaseException:
        await db.execute("ROLLBACK TO fluxbot_write")
        await db.execute("RELEASE fluxbot_write")
        raise
    await db.execute("RELEASE fluxbot_write")
    return result


def sql_states(statuses: Iterable[Any]) -> str:
    """A status list as SQL: ('queued', 'pending')."""
    return "({})".format(", ".join(f"'{s.value}'" for s in statuses))


class DatabaseInUse(StoreError):
    """Another process has the SQLite file open."""

    def __init__(self, path: Path | str) -> None:
        super().__init__(
            f"{path} is in use by another fluxbot process; stop it first "
            "(SQLite serves one process; DATABASE_URL, for PostgreSQL, serves several)"
        )


def hold_process_lock(path: Path | str) -> int | None:
    """Lock `<path>.lock` for this process, or raise DatabaseInUse; None where the platform has no flock.

    Two processes on one file would each resume and deliver the other's jobs. An flock belongs to the open
    file, so the kernel drops it when the process dies, however it dies: a lock is never left stale.
    """
    if not _HAS_FLOCK:
        log.info("no file locking on this platform: nothing stops a second fluxbot from using %s", path)
        return None
    fd = os.open(f"{path}.lock", os.O_RDWR | os.O_CREAT, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        os.close(fd)
        raise DatabaseInUse(path) from None
    except BaseException:
        os.close(fd)
        raise
    return fd


def release_process_lock(fd: int | None) -> None:
    """Let another process open the file."""
    if fd is not None:
        os.close(fd)  # closing the descriptor releases its flock


async def connect(path: Path | str, *, readonly: bool = False) -> aiosqlite.Connection:
    """Open one connection in autocommit mode (transactions are begun explicitly), with a busy timeout."""
    connection = aiosqlite.connect(path, isolation_level=None)
    try:
        db = await connection
    except BaseException:
        # A failed connect queues the worker thread's stop without waiting for it; if the event loop closed
        # first, the thread would die printing a traceback. Wait for it here instead.
        await asyncio.to_thread(connection._thread.join, 5)
        raise
    try:
        db.row_factory = aiosqlite.Row
        await db.execute("PRAGMA busy_timeout=5000")
        if readonly:
            await db.execute("PRAGMA query_only=1")
    except BaseException:
        # aiosqlite's worker thread is not a daemon: left open, it would keep the process from exiting.
        await db.close()
        raise
    return db


class Engine:
    """Runs reads on the reader and writes, batched and by priority, on the writer."""

    def __init__(self, writer: aiosqlite.Connection, reader: aiosqlite.Connection, process_lock: int | None) -> None:
        self._writer = writer
        self._reader = reader
        self._process_lock = process_lock
        self._queue: asyncio.PriorityQueue[_Queued] = asyncio.PriorityQueue()
        self._order = itertools.count()
        self._task: asyncio.Task[None] | None = None
        self._closed = False
        #: Statements and queries sent so far (a write of several statements counts once).
        self.round_trips = 0

    @classmethod
    async def open(
        cls, path: Path | str, migrate: Callable[[aiosqlite.Connection, Path | str], Awaitable[None]]
    ) -> Engine:
        """Lock the file for this process, migrate it, open both connections and start committing writes."""
        held = hold_process_lock(path)
        writer: aiosqlite.Connection | None = None
        try:
            # The jobs hold members' prompts and interaction tokens: a new file is its owner's only (SQLite gives
            # the -wal and -shm files beside it the same permissions).
            with contextlib.suppress(FileExistsError):
                os.close(os.open(path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o600))
            writer = await connect(path)
            await migrate(writer, path)  # first: a database this fluxbot cannot read is left as it was
            await writer.execute("PRAGMA journal_mode=WAL")
            await writer.execute("PRAGMA synchronous=NORMAL")
            reader = await connect(path, readonly=True)
        except BaseException:
            if writer is not None:
                await writer.close()
            release_process_lock(held)
            raise
        engine = cls(writer, reader, held)
        engine._task = asyncio.create_task(engine._run(), name="fluxbot-db-writer")
        return engine

    async def close(self) -> None:
        """Let queued writes finish, then close both connections."""
        self._closed = True
        if self._task is not None:
            await self._queue.join()
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        try:
            await self._reader.close()
            await self._writer.close()
        finally:
            release_process_lock(self._process_lock)
            self._process_lock = None

    async def read(self, sql: str, params: Sequence[Any] | dict[str, Any] = ()) -> list[Row]:
        """The rows of one query, on the reader."""
        self.round_trips += 1
        try:
            return list(await self._reader.execute_fetchall(sql, params))
        except (sqlite3.OperationalError, ValueError) as exc:  # ValueError: aiosqlite's "Connection closed"
            raise StoreUnavailable(f"the database could not be read: {exc}") from exc

    async def write(self, write: Write, *, priority: int = BACKGROUND) -> Any:
        """Queue `write` and wait until it is committed; its result, or StoreUnavailable."""
        if self._closed:
            raise StoreUnavailable("the database is closed")
        self.round_trips += 1
        done: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        self._queue.put_nowait(_Queued(priority, next(self._order), write, done))
        return await done

    async def statement(
        self, sql: str, params: Sequence[Any] | dict[str, Any] = (), *, priority: int = BACKGROUND
    ) -> list[Row]:
        """Run one changing statement and commit it; its RETURNING rows."""

        async def run(db: aiosqlite.Connection) -> list[Row]:
            return list(await db.execute_fetchall(sql, params))

        result: list[Row] = await self.write(run, priority=priority)
        return result

    async def _run(self) -> None:
        while True:
            batch = [await self._queue.get()]
            while len(batch) < MAX_BATCH and not self._queue.empty():
                batch.append(self._queue.get_nowait())
            try:
                await self._commit(batch)
            finally:
                for _ in batch:
                    self._queue.task_done()

    async def _commit(self, batch: list[_Queued]) -> None:
        """One transaction for the batch; a statement's own error fails that write alone (a write of several
        statements keeps the ones before it: each write here is one statement, or a clean-up that may stay)."""
        results: list[tuple[_Queued, Any, BaseException | None]] = []
        try:
            await self._writer.execute("BEGIN IMMEDIATE")
            for queued in batch:
                try:
                    results.append((queued, await queued.write(self._writer), None))
                except _STATEMENT_ERRORS as exc:
                    results.append((queued, None, exc))
                except (sqlite3.Error, OSError):
                    raise  # the transaction itself is in trouble
                except Exception as exc:  # a fault of that write alone
                    results.append((queued, None, exc))
            await self._writer.execute("COMMIT")
        except Exception as exc:  # sqlite3, OS, or aiosqlite's "Connection closed": the writer must live on
            with contextlib.suppress(Exception):
                await self._writer.execute("ROLLBACK")
            log.warning("a database write failed: %s", exc)
            error = StoreUnavailable(f"the database could not be written: {exc}")
            _settle([(queued, None, error) for queued in batch])
            return
        _settle(results)


def _settle(results: Iterable[tuple[_Queued, Any, BaseException | None]]) -> None:
    for queued, value, error in results:
        if queued.done.done():  # its caller stopped waiting
            continue
        if error is not None:
            queued.done.set_exception(error)
        else:
            queued.done.set_result(value)
