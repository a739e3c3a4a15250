"""Delivery scheduling: each job's reply has its own worker, so one slow Discord request slows no other job.

A worker edits one reply, one request at a time: progress cards (the latest asked for wins) and then the outcome.
Every edit runs under its own timeout. A progress edit that outlives its timeout may still reach Discord later, so
if it lands after the outcome, the outcome is shown again: the last thing a reply shows is always the outcome.
A delivery that failed for now is retried with back-off; a failed "delivered" mark retries the mark only.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from typing import Any, Protocol

from fluxbot.delivery import DeliveryError
from fluxbot.jobs.durations import Estimate
from fluxbot.jobs.lifecycle import Job, Reply
from fluxbot.jobs.shared import Shared
from fluxbot.metrics import METRICS
from fluxbot.storage import StoreUnavailable

log = logging.getLogger(__name__)

#: How soon a delivery whose job could not be read from the database is tried again.
DATABASE_RETRY_SECONDS = 5.0


class Replier(Protocol):
    """Shows jobs to members (implemented by `delivery.Delivery`)."""

    async def show_progress(
        self,
        job: Job,
        *,
        now: float,
        position: int | None = None,
        estimate: Estimate | None = None,
        provider_place: int | None = None,
    ) -> None:
        """Edit the job's reply into its progress card (with its place in line while queued, and in the provider's
        own queue while it waits there: `TaskStatus.queue_position`)."""
        ...

    async def show_outcome(self, job: Job, *, copies: Sequence[str] = ()) -> str:
        """Edit the job's reply into its outcome and return how it was delivered (`copies`: its images' URLs
        on Discord, shown instead of uploading them again)."""
        ...

    async def uploaded_copies(self, job: Job) -> list[str]:
        """The URLs of the images the job's reply carries on Discord now ([] when any is gone)."""
        ...


@dataclass
class _ReplyState:
    """What one job's reply is waiting for."""

    progress: tuple[Job, int | None, Estimate | None, int | None] | None = None  # the latest card asked for
    outcome: bool = False  # the outcome is to be shown
    via: str | None = None  # the outcome is shown (how), the mark may still be missing
    again: bool = False  # a stray progress card landed after the outcome: show the outcome again
    attempts: int = 0
    retry_at: float = 0.0
    worker: asyncio.Task[bool] | None = None
    strays: set[asyncio.Task[Any]] = field(default_factory=set)  # progress edits past their timeout


class Replies:
    """The reply workers of all jobs."""

    #: A progress edit slower than this is left to finish on its own (discord.py retries 5xx for ~25 s).
    progress_timeout: float = 10.0
    #: Downloading the images, uploading them and editing the reply may take this long, then it is tried again.
    delivery_timeout: float = 120.0
    #: How many times a delivery that failed for now is tried again (back-off up to 5 minutes: ~1.5 h).
    delivery_attempts: int = 20
    #: How many replies are edited at once (each worker holds one place only while its request runs).
    concurrency: int = 16

    def __init__(self, shared: Shared, replier: Replier) -> None:
        self._shared = shared
        self._replier = replier
        self._replies: dict[int, _ReplyState] = {}
        self._gate = asyncio.Semaphore(self.concurrency)

    def progress(
        self,
        job: Job,
        *,
        position: int | None = None,
        estimate: Estimate | None = None,
        provider_place: int | None = None,
    ) -> None:
        """Ask for the job's progress card; ignored once its outcome is on the way."""
        reply = self._replies.setdefault(job.id, _ReplyState())
        if reply.outcome or reply.via is not None:
            return
        reply.progress = (job, position, estimate, provider_place)
        self._run(job.id, reply)

    def deliver(self, job_id: int) -> None:
        """Ask for the finished job's outcome to be shown (at once, or at its retry time)."""
        reply = self._replies.setdefault(job_id, _ReplyState())
        reply.outcome, reply.progress = True, None
        self._run(job_id, reply)

    async def deliver_now(self, job_id: int) -> bool:
        """Show the outcome now, whatever the retry time; True when this call delivered it."""
        reply = self._replies.setdefault(job_id, _ReplyState())
        reply.outcome, reply.progress, reply.retry_at = True, None, 0.0
        if reply.worker is not None and not reply.worker.done():
            await asyncio.wait({reply.worker})
            return False
        return await self._run(job_id, reply)

    def retry_due(self) -> None:
        """Start the deliveries whose retry time has come."""
        now = self._shared.clock()
        for job_id, reply in list(self._replies.items()):
            if reply.outcome and reply.retry_at and reply.retry_at <= now:
                self._run(job_id, reply)

    def busy(self) -> list[asyncio.Task[Any]]:
        """The edits under way (tests and shutdown wait for them)."""
        work: list[asyncio.Task[Any]] = []
        for reply in self._replies.values():
            if reply.worker is not None and not reply.worker.done():
                work.append(reply.worker)
            work.extend(t for t in reply.strays if not t.done())
        return work

    def showing(self, job_id: int) -> bool:
        """True while the job's outcome is asked for and not yet shown."""
        reply = self._replies.get(job_id)
        return reply is not None and reply.outcome

    async def show_again(self, job: Job, reply: Reply, *, now: float) -> bool:
        """Show a finished job's result once more, in a new reply (for /job); False when it could not be shown.

        The copy is said in the new reply's locale (the channel it is shown in), not the first reply's: everyone
        reading it there reads that channel's language."""
        took = (job.finished_at or job.created_at) - job.created_at
        # The new reply's token is fresh: the copy starts now (and keeps how long the job took).
        # It is a new reply: whether the member deleted the first one does not matter to it.
        again = replace(job, reply=reply, created_at=now, finished_at=now + took, deleted_at=None)
        try:
            # The first reply's uploads are reused while it still has them: nothing is copied again.
            copies = await self._replier.uploaded_copies(job)
            await self._gated(self._replier.show_outcome(again, copies=copies))
        except DeliveryError as exc:
            log.warning("job %d: could not show it again (%s)", job.id, exc)
            return False
        return True

    def _run(self, job_id: int, reply: _ReplyState) -> asyncio.Task[bool]:
        if reply.worker is None or reply.worker.done():
            reply.worker = asyncio.create_task(self._work(job_id, reply), name=f"fluxbot-reply-{job_id}")
        return reply.worker

    async def _work(self, job_id: int, reply: _ReplyState) -> bool:
        """Edit the reply until nothing is asked of it; True when this worker delivered the outcome."""
        delivered = False
        while True:
            if reply.outcome:
                if reply.retry_at > self._shared.clock():
                    return delivered  # `retry_due` starts it again
                delivered = await self._outcome(job_id, reply) or delivered
                if reply.outcome:
                    continue
            elif reply.progress is not None:
                job, position, estimate, provider_place = reply.progress
                reply.progress = None
                await self._progress(job, reply, position, estimate, provider_place)
                continue
            if not any(not t.done() for t in reply.strays):
                self._replies.pop(job_id, None)  # nothing asked of this reply: nothing of it is kept
            return delivered

    async def _progress(
        self, job: Job, reply: _ReplyState, position: int | None, estimate: Estimate | None, provider_place: int | None
    ) -> None:
        if any(not t.done() for t in reply.strays):
            return  # a card is still on its way; the next one is asked for at the card cadence
        try:
            current = await self._shared.store.get_job(job.id)
        except StoreUnavailable:
            return  # a card can wait for the next refresh
        if current is None or current.status.finished:
            return  # it finished (and may be shown already) while this card waited: never cover the outcome
        job = current
        edit = asyncio.create_task(
            self._gated(
                self._replier.show_progress(
                    job, now=self._shared.clock(), position=position, estimate=estimate, provider_place=provider_place
                )
            )
        )
        done, _ = await asyncio.wait({edit}, timeout=self.progress_timeout)
        if edit not in done:
            log.info("job %d: progress card edit took over %.0f s; going on without it", job.id, self.progress_timeout)
            reply.strays.add(edit)
            edit.add_done_callback(lambda task: self._stray_ended(job.id, reply, task))
            return
        exc = edit.exception()
        if isinstance(exc, DeliveryError):
            METRICS.discord_edit_failures.labels("progress", str(exc.retryable).lower()).inc()
            log.info("job %d: progress card not updated (%s)", job.id, exc)
        elif exc is not None:
            log.error("job %d: unexpected error while updating the progress card", job.id, exc_info=exc)

    def _stray_ended(self, job_id: int, reply: _ReplyState, task: asyncio.Task[Any]) -> None:
        """A late progress edit ended: if it landed after the outcome, the outcome must cover it again."""
        if task.cancelled() or task.exception() is not None:
            return
        if reply.via is not None:
            log.info("job %d: a late progress card landed after the result; showing the result again", job_id)
            reply.again, reply.outcome = True, True
            self._replies[job_id] = reply
            self._run(job_id, reply)

    async def _outcome(self, job_id: int, reply: _ReplyState) -> bool:
        """Show the outcome and mark it delivered; True when this call marked it."""
        try:
            job = await self._shared.store.get_job(job_id)
        except StoreUnavailable as exc:
            # The database, not Discord: try again soon, for as long as it takes (Discord's tries are not used up).
            reply.retry_at = self._shared.clock() + DATABASE_RETRY_SECONDS
            log.warning("job %d: its outcome could not be read (%s); trying again shortly", job_id, exc)
            return False
        if job is None or not job.status.finished or (job.delivered_at is not None and not reply.again):
            reply.outcome = False
            reply.via = reply.via or "already"
            return False
        if job.owner != self._shared.store.instance:
            reply.outcome = False  # another process took it over (this one's lease ran out): it shows it
            log.warning("job %d: now owned by %s, which delivers it", job_id, job.owner)
            return False
        if reply.via is None or reply.again:
            try:
                via = await asyncio.wait_for(self._gated(self._replier.show_outcome(job)), self.delivery_timeout)
            except Exception as exc:
                if isinstance(exc, TimeoutError):
                    exc = DeliveryError(f"no answer within {self.delivery_timeout:.0f} s", retryable=True)
                elif not isinstance(exc, DeliveryError):
                    log.exception("job %d: unexpected error while delivering", job_id)
                    exc = DeliveryError(f"unexpected {type(exc).__name__}", retryable=True)
                METRICS.discord_edit_failures.labels("result", str(exc.retryable).lower()).inc()
                if self._later(job_id, reply, str(exc), retryable=exc.retryable):
                    return False
                via = "unreachable"
            if reply.again:
                reply.again, reply.outcome = False, False
                return False
            reply.via = via
        reply.outcome = False
        via = reply.via
        now = self._shared.clock()
        delivered = await self._shared.persistence.write(
            f"job {job_id}: delivered", lambda: self._shared.store.mark_delivered(job_id, via, now=now)
        )
        if delivered:
            log.info("job %d: delivered (%s, %s)", job_id, job.status, via)
            METRICS.job_latency.observe(now - job.created_at)
            METRICS.delivery_latency.observe(now - (job.finished_at or now))
        return delivered

    def _later(self, job_id: int, reply: _ReplyState, reason: str, *, retryable: bool) -> bool:
        """Schedule another try of the delivery; False when it is not worth one (the reply is gone for good)."""
        if not retryable or reply.attempts >= self.delivery_attempts:
            log.warning("job %d: reply cannot be edited (%s); giving up on it", job_id, reason)
            return False
        pause = min(300.0, 2.0 * 2**reply.attempts)
        reply.attempts += 1
        reply.retry_at = self._shared.clock() + pause
        log.warning("job %d: delivery failed (%s); retrying in %.0f s", job_id, reason, pause)
        return True

    async def _gated(self, edit: Any) -> Any:
        async with self._gate:
            return await edit
