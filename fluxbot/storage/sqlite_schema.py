"""The SQLite schema as numbered migrations (PRAGMA user_version counts those applied)."""

from __future__ import annotations

import logging
from pathlib import Path

import aiosqlite

from fluxbot.storage.base import StoreError

log = logging.getLogger(__name__)

MIGRATIONS: tuple[str, ...] = (
    """
    CREATE TABLE jobs (
        id INTEGER PRIMARY KEY,
        status TEXT NOT NULL,
        action TEXT NOT NULL,
        provider TEXT NOT NULL,
        model TEXT NOT NULL,
        prompt TEXT NOT NULL,
        size TEXT NOT NULL,
        count INTEGER NOT NULL,
        image_url TEXT,
        user_id INTEGER NOT NULL,
        guild_id INTEGER,
        channel_id INTEGER,
        application_id INTEGER NOT NULL,
        interaction_token TEXT NOT NULL,
        message_id INTEGER,
        task_id TEXT,
        images TEXT NOT NULL DEFAULT '[]',
        inference_seconds REAL,
        error_kind TEXT,
        error_message TEXT,
        created_at REAL NOT NULL,
        submitted_at REAL,
        finished_at REAL,
        delivered_at REAL,
        delivered_via TEXT
    );
    CREATE INDEX jobs_open ON jobs (status) WHERE delivered_at IS NULL;
    CREATE INDEX jobs_task ON jobs (provider, task_id);
    CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
    """,
    """
    ALTER TABLE jobs ADD COLUMN upload_limit INTEGER;
    ALTER TABLE jobs ADD COLUMN expects_callback INTEGER NOT NULL DEFAULT 0;
    """,
    """
    ALTER TABLE jobs ADD COLUMN deleted_at REAL;
    CREATE INDEX jobs_user ON jobs (user_id, id);
    CREATE TABLE edit_sources (
        id INTEGER PRIMARY KEY,
        user_id INTEGER NOT NULL,
        images TEXT NOT NULL,
        created_at REAL NOT NULL
    );
    """,
    """
    CREATE TABLE guild_settings (guild_id INTEGER PRIMARY KEY, settings TEXT NOT NULL);
    CREATE INDEX jobs_guild_created ON jobs (guild_id, created_at);
    """,
    """
    ALTER TABLE jobs ADD COLUMN options TEXT NOT NULL DEFAULT '{}';
    """,
    """
    CREATE INDEX jobs_model_done ON jobs (provider, model, id) WHERE status = 'succeeded';
    """,
    """
    ALTER TABLE jobs ADD COLUMN owner TEXT;
    CREATE TABLE instances (name TEXT PRIMARY KEY, lease_until REAL NOT NULL);
    """,
)


class SchemaTooNew(StoreError):
    """The database was written by a newer fluxbot: its schema version is above every one this code knows."""

    def __init__(self, path: Path | str, version: int, known: int) -> None:
        super().__init__(
            f"{path} has schema version {version}, but this fluxbot knows versions up to {known}; "
            "run the newer fluxbot or restore a backup"
        )


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
