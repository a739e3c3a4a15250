"""Shared fixtures: the fake provider, a client for it, and a store on a real SQLite file."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import aiohttp
import pytest

from fluxbot.config import Secret
from fluxbot.providers.acedata import AceDataFlux
from fluxbot.storage import SQLiteStore, Store
from tests.doubles import Clock, RecordingReplier
from tests.e2e import World, running_bot
from tests.fakes.discord_api import FakeDiscord
from tests.fakes.flux_api import FakeFlux


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
STORE_ENGINES = ("sqlite",)


async def open_store(engine: str, tmp_path: Path) -> Store:
    """A new, empty store of the given engine."""
    if engine == "sqlite":
        return await SQLiteStore.open(tmp_path / "jobs.db")
    raise ValueError(f"no such store engine: {engine}")


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
async def store(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Store]:
    s = await open_store(request.param, tmp_path)
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
def clock() -> Clock:
    return Clock()


@pytest.fixture
def replier() -> RecordingReplier:
    return RecordingReplier()
