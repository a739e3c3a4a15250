"""DATABASE_URL: the setting, the engine it picks, and the real bot on a real PostgreSQL, the password unseen."""

from __future__ import annotations

import os
from pathlib import Path

import asyncpg
import pytest

from fluxbot.config import ConfigError, load_settings
from fluxbot.storage import PostgresStore, SQLiteStore, open_store
from fluxbot.storage.schema import MIGRATIONS
from tests.e2e import final_reply, option, running_bot
from tests.fakes.discord_api import FakeDiscord
from tests.fakes.flux_api import FakeFlux
from tests.pgserver import PASSWORD, PgServer, free_port
from tests.test_config import run_bot

BASE = {"DISCORD_TOKEN": "discord-secret-token", "ACEDATA_API_TOKEN": "acedata-secret-token"}
URL = "postgresql://fluxbot:s3cr%2Ft-pw@db.example.org:5433/fluxbot"


def load(tmp_path: Path, **extra: str):
    return load_settings({"DATABASE_PATH": str(tmp_path / "db" / "fluxbot.db"), **BASE, **extra}, env_file=None)


def test_database_url_is_a_secret_and_its_password_is_scrubbed_from_logs(tmp_path: Path) -> None:
    settings = load(tmp_path, DATABASE_URL=URL)
    assert settings.database_url is not None
    assert settings.database_url.reveal() == URL
    assert "s3cr" not in repr(settings)
    assert "s3cr" not in str(settings.database_url)
    assert {URL, "s3cr%2Ft-pw", "s3cr/t-pw"} <= set(settings.secrets()), "as written and decoded"
    assert not (tmp_path / "db").exists(), "no SQLite folder is made for a PostgreSQL bot"
    assert load(tmp_path, DATABASE_URL="postgres://u:pw@h/db").database_url is not None, "the short scheme too"
    assert load(tmp_path).database_url is None


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("mysql://u:hunter22@h/db", "expects a PostgreSQL URL such as postgresql://user:password@host:5432/fluxbot, "
                                    "got a mysql:// URL"),
        ("hunter22", "got something else"),
        ("postgresql://u:hunter22@h:port/db", "a host, an optional port number and a database name"),
        ("postgresql://u:hun/ter22@h/db", "percent-encoded, e.g. %2F"),
        ("postgresql://u:hunter22@h:5432", "a host, an optional port number and a database name"),
    ],
)  # fmt: skip
def test_a_malformed_database_url_names_the_variable_without_the_password(
    tmp_path: Path, value: str, expected: str
) -> None:
    with pytest.raises(ConfigError) as refused:
        load(tmp_path, DATABASE_URL=value)
    assert refused.value.variable == "DATABASE_URL"
    assert str(refused.value).startswith("DATABASE_URL: expects a PostgreSQL URL")
    assert expected in str(refused.value)
    assert "hunter22" not in str(refused.value)
    assert "ter22" not in str(refused.value)


async def test_open_store_picks_postgresql_with_a_url_and_sqlite_without(tmp_path: Path, database_url: str) -> None:
    sqlite = await open_store(load(tmp_path), instance="one")
    try:
        assert isinstance(sqlite, SQLiteStore)
        assert (sqlite.instance, sqlite.shared) == ("one", False)
    finally:
        await sqlite.close()
    postgres = await open_store(load(tmp_path, DATABASE_URL=database_url), instance="two")
    try:
        assert isinstance(postgres, PostgresStore)
        assert (postgres.instance, postgres.shared) == ("two", True)
    finally:
        await postgres.close()
    named = await open_store(load(tmp_path, DATABASE_URL=database_url, INSTANCE_NAME="bot-a"))
    try:
        assert named.instance.startswith(f"bot-a-{os.getpid()}-"), "each start its own name, after INSTANCE_NAME"
    finally:
        await named.close()


async def test_a_database_the_bot_cannot_use_is_a_config_error_without_the_password(
    tmp_path: Path, pg_server: PgServer
) -> None:
    wrong = pg_server.url("fluxbot_template", password="wrong-password-77")
    with pytest.raises(ConfigError) as refused:
        await open_store(load(tmp_path, DATABASE_URL=wrong))
    assert str(refused.value).startswith(
        f"DATABASE_URL: a PostgreSQL database the bot can use (could not connect to postgresql://fluxbot@127.0.0.1:"
        f"{pg_server.port}/fluxbot_template: "
    )
    assert "wrong-password-77" not in str(refused.value)


def test_the_bot_stops_with_one_line_when_postgresql_refuses(tmp_path: Path, pg_server: PgServer) -> None:
    url = pg_server.url("postgres", password="wrong-password-77")
    done = run_bot(tmp_path, DATABASE_URL=url, LOG_LEVEL="DEBUG")
    assert done.returncode == 2
    line = done.stderr.strip().splitlines()[-1]  # after the DEBUG lines
    assert line.startswith("fluxbot: configuration error: DATABASE_URL: a PostgreSQL database the bot can use")
    assert 'password authentication failed for user "fluxbot"' in line
    assert "wrong-password-77" not in done.stderr + done.stdout
    down = run_bot(tmp_path, DATABASE_URL=pg_server.url("postgres", port=free_port()))
    assert down.returncode == 2
    assert "DATABASE_URL" in down.stderr
    assert PASSWORD not in down.stderr + down.stdout
    assert "Traceback" not in done.stderr + down.stderr


async def test_the_bot_stops_with_one_line_on_a_newer_schema(tmp_path: Path, database_url: str) -> None:
    db = await asyncpg.connect(database_url)
    try:
        await db.execute("UPDATE schema_version SET version = $1", len(MIGRATIONS) + 1)
    finally:
        await db.close()
    done = run_bot(tmp_path, DATABASE_URL=database_url)
    assert done.returncode == 2
    assert done.stderr.strip().splitlines()[-1].startswith("fluxbot: DATABASE_URL: postgresql://fluxbot@127.0.0.1:")
    assert f"has schema version {len(MIGRATIONS) + 1}" in done.stderr
    assert PASSWORD not in done.stderr


async def test_the_bot_runs_a_job_on_postgresql_and_never_logs_the_password(
    fakes: tuple[FakeDiscord, FakeFlux], tmp_path: Path, database_url: str
) -> None:
    async with running_bot(*fakes, tmp_path, DATABASE_URL=database_url) as world:
        interaction = await world.discord.send_slash_command("imagine", [option("prompt", "a cat on postgres")])
        await final_reply(world, interaction, "Done")
    db = await asyncpg.connect(database_url)
    try:
        row = await db.fetchrow("SELECT prompt, status, delivered_at FROM jobs")
    finally:
        await db.close()
    assert row is not None
    assert (row["prompt"], row["status"]) == ("a cat on postgres", "succeeded")
    assert row["delivered_at"] is not None
    assert PASSWORD not in world.bot.output, "DEBUG logs of a whole run"
    assert not (tmp_path / "data").exists(), "no SQLite file"
