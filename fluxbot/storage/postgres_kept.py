"""The PostgreSQL queries behind `KeptImages`: result images downloaded before the provider's links expire.

Kept in the database, any process can deliver them, also after the one that downloaded them stopped."""

from __future__ import annotations

import time
from collections.abc import Mapping

from fluxbot.storage.postgres_engine import Engine

_KEEP = """INSERT INTO kept_images (job_id, url, data, kept_at)
    SELECT $1, url, data, $4 FROM unnest($2::text[], $3::bytea[]) AS kept (url, data)
    ON CONFLICT (job_id, url) DO UPDATE SET data = excluded.data, kept_at = excluded.kept_at"""


class PostgresKept:
    """Kept result images on PostgreSQL (deleted with the job's delivery: `mark_delivered`)."""

    def __init__(self, engine: Engine) -> None:
        self._engine = engine

    async def keep(self, job_id: int, images: Mapping[str, bytes], *, now: float | None = None) -> None:
        """Keep a finished task's images (by their provider URL) until the job is delivered."""
        at = time.time() if now is None else float(now)
        await self._engine.fetch(_KEEP, job_id, list(images), list(images.values()), at)

    async def images(self, job_id: int) -> dict[str, bytes]:
        """The job's kept images by their provider URL ({} when none are kept)."""
        rows = await self._engine.fetch("SELECT url, data FROM kept_images WHERE job_id = $1", job_id)
        return {str(row[0]): bytes(row[1]) for row in rows}
