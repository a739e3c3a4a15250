"""The PostgreSQL queries behind `EditSources`: the images a member may edit, kept until the edit prompt comes back."""

from __future__ import annotations

import json
import time
from collections.abc import Sequence

from fluxbot.jobs.lifecycle import EditImage
from fluxbot.storage.postgres_engine import Engine

# A prompt left open for a day is not coming back.
_ADD = """WITH stale AS (DELETE FROM edit_sources WHERE created_at < $3 - 86400)
    INSERT INTO edit_sources (user_id, images, created_at) VALUES ($1, $2, $3) RETURNING id"""


class PostgresEditSources:
    """Edit sources on PostgreSQL (every process sees the same)."""

    def __init__(self, engine: Engine) -> None:
        self._engine = engine

    async def add(self, user_id: int, images: Sequence[EditImage], *, now: float | None = None) -> int:
        """Keep the images a member may edit (from a result or a message) until the edit prompt comes back."""
        payload = json.dumps([{"url": i.url, "ratio": i.ratio} for i in images])
        [row] = await self._engine.fetch(_ADD, user_id, payload, time.time() if now is None else float(now))
        return int(row[0])

    async def get(self, source_id: int) -> tuple[int, list[EditImage]] | None:
        """(member id, images) of an edit source, or None."""
        rows = await self._engine.fetch("SELECT user_id, images FROM edit_sources WHERE id = $1", source_id)
        if not rows:
            return None
        return int(rows[0][0]), [EditImage(i["url"], i["ratio"]) for i in json.loads(rows[0][1])]
