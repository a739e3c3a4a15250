"""The SQLite queries behind `Strikes`: refused prompts per member and server, and the pauses they bring."""

from __future__ import annotations

import time

import aiosqlite

from fluxbot.storage.sqlite_engine import URGENT, Engine


class SQLiteStrikes:
    """Refusals and pauses on the SQLite file."""

    def __init__(self, engine: Engine) -> None:
        self._engine = engine

    async def record_refusal(
        self, guild_id: int, user_id: int, *, strikes: int, window: float, pause: float, now: float | None = None
    ) -> float | None:
        """Count a refused prompt; the `strikes`-th within `window` seconds pauses the member until the answer."""
        at = time.time() if now is None else now

        async def record(db: aiosqlite.Connection) -> float | None:
            # Refusals older than any window worth keeping go, so the table stays small.
            await db.execute("DELETE FROM refusals WHERE at < ?", (at - 7 * 86_400,))
            await db.execute("INSERT INTO refusals (guild_id, user_id, at) VALUES (?, ?, ?)", (guild_id, user_id, at))
            if strikes <= 0:
                return None
            [(count,)] = await db.execute_fetchall(
                "SELECT COUNT(*) FROM refusals WHERE guild_id = ? AND user_id = ? AND at > ?",
                (guild_id, user_id, at - window),
            )
            if int(count) < strikes:
                return None
            await db.execute(
                """INSERT INTO pauses (guild_id, user_id, until) VALUES (?, ?, ?)
                   ON CONFLICT (guild_id, user_id) DO UPDATE SET until = excluded.until""",
                (guild_id, user_id, at + pause),
            )
            return at + pause

        until: float | None = await self._engine.write(record, priority=URGENT)
        return until

    async def paused_until(self, guild_id: int, user_id: int, *, now: float | None = None) -> float | None:
        """Until when the member is paused on this server, or None."""
        rows = await self._engine.read(
            "SELECT until FROM pauses WHERE guild_id = ? AND user_id = ? AND until > ?",
            (guild_id, user_id, time.time() if now is None else now),
        )
        return float(rows[0][0]) if rows else None

    async def pardon(self, guild_id: int, user_id: int) -> bool:
        """Lift the pause and forget the member's refusals on this server."""

        async def lift(db: aiosqlite.Connection) -> bool:
            await db.execute("DELETE FROM refusals WHERE guild_id = ? AND user_id = ?", (guild_id, user_id))
            rows = await db.execute_fetchall(
                "DELETE FROM pauses WHERE guild_id = ? AND user_id = ? AND until > ? RETURNING 1",
                (guild_id, user_id, time.time()),
            )
            return bool(list(rows))

        lifted: bool = await self._engine.write(lift, priority=URGENT)
        return lifted
