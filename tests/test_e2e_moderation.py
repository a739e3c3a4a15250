"""End to end: prompt moderation as a moderator and a member meet it, through the real bot and the fake Discord."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

from fluxbot.limits import SPOILER_MODES, shows_spoilers
from tests.e2e import World, final_reply, first_callback, option, running_bot
from tests.fakes.discord_api import FakeDiscord, SentInteraction
from tests.fakes.flux_api import FakeFlux
from tests.test_e2e_results import click

MEMBER = 444444444444444444
SERVER_RULE = "This server's moderators do"


def blocklist(sub: str, *options: dict[str, Any]) -> list[dict[str, Any]]:
    return [{"name": "blocklist", "type": 2, "options": [{"name": sub, "type": 1, "options": list(options)}]}]


def private_text(discord: FakeDiscord, interaction: SentInteraction) -> str:
    callbacks = discord.callbacks_for(interaction)
    assert callbacks, "not answered"
    data = callbacks[0].json["data"]
    assert data["flags"] & 64, "answered privately"
    return str(data.get("content") or data["embeds"][0].get("description", ""))


async def test_a_blocked_prompt_is_refused_before_anything_is_sent_whatever_its_spelling(
    fakes: tuple[FakeDiscord, FakeFlux], tmp_path: Path
) -> None:
    discord, flux = fakes
    operator_list = tmp_path / "blocklist.txt"
    operator_list.write_text("# the operator's own rules\nre:gore\\s*fest\n", encoding="utf-8")
    async with running_bot(discord, flux, tmp_path, BLOCKLIST_FILE=str(operator_list)) as world:
        not_a_moderator = await discord.send_slash_command(
            "fluxadmin", blocklist("add", option("rule", "nude")), permissions=0
        )
        assert "Manage Server" in private_text(discord, not_a_moderator), "the subgroup checks the permission too"

        added = await discord.send_slash_command("fluxadmin", blocklist("add", option("rule", "nude")))
        assert "Added `nude`" in private_text(discord, added)
        bad = await discord.send_slash_command("fluxadmin", blocklist("add", option("rule", "re:(a)\\1")))
        assert "no back-references" in private_text(discord, bad)

        for prompt in ("a N.U.D.E portrait", "a ｎｕｄｅ portrait", "a nu\u200bde portrait"):
            refused = await discord.send_slash_command("imagine", [option("prompt", prompt)], user_id=MEMBER)
            text = private_text(discord, refused)
            assert text == (
                "I can't send this prompt: it contains something this server's moderators do not allow. "
                "Please reword it. Nothing was made or charged."
            )
            assert "nude" not in text.lower()
        by_operator = await discord.send_slash_command("imagine", [option("prompt", "a GoreFest")], user_id=MEMBER)
        assert "the bot's operator does not allow" in private_text(discord, by_operator)
        assert flux.submits == [], "no provider call for a refused prompt"

        fine = await discord.send_slash_command("imagine", [option("prompt", "a classic nudibranch")], user_id=MEMBER)
        done = await final_reply(world, fine, "Done")
        shown = await discord.send_slash_command("fluxadmin", blocklist("show"))
        assert "`nude`" in private_text(discord, shown)
        assert "operator adds 1 rule" in discord.callbacks_for(shown)[0].json["data"]["embeds"][0]["footer"]["text"]

        # A rule added later applies to re-rolls of jobs made before it.
        await discord.send_slash_command("fluxadmin", blocklist("add", option("rule", "nudibranch")))
        reroll = await click(world, done, "reroll", user_id=MEMBER)
        assert "moderators do not allow" in private_text(discord, reroll)
        assert len(flux.submits) == 1

        removed = await discord.send_slash_command("fluxadmin", blocklist("remove", option("rule", "nudibranch")))
        assert "Removed `nudibranch`" in private_text(discord, removed)
        again = await click(world, done, "reroll", user_id=MEMBER)
        assert first_callback(world, again).json["type"] == 5, "deferred: it runs"
        await final_reply(world, again, "Done")
        ours = [line for line in world.bot.output.splitlines() if " fluxbot." in line or " cogs." in line]
        leaked = [line for line in ours if "nude" in line.replace("nudibranch", "").lower()]
        assert leaked == [], "fluxbot's log never repeats a blocked prompt (discord.py's DEBUG log shows events)"


async def test_each_refusal_is_posted_to_the_moderation_log_with_the_prompt_behind_a_spoiler(world: World) -> None:
    discord, flux = world.discord, world.flux
    log_channel = await discord.add_text_channel("mod-log")
    chosen = await discord.send_slash_command(
        "fluxadmin", [{"name": "modlog", "type": 1, "options": [option("channel", str(log_channel), kind=7)]}]
    )
    card = discord.callbacks_for(chosen)[0].json["data"]["embeds"][0]
    assert {f["name"]: f["value"] for f in card["fields"]}["Moderation log"] == f"<#{log_channel}>"
    await discord.send_slash_command("fluxadmin", blocklist("add", option("rule", "re:blood\\s*bath")))

    refused = await discord.send_slash_command("imagine", [option("prompt", "a *BLOOD* bath")], user_id=MEMBER)
    assert "moderators do not allow" in private_text(discord, refused)
    await discord.wait_for(lambda: bool(posts_to(discord, log_channel)), timeout=5)
    [post] = posts_to(discord, log_channel)
    fields = {f["name"]: f["value"] for f in post["embeds"][0]["fields"]}
    assert post["embeds"][0]["title"] == "Prompt refused"
    assert fields["Member"] == f"<@{MEMBER}>"
    assert fields["Prompt"] == "||a \\*BLOOD\\* bath||", "behind a spoiler, its markdown shown as typed"
    assert fields["Rule"] == "`re:blood\\s*bath` (this server's blocklist)"
    assert post["allowed_mentions"]["parse"] == [], "the member is named, not pinged"
    assert flux.submits == []

    await discord.send_slash_command("fluxadmin", [{"name": "modlog", "type": 1, "options": []}])
    await discord.send_slash_command("imagine", [option("prompt", "another bloodbath")], user_id=MEMBER)
    await asyncio.sleep(0.5)
    assert len(posts_to(discord, log_channel)) == 1, "no log once it is turned off"


async def test_the_moderation_log_speaks_the_servers_chosen_language_and_the_member_their_own(world: World) -> None:
    """Waits for the catalogs (admin-translations.json): the log's German."""
    discord = world.discord
    log_channel = await discord.add_text_channel("mod-log")
    german = [{"name": "language", "type": 1, "options": [option("language", "de")]}]
    await discord.send_slash_command("fluxadmin", german)
    await discord.send_slash_command(
        "fluxadmin", [{"name": "modlog", "type": 1, "options": [option("channel", str(log_channel), kind=7)]}]
    )
    await discord.send_slash_command("fluxadmin", blocklist("add", option("rule", "gore")))

    refused = await discord.send_slash_command("imagine", [option("prompt", "Gore, gore")], user_id=MEMBER,
                                               locale="fr", guild_locale="ja")  # fmt: skip
    assert private_text(discord, refused).startswith("Je ne peux pas envoyer ce prompt"), "the member's language"
    await discord.wait_for(lambda: bool(posts_to(discord, log_channel)), timeout=5)
    [embed] = posts_to(discord, log_channel)[0]["embeds"]
    assert embed["title"] == "Prompt abgelehnt", "the server's choice, over Discord's server language"
    shown = {f["name"]: f["value"] for f in embed["fields"]}
    assert shown["Mitglied"] == f"<@{MEMBER}>"
    assert shown["Prompt"] == "||Gore, gore||", "the prompt as typed, never translated"
    assert shown["Regel"] == "`gore` (Sperrliste dieses Servers)"


def posts_to(discord: FakeDiscord, channel_id: int) -> list[dict[str, Any]]:
    """The messages the bot posted in a channel."""
    return [
        r.json
        for r in discord.requests
        if r.method == "POST" and r.path.endswith(f"/channels/{channel_id}/messages") and r.status == 200
    ]


async def test_two_refusals_in_the_window_pause_the_member_until_a_moderator_pardons_them(world: World) -> None:
    discord, flux = world.discord, world.flux

    def admin(name: str, *options: dict[str, Any]) -> list[dict[str, Any]]:
        return [{"name": name, "type": 1, "options": list(options)}]

    rule = await discord.send_slash_command(
        "fluxadmin", admin("strikes", option("count", 2, kind=4), option("pause_minutes", 30, kind=4))
    )
    card = discord.callbacks_for(rule)[0].json["data"]["embeds"][0]
    fields = {f["name"]: f["value"] for f in card["fields"]}
    assert fields["Strikes"] == "2 refused prompts within 60 min pause a member for 30 min"
    await discord.send_slash_command("fluxadmin", blocklist("add", option("rule", "gore")))

    first = await discord.send_slash_command("imagine", [option("prompt", "gore")], user_id=MEMBER)
    assert "paused" not in private_text(discord, first)
    second = await discord.send_slash_command("imagine", [option("prompt", "G.O.R.E")], user_id=MEMBER)
    told = private_text(discord, second)
    assert told.startswith("I can't send this prompt"), "the refusal first"
    assert "You are paused on this server until <t:" in told
    assert "`/fluxadmin pardon`" in told
    innocent = await discord.send_slash_command("imagine", [option("prompt", "a lighthouse")], user_id=MEMBER)
    assert private_text(discord, innocent).startswith("You are paused on this server until <t:")
    other = await discord.send_slash_command("imagine", [option("prompt", "a lighthouse")])
    await final_reply(world, other, "Done")  # only that member is paused
    assert len(flux.submits) == 1

    pardoned = await discord.send_slash_command("fluxadmin", admin("pardon", option("member", str(MEMBER), kind=6)))
    assert "may use fluxbot here again" in private_text(discord, pardoned)
    again = await discord.send_slash_command("imagine", [option("prompt", "a lighthouse")], user_id=MEMBER)
    await final_reply(world, again, "Done")
    once_more = await discord.send_slash_command("imagine", [option("prompt", "gore")], user_id=MEMBER)
    assert "paused" not in private_text(discord, once_more), "the pardon forgot the earlier refusals"
    paused = await discord.send_slash_command("imagine", [option("prompt", "gore")], user_id=MEMBER)
    assert "You are paused" in private_text(discord, paused)
    await discord.send_slash_command("fluxadmin", admin("strikes", option("count", 0, kind=4)))
    freed = await discord.send_slash_command("imagine", [option("prompt", "a calm sea")], user_id=MEMBER)
    await final_reply(world, freed, "Done")  # turning strikes off ends the pauses they brought


async def test_a_server_that_chose_spoilers_gets_its_results_blurred(world: World) -> None:
    discord = world.discord

    def spoilers(mode: str) -> list[dict[str, Any]]:
        return [{"name": "spoilers", "type": 1, "options": [option("mode", mode)]}]

    chosen = await discord.send_slash_command("fluxadmin", spoilers("always"))
    card = discord.callbacks_for(chosen)[0].json["data"]["embeds"][0]
    assert {f["name"]: f["value"] for f in card["fields"]}["Results as spoilers"] == "always"
    made = await discord.send_slash_command("imagine", [option("prompt", "a foggy pier"), option("count", 2, kind=4)])
    done = await final_reply(world, made, "Done")
    assert [a["filename"] for a in done["attachments"]] == ["SPOILER_flux-1-1.png", "SPOILER_flux-1-2.png"]
    assert len(done["embeds"]) == 1, "one card, no gallery"
    assert "image" not in done["embeds"][0], "no embed shows the image"
    fields = {f["name"]: f["value"] for f in done["embeds"][0]["fields"]}
    assert fields["Originals"].startswith("||[1](")
    assert fields["Originals"].endswith("||")
    assert "blurred" in fields["Images"]
    downloads = world.flux.file_downloads
    again = await final_reply(world, await discord.send_slash_command("job", [option("number", 1, kind=4)]), "Done")
    assert [a["filename"] for a in again["attachments"]] == ["SPOILER_flux-1-1.png", "SPOILER_flux-1-2.png"]
    assert "image" not in again["embeds"][0], "shown again, still blurred"
    assert world.flux.file_downloads == downloads, "copied from Discord's copies, not from the provider"

    # This channel is not age-restricted: "outside age-restricted channels" blurs here too; "never" does not.
    await discord.send_slash_command("fluxadmin", spoilers("outside_age_restricted"))
    outside = await discord.send_slash_command("imagine", [option("prompt", "a foggy pier")])
    assert (await final_reply(world, outside, "Done"))["attachments"][0]["filename"].startswith("SPOILER_")
    await discord.send_slash_command("fluxadmin", spoilers("never"))
    plain = await discord.send_slash_command("imagine", [option("prompt", "a foggy pier")])
    shown = await final_reply(world, plain, "Done")
    assert not shown["attachments"][0]["filename"].startswith("SPOILER_")
    assert "image" in shown["embeds"][0]


def test_spoiler_modes() -> None:
    assert [shows_spoilers(mode, age_restricted=False) for mode in SPOILER_MODES] == [False, True, True]
    assert [shows_spoilers(mode, age_restricted=True) for mode in SPOILER_MODES] == [False, True, False]
