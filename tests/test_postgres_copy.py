"""`python -m fluxbot.storage.copy`: a real SQLite file into a real, empty PostgreSQL database."""

from __future__ import annotations

import subprocess
import sys
from dataclasses import replace
from pathlib import Path

import asyncpg

from fluxbot.defaults import MemberDefaults
from fluxbot.jobs.lifecycle import EditImage, Job, JobStatus, JobTask, Outcome
from fluxbot.jobs.service import NO_LIMITS
from fluxbot.limits import GuildSettings
from fluxbot.providers.base import Image
from fluxbot.storage import PostgresStore, SQLiteStore
from tests.botprocess import ROOT, clean_environ
from tests.pgserver import PASSWORD, PgServer
from tests.test_store import REPLY, REQUEST

SNOWFLAKE = 1190413227513741362
MEMBER_DEFAULTS = MemberDefaults(model="flux-pro", size="768x1024", count=3, style="film noir")


def copy(tmp_path: Path, *args: str, **env: str) -> subprocess.CompletedProcess[str]:
    """Run the copy command in `tmp_path` (no .env there) with `env` as its settings."""
    environ = {**clean_environ(), "PYTHONPATH": str(ROOT), **env}
    command = [sys.executable, "-m", "fluxbot.storage.copy", *args]
    return subprocess.run(command, cwd=tmp_path, env=environ, capture_output=True, text=True, timeout=60)


async def a_history(path: Path) -> list[Job]:
    """A SQLite database with jobs in every state (each with a style), settings, an edit source, the callback secret,
    a lease and a member's defaults."""
    store = await SQLiteStore.open(path, instance="sqlite-run")
    try:
        made = [
            await store.admit("acedata", replace(REQUEST, prompt=f"job {i}", options={"n": i}, style=f"style {i}"),
                              REPLY, limits=NO_LIMITS, expects_callback=i % 2 == 0, now=1_700_000_000.5 + i)
            for i in range(5)
        ]  # fmt: skip
        assert all(job is not None for job in made)
        for _ in range(3):
            assert await store.claim(10) is not None
        assert await store.mark_submitted(1, [JobTask(1, "task-1")], now=1_700_000_010.0)
        assert await store.mark_submitted(2, [JobTask(1, "task-2")], now=1_700_000_011.0)
        images = (Image("https://img/1.png", 7), Image("https://img/2.png", None))
        assert await store.finish(2, Outcome(JobStatus.SUCCEEDED, images, 3.5), now=1_700_000_020.0)
        assert await store.mark_delivered(2, "interaction", now=1_700_000_021.0)
        await store.save_guild_settings(SNOWFLAKE, GuildSettings(required_role=SNOWFLAKE, cooldown_seconds=30))
        await store.edit_sources.add(SNOWFLAKE, [EditImage("https://img/1.png", "1:1")], now=1_700_000_030.0)
        await store.meta.set("callback_secret", "the-callback-secret")
        await store.meta.set("commands_hash", "abc")
        await store.leases.renew(seconds=30)
        await store.strikes.record_refusal(SNOWFLAKE, 42, strikes=1, window=60.0, pause=1e9, now=1_700_000_040.0)
        await store.record_show_again(42, now=1_700_000_050.0)
        assert await store.budgets.claim_notice(SNOWFLAKE, "2023-11", 80, now=1_700_000_060.0)
        await store.members.save_defaults(42, MEMBER_DEFAULTS)
        return [job for job in [await store.get_job(i) for i in range(1, 6)] if job is not None]
    finally:
        await store.close()


async def test_a_sqlite_history_is_copied_whole_into_an_empty_postgresql_once(
    tmp_path: Path, pg_server: PgServer
) -> None:
    path = tmp_path / "fluxbot.db"
    before = await a_history(path)
    url = pg_server.url(await pg_server.create_database(migrated=False))  # the copy migrates it first

    done = copy(tmp_path, str(path), DATABASE_URL=url)
    assert done.returncode == 0, done.stderr
    where = url.replace(f":{PASSWORD}", "")
    assert done.stdout.splitlines() == [
        f"copied {path} into {where}:",
        "  jobs                  5",
        "  job_tasks             2",
        "  kept_images           0",
        "  guild_settings        1",
        "  edit_sources          1",
        "  meta                  2 (the callback secret among them)",
        "  refusals              1",
        "  pauses                1",
        "  shown_again           1",
        "  member_defaults       1",
        "  budget_notices        1",
        "  usage_totals          0",
    ]
    assert PASSWORD not in done.stdout + done.stderr

    store = await PostgresStore.open(url, instance="postgres-run")
    try:
        after = [await store.get_job(job.id) for job in before]
        assert after == before, "every job as it was: ids, states, times, images, options, styles, replies, owners"
        assert [job.style for job in before] == [f"style {i}" for i in range(5)]
        assert await store.members.defaults(42) == MEMBER_DEFAULTS, "a member's defaults come along"
        assert (await store.guild_settings(SNOWFLAKE)).required_role == SNOWFLAKE
        assert await store.edit_sources.get(1) == (SNOWFLAKE, [EditImage("https://img/1.png", "1:1")])
        assert await store.meta.get("callback_secret") == "the-callback-secret"
        assert await store.meta.get("commands_hash") == "abc"
        assert await store.strikes.paused_until(SNOWFLAKE, 42) == 1_700_000_040.0 + 1e9, "a pause comes along"
        assert not await store.budgets.claim_notice(SNOWFLAKE, "2023-11", 80, now=1_700_000_070.0), (
            "a notice posted before the copy is not posted again"
        )
        assert await store.reports.queue_positions() == {4: 1, 5: 2}
        adopted = await store.leases.adopt_orphans()
        assert [job.id for job in adopted] == [1, 3, 4, 5], "no lease came along: the first run adopts the rest"
        new = await store.admit("acedata", REQUEST, REPLY, limits=NO_LIMITS)
        assert new is not None
        assert new.id == 6, "new jobs are numbered after the copied ones"
        assert await store.edit_sources.add(1, [], now=1_700_000_040.0) == 2
    finally:
        await store.close()

    again = copy(tmp_path, str(path), DATABASE_URL=url)
    assert again.returncode == 1
    assert again.stdout == ""
    assert again.stderr.strip() == (
        f"fluxbot copy: {where} is not empty (6 in jobs, 2 in job_tasks, 1 in guild_settings, 2 in edit_sources, "
        "2 in meta, 1 in refusals, 1 in pauses, 1 in shown_again, 1 in member_defaults, 1 in budget_notices); "
        "the copy goes into an empty database only, so nothing was copied"
    )
    db = await asyncpg.connect(url)
    try:
        assert await db.fetchval("SELECT COUNT(*) FROM jobs") == 6
        assert await db.fetchval("SELECT COUNT(*) FROM instances") == 0, "leases are not copied"
    finally:
        await db.close()


async def test_the_copy_refuses_a_file_in_use_and_needs_database_url(tmp_path: Path, database_url: str) -> None:
    path = tmp_path / "fluxbot.db"
    running = await SQLiteStore.open(path)
    try:
        busy = copy(tmp_path, str(path), DATABASE_URL=database_url)
    finally:
        await running.close()
    assert busy.returncode == 1
    assert "is in use by another fluxbot process; stop it first" in busy.stderr
    missing = copy(tmp_path, str(path))
    assert missing.returncode == 2
    assert missing.stderr.startswith("fluxbot copy: DATABASE_URL: missing.")
    malformed = copy(tmp_path, str(path), DATABASE_URL="postgresql://u:hun/ter2@h/db")
    assert malformed.returncode == 2
    assert "DATABASE_URL: expects a PostgreSQL URL" in malformed.stderr
    assert "ter2" not in malformed.stderr
    nowhere = copy(tmp_path, str(tmp_path / "missing.db"), DATABASE_URL=database_url)
    assert nowhere.returncode == 2
    assert "missing.db: no such SQLite file" in nowhere.stderr
    assert not (tmp_path / "missing.db").exists()
    assert PASSWORD not in busy.stderr + missing.stderr + nowhere.stderr
