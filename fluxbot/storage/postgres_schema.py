"""The schema on PostgreSQL: `schema.MIGRATIONS` rendered for it, the version kept in `schema_version`.

Several processes may start at once on a new database: each migrates under one session advisory lock, so the
first applies what is missing and the others, once they have the lock, find nothing left to do.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

from fluxbot.storage.postgres_engine import MIGRATE, Engine
from fluxbot.storage.schema import MIGRATIONS, SchemaTooNew, for_postgres

if TYPE_CHECKING:
    from fluxbot.storage.postgres_engine import Connection

log = logging.getLogger(__name__)

#: Seconds a migration (or the wait for another process's) may take: an index on a long history takes a while.
MIGRATION_SECONDS = 3600.0

_VERSION_TABLE = "CREATE TABLE schema_version (version BIGINT NOT NULL); INSERT INTO schema_version VALUES (0)"


async def migrate(engine: Engine) -> None:
    """Apply the migrations this database has not had yet; SchemaTooNew (touching nothing) for a newer one."""
    async with engine.session_lock(*MIGRATE, wait=MIGRATION_SECONDS) as db:
        version = await _version(engine, db)
        if version > len(MIGRATIONS):
            raise SchemaTooNew(engine.where, version, len(MIGRATIONS))
        for number, script in enumerate(MIGRATIONS[version:], start=version + 1):
            async with db.transaction():
                if number == 1:
                    await db.execute(_VERSION_TABLE)
                await db.execute(for_postgres(script), timeout=MIGRATION_SECONDS)
                await db.execute("UPDATE schema_version SET version = $1", number)
            engine.round_trips += 4
            log.info("database migrated to schema version %d", number)


async def _version(engine: Engine, db: Connection) -> int:
    engine.round_trips += 1
    if await db.fetchval("SELECT to_regclass('schema_version')") is None:
        return 0
    engine.round_trips += 1
    return int(await db.fetchval("SELECT version FROM schema_version"))
