"""Back up the SQLite database, safely while the bot runs: `python -m fluxbot.storage.backup DEST`.

Copying the file with `cp` while the bot runs is not safe: in WAL mode the newest writes live in the `-wal` file
beside it, and a copy taken mid-write may not open. SQLite's online backup copies a consistent snapshot through
SQLite itself; the bot goes on working meanwhile. The copy is one self-contained file (no `-wal`), readable by
its owner only, checked before it replaces DEST. DATABASE_PATH (from the environment, or .env in the current
folder) names the database. With DATABASE_URL set the jobs are in PostgreSQL: use `pg_dump` there.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import sqlite3
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from fluxbot.config import ConfigError, load_database_settings


class BackupFailed(Exception):
    """The backup could not be made or did not check out; DEST is left as it was."""


@dataclass(frozen=True)
class Backup:
    """What a backup holds."""

    jobs: int
    schema_version: int

    def report(self, source: Path, dest: Path) -> str:
        """One line saying what was backed up where."""
        return f"backed up {source} to {dest}: {self.jobs:,} job(s), schema version {self.schema_version}, checked"


def backup(source: Path, dest: Path) -> Backup:
    """Copy the database at `source` into `dest` (replaced only once the copy is complete and checked)."""
    if not source.is_file():
        raise BackupFailed(f"{source}: no such database file")
    if dest.exists() and dest.resolve() == source.resolve():
        raise BackupFailed(f"{dest} is the database itself; name another file")
    dest.parent.mkdir(mode=0o700, parents=True, exist_ok=True)  # a new folder is its owner's only, like the copy
    partial = dest.with_name(f".{dest.name}.partial")
    # Created owner-only before SQLite writes to it: the jobs hold members' prompts and interaction tokens.
    os.close(os.open(partial, os.O_CREAT | os.O_WRONLY | os.O_TRUNC, 0o600))
    try:
        # mode=rw: a missing file is an error, never a new empty database.
        live = contextlib.closing(sqlite3.connect(f"file:{source}?mode=rw", uri=True))
        with live as database, contextlib.closing(sqlite3.connect(partial)) as copy:
            database.backup(copy)
            copy.execute("PRAGMA journal_mode=DELETE")  # one self-contained file, whatever the bot uses
            if (check := copy.execute("PRAGMA integrity_check").fetchone()[0]) != "ok":
                raise BackupFailed(f"the copy did not pass SQLite's integrity check: {check}")
            made = Backup(
                jobs=int(copy.execute("SELECT COUNT(*) FROM jobs").fetchone()[0]),
                schema_version=int(copy.execute("PRAGMA user_version").fetchone()[0]),
            )
        os.replace(partial, dest)
    except sqlite3.Error as exc:
        raise BackupFailed(f"{source}: {exc}") from None
    finally:
        with contextlib.suppress(FileNotFoundError):
            partial.unlink()
    return made


def main(argv: Sequence[str] | None = None) -> int:
    """Run the backup; 0 when done, 1 when it failed, 2 for a setting or path to fix."""
    parser = argparse.ArgumentParser(
        prog="python -m fluxbot.storage.backup",
        description="Back up fluxbot's SQLite database (DATABASE_PATH) while the bot runs.",
    )
    parser.add_argument("dest", type=Path, help="the file to write (replaced if it exists)")
    args = parser.parse_args(argv)
    try:
        path, url = load_database_settings()
    except ConfigError as exc:
        return _fail(f"configuration error: {exc}", 2)
    if url is not None:
        return _fail("DATABASE_URL is set: the jobs are in PostgreSQL. Back them up with pg_dump instead", 2)
    try:
        made = backup(path, args.dest)
    except (BackupFailed, OSError) as exc:
        return _fail(str(exc), 1)
    print(made.report(path, args.dest))
    return 0


def _fail(message: str, code: int) -> int:
    print(f"fluxbot backup: {message}", file=sys.stderr)
    return code


if __name__ == "__main__":
    sys.exit(main())
