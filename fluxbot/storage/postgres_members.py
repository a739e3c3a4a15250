"""The PostgreSQL queries behind `Members`: each member's defaults, as JSON, one row per member."""

from __future__ import annotations

from fluxbot.defaults import MemberDefaults
from fluxbot.storage.postgres_engine import Engine

_SAVE = """INSERT INTO member_defaults (user_id, settings) VALUES ($1, $2)
    ON CONFLICT (user_id) DO UPDATE SET settings = excluded.settings"""


class PostgresMembers:
    """Members' defaults on PostgreSQL (every process sees the same)."""

    def __init__(self, engine: Engine) -> None:
        self._engine = engine

    async def defaults(self, user_id: int) -> MemberDefaults:
        """The member's defaults (none chosen when they never used `/settings`)."""
        rows = await self._engine.fetch("SELECT settings FROM member_defaults WHERE user_id = $1", user_id)
        return MemberDefaults.from_json(rows[0][0]) if rows else MemberDefaults()

    async def save_defaults(self, user_id: int, defaults: MemberDefaults) -> None:
        """Replace the member's defaults; empty ones leave no row."""
        if defaults.empty:
            await self._engine.fetch("DELETE FROM member_defaults WHERE user_id = $1", user_id)
        else:
            await self._engine.fetch(_SAVE, user_id, defaults.to_json())
