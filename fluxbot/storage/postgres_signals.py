"""Signals between processes over PostgreSQL's LISTEN/NOTIFY, on one dedicated connection per process.

A notification is `<sender instance> <signal> <payload>` on the `fluxbot` channel. The listener drops its own
process's signals, and when its connection is lost it connects again with back-off, logging both. A NOTIFY
sent while it was away is lost: the job core's slow poll is the backstop.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging

import asyncpg

from fluxbot.storage.base import Signal, SignalHandler, StoreError, StoreUnavailable
from fluxbot.storage.postgres_engine import describe, is_retryable, scrubber

log = logging.getLogger(__name__)

CHANNEL = "fluxbot"
#: Seconds between attempts to listen again: doubling from the first to the last.
BACKOFF = (0.5, 30.0)


def notification(instance: str, signal: Signal, payload: str) -> str:
    """The NOTIFY payload for a signal from `instance`."""
    return f"{instance} {signal.value} {payload}"


class Listener:
    """Keeps one connection LISTENing and hands other processes' signals to the handlers."""

    def __init__(self, url: str, instance: str, *, timeout: float = 30.0) -> None:
        self._url = url
        self._instance = instance
        self._timeout = timeout
        self._scrub = scrubber(url)
        self._handlers: list[SignalHandler] = []
        self._connection: asyncpg.Connection[asyncpg.Record] | None = None
        self._reconnecting: asyncio.Task[None] | None = None
        self._closed = False

    @property
    def connected(self) -> bool:
        """True while the LISTEN connection is up."""
        return self._connection is not None and not self._connection.is_closed()

    @property
    def server_pid(self) -> int | None:
        """The server process of the LISTEN connection (for tests that cut it off)."""
        return self._connection.get_server_pid() if self.connected and self._connection else None

    def add(self, handler: SignalHandler) -> None:
        """Call `handler` for every signal another process sends."""
        self._handlers.append(handler)

    async def start(self) -> None:
        """Connect and LISTEN; StoreUnavailable or StoreError (scrubbed) when the server cannot be reached."""
        try:
            await self._connect()
        except Exception as exc:
            kind = StoreUnavailable if is_retryable(exc) else StoreError
            raise kind(f"could not listen on {describe(self._url)}: {self._scrub(str(exc))}") from None

    async def close(self) -> None:
        """Stop listening and close the connection."""
        self._closed = True
        if self._reconnecting is not None:
            self._reconnecting.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._reconnecting
        if self._connection is not None:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(self._connection.close(), self._timeout)
            self._connection = None

    async def _connect(self) -> None:
        connection = await asyncpg.connect(self._url, timeout=self._timeout)
        try:
            await connection.add_listener(CHANNEL, self._notified)
        except BaseException:
            connection.terminate()
            raise
        connection.add_termination_listener(self._lost)
        self._connection = connection

    def _notified(self, connection: object, pid: int, channel: str, payload: object) -> None:
        sender, _, rest = str(payload).partition(" ")
        name, _, data = rest.partition(" ")
        if sender == self._instance:
            return
        try:
            signal = Signal(name)
        except ValueError:  # from a newer fluxbot
            log.debug("ignored an unknown signal %r from %s", name, sender)
            return
        for handler in list(self._handlers):
            try:
                handler(signal, data)
            except Exception:
                log.exception("a %s signal's handler failed", signal)

    def _lost(self, connection: object) -> None:
        if self._closed or connection is not self._connection:
            return
        self._connection = None
        log.warning("lost the connection that listens for other processes' signals; connecting again")
        self._reconnecting = asyncio.get_running_loop().create_task(self._reconnect(), name="fluxbot-pg-listen")

    async def _reconnect(self) -> None:
        delay, longest = BACKOFF
        while not self._closed:
            await asyncio.sleep(delay)
            try:
                await self._connect()
            except Exception as exc:
                log.warning(
                    "could not listen for other processes' signals again (%s); next try in %.1f s",
                    self._scrub(str(exc) or type(exc).__name__),
                    min(delay * 2, longest),
                )
                delay = min(delay * 2, longest)
            else:
                log.info("listening for other processes' signals again")
                return
