"""Backups while the bot runs, and database files only their owner can read."""

from __future__ import annotations

import asyncio
import os
import sqlite3
import stat
import sys
from pathlib import Path

from fluxbot.config import load_settings
from fluxbot.jobs.lifecycle import JobStatus
from fluxbot.storage.backup import main
from fluxbot.storage.sqlite import SQLiteStore
from fluxbot.storage.sqlite_schema import MIGRATIONS
from tests.botprocess import ROOT, clean_environ
from tests.e2e import World, final_reply, held_job, option


def job_ids(path: Path) -> set[int]:
    with sqlite3.connect(path) as db:
        return {int(row[0]) for row in db.execute("SELECT id FROM jobs")}


async def run_backup(cwd: Path, *args: str, **env: str) -> tuple[int, str, str]:
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "fluxbot.storage.backup", *args, cwd=cwd,
        env={**clean_environ(), "PYTHONPATH": str(ROOT), **env},
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
    )  # fmt: skip
    out, err = await process.communicate()
    assert process.returncode is not None
    return process.returncode, out.decode(), err.decode()


async def test_a_backup_taken_while_jobs_run_opens_and_holds_every_job(world: World, tmp_path: Path) -> None:
    live = Path(world.bot.env["DATABASE_PATH"])
    for prompt in ("a lighthouse", "a harbour", "a gull"):
        await final_reply(world, await world.discord.send_slash_command("imagine", [option("prompt", prompt)]), "Done")
    storm, _, task_id = await held_job(world, "a storm at sea")
    before = job_ids(live)
    dest = tmp_path / "backups" / "fluxbot-backup.db"  # the folder is made for it

    # The bot goes on taking commands while the backup runs.
    during = world.discord.send_slash_command("imagine", [option("prompt", "a second storm")])
    code, out, err = await run_backup(tmp_path, str(dest), DATABASE_PATH=str(live))
    await during
    assert (code, err) == (0, ""), err
    copied = job_ids(dest)
    assert out.strip() == f"backed up {live} to {dest}: {len(copied)} job(s), schema version {len(MIGRATIONS)}, checked"
    assert stat.S_IMODE(dest.stat().st_mode) == 0o600
    assert f"{dest.name}-wal" not in os.listdir(dest.parent), "one self-contained file"
    assert before <= copied, "every job that existed when the backup began is in it"

    copy = await SQLiteStore.open(dest)
    try:
        running = [job for job in [await copy.get_job(i) for i in before] if job and job.task_id == task_id]
        assert [job.status for job in running] == [JobStatus.SUBMITTED]
        finished = [await copy.get_job(i) for i in sorted(before)[:3]]
        assert [job.status if job else None for job in finished] == [JobStatus.SUCCEEDED] * 3
    finally:
        await copy.close()

    world.flux.finish(task_id)
    await final_reply(world, storm, "Done")  # the live bot was not disturbed: the held job still finishes there


async def test_the_backup_refuses_what_it_cannot_do(tmp_path: Path) -> None:
    code, _, err = await run_backup(tmp_path, "out.db", DATABASE_URL="postgresql://u:p@127.0.0.1:5432/fluxbot")
    assert (code, err.strip()) == (
        2, "fluxbot backup: DATABASE_URL is set: the jobs are in PostgreSQL. Back them up with pg_dump instead"
    )  # fmt: skip
    assert "u:p" not in err
    code, _, err = await run_backup(tmp_path, "out.db", DATABASE_PATH=str(tmp_path / "none.db"))
    assert (code, err.strip()) == (1, f"fluxbot backup: {tmp_path / 'none.db'}: no such database file")
    assert not (tmp_path / "none.db").exists(), "nothing is created where no database was"
    store = await SQLiteStore.open(tmp_path / "jobs.db")
    await store.close()
    code, _, err = await run_backup(tmp_path, "jobs.db", DATABASE_PATH="jobs.db")
    assert (code, err.strip()) == (1, "fluxbot backup: jobs.db is the database itself; name another file")


def test_the_backup_reads_database_path_from_dot_env(tmp_path: Path) -> None:
    store_path = tmp_path / "kept" / "bot.db"
    store_path.parent.mkdir()
    with sqlite3.connect(store_path) as db:
        db.executescript(MIGRATIONS[0] + f"; PRAGMA user_version = {len(MIGRATIONS)};")
    (tmp_path / ".env").write_text(f"DATABASE_PATH={store_path}\n")
    dest = tmp_path / "copy.db"
    cwd = Path.cwd()
    try:
        os.chdir(tmp_path)
        assert main([str(dest)]) == 0
    finally:
        os.chdir(cwd)
    assert job_ids(dest) == set()


async def test_new_database_files_are_readable_by_their_owner_only(tmp_path: Path) -> None:
    path = tmp_path / "new" / "folder" / "fluxbot.db"
    load_settings({"DISCORD_TOKEN": "t", "ACEDATA_API_TOKEN": "k", "DATABASE_PATH": str(path)}, None)
    assert stat.S_IMODE(path.parent.stat().st_mode) == 0o700
    store = await SQLiteStore.open(path)
    try:
        await store.meta.set("written", "yes")
        modes = {p.name: stat.S_IMODE(p.stat().st_mode) for p in path.parent.iterdir()}
    finally:
        await store.close()
    assert modes["fluxbot.db"] == 0o600
    assert modes["fluxbot.db.lock"] == 0o600
    assert modes.get("fluxbot.db-wal", 0o600) == 0o600
