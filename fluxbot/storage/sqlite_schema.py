"""The schema on SQLite: PRAGMA user_version counts the migrations (`schema.MIGRATIONS`) applied."""

from __future__ import annotations

import logging
from pathlib import Path

import aiosqlite

from fluxbot.storage.schema import MIGRATIONS, SchemaTooNew

log = logging.getLogger(__name__)

__all__ = ["MIGRATIONS", "SchemaTooNew", "migrate"]


async def migrate(db: aiosqlite.Connection, path: Path | str) -> None:
    """Apply the migrations this database has not had yet; SchemaTooNew (touching nothing) for a newer one."""
    async with db.execute("PRAGMA user_version") as cur:
        row = await cur.fetchone()
    version = int(row[0]) if row else 0
    if version > len(MIGRATIONS):
        raise SchemaTooNew(path, version, len(MIGRATIONS))
    for number, script in enumerate(MIGRATIONS[version:], start=version + 1):
        await db.executescript(f"BEGIN; {script}; PRAGMA user_version = {number}; COMMIT;")
        log.info("database migrated to schema version %d", number)
