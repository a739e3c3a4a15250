"""The PostgreSQL queries behind `Meta`: the bot's own values (the callback secret, the synced commands' hash, ...)."""

from __future__ import annotations

from fluxbot.storage.postgres_engine import Engine

_SET = "INSERT INTO meta (key, value) VALUES ($1, $2) ON CONFLICT (key) DO UPDATE SET value = excluded.value"


class PostgresMeta:
    """The key/value table on PostgreSQL (every process sees the same)."""

    def __init__(self, engine: Engine) -> None:
        self._engine = engine

    async def get(self, key: str) -> str | None:
        """The value stored under `key`, or None."""
        rows = await self._engine.fetch("SELECT value FROM meta WHERE key = $1", key)
        return str(rows[0][0]) if rows else None

    async def set(self, key: str, value: str) -> None:
        """Store `value` under `key` (replacing what was there)."""
        await self._engine.fetch(_SET, key, value)
