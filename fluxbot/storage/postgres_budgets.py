"""The PostgreSQL queries behind `Budgets`: a server's images per UTC day and month, and who posts each notice.

Admissions that a budget applies to take an advisory lock on the server (`postgres.PostgresStore.admit`), so
the server's total is counted after every admission committed before, whichever process made it.
"""

from __future__ import annotations

import time

from fluxbot.budgets import DAY, MONTH, BudgetUse, period_start
from fluxbot.storage.postgres_engine import Engine

#: Notices of periods this old are forgotten (the longest period is a month).
_NOTICES_KEPT = 62 * 86_400


def server_images_since(since: str) -> str:
    """A subquery (`:name` placeholders): the images of the jobs counting against `:budget_guild` since the
    parameter `since` (failed jobs make none). ADMIT checks it and USAGE reports it; jobs_budget serves it."""
    return f"""SELECT COALESCE(SUM(count), 0) FROM jobs WHERE budget_guild = :budget_guild::bigint
               AND created_at >= :{since}::double precision AND status <> 'failed'"""  # noqa: S608


_USED = f"SELECT ({server_images_since('day')}), ({server_images_since('month')})"

# The first caller inserts the row and gets it back; everyone after meets the conflict and gets nothing.
_CLAIM = """WITH forgotten AS (DELETE FROM budget_notices WHERE at < $4::double precision - $5::double precision)
    INSERT INTO budget_notices (guild_id, period, percent, at) VALUES ($1, $2, $3, $4)
    ON CONFLICT DO NOTHING RETURNING 1"""


class PostgresBudgets:
    """Servers' budgets on PostgreSQL (every process counts the same jobs and sees the same notices)."""

    def __init__(self, engine: Engine) -> None:
        self._engine = engine

    async def used(self, guild_id: int, *, now: float | None = None) -> BudgetUse:
        """The server's images so far in the current UTC day and month (failed jobs make none)."""
        at = time.time() if now is None else now
        [row] = await self._engine.fetch_named(
            _USED, {"budget_guild": guild_id, "day": period_start(DAY, at), "month": period_start(MONTH, at)}
        )
        return BudgetUse(int(row[0]), int(row[1]))

    async def claim_notice(self, guild_id: int, period: str, percent: int, *, now: float | None = None) -> bool:
        """Record the notice; True for the one caller, of any process, that recorded it first."""
        at = float(time.time() if now is None else now)
        return bool(await self._engine.fetch(_CLAIM, guild_id, period, percent, at, float(_NOTICES_KEPT)))
