"""The job core's background loop: one task that runs each part's round, sleeping until the next lookup is due.

Every part does its work in tasks of its own; a round only starts what is due, so one slow part delays no other.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from fluxbot.jobs.dispatch import Dispatcher
from fluxbot.jobs.housekeeping import Housekeeping
from fluxbot.jobs.ownership import Ownership
from fluxbot.jobs.replies import Replies
from fluxbot.jobs.tracker import Tracker

log = logging.getLogger(__name__)

#: The longest the loop sleeps when nothing is due sooner (claims, cards and retries are checked this often).
LOOP_SECONDS = 1.0


@dataclass
class LoopParts:
    """What the loop runs a round of."""

    ownership: Ownership
    housekeeping: Housekeeping
    tracker: Tracker
    dispatcher: Dispatcher
    replies: Replies
    cards_round: Callable[[], Awaitable[None]]


class JobLoop:
    """Runs the rounds, and wakes early when a callback or a submit makes a lookup due sooner."""

    def __init__(self, parts: LoopParts, *, poll_interval: float, clock: Callable[[], float]) -> None:
        self._parts = parts
        self._poll_interval = poll_interval
        self._clock = clock
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._stopping = False
        self._cards_at = 0.0  # when the loop last showed the cards that were due
        self._sleep_until = 0.0  # when the loop wakes next by itself
        #: When the loop last began a round (for /healthz).
        self.last_round = clock()

    def start(self) -> None:
        """Run the loop in its own task (once)."""
        if self._task is None:
            self._task = asyncio.create_task(self._run(), name="fluxbot-jobs")

    async def stop(self) -> None:
        """End the loop after the round under way."""
        self._stopping = True
        self._wake.set()
        if self._task is not None:
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None

    def alive(self) -> bool:
        """True while the loop runs and began a round recently."""
        recent = max(60.0, 5 * self._poll_interval)
        running = self._task is not None and not self._task.done()
        return running and self._clock() - self.last_round < recent

    def wake(self) -> None:
        """Run a round now."""
        self._wake.set()

    def rescheduled(self) -> None:
        """Wake the loop if it would sleep past the next lookup that is due."""
        due = self._parts.tracker.next_due()
        if due is not None and due < self._sleep_until:
            self._wake.set()

    async def _run(self) -> None:
        parts = self._parts
        while not self._stopping:
            self.last_round = self._clock()
            try:
                parts.ownership.round()
                parts.housekeeping.round()
                await parts.tracker.round()
                if self._clock() - self._cards_at >= self._poll_interval:
                    # Cards at the old modest cadence, however often lookups run: a line moving fast must not
                    # turn into an edit storm. Claims too, as a backstop: slots fill the moment they free.
                    self._cards_at = self._clock()
                    parts.dispatcher.fill()
                    await parts.cards_round()
                parts.replies.retry_due()
            except Exception:
                log.exception("a round of the job loop failed; trying again")
            due = parts.tracker.next_due()
            pause = LOOP_SECONDS if due is None else min(LOOP_SECONDS, max(0.0, due - self._clock()))
            self._sleep_until = self._clock() + pause
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), pause)
            self._wake.clear()
