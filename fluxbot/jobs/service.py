"""The job core's one facade: what the cogs, buttons and web server call, and the background loop that runs it.

A job's way: `enqueue` (admission, the member waits for it) → `claim` + `submit` (dispatch) → `follow` (tracker)
→ `finish` (finishing) → `deliver` (reply workers). Each step lives in its own module; this one wires them.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Mapping
from typing import Any

from fluxbot import catalog
from fluxbot.downloads import ImageFetcher
from fluxbot.errors import Message
from fluxbot.i18n import N_
from fluxbot.jobs.cards import Cards
from fluxbot.jobs.dispatch import Dispatcher
from fluxbot.jobs.durations import HISTORY, Durations
from fluxbot.jobs.finishing import Finisher
from fluxbot.jobs.housekeeping import Housekeeping
from fluxbot.jobs.keeping import Keeper
from fluxbot.jobs.lifecycle import CallbackOutcome, FailureKind, Job, JobStatus, Outcome, Reply, Transition
from fluxbot.jobs.loop import JobLoop, LoopParts
from fluxbot.jobs.ownership import LEASE_SECONDS, Ownership
from fluxbot.jobs.persist import Persistence
from fluxbot.jobs.replies import Replier, Replies
from fluxbot.jobs.shared import Shared
from fluxbot.jobs.tracker import Tracker
from fluxbot.limits import Limits, Refused
from fluxbot.providers.base import JobRequest, Provider
from fluxbot.quotas import refusal
from fluxbot.storage import Signal, Store, StoreUnavailable

log = logging.getLogger(__name__)

#: For callers that apply no member limits (tests, tools).
NO_LIMITS = Limits(member_jobs=1_000_000)
CANCELLED = Message(N_("A moderator cancelled this job before it started. Nothing was made or charged."))
#: Why a job was closed unseen when its command could not be answered (`abandon`: the reason its Details show).
NOT_ACKNOWLEDGED = Message(N_("the command could not be acknowledged in time"))
#: The refusal of a job the store would not admit when the limits give no reason (a race with another command).
NO_ROOM_NOW = N_("You cannot start another job right now. Please try again in a moment.")


class Jobs:
    """Runs jobs from command to delivered reply, and keeps them running across restarts."""

    def __init__(
        self,
        store: Store,
        provider: Provider,
        replier: Replier,
        *,
        poll_interval: float,
        job_timeout: float,
        max_in_flight: int = 20,
        other_providers: Mapping[str, Provider] | None = None,
        callback_url: str | None = None,
        clock: Callable[[], float] = time.time,
        lease_seconds: float = LEASE_SECONDS,
        retention_days: int = 0,
        infos: Mapping[str, catalog.ProviderInfo] | None = None,
        fetcher: ImageFetcher | None = None,
    ) -> None:
        self.store = store
        self.provider = provider
        self.poll_interval = poll_interval
        self._clock = clock
        self._callback_url = callback_url
        providers: dict[str, Provider] = {**(other_providers or {}), provider.name: provider}
        self.persistence = Persistence()
        self.durations = Durations()
        #: What each provider offers (the catalogue unless given: tests give their own).
        self.infos = catalog.PROVIDERS if infos is None else infos
        shared = self._shared = Shared(store, providers, clock, self.durations, self.persistence, self.infos)
        self.finisher = Finisher(shared)
        #: Downloads the images of providers whose links expire as their task ends (with `fetcher`; else none).
        self.keeper = Keeper(shared, fetcher)
        self.replies = Replies(shared, replier)
        self.cards = Cards(shared, self.replies)
        self.tracker = Tracker(
            shared,
            self.finisher,
            poll_interval=poll_interval,
            job_timeout=job_timeout,
            callbacks=callback_url is not None,
            rescheduled=self._rescheduled,
            freed=lambda: self.dispatcher.fill(),  # a task's end freed a slot at the provider
            keeper=self.keeper,
        )
        self.dispatcher = Dispatcher(
            shared, self.finisher, max_in_flight=max_in_flight, callback_url=callback_url, submitted=self._submitted
        )
        self.ownership = Ownership(
            shared, self.finisher, self.tracker, self.replies, close_unshown=self._close_unshown,
            lease_seconds=lease_seconds,
        )  # fmt: skip
        self.housekeeping = Housekeeping(shared, retention_days=retention_days)
        parts = LoopParts(self.ownership, self.housekeeping, self.tracker, self.dispatcher, self.replies,
                          self._cards_round)  # fmt: skip
        self.loop = JobLoop(parts, poll_interval=poll_interval, clock=clock)
        self.finisher.on_finished(self._finished)
        self.finisher.on_lost(self._lost)
        store.listen(self._signalled)
        self._attaching: set[asyncio.Task[Any]] = set()

    # -- what members do -------------------------------------------------------------------------

    async def enqueue(self, request: JobRequest, reply: Reply, limits: Limits) -> Job:
        """Queue a job if the member's limits allow it; Refused says why not (before anything is answered)."""
        now = self._clock()
        job = await self.store.admit(
            self.provider.name, request, reply, limits=limits, expects_callback=bool(self._callback_url), now=now
        )
        if job is None:
            usage = await self.store.usage(reply.user_id, budget=limits.budget, now=now)
            reason = refusal(usage, limits, images=request.count, now=now)
            raise Refused(reason or NO_ROOM_NOW)
        log.info("job %d: %s with %s, size %s, count %d", job.id, job.action, job.model, job.size, job.count)
        return job

    async def attach_reply(self, job: Job, message_id: int) -> None:
        """The job's reply exists now: it may start (a free slot) or show its place in line."""
        task = asyncio.current_task()
        if task is not None:
            self._attaching.add(task)
        try:
            await self.store.set_message(job.id, message_id)
            self.dispatcher.fill()
            await self.settle(self.dispatcher.claiming)
            current = await self.store.get_job(job.id)
            if current is not None and current.status is JobStatus.QUEUED:
                place = (await self.store.reports.queue_positions()).get(job.id)
                self.cards.show(current, place=place)
        finally:
            if task is not None:
                self._attaching.discard(task)

    async def start(self, request: JobRequest, reply: Reply, limits: Limits = NO_LIMITS) -> Job:
        """Queue a job on a reply whose message id is known and start it (tests and tools); the job as it is then."""
        assert reply.message_id is not None
        job = await self.enqueue(request, reply, limits)
        await self.attach_reply(job, reply.message_id)
        await self.settle()
        current = await self.store.get_job(job.id)
        assert current is not None
        return current

    async def abandon(self, job: Job, reason: str = NOT_ACKNOWLEDGED) -> None:
        """Close a queued job that has no reply to show anything on; `reason` (best a `Message`: a plain text is
        said in a member's language only when a catalog has it as it is) is what its Details show."""
        log.warning("job %d: abandoned before it started: %s", job.id, reason)
        said = reason if isinstance(reason, Message) else Message(reason)
        await self._close_unshown(job, Outcome.failed(FailureKind.ABANDONED, said))

    async def cancel_queued(self, guild_id: int, user_id: int) -> int:
        """Cancel a member's jobs that are still waiting in the queue; returns how many."""
        cancelled = 0
        for job in await self.store.queued_jobs_of(guild_id, user_id):
            outcome = Outcome.failed(FailureKind.CANCELLED, CANCELLED)
            cancelled += await self.finisher.finish(job, outcome, transition=Transition.CANCEL)
        return cancelled

    async def hint(self, task_id: str) -> CallbackOutcome:
        """A provider says `task_id` ended: it is looked up soon (the callback itself is not trusted)."""
        known = self.tracker.hint(self.provider.name, task_id)
        if known is not None:
            if known is CallbackOutcome.ACCEPTED:
                self.loop.wake()
            return known
        try:
            job = await self.store.job_for_task(self.provider.name, task_id)
            if job is None:
                return CallbackOutcome.UNKNOWN
            if job.status.finished:
                return CallbackOutcome.FINISHED
            if job.owner != self.store.instance:
                # Another process follows it: it looks the task up (one lookup, one delivery, whoever got the call).
                await self.store.signal(Signal.HINT, f"{self.provider.name} {task_id}")
        except StoreUnavailable:
            return CallbackOutcome.UNAVAILABLE  # the provider may send it again; polling finds it meanwhile
        return CallbackOutcome.ACCEPTED

    async def show_again(self, job: Job, reply: Reply) -> bool:
        """Show a finished job's result once more, in a new reply (for /job); False when it could not be shown."""
        return await self.replies.show_again(job, reply, now=self._clock())

    async def kept_images(self, job: Job) -> Mapping[str, bytes]:
        """The job's images downloaded as its tasks ended, by URL, for delivery ({} when its provider's links do not
        expire)."""
        return await self.keeper.kept(job)

    async def deliver(self, job_id: int) -> bool:
        """Show a finished job's outcome on its reply now; True when this call delivered it."""
        return await self.replies.deliver_now(job_id)

    # -- start-up, the background loop, shutdown -------------------------------------------------

    async def resume(self) -> None:
        """Take the lease and take up what stopped runs left: close jobs cut off mid-submit, follow submitted ones,
        deliver the rest."""
        for name in self._shared.providers:
            for model in catalog.model_names(self.infos[name]) if name in self.infos else ():
                self.durations.load(name, model, await self.store.reports.recent_durations(name, model, limit=HISTORY))
        await self.ownership.start()
        self.dispatcher.fill()

    def start_tracker(self) -> None:
        """Run the background loop (lookups, claims, cards, delivery retries) in one task."""
        self.loop.start()

    async def stop_tracker(self, within: float = 5.0) -> None:
        """Stop the loop, letting the lookups and deliveries under way finish (up to `within` seconds)."""
        await self.loop.stop()
        self.housekeeping.stop()
        await finish_work(self.tracker.busy, self.replies.busy, within=within)

    async def drain(self, within: float) -> None:
        """Wait (up to `within` seconds) for jobs being submitted right now, then give the lease up (at shutdown)."""
        pending = set(self.dispatcher.busy()) | self._attaching
        if pending:
            log.info("waiting for %d job(s) being submitted", len(pending))
            await asyncio.wait(pending, timeout=within)
        await finish_work(self.replies.busy, within=3.0)  # the cards those submits asked for
        # Only now: another process would close a job whose submit is under way as cut off.
        await self.ownership.stop()
        self.persistence.stop()

    def tracker_alive(self) -> bool:
        """True while the background loop runs and began a round recently."""
        return self.loop.alive()

    def writes_healthy(self) -> bool:
        """False while a job's state cannot be written to the database."""
        return self.persistence.healthy

    async def round(self) -> None:
        """One pass of the background work, then wait until it settles (tests and tools)."""
        self.ownership.round()
        self.housekeeping.round()
        await settle(self.ownership.busy, self.housekeeping.busy)
        self.replies.retry_due()
        self.dispatcher.fill()
        await self.settle()
        await self._cards_round()
        await self.tracker.round()
        await self.settle()

    async def settle(self, *parts: Callable[[], list[asyncio.Task[Any]]]) -> None:
        """Wait until the given parts (all when none given) have no work under way."""
        await settle(*(parts or (self.dispatcher.busy, self.tracker.busy, self.replies.busy)))

    async def _cards_round(self) -> None:
        self.cards.refresh_running(self.tracker.followed(), self.tracker.provider_places())
        await self.cards.refresh_queue()

    def _submitted(self, job: Job) -> None:
        self.tracker.follow(job)
        self.cards.show(job)
        self._rescheduled()

    def _rescheduled(self) -> None:
        self.loop.rescheduled()

    def _signalled(self, signal: Signal, payload: str) -> None:
        """Another process got a callback for a task this one follows."""
        if signal is Signal.HINT:
            provider, _, task_id = payload.partition(" ")
            if self.tracker.hint(provider, task_id) is CallbackOutcome.ACCEPTED:
                self.loop.wake()

    def _lost(self, job: Job) -> None:
        """Another run owns the job now (or finished it first): stop following it here."""
        self.tracker.forget(job)
        self.cards.forget(job.id)

    def _finished(self, job: Job) -> None:
        self.tracker.forget(job)
        self.cards.forget(job.id)
        if job.reply.message_id is not None:  # a job that never had a reply has nothing to show
            self.replies.deliver(job.id)
        self.dispatcher.fill()  # a slot may have freed

    async def _close_unshown(self, job: Job, outcome: Outcome) -> None:
        """Cancel a job that never had a reply: nothing is shown, and it counts as delivered nowhere."""
        if await self.finisher.finish(job, outcome, transition=Transition.CANCEL):
            await self.persistence.write(
                f"job {job.id}: closed", lambda: self.store.mark_delivered(job.id, "none", now=self._clock())
            )


async def settle(*parts: Callable[[], list[asyncio.Task[Any]]]) -> None:
    """Wait until none of `parts` has work under way (work may start more work: wait for that too)."""
    while busy := [task for part in parts for task in part()]:
        await asyncio.wait(busy)


async def finish_work(*parts: Callable[[], list[asyncio.Task[Any]]], within: float) -> None:
    """Let the work under way finish (lookups, deliveries) for up to `within` seconds, then stop it."""
    busy = [task for part in parts for task in part()]
    if busy:
        _, late = await asyncio.wait(busy, timeout=within)
        if late:
            log.warning("%d delivery or lookup task(s) took over %.0f s at shutdown; stopped", len(late), within)
            for task in late:
                task.cancel()
