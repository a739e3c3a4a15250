"""The one app-command error handler, the log redaction, and what /healthz reports."""

from __future__ import annotations

import asyncio
import logging
from pathlib import Path
from unittest.mock import AsyncMock, MagicMock

import aiohttp
import discord
import pytest
from discord import app_commands

from fluxbot.bot import GENERIC_ERROR, FluxBot, report_command_error, tell_after_card
from fluxbot.config import load_settings
from fluxbot.jobs.requests import InvalidRequest
from fluxbot.limits import Refused
from fluxbot.logs import RedactingFormatter
from fluxbot.providers import build_providers
from fluxbot.storage import SQLiteStore, StoreUnavailable


def interaction(*, answered: bool) -> MagicMock:
    fake = MagicMock(spec=discord.Interaction)
    fake.command.qualified_name = "imagine"
    fake.response.is_done.return_value = answered
    fake.response.send_message = AsyncMock()
    fake.followup.send = AsyncMock()
    return fake


def invoke_error(exc: Exception) -> app_commands.CommandInvokeError:
    command = MagicMock(spec=app_commands.Command)
    command.name = "imagine"
    return app_commands.CommandInvokeError(command, exc)


async def test_an_unexpected_error_gets_a_short_message_and_a_logged_traceback(
    caplog: pytest.LogCaptureFixture,
) -> None:
    fresh = interaction(answered=False)
    await report_command_error(fresh, invoke_error(RuntimeError("database is on fire")))
    fresh.response.send_message.assert_awaited_once_with(GENERIC_ERROR, ephemeral=True)
    fresh.followup.send.assert_not_awaited()
    [record] = [r for r in caplog.records if r.levelname == "ERROR"]
    assert record.exc_info is not None
    assert "database is on fire" in str(record.exc_info[1])
    assert "database is on fire" not in GENERIC_ERROR


@pytest.mark.parametrize(
    "refusal", [Refused("You already have 2 jobs running"), InvalidRequest("`size` 1000x1000 is not a multiple")]
)
async def test_a_refusal_is_told_to_the_member_as_it_is_and_logged_quietly(
    caplog: pytest.LogCaptureFixture, refusal: Exception
) -> None:
    fresh = interaction(answered=False)
    await report_command_error(fresh, invoke_error(refusal))
    fresh.response.send_message.assert_awaited_once_with(str(refusal), ephemeral=True)
    assert not [r for r in caplog.records if r.levelno >= logging.WARNING], "a refusal is not a failure"


async def test_an_error_after_the_defer_is_sent_as_a_followup() -> None:
    deferred = interaction(answered=True)
    await report_command_error(deferred, invoke_error(KeyError("x")))
    deferred.followup.send.assert_awaited_once_with(GENERIC_ERROR, ephemeral=True)
    deferred.response.send_message.assert_not_awaited()


async def test_a_bad_option_value_is_named() -> None:
    fresh = interaction(answered=False)
    transformer = MagicMock(spec=app_commands.Transformer)
    transformer.type = discord.AppCommandOptionType.integer
    await report_command_error(
        fresh, app_commands.TransformerError("many", discord.AppCommandOptionType.integer, transformer)
    )
    message = fresh.response.send_message.await_args.args[0]
    assert "`many` is not a valid value" in message


def reply_message(*, loading: bool) -> MagicMock:
    message = MagicMock(spec=discord.WebhookMessage)
    message.flags = discord.MessageFlags(loading=loading)
    return message


async def test_a_note_waits_until_the_reply_shows_its_card_so_it_cannot_replace_it_in_public() -> None:
    deferred = interaction(answered=True)
    seen = [reply_message(loading=True), reply_message(loading=True), reply_message(loading=False)]
    deferred.followup.fetch_message = AsyncMock(side_effect=seen)
    await tell_after_card(deferred, 123, "your default model is not enabled here", waits=(0.0, 0.0, 0.0, 0.0))
    assert deferred.followup.fetch_message.await_count == 3, "asked until the reply no longer thinks"
    deferred.followup.send.assert_awaited_once_with("your default model is not enabled here", ephemeral=True)

    still_thinking = interaction(answered=True)
    still_thinking.followup.fetch_message = AsyncMock(return_value=reply_message(loading=True))
    await tell_after_card(still_thinking, 123, "a note", waits=(0.0, 0.0))
    assert still_thinking.followup.fetch_message.await_count == 3
    assert still_thinking.followup.send.await_count == 0, "never a followup on a reply that is still thinking"


def test_secrets_and_interaction_tokens_are_scrubbed_from_log_lines() -> None:
    formatter = RedactingFormatter(["discord-bot-token-1234", "flux-key-5678"])
    token = "aW50ZXJhY3Rpb246MTIzNDU2Nzg5MDE6c2VjcmV0dG9rZW4"
    lines = [
        "login with discord-bot-token-1234 and flux-key-5678",
        f"PATCH https://discord.com/api/v10/webhooks/123456/{token}/messages/999 has returned 200",
        f"POST /api/v10/interactions/998877/{token}/callback",
        f"For Shard ID None: WebSocket Event: {{'t': 'INTERACTION_CREATE', 'd': {{'token': '{token}', 'id': '1'}}}}",
        f'{{"token": "{token}"}}',
    ]
    for line in lines:
        record = logging.LogRecord("x", logging.INFO, __file__, 1, line, None, None)
        shown = formatter.format(record)
        for secret in ("discord-bot-token-1234", "flux-key-5678", token):
            assert secret not in shown
        assert "***" in shown


async def test_health_reports_a_database_that_cannot_be_written_and_a_stopped_tracker(tmp_path: Path) -> None:
    environ = {"DISCORD_TOKEN": "abc", "ACEDATA_API_TOKEN": "t", "DATABASE_PATH": str(tmp_path / "fluxbot.db")}
    settings = load_settings(environ, env_file=None)
    store = await SQLiteStore.open(tmp_path / "fluxbot.db")
    async with aiohttp.ClientSession() as session:
        bot = FluxBot(settings=settings, store=store, providers=build_providers(settings, session), session=session)
        await bot.__aenter__()  # as bot.py does: discord.py's sharded client closes only once entered
        try:
            bot.jobs.start_tracker()
            healthy = await bot.health()
            assert (healthy["database"], healthy["tracker"]) == (True, True)
            assert healthy["gateway"] is False, "never connected"
            refused = asyncio.Event()

            async def refused_write() -> None:
                if not refused.is_set():
                    refused.set()
                    raise StoreUnavailable("disk I/O error")

            bot.jobs.persistence.delays = (0.2,)
            waiting = asyncio.create_task(bot.jobs.persistence.write("job 1: task t", refused_write))
            await refused.wait()
            assert (await bot.health())["database"] is False, "a job's state waits for the database"
            await waiting
            assert (await bot.health())["database"] is True
            await bot.jobs.stop_tracker()
            await store.close()
            assert await bot.health() == {"gateway": False, "database": False, "tracker": False}
        finally:
            await bot.close()
