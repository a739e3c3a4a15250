"""What /healthz and /metrics say about a process's shards, and the `instance` label on every series."""

from __future__ import annotations

import math
import re
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import cast

import aiohttp
import discord
import pytest
from prometheus_client import CONTENT_TYPE_LATEST

from fluxbot.metrics import Exposition, Metrics, Readings
from fluxbot.shards import ShardState, shard_states
from fluxbot.storage import StoreUnavailable
from fluxbot.web import WebServer
from tests.e2e import free_port


@dataclass
class Shard:
    """What `shard_states` reads of one discord.py shard."""

    closed: bool = False
    latency: float = 0.042

    def is_closed(self) -> bool:
        return self.closed


@dataclass
class Client:
    """What `shard_states` reads of discord.py's sharded client."""

    shard_count: int | None
    shard_ids: list[int] | None
    launched: dict[int, Shard] = field(default_factory=dict)
    closed: bool = False

    def get_shard(self, shard_id: int) -> Shard | None:
        return self.launched.get(shard_id)

    def is_closed(self) -> bool:
        return self.closed


def states(client: Client) -> list[ShardState]:
    return shard_states(cast("discord.AutoShardedClient", client))


def test_every_shard_of_the_process_is_listed_connected_or_not() -> None:
    assert states(Client(None, None)) == [], "the count is not known before connecting"
    launched = {0: Shard(latency=0.042), 1: Shard(latency=math.inf), 3: Shard(closed=True)}
    assert states(Client(4, None, launched)) == [
        ShardState(0, True, 0.042),
        ShardState(1, True, None),  # no heartbeat answered yet
        ShardState(2, False, None),  # not launched yet
        ShardState(3, False, None),
    ]
    assert states(Client(4, [3, 1], launched)) == [ShardState(1, True, None), ShardState(3, False, None)]
    assert states(Client(4, [0], launched, closed=True)) == [ShardState(0, False, None)], "a closed client"


def test_every_series_carries_the_instance_label() -> None:
    metrics = Metrics()
    metrics.jobs_submitted.labels("acedata", "flux-dev").inc()
    metrics.provider_calls.labels("acedata", "lookup").inc(3)
    metrics.job_latency.observe(1.5)
    metrics.delivery_latency.observe(0.2)
    shards = [ShardState(0, True, 0.0425), ShardState(1, False, None), ShardState(10, True, 0.5)]
    readings = Readings({"queued": 2, "submitted": 1}, shards, round_trips=7, health={"database": True})
    text = Exposition("bot-1.eu", metrics).render(readings).decode()
    samples = [line for line in text.splitlines() if line and not line.startswith("#")]
    assert samples
    for line in samples:
        # prometheus-client writes the labels in name order: `instance` is among them, wherever it sorts.
        assert re.fullmatch(r'[a-z_]+\{([a-z]+="[^"]*",)*instance="bot-1\.eu"(,[a-z]+="[^"]*")*\} \S+', line), line
    assert 'fluxbot_jobs{instance="bot-1.eu",state="queued"} 2.0' in samples
    assert 'fluxbot_queue_length{instance="bot-1.eu"} 2.0' in samples
    assert 'fluxbot_jobs_submitted_total{instance="bot-1.eu",model="flux-dev",provider="acedata"} 1.0' in samples
    assert 'fluxbot_provider_calls_total{call="lookup",instance="bot-1.eu",provider="acedata"} 3.0' in samples
    assert 'fluxbot_job_seconds_bucket{instance="bot-1.eu",le="+Inf"} 1.0' in samples
    assert 'fluxbot_job_seconds_bucket{instance="bot-1.eu",le="2.5"} 1.0' in samples
    assert 'fluxbot_job_seconds_count{instance="bot-1.eu"} 1.0' in samples
    assert 'fluxbot_delivery_seconds_sum{instance="bot-1.eu"} 0.2' in samples
    assert 'fluxbot_database_round_trips_total{instance="bot-1.eu"} 7.0' in samples
    assert 'fluxbot_health_check{check="database",instance="bot-1.eu"} 1.0' in samples
    assert not [line for line in samples if "_created" in line], "no per-series start times"
    connected = [line for line in samples if line.startswith("fluxbot_shard_connected")]
    assert connected == [
        'fluxbot_shard_connected{instance="bot-1.eu",shard="0"} 1.0',
        'fluxbot_shard_connected{instance="bot-1.eu",shard="1"} 0.0',
        'fluxbot_shard_connected{instance="bot-1.eu",shard="10"} 1.0',
    ]
    latency = [line for line in samples if line.startswith("fluxbot_shard_latency_seconds")]
    assert latency == [
        'fluxbot_shard_latency_seconds{instance="bot-1.eu",shard="0"} 0.0425',
        'fluxbot_shard_latency_seconds{instance="bot-1.eu",shard="1"} NaN',
        'fluxbot_shard_latency_seconds{instance="bot-1.eu",shard="10"} 0.5',
    ]
    assert "# TYPE fluxbot_shard_connected gauge" in text
    assert "# TYPE fluxbot_shard_latency_seconds gauge" in text
    assert "# TYPE fluxbot_jobs_submitted_total counter" in text


def test_two_bots_in_one_process_each_label_their_own_series() -> None:
    """Each bot's exposition has a registry of its own: a second one neither clashes nor repeats the first's."""
    metrics = Metrics()
    metrics.jobs_finished.labels("acedata", "flux-dev", "succeeded").inc()
    first, second = Exposition("a", metrics), Exposition("b", metrics)
    one = first.render(Readings({"queued": 1}, round_trips=3)).decode()
    two = second.render(Readings({"queued": 4}, round_trips=9)).decode()
    assert 'fluxbot_queue_length{instance="a"} 1.0' in one
    assert 'fluxbot_queue_length{instance="b"} 4.0' in two
    assert 'fluxbot_jobs_finished_total{instance="b",model="flux-dev",provider="acedata",status="succeeded"} 1.0' in two
    assert 'instance="a"' not in two
    assert "fluxbot_jobs{" not in Exposition("c", metrics).render(Readings(None)).decode(), "unread: left out"


@dataclass
class Bot:
    """The running bot as /healthz and /metrics see it."""

    checks: dict[str, bool]
    shards: list[ShardState]
    database_readable: bool = True

    async def health(self) -> dict[str, bool]:
        return self.checks

    def shard_states(self) -> list[ShardState]:
        return self.shards

    async def jobs_by_state(self) -> dict[str, int]:
        if not self.database_readable:
            raise StoreUnavailable("database is locked")
        return {"queued": 0}

    def database_round_trips(self) -> int:
        return 1234


@pytest.fixture
async def served() -> AsyncIterator[tuple[Bot, str]]:
    bot = Bot({"gateway": True, "database": True, "tracker": True}, [ShardState(0, True, 0.03)])
    server = WebServer(host="127.0.0.1", port=free_port(), setting="METRICS_PORT")
    server.serve_health(bot, instance="eu-2")
    await server.start()
    yield bot, f"http://127.0.0.1:{server.port}"
    await server.close()


async def test_healthz_lists_the_shards_beside_the_checks(served: tuple[Bot, str]) -> None:
    bot, base = served
    async with aiohttp.ClientSession() as session:
        async with session.get(f"{base}/healthz") as resp:
            assert resp.status == 200
            assert await resp.json() == {
                "healthy": True,
                "gateway": True,
                "database": True,
                "tracker": True,
                "shards": [{"id": 0, "connected": True, "latency_seconds": 0.03}],
            }
        bot.checks["gateway"] = False
        bot.shards = [ShardState(0, True, 0.03), ShardState(1, False, None)]
        async with session.get(f"{base}/healthz") as resp:
            assert resp.status == 503
            body = await resp.json()
            assert (body["healthy"], body["gateway"]) == (False, False)
            assert body["shards"][1] == {"id": 1, "connected": False, "latency_seconds": None}
        async with session.get(f"{base}/metrics") as resp:
            assert resp.headers["Content-Type"] == CONTENT_TYPE_LATEST
            text = await resp.text()
            assert 'fluxbot_shard_connected{instance="eu-2",shard="1"} 0.0' in text
            assert 'fluxbot_jobs{instance="eu-2",state="queued"} 0.0' in text
            assert 'fluxbot_database_round_trips_total{instance="eu-2"} 1234.0' in text
            assert 'fluxbot_health_check{check="gateway",instance="eu-2"} 0.0' in text
            assert 'fluxbot_health_check{check="database",instance="eu-2"} 1.0' in text


async def test_metrics_still_answer_when_the_database_cannot_count_jobs(served: tuple[Bot, str]) -> None:
    """A scrape that failed would read as "bot down": it answers, without the job counts, and says the database
    check fails."""
    bot, base = served
    bot.database_readable, bot.checks["database"] = False, False
    async with aiohttp.ClientSession() as session, session.get(f"{base}/metrics") as resp:
        assert resp.status == 200
        text = await resp.text()
    assert "fluxbot_jobs{" not in text
    assert "fluxbot_queue_length{" not in text
    assert 'fluxbot_health_check{check="database",instance="eu-2"} 0.0' in text
    assert 'fluxbot_shard_connected{instance="eu-2",shard="0"} 1.0' in text
