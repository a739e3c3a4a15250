"""Shared fixtures: the fake provider, a client for it, and stores on a real SQLite file and a real PostgreSQL."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import aiohttp
import pytest

from fluxbot.config import Secret
from fluxbot.jobs.alarms import ALARMS
from fluxbot.providers.acedata import AceDataFlux
from fluxbot.storage import PostgresStore, SQLiteStore, Store
from tests.doubles import Clock, RecordingReplier
from tests.e2e import World, running_bot, sharded_discord
from tests.fakes.discord_api import FakeDiscord
from tests.fakes.flux_api import FakeFlux
from tests.pgserver import PgServer, ServerMissing


@pytest.fixture
async def flux() -> AsyncIterator[FakeFlux]:
    fake = FakeFlux()
    await fake.start()
    yield fake
    await fake.close()


@pytest.fixture
async def session() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession() as s:
        yield s


@pytest.fixture
def client(flux: FakeFlux, session: aiohttp.ClientSession) -> AceDataFlux:
    return AceDataFlux(session, Secret(flux.token), flux.base_url, request_timeout=5)


#: Every implementation of the `Store` interface: the store, job and limit tests run once against each.
STORE_ENGINES = ("sqlite", "postgres")


async def open_store(engine: str, where: Path | str, *, instance: str | None = None) -> Store:
    """A store of the given engine: SQLite in the folder `where`, PostgreSQL at the DATABASE_URL `where`."""
    if engine == "sqlite":
        return await SQLiteStore.open(Path(where) / "jobs.db", instance=instance)
    if engine == "postgres":
        return await PostgresStore.open(str(where), instance=instance, pool_size=4)
    raise ValueError(f"no such store engine: {engine}")


@pytest.fixture(scope="session")
def pg_server() -> Iterator[PgServer]:
    """One PostgreSQL server for the whole run (started on first use), stopped and removed at the end."""
    try:
        server = PgServer()
    except ServerMissing as exc:
        pytest.fail(str(exc), pytrace=False)
    try:
        server.start()
        asyncio.run(server.prepare())
        yield server
    finally:
        server.stop()


@pytest.fixture
async def database_url(pg_server: PgServer) -> AsyncIterator[str]:
    """The DATABASE_URL of a new, migrated database of its own (dropped after the test)."""
    name = await pg_server.create_database()
    yield pg_server.url(name)
    await pg_server.drop_database(name)


@contextlib.contextmanager
def earlier_run(store: Store) -> Iterator[None]:
    """What the block writes belongs to another run of the bot (one that has stopped): its jobs are orphans."""
    mine = store.instance
    store.instance = "earlier-run"  # type: ignore[misc]  # the Protocol's is read-only; the stores' is not
    try:
        yield
    finally:
        store.instance = mine  # type: ignore[misc]


@pytest.fixture(params=STORE_ENGINES)
def store_location(request: pytest.FixtureRequest, tmp_path: Path) -> tuple[str, Path | str]:
    """(engine, where): a folder for SQLite, a fresh database's URL for PostgreSQL (its server starts lazily)."""
    if request.param == "postgres":
        return "postgres", str(request.getfixturevalue("database_url"))
    return "sqlite", tmp_path


@pytest.fixture
async def store(store_location: tuple[str, Path | str]) -> AsyncIterator[Store]:
    s = await open_store(*store_location)
    yield s
    await s.close()


@pytest.fixture
async def fakes() -> AsyncIterator[tuple[FakeDiscord, FakeFlux]]:
    discord, flux = FakeDiscord(), FakeFlux()
    await discord.start()
    await flux.start()
    yield discord, flux
    await flux.close()
    await discord.close()


@pytest.fixture
async def world(fakes: tuple[FakeDiscord, FakeFlux], tmp_path: Path) -> AsyncIterator[World]:
    async with running_bot(*fakes, tmp_path) as running:
        yield running


@pytest.fixture
async def sharded() -> AsyncIterator[tuple[FakeDiscord, FakeFlux]]:
    """A fake Discord recommending 2 shards, with a guild on each, and the fake provider."""
    discord, flux = sharded_discord(2), FakeFlux()
    await discord.start()
    await flux.start()
    yield discord, flux
    await flux.close()
    await discord.close()


@pytest.fixture(autouse=True)
def fresh_alarms() -> None:
    """Each test starts with no operator problem reported yet (the alarms are the process's, like the metrics)."""
    ALARMS.forget()


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def replier() -> RecordingReplier:
    return RecordingReplier()
