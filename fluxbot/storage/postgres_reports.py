"""The PostgreSQL queries behind `Reports`: counts over many jobs, for `/fluxadmin usage`, the queue, the metrics.

`/fluxadmin usage` gives a server's jobs per member, per UTC day and per model; a server's jobs are those that
count against its budget: made there, or in a DM under its rules.
"""

from __future__ import annotations

import time
from collections import defaultdict
from datetime import UTC, datetime, timedelta

from fluxbot.budgets import day_start
from fluxbot.jobs.lifecycle import OPEN_STATUSES, JobStatus
from fluxbot.storage.base import REPORT_MEMBERS, DayUsage, GuildReport, MemberUsage
from fluxbot.storage.postgres_engine import Engine
from fluxbot.storage.sqlite_engine import sql_states

_DAY = 86_400  # seconds
_OPEN = sql_states(OPEN_STATUSES)
# Images count unless the job failed; a timed-out job may still have been billed, so it counts too.
_TOTALS = """COALESCE(SUM(count) FILTER (WHERE status <> 'failed'), 0), COUNT(*),
             COUNT(*) FILTER (WHERE status IN ('failed', 'timed_out'))"""
# floor, not a cast: PostgreSQL's cast to an integer rounds.
_DAY_NUMBER = f"floor((created_at - $2) / {_DAY})::bigint"
_WHERE = "budget_guild = $1 AND created_at >= $2"

_QUEUE_POSITIONS = """SELECT id, ROW_NUMBER() OVER (ORDER BY id) FROM jobs
    WHERE status = 'queued' AND message_id IS NOT NULL AND delivered_at IS NULL"""

_RECENT_DURATIONS = """SELECT finished_at - submitted_at FROM jobs
    WHERE provider = $1 AND model = $2 AND status = 'succeeded' AND submitted_at IS NOT NULL
    ORDER BY id DESC LIMIT $3"""


class PostgresReports:
    """Reports on PostgreSQL (over every process's jobs)."""

    def __init__(self, engine: Engine) -> None:
        self._engine = engine

    async def queue_positions(self) -> dict[int, int]:
        """Every queued job's place in line: 1 for the next to start, 2 for the one after it, ..."""
        rows = await self._engine.fetch(_QUEUE_POSITIONS)
        return {int(r[0]): int(r[1]) for r in rows}

    async def recent_durations(self, provider: str, model: str, *, limit: int) -> list[float]:
        """How long the provider took (submit to result) for this model's latest successful jobs, newest first."""
        rows = await self._engine.fetch(_RECENT_DURATIONS, provider, model, limit)
        return [float(r[0]) for r in rows]

    async def count_undelivered(self) -> dict[str, int]:
        """How many jobs are in each state among those still open or awaiting delivery (every state, zeros too)."""
        rows = await self._engine.fetch("SELECT status, COUNT(*) FROM jobs WHERE delivered_at IS NULL GROUP BY status")
        counts = {str(r[0]): int(r[1]) for r in rows}
        return {state.value: counts.get(state.value, 0) for state in JobStatus}

    async def guild_report(self, guild_id: int, *, days: int = 1, now: float | None = None) -> GuildReport:
        """Usage on one server over the last `days` UTC days: per member, per day, and the jobs open now."""
        since = float(day_start(time.time() if now is None else float(now)) - (days - 1) * _DAY)
        models: dict[tuple[str, int], dict[str, int]] = defaultdict(dict)
        for row in await self._engine.fetch(
            f"""SELECT user_id, {_DAY_NUMBER}, model, SUM(count) FROM jobs WHERE {_WHERE} AND status <> 'failed'
                GROUP BY 1, 2, 3""",  # noqa: S608
            guild_id,
            since,
        ):
            for key in (("member", int(row[0])), ("day", int(row[1]))):
                models[key][str(row[2])] = models[key].get(str(row[2]), 0) + int(row[3])
        by_member = await self._engine.fetch(
            f"""SELECT user_id, {_TOTALS} FROM jobs WHERE {_WHERE}
                GROUP BY user_id ORDER BY 2 DESC, 3 DESC, 1""",  # noqa: S608
            guild_id,
            since,
        )
        members = [
            MemberUsage(int(r[0]), int(r[1]), int(r[2]), int(r[3]), models[("member", int(r[0]))]) for r in by_member
        ]
        by_day = await self._engine.fetch(
            f"""SELECT {_DAY_NUMBER} AS day, {_TOTALS}
                FROM jobs WHERE {_WHERE} GROUP BY day ORDER BY day DESC""",  # noqa: S608
            guild_id,
            since,
        )
        first = datetime.fromtimestamp(since, tz=UTC).date()
        per_day = [
            DayUsage(first + timedelta(days=int(r[0])), int(r[1]), int(r[2]), int(r[3]), models[("day", int(r[0]))])
            for r in by_day
        ]
        open_rows = await self._engine.fetch(
            f"SELECT status, COUNT(*) FROM jobs WHERE budget_guild = $1 AND status IN {_OPEN} GROUP BY status",  # noqa: S608
            guild_id,
        )
        shown = members[:REPORT_MEMBERS]
        return GuildReport(days, shown, len(members) - len(shown), per_day, {str(r[0]): int(r[1]) for r in open_rows})
