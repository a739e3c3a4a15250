"""The SQLite queries behind `Budgets`: a server's images per UTC day and month, and who posts each notice."""

from __future__ import annotations

import time
from typing import Any

import aiosqlite

from fluxbot.budgets import DAY, MONTH, Budget, BudgetUse, period_start
from fluxbot.storage.sqlite_engine import Engine

#: Notices of periods this old are forgotten (the longest period is a month).
_NOTICES_KEPT = 62 * 86_400


def server_images_since(since: str) -> str:
    """A subquery: the images of the jobs counting against `:budget_guild` since the parameter `since` (failed
    jobs make none). `admit` checks it and `usage` reports it; the jobs_budget index serves it."""
    return f"""SELECT COALESCE(SUM(count), 0) FROM jobs
               WHERE budget_guild = :budget_guild AND created_at >= :{since} AND status != 'failed'"""  # noqa: S608


def budget_params(budget: Budget | None, reply_guild: int | None, created: float) -> dict[str, Any]:
    """What admit's budget clauses need (both engines): the server the job counts against (without a budget, the
    reply's), its budget, and the start of the month (the day's is the member quota's `:since`)."""
    guild = budget.guild_id if budget is not None else reply_guild
    daily, monthly = (budget.daily, budget.monthly) if budget is not None else (0, 0)
    return {"budget_guild": guild, "budget_daily": daily, "budget_monthly": monthly,
            "month": period_start(MONTH, created)}  # fmt: skip


_USED = f"SELECT ({server_images_since('day')}), ({server_images_since('month')})"


class SQLiteBudgets:
    """Servers' budgets on the SQLite file."""

    def __init__(self, engine: Engine) -> None:
        self._engine = engine

    async def used(self, guild_id: int, *, now: float | None = None) -> BudgetUse:
        """The server's images so far in the current UTC day and month (failed jobs make none)."""
        at = time.time() if now is None else now
        [row] = await self._engine.read(
            _USED, {"budget_guild": guild_id, "day": period_start(DAY, at), "month": period_start(MONTH, at)}
        )
        return BudgetUse(int(row[0]), int(row[1]))

    async def claim_notice(self, guild_id: int, period: str, percent: int, *, now: float | None = None) -> bool:
        """Record the notice; True for the one caller that recorded it first."""
        at = time.time() if now is None else now

        async def claim(db: aiosqlite.Connection) -> bool:
            await db.execute("DELETE FROM budget_notices WHERE at < ?", (at - _NOTICES_KEPT,))
            rows = await db.execute_fetchall(
                """INSERT INTO budget_notices (guild_id, period, percent, at) VALUES (?, ?, ?, ?)
                   ON CONFLICT DO NOTHING RETURNING 1""",
                (guild_id, period, percent, at),
            )
            return bool(list(rows))

        claimed: bool = await self._engine.write(claim)
        return claimed
