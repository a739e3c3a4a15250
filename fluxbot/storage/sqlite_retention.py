"""The SQLite queries behind `Retention`: old jobs folded into usage totals, and interaction tokens forgotten."""

from __future__ import annotations

import aiosqlite

from fluxbot.jobs.lifecycle import FINISHED_STATUSES
from fluxbot.storage.sqlite_engine import Engine, sql_states

_FINISHED = sql_states(FINISHED_STATUSES)

#: The jobs one prune deletes: finished, and created before `:before` (the jobs_created index finds them).
_OLD_JOBS = f"""SELECT id FROM jobs WHERE created_at < :before AND status IN {_FINISHED}
                ORDER BY created_at LIMIT :batch"""  # noqa: S608
# Folded into the totals before they go; a DM job without a server counts under server 0.
_FOLD = """INSERT INTO usage_totals (guild_id, user_id, day, model, jobs, images, failed)
           SELECT COALESCE(budget_guild, guild_id, 0), user_id, strftime('%Y-%m-%d', created_at, 'unixepoch'), model,
                  COUNT(*), SUM(CASE WHEN status = 'failed' THEN 0 ELSE count END),
                  SUM(CASE WHEN status = 'succeeded' THEN 0 ELSE 1 END)
           FROM jobs WHERE id IN (SELECT value FROM json_each(:ids)) GROUP BY 1, 2, 3, 4
           ON CONFLICT (guild_id, user_id, day, model) DO UPDATE SET
               jobs = jobs + excluded.jobs, images = images + excluded.images, failed = failed + excluded.failed"""
#: A job's rows, deleted with it.
_JOB_TABLES = (("jobs", "id"), ("job_tasks", "job_id"), ("kept_images", "job_id"))
_SMALL_TABLES = (
    "DELETE FROM edit_sources WHERE created_at < :before",
    "DELETE FROM shown_again WHERE at < :before",
)


class SQLiteRetention:
    """Old jobs and stale tokens on the SQLite file."""

    def __init__(self, engine: Engine) -> None:
        self._engine = engine

    async def forget_tokens(self, before: float) -> int:
        """Drop the interaction token of every job created before `before`; how many were dropped."""
        rows = await self._engine.statement(
            "UPDATE jobs SET interaction_token = '' WHERE interaction_token != '' AND created_at < ? RETURNING 1",
            (before,),
        )
        return len(rows)

    async def prune(self, before: float, *, batch: int = 500) -> int:
        """Fold up to `batch` finished jobs created before `before` into the usage totals and delete them (with
        the edit sources and shown-again records as old), in one transaction; how many jobs went."""

        async def prune(db: aiosqlite.Connection) -> int:
            ids = [int(row[0]) for row in await db.execute_fetchall(_OLD_JOBS, {"before": before, "batch": batch})]
            if ids:
                listed = "[" + ",".join(map(str, ids)) + "]"
                await db.execute(_FOLD, {"ids": listed})
                for table, key in _JOB_TABLES:
                    await db.execute(f"DELETE FROM {table} WHERE {key} IN (SELECT value FROM json_each(?))", (listed,))  # noqa: S608
            for statement in _SMALL_TABLES:
                await db.execute(statement, {"before": before})
            return len(ids)

        pruned: int = await self._engine.write(prune)
        return pruned
