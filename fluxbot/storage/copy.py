"""Copy a SQLite database into an empty PostgreSQL one: `python -m fluxbot.storage.copy SQLITE_PATH`.

DATABASE_URL (from the environment, or .env in the current folder) names the PostgreSQL database; it is never
taken from the command line, where every user of the machine could read the password. Stop the bot first:
the SQLite file stays locked for the whole copy. Jobs keep their ids (so buttons on old replies still work), their
provider tasks and the images kept for their delivery; guild settings, edit sources, the key/value table (the
callback secret, the commands' hash), the moderation state (refusals, pauses, results shown again), members'
defaults, budget notices and usage totals come along.
Leases do not, so unfinished jobs are adopted by the first PostgreSQL process that starts. Everything goes in
one transaction: a copy that fails leaves the PostgreSQL database as it was.
"""

from __future__ import annotations

import argparse
import asyncio
import sqlite3
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from fluxbot.config import ConfigError, load_database_url
from fluxbot.storage.base import StoreError
from fluxbot.storage.postgres_engine import Engine
from fluxbot.storage.postgres_schema import migrate as migrate_postgres
from fluxbot.storage.sqlite_engine import connect, hold_process_lock, release_process_lock
from fluxbot.storage.sqlite_schema import migrate as migrate_sqlite

#: What is copied, in this order. `instances` is not: a lease belongs to a run of the old database.
TABLES = (
    "jobs",
    "job_tasks",
    "kept_images",
    "guild_settings",
    "edit_sources",
    "meta",
    "refusals",
    "pauses",
    "shown_again",
    "member_defaults",
    "budget_notices",
    "usage_totals",
)
#: Tables whose key PostgreSQL numbers itself: after the copy its next number follows the copied ones.
_NUMBERED = (("jobs", "id"), ("edit_sources", "id"), ("guild_settings", "guild_id"))
CALLBACK_SECRET_KEY = "callback_secret"  # noqa: S105 - the meta key web.py keeps the secret under
_CONVERT = {"bigint": int, "double precision": float, "text": str, "bytea": bytes}

Table = tuple[list[str], list[tuple[Any, ...]]]


@dataclass(frozen=True)
class Copied:
    """What a copy did: where the rows went (without the password), how many per table, the meta keys."""

    where: str
    counts: dict[str, int]
    meta_keys: frozenset[str]

    def report(self, source: Path) -> str:
        """What was copied, one line per table."""
        secret = " (the callback secret among them)" if CALLBACK_SECRET_KEY in self.meta_keys else ""
        lines = [f"copied {source} into {self.where}:"]
        lines += [f"  {table:<15}{count:>8}{secret if table == 'meta' else ''}" for table, count in self.counts.items()]
        return "\n".join(lines)


class NotEmpty(StoreError):
    """The PostgreSQL database already holds data: the copy goes into an empty one only."""

    def __init__(self, where: str, held: dict[str, int]) -> None:
        found = ", ".join(f"{count} in {table}" for table, count in held.items() if count)
        super().__init__(
            f"{where} is not empty ({found}); the copy goes into an empty database only, so nothing was copied"
        )


async def read_sqlite(path: Path) -> dict[str, Table]:
    """Every copied table of the SQLite file (migrated to this version first): its columns and rows."""
    db = await connect(path)
    try:
        await migrate_sqlite(db, path)
        tables: dict[str, Table] = {}
        for table in TABLES:
            async with db.execute(f"SELECT * FROM {table} ORDER BY 1") as cursor:  # noqa: S608 - our table names
                columns = [d[0] for d in cursor.description]
                tables[table] = columns, [tuple(row) for row in await cursor.fetchall()]
        return tables
    finally:
        await db.close()


async def write_postgres(url: str, tables: dict[str, Table]) -> Copied:
    """Put the tables into the empty PostgreSQL database at `url` (migrated first), in one transaction;
    NotEmpty when the database already holds data."""
    engine = await Engine.open(url, pool_size=1)
    try:
        await migrate_postgres(engine)
        async with engine.connection() as db, db.transaction():
            # No process may write while the copy runs; the check for emptiness then holds until it commits.
            await db.execute(f"LOCK TABLE {', '.join(TABLES)} IN EXCLUSIVE MODE")
            held = {t: int(await db.fetchval(f"SELECT COUNT(*) FROM {t}")) for t in TABLES}  # noqa: S608
            if any(held.values()):
                raise NotEmpty(engine.where, held)
            for table in TABLES:
                columns, rows = tables[table]
                described = await db.fetch(
                    "SELECT column_name, data_type FROM information_schema.columns WHERE table_name = $1", table
                )
                types = {str(r[0]): str(r[1]) for r in described}
                records = [_converted(row, [_CONVERT[types[c]] for c in columns]) for row in rows]
                await db.copy_records_to_table(table, records=records, columns=columns)
            for table, key in _NUMBERED:
                await db.execute(
                    f"""SELECT setval(pg_get_serial_sequence('{table}', '{key}'), COALESCE(MAX({key}), 0) + 1, false)
                        FROM {table}"""  # noqa: S608 - our table names
                )
        meta_keys = frozenset(str(row[0]) for row in tables["meta"][1])
        return Copied(engine.where, {table: len(tables[table][1]) for table in TABLES}, meta_keys)
    finally:
        await engine.close()


async def copy_database(path: Path, url: str) -> Copied:
    """Copy the SQLite file at `path` into the empty PostgreSQL database at `url`, holding the file's lock."""
    held = hold_process_lock(path)  # DatabaseInUse while a bot has it open
    try:
        return await write_postgres(url, await read_sqlite(path))
    finally:
        release_process_lock(held)


def _converted(row: Sequence[Any], kinds: Sequence[type]) -> tuple[Any, ...]:
    # SQLite keeps whatever type a value came with (1 for 1.0); PostgreSQL's binary COPY wants the column's.
    return tuple(None if value is None else kind(value) for value, kind in zip(row, kinds, strict=True))


def main(argv: Sequence[str] | None = None) -> int:
    """Run the copy; 0 when done, 1 when the copy was refused or failed, 2 for a setting or path to fix."""
    parser = argparse.ArgumentParser(
        prog="python -m fluxbot.storage.copy",
        description="Copy fluxbot's SQLite database into the empty PostgreSQL database at DATABASE_URL.",
    )
    parser.add_argument("sqlite_path", type=Path, help="the SQLite file (the bot's DATABASE_PATH)")
    args = parser.parse_args(argv)
    source: Path = args.sqlite_path
    try:
        url = load_database_url()
    except ConfigError as exc:
        return _fail(f"configuration error: {exc}", 2)
    if url is None:
        return _fail(
            "DATABASE_URL: missing. Set it to the PostgreSQL database to copy into "
            "(postgresql://user:password@host:5432/fluxbot), in .env or the environment",
            2,
        )
    if not source.is_file():
        return _fail(f"{source}: no such SQLite file", 2)
    try:
        copied = asyncio.run(copy_database(source, url.reveal()))
    except (StoreError, sqlite3.Error, OSError) as exc:
        return _fail(str(exc), 1)
    print(copied.report(source))
    return 0


def _fail(message: str, code: int) -> int:
    print(f"fluxbot copy: {message}", file=sys.stderr)
    return code


if __name__ == "__main__":
    sys.exit(main())
