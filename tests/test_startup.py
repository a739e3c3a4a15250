"""What the bot says as it starts: every configuration error at once, too old a Python, Discord out of reach, the
invite link, and a provider key the provider refuses — each as the one line an operator needs."""

from __future__ import annotations

import asyncio
import logging
import subprocess
import sys
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import aiohttp
import pytest

from fluxbot import catalog
from fluxbot.config import ConfigError, ConfigErrors, Secret, load_settings
from fluxbot.providers.acedata import AceDataFlux
from fluxbot.providers.base import KEY_CHECK_TASK
from fluxbot.providers.kie import KieFlux
from fluxbot.startup import PERMISSIONS, SCOPES, check_provider_key, invite_url
from tests.botprocess import ROOT, RUN_BOT, BotProcess, clean_environ
from tests.e2e import bot_env, free_port, running_bot
from tests.fakes.discord_api import FakeDiscord
from tests.fakes.flux_api import FakeFlux
from tests.fakes.kie_api import FakeKie


def run_bot(tmp_path: Path, *args: str, **settings: str) -> subprocess.CompletedProcess[str]:
    env = clean_environ()
    env.update(PYTHONPATH=str(ROOT), **settings)
    return subprocess.run(
        [sys.executable, *args], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=60, check=False
    )


def test_every_configuration_error_is_reported_at_once(tmp_path: Path) -> None:
    done = run_bot(
        tmp_path, str(ROOT / "bot.py"), FLUX_PROVIDER="kie", COOLDOWN_SECONDS="soon", MAX_JOBS_PER_MEMBER="0",
        SHARD_IDS="1",
    )  # fmt: skip
    assert done.returncode == 2
    assert done.stderr.splitlines() == [
        "fluxbot: configuration error: DISCORD_TOKEN: missing. Set it to the bot token from the Discord developer "
        "portal (in .env or the environment)",
        "fluxbot: configuration error: KIE_API_TOKEN: missing. Set it to your Kie.ai API key (in .env or the "
        "environment)",
        "fluxbot: configuration error: MAX_JOBS_PER_MEMBER: expects a whole number from 1 to 100, got '0'",
        "fluxbot: configuration error: COOLDOWN_SECONDS: expects a whole number from 0 to 86400, got 'soon'",
        "fluxbot: configuration error: SHARD_IDS: needs SHARD_COUNT, the total number of shards, set as well",
    ]
    assert not (tmp_path / "data").exists(), "nothing is created for settings that cannot run"


def test_collected_errors_keep_the_first_as_the_message() -> None:
    with pytest.raises(ConfigErrors) as info:
        load_settings({"DISCORD_TOKEN": "a", "ACEDATA_API_TOKEN": "b", "LOG_LEVEL": "loud", "CALLBACK_PORT": "x"}, None)
    assert str(info.value) == "LOG_LEVEL: expects one of DEBUG, INFO, WARNING, ERROR, got 'LOUD'"
    assert info.value.variable == "LOG_LEVEL"
    assert [e.variable for e in info.value.errors] == ["LOG_LEVEL", "CALLBACK_PORT"]


def test_an_unknown_provider_does_not_also_blame_the_model() -> None:
    with pytest.raises(ConfigError) as info:
        load_settings({"DISCORD_TOKEN": "a", "FLUX_PROVIDER": "kei", "DEFAULT_MODEL": "flux-kontext-max"}, None)
    assert [e.variable for e in getattr(info.value, "errors", [info.value])] == ["FLUX_PROVIDER"]


def test_a_python_older_than_311_stops_with_one_line(tmp_path: Path) -> None:
    pretend = (
        "import runpy, sys; sys.version_info = (3, 10, 12, 'final', 0); sys.argv = ['bot.py']; "
        f"runpy.run_path({str(ROOT / 'bot.py')!r}, run_name='__main__')"
    )
    done = run_bot(tmp_path, "-c", pretend, DISCORD_TOKEN="abc", ACEDATA_API_TOKEN="x")
    assert done.returncode == 1
    assert done.stderr.splitlines() == ["fluxbot needs Python 3.11 or newer; this is Python 3.10.12."]


def test_discord_out_of_reach_is_one_line_and_a_failing_exit(tmp_path: Path) -> None:
    closed = f"http://127.0.0.1:{free_port()}"
    done = run_bot(
        tmp_path, str(RUN_BOT), FAKE_DISCORD_URL=closed, DISCORD_TOKEN="abc", ACEDATA_API_TOKEN="x",
        FLUX_API_BASE_URL=closed, DATABASE_PATH=str(tmp_path / "jobs.db"),
    )  # fmt: skip
    assert done.returncode == 1, "a supervisor restarts a process that failed"
    output = done.stdout + done.stderr
    assert "Traceback" not in output
    assert "shutting down" not in output, "nothing had started, so nothing is said to stop"
    [line] = [line for line in done.stderr.splitlines() if line.startswith("fluxbot:")]
    assert line.startswith("fluxbot: cannot reach Discord to log in (ClientConnectorError: Cannot connect to host")
    assert line.endswith("check the network, then start again")


def test_the_invite_link_asks_for_what_the_bot_uses() -> None:
    url = invite_url(1234567890123)
    query = parse_qs(urlsplit(url).query)
    assert url.startswith("https://discord.com/oauth2/authorize?")
    assert query["client_id"] == ["1234567890123"]
    assert query["scope"] == [" ".join(SCOPES)] == ["bot applications.commands"]
    # Discord's documented bits: View Channel, Send Messages, Embed Links, Attach Files, Read Message History,
    # Send Messages in Threads.
    bits = (10, 11, 14, 15, 16, 38)
    assert int(query["permissions"][0]) == sum(1 << bit for bit in bits) == PERMISSIONS.value


def test_the_readme_asks_for_the_same_permissions() -> None:
    readme = " ".join((ROOT / "README.md").read_text().split())
    assert f"`permissions={PERMISSIONS.value}`" in readme
    named = "View Channels, Send Messages, Send Messages in Threads, Embed Links, Attach Files and Read Message History"
    assert f"the permissions {named}" in readme


async def test_the_invite_link_is_logged_at_start(fakes: tuple[FakeDiscord, FakeFlux], tmp_path: Path) -> None:
    discord_fake, flux = fakes
    async with running_bot(discord_fake, flux, tmp_path) as world:
        expected = invite_url(discord_fake.application_id)
        assert f"invite the bot to a server with {expected}" in world.bot.output
        assert "Ace Data Cloud accepted the key" in world.bot.output


async def test_a_provider_key_the_provider_refuses_stops_the_start(
    fakes: tuple[FakeDiscord, FakeFlux], tmp_path: Path
) -> None:
    discord_fake, flux = fakes
    env = bot_env(discord_fake, flux, tmp_path, ACEDATA_API_TOKEN="not-the-key")
    process = BotProcess(env, tmp_path)
    await process.start()
    for _ in range(300):
        if not process.running:
            break
        await asyncio.sleep(0.1)
    code = await process.stop()
    assert code == 2
    refused = "ACEDATA_API_TOKEN: Ace Data Cloud refused this key (HTTP 401, code invalid_token)"
    assert f"fluxbot: configuration error: {refused}" in process.output
    assert "not-the-key" not in process.output
    assert flux.submits == []


async def test_the_key_check_names_the_setting_to_fix(flux: FakeFlux, session: aiohttp.ClientSession) -> None:
    info = catalog.PROVIDERS["acedata"]
    good = AceDataFlux(session, Secret(flux.token), flux.base_url)
    await check_provider_key(good, info)
    assert flux.lookups[-1] == {"action": "retrieve_batch", "ids": [KEY_CHECK_TASK]}
    with pytest.raises(ConfigError, match=r"^ACEDATA_API_TOKEN: Ace Data Cloud refused this key \(HTTP 401"):
        await check_provider_key(AceDataFlux(session, Secret("wrong"), flux.base_url), info)
    with pytest.raises(ConfigError, match=r"^FLUX_API_BASE_URL: Ace Data Cloud answered that the bot is set up"):
        await check_provider_key(AceDataFlux(session, Secret(flux.token), flux.base_url + "/nothing-here"), info)


async def test_the_kie_key_is_checked_the_same_way(session: aiohttp.ClientSession) -> None:
    kie = FakeKie()
    await kie.start()
    try:
        info = catalog.PROVIDERS["kie"]
        await check_provider_key(KieFlux(session, Secret(kie.token), kie.base_url), info)
        with pytest.raises(ConfigError, match=r"^KIE_API_TOKEN: Kie.ai refused this key \(HTTP 200, code 401\)"):
            await check_provider_key(KieFlux(session, Secret("wrong"), kie.base_url), info)
    finally:
        await kie.close()


async def test_a_provider_out_of_reach_does_not_stop_the_start(
    session: aiohttp.ClientSession, caplog: pytest.LogCaptureFixture
) -> None:
    closed = f"http://127.0.0.1:{free_port()}"
    with caplog.at_level(logging.WARNING):
        await check_provider_key(AceDataFlux(session, Secret("any"), closed), catalog.PROVIDERS["acedata"])
    assert "could not check the Ace Data Cloud key now (unavailable); starting anyway" in caplog.text
