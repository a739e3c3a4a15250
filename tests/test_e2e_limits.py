"""End to end: member limits and the fair queue under simultaneous commands, and the moderator settings."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
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

ALICE, BOB, CAROL = 333333333333333333, 444444444444444444, 555555555555555555


async def at_once(world: World, commands: list[tuple[int, str]]) -> list[SentInteraction]:
    """Send /imagine commands from several members at the same instant."""
    return await asyncio.gather(
        *(world.discord.send_slash_command("imagine", [option("prompt", p)], user_id=u) for u, p in commands)
    )


def answer(world: World, interaction: SentInteraction) -> dict[str, Any]:
    body: dict[str, Any] = first_callback(world, interaction).json
    return body


async def place_in_line(world: World, interaction: SentInteraction, place: str) -> None:
    def shown() -> bool:
        message = world.discord.original_response(interaction)
        embeds = (message or {}).get("embeds") or []
        return bool(embeds) and fields(embeds[0]).get("Place in line", "").startswith(place)

    await world.discord.wait_for(shown)


async def test_limits_and_the_queue_hold_under_simultaneous_commands_and_a_restart(
    fakes: tuple[FakeDiscord, FakeFlux], tmp_path: Path
) -> None:
    discord, flux = fakes
    flux.hold = True
    async with running_bot(discord, flux, tmp_path, MAX_JOBS_PER_MEMBER="2", MAX_JOBS_IN_FLIGHT="2") as world:
        alice = await at_once(world, [(ALICE, f"alice {n}") for n in range(4)])
        accepted = [i for i in alice if answer(world, i)["type"] == DEFERRED_CHANNEL_MESSAGE]
        refused = [i for i in alice if answer(world, i)["type"] != DEFERRED_CHANNEL_MESSAGE]
        assert len(accepted) == 2, "no member exceeds the limit, even at the same instant"
        for interaction in refused:
            data = answer(world, interaction)["data"]
            assert data["flags"] & EPHEMERAL
            assert "limit here is 2" in data["content"]
        await flux.wait_for_submits(2)

        bob = await at_once(world, [(BOB, "bob first")])
        bob += await at_once(world, [(BOB, "bob second")])
        assert all(answer(world, i)["type"] == DEFERRED_CHANNEL_MESSAGE for i in bob), (
            "beyond the global cap, jobs are queued"
        )
        await place_in_line(world, bob[0], "#1")
        await place_in_line(world, bob[1], "#2")
        assert len(flux.submits) == 2, "nothing beyond the cap reaches the provider"

        await world.restart()  # the queue lives in SQLite
        first_alice = next(t for t in flux.tasks.values() if t.request["prompt"] == flux.submits[0]["prompt"])
        flux.finish(first_alice.id)
        await flux.wait_for_submits(3)
        assert flux.submits[2]["prompt"] == "bob first", "the queue starts jobs in arrival order"
        await place_in_line(world, bob[1], "#1")
        second_alice = next(t for t in flux.tasks.values() if t.request["prompt"] == flux.submits[1]["prompt"])
        flux.finish(second_alice.id)
        await flux.wait_for_submits(4)
        assert flux.submits[3]["prompt"] == "bob second"
        flux.hold = False
        for interaction in [*accepted, *bob]:
            await final_reply(world, interaction, "Done")


async def test_admin_commands_need_manage_server_at_run_time(world: World) -> None:
    refused = await world.discord.send_slash_command("fluxadmin", [{"name": "show", "type": 1}], permissions=0)
    data = answer(world, refused)["data"]
    assert data["flags"] & EPHEMERAL
    assert "Manage Server" in data["content"]
    await asyncio.sleep(0.3)
    followups = [r for r in world.discord.requests if refused.token in r.path and "/callback" not in r.path]
    assert followups == [], "the refusal is the only answer"
    assert "ERROR" not in world.bot.output
    shown = await world.discord.send_slash_command("fluxadmin", [{"name": "show", "type": 1}])
    assert answer(world, shown)["data"]["embeds"][0]["title"] == "fluxbot settings for this server"


def admin(sub: str, *options: dict[str, Any]) -> list[dict[str, Any]]:
    return [{"name": sub, "type": 1, "options": list(options)}]


async def test_settings_changes_take_effect_at_once(world: World) -> None:
    discord = world.discord
    changed = await discord.send_slash_command("fluxadmin", admin("limits", option("daily_images", 1, kind=4)))
    assert "Saved" in answer(world, changed)["data"]["embeds"][0]["description"]
    looser = await discord.send_slash_command("fluxadmin", admin("limits", option("member_jobs", 9, kind=4)))
    card = answer(world, looser)["data"]["embeds"][0]
    assert "jobs at once: 9 is capped at the operator's 2" in card["description"]
    assert fields(card)["Jobs at once per member"] == "2"
    first = await discord.send_slash_command("imagine", [option("prompt", "my one image")])
    await final_reply(world, first, "Done")
    second = await discord.send_slash_command("imagine", [option("prompt", "one too many")])
    assert "all 1 of your images for today" in answer(world, second)["data"]["content"]
    overview = await discord.send_slash_command("flux")
    card = fields(answer(world, overview)["data"]["embeds"][0])
    assert card["Images today"].startswith("0 of 1 left")

    await discord.send_slash_command("fluxadmin", admin("limits", option("reset", True, kind=5)))
    await discord.send_slash_command("fluxadmin", admin("models", option("allowed", "flux-pro-1.1, flux-2-pro")))
    picked = await discord.send_slash_command("imagine", [option("prompt", "x"), option("model", "flux-dev")])
    assert "`flux-dev` is not enabled on this server" in answer(world, picked)["data"]["content"]
    overview = await discord.send_slash_command("flux")
    card = fields(answer(world, overview)["data"]["embeds"][0])
    assert (card["Models"], card["Default model"]) == ("`flux-pro-1.1`, `flux-2-pro`", "`flux-pro-1.1`")
    default = await discord.send_slash_command("imagine", [option("prompt", "the server's default model")])
    await final_reply(world, default, "Done")
    assert flux_models(world) == ["flux-dev", "flux-pro-1.1"]

    art = await discord.add_text_channel("art")
    added = await discord.send_slash_command("fluxadmin", admin("channels", option("add", str(art), kind=7)))
    assert f"<#{art}>" in fields(answer(world, added)["data"]["embeds"][0])["Channels"]
    elsewhere = await discord.send_slash_command("imagine", [option("prompt", "wrong place")])
    assert f"you can use me in <#{art}>" in answer(world, elsewhere)["data"]["content"]
    there = await discord.send_slash_command("imagine", [option("prompt", "right place")], channel_id=art)
    assert answer(world, there)["type"] == DEFERRED_CHANNEL_MESSAGE
    await world.flux.wait_for_submits(3)


async def test_two_moderators_changing_settings_at_once_keep_both_changes(world: World) -> None:
    discord = world.discord
    art = await discord.add_text_channel("art")
    await asyncio.gather(
        discord.send_slash_command("fluxadmin", admin("channels", option("add", str(art), kind=7))),
        discord.send_slash_command("fluxadmin", admin("limits", option("daily_images", 3, kind=4)), user_id=BOB),
        discord.send_slash_command("fluxadmin", admin("models", option("default", "flux-pro")), user_id=ALICE),
    )
    shown = await discord.send_slash_command("fluxadmin", admin("show"))
    card = fields(answer(world, shown)["data"]["embeds"][0])
    assert (card["Channels"], card["Images per member per day"], card["Default model"]) == (
        f"<#{art}>",
        "3 (UTC day)",
        "`flux-pro`",
    )


async def test_invalid_model_settings_are_refused_and_change_nothing(world: World) -> None:
    discord = world.discord

    async def refusal(*options: dict[str, Any]) -> str:
        sent = await discord.send_slash_command("fluxadmin", admin("models", *options))
        data = answer(world, sent)["data"]
        assert data["flags"] & EPHEMERAL
        return str(data["content"])

    assert "`flux-9` is not a model of this bot's provider" in await refusal(option("default", "flux-9"))
    assert "`flux-9` is not a model I know. Use `all`" in await refusal(option("allowed", "flux-dev, flux-9"))
    assert "Name at least one model. Use `all`" in await refusal(option("allowed", " , "))
    await discord.send_slash_command("fluxadmin", admin("models", option("allowed", "flux-pro, flux-dev")))
    assert "The default model `flux-2-pro` must be one of the allowed models" in await refusal(
        option("default", "flux-2-pro")
    )
    shown = await discord.send_slash_command("fluxadmin", admin("show"))
    card = fields(answer(world, shown)["data"]["embeds"][0])
    assert (card["Default model"], card["Allowed models"]) == ("`flux-dev`", "`flux-pro`, `flux-dev`")


async def test_each_server_chooses_whether_its_members_use_the_bot_in_dms(
    fakes: tuple[FakeDiscord, FakeFlux], tmp_path: Path
) -> None:
    discord, flux = fakes
    async with running_bot(discord, flux, tmp_path, DEV_GUILD_ID="", DAILY_IMAGES_PER_MEMBER="50") as world:
        in_dm = await discord.send_slash_command("imagine", [option("prompt", "a quiet harbour")], guild=False)
        assert answer(world, in_dm)["type"] == DEFERRED_CHANNEL_MESSAGE
        await final_reply(world, in_dm, "Done")
        assert [r.path for r in discord.requests if "/members/" in r.path] == [
            f"/api/v10/guilds/{discord.guild_id}/members/{discord.user_id}"
        ], "the bot asks Discord which servers the member shares with it"

        await discord.send_slash_command("fluxadmin", admin("limits", option("daily_images", 2, kind=4)))
        overview = await discord.send_slash_command("flux", guild=False)
        card = fields(answer(world, overview)["data"]["embeds"][0])
        assert card["Images today"].startswith("1 of 2 left"), "a DM follows the member's server's limits"

        await discord.send_slash_command("fluxadmin", admin("dms", option("allowed", False, kind=5)))
        closed = await discord.send_slash_command("imagine", [option("prompt", "another harbour")], guild=False)
        data = answer(world, closed)["data"]
        assert data["flags"] & EPHEMERAL
        assert data["content"] == (
            "The moderators of **Fluxbot Test Guild** have turned off fluxbot in direct messages. "
            "Please use me in a channel there."
        )
        shown = await discord.send_slash_command("fluxadmin", admin("show"))
        assert fields(answer(world, shown)["data"]["embeds"][0])["Direct messages"] == "off for this server's members"

        artist = await discord.add_role("Artist")
        await discord.send_slash_command("fluxadmin", admin("dms", option("allowed", True, kind=5)))
        await discord.send_slash_command("fluxadmin", admin("role", option("role", str(artist), kind=8)))
        discord.set_member(BOB, [])
        no_role = await discord.send_slash_command(
            "imagine", [option("prompt", "bob's boat")], guild=False, user_id=BOB
        )
        assert answer(world, no_role)["data"]["content"] == (
            "To use me in direct messages you need the **Artist** role on **Fluxbot Test Guild**. "
            "Ask a moderator, or use me in a channel there."
        )
        discord.set_member(ALICE, [artist])
        has_role = await discord.send_slash_command(
            "imagine", [option("prompt", "alice's boat")], guild=False, user_id=ALICE
        )
        await final_reply(world, has_role, "Done")
        assert [body["prompt"] for body in flux.submits] == ["a quiet harbour", "alice's boat"]

        discord.fail_next("GET", r"/members/\d+$", 403, {"message": "Missing Access", "code": 50001})
        unknown = await discord.send_slash_command("imagine", [option("prompt", "x")], guild=False, user_id=CAROL)
        assert answer(world, unknown)["data"]["content"].startswith("I couldn't check which servers we share just now.")
        assert len(flux.submits) == 2


async def test_the_operator_can_refuse_all_direct_messages(fakes: tuple[FakeDiscord, FakeFlux], tmp_path: Path) -> None:
    discord, flux = fakes
    async with running_bot(discord, flux, tmp_path, DEV_GUILD_ID="", SERVE_DMS="false") as world:
        in_dm = await discord.send_slash_command("imagine", [option("prompt", "a quiet harbour")], guild=False)
        assert answer(world, in_dm)["data"]["content"] == (
            "I don't take commands in direct messages. Please use me in a server we share."
        )
        shown = await discord.send_slash_command("fluxadmin", admin("show"))
        card = fields(answer(world, shown)["data"]["embeds"][0])
        assert card["Direct messages"] == "off: the bot's operator does not serve DMs (SERVE_DMS)"
        assert flux.submits == []


def utc_today() -> str:
    """Today's UTC date as the usage report writes it in English."""
    return date_text(None, datetime.now(UTC).date())


def flux_models(world: World) -> list[str]:
    return [body["model"] for body in world.flux.submits]


async def test_moderators_cancel_queued_jobs_and_see_usage(fakes: tuple[FakeDiscord, FakeFlux], tmp_path: Path) -> None:
    discord, flux = fakes
    flux.hold = True
    started = utc_today()  # either date is right for a test that runs across midnight
    async with running_bot(discord, flux, tmp_path, MAX_JOBS_IN_FLIGHT="1", MAX_JOBS_PER_MEMBER="5") as world:
        running = await discord.send_slash_command("imagine", [option("prompt", "at the provider")])
        await final_reply(world, running, "Flux is working on it")
        waiting = await discord.send_slash_command("imagine", [option("prompt", "in line")])
        await place_in_line(world, waiting, "#1")

        cancel = await discord.send_slash_command(
            "fluxadmin", admin("cancel", option("member", str(discord.user_id), kind=6))
        )
        await discord.wait_for(lambda: len(discord.callbacks_for(cancel)) == 1)
        cancelled = await final_reply(world, waiting, "Failed")
        assert "moderator cancelled this job" in fields(cancelled["embeds"][0])["What happened"]
        assert len(flux.submits) == 1

        usage = await discord.send_slash_command("fluxadmin", admin("usage"))
        report = answer(world, usage)["data"]["embeds"][0]
        assert report["title"] == "fluxbot usage, the last 7 days (UTC)"
        member, per_day = report["description"].split("**Per day**")
        assert member.splitlines() == ["**Per member**", f"<@{discord.user_id}>: 1 image in 2 jobs, 1 failed"]
        assert per_day.strip() in {f"{day}: 1 image in 2 jobs, 1 failed" for day in (started, utc_today())}
        assert fields(report)["Jobs open now"] == "1 submitted"
        one_day = await discord.send_slash_command("fluxadmin", admin("usage", option("days", 1, kind=4)))
        assert answer(world, one_day)["data"]["embeds"][0]["title"] == "fluxbot usage, today (UTC)"


async def test_a_command_that_cannot_be_acknowledged_does_not_hold_a_place(
    fakes: tuple[FakeDiscord, FakeFlux], tmp_path: Path
) -> None:
    discord, flux = fakes
    async with running_bot(discord, flux, tmp_path, MAX_JOBS_PER_MEMBER="1") as world:
        unknown = {"message": "Unknown interaction", "code": 10062}
        discord.fail_next("POST", r"/callback$", 404, unknown)
        await discord.send_slash_command("imagine", [option("prompt", "too late")])
        await discord.wait_for(lambda: "abandoned before it started" in world.bot.output)
        retry = await discord.send_slash_command("imagine", [option("prompt", "second try")])
        assert answer(world, retry)["type"] == DEFERRED_CHANNEL_MESSAGE, (
            "the lost command does not count against the limit"
        )
        await final_reply(world, retry, "Done")
        assert [b["prompt"] for b in flux.submits] == ["second try"]


async def test_a_dm_from_someone_who_shares_no_server_is_refused_and_says_why(
    fakes: tuple[FakeDiscord, FakeFlux], tmp_path: Path
) -> None:
    """Leaving (or being kicked from) a server must not lift its rules: with no shared server, no DM service."""
    discord, flux = fakes
    async with running_bot(discord, flux, tmp_path, DEV_GUILD_ID="", DAILY_IMAGES_PER_MEMBER="50") as world:
        discord.set_member(CAROL, None)  # left the only server
        refused = await discord.send_slash_command(
            "imagine", [option("prompt", "a harbour")], guild=False, user_id=CAROL
        )
        data = answer(world, refused)["data"]
        assert data["flags"] & EPHEMERAL
        assert data["content"] == (
            "In direct messages I follow the rules of a server we share, and we share none. Please use me in a "
            "channel of a server I'm in, or ask its moderators to add me."
        )
        assert flux.submits == []
