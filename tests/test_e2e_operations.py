"""End to end: /healthz, /metrics, a graceful shutdown that refuses new commands, and the Docker files."""

from __future__ import annotations

import asyncio
import json
import os
import re
import signal
import sys
from pathlib import Path

import aiohttp
import pytest

from fluxbot.bot import SUBMIT_DRAIN_SECONDS
from tests.botprocess import ROOT
from tests.e2e import World, fields, final_reply, first_callback, free_port, option, running_bot
from tests.fakes.discord_api import FakeDiscord
from tests.fakes.flux_api import FakeFlux


async def get(url: str) -> tuple[int, str]:
    async with aiohttp.ClientSession() as session, session.get(url) as resp:
        return resp.status, await resp.text()


def sample(metrics: str, name: str, **labels: str) -> float:
    """The value of one sample in a Prometheus exposition."""
    for line in metrics.splitlines():
        if line.startswith(name) and all(f'{k}="{v}"' in line for k, v in labels.items()):
            head = line.split(" ")[0]
            if head.split("{")[0] == name:
                return float(line.rsplit(" ", 1)[1])
    raise AssertionError(f"no sample {name} {labels} in:\n{metrics}")


async def test_health_and_metrics_show_what_happened(fakes: tuple[FakeDiscord, FakeFlux], tmp_path: Path) -> None:
    discord, flux = fakes
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    async with running_bot(discord, flux, tmp_path, METRICS_PORT=str(port), METRICS_HOST="127.0.0.1") as world:
        await discord.wait_for(lambda: "listening for health and metrics" in world.bot.output)
        status, body = await get(f"{base}/healthz")
        assert status == 200
        health = json.loads(body)
        [shard] = health.pop("shards")
        assert health == {"healthy": True, "gateway": True, "database": True, "tracker": True}
        assert (shard["id"], shard["connected"]) == (0, True), "one process, one shard, as Discord recommends"

        done = await discord.send_slash_command("imagine", [option("prompt", "counted"), option("count", 2, kind=4)])
        await final_reply(world, done, "Done")
        flux.task_errors.append(("api_error", "model crashed"))
        failed = await discord.send_slash_command("imagine", [option("prompt", "counted too")])
        await final_reply(world, failed, "Failed")
        flux.script("/flux/images", 429, {"success": False, "error": {"code": "too_many_requests", "message": "x"}}, 3)
        busy = await discord.send_slash_command("imagine", [option("prompt", "rate limited")])
        await final_reply(world, busy, "Failed")

        await asyncio.sleep(0.3)
        status, metrics = await get(f"{base}/metrics")
        assert status == 200
        states = ("queued", "pending", "submitted", "succeeded", "failed", "timed_out")
        assert [sample(metrics, "fluxbot_jobs", state=state) for state in states] == [0] * 6, "every state, zeros too"
        assert sample(metrics, "fluxbot_jobs_submitted_total", provider="acedata", model="flux-dev") == 2
        assert sample(metrics, "fluxbot_jobs_finished_total", status="succeeded") == 1
        assert sample(metrics, "fluxbot_jobs_finished_total", status="failed") == 2
        assert sample(metrics, "fluxbot_provider_calls_total", call="submit") == 5
        assert sample(metrics, "fluxbot_provider_errors_total", call="submit", code="too_many_requests") == 3
        assert sample(metrics, "fluxbot_provider_calls_total", call="lookup") >= 2
        # Three jobs: each admitted, claimed, submitted, finished, delivered, plus reads and the lease.
        assert sample(metrics, "fluxbot_database_round_trips_total") >= 3 * 5
        assert sample(metrics, "fluxbot_job_seconds_count") == 3
        assert sample(metrics, "fluxbot_delivery_seconds_count") == 3
        assert sample(metrics, "fluxbot_delivery_seconds_bucket", le="+Inf") == 3
        assert re.search(r"^# TYPE fluxbot_job_seconds histogram$", metrics, re.M)
        assert sample(metrics, "fluxbot_job_failures_total", kind="provider_failed") == 1
        assert sample(metrics, "fluxbot_job_failures_total", kind="rate_limited") == 1
        assert sample(metrics, "fluxbot_provider_request_duration_seconds_count", call="submit") == 5
        assert sample(metrics, "fluxbot_provider_request_duration_seconds_bucket", call="lookup", le="+Inf") >= 2
        assert sample(metrics, "fluxbot_queue_length") == 0
        assert [sample(metrics, "fluxbot_health_check", check=check) for check in ("gateway", "database")] == [1, 1]

        world.flux.hold = True
        unknown = {"message": "Unknown Message", "code": 10008}
        held = await discord.send_slash_command("imagine", [option("prompt", "its reply is gone")])
        queued = await final_reply(world, held, "Flux is working on it")
        _, metrics = await get(f"{base}/metrics")
        assert sample(metrics, "fluxbot_jobs", state="submitted") == 1
        missing_access = {"message": "Missing Access", "code": 50001}
        cannot_dm = {"message": "Cannot send messages to this user", "code": 50007}
        discord.fail_next("PATCH", rf"/messages/{queued['id']}$", 404, unknown, times=5)
        discord.fail_next("POST", rf"/channels/{discord.channel_id}/messages$", 403, missing_access, times=5)
        discord.fail_next("POST", r"/channels/\d+/messages$", 403, cannot_dm, times=5)
        world.flux.finish(list(world.flux.tasks)[-1])
        await discord.wait_for(lambda: "no way left to reach the member" in world.bot.output)
        _, metrics = await get(f"{base}/metrics")
        assert sample(metrics, "fluxbot_discord_edit_failures_total", kind="result", retryable="false") == 1


async def test_health_turns_red_when_the_gateway_is_gone(fakes: tuple[FakeDiscord, FakeFlux], tmp_path: Path) -> None:
    discord, flux = fakes
    port = free_port()
    async with running_bot(discord, flux, tmp_path, METRICS_PORT=str(port), METRICS_HOST="127.0.0.1") as world:
        await discord.wait_for(lambda: "listening for health and metrics" in world.bot.output)
        await discord.close()  # Discord goes away: the bot keeps running, its health says so

        async def unhealthy() -> bool:
            status, body = await get(f"http://127.0.0.1:{port}/healthz")
            return status == 503 and json.loads(body)["gateway"] is False

        for _ in range(100):
            if await unhealthy():
                break
            await asyncio.sleep(0.1)
        else:
            raise AssertionError("/healthz stayed green without a gateway")
        await discord.start()  # let the fixture's shutdown find a Discord again


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT], ids=["SIGTERM", "SIGINT"])
async def test_shutdown_refuses_new_commands_and_loses_nothing(world: World, sig: signal.Signals) -> None:
    world.flux.submit_delay = 2
    first = await world.discord.send_slash_command("imagine", [option("prompt", "under way at shutdown")])
    await world.flux.wait_for_submits(1)
    stopping = asyncio.create_task(world.bot.stop(sig))
    await world.discord.wait_for(lambda: "shutting down" in world.bot.output)
    late = await world.discord.send_slash_command("imagine", [option("prompt", "too late")])
    answer = first_callback(world, late).json["data"]
    assert answer["flags"] & 64
    assert "restarting" in answer["content"]
    assert await stopping == 0
    assert "Traceback" not in world.bot.output
    world.flux.submit_delay = 0
    await world.restart()
    done = await final_reply(world, first, "Done")
    assert "under way at shutdown" in done["embeds"][0]["description"]
    assert [b["prompt"] for b in world.flux.submits] == ["under way at shutdown"]


def test_the_docker_image_runs_the_documented_command_as_non_root_with_a_health_check() -> None:
    dockerfile = (ROOT / "Dockerfile").read_text()
    assert re.search(r"^FROM python:3\.\d+-slim$", dockerfile, re.M)
    steps = [dockerfile.index(s) for s in ("COPY requirements.txt", "RUN pip install", "COPY fluxbot")]
    assert steps == sorted(steps), "dependencies are installed before the source is copied"
    assert re.search(r"^USER fluxbot$", dockerfile, re.M)
    assert 'VOLUME ["/data"]' in dockerfile
    assert "DATABASE_PATH=/data/fluxbot.db" in dockerfile
    assert re.search(r'^CMD \["python", "bot.py"\]$', dockerfile, re.M)
    health = re.search(r"^HEALTHCHECK .*\n\s+CMD (.*)$", dockerfile, re.M)
    assert health is not None
    assert "/healthz" in health.group(1)
    assert "METRICS_PORT" in health.group(1)
    compose = (ROOT / "docker-compose.yml").read_text()
    assert "env_file: .env" in compose
    assert "- ${FLUXBOT_DATA:-fluxbot-data}:/data" in compose, "a named volume unless FLUXBOT_DATA names a folder"
    grace = re.search(r"stop_grace_period: (\d+)s", compose)
    assert grace is not None
    assert int(grace.group(1)) > SUBMIT_DRAIN_SECONDS + 5, "Docker must not kill the bot while it drains submits"


def test_the_postgresql_compose_file_runs_two_shards_on_one_database_with_a_volume() -> None:
    """No Docker engine here: the file is read for what the README promises of it."""
    compose = (ROOT / "docker-compose.postgres.yml").read_text()
    block = compose[compose.index("\nservices:") : compose.index("\nvolumes:")]
    services = dict(re.findall(r"^  ([a-z0-9-]+):\n((?:    .*\n|\n)*)", block, re.M))
    assert set(services) == {"postgres", "fluxbot-0", "fluxbot-1"}
    assert "${FLUXBOT_POSTGRES_DATA:-fluxbot-postgres}:/var/lib/postgresql/data" in services["postgres"]
    assert "pg_isready" in services["postgres"], "the bots wait for a database that answers"
    for shard in (0, 1):
        bot = services[f"fluxbot-{shard}"]
        assert "<<: *fluxbot" in bot
        assert re.search(
            r"DATABASE_URL: postgresql://fluxbot:\$\{POSTGRES_PASSWORD\}@postgres:5432/fluxbot$", bot, re.M
        )
        assert f'SHARD_COUNT: "2"\n      SHARD_IDS: "{shard}"' in bot
        assert f"INSTANCE_NAME: fluxbot-{shard}" in bot
    shared = compose[compose.index("x-fluxbot:") : compose.index("services:")]
    assert "condition: service_healthy" in shared
    grace = re.search(r"stop_grace_period: (\d+)s", shared)
    assert grace is not None
    assert int(grace.group(1)) > SUBMIT_DRAIN_SECONDS + 5


async def run_health_check(command: list[str], port: int) -> int:
    """Run the image's HEALTHCHECK command (exec form, as Docker does) against `port`; its exit code."""
    env = {**os.environ, "METRICS_PORT": str(port)}
    process = await asyncio.create_subprocess_exec(
        sys.executable, *command[1:], env=env, stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.DEVNULL
    )
    return await process.wait()


async def test_the_image_command_starts_with_the_documented_environment(
    fakes: tuple[FakeDiscord, FakeFlux], tmp_path: Path
) -> None:
    """What the image runs (`python bot.py`, DATABASE_PATH on a volume, METRICS_PORT) starts, and its own
    HEALTHCHECK command reports it healthy while it runs and unhealthy once it is gone."""
    discord, flux = fakes
    dockerfile = (ROOT / "Dockerfile").read_text()
    assert "METRICS_PORT=9090" in dockerfile
    health = re.search(r"^HEALTHCHECK .*\n\s+CMD (\[.*\])$", dockerfile, re.M)
    assert health is not None
    check = json.loads(health.group(1))
    assert check[0] == "python"
    port = free_port()
    volume = tmp_path / "data-volume"
    env = {"DATABASE_PATH": str(volume / "fluxbot.db"), "METRICS_PORT": str(port)}
    async with running_bot(discord, flux, tmp_path, **env) as world:
        await discord.wait_for(lambda: "listening for health and metrics" in world.bot.output)
        assert await run_health_check(check, port) == 0
        interaction = await discord.send_slash_command("imagine", [option("prompt", "in a container")])
        done = await final_reply(world, interaction, "Done")
        result = fields(done["embeds"][0])
        assert ("`flux-dev`" in result["Model"], result["Size"]) == (True, "`1024x1024`")
    assert (volume / "fluxbot.db").is_file()
    assert await run_health_check(check, port) != 0, "the health check fails once the bot is gone"
