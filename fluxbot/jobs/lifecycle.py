"""A job's life as data: its states, the one table of allowed transitions, and the domain types.

Reading `LIFECYCLE` answers "where can a job go next?". Every store write that changes a job's state is named
after one of its edges and is one conditional statement that reports whether it won:

    queued ──claim──▶ pending ──submitted──▶ submitted ──finish──▶ succeeded | failed | timed_out ──deliver──▶ ✓
       │                 │ (restarted during submit)   │  ▲               ▲
       │                 └───────finish────────────────┼──┼───────────────┤
       └──cancel───────────────────────────────────────┼──┼───────────────┘
                                                       └──┘ task_end: one of its tasks ended, another still runs

A job of `count` images on a model that makes `images_per_task` images per task holds
ceil(count / images_per_task) provider tasks (`JobTask`, at most four), and they move together:
- `claim` takes a queued job only when the provider and the model have room for all its tasks
  (`ProviderInfo.max_active_tasks`, `Model.max_active_tasks`) and MAX_JOBS_IN_FLIGHT, which counts jobs, has room;
- its first task is sent alone: a refusal (bad input, key, credit) fails the job as it would with one task,
  before anything else is sent or billed. Once the provider accepted it, the others are sent together; one
  whose submit fails is recorded as failed and the started ones are followed;
- `submitted` records every task at once: a job is submitted once each of its tasks was sent;
- each task then ends on its own: `task_end` while another still runs (the job stays submitted), and the last
  one's end is the job's `finish`, by `tasks_outcome`: succeeded if any image came back (the result then says
  how many failed and why), else failed, or timed_out when a task ran out of time;
- lookups and callbacks name tasks: the store finds their job through the tasks it recorded.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from enum import StrEnum
from typing import Any

from fluxbot.errors import Message, Number
from fluxbot.i18n import N_
from fluxbot.providers.base import ErrorKind, Image, TaskRef


class JobStatus(StrEnum):
    """Where a job stands; the final three are its outcome (then `delivered_at` is set once it is shown)."""

    QUEUED = "queued"  # accepted, waiting for a free slot at the provider; nothing sent
    PENDING = "pending"  # claimed: its submit is under way
    SUBMITTED = "submitted"  # the provider has it; task_id is stored
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    TIMED_OUT = "timed_out"

    @property
    def finished(self) -> bool:
        """True once the job has its final outcome."""
        return self in FINISHED_STATUSES


OPEN_STATUSES = (JobStatus.QUEUED, JobStatus.PENDING, JobStatus.SUBMITTED)
FINISHED_STATUSES = (JobStatus.SUCCEEDED, JobStatus.FAILED, JobStatus.TIMED_OUT)
#: The states in which a job holds one of the provider's slots (`MAX_JOBS_IN_FLIGHT`).
AT_PROVIDER = (JobStatus.PENDING, JobStatus.SUBMITTED)


class Transition(StrEnum):
    """The named edges of a job's life; each is one store write."""

    CLAIM = "claim"  # a slot at the provider is free: the oldest queued job is about to be sent
    SUBMITTED = "submitted"  # the provider confirmed the submit with a task id
    FINISH = "finish"  # the one way into a final state: results, failures, timeouts, restarts
    CANCEL = "cancel"  # a job that has not started is closed (a moderator's cancel, an unanswered command)
    TASK_END = "task_end"  # one of the job's provider tasks ended while another still runs (records the task only)
    DELIVER = "deliver"  # the reply shows the outcome (sets delivered_at; the status stays)


@dataclass(frozen=True)
class Edge:
    """Which states a transition leaves from and which it may lead to."""

    sources: tuple[JobStatus, ...]
    targets: tuple[JobStatus, ...]


LIFECYCLE: dict[Transition, Edge] = {
    Transition.CLAIM: Edge((JobStatus.QUEUED,), (JobStatus.PENDING,)),
    Transition.SUBMITTED: Edge((JobStatus.PENDING,), (JobStatus.SUBMITTED,)),
    Transition.FINISH: Edge(OPEN_STATUSES, FINISHED_STATUSES),
    Transition.CANCEL: Edge((JobStatus.QUEUED,), (JobStatus.FAILED,)),
    Transition.TASK_END: Edge((JobStatus.SUBMITTED,), (JobStatus.SUBMITTED,)),
    Transition.DELIVER: Edge(FINISHED_STATUSES, FINISHED_STATUSES),
}


class FailureKind(StrEnum):
    """Why a job did not succeed: the provider's error kinds, and the bot's own reasons."""

    INVALID_REQUEST = ErrorKind.INVALID_REQUEST.value
    REFUSED = ErrorKind.REFUSED.value
    AUTH = ErrorKind.AUTH.value
    OUT_OF_CREDIT = ErrorKind.OUT_OF_CREDIT.value
    MISCONFIGURED = ErrorKind.MISCONFIGURED.value
    RATE_LIMITED = ErrorKind.RATE_LIMITED.value
    IMAGE_UNREACHABLE = ErrorKind.IMAGE_UNREACHABLE.value
    PROVIDER_FAILED = ErrorKind.PROVIDER_FAILED.value
    UNAVAILABLE = ErrorKind.UNAVAILABLE.value
    BAD_RESPONSE = ErrorKind.BAD_RESPONSE.value
    FAILED = "failed"  # the provider said failed without saying why
    TIMED_OUT = "timed_out"
    CANCELLED = "cancelled"
    ABANDONED = "abandoned"  # the command could not be answered, so there is no reply to show anything on
    RESTARTED = "restarted"
    PROVIDER_SWITCHED = "provider_switched"
    INTERNAL = "internal"

    @classmethod
    def named(cls, value: str) -> FailureKind:
        """The kind called `value`; an unknown one (from a newer version or a new provider error) reads as FAILED."""
        try:
            return cls(value)
        except ValueError:
            return cls.FAILED

    @classmethod
    def of(cls, value: str | None) -> FailureKind | None:
        """The kind stored as `value`, or None."""
        return None if value is None else cls.named(value)


@dataclass(frozen=True)
class Outcome:
    """How a job ended: its images, or why it has none."""

    status: JobStatus
    images: tuple[Image, ...] = ()
    inference_seconds: float | None = None
    error: FailureKind | None = None
    message: str | None = None

    @classmethod
    def failed(cls, kind: FailureKind, message: str, *, status: JobStatus = JobStatus.FAILED) -> Outcome:
        """A failure (or a timeout) with the words the member reads."""
        return cls(status, error=kind, message=message)


class TaskPhase(StrEnum):
    """Where one of a job's provider tasks stands."""

    RUNNING = "running"  # at the provider
    SUCCEEDED = "succeeded"
    FAILED = "failed"  # the provider said so, or its submit failed (then it has no task id)
    TIMED_OUT = "timed_out"


@dataclass(frozen=True)
class JobTask:
    """One provider task of a job, and what became of it."""

    #: 1, 2, ... : the order its images are shown in.
    number: int
    #: The provider's id; None when its submit failed (nothing was started).
    task_id: str | None
    state: TaskPhase = TaskPhase.RUNNING
    #: The URL its status is read from, when the provider gave one.
    poll_url: str | None = None
    images: tuple[Image, ...] = ()
    inference_seconds: float | None = None
    error_kind: FailureKind | None = None
    error_message: str | None = None
    #: What the provider says it cost (its own unit), when it says.
    cost: float | None = None

    @property
    def ref(self) -> TaskRef:
        """The task as the provider's client names it."""
        assert self.task_id is not None
        return TaskRef(self.task_id, self.poll_url)


#: What a member reads when the provider said a task failed without saying why.
PROVIDER_FAILED_WORDS = Message(N_("The image provider reported the job as failed."))
#: Why images are missing from a succeeded job when no failed task said why.
# Translators: the reason in "1 of 4 images failed: …".
NO_IMAGE_MADE = Message(N_("the provider made no image"))


def tasks_outcome(job: Job) -> Outcome:
    """The job's outcome once every task ended: succeeded with every image that came back (and a note saying how
    many failed and why), else failed, or timed out when a task did."""
    tasks = sorted(job.tasks, key=lambda t: t.number)
    images = tuple(image for task in tasks for image in task.images)
    failed = [task for task in tasks if task.state is not TaskPhase.SUCCEEDED]
    # They ran side by side: the longest one's inference is the job's.
    seconds = max((t.inference_seconds for t in tasks if t.inference_seconds is not None), default=None)
    if images:
        missing = job.count - len(images)
        reason = next((t.error_message for t in failed if t.error_message), NO_IMAGE_MADE)
        note = missing_images(missing, job.count, reason) if failed and missing > 0 else None
        return Outcome(JobStatus.SUCCEEDED, images=images, inference_seconds=seconds, message=note)
    timed_out = next((t for t in failed if t.state is TaskPhase.TIMED_OUT), None)
    first = timed_out or (failed[0] if failed else None)
    message = (first.error_message if first else None) or PROVIDER_FAILED_WORDS
    if timed_out is not None:
        return Outcome.failed(FailureKind.TIMED_OUT, message, status=JobStatus.TIMED_OUT)
    return Outcome.failed((first.error_kind if first else None) or FailureKind.FAILED, message)


def missing_images(missing: int, count: int, reason: str) -> Message:
    """The note on a job that made some of its `count` images: how many are `missing`, and the first reason (a
    `Message` reason is said in the same language as the note)."""
    # Translators: a job of several images made only some; {reason} is the first failed task's message.
    return Message.counted(
        "{missing} of {n} image failed: {reason}",
        "{missing} of {n} images failed: {reason}",
        count,
        missing=Number(missing),
        reason=reason,
    )


class CallbackOutcome(StrEnum):
    """What a provider callback changed."""

    ACCEPTED = "accepted"  # a running job of ours: it is looked up soon
    UNKNOWN = "unknown"  # not a task of ours
    FINISHED = "finished"  # already finished (a duplicate or late callback)
    UNAVAILABLE = "unavailable"  # not known here, and the database could not say just now


@dataclass(frozen=True)
class EditImage:
    """An image a member may edit: where it is, and the aspect ratio to keep."""

    url: str
    ratio: str


@dataclass(frozen=True)
class Reply:
    """Who asked, and how to reach the message that answers them (the interaction token edits it)."""

    user_id: int
    guild_id: int | None
    channel_id: int | None
    application_id: int
    interaction_token: str = field(repr=False)
    message_id: int | None = None
    #: The most bytes one uploaded file may have where the reply is (Discord tells us per interaction).
    upload_limit: int | None = None
    #: The locale of what everyone in the channel reads of the job (`i18n.channel_locale`); None is English.
    locale: str | None = None
    #: The member's own locale (their client's), for what only they read of the job (a result sent by DM).
    member_locale: str | None = None


@dataclass(frozen=True)
class Job:
    """One job: what was asked, where it stands, and the reply that shows it."""

    id: int
    status: JobStatus
    action: str
    provider: str
    model: str
    prompt: str
    size: str
    count: int
    image_url: str | None
    reply: Reply
    task_id: str | None = None
    images: tuple[Image, ...] = ()
    inference_seconds: float | None = None
    error_kind: FailureKind | None = None
    error_message: str | None = None
    created_at: float = 0.0
    submitted_at: float | None = None
    finished_at: float | None = None
    delivered_at: float | None = None
    delivered_via: str | None = None
    expects_callback: bool = False
    deleted_at: float | None = None
    #: Provider-specific options the job was asked with (output_format, ...).
    options: dict[str, Any] = field(default_factory=dict)
    #: The run (one process start) that works on the job now; another takes it over when that run's lease ends.
    owner: str | None = None
    #: The style preset the job was made with (its text is part of `prompt`), or None.
    style: str | None = None
    #: Its provider tasks once it was submitted, in number order (`task_id` is the first one's, for display).
    tasks: tuple[JobTask, ...] = ()

    def with_task(self, task: JobTask) -> Job:
        """The job with `task` in place of its task of the same number."""
        kept = [t for t in self.tasks if t.number != task.number]
        return replace(self, tasks=tuple(sorted([*kept, task], key=lambda t: t.number)))

    def running_tasks(self) -> tuple[JobTask, ...]:
        """Its tasks still at the provider."""
        return tuple(t for t in self.tasks if t.state is TaskPhase.RUNNING and t.task_id is not None)
