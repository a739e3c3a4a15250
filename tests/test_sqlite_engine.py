"""The SQLite engine: a member's admission goes first, queued writes commit together, reads pass writes by."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import aiosqlite
import pytest

from fluxbot.storage.sqlite_engine import BACKGROUND, URGENT, Engine
from fluxbot.storage.sqlite_schema import migrate


@pytest.fixture
async def engine(tmp_path: Path) -> Any:
    opened = await Engine.open(tmp_path / "jobs.db", migrate)
    yield opened
    await opened.close()


async def test_queued_writes_commit_together_admissions_first_and_reads_do_not_wait(
    engine: Engine, monkeypatch: pytest.MonkeyPatch
) -> None:
    order: list[str] = []
    held = asyncio.Event()
    release = asyncio.Event()
    commits: list[int] = []
    real_commit = engine._commit

    async def counted(batch: list[Any]) -> None:
        commits.append(len(batch))
        await real_commit(batch)

    monkeypatch.setattr(engine, "_commit", counted)

    async def slow(db: aiosqlite.Connection) -> None:
        held.set()
        await release.wait()  # a long write holds the writer
        await db.execute("INSERT INTO meta (key, value) VALUES ('slow', '1')")

    def named(name: str) -> Any:
        async def write(db: aiosqlite.Connection) -> None:
            order.append(name)
            await db.execute("INSERT INTO meta (key, value) VALUES (?, '1')", (name,))

        return write

    first = asyncio.create_task(engine.write(slow))
    await held.wait()
    later = [asyncio.create_task(engine.write(named(f"card {n}"), priority=BACKGROUND)) for n in range(5)]
    admission = asyncio.create_task(engine.write(named("admission"), priority=URGENT))
    await asyncio.sleep(0.05)
    rows = await asyncio.wait_for(engine.read("SELECT COUNT(*) FROM meta"), 1.0)
    assert rows[0][0] == 0, "a read goes by a write under way and sees only what was committed"
    release.set()
    await asyncio.gather(first, admission, *later)
    assert order[0] == "admission", f"the member's admission goes ahead of the background: {order}"
    assert commits == [1, 6], "the six writes queued meanwhile commit in one transaction"
    rows = await engine.read("SELECT COUNT(*) FROM meta")
    assert rows[0][0] == 7


async def test_a_write_that_fails_fails_alone_and_the_writer_lives_on(engine: Engine) -> None:
    await engine.statement("INSERT INTO meta (key, value) VALUES ('taken', '1')")

    async def broken(db: aiosqlite.Connection) -> None:
        await db.execute("INSERT INTO meta (key, value) VALUES ('taken', '2')")  # a unique key already there

    async def fine(db: aiosqlite.Connection) -> str:
        await db.execute("INSERT INTO meta (key, value) VALUES ('ok', '1')")
        return "ok"

    results = await asyncio.gather(engine.write(broken), engine.write(fine), return_exceptions=True)
    assert results[1] == "ok"
    assert isinstance(results[0], Exception), "its own error, to its own caller"
    assert await engine.statement("INSERT INTO meta (key, value) VALUES ('after', '1') RETURNING key") != []
