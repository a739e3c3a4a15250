"""The SQLite queries behind `Reports`: counts over many jobs, for `/fluxadmin usage`, the queue, the metrics.

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
from fluxbot.storage.sqlite_engine import Engine, sql_states

_DAY = 86_400  # seconds
_OPEN = sql_states(OPEN_STATUSES)
# Images count unless the job failed; a timed-out job may still have been billed, so it counts too.
_TOTALS = """COALESCE(SUM(CASE WHEN status != 'failed' THEN count ELSE 0 END), 0), COUNT(*),
             COALESCE(SUM(status IN ('failed', 'timed_out')), 0)"""
_DAY_NUMBER = f"CAST((created_at - :since) / {_DAY} AS INTEGER)"


class SQLiteReports:
    """Reports on the SQLite file."""

    def __init__(self, engine: Engine) -> None:
        self._engine = engine

    async def queue_positions(self) -> dict[int, int]:
        """Every queued job's place in line: 1 for the next to start, 2 for the one after it, ..."""
        rows = await self._engine.read(
            """SELECT id, ROW_NUMBER() OVER (ORDER BY id) FROM jobs
               WHERE status = 'queued' AND message_id IS NOT NULL AND delivered_at IS NULL"""
        )
        return {int(r[0]): int(r[1]) for r in rows}

    async def recent_durations(self, provider: str, model: str, *, limit: int) -> list[float]:
        """How long the provider took (submit to result) for this model's latest successful jobs, newest first."""
        rows = await self._engine.read(
            """SELECT finished_at - submitted_at FROM jobs
               WHERE provider = ? AND model = ? AND status = 'succeeded' AND submitted_at IS NOT NULL
               ORDER BY id DESC LIMIT ?""",
            (provider, model, limit),
        )
        return [float(r[0]) for r in rows]

    async def count_undelivered(self) -> dict[str, int]:
        """How many jobs are in each state among those still open or awaiting delivery (every state, zeros too)."""
        rows = await self._engine.read("SELECT status, COUNT(*) FROM jobs WHERE delivered_at IS NULL GROUP BY status")
        counts = {str(r[0]): int(r[1]) for r in rows}
        return {state.value: counts.get(state.value, 0) for state in JobStatus}

    async def guild_report(self, guild_id: int, *, days: int = 1, now: float | None = None) -> GuildReport:
        """Usage on one server over the last `days` UTC days: per member, per day, and the jobs open now."""
        since = day_start(time.time() if now is None else now) - (days - 1) * _DAY
        params = {"guild": guild_id, "since": since}
        where = "budget_guild = :guild AND created_at >= :since"
        models: dict[tuple[str, int], dict[str, int]] = defaultdict(dict)
        for row in await self._engine.read(
            f"""SELECT user_id, {_DAY_NUMBER}, model, SUM(count) FROM jobs WHERE {where} AND status != 'failed'
                GROUP BY 1, 2, 3""",  # noqa: S608
            params,
        ):
            for key in (("member", int(row[0])), ("day", int(row[1]))):
                models[key][str(row[2])] = models[key].get(str(row[2]), 0) + int(row[3])
        by_member = await self._engine.read(
            f"""SELECT user_id, {_TOTALS} FROM jobs WHERE {where}
                GROUP BY user_id ORDER BY 2 DESC, 3 DESC""",  # noqa: S608
            params,
        )
        members = [
            MemberUsage(int(r[0]), int(r[1]), int(r[2]), int(r[3]), models[("member", int(r[0]))]) for r in by_member
        ]
        by_day = await self._engine.read(
            f"""SELECT {_DAY_NUMBER} AS day, {_TOTALS}
                FROM jobs WHERE {where} GROUP BY day ORDER BY day DESC""",  # noqa: S608
            params,
        )
        first = datetime.fromtimestamp(since, tz=UTC).date()
        per_day = [
            DayUsage(first + timedelta(days=int(r[0])), int(r[1]), int(r[2]), int(r[3]), models[("day", int(r[0]))])
            for r in by_day
        ]
        open_rows = await self._engine.read(
            f"SELECT status, COUNT(*) FROM jobs WHERE budget_guild = ? AND status IN {_OPEN} GROUP BY status",  # noqa: S608
            (guild_id,),
        )
        shown = members[:REPORT_MEMBERS]
        return GuildReport(days, shown, len(members) - len(shown), per_day, {str(r[0]): int(r[1]) for r in open_rows})
