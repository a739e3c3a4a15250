"""The PostgreSQL queries behind `Leases`: each run's lease on the database's clock, and adopting orphaned jobs."""

from __future__ import annotations

from collections.abc import Callable

from fluxbot.jobs.lifecycle import Job
from fluxbot.storage.postgres_engine import Engine
from fluxbot.storage.postgres_queries import job
from fluxbot.storage.postgres_tasks import TASKS

#: The database's clock in epoch seconds: leases compare against it, so the hosts' clocks need not agree.
DB_NOW = "extract(epoch from clock_timestamp())::double precision"

#: $1 this run, $2 now (None: the database's clock), $3 seconds.
_RENEW = f"""INSERT INTO instances (name, lease_until) VALUES ($1, COALESCE($2::double precision, {DB_NOW}) + $3)
    ON CONFLICT (name) DO UPDATE SET lease_until = excluded.lease_until"""  # noqa: S608

_LIVE_INSTANCES = f"SELECT name FROM instances WHERE lease_until > {DB_NOW} ORDER BY name"  # noqa: S608

#: $1 this run, $2 now (None: the database's clock).
_ADOPT_ORPHANS = f"""UPDATE jobs SET owner = $1
    WHERE delivered_at IS NULL AND (owner IS NULL OR owner <> $1)
      AND NOT EXISTS (SELECT 1 FROM instances WHERE name = jobs.owner
                      AND lease_until > COALESCE($2::double precision, {DB_NOW}))
    RETURNING *, {TASKS}"""  # noqa: S608


class PostgresLeases:
    """Ownership on PostgreSQL: a run's jobs are its own while its lease lasts, then any process may adopt them."""

    def __init__(self, engine: Engine, me: Callable[[], str]) -> None:
        self._engine = engine
        self._me = me  # the store's `instance`, read at each call

    async def renew(self, *, seconds: float, now: float | None = None) -> None:
        """Keep this run's jobs its own for `seconds` more (from the database's clock unless `now` is given)."""
        await self._engine.fetch(_RENEW, self._me(), now, float(seconds))

    async def end(self) -> None:
        """Give this run's unfinished jobs up at once: another process may adopt them now."""
        await self._engine.fetch("DELETE FROM instances WHERE name = $1", self._me())

    async def live_instances(self) -> list[str]:
        """The runs whose lease has not ended (on the database's clock), by name."""
        return [str(r[0]) for r in await self._engine.fetch(_LIVE_INSTANCES)]

    async def adopt_orphans(self, *, now: float | None = None) -> list[Job]:
        """Undelivered jobs of no run, or of a run whose lease has ended, become this run's; oldest first."""
        rows = await self._engine.fetch(_ADOPT_ORPHANS, self._me(), now)
        return sorted((job(row) for row in rows), key=lambda adopted: adopted.id)
