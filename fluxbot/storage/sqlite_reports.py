"""The SQLite queries behind `/fluxadmin usage`: a server's jobs per member and per UTC day."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from fluxbot.jobs.lifecycle import OPEN_STATUSES
from fluxbot.storage.base import REPORT_MEMBERS, DayUsage, GuildReport, MemberUsage
from fluxbot.storage.sqlite_engine import Engine, sql_states

_DAY = 86_400  # seconds
_OPEN = sql_states(OPEN_STATUSES)
# Images count unless the job failed; a timed-out job may still have been billed, so it counts too.
_TOTALS = """COALESCE(SUM(CASE WHEN status != 'failed' THEN count ELSE 0 END), 0), COUNT(*),
             COALESCE(SUM(status IN ('failed', 'timed_out')), 0)"""


async def guild_report(engine: Engine, guild_id: int, *, days: int, since: float) -> GuildReport:
    """Usage on one server since `since` (a UTC midnight, `days` days ago): per member, per day, and open jobs."""
    by_member = await engine.read(
        f"""SELECT user_id, {_TOTALS} FROM jobs WHERE guild_id = ? AND created_at >= ?
            GROUP BY user_id ORDER BY 2 DESC, 3 DESC""",  # noqa: S608
        (guild_id, since),
    )
    members = [MemberUsage(int(r[0]), int(r[1]), int(r[2]), int(r[3])) for r in by_member]
    by_day = await engine.read(
        f"""SELECT CAST((created_at - ?) / {_DAY} AS INTEGER) AS day, {_TOTALS}
            FROM jobs WHERE guild_id = ? AND created_at >= ? GROUP BY day ORDER BY day DESC""",  # noqa: S608
        (since, guild_id, since),
    )
    first = datetime.fromtimestamp(since, tz=UTC).date()
    per_day = [DayUsage(first + timedelta(days=int(r[0])), int(r[1]), int(r[2]), int(r[3])) for r in by_day]
    open_rows = await engine.read(
        f"SELECT status, COUNT(*) FROM jobs WHERE guild_id = ? AND status IN {_OPEN} GROUP BY status",  # noqa: S608
        (guild_id,),
    )
    shown = members[:REPORT_MEMBERS]
    return GuildReport(days, shown, len(members) - len(shown), per_day, {str(r[0]): int(r[1]) for r in open_rows})
