"""Dispatch: claim queued jobs while the provider has free slots, and submit each in an asyncio task of its own.

A job of several provider tasks sends its first alone: a refusal then fails the job before anything more is sent
(or billed). Once the provider accepted it, the others are sent together; the job is recorded as submitted with
all of them, those whose submit failed as failed tasks.
"""

from __future__ import annotations

import asyncio
import logging
import random
from collections.abc import Callable
from dataclasses import replace

from fluxbot.errors import Message
from fluxbot.i18n import N_
from fluxbot.jobs.alarms import ALARMS
from fluxbot.jobs.capacity import Capacity, task_counts
from fluxbot.jobs.finishing import Finisher
from fluxbot.jobs.lifecycle import FailureKind, Job, JobStatus, JobTask, Outcome, TaskPhase
from fluxbot.jobs.requests import request_of
from fluxbot.jobs.shared import Shared, spawn
from fluxbot.metrics import METRICS
from fluxbot.providers.base import JobRequest, Provider, ProviderError, Submitted
from fluxbot.storage import StoreUnavailable

log = logging.getLogger(__name__)

PROVIDER_SWITCHED = Message(
    N_(
        "The bot now uses another image provider and has no key for the one that had this job, so it cannot be "
        "followed any more. Please run the command again."
    )
)
UNEXPECTED_ERROR = Message(N_("Something went wrong inside the bot while starting this job. Please try again."))

#: Told of each job the provider accepted, once its task id is stored.
OnSubmitted = Callable[[Job], None]


class Dispatcher:
    """Claims and submits jobs, oldest first, while fewer than `max_in_flight` are at the provider and their tasks
    fit the provider's and the model's concurrency (`capacity.Capacity`)."""

    #: Pauses before resending a submit that surely did not start a job (429, connection refused).
    submit_retry_delays: tuple[float, ...] = (1.0, 3.0)

    def __init__(
        self,
        shared: Shared,
        finisher: Finisher,
        *,
        max_in_flight: int,
        callback_url: str | None,
        submitted: OnSubmitted,
    ) -> None:
        self._shared = shared
        self._finisher = finisher
        self.max_in_flight = max_in_flight
        self._callback_url = callback_url
        self._submitted = submitted
        #: What the claim keeps besides `max_in_flight`: the providers' and models' concurrent tasks.
        self._capacity = Capacity(shared.infos)
        self._filling: asyncio.Task[None] | None = None
        self._again = False
        self._submits: set[asyncio.Task[None]] = set()

    def fill(self) -> None:
        """Claim and submit queued jobs while there are free slots (in the background; cheap to call often)."""
        if self._filling is not None and not self._filling.done():
            self._again = True  # a slot freed or a job arrived while claiming: claim once more after this round
            return
        self._filling = spawn(self._fill(), "fluxbot-dispatch", self._submits)

    def busy(self) -> list[asyncio.Task[None]]:
        """Claims and submits under way."""
        return [t for t in self._submits if not t.done()]

    def claiming(self) -> list[asyncio.Task[None]]:
        """The claim round under way, if any (its submits are not waited for)."""
        return [self._filling] if self._filling is not None and not self._filling.done() else []

    async def _fill(self) -> None:
        while True:
            self._again = False
            try:
                while (job := await self._shared.store.claim(self.max_in_flight, self._capacity)) is not None:
                    # Each submit is its own task, started at once (slots freed together fill together).
                    spawn(self._submit(job), f"fluxbot-submit-{job.id}", self._submits)
            except StoreUnavailable as exc:
                log.warning("could not claim queued jobs (%s); trying again at the next round", exc)
                return
            if not self._again:
                return

    async def _submit(self, job: Job) -> None:
        provider = self._shared.providers.get(job.provider)
        if provider is None:
            await self._finisher.finish(job, Outcome.failed(FailureKind.PROVIDER_SWITCHED, PROVIDER_SWITCHED))
            return
        request = request_of(job, callback_url=self._callback_url if job.expects_callback else None)
        counts = task_counts(self._shared.infos.get(job.provider), job.model, job.count)
        try:
            first = await self._send(job, provider, replace(request, count=counts[0]))
        except ProviderError as exc:
            log_provider_error(job, exc, "submit")
            await self._finisher.finish(job, Outcome.failed(FailureKind.named(exc.kind.value), exc.user_message))
            return
        except Exception:
            log.exception("job %d: unexpected error while submitting", job.id)
            await self._finisher.finish(job, Outcome.failed(FailureKind.INTERNAL, UNEXPECTED_ERROR))
            return
        more = [self._send_task(job, provider, replace(request, count=n), number)
                for number, n in enumerate(counts[1:], start=2)]  # fmt: skip
        tasks = [_started(1, first), *await asyncio.gather(*more)]
        METRICS.jobs_submitted.labels(job.provider, job.model).inc()
        ids = ", ".join(t.task_id or "(failed)" for t in tasks)
        log.info("job %d: submitted as task%s %s", job.id, "s" if len(tasks) > 1 else "", ids)
        # The provider has it (and may bill it): the tasks are stored however long the database takes.
        now = self._shared.clock()
        recorded = await self._shared.persistence.write(
            f"job {job.id}: task {ids}", lambda: self._shared.store.mark_submitted(job.id, tasks, now=now)
        )
        if not recorded:
            log.error("job %d: task %s was accepted, but the job was no longer pending", job.id, ids)
            return
        submitted = replace(job, status=JobStatus.SUBMITTED, task_id=first.task.task_id, submitted_at=now)
        self._submitted(replace(submitted, tasks=tuple(tasks)))

    async def _send_task(self, job: Job, provider: Provider, request: JobRequest, number: int) -> JobTask:
        """Send one more of a job's tasks (the first was accepted): the task, or a failed one saying why."""
        try:
            return _started(number, await self._send(job, provider, request))
        except ProviderError as exc:
            log_provider_error(job, exc, f"submit of task {number}")
            return JobTask(number, None, TaskPhase.FAILED, error_kind=FailureKind.named(exc.kind.value),
                           error_message=exc.user_message)  # fmt: skip
        except Exception:
            log.exception("job %d: unexpected error while submitting task %d", job.id, number)
            return JobTask(number, None, TaskPhase.FAILED, error_kind=FailureKind.INTERNAL,
                           error_message=UNEXPECTED_ERROR)  # fmt: skip

    async def _send(self, job: Job, provider: Provider, request: JobRequest) -> Submitted:
        delays = list(self.submit_retry_delays)
        while True:
            try:
                METRICS.provider_calls.labels(job.provider, "submit").inc()
                with METRICS.provider_latency.labels(job.provider, "submit").time():
                    return await provider.submit(request)
            except ProviderError as exc:
                METRICS.provider_errors.labels(job.provider, "submit", exc.code or exc.kind.value).inc()
                # Only a request that surely started nothing is sent again: a resend could bill twice.
                if not exc.safe_to_resend or not delays:
                    raise
                delay = delays.pop(0) * random.uniform(0.8, 1.2)
                log.warning("job %d: submit refused (%s), retrying in %.1f s", job.id, exc.kind, delay)
                await asyncio.sleep(delay)


def _started(number: int, submitted: Submitted) -> JobTask:
    return JobTask(number, submitted.task.task_id, poll_url=submitted.task.poll_url, cost=submitted.cost)


def log_provider_error(job: Job, exc: ProviderError, stage: str) -> None:
    """Log a provider error; one only the operator can fix at ERROR, once (`alarms.ALARMS`), then quietly."""
    if exc.kind.operator_problem and ALARMS.first(job.provider, exc):
        log.error("job %d: %s failed, operator action needed: %s [%s]", job.id, stage, exc.user_message, exc)
    elif exc.kind.operator_problem:
        log.info("job %d: %s failed, the same operator problem as before: %s", job.id, stage, exc)
    else:
        log.warning("job %d: %s failed: %s", job.id, stage, exc)
