"""Ownership: this run keeps a lease on its jobs, and takes up the jobs of runs whose lease ended.

One process on SQLite takes up its previous run's jobs once, at start-up. Several processes on PostgreSQL each
renew a lease every few seconds; when one dies without a word, its lease runs out and another process adopts its
jobs within `LEASE_SECONDS + ADOPT_EVERY` seconds, however it died.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from fluxbot.errors import Message
from fluxbot.i18n import N_
from fluxbot.jobs.finishing import Finisher
from fluxbot.jobs.lifecycle import FailureKind, Job, JobStatus, Outcome
from fluxbot.jobs.replies import Replies
from fluxbot.jobs.shared import Shared, spawn
from fluxbot.jobs.tracker import Tracker
from fluxbot.storage import StoreError

log = logging.getLogger(__name__)

#: How long a run's jobs stay its own without a renewal (a dead run's jobs wait this long at most).
LEASE_SECONDS = 20.0
#: How often the lease is renewed (several renewals fit in one lease: one slow write loses nothing).
RENEW_EVERY = 5.0
#: How often a process on a shared database looks for jobs whose owner's lease ended.
ADOPT_EVERY = 5.0

RESTARTED_BEFORE_SUBMIT = Message(
    N_(
        "The bot restarted before this job reached the image provider, so no image was made. "
        "Please run the command again."
    )
)
RESTARTED_DURING_SUBMIT = Message(
    N_(
        "The bot restarted while it was sending this job to the image provider, before the provider confirmed it, "
        "so the bot cannot follow it. If an image was made, it cannot be shown here. Please run the command again."
    )
)


@dataclass
class Adopted:
    """What one take-over found, by what happens to each job."""

    closed: int = 0  # cut off before or during the submit: closed, the member is told
    followed: int = 0  # at the provider: followed from now on
    delivered: int = 0  # finished: shown on their reply
    waiting: int = 0  # still in the queue: any process starts them


class Ownership:
    """Renews this run's lease and takes up the jobs it adopts."""

    def __init__(
        self,
        shared: Shared,
        finisher: Finisher,
        tracker: Tracker,
        replies: Replies,
        *,
        close_unshown: Callable[[Job, Outcome], Awaitable[None]],
        lease_seconds: float = LEASE_SECONDS,
    ) -> None:
        self._shared = shared
        self._finisher = finisher
        self._tracker = tracker
        self._replies = replies
        self._close_unshown = close_unshown
        self.lease_seconds = lease_seconds
        self.renew_every = min(RENEW_EVERY, lease_seconds / 4)
        self.adopt_every = min(ADOPT_EVERY, lease_seconds / 4)
        self._renewed_at = float("-inf")
        self._adopted_at = float("-inf")
        self._work: set[asyncio.Task[None]] = set()

    async def start(self) -> Adopted:
        """Hold the lease and take up what earlier runs left."""
        await self._renew()
        return await self.take_over()

    def round(self) -> None:
        """Renew the lease when due and, on a shared database, look for orphaned jobs (in the background)."""
        now = self._shared.clock()
        # Each kind of work runs once at a time, and neither waits for the other: a long take-over must not
        # let this run's own lease run out.
        if now - self._renewed_at >= self.renew_every and not self._running("fluxbot-lease"):
            self._renewed_at = now
            spawn(self._renew(), "fluxbot-lease", self._work)
        if (
            self._shared.store.shared
            and now - self._adopted_at >= self.adopt_every
            and not self._running("fluxbot-adopt")
        ):
            self._adopted_at = now
            spawn(self._adopt_quietly(), "fluxbot-adopt", self._work)

    def _running(self, name: str) -> bool:
        return any(task.get_name() == name for task in self.busy())

    def busy(self) -> list[asyncio.Task[None]]:
        """Renewals and take-overs under way."""
        return [t for t in self._work if not t.done()]

    async def stop(self) -> None:
        """Give the lease up, so another process takes up what is left at once."""
        for task in self.busy():
            task.cancel()
        try:
            await self._shared.store.leases.end()
        except StoreError as exc:
            log.warning("could not give up this run's lease (%s); other processes wait for it to run out", exc)

    async def take_over(self) -> Adopted:
        """Adopt the jobs of runs that are gone and take each up where it stands."""
        found = Adopted()
        jobs = await self._shared.store.leases.adopt_orphans()
        for job in jobs:
            await self._take_up(job, found)
        if jobs:
            log.info(
                "took over %d job(s) of an earlier run: %d to follow, %d to deliver, %d closed, %d still queued",
                len(jobs), found.followed, found.delivered, found.closed, found.waiting,
            )  # fmt: skip
        return found

    async def _take_up(self, job: Job, found: Adopted) -> None:
        if job.status.finished:
            if job.reply.message_id is not None:
                self._replies.deliver(job.id)
                found.delivered += 1
            return
        if job.status is JobStatus.PENDING:
            # The provider may have received (and billed) the submit; without its task id there is nothing to follow.
            log.warning("job %d: its run stopped while the submit was under way; closing it unfollowed", job.id)
            await self._finisher.finish(job, Outcome.failed(FailureKind.RESTARTED, RESTARTED_DURING_SUBMIT))
            found.closed += 1
        elif job.status is JobStatus.SUBMITTED:
            self._tracker.follow(job, at_once=True)  # it may have ended while nobody followed it
            found.followed += 1
        elif job.reply.message_id is None:  # queued, but the command was never even answered
            await self._close_unshown(job, Outcome.failed(FailureKind.RESTARTED, RESTARTED_BEFORE_SUBMIT))
            found.closed += 1
        else:
            found.waiting += 1

    async def _renew(self) -> None:
        try:
            await self._shared.store.leases.renew(seconds=self.lease_seconds)
        except StoreError as exc:
            log.warning("could not renew this run's lease (%s); trying again in %.0f s", exc, self.renew_every)

    async def _adopt_quietly(self) -> None:
        try:
            await self.take_over()
        except StoreError as exc:
            log.warning("could not look for jobs of stopped processes (%s); trying again soon", exc)
