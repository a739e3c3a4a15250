"""What the bot needs from its database, as an interface: the job core and the cogs see this, never SQL.

Every method that changes a job's state is named after one edge of `jobs.lifecycle.LIFECYCLE` and reports
whether it won, so two callers racing for the same job (a callback and a poll) change it once.
"""

from __future__ import annotations

import os
import secrets
import socket
from collections.abc import Callable, Mapping, Sequence
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass, field
from datetime import date
from enum import StrEnum
from typing import TYPE_CHECKING, Protocol

from fluxbot.errors import FluxbotError
from fluxbot.jobs.lifecycle import Transition

if TYPE_CHECKING:  # only named in annotations: the job core imports this module, so no cycle at run time
    from fluxbot.budgets import Budget, BudgetUse
    from fluxbot.defaults import MemberDefaults
    from fluxbot.jobs.capacity import Capacity
    from fluxbot.jobs.lifecycle import EditImage, Job, JobStatus, JobTask, Outcome, Reply
    from fluxbot.limits import GuildSettings, Limits, Usage
    from fluxbot.providers.base import JobRequest

REPORT_MEMBERS = 20


def run_name(instance: str | None = None) -> str:
    """A name for this process start, as the owner of jobs: `<instance or host>-<pid>-<random>`."""
    return f"{instance or socket.gethostname()}-{os.getpid()}-{secrets.token_hex(3)}"


class StoreError(FluxbotError):
    """The database failed; the base of every storage error."""


class StoreUnavailable(StoreError):
    """The database could not be read or written just now (locked, disk I/O, full); trying again may work."""


class Signal(StrEnum):
    """What one process tells the others through the database (PostgreSQL's NOTIFY)."""

    HINT = "hint"  # payload "<provider> <task_id>": a callback reached a process that does not own the job
    SETTINGS = "settings"  # payload "<guild_id>": a server's settings changed


#: Called for each signal another process sent: (signal, payload).
SignalHandler = Callable[[Signal, str], None]


@dataclass(frozen=True)
class MemberUsage:
    """One member's jobs on one server over the report's days."""

    user_id: int
    images: int
    jobs: int
    failures: int
    #: Images per model (failed jobs make none), for the estimated spend.
    models: dict[str, int] = field(default_factory=dict)


@dataclass(frozen=True)
class DayUsage:
    """One UTC day's jobs on one server."""

    day: date
    images: int
    jobs: int
    failures: int
    #: Images per model (failed jobs make none), for the estimated spend.
    models: dict[str, int] = field(default_factory=dict)


@dataclass(frozen=True)
class GuildReport:
    """A server's usage over the last `days` UTC days (today included), and its open jobs by status."""

    days: int
    members: list[MemberUsage]  # the busiest first, at most REPORT_MEMBERS
    more_members: int  # members left out of `members`
    per_day: list[DayUsage]  # days with at least one job, newest first
    open_jobs: dict[str, int]

    @property
    def per_model(self) -> dict[str, int]:
        """Images per model over the report's days, the most first."""
        totals: dict[str, int] = {}
        for day in self.per_day:
            for model, images in day.models.items():
                totals[model] = totals.get(model, 0) + images
        return dict(sorted(totals.items(), key=lambda item: (-item[1], item[0])))


class Strikes(Protocol):
    """Members' refused prompts per server, and the pauses enough of them bring (moderation.py's rules)."""

    async def record_refusal(
        self, guild_id: int, user_id: int, *, strikes: int, window: float, pause: float, now: float | None = None
    ) -> float | None:
        """Count a refused prompt; when it is the `strikes`-th within `window` seconds, pause the member for
        `pause` seconds and return until when (None otherwise, and always when `strikes` is 0)."""
        ...

    async def paused_until(self, guild_id: int, user_id: int, *, now: float | None = None) -> float | None:
        """Until when the member is paused on this server, or None."""
        ...

    async def pardon(self, guild_id: int, user_id: int) -> bool:
        """Lift the member's pause and forget their refusals here; False when they were not paused."""
        ...


class Budgets(Protocol):
    """What servers' budgets count (jobs whose `budget_guild` is the server), and who posts each notice."""

    async def used(self, guild_id: int, *, now: float | None = None) -> BudgetUse:
        """The server's images so far in the current UTC day and month (failed jobs make none)."""
        ...

    async def claim_notice(self, guild_id: int, period: str, percent: int, *, now: float | None = None) -> bool:
        """Record that the server's notice for `percent` % of its budget in `period` (e.g. "2026-11") is posted;
        exactly one caller gets True, across every process."""
        ...


class Members(Protocol):
    """Members' own defaults (`/settings`), one set per member for every server."""

    async def defaults(self, user_id: int) -> MemberDefaults:
        """The member's defaults (none chosen when they never used `/settings`)."""
        ...

    async def save_defaults(self, user_id: int, defaults: MemberDefaults) -> None:
        """Replace the member's defaults (empty ones are forgotten)."""
        ...


class Retention(Protocol):
    """What is kept, and for how long: old jobs folded into usage totals, interaction tokens forgotten."""

    async def forget_tokens(self, before: float) -> int:
        """Drop the interaction token of every job created before `before`; how many were dropped."""
        ...

    async def prune(self, before: float, *, batch: int = 500) -> int:
        """Fold up to `batch` finished jobs created before `before` into the usage totals (per server, member,
        UTC day and model) and delete them, with the edit sources and shown-again records as old; how many went."""
        ...


class Leases(Protocol):
    """Ownership: this run's lease on its jobs, and the jobs of runs whose lease ended (`jobs/ownership.py`)."""

    async def renew(self, *, seconds: float, now: float | None = None) -> None:
        """Keep this run's jobs its own for `seconds` more."""
        ...

    async def end(self) -> None:
        """Give this run's unfinished jobs up at once (a clean shutdown)."""
        ...

    async def live_instances(self) -> list[str]:
        """The runs whose lease has not ended, by name."""
        ...

    async def adopt_orphans(self, *, now: float | None = None) -> list[Job]:
        """Undelivered jobs whose owner's lease has ended (or that have no owner) become this run's; oldest first."""
        ...


class EditSources(Protocol):
    """The images a member may edit (from a result or a message), kept until the edit prompt comes back."""

    async def add(self, user_id: int, images: Sequence[EditImage], *, now: float | None = None) -> int:
        """Keep the images a member may edit until the edit prompt comes back; returns its id."""
        ...

    async def get(self, source_id: int) -> tuple[int, list[EditImage]] | None:
        """(member id, images) of an edit source, or None."""
        ...


class Reports(Protocol):
    """Counts over many jobs: `/fluxadmin usage`, places in the queue, the models' durations, the metrics."""

    async def queue_positions(self) -> dict[int, int]:
        """Every queued job's place in line: 1 for the next to start, 2 for the one after it, ..."""
        ...

    async def recent_durations(self, provider: str, model: str, *, limit: int) -> list[float]:
        """How long the provider took (submit to result) for this model's latest successful jobs, newest first."""
        ...

    async def count_undelivered(self) -> dict[str, int]:
        """How many jobs are in each state among those still open or awaiting delivery (every state)."""
        ...

    async def guild_report(self, guild_id: int, *, days: int = 1, now: float | None = None) -> GuildReport:
        """Usage on one server over the last `days` UTC days: per member, per day, and the jobs open now; the jobs
        are those that count against the server's budget (made there, or in a DM under its rules)."""
        ...


class Meta(Protocol):
    """The bot's own values in a key/value table (the callback secret, the synced commands' hash, ...)."""

    async def get(self, key: str) -> str | None:
        """The value stored under `key`, or None."""
        ...

    async def set(self, key: str, value: str) -> None:
        """Store `value` under `key` (replacing what was there)."""
        ...


class KeptImages(Protocol):
    """Result images of providers whose links expire, downloaded the moment their task was seen ready and kept
    until the job is delivered (`mark_delivered` deletes them), so any process can deliver them."""

    async def keep(self, job_id: int, images: Mapping[str, bytes], *, now: float | None = None) -> None:
        """Keep a finished task's images (by their provider URL) until the job is delivered."""
        ...

    async def images(self, job_id: int) -> dict[str, bytes]:
        """The job's kept images by their provider URL ({} when none are kept)."""
        ...


class Store(Protocol):
    """The jobs database: one implementation per engine (SQLite for one process, PostgreSQL for several)."""

    @property
    def instance(self) -> str:
        """This run's name as the owner of jobs, unique per process start."""
        ...

    @property
    def shared(self) -> bool:
        """True when several processes may use the database at once."""
        ...

    @property
    def round_trips(self) -> int:
        """Statements and queries sent to the database so far (for the benchmark)."""
        ...

    @property
    def strikes(self) -> Strikes:
        """Refused prompts and the pauses they bring."""
        ...

    @property
    def budgets(self) -> Budgets:
        """Servers' images per UTC day and month, and their budget notices."""
        ...

    @property
    def members(self) -> Members:
        """Members' defaults."""
        ...

    @property
    def retention(self) -> Retention:
        """Old jobs and stale interaction tokens."""
        ...

    @property
    def leases(self) -> Leases:
        """This run's lease, and adopting the jobs of runs that are gone."""
        ...

    @property
    def edit_sources(self) -> EditSources:
        """The images members may edit."""
        ...

    @property
    def reports(self) -> Reports:
        """Counts over many jobs."""
        ...

    @property
    def meta(self) -> Meta:
        """The key/value table."""
        ...

    @property
    def kept(self) -> KeptImages:
        """Result images kept until their job is delivered."""
        ...

    async def close(self) -> None:
        """Close the database."""
        ...

    # -- several processes: signals, locks (ownership: `leases`) ---------------------------------

    async def signal(self, signal: Signal, payload: str = "") -> None:
        """Tell the other processes (SQLite: nobody)."""
        ...

    def listen(self, handler: SignalHandler) -> None:
        """Call `handler` for every signal another process sends."""
        ...

    def exclusive(self, name: str) -> AbstractAsyncContextManager[None]:
        """Hold a named lock across all processes for the block."""
        ...

    # -- the lifecycle's edges -------------------------------------------------------------------

    async def admit(
        self,
        provider: str,
        request: JobRequest,
        reply: Reply,
        *,
        limits: Limits,
        expects_callback: bool = False,
        now: float | None = None,
    ) -> Job | None:
        """Queue a job if the member's limits and the server's budget (`limits.budget`) allow it, atomically; None
        when they do not. The job counts against `limits.budget`'s server (without one: the reply's)."""
        ...

    async def claim(self, cap: int, capacity: Capacity | None = None) -> Job | None:
        """`claim`: the oldest queued job with a reply becomes pending, if fewer than `cap` jobs are at the
        providers and, with `capacity`, its tasks fit its provider's and model's limits (`Capacity.next_job`)."""
        ...

    async def mark_submitted(self, job_id: int, tasks: Sequence[JobTask], *, now: float | None = None) -> bool:
        """`submitted`: store every provider task of the job (those whose submit failed too; the first started one's
        id becomes the job's `task_id`); False when the job was no longer pending."""
        ...

    async def end_task(self, job_id: int, task: JobTask) -> bool:
        """`task_end`: record what became of one of a submitted job's tasks while others still run; False when it
        had ended already, or the job is no longer open or no longer this run's."""
        ...

    async def finish(
        self,
        job_id: int,
        outcome: Outcome,
        *,
        transition: Transition = Transition.FINISH,
        now: float | None = None,
        tasks: Sequence[JobTask] = (),
    ) -> bool:
        """`finish` or `cancel`: give an open job its outcome (with what became of `tasks`, its provider tasks);
        exactly one caller gets True for a job."""
        ...

    async def mark_delivered(self, job_id: int, via: str, *, now: float | None = None) -> bool:
        """`deliver`: the finished job's reply shows its outcome (its kept images go); False when it already did."""
        ...

    # -- other writes ----------------------------------------------------------------------------

    async def set_message(self, job_id: int, message_id: int) -> None:
        """Remember the id of the reply message."""
        ...

    async def mark_reply_deleted(self, job_id: int, *, now: float | None = None) -> None:
        """Remember that the job's result message was deleted on request."""
        ...

    async def record_show_again(self, user_id: int, *, now: float | None = None) -> None:
        """Remember when the member last had a result shown again (it counts as a command for the cooldown)."""
        ...

    async def save_guild_settings(self, guild_id: int, settings: GuildSettings) -> None:
        """Store a server's settings."""
        ...

    # -- reads -----------------------------------------------------------------------------------

    async def get_job(self, job_id: int) -> Job | None:
        """The job with this id, or None. Every read of jobs (and `adopt_orphans`) gives them with their tasks."""
        ...

    async def job_for_task(self, provider: str, task_id: str) -> Job | None:
        """The job a provider task (any of a job's tasks) belongs to, or None."""
        ...

    async def jobs_with_status(self, status: JobStatus) -> list[Job]:
        """Undelivered jobs in `status`, oldest first."""
        ...

    async def undelivered_jobs(self) -> list[Job]:
        """Finished jobs whose reply does not show the outcome yet, oldest first."""
        ...

    async def queued_jobs_of(self, guild_id: int, user_id: int) -> list[Job]:
        """A member's jobs still waiting in the queue on one server."""
        ...

    async def usage(self, user_id: int, *, budget: Budget | None = None, now: float | None = None) -> Usage:
        """A member's open jobs, last command and images today (UTC), across every server; with `budget`, also
        its server's images today and this month."""
        ...

    async def recent_jobs(self, user_id: int, *, limit: int, offset: int = 0) -> tuple[list[Job], int]:
        """A member's jobs, newest first, one page of them, and how many there are in all."""
        ...

    async def guild_settings(self, guild_id: int) -> GuildSettings:
        """A server's settings (all defaults when it never changed any)."""
        ...
