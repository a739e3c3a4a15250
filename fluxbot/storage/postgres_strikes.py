"""The PostgreSQL queries behind `Strikes`: refused prompts per member and server, and the pauses they bring."""

from __future__ import annotations

import time

from fluxbot.storage.postgres_engine import Engine

# One statement: the refusal is recorded, the window counted (the new row is not visible to the count in the
# same statement, hence + 1), and the pause written when the count reaches the server's strikes.
_RECORD = """WITH added AS (INSERT INTO refusals (guild_id, user_id, at) VALUES ($1, $2, $3) RETURNING at),
         counted AS (SELECT COUNT(*) + 1 AS n FROM refusals WHERE guild_id = $1 AND user_id = $2 AND at > $3 - $4)
    INSERT INTO pauses (guild_id, user_id, until)
    SELECT $1, $2, $3 + $6 FROM counted, added WHERE $5 > 0 AND counted.n >= $5
    ON CONFLICT (guild_id, user_id) DO UPDATE SET until = excluded.until
    RETURNING until"""


class PostgresStrikes:
    """Refusals and pauses on PostgreSQL (every process sees the same)."""

    def __init__(self, engine: Engine) -> None:
        self._engine = engine

    async def record_refusal(
        self, guild_id: int, user_id: int, *, strikes: int, window: float, pause: float, now: float | None = None
    ) -> float | None:
        """Count a refused prompt; the `strikes`-th within `window` seconds pauses the member until the answer."""
        at = time.time() if now is None else now
        rows = await self._engine.fetch(_RECORD, guild_id, user_id, at, float(window), strikes, float(pause))
        return float(rows[0][0]) if rows else None

    async def paused_until(self, guild_id: int, user_id: int, *, now: float | None = None) -> float | None:
        """Until when the member is paused on this server, or None."""
        rows = await self._engine.fetch(
            "SELECT until FROM pauses WHERE guild_id = $1 AND user_id = $2 AND until > $3",
            guild_id, user_id, time.time() if now is None else now,
        )  # fmt: skip
        return float(rows[0][0]) if rows else None

    async def pardon(self, guild_id: int, user_id: int) -> bool:
        """Lift the pause and forget the member's refusals on this server."""
        rows = await self._engine.fetch(
            """WITH forgotten AS (DELETE FROM refusals WHERE guild_id = $1 AND user_id = $2)
               DELETE FROM pauses WHERE guild_id = $1 AND user_id = $2 AND until > $3 RETURNING 1""",
            guild_id, user_id, time.time(),
        )  # fmt: skip
        return bool(rows)
