"""Gathering: a job's tasks end one by one; each end is recorded, and the last one finishes the job with all they made.

A task whose images' links expire has them kept first (`keeping`), before anything else is done with its job. With
one task (most jobs) its end is the job's finish, in one write. With several, the ends before the last are
`task_end` writes (the job stays submitted, and the provider has a free slot again); the last one finishes the job
by `lifecycle.tasks_outcome`, recording every task's end with the outcome.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import replace

from fluxbot.jobs.dispatch import log_provider_error
from fluxbot.jobs.finishing import Finisher
from fluxbot.jobs.keeping import Keeper
from fluxbot.jobs.lifecycle import PROVIDER_FAILED_WORDS, FailureKind, Job, JobTask, TaskPhase, tasks_outcome
from fluxbot.jobs.shared import Shared
from fluxbot.providers.base import TaskState, TaskStatus

log = logging.getLogger(__name__)


class Gathering:
    """Knows what became of each followed job's tasks so far, and finishes the job when the last one ends."""

    def __init__(self, shared: Shared, finisher: Finisher, keeper: Keeper, *, freed: Callable[[], None]) -> None:
        self._shared = shared
        self._finisher = finisher
        self._keeper = keeper
        self._freed = freed  # told when a task's end freed a slot at the provider
        self._jobs: dict[int, Job] = {}  # jobs with a task ended and others running: their tasks as known now

    def forget(self, job_id: int) -> None:
        """The job finished (or is followed elsewhere)."""
        self._jobs.pop(job_id, None)

    async def ended(self, job: Job, task: JobTask) -> None:
        """One of the job's tasks ended: keep its images if their links expire, record it, and finish the job when
        it was the last one running."""
        if task.state is TaskPhase.SUCCEEDED:
            await self._keeper.keep(job, task.images)
        current = self._jobs.get(job.id, job).with_task(task)
        if current.running_tasks():
            self._jobs[job.id] = current  # before any await: a task ending meanwhile sees this one ended
            recorded = await self._shared.persistence.write(
                f"job {job.id}: task {task.number} {task.state}", lambda: self._shared.store.end_task(job.id, task)
            )
            if recorded:
                self._freed()
            else:
                log.warning("job %d: finished or moved to another process as its task %d ended", job.id, task.number)
                self.forget(job.id)
                self._finisher.lost(current)
            return
        self.forget(job.id)
        await self._finisher.finish(current, tasks_outcome(current), tasks=current.tasks)

    async def settle(self, job: Job) -> None:
        """Finish a submitted job none of whose tasks runs any more (its finish was cut off) from what they made."""
        log.warning("job %d: every task had ended but the job was not finished; finishing it now", job.id)
        await self._finisher.finish(job, tasks_outcome(job), tasks=job.tasks)


def ended_task(job: Job, task: JobTask, status: TaskStatus) -> JobTask:
    """What became of one of the job's tasks, from the provider's answer that it ended (logged)."""
    cost = task.cost if status.cost is None else status.cost  # the finished task's figure replaces the submit's
    if status.state is TaskState.SUCCEEDED:
        log.info("job %d: task %s succeeded with %d image(s)", job.id, task.task_id, len(status.images))
        return replace(task, state=TaskPhase.SUCCEEDED, images=status.images, cost=cost,
                       inference_seconds=status.inference_seconds)  # fmt: skip
    if status.error is not None:
        log_provider_error(job, status.error, "task")
        return replace(task, state=TaskPhase.FAILED, error_kind=FailureKind.named(status.error.kind.value),
                       error_message=status.error.user_message, cost=cost)  # fmt: skip
    return replace(task, state=TaskPhase.FAILED, error_kind=FailureKind.FAILED, error_message=PROVIDER_FAILED_WORDS,
                   cost=cost)  # fmt: skip
