"""The SQLite queries behind `Members`: each member's defaults, as JSON, one row per member."""

from __future__ import annotations

from fluxbot.defaults import MemberDefaults
from fluxbot.storage.sqlite_engine import URGENT, Engine


class SQLiteMembers:
    """Members' defaults on the SQLite file."""

    def __init__(self, engine: Engine) -> None:
        self._engine = engine

    async def defaults(self, user_id: int) -> MemberDefaults:
        """The member's defaults (none chosen when they never used `/settings`)."""
        rows = await self._engine.read("SELECT settings FROM member_defaults WHERE user_id = ?", (user_id,))
        return MemberDefaults.from_json(rows[0][0]) if rows else MemberDefaults()

    async def save_defaults(self, user_id: int, defaults: MemberDefaults) -> None:
        """Replace the member's defaults; empty ones leave no row."""
        if defaults.empty:
            await self._engine.statement("DELETE FROM member_defaults WHERE user_id = ?", (user_id,), priority=URGENT)
            return
        await self._engine.statement(
            """INSERT INTO member_defaults (user_id, settings) VALUES (?, ?)
               ON CONFLICT (user_id) DO UPDATE SET settings = excluded.settings""",
            (user_id, defaults.to_json()),
            priority=URGENT,  # the member waits for the answer
        )
