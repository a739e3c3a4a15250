"""PostgreSQL only: migrations, column types, round trips, errors, and the password kept out of sight."""

from __future__ import annotations

import asyncio
import logging
from dataclasses import replace
from pathlib import Path

import asyncpg
import pytest

from fluxbot.jobs.lifecycle import JobStatus, Reply
from fluxbot.jobs.service import NO_LIMITS
from fluxbot.limits import GuildSettings
from fluxbot.storage import PostgresStore, StoreError, StoreUnavailable
from fluxbot.storage.schema import MIGRATIONS, SchemaTooNew
from tests.pgserver import PASSWORD, PgServer, ServerMissing, find_binaries, free_port
from tests.test_store import REPLY, REQUEST

#: A Discord snowflake needs 64 bits.
SNOWFLAKE = 1190413227513741362


def member(user_id: int, message_id: int | None = 1001) -> Reply:
    return replace(REPLY, user_id=user_id, message_id=message_id)


async def test_several_processes_opening_a_new_database_at_once_migrate_it_once(
    pg_server: PgServer, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="fluxbot.storage.postgres_schema")
    name = await pg_server.create_database(migrated=False)
    url = pg_server.url(name)
    opened = await asyncio.gather(*(PostgresStore.open(url, instance=f"p{i}", pool_size=2) for i in range(5)))
    try:
        migrated = [r.getMessage() for r in caplog.records if "migrated to schema version" in r.getMessage()]
        assert migrated == [f"database migrated to schema version {n}" for n in range(1, len(MIGRATIONS) + 1)]
        jobs = [await s.admit("acedata", REQUEST, member(i), limits=NO_LIMITS) for i, s in enumerate(opened)]
        assert [job.id for job in jobs if job is not None] == [1, 2, 3, 4, 5]
    finally:
        for store in opened:
            await store.close()
    db = await asyncpg.connect(url)
    try:
        assert await db.fetchval("SELECT version FROM schema_version") == len(MIGRATIONS)
        assert await db.fetchval("SELECT COUNT(*) FROM schema_version") == 1
        columns = "SELECT column_name, data_type FROM information_schema.columns WHERE table_name = 'jobs'"
        types = {str(r[0]): str(r[1]) for r in await db.fetch(columns)}
        assert (types["id"], types["user_id"], types["created_at"]) == ("bigint", "bigint", "double precision")
    finally:
        await db.close()
        await pg_server.drop_database(name)


async def test_a_database_from_a_newer_schema_is_refused_and_left_as_it_was(database_url: str) -> None:
    newer = len(MIGRATIONS) + 4
    db = await asyncpg.connect(database_url)
    try:
        await db.execute("UPDATE schema_version SET version = $1", newer)
        with pytest.raises(SchemaTooNew) as refused:
            await PostgresStore.open(database_url)
        where = database_url.replace(f":{PASSWORD}", "")
        assert str(refused.value) == (
            f"{where} has schema version {newer}, but this fluxbot knows versions up to {len(MIGRATIONS)}; "
            "run the newer fluxbot or restore a backup"
        )
        assert await db.fetchval("SELECT version FROM schema_version") == newer
    finally:
        await db.close()


async def test_data_keeps_its_types_and_survives_reopening(database_url: str) -> None:
    first = await PostgresStore.open(database_url, instance="first")
    try:
        reply = Reply(user_id=SNOWFLAKE, guild_id=SNOWFLAKE + 1, channel_id=SNOWFLAKE + 2,
                      application_id=SNOWFLAKE + 3, interaction_token="tok", message_id=SNOWFLAKE + 4,
                      upload_limit=10 << 20)  # fmt: skip
        job = await first.admit("acedata", replace(REQUEST, options={"output_format": "png"}), reply,
                                limits=NO_LIMITS, expects_callback=True, now=1_700_000_000.25)  # fmt: skip
        assert job is not None
        await first.save_guild_settings(SNOWFLAKE, GuildSettings(required_role=SNOWFLAKE))
        await first.meta.set("callback_secret", "s3cret")
        source = await first.edit_sources.add(SNOWFLAKE, [], now=1_700_000_000.0)
    finally:
        await first.close()
    second = await PostgresStore.open(database_url, instance="second")
    try:
        again = await second.get_job(job.id)
        assert again is not None
        assert again.reply == reply
        assert (again.created_at, again.expects_callback, again.options) == (
            1_700_000_000.25,
            True,
            {"output_format": "png"},
        )
        assert (await second.guild_settings(SNOWFLAKE)).required_role == SNOWFLAKE
        assert await second.meta.get("callback_secret") == "s3cret"
        assert await second.edit_sources.get(source) == (SNOWFLAKE, [])
    finally:
        await second.close()


async def test_round_trips_count_what_is_sent(database_url: str) -> None:
    store = await PostgresStore.open(database_url)
    try:
        before = store.round_trips
        job = await store.admit("acedata", REQUEST, REPLY, limits=NO_LIMITS)
        assert store.round_trips - before == 3, "BEGIN with the member's lock, the INSERT, COMMIT"
        assert job is not None
        await store.get_job(job.id)
        assert store.round_trips - before == 4
    finally:
        await store.close()


async def test_too_many_connections_is_unavailable(database_url: str, pg_server: PgServer) -> None:
    admin = await pg_server.admin()
    try:
        await admin.execute(f"ALTER DATABASE {database_url.rsplit('/', 1)[1]} CONNECTION LIMIT 1")
    finally:
        await admin.close()
    with pytest.raises(StoreUnavailable, match="too many connections") as refused:
        await PostgresStore.open(database_url)  # its pool's first connection, then its listener's
    assert PASSWORD not in str(refused.value)


async def test_the_password_never_shows(
    database_url: str, pg_server: PgServer, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    store = await PostgresStore.open(database_url)
    try:
        assert PASSWORD not in repr(store)
        assert PASSWORD not in str(store)
        assert "fluxbot@127.0.0.1" in repr(store)
        with pytest.raises(StoreError) as failed:
            await store.get_job("not a number")  # type: ignore[arg-type]
        assert PASSWORD not in str(failed.value)
    finally:
        await store.close()
    wrong = database_url.replace(PASSWORD, "not-the-password")
    with pytest.raises(StoreError) as refused:
        await PostgresStore.open(wrong)
    assert "password authentication failed" in str(refused.value)
    assert "not-the-password" not in str(refused.value)
    assert "not-the-password" not in repr(refused.value)
    assert refused.value.__suppress_context__, "asyncpg's own exception is not shown with it"
    down = pg_server.url("fluxbot", port=free_port())
    with pytest.raises(StoreUnavailable) as unreachable:
        await PostgresStore.open(down)
    assert PASSWORD not in str(unreachable.value)
    assert PASSWORD not in repr(unreachable.value)
    assert unreachable.value.__suppress_context__
    assert PASSWORD not in caplog.text
    assert "not-the-password" not in caplog.text


async def test_a_column_a_newer_process_added_does_not_stop_this_one(database_url: str) -> None:
    store = await PostgresStore.open(database_url, pool_size=1)  # one connection: its statements are cached
    try:
        first = await store.admit("acedata", REQUEST, REPLY, limits=NO_LIMITS)
        assert first is not None
        assert await store.claim(10) is not None
        assert await store.get_job(first.id) is not None
        db = await asyncpg.connect(database_url)
        try:
            await db.execute("ALTER TABLE jobs ADD COLUMN priority BIGINT NOT NULL DEFAULT 0")  # a rolling upgrade
        finally:
            await db.close()
        again = await store.get_job(first.id)
        assert again is not None
        assert again.status is JobStatus.PENDING
        second = await store.admit("acedata", REQUEST, REPLY, limits=NO_LIMITS)
        assert second is not None
        claimed = await store.claim(10)
        assert claimed is not None
        assert claimed.id == second.id
    finally:
        await store.close()


def test_the_newest_server_binaries_are_found_and_missing_ones_say_how_to_install_them(tmp_path: Path) -> None:
    for version in ("9.6", "13", "15"):
        (tmp_path / version / "bin").mkdir(parents=True)
        (tmp_path / version / "bin" / "initdb").touch()
    (tmp_path / "16" / "bin").mkdir(parents=True)  # a client-only install: no initdb
    assert find_binaries(tmp_path) == tmp_path / "15" / "bin"
    with pytest.raises(ServerMissing, match=r"install them with `apt-get install -y postgresql`"):
        find_binaries(tmp_path / "nothing")
