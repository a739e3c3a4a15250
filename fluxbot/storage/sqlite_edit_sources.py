"""The SQLite queries behind `EditSources`: the images a member may edit, kept until the edit prompt comes back."""

from __future__ import annotations

import json
import time
from collections.abc import Sequence

import aiosqlite

from fluxbot.jobs.lifecycle import EditImage
from fluxbot.storage.sqlite_engine import URGENT, Engine

_DAY = 86_400  # seconds


class SQLiteEditSources:
    """Edit sources on the SQLite file."""

    def __init__(self, engine: Engine) -> None:
        self._engine = engine

    async def add(self, user_id: int, images: Sequence[EditImage], *, now: float | None = None) -> int:
        """Keep the images a member may edit (from a result or a message) until the edit prompt comes back."""
        payload = json.dumps([{"url": i.url, "ratio": i.ratio} for i in images])

        async def insert(db: aiosqlite.Connection) -> int:
            at = time.time() if now is None else now
            # A prompt left open for a day is not coming back.
            await db.execute("DELETE FROM edit_sources WHERE created_at < ?", (at - _DAY,))
            rows = await db.execute_fetchall(
                "INSERT INTO edit_sources (user_id, images, created_at) VALUES (?, ?, ?) RETURNING id",
                (user_id, payload, at),
            )
            return int(next(iter(rows))[0])

        source_id: int = await self._engine.write(insert, priority=URGENT)  # the edit prompt opens after it
        return source_id

    async def get(self, source_id: int) -> tuple[int, list[EditImage]] | None:
        """(member id, images) of an edit source, or None."""
        rows = await self._engine.read("SELECT user_id, images FROM edit_sources WHERE id = ?", (source_id,))
        if not rows:
            return None
        return int(rows[0][0]), [EditImage(i["url"], i["ratio"]) for i in json.loads(rows[0][1])]
