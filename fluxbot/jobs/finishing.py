"""Finishing: the one way into a final state, for results, failures, timeouts, cancels and restarts alike."""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from dataclasses import replace

from fluxbot.jobs.lifecycle import Job, JobStatus, JobTask, Outcome, Transition
from fluxbot.jobs.requests import MAX_COUNT
from fluxbot.jobs.shared import Shared
from fluxbot.metrics import METRICS

log = logging.getLogger(__name__)

#: Told of every job this process finished (the job as it is now final).
Listener = Callable[[Job], None]


class Finisher:
    """Gives jobs their outcome, once, and tells the others (tracker, dispatcher, delivery) that it happened."""

    def __init__(self, shared: Shared) -> None:
        self._shared = shared
        self._listeners: list[Listener] = []
        self._lost: list[Listener] = []

    def on_finished(self, listener: Listener) -> None:
        """Call `listener` with each job this process finishes."""
        self._listeners.append(listener)

    def on_lost(self, listener: Listener) -> None:
        """Call `listener` with each job this process tried to finish but could not (it ended or moved elsewhere)."""
        self._lost.append(listener)

    def lost(self, job: Job) -> None:
        """Tell the others this process no longer has the job to finish (it ended, or moved elsewhere)."""
        for listener in self._lost:
            listener(job)

    async def finish(
        self,
        job: Job,
        outcome: Outcome,
        *,
        transition: Transition = Transition.FINISH,
        tasks: Sequence[JobTask] = (),
    ) -> bool:
        """Give the job its outcome (recording what became of `tasks`, its provider tasks, with it); True when this
        call finished it (a racing caller, or a cancel of a job that started meanwhile, gets False). The write is
        retried until the database takes it."""
        # Never more images than asked for: Discord shows ten attachments at most, and the member asked for these.
        kept = replace(outcome, images=outcome.images[: min(job.count, MAX_COUNT)])
        now = self._shared.clock()
        won = await self._shared.persistence.write(
            f"job {job.id}: {kept.status}",
            lambda: self._shared.store.finish(job.id, kept, transition=transition, now=now, tasks=tasks),
        )
        if not won:
            if transition is Transition.FINISH:  # a cancel that lost leaves a started job to its process
                self.lost(job)
            return False
        METRICS.jobs_finished.labels(job.provider, job.model, kept.status.value).inc()
        if kept.error is not None:
            METRICS.job_failures.labels(job.provider, job.model, kept.error.value).inc()
        if kept.status is JobStatus.SUCCEEDED and job.submitted_at is not None:
            self._shared.durations.add(job.provider, job.model, now - job.submitted_at)
        final = replace(
            job,
            status=kept.status,
            images=kept.images,
            inference_seconds=kept.inference_seconds,
            error_kind=kept.error,
            error_message=kept.message,
            finished_at=now,
            tasks=tuple(tasks) or job.tasks,
        )
        for listener in self._listeners:
            listener(final)
        return True
