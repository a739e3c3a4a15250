"""The PostgreSQL store: one database for several processes, every state change one conditional statement.

It behaves as `SQLiteStore` does, and where several processes meet it decides under PostgreSQL's locks:
claims take the oldest queued job with `FOR UPDATE SKIP LOCKED` under one advisory lock (the global cap counts
every process's jobs), a member's admissions are serialized by an advisory lock on the member (and, under a
server budget, on the server too), ownership is a lease on the database's clock, and signals travel by
LISTEN/NOTIFY.
"""

from __future__ import annotations

import contextlib
import json
import time
from collections.abc import AsyncIterator, Sequence
from typing import Any

from fluxbot.budgets import MONTH, Budget, BudgetUse, day_start, period_start
from fluxbot.errors import stored_text
from fluxbot.jobs.capacity import Capacity
from fluxbot.jobs.lifecycle import LIFECYCLE, Job, JobStatus, JobTask, Outcome, Reply, Transition
from fluxbot.limits import GuildSettings, Limits
from fluxbot.providers.base import JobRequest
from fluxbot.quotas import Usage
from fluxbot.storage import postgres_queries as sql
from fluxbot.storage import postgres_tasks as tasks_sql
from fluxbot.storage.base import Signal, SignalHandler, run_name
from fluxbot.storage.postgres_budgets import PostgresBudgets
from fluxbot.storage.postgres_edit_sources import PostgresEditSources
from fluxbot.storage.postgres_engine import CLAIM, GUILD_LOCKS, MEMBER_LOCKS, NAMED_LOCKS, Engine, named
from fluxbot.storage.postgres_kept import PostgresKept
from fluxbot.storage.postgres_leases import PostgresLeases
from fluxbot.storage.postgres_members import PostgresMembers
from fluxbot.storage.postgres_meta import PostgresMeta
from fluxbot.storage.postgres_reports import PostgresReports
from fluxbot.storage.postgres_retention import PostgresRetention
from fluxbot.storage.postgres_schema import migrate
from fluxbot.storage.postgres_signals import CHANNEL, Listener, notification
from fluxbot.storage.postgres_strikes import PostgresStrikes
from fluxbot.storage.schema import images_json, tasks_json
from fluxbot.storage.sqlite_budgets import budget_params


class PostgresStore:
    """The jobs database on PostgreSQL. Open with `await PostgresStore.open(url)`, close with `close()`."""

    shared = True

    def __init__(self, engine: Engine, listener: Listener, instance: str) -> None:
        self._engine = engine
        self._listener = listener
        self.instance = instance
        #: Refused prompts and pauses.
        self.strikes = PostgresStrikes(engine)
        #: Servers' images per day and month, and their budget notices.
        self.budgets = PostgresBudgets(engine)
        #: Members' defaults (/settings).
        self.members = PostgresMembers(engine)
        #: Old jobs and stale interaction tokens.
        self.retention = PostgresRetention(engine)
        #: Each run's lease, and the jobs of runs whose lease ended.
        self.leases = PostgresLeases(engine, lambda: self.instance)
        #: The images members may edit.
        self.edit_sources = PostgresEditSources(engine)
        #: Counts over many jobs.
        self.reports = PostgresReports(engine)
        #: The key/value table.
        self.meta = PostgresMeta(engine)
        #: Result images kept until their job is delivered.
        self.kept = PostgresKept(engine)

    @classmethod
    async def open(cls, url: str, *, instance: str | None = None, pool_size: int = 10) -> PostgresStore:
        """Connect to the database at `url` (postgresql://user:password@host:port/db), migrate it, LISTEN."""
        name = instance or run_name()
        engine = await Engine.open(url, pool_size=pool_size)
        try:
            await migrate(engine)
            listener = Listener(url, name)
            await listener.start()
        except BaseException:
            await engine.close()
            raise
        return cls(engine, listener, name)

    def __repr__(self) -> str:
        return f"PostgresStore(instance={self.instance!r}, database={self._engine.where!r})"

    @property
    def round_trips(self) -> int:
        """Statements and queries sent to the database so far."""
        return self._engine.round_trips

    @property
    def listener(self) -> Listener:
        """The connection that receives the other processes' signals."""
        return self._listener

    async def close(self) -> None:
        """Stop listening and close the pool (waiting for statements under way)."""
        try:
            await self._listener.close()
        finally:
            await self._engine.close()

    # -- several processes: signals, locks (ownership: `leases`) ---------------------------------

    async def signal(self, signal: Signal, payload: str = "") -> None:
        """Tell the other processes (NOTIFY; this process's listener drops its own)."""
        await self._engine.fetch("SELECT pg_notify($1, $2)", CHANNEL, notification(self.instance, signal, payload))

    def listen(self, handler: SignalHandler) -> None:
        """Call `handler` for every signal another process sends."""
        self._listener.add(handler)

    @contextlib.asynccontextmanager
    async def exclusive(self, name: str) -> AsyncIterator[None]:
        """Hold the lock `name` across every process on this database for the block (a session advisory lock)."""
        async with self._engine.session_lock(NAMED_LOCKS, name):
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
        """Queue a job if the member's limits allow it; None when they do not.

        The member's admissions take turns under an advisory lock on the member, so commands arriving at once
        at different processes cannot together exceed a limit; the check and the insert are one statement. Under
        a server budget, the admissions counting against the server also take turns (a lock on the server,
        always taken after the member's, so two admissions never wait for each other's).
        """
        created = _now(now)
        text, args = named(
            sql.ADMIT,
            {
                "action": request.action, "provider": provider, "model": request.model, "prompt": request.prompt,
                "size": request.size, "count": request.count, "image_url": request.image_url,
                "user": reply.user_id, "guild": reply.guild_id, "channel": reply.channel_id,
                "application": reply.application_id, "token": reply.interaction_token, "message": reply.message_id,
                "created": created, "upload_limit": reply.upload_limit, "expects_callback": int(expects_callback),
                "options": json.dumps(dict(request.options)), "owner": self.instance,
                "member_jobs": limits.member_jobs, "cooldown": limits.cooldown_seconds,
                "since": day_start(created), "daily": limits.daily_images, "style": request.style,
                "locale": reply.locale, "member_locale": reply.member_locale,
                **budget_params(limits.budget, reply.guild_id, created),
            },
        )  # fmt: skip
        budget = limits.budget
        server = (GUILD_LOCKS, str(int(budget.guild_id))) if budget is not None and budget.applies else None
        rows = await self._engine.locked((MEMBER_LOCKS, str(int(reply.user_id))), text, *args, also=server)
        return sql.job(rows[0]) if rows else None

    async def claim(self, cap: int, capacity: Capacity | None = None) -> Job | None:
        """`claim`: the oldest queued job (with a reply) becomes this run's pending job, if fewer than `cap`
        jobs of all processes are at the provider and (with `capacity`) its provider and model have room for its
        tasks. Claims take turns under one advisory lock, so the counts checked include every claim committed
        before."""
        if capacity is not None and capacity.limited:
            row = await tasks_sql.claim_within(self._engine, self.instance, cap, capacity)
            return None if row is None else sql.job(row)
        rows = await self._engine.locked(CLAIM, sql.CLAIM, self.instance, cap)
        return sql.job(rows[0]) if rows else None

    async def mark_submitted(self, job_id: int, tasks: Sequence[JobTask], *, now: float | None = None) -> bool:
        """`submitted`: store the job's provider tasks (the first one's id as its task_id); False when the job was
        no longer pending."""
        first = next((t.task_id for t in sorted(tasks, key=lambda t: t.number) if t.task_id), None)
        return await self._won(tasks_sql.MARK_SUBMITTED, first, _now(now), job_id, tasks_json(tasks))

    async def end_task(self, job_id: int, task: JobTask) -> bool:
        """`task_end`: one of an open job's tasks ended (others still run); False when it had ended already or the
        job is no longer this run's open job."""
        return await self._won(tasks_sql.END_TASK, *tasks_sql.end_task_args(job_id, task, self.instance))

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
        return await self._won(
            tasks_sql.finish(sql.finish(transition)),
            outcome.status.value, images_json(outcome.images), outcome.inference_seconds,
            None if outcome.error is None else outcome.error.value, stored_text(outcome.message), _now(now),
            self.instance, job_id, tasks_json(tasks),
        )  # fmt: skip

    async def mark_delivered(self, job_id: int, via: str, *, now: float | None = None) -> bool:
        """`deliver`: the finished job's reply shows its outcome (this run owns it); False when it already did."""
        return await self._won(sql.MARK_DELIVERED, _now(now), via, job_id, self.instance)

    # -- other writes ----------------------------------------------------------------------------

    async def set_message(self, job_id: int, message_id: int) -> None:
        """Remember the id of the reply message."""
        await self._engine.fetch("UPDATE jobs SET message_id = $1 WHERE id = $2", message_id, job_id)

    async def mark_reply_deleted(self, job_id: int, *, now: float | None = None) -> None:
        """Remember that the job's result message was deleted on request."""
        await self._engine.fetch("UPDATE jobs SET deleted_at = $1 WHERE id = $2", _now(now), job_id)

    async def record_show_again(self, user_id: int, *, now: float | None = None) -> None:
        """Remember when the member last had a result shown again (it counts as a command for the cooldown)."""
        await self._engine.fetch(sql.RECORD_SHOW_AGAIN, user_id, _now(now))

    async def save_guild_settings(self, guild_id: int, settings: GuildSettings) -> None:
        """Store a server's settings."""
        await self._engine.fetch(sql.SAVE_GUILD_SETTINGS, guild_id, settings.to_json())

    # -- reads -----------------------------------------------------------------------------------

    async def get_job(self, job_id: int) -> Job | None:
        """The job with this id, or None."""
        rows = await self._jobs("WHERE id = $1", job_id)
        return rows[0] if rows else None

    async def job_for_task(self, provider: str, task_id: str) -> Job | None:
        """The job a provider task belongs to, or None."""
        rows = await self._jobs(tasks_sql.JOB_OF_TASK, provider, task_id)
        return rows[0] if rows else None

    async def jobs_with_status(self, status: JobStatus) -> list[Job]:
        """Undelivered jobs in `status`, oldest first."""
        return await self._jobs("WHERE status = $1 AND delivered_at IS NULL ORDER BY id", status.value)

    async def undelivered_jobs(self) -> list[Job]:
        """Finished jobs whose reply does not show the outcome yet, oldest first."""
        return await self._jobs(f"WHERE status IN {sql.FINISHED} AND delivered_at IS NULL ORDER BY id")

    async def queued_jobs_of(self, guild_id: int, user_id: int) -> list[Job]:
        """A member's jobs still waiting in the queue on one server."""
        return await self._jobs(
            "WHERE guild_id = $1 AND user_id = $2 AND status = 'queued' ORDER BY id", guild_id, user_id
        )

    async def usage(self, user_id: int, *, budget: Budget | None = None, now: float | None = None) -> Usage:
        """A member's open jobs, last command and images today (UTC), across every server; with `budget`, also
        its server's images today and this month."""
        at = _now(now)
        if budget is None:
            [row] = await self._engine.fetch_named(sql.USAGE, {"user": user_id, "since": day_start(at)})
            return Usage(int(row[0]), row[1], int(row[2]))
        params = {"user": user_id, "since": day_start(at), "budget_guild": budget.guild_id,
                  "month": period_start(MONTH, at)}  # fmt: skip
        [row] = await self._engine.fetch_named(sql.USAGE_WITH_BUDGET, params)
        return Usage(int(row[0]), row[1], int(row[2]), BudgetUse(int(row[3]), int(row[4])))

    async def recent_jobs(self, user_id: int, *, limit: int, offset: int = 0) -> tuple[list[Job], int]:
        """A member's jobs, newest first, one page of them, and how many there are in all."""
        jobs = await self._jobs("WHERE user_id = $1 ORDER BY id DESC LIMIT $2 OFFSET $3", user_id, limit, offset)
        [row] = await self._engine.fetch("SELECT COUNT(*) FROM jobs WHERE user_id = $1", user_id)
        return jobs, int(row[0])

    async def guild_settings(self, guild_id: int) -> GuildSettings:
        """A server's settings (all defaults when it never changed any)."""
        rows = await self._engine.fetch("SELECT settings FROM guild_settings WHERE guild_id = $1", guild_id)
        return GuildSettings.from_json(rows[0][0]) if rows else GuildSettings()

    async def _won(self, statement: str, *params: Any) -> bool:
        """Run one conditional UPDATE of a job (… RETURNING id); True when it changed the row (it won)."""
        return bool(await self._engine.fetch(statement, *params))

    async def _jobs(self, clause: str, *params: Any) -> list[Job]:
        query = f"SELECT *, {tasks_sql.TASKS} FROM jobs {clause}"  # noqa: S608
        return [sql.job(row) for row in await self._engine.fetch(query, *params)]


def _now(now: float | None) -> float:
    return time.time() if now is None else float(now)
