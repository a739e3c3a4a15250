"""What the bot needs from its database, as an interface: the job core and the cogs see this, never SQL.

Every method that changes a job's state is named after one edge of `jobs.lifecycle.LIFECYCLE` and reports
whether it won, so two callers racing for the same job (a callback and a poll) change it once.
"""

from __future__ import annotations

import os
import secrets
import socket
from collections.abc import Callable, Sequence
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass, field
from datetime import date
from enum import StrEnum
from typing import TYPE_CHECKING, Protocol

from fluxbot.errors import FluxbotError
from fluxbot.jobs.lifecycle import Transition

if TYPE_CHECKING:  # only named in annotations: the job core imports this module, so no cycle at run time
    from fluxbot.budgets import Budget
    from fluxbot.jobs.capacity import Capacity
    from fluxbot.jobs.lifecycle import Job, JobStatus, JobTask, Outcome, Reply
    from fluxbot.limits import GuildSettings, Limits
    from fluxbot.providers.base import JobRequest
    from fluxbot.quotas import Usage
    from fluxbot.storage.sub_stores import (
        Budgets,
        EditSources,
        KeptImages,
        Leases,
        Members,
        Meta,
        Reports,
        Retention,
        Strikes,
    )

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
