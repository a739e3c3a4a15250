"""The SQLite store: the jobs database of one process, every state change one conditional statement."""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import time
from collections.abc import AsyncIterator, Sequence
from pathlib import Path
from typing import Any

from fluxbot.budgets import MONTH, Budget, BudgetUse, day_start, period_start
from fluxbot.errors import stored_text
from fluxbot.jobs.capacity import Capacity
from fluxbot.jobs.lifecycle import LIFECYCLE, Job, JobStatus, JobTask, Outcome, Reply, Transition
from fluxbot.limits import GuildSettings, Limits
from fluxbot.providers.base import JobRequest
from fluxbot.quotas import Usage
from fluxbot.storage import sqlite_queries as sql
from fluxbot.storage import sqlite_tasks as tasks_sql
from fluxbot.storage.base import Signal, SignalHandler, run_name
from fluxbot.storage.schema import images_json
from fluxbot.storage.sqlite_budgets import SQLiteBudgets, budget_params
from fluxbot.storage.sqlite_edit_sources import SQLiteEditSources
from fluxbot.storage.sqlite_engine import URGENT, Engine, sql_states
from fluxbot.storage.sqlite_kept import SQLiteKept
from fluxbot.storage.sqlite_leases import SQLiteLeases
from fluxbot.storage.sqlite_members import SQLiteMembers
from fluxbot.storage.sqlite_meta import SQLiteMeta
from fluxbot.storage.sqlite_reports import SQLiteReports
from fluxbot.storage.sqlite_retention import SQLiteRetention
from fluxbot.storage.sqlite_schema import migrate
from fluxbot.storage.sqlite_strikes import SQLiteStrikes

log = logging.getLogger(__name__)

_DELIVERABLE = sql_states(LIFECYCLE[Transition.DELIVER].sources)


class SQLiteStore:
    """The jobs database on one SQLite file. Open with `await SQLiteStore.open(path)`, close with `close()`.

    One process has the file (`Engine.open` locks it), so every job another run owned is this run's to take.
    """

    shared = False

    def __init__(self, engine: Engine, instance: str) -> None:
        self._engine = engine
        self.instance = instance
        self._locks: dict[str, asyncio.Lock] = {}
        #: Refused prompts and pauses.
        self.strikes = SQLiteStrikes(engine)
        #: Servers' images per day and month, and their budget notices.
        self.budgets = SQLiteBudgets(engine)
        #: Members' defaults (/settings).
        self.members = SQLiteMembers(engine)
        #: Old jobs and stale interaction tokens.
        self.retention = SQLiteRetention(engine)
        #: This run's lease, and the jobs of earlier runs.
        self.leases = SQLiteLeases(engine, lambda: self.instance)
        #: The images members may edit.
        self.edit_sources = SQLiteEditSources(engine)
        #: Counts over many jobs.
        self.reports = SQLiteReports(engine)
        #: The key/value table.
        self.meta = SQLiteMeta(engine)
        #: Result images kept until their job is delivered.
        self.kept = SQLiteKept(engine)

    @classmethod
    async def open(cls, path: Path | str, *, instance: str | None = None) -> SQLiteStore:
        """Open (and create or migrate) the database at `path`; `instance` names this run (a fresh name if None)."""
        return cls(await Engine.open(path, migrate), instance or run_name())

    def __repr__(self) -> str:
        return f"SQLiteStore(instance={self.instance!r})"

    @property
    def round_trips(self) -> int:
        """Statements and queries sent to the database so far."""
        return self._engine.round_trips

    async def close(self) -> None:
        """Let queued writes finish and close the connections."""
        await self._engine.close()

    # -- one process: signals reach nobody -------------------------------------------------------

    async def signal(self, signal: Signal, payload: str = "") -> None:
        """Nobody else to tell."""

    def listen(self, handler: SignalHandler) -> None:
        """No other process sends signals."""

    @contextlib.asynccontextmanager
    async def exclusive(self, name: str) -> AsyncIterator[None]:
        """A lock in this process (the only one on the file)."""
        async with self._locks.setdefault(name, asyncio.Lock()):
            yield

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
        """Queue a job if the member's limits allow it, in one statement; None when they do not.

        The check and the insert are one SQL statement, so commands arriving at the same instant cannot
        together exceed a limit. It is an urgent write: the member's command waits for it.
        """
        created = _now(now)
        rows = await self._engine.statement(
            sql.ADMIT,
            {
                "status": JobStatus.QUEUED, "action": request.action, "provider": provider, "model": request.model,
                "prompt": request.prompt, "size": request.size, "count": request.count,
                "image_url": request.image_url, "user": reply.user_id, "guild": reply.guild_id,
                "channel": reply.channel_id, "application": reply.application_id, "token": reply.interaction_token,
                "message": reply.message_id, "created": created, "upload_limit": reply.upload_limit,
                "expects_callback": expects_callback, "options": json.dumps(dict(request.options)),
                "member_jobs": limits.member_jobs, "cooldown": limits.cooldown_seconds, "since": day_start(created),
                "daily": limits.daily_images, "owner": self.instance, "style": request.style,
                "locale": reply.locale, "member_locale": reply.member_locale,
                **budget_params(limits.budget, reply.guild_id, created),
            },
            priority=URGENT,
        )  # fmt: skip
        return sql.job(rows[0]) if rows else None

    async def claim(self, cap: int, capacity: Capacity | None = None) -> Job | None:
        """`claim`: the oldest queued job (with a reply) becomes pending, if fewer than `cap` are at the provider
        and (with `capacity`) its provider and model have room for its tasks."""
        if capacity is not None and capacity.limited:
            row = await self._engine.write(lambda db: tasks_sql.claim_within(db, self.instance, cap, capacity))
            return None if row is None else sql.job(row)
        rows = await self._engine.statement(sql.CLAIM, (self.instance, cap))
        return sql.job(rows[0]) if rows else None

    async def mark_submitted(self, job_id: int, tasks: Sequence[JobTask], *, now: float | None = None) -> bool:
        """`submitted`: store the job's provider tasks (the first one's id as its task_id); False when the job was
        no longer pending."""
        at = _now(now)
        won: bool = await self._engine.write(lambda db: tasks_sql.mark_submitted(db, job_id, tasks, at))
        return won

    async def end_task(self, job_id: int, task: JobTask) -> bool:
        """`task_end`: one of an open job's tasks ended (others still run); False when it had ended already or the
        job is no longer this run's open job."""
        params = tasks_sql.end_task_params(job_id, task, self.instance)
        return bool(await self._engine.statement(tasks_sql.END_TASK, params))

    async def finish(
        self,
        job_id: int,
        outcome: Outcome,
        *,
        transition: Transition = Transition.FINISH,
        now: float | None = None,
        tasks: Sequence[JobTask] = (),
    ) -> bool:
        """`finish` (an open job this run owns) or `cancel` (one not started, by anyone): exactly one caller wins.

        A cancel makes the job this run's, so the run that cancelled it shows it. `tasks` are what became of its
        tasks, recorded with the outcome.
        """
        edge = LIFECYCLE[transition]
        if outcome.status not in edge.targets:
            raise ValueError(f"{transition} cannot lead to {outcome.status}")
        owned = "" if transition is Transition.CANCEL else "AND owner = :me"
        statement = f"""UPDATE jobs SET status = :status, images = :images, inference_seconds = :seconds,
                   error_kind = :kind, error_message = :message, finished_at = :now, owner = :me
               WHERE id = :id AND status IN {sql_states(edge.sources)} {owned} RETURNING id"""  # noqa: S608
        params = {
            "status": outcome.status, "images": images_json(outcome.images), "seconds": outcome.inference_seconds,
            "kind": outcome.error, "message": stored_text(outcome.message), "now": _now(now), "me": self.instance,
            "id": job_id,
        }  # fmt: skip
        won: bool = await self._engine.write(lambda db: tasks_sql.finish(db, statement, params, job_id, tasks))
        return won

    async def mark_delivered(self, job_id: int, via: str, *, now: float | None = None) -> bool:
        """`deliver`: the finished job's reply shows its outcome; False when it already did."""
        # The interaction token is useless once the outcome is shown, and so are the kept images: neither is kept.
        statement = f"""UPDATE jobs SET delivered_at = ?, delivered_via = ?, interaction_token = ''
               WHERE id = ? AND delivered_at IS NULL AND status IN {_DELIVERABLE} AND owner = ? RETURNING id"""  # noqa: S608
        params = (_now(now), via, job_id, self.instance)
        won: bool = await self._engine.write(lambda db: tasks_sql.deliver(db, statement, params, job_id))
        return won

    # -- other writes ----------------------------------------------------------------------------

    async def set_message(self, job_id: int, message_id: int) -> None:
        """Remember the id of the reply message."""
        await self._changed("SET message_id = ? WHERE id = ?", (message_id, job_id))

    async def mark_reply_deleted(self, job_id: int, *, now: float | None = None) -> None:
        """Remember that the job's result message was deleted on request."""
        await self._changed("SET deleted_at = ? WHERE id = ?", (_now(now), job_id))

    async def record_show_again(self, user_id: int, *, now: float | None = None) -> None:
        """Remember when the member last had a result shown again (it counts as a command for the cooldown)."""
        await self._engine.statement(
            "INSERT INTO shown_again (user_id, at) VALUES (?, ?) ON CONFLICT (user_id) DO UPDATE SET at = excluded.at",
            (user_id, _now(now)),
            priority=URGENT,
        )

    async def save_guild_settings(self, guild_id: int, settings: GuildSettings) -> None:
        """Store a server's settings."""
        await self._engine.statement(
            """INSERT INTO guild_settings (guild_id, settings) VALUES (?, ?)
               ON CONFLICT (guild_id) DO UPDATE SET settings = excluded.settings""",
            (guild_id, settings.to_json()),
        )

    # -- reads -----------------------------------------------------------------------------------

    async def get_job(self, job_id: int) -> Job | None:
        """The job with this id, or None."""
        rows = await self._jobs("WHERE id = ?", (job_id,))
        return rows[0] if rows else None

    async def job_for_task(self, provider: str, task_id: str) -> Job | None:
        """The job a provider task belongs to, or None."""
        rows = await self._jobs(tasks_sql.JOB_OF_TASK, (provider, task_id))
        return rows[0] if rows else None

    async def jobs_with_status(self, status: JobStatus) -> list[Job]:
        """Undelivered jobs in `status`, oldest first."""
        return await self._jobs("WHERE status = ? AND delivered_at IS NULL ORDER BY id", (status,))

    async def undelivered_jobs(self) -> list[Job]:
        """Finished jobs whose reply does not show the outcome yet, oldest first."""
        return await self._jobs(f"WHERE status IN {sql.FINISHED} AND delivered_at IS NULL ORDER BY id", ())

    async def queued_jobs_of(self, guild_id: int, user_id: int) -> list[Job]:
        """A member's jobs still waiting in the queue on one server."""
        return await self._jobs(
            "WHERE guild_id = ? AND user_id = ? AND status = 'queued' ORDER BY id", (guild_id, user_id)
        )

    async def usage(self, user_id: int, *, budget: Budget | None = None, now: float | None = None) -> Usage:
        """A member's open jobs, last command and images today (UTC), across every server; with `budget`, also
        its server's images today and this month."""
        at = _now(now)
        [row] = await self._engine.read(
            sql.USAGE_WITH_BUDGET if budget else sql.USAGE,
            {"user": user_id, "since": day_start(at), "budget_guild": budget and budget.guild_id,
             "month": period_start(MONTH, at)},
        )  # fmt: skip
        used = BudgetUse(int(row[3]), int(row[4])) if budget else BudgetUse()
        return Usage(int(row[0]), row[1], int(row[2]), used)

    async def recent_jobs(self, user_id: int, *, limit: int, offset: int = 0) -> tuple[list[Job], int]:
        """A member's jobs, newest first, one page of them, and how many there are in all."""
        jobs = await self._jobs("WHERE user_id = ? ORDER BY id DESC LIMIT ? OFFSET ?", (user_id, limit, offset))
        [row] = await self._engine.read("SELECT COUNT(*) FROM jobs WHERE user_id = ?", (user_id,))
        return jobs, int(row[0])

    async def guild_settings(self, guild_id: int) -> GuildSettings:
        """A server's settings (all defaults when it never changed any)."""
        rows = await self._engine.read("SELECT settings FROM guild_settings WHERE guild_id = ?", (guild_id,))
        return GuildSettings.from_json(rows[0][0]) if rows else GuildSettings()

    async def _changed(self, clause: str, params: Sequence[Any] | dict[str, Any]) -> bool:
        """Run one UPDATE of a job; True when it changed the row (the conditional write won)."""
        return bool(await self._engine.statement(f"UPDATE jobs {clause} RETURNING id", params))

    async def _jobs(self, clause: str, params: Sequence[Any]) -> list[Job]:
        query = f"SELECT *, {tasks_sql.TASKS} FROM jobs {clause}"  # noqa: S608
        return [sql.job(row) for row in await self._engine.read(query, params)]


def _now(now: float | None) -> float:
    return time.time() if now is None else now
