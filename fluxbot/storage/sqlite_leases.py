"""The SQLite queries behind `Leases`: this run's lease, and the jobs of earlier runs it takes up.

One process has the file (`Engine.open` locks it), so every job another run owned is this run's to take.
"""

from __future__ import annotations

import time
from collections.abc import Callable

from fluxbot.jobs.lifecycle import Job
from fluxbot.storage.sqlite_engine import URGENT, Engine
from fluxbot.storage.sqlite_queries import job
from fluxbot.storage.sqlite_tasks import TASKS


class SQLiteLeases:
    """Ownership on the SQLite file: plain, since no other process can be alive on it."""

    def __init__(self, engine: Engine, me: Callable[[], str]) -> None:
        self._engine = engine
        self._me = me  # the store's `instance`, read at each call

    async def renew(self, *, seconds: float, now: float | None = None) -> None:
        """Record this run's lease (nobody else reads it: the file lock already keeps others out)."""
        await self._engine.statement(
            """INSERT INTO instances (name, lease_until) VALUES (?, ?)
               ON CONFLICT (name) DO UPDATE SET lease_until = excluded.lease_until""",
            (self._me(), (time.time() if now is None else now) + seconds),
        )

    async def end(self) -> None:
        """Forget this run's lease."""
        await self._engine.statement("DELETE FROM instances WHERE name = ?", (self._me(),))

    async def live_instances(self) -> list[str]:
        """The runs whose lease has not ended, by name."""
        rows = await self._engine.read("SELECT name FROM instances WHERE lease_until > ? ORDER BY name", (time.time(),))
        return [str(r[0]) for r in rows]

    async def adopt_orphans(self, *, now: float | None = None) -> list[Job]:
        """Every undelivered job of an earlier run becomes this run's (no earlier run can still be alive)."""
        me = self._me()
        rows = await self._engine.statement(
            f"UPDATE jobs SET owner = ? WHERE delivered_at IS NULL AND owner IS NOT ? RETURNING *, {TASKS}",  # noqa: S608
            (me, me),
            priority=URGENT,
        )
        return sorted((job(row) for row in rows), key=lambda adopted: adopted.id)
