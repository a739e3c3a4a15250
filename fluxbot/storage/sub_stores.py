"""The store's parts, as interfaces: each group of queries with one reason to change (`Store` holds one of each).

Each engine implements every part (`sqlite_<part>.py`, `postgres_<part>.py`); the job core and the cogs see only
these Protocols.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Protocol

if TYPE_CHECKING:  # only named in annotations
    from fluxbot.budgets import BudgetUse
    from fluxbot.defaults import MemberDefaults
    from fluxbot.jobs.lifecycle import EditImage, Job
    from fluxbot.storage.base import GuildReport


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
