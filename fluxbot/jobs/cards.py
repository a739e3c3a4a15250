"""Progress cards: which replies show a new place in line or a new elapsed time, and when.

A queued card near the front shows its new place at once, and a running card its new place in the provider's own
queue (fal's IN_QUEUE); the others, and running cards' elapsed time, at a modest cadence. At
most QUEUE_CARD_EDITS_PER_ROUND queued cards are edited per round, the front of the line first, then the cards
shown longest ago: a long line moving by one must not turn into an edit of every card at every round.
"""

from __future__ import annotations

from collections.abc import Mapping

from fluxbot.jobs.lifecycle import Job, JobStatus
from fluxbot.jobs.replies import Replies
from fluxbot.jobs.shared import Shared

#: Queued cards up to this place in line show a new place at once; the others at the usual card cadence.
QUEUE_LIVE_PLACES = 10
#: At most this many queued cards are edited per round.
QUEUE_CARD_EDITS_PER_ROUND = 25


class Cards:
    """Decides which progress cards are due and hands them to the reply workers."""

    #: How often a card shows the new elapsed time.
    refresh_seconds: float = 15.0

    def __init__(self, shared: Shared, replies: Replies) -> None:
        self._shared = shared
        self._replies = replies
        self._shown_at: dict[int, float] = {}
        self._shown_place: dict[int, int] = {}
        self._shown_provider_place: dict[int, int | None] = {}

    def show(self, job: Job, *, place: int | None = None, provider_place: int | None = None) -> None:
        """Show the job's card now (a job just queued or just submitted); `provider_place`: its place in the
        provider's own queue, as the provider counts it (0: next)."""
        now = self._shared.clock()
        self._shown_at[job.id] = now
        if place is not None:
            self._shown_place[job.id] = place
        self._shown_provider_place[job.id] = provider_place
        estimate = (
            self._shared.durations.estimate(job.provider, job.model) if job.status is JobStatus.SUBMITTED else None
        )
        self._replies.progress(job, position=place, estimate=estimate, provider_place=provider_place)

    def forget(self, job_id: int) -> None:
        """The job's card is done with (it finished)."""
        self._shown_at.pop(job_id, None)
        self._shown_place.pop(job_id, None)
        self._shown_provider_place.pop(job_id, None)

    def refresh_running(self, running: list[Job], provider_places: Mapping[int, int] | None = None) -> None:
        """Running cards show a new place in the provider's queue (by job id) at once, and the new elapsed time
        every `refresh_seconds`."""
        now = self._shared.clock()
        for job in running:
            provider_place = (provider_places or {}).get(job.id)
            # Waits in fal's queue are often shorter than the cadence: a place shown late would never be seen.
            moved = provider_place != self._shown_provider_place.get(job.id)
            if moved or now - self._shown_at.get(job.id, job.submitted_at or 0.0) >= self.refresh_seconds:
                self.show(job, provider_place=provider_place)

    async def refresh_queue(self) -> None:
        """Queued cards show their new place (the front at once) or, at the cadence, the elapsed time."""
        now = self._shared.clock()
        # The line, oldest first; a job whose command was not answered yet has no card and no place.
        waiting = [job for job in await self._shared.store.jobs_with_status(JobStatus.QUEUED) if job.reply.message_id]
        places = {job.id: place for place, job in enumerate(waiting, start=1)}
        moved = [
            j for j in waiting if places[j.id] <= QUEUE_LIVE_PLACES and self._shown_place.get(j.id) != places[j.id]
        ]
        moved_ids = {j.id for j in moved}
        stale = [
            j
            for j in waiting
            if j.id not in moved_ids and now - self._shown_at.get(j.id, j.created_at) >= self.refresh_seconds
        ]
        stale.sort(key=lambda j: self._shown_at.get(j.id, j.created_at))
        for job in [*moved, *stale][:QUEUE_CARD_EDITS_PER_ROUND]:
            self.show(job, place=places[job.id])
