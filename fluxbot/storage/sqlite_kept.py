"""The SQLite queries behind `KeptImages`: result images downloaded before the provider's links expire."""

from __future__ import annotations

import time
from collections.abc import Mapping

import aiosqlite

from fluxbot.storage.sqlite_engine import Engine


class SQLiteKept:
    """Kept result images on the SQLite file (deleted with the job's delivery: `mark_delivered`)."""

    def __init__(self, engine: Engine) -> None:
        self._engine = engine

    async def keep(self, job_id: int, images: Mapping[str, bytes], *, now: float | None = None) -> None:
        """Keep a finished task's images (by their provider URL) until the job is delivered."""
        at = time.time() if now is None else now

        async def keep(db: aiosqlite.Connection) -> None:
            await db.executemany(
                """INSERT INTO kept_images (job_id, url, data, kept_at) VALUES (?, ?, ?, ?)
                   ON CONFLICT (job_id, url) DO UPDATE SET data = excluded.data, kept_at = excluded.kept_at""",
                [(job_id, url, data, at) for url, data in images.items()],
            )

        await self._engine.write(keep)

    async def images(self, job_id: int) -> dict[str, bytes]:
        """The job's kept images by their provider URL ({} when none are kept)."""
        rows = await self._engine.read("SELECT url, data FROM kept_images WHERE job_id = ?", (job_id,))
        return {str(row[0]): bytes(row[1]) for row in rows}
