"""End to end: a server budget as a moderator sets it and members use it up, through the real bot and the fake
Discord; the moderation log's notices, the refusal with the reset time, and the estimated spend."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from fluxbot.i18n import date_text
from tests.e2e import (
    DEFERRED_CHANNEL_MESSAGE,
    EPHEMERAL,
    World,
    fields,
    final_reply,
    first_callback,
    option,
    running_bot,
)
from tests.fakes.discord_api import FakeDiscord, SentInteraction
from tests.fakes.flux_api import FakeFlux
from tests.test_e2e_moderation import posts_to

ALICE, BOB = 333333333333333333, 444444444444444444
PRICES = "flux-dev=0.012,flux-pro=0.04"


def admin(sub: str, *options: dict[str, Any]) -> list[dict[str, Any]]:
    return [{"name": sub, "type": 1, "options": list(options)}]


def answer(world: World, interaction: SentInteraction) -> dict[str, Any]:
    data: dict[str, Any] = first_callback(world, interaction).json["data"]
    return data


def next_midnight() -> int:
    today = datetime.now(UTC).replace(hour=0, minute=0, second=0, microsecond=0)
    return int((today + timedelta(days=1)).timestamp())


async def made(world: World, prompt: str, *, user_id: int, guild: bool = True, count: int = 1) -> None:
    """An /imagine that is accepted and finishes."""
    options = [option("prompt", prompt)] + ([option("count", count, kind=4)] if count > 1 else [])
    sent = await world.discord.send_slash_command("imagine", options, user_id=user_id, guild=guild)
    assert first_callback(world, sent).json["type"] == DEFERRED_CHANNEL_MESSAGE, answer(world, sent)
    await final_reply(world, sent, "Done")


async def refused(world: World, prompt: str, *, user_id: int, guild: bool = True, count: int = 1) -> str:
    """An /imagine that is refused privately; what the member reads."""
    options = [option("prompt", prompt)] + ([option("count", count, kind=4)] if count > 1 else [])
    sent = await world.discord.send_slash_command("imagine", options, user_id=user_id, guild=guild)
    data = answer(world, sent)
    assert data["flags"] & EPHEMERAL
    return str(data["content"])


async def notices(discord: FakeDiscord, channel: int, count: int) -> list[str]:
    """The titles of the moderation log's posts, once there are `count`."""
    await discord.wait_for(lambda: len(posts_to(discord, channel)) >= count, timeout=10)
    return [post["embeds"][0]["title"] for post in posts_to(discord, channel)]


async def test_members_use_up_the_servers_budget_and_the_moderators_hear_of_it_once_per_threshold(
    fakes: tuple[FakeDiscord, FakeFlux], tmp_path: Path
) -> None:
    discord, flux = fakes
    # DEV_GUILD_ID empty: the commands are global, so they work in DMs too.
    async with running_bot(discord, flux, tmp_path, DEV_GUILD_ID="", IMAGE_PRICES=PRICES) as world:
        log_channel = await discord.add_text_channel("mod-log")
        await discord.send_slash_command("fluxadmin", admin("modlog", option("channel", str(log_channel), kind=7)))
        not_a_moderator = await discord.send_slash_command(
            "fluxadmin", admin("budget", option("day", 5, kind=4)), permissions=0
        )
        assert "Manage Server" in answer(world, not_a_moderator)["content"]
        saved = await discord.send_slash_command("fluxadmin", admin("budget", option("day", 5, kind=4)))
        card = answer(world, saved)["embeds"][0]
        assert card["title"] == "fluxbot budget for this server"
        assert card["description"].startswith("✅ Saved.")
        assert fields(card)["Per UTC day"] == f"0 of 5 images used (0 %), 5 left; resets <t:{next_midnight()}:R>"
        assert fields(card)["Per UTC month"] == "off (0 images so far)"
        assert fields(card)["Notices"] == f"<#{log_channel}> gets a notice at 80 % and at 100 % of a budget"

        await made(world, "a lighthouse", user_id=ALICE)
        await made(world, "a harbour", user_id=BOB)
        await made(world, "a quiet boat", user_id=ALICE, guild=False)  # a DM counts against the server
        await made(world, "a gull", user_id=BOB)
        assert await notices(discord, log_channel, 1) == ["Server budget 80 % used today"], "at 4 of 5, not before"

        too_many = await refused(world, "two storms", user_id=ALICE, count=2)
        assert too_many == "That would make 2 images, but this server has 1 left today. Ask for 1 or fewer."
        await made(world, "the last one", user_id=ALICE)
        titles = await notices(discord, log_channel, 2)
        assert titles == ["Server budget 80 % used today", "Server budget used up today"]
        last = posts_to(discord, log_channel)[1]
        assert last["embeds"][0]["description"].startswith(
            f"This server has used 5 of its 5 images for today (UTC). New jobs are refused until it resets "
            f"<t:{next_midnight()}:R>."
        )
        assert last["allowed_mentions"]["parse"] == []

        submits = len(flux.submits)
        assert submits == 5
        assert await refused(world, "one more", user_id=BOB) == (
            f"This server has used all 5 of its images for today; it resets <t:{next_midnight()}:R>."
        )
        assert await refused(world, "one more in a DM", user_id=BOB, guild=False) == (
            f"**Fluxbot Test Guild** has used all 5 of its images for today; it resets <t:{next_midnight()}:R>."
        )
        assert len(flux.submits) == submits, "no provider call once the budget is used up"
        await asyncio.sleep(0.5)
        assert len(posts_to(discord, log_channel)) == 2, "one notice per threshold, however many refusals follow"

        usage = await discord.send_slash_command("fluxadmin", admin("usage"))
        report = answer(world, usage)["embeds"][0]
        lines = report["description"].splitlines()
        assert f"<@{ALICE}>: 3 images in 3 jobs, 0 failed · ≈ 0.036" in lines, "the DM's image among them"
        assert f"<@{BOB}>: 2 images in 2 jobs, 0 failed · ≈ 0.024" in lines
        assert "`flux-dev`: 5 images × 0.012 = 0.06" in lines
        assert f"{date_text(None, datetime.now(UTC).date())}: 5 images in 5 jobs, 0 failed · ≈ 0.06" in lines
        assert fields(report)["Estimated spend"] == "≈ 0.06"
        assert fields(report)["Server budget"] == (
            f"Today (UTC): 5 of 5 images used (100 %), 0 left; resets <t:{next_midnight()}:R>"
        )
        shown = await discord.send_slash_command("fluxadmin", admin("show"))
        assert fields(answer(world, shown)["embeds"][0])["Server budget"] == "5 images per UTC day"
        overview = await discord.send_slash_command("flux", user_id=BOB)
        assert fields(answer(world, overview)["embeds"][0])["Server budget"] == (
            f"0 of 5 images left today, resets <t:{next_midnight()}:R>"
        ), "members see what is left of the server's budget"

        raised = await discord.send_slash_command(
            "fluxadmin", admin("budget", option("day", 50, kind=4), option("month", 20, kind=4))
        )
        raised_card = answer(world, raised)["embeds"][0]
        assert "the day budget (50) is above the month's (20)" in raised_card["description"]
        assert fields(raised_card)["Per UTC month"].startswith("5 of 20 images used (25 %), 15 left; resets <t:")
        await made(world, "a new dawn", user_id=BOB)
        reset = await discord.send_slash_command("fluxadmin", admin("budget", option("reset", True, kind=5)))
        assert fields(answer(world, reset)["embeds"][0])["Per UTC day"] == "off (6 images so far)"
        assert "ERROR" not in world.bot.output


async def test_without_prices_the_usage_report_shows_images_only(world: World) -> None:
    await made(world, "a lighthouse", user_id=ALICE)
    usage = await world.discord.send_slash_command("fluxadmin", admin("usage"))
    report = answer(world, usage)["embeds"][0]
    assert f"<@{ALICE}>: 1 image in 1 job, 0 failed" in report["description"].splitlines()
    assert "≈" not in report["description"]
    assert set(fields(report)) == {"Jobs open now"}, "no spend, and no budget when the server has none"
