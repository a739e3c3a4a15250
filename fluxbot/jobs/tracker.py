"""Following tasks at the provider: decides when each task is looked up, batches the lookups, judges timeouts.

A job holds one provider task or several (`lifecycle.JobTask`); each is followed on its own, and `gathering` turns
their ends into the job's.

Each task has its own schedule. In polling mode a task is looked up often while it is likely to finish (from the
durations this model's jobs took before) and less often before and after; with callbacks it is looked up where a
callback that never came would otherwise be noticed late, and soon after a callback says it ended. Every due task
of a provider goes into as few batch calls as its batch size allows. A failing lookup backs off that task (and
the others of its batch call) only, never the rest.
"""

from __future__ import annotations

import asyncio
import logging
import math
from collections import OrderedDict
from collections.abc import Callable, Coroutine, Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Any

from fluxbot.errors import Message
from fluxbot.i18n import N_
from fluxbot.jobs.alarms import ALARMS
from fluxbot.jobs.dispatch import PROVIDER_SWITCHED
from fluxbot.jobs.durations import Durations
from fluxbot.jobs.finishing import Finisher
from fluxbot.jobs.gathering import Gathering, ended_task
from fluxbot.jobs.keeping import Keeper
from fluxbot.jobs.lifecycle import CallbackOutcome, FailureKind, Job, JobTask, Outcome, TaskPhase
from fluxbot.jobs.shared import Shared, spawn
from fluxbot.metrics import METRICS
from fluxbot.providers.base import Provider, ProviderError, TaskState, TaskStatus

log = logging.getLogger(__name__)

#: Past the job timeout, how long a task whose lookups keep failing waits for one answer before timing out.
TIMEOUT_GRACE_SECONDS = 300.0
#: While a task is likely to finish, it is looked up this often (at most the poll interval).
LIKELY_CADENCE = 1.4
#: With callbacks, while a task is likely to finish, it is still looked up this often: a lost callback shows soon.
CALLBACK_CHECK_SECONDS = 3.0
#: Without any history, a task's first look is this long after its submit.
FIRST_LOOK_SECONDS = 2.0
#: The last look before a timeout comes this long after the deadline.
LAST_LOOK_AFTER = 0.5
#: However many callbacks arrive for one task, it is looked up for them at most once in this many seconds.
HINT_GAP_SECONDS = 2.0
#: A task is looked up once it has at least this chance (from its model's past durations) of having ended.
LOOK_CHANCE = 0.08
#: A call is made only if its tasks likely hold at least this many ended ones (else they wait one round).
MIN_LIKELY_ENDS = 1.0
#: Due tasks are looked up together with those due within this many seconds (fuller batches, fewer calls).
BATCH_WINDOW = 0.05


@dataclass
class _Task:
    """One task being followed, and its schedule."""

    job: Job  # as it was when followed: its fixed parts (provider, model, times); `gathering` knows its tasks' ends
    task: JobTask
    due: float
    failures: int = 0
    answered_at: float | None = None  # when a lookup last answered for it
    error: ProviderError | None = None  # its last lookup's error, if that lookup failed
    looking: bool = False
    hinted_at: float = 0.0  # when a callback last brought its lookup forward
    deferred: bool = False  # left out of a round to save a call that would have been mostly empty
    hinted: bool = False  # a callback said it ended: looked up in the next round, whatever the savings
    hinted_while_looking: bool = False  # a callback came while a lookup of it was under way
    guessed: bool = True  # scheduled before this model had any history: rescheduled once it has
    queue_position: int | None = None  # its place in the provider's own queue at the last lookup (0: next)


class Tracker:
    """Follows this process's submitted jobs until the provider says they ended, or they time out."""

    #: How many lookup calls run at once.
    lookup_concurrency: int = 4
    #: How often jobs that expect a provider callback are looked up anyway, outside their likely window.
    callback_poll_interval: float = 30.0

    def __init__(
        self,
        shared: Shared,
        finisher: Finisher,
        *,
        poll_interval: float,
        job_timeout: float,
        callbacks: bool,
        rescheduled: Callable[[], None] = lambda: None,
        freed: Callable[[], None] = lambda: None,
        keeper: Keeper | None = None,
    ) -> None:
        self._shared = shared
        self._finisher = finisher
        self._gathering = Gathering(shared, finisher, keeper or Keeper(shared, None), freed=freed)
        self.poll_interval = poll_interval
        self.job_timeout = job_timeout
        self._callbacks = callbacks
        self._rescheduled = rescheduled  # told when a lookup's answer changed when the next one is due
        self._tasks: dict[tuple[int, int], _Task] = {}  # by (job id, task number)
        self._by_task: dict[tuple[str, str], tuple[int, int]] = {}  # (provider, task id) → (job id, task number)
        self._ended: OrderedDict[tuple[str, str], None] = OrderedDict()  # recently finished, for late callbacks
        self._lookups: set[asyncio.Task[Any]] = set()  # lookups, and finishes started by a round
        self._gate = asyncio.Semaphore(self.lookup_concurrency)

    def follow(self, job: Job, *, at_once: bool = False) -> None:
        """Start following a submitted job's running tasks (`at_once`: look them up at the next round, e.g. after a
        restart)."""
        tasks = job.running_tasks() or ((JobTask(1, job.task_id),) if job.task_id and not job.tasks else ())
        if not tasks:  # every task ended, but the job's finish was cut off: it finishes from what they made
            spawn(self._gathering.settle(job), f"fluxbot-finish-{job.id}", self._lookups)
            return
        now = self._shared.clock()
        for job_task in tasks:
            assert job_task.task_id is not None
            task = _Task(job, job_task, 0.0)
            task.due = now if at_once else self._next_look(task, now)
            self._tasks[(job.id, job_task.number)] = task
            self._by_task[(job.provider, job_task.task_id)] = (job.id, job_task.number)

    def forget(self, job: Job) -> None:
        """Stop following a job (it finished)."""
        for key in [key for key in self._tasks if key[0] == job.id]:
            self._drop(self._tasks[key])
        self._gathering.forget(job.id)

    def _drop(self, task: _Task) -> None:
        """Stop following one task (it ended): a late callback for it is known as one."""
        self._tasks.pop((task.job.id, task.task.number), None)
        key = (task.job.provider, task.task.task_id or "")
        self._by_task.pop(key, None)
        self._ended[key] = None
        while len(self._ended) > 10_000:
            self._ended.popitem(last=False)

    def followed(self) -> list[Job]:
        """The jobs being followed, oldest first."""
        jobs = {task.job.id: task.job for task in self._tasks.values()}
        return [jobs[job_id] for job_id in sorted(jobs)]

    def provider_places(self) -> dict[int, int]:
        """Each followed job waiting in its provider's own queue: its best task's place there (0: next), by job id."""
        places: dict[int, int] = {}
        for task in self._tasks.values():
            if task.queue_position is not None:
                places[task.job.id] = min(places.get(task.job.id, task.queue_position), task.queue_position)
        return places

    def hint(self, provider: str, task_id: str) -> CallbackOutcome | None:
        """A callback says the task ended: look it up soon (once, however many callbacks come); None: not known here."""
        key = self._by_task.get((provider, task_id))
        if key is None:
            return CallbackOutcome.FINISHED if (provider, task_id) in self._ended else None
        task = self._tasks[key]
        now = self._shared.clock()
        if task.looking:
            task.hinted_while_looking = True  # the answer under way may predate the end: look again soon
            return CallbackOutcome.ACCEPTED
        soonest = max(now, task.hinted_at + HINT_GAP_SECONDS)
        if not task.failures and soonest < task.due:
            task.due, task.hinted_at, task.hinted = soonest, soonest, True
        return CallbackOutcome.ACCEPTED

    def next_due(self) -> float | None:
        """When the next lookup is due, or None when nothing is followed."""
        return min((t.due for t in self._tasks.values() if not t.looking), default=None)

    def busy(self) -> list[asyncio.Task[None]]:
        """Lookups under way."""
        return [t for t in self._lookups if not t.done()]

    async def round(self) -> None:
        """Start the lookups that are due (they run on their own) and time out tasks that cannot be looked up."""
        now = self._shared.clock()
        due: dict[str, list[_Task]] = {}
        for task in list(self._tasks.values()):
            if task.looking:
                continue
            if (
                task.guessed
                and not task.failures
                and self._shared.durations.estimate(task.job.provider, task.job.model)
            ):
                task.due = min(task.due, self._next_look(task, now))
            if task.due <= now + BATCH_WINDOW:
                due.setdefault(task.job.provider, []).append(task)
            elif self._past_deadline(task, now):
                self._off_loop(task, self._time_out(task))
        for name, tasks in due.items():
            provider = self._shared.providers.get(name)
            if provider is None:
                switched = Outcome.failed(FailureKind.PROVIDER_SWITCHED, PROVIDER_SWITCHED)
                jobs = {task.job.id: task.job for task in tasks}
                for task in tasks:
                    task.looking = True
                for job in jobs.values():
                    spawn(self._finisher.finish(job, switched), f"fluxbot-finish-{job.id}", self._lookups)
                continue
            step = min(LIKELY_CADENCE, self.poll_interval)
            tasks = _fill_batches(tasks, provider.max_batch, now, self._shared.durations, step)
            for start in range(0, len(tasks), provider.max_batch):
                chunk = tasks[start : start + provider.max_batch]
                for task in chunk:
                    task.looking, task.hinted_while_looking = True, False
                spawn(self._look_up(provider, chunk), f"fluxbot-lookup-{name}", self._lookups)

    def _off_loop(self, task: _Task, finishing: Coroutine[Any, Any, object]) -> None:
        """Finish a task in its own task: a database that refuses the write (retried) must not stop the rounds."""
        task.looking = True  # nothing more is started for it meanwhile
        spawn(finishing, f"fluxbot-finish-{task.job.id}", self._lookups)

    async def _look_up(self, provider: Provider, chunk: Sequence[_Task]) -> None:
        try:
            async with self._gate:
                METRICS.provider_calls.labels(provider.name, "lookup").inc()
                try:
                    with METRICS.provider_latency.labels(provider.name, "lookup").time():
                        statuses = await provider.lookup([t.task.ref for t in chunk])
                except ProviderError as exc:
                    METRICS.provider_errors.labels(provider.name, "lookup", exc.code or exc.kind.value).inc()
                    await self._failed(chunk, exc)
                    return
                except Exception:
                    log.exception("lookup failed unexpectedly")
                    await self._failed(chunk, None)
                    return
            await self._answered(chunk, statuses)
        finally:
            for task in chunk:
                task.looking = False
            self._rescheduled()

    async def _answered(self, chunk: Sequence[_Task], statuses: Mapping[str, TaskStatus]) -> None:
        now = self._shared.clock()
        for task in chunk:
            task.failures, task.error, task.answered_at, task.deferred, task.hinted = 0, None, now, False, False
            status = statuses.get(task.task.task_id or "")
            task.queue_position = status.queue_position if status is not None else None
            if status is not None and status.state is not TaskState.RUNNING:
                await self._end(task, status)
            elif self._past_deadline(task, now):
                await self._time_out(task)
            elif task.hinted_while_looking:  # a callback came while this answer was on its way: it may be older
                task.due, task.hinted_at, task.hinted = now + HINT_GAP_SECONDS, now + HINT_GAP_SECONDS, True
            else:
                task.due = self._next_look(task, now)

    async def _failed(self, chunk: Sequence[_Task], exc: ProviderError | None) -> None:
        now = self._shared.clock()
        pause = 0.0
        for task in chunk:
            task.failures += 1
            task.error = exc
            pause = min(60.0, self.poll_interval * 2 ** (task.failures - 1))
            task.due = now + pause
            if self._past_deadline(task, now):
                await self._time_out(task)
        if exc is not None:
            log.warning("lookup of %d task(s) failed (%s); they are looked up again in %.0f s", len(chunk), exc, pause)
            if exc.kind.operator_problem and chunk and ALARMS.first(chunk[0].job.provider, exc):
                log.error("operator action needed: %s", exc.user_message)

    def _next_look(self, task: _Task, now: float) -> float:
        """When to look the task up next: by its schedule, and one last look just past its deadline."""
        started = task.job.submitted_at or task.job.created_at
        last_look = started + self.job_timeout + LAST_LOOK_AFTER
        scheduled = self._scheduled(task, now)
        return min(scheduled, last_look) if now < last_look else scheduled

    def _scheduled(self, task: _Task, now: float) -> float:
        """When to look the task up next, from how long this model's jobs usually take."""
        job = task.job
        started = job.submitted_at or job.created_at
        age = now - started
        usual = self._shared.durations.estimate(job.provider, job.model)
        task.guessed = usual is None
        if self._callbacks and job.expects_callback:
            if usual is None:  # nothing to expect yet: the callback comes, or the slow safety net finds it
                return now + self.callback_poll_interval
            # From when it may have ended on, often enough that a lost callback is noticed within seconds.
            return _on_grid(max(now + CALLBACK_CHECK_SECONDS, started + usual.early), CALLBACK_CHECK_SECONDS, now)
        step = min(LIKELY_CADENCE, self.poll_interval)
        first = usual.early if usual is not None else min(FIRST_LOOK_SECONDS, self.poll_interval)
        if age < first:  # not before this model's jobs usually end; without history, about 2 s in
            return _on_grid(started + first, step, now, up=usual is not None)
        if usual is None or age > usual.late:
            # Nothing known yet, or slower than the jobs seen so far: often at first, less as it runs on.
            return _on_grid(now + min(self.poll_interval, max(step, age / 10)), step, now)
        wait = step  # the soonest look at which it has a fair chance of having ended
        chance = self._shared.durations.chance
        while wait < self.poll_interval and chance(job.provider, job.model, age, age + wait) < LOOK_CHANCE:
            wait += step
        return _on_grid(now + wait, step, now)

    def _past_deadline(self, task: _Task, now: float) -> bool:
        """Past the timeout, and a lookup since saw it running (or lookups cannot help any more).

        A task is not timed out while its lookups are failing: it may have finished meanwhile.
        """
        started = task.job.submitted_at or task.job.created_at
        deadline = started + self.job_timeout
        if now <= deadline:
            return False
        return (
            (task.answered_at is not None and task.answered_at > deadline)
            or now > deadline + TIMEOUT_GRACE_SECONDS
            or (task.error is not None and task.error.kind.operator_problem)
        )

    async def _time_out(self, task: _Task) -> None:
        log.warning("job %d: task %s timed out after %.0f s", task.job.id, task.task.task_id, self.job_timeout)
        message = timeout_message(self.job_timeout, task.error)
        ended = replace(task.task, state=TaskPhase.TIMED_OUT, error_kind=FailureKind.TIMED_OUT, error_message=message)
        self._drop(task)
        await self._gathering.ended(task.job, ended)

    async def _end(self, task: _Task, status: TaskStatus) -> None:
        self._drop(task)
        await self._gathering.ended(task.job, ended_task(task.job, task.task, status))


def timeout_message(seconds: float, error: ProviderError | None) -> Message:
    """What a member reads when a task did not end within `seconds` (or could not be checked on at all)."""
    if error is not None and error.kind.operator_problem:
        # Translators: {reason} is the provider's error, e.g. "The bot's fal.ai account is out of balance. …".
        return Message(N_("The bot could not check on this job: {reason}"), reason=error.user_message)
    return Message(
        N_(
            "The image provider did not finish this job within {limit}, so the bot stopped waiting. "
            "Please try again; if it keeps happening the provider may be overloaded."
        ),
        limit=_duration(seconds),
    )


def _duration(seconds: float) -> Message:
    """A job timeout in minutes (from one minute) or seconds, as "10 minutes" says it."""
    amount = seconds / 60 if seconds >= 60 else seconds
    if amount != int(amount):  # a timeout of part of a minute (or of a second): no plural form fits a fraction
        if seconds >= 60:
            return Message(N_("{minutes} minutes"), minutes=amount)
        return Message(N_("{seconds} seconds"), seconds=amount)
    if seconds >= 60:
        return Message.counted("{n} minute", "{n} minutes", int(amount))
    return Message.counted("{n} second", "{n} seconds", int(amount))


def _fill_batches(tasks: list[_Task], size: int, now: float, durations: Durations, step: float) -> list[_Task]:
    """The due tasks to look up now, most overdue first. A last call (never the only one) that would be less than
    half full and would likely find no task ended is not made: its tasks wait a `step` (once; first then)."""
    tasks.sort(key=lambda t: (not (t.deferred or t.hinted), t.due, t.job.submitted_at or 0.0))
    spare = len(tasks) % size
    last = tasks[-spare:] if spare else []
    if not last or any(t.deferred or t.hinted for t in last):
        return tasks
    if len(tasks) <= size or spare >= size / 2 or _likely_ends(durations, last, now) >= MIN_LIKELY_ENDS:
        return tasks
    for task in last:
        task.deferred = True
        task.due = max(task.due, now) + step
    return tasks[:-spare]


def _on_grid(moment: float, step: float, now: float, *, up: bool = False) -> float:
    """The multiple of `step` at or just before `moment` (`up`: at or just after), but at least half a step after
    `now`: tasks due about together are looked up in one call."""
    due = (math.ceil(moment / step - 1e-9) if up else math.floor(moment / step + 1e-9)) * step
    return due if due > now + step / 2 else due + step  # never a look straight after the last one


def _likely_ends(durations: Durations, tasks: list[_Task], now: float) -> float:
    """How many of these tasks have likely ended since they were last seen running (from past durations)."""
    total = 0.0
    for task in tasks:
        started = task.job.submitted_at or task.job.created_at
        seen = (task.answered_at or started) - started
        total += durations.chance(task.job.provider, task.job.model, seen, now - started)
    return total
