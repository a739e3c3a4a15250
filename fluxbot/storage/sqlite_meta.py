"""The SQLite queries behind `Meta`: the bot's own values (the callback secret, the synced commands' hash, ...)."""

from __future__ import annotations

from fluxbot.storage.sqlite_engine import Engine


class SQLiteMeta:
    """The key/value table on the SQLite file."""

    def __init__(self, engine: Engine) -> None:
        self._engine = engine

    async def get(self, key: str) -> str | None:
        """The value stored under `key`, or None."""
        rows = await self._engine.read("SELECT value FROM meta WHERE key = ?", (key,))
        return str(rows[0][0]) if rows else None

    async def set(self, key: str, value: str) -> None:
        """Store `value` under `key` (replacing what was there)."""
        await self._engine.statement(
            "INSERT INTO meta (key, value) VALUES (?, ?) ON CONFLICT (key) DO UPDATE SET value = excluded.value",
            (key, value),
        )
