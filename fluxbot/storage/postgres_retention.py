"""The PostgreSQL queries behind `Retention`: old jobs folded into usage totals, and interaction tokens forgotten.

Several processes may prune at once: each batch deletes and folds its rows in one statement, and rows another
process is deleting are skipped, so no job is counted twice.
"""

from __future__ import annotations

from fluxbot.jobs.lifecycle import FINISHED_STATUSES
from fluxbot.storage.postgres_engine import Engine
from fluxbot.storage.sqlite_engine import sql_states

_FINISHED = sql_states(FINISHED_STATUSES)

_PRUNE = f"""
    WITH gone AS (
        DELETE FROM jobs WHERE id IN (
            SELECT id FROM jobs WHERE created_at < $1 AND status IN {_FINISHED}
            ORDER BY created_at LIMIT $2 FOR UPDATE SKIP LOCKED
        )
        RETURNING id, budget_guild, guild_id, user_id, created_at, model, status, count
    ), tasks_gone AS (
        DELETE FROM job_tasks WHERE job_id IN (SELECT id FROM gone)
    ), kept_gone AS (
        DELETE FROM kept_images WHERE job_id IN (SELECT id FROM gone)
    ), folded AS (
        INSERT INTO usage_totals (guild_id, user_id, day, model, jobs, images, failed)
        SELECT COALESCE(budget_guild, guild_id, 0), user_id,
               to_char(to_timestamp(created_at) AT TIME ZONE 'UTC', 'YYYY-MM-DD'), model,
               COUNT(*), SUM(CASE WHEN status = 'failed' THEN 0 ELSE count END),
               SUM(CASE WHEN status = 'succeeded' THEN 0 ELSE 1 END)
        FROM gone GROUP BY 1, 2, 3, 4
        ON CONFLICT (guild_id, user_id, day, model) DO UPDATE SET
            jobs = usage_totals.jobs + excluded.jobs, images = usage_totals.images + excluded.images,
            failed = usage_totals.failed + excluded.failed
    )
    SELECT COUNT(*) FROM gone"""  # noqa: S608
_SMALL_TABLES = (
    "DELETE FROM edit_sources WHERE created_at < $1",
    "DELETE FROM shown_again WHERE at < $1",
)


class PostgresRetention:
    """Old jobs and stale tokens on PostgreSQL."""

    def __init__(self, engine: Engine) -> None:
        self._engine = engine

    async def forget_tokens(self, before: float) -> int:
        """Drop the interaction token of every job created before `before`; how many were dropped."""
        rows = await self._engine.fetch(
            "UPDATE jobs SET interaction_token = '' WHERE interaction_token != '' AND created_at < $1 RETURNING 1",
            float(before),
        )
        return len(rows)

    async def prune(self, before: float, *, batch: int = 500) -> int:
        """Fold up to `batch` finished jobs created before `before` into the usage totals and delete them (with
        the edit sources and shown-again records as old); how many jobs went."""
        [row] = await self._engine.fetch(_PRUNE, float(before), batch)
        for statement in _SMALL_TABLES:
            await self._engine.fetch(statement, float(before))
        return int(row[0])
