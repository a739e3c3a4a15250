"""The asyncpg pool behind `PostgresStore`: statements, short transactions under advisory locks, error mapping.

Every call counts as round trips what it sends to the server. Errors come out as StoreUnavailable when trying
again may work (the connection, the server's resources or its shutdown) and StoreError otherwise, their text
scrubbed of the password. Advisory lock keys are pairs (namespace, key), so fluxbot's locks never meet another
application's single-key locks in the same database.
"""

from __future__ import annotations

import asyncio
import contextlib
import re
import urllib.parse
from collections.abc import AsyncIterator, Callable
from typing import TYPE_CHECKING, Any, TypeAlias

import asyncpg

from fluxbot.storage.base import StoreError, StoreUnavailable

Record = asyncpg.Record
if TYPE_CHECKING:
    from asyncpg.pool import PoolConnectionProxy

    #: A connection lent by the pool.
    Connection: TypeAlias = PoolConnectionProxy[asyncpg.Record]

#: fluxbot's advisory locks are (namespace, hashtext(name)); 0x666c7578 is "flux".
LOCKS = 0x666C7578
MIGRATE = (LOCKS, "migrate")  # applying migrations
CLAIM = (LOCKS, "claim")  # claims: the global cap counts the jobs of every process
MEMBER_LOCKS = LOCKS + 1  # (MEMBER_LOCKS, user id): one member's admissions
NAMED_LOCKS = LOCKS + 2  # (NAMED_LOCKS, name): `exclusive(name)`
GUILD_LOCKS = LOCKS + 3  # (GUILD_LOCKS, server id): the admissions counting against one server's budget

#: SQLSTATE classes worth a retry: connection exceptions, insufficient resources (too many connections, disk
#: full), object not in prerequisite state (lock not available), operator intervention (shutdown, starting up),
#: transaction rollback (serialization failure, deadlock).
_RETRYABLE_CLASSES = ("08", "53", "55", "57", "40")
_NAMED = re.compile(r"(?<![:\w]):([a-z_]\w*)")


def describe(url: str) -> str:
    """The URL without its password: postgresql://user@host:port/db (for logs, errors and repr)."""
    parts = urllib.parse.urlsplit(url)
    host = parts.netloc.rpartition("@")[2]
    user = parts.username
    return urllib.parse.urlunsplit((parts.scheme, f"{user}@{host}" if user else host, parts.path, "", ""))


def password_of(url: str) -> str | None:
    """The password in the URL (decoded), or None."""
    raw = urllib.parse.urlsplit(url).password
    return urllib.parse.unquote(raw) if raw else None


def scrubber(url: str) -> Callable[[str], str]:
    """A function that removes the URL and its password (as written and decoded) from a text."""
    parts = [url, urllib.parse.urlsplit(url).password or "", password_of(url) or ""]
    hidden = sorted({p for p in parts if p}, key=len, reverse=True)

    def scrub(text: str) -> str:
        for part in hidden:
            text = text.replace(part, "***")
        return text

    return scrub


def named(sql: str, params: dict[str, Any]) -> tuple[str, list[Any]]:
    """`:name` placeholders (as the SQLite store writes them) as PostgreSQL's $1, $2 ... and their arguments."""
    order: list[str] = []

    def number(match: re.Match[str]) -> str:
        if match[1] not in order:
            order.append(match[1])
        return f"${order.index(match[1]) + 1}"

    return _NAMED.sub(number, sql), [params[name] for name in order]


def is_retryable(exc: BaseException) -> bool:
    """True for a failure that trying again may not meet: the connection, the server's resources, its shutdown."""
    if isinstance(exc, asyncpg.PostgresError):
        return str(exc.sqlstate or "")[:2] in _RETRYABLE_CLASSES
    if isinstance(exc, asyncpg.exceptions.DataError | asyncpg.exceptions.ClientConfigurationError):
        return False  # a value of the wrong type, a malformed URL: the same again fails the same way
    return isinstance(exc, OSError | TimeoutError | asyncpg.InterfaceError | asyncpg.exceptions.InternalClientError)


async def _no_reset(connection: asyncpg.Connection[asyncpg.Record]) -> None:
    """Nothing to reset between uses: the store never changes session state it does not undo itself.

    (asyncpg's default reset query would add a round trip to every use of a pooled connection.)
    """


class Engine:
    """One asyncpg pool; open with `await Engine.open(url)`."""

    def __init__(self, pool: asyncpg.Pool[asyncpg.Record], url: str, *, wait: float = 30.0) -> None:
        self._pool = pool
        self._wait = wait
        self.where = describe(url)
        self.scrub = scrubber(url)
        self.round_trips = 0
        self._closed = False

    @classmethod
    async def open(cls, url: str, *, pool_size: int = 10, wait: float = 30.0) -> Engine:
        """Connect a pool to the database at `url`; StoreUnavailable or StoreError (scrubbed) when it cannot."""
        scrub = scrubber(url)
        try:
            pool = await asyncpg.create_pool(
                url, min_size=1, max_size=pool_size, command_timeout=wait, timeout=wait, reset=_no_reset
            )
        except Exception as exc:
            kind = StoreUnavailable if is_retryable(exc) else StoreError
            raise kind(f"could not connect to {describe(url)}: {scrub(_text(exc))}") from None
        return cls(pool, url, wait=wait)

    async def close(self) -> None:
        """Close every connection, waiting a while for those in use (then cutting them off)."""
        self._closed = True
        try:
            await asyncio.wait_for(self._pool.close(), self._wait)
        except TimeoutError:
            self._pool.terminate()

    async def fetch(self, sql: str, *args: Any) -> list[Record]:
        """The rows of one statement."""
        async with self.connection() as db:
            self.round_trips += 1
            return await db.fetch(sql, *args)

    async def fetch_named(self, sql: str, params: dict[str, Any]) -> list[Record]:
        """The rows of one statement written with `:name` placeholders."""
        text, args = named(sql, params)
        return await self.fetch(text, *args)

    async def locked(
        self, lock: tuple[int, str], sql: str, *args: Any, also: tuple[int, str] | None = None
    ) -> list[Record]:
        """The rows of one statement run in a transaction that first takes the advisory lock `lock`, then `also`
        when given (every caller takes them in that order, so two transactions never wait for each other).

        The lock is its own statement: under READ COMMITTED the next statement's snapshot is taken after
        the lock is granted, so it sees everything the previous holder committed. Three round trips.
        """
        locks = "; ".join(
            f"SELECT pg_advisory_xact_lock({int(namespace)}, hashtext({_literal(key)}))"
            for namespace, key in (lock, *([also] if also is not None else []))
        )
        async with self.connection() as db:
            self.round_trips += 3
            try:
                # BEGIN and the locks in one simple-protocol message (the keys are quoted as literals).
                await db.execute(f"BEGIN; {locks}")
                rows = await db.fetch(sql, *args)
                await db.execute("COMMIT")
            except asyncpg.PostgresError:
                try:
                    await db.execute("ROLLBACK")
                except BaseException:
                    _drop(db)
                raise
            except BaseException:  # cancelled or cut off mid-transaction: the server rolls back a dropped session
                _drop(db)
                raise
            return rows

    @contextlib.asynccontextmanager
    async def transaction(self, lock: tuple[int, str]) -> AsyncIterator[Connection]:
        """A connection in a transaction that first took the advisory lock `lock`, for a block of statements that
        read and then write (count their round trips yourself; BEGIN, the lock and COMMIT are counted here). The
        transaction is rolled back when the block raises; the connection is dropped when it is cut off."""
        async with self.connection() as db:
            self.round_trips += 3
            try:
                async with db.transaction():
                    await db.execute("SELECT pg_advisory_xact_lock($1, hashtext($2))", *lock)
                    yield db
            except Exception:
                raise
            except BaseException:  # cancelled mid-transaction: the server rolls back a dropped session
                _drop(db)
                raise

    @contextlib.asynccontextmanager
    async def session_lock(self, namespace: int, name: str, *, wait: float | None = None) -> AsyncIterator[Connection]:
        """Hold the advisory lock (namespace, hashtext(name)) on one connection for the block, waiting for it
        up to `wait` seconds (default: the statement timeout), then StoreUnavailable.

        If anything goes wrong around the lock, the connection is dropped: the server releases a session's
        locks when it ends, so a lock is never left behind on a pooled connection.
        """
        async with self.connection() as db:
            try:
                self.round_trips += 1
                await db.execute("SELECT pg_advisory_lock($1, hashtext($2))", namespace, name, timeout=wait)
            except BaseException:
                _drop(db)
                raise
            try:
                yield db
            finally:
                try:
                    self.round_trips += 1
                    await db.execute("SELECT pg_advisory_unlock($1, hashtext($2))", namespace, name)
                except BaseException:
                    _drop(db)
                    raise

    @contextlib.asynccontextmanager
    async def connection(self) -> AsyncIterator[Connection]:
        """A pooled connection for the block; database errors leave it as StoreError/StoreUnavailable."""
        if self._closed:
            raise StoreUnavailable("the database is closed")
        try:
            async with self._pool.acquire(timeout=self._wait) as db:
                yield db
        except StoreError:
            raise
        except asyncpg.InterfaceError as exc:
            if self._closed or self._pool.is_closing():
                raise StoreUnavailable("the database is closed") from None
            raise self.error(exc) from exc
        except (asyncpg.PostgresError, asyncpg.exceptions.InternalClientError, OSError, TimeoutError) as exc:
            raise self.error(exc) from exc

    def error(self, exc: BaseException) -> StoreError:
        """The store's error for an asyncpg or network failure, its text scrubbed."""
        kind = StoreUnavailable if is_retryable(exc) else StoreError
        return kind(f"the database at {self.where} failed: {self.scrub(_text(exc))}")


def _drop(db: Connection) -> None:
    """Close a connection at once (the server rolls back its transaction and releases its locks)."""
    with contextlib.suppress(Exception):  # lost already: asyncpg has taken it back from us
        db.terminate()


def _literal(value: str) -> str:
    return "'" + value.replace("'", "''") + "'"


def _text(exc: BaseException) -> str:
    return str(exc) or type(exc).__name__
