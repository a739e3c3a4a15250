"""End to end: style presets and members' defaults as moderators and members meet them, through the real bot."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from tests.e2e import EPHEMERAL, World, fields, final_reply, first_callback, option, running_bot
from tests.fakes.discord_api import FakeDiscord, SentInteraction
from tests.fakes.flux_api import FakeFlux
from tests.test_e2e_results import click

MEMBER = 444444444444444444
AUTOCOMPLETE_RESULT = 8
NOIR = "black and white, high contrast"


def style(sub: str, *options: dict[str, Any]) -> list[dict[str, Any]]:
    return [{"name": "style", "type": 2, "options": [{"name": sub, "type": 1, "options": list(options)}]}]


def admin(name: str, *options: dict[str, Any]) -> list[dict[str, Any]]:
    return [{"name": name, "type": 1, "options": list(options)}]


def private(discord: FakeDiscord, interaction: SentInteraction) -> dict[str, Any]:
    callbacks = discord.callbacks_for(interaction)
    assert callbacks, "not answered"
    data: dict[str, Any] = callbacks[0].json["data"]
    assert data["flags"] & EPHEMERAL, "answered privately"
    return data


def text_of(discord: FakeDiscord, interaction: SentInteraction) -> str:
    data = private(discord, interaction)
    return str(data.get("content") or data["embeds"][0].get("description", ""))


async def choices(discord: FakeDiscord, interaction: SentInteraction) -> list[dict[str, Any]]:
    await discord.wait_for(lambda: bool(discord.callbacks_for(interaction)), timeout=10)
    answer = discord.callbacks_for(interaction)[0].json
    assert answer["type"] == AUTOCOMPLETE_RESULT
    found: list[dict[str, Any]] = answer["data"]["choices"]
    return found


def followups(discord: FakeDiscord, interaction: SentInteraction) -> list[dict[str, Any]]:
    """The followup messages the bot sent through the interaction's token."""
    return [
        r.json
        for r in discord.requests
        if r.method == "POST" and r.path.endswith(f"/webhooks/{discord.application_id}/{interaction.token}")
    ]


async def test_a_style_picked_through_autocomplete_shapes_the_job_its_reroll_and_its_details(world: World) -> None:
    discord, flux = world.discord, world.flux
    add = style(
        "add",
        option("name", "Film Noir"),
        option("text", NOIR),
        option("model", "flux-pro-1.1"),
        option("size", "1344x768"),
    )
    not_a_moderator = await discord.send_slash_command("fluxadmin", add, user_id=MEMBER, permissions=0)
    assert "Manage Server" in text_of(discord, not_a_moderator)
    added = await discord.send_slash_command("fluxadmin", add)
    assert text_of(discord, added).startswith("✅ Added `film noir`.")
    again = await discord.send_slash_command("fluxadmin", add)
    assert "There is a style called `film noir` already" in text_of(discord, again)
    wrong_size = await discord.send_slash_command(
        "fluxadmin",
        style("add", option("name", "wide"), option("text", "wide"), option("model", "flux-pro-1.1-ultra"),
              option("size", "1344x768")),
    )  # fmt: skip
    assert "(model `flux-pro-1.1-ultra`)" in text_of(discord, wrong_size)
    await discord.send_slash_command("fluxadmin", style("add", option("name", "sketch"), option("text", "pencil")))
    shown = await discord.send_slash_command("fluxadmin", [{"name": "show", "type": 1, "options": []}])
    assert fields(first_callback(world, shown).json["data"]["embeds"][0])["Styles"] == "`film noir`, `sketch`"

    offered = await discord.send_autocomplete(
        "imagine", [option("prompt", "a rainy street"), option("style", "NOI")], "style", user_id=MEMBER
    )
    assert await choices(discord, offered) == [
        {"name": f"film noir · {NOIR} (model `flux-pro-1.1`, size `1344x768`)", "value": "film noir"}
    ]
    every = await discord.send_autocomplete("edit", [option("style", "")], "style", user_id=MEMBER)
    assert [c["value"] for c in await choices(discord, every)] == ["film noir", "sketch"]
    sizes = await discord.send_autocomplete("imagine", [option("style", "film noir"), option("size", "")], "size")
    assert "1344x768" in [c["value"] for c in await choices(discord, sizes)], "sizes follow the style's model"

    made = await discord.send_slash_command(
        "imagine", [option("prompt", "a rainy street"), option("style", "film noir")], user_id=MEMBER
    )
    done = await final_reply(world, made, "Done")
    [sent] = flux.submits
    assert (sent["prompt"], sent["model"], sent["size"]) == (f"a rainy street, {NOIR}", "flux-pro-1.1", "1344x768")
    details = await click(world, done, "details", user_id=MEMBER)
    info = fields(first_callback(world, details).json["data"]["embeds"][0])
    assert info["Style"].startswith("`film noir`")
    assert "flux-pro-1.1" in info["Model"]

    # A moderator changes the style: a re-roll of the older job still looks as it did.
    await discord.send_slash_command("fluxadmin", style("remove", option("name", "FILM NOIR")))
    await discord.send_slash_command("fluxadmin", style("add", option("name", "film noir"), option("text", "sepia")))
    reroll = await click(world, done, "reroll", user_id=MEMBER)
    rerolled = await final_reply(world, reroll, "Done")
    assert flux.submits[1] == sent, "the same final prompt, model and size"
    details = await click(world, rerolled, "details", user_id=MEMBER)
    assert fields(first_callback(world, details).json["data"]["embeds"][0])["Style"].startswith("`film noir`")

    unknown = await discord.send_slash_command(
        "imagine", [option("prompt", "a cat"), option("style", "watercolour")], user_id=MEMBER
    )
    assert text_of(discord, unknown) == (
        "`watercolour` is not a style here. Pick one of `sketch`, `film noir`, or leave `style` out."
    )
    too_long = await discord.send_slash_command(
        "imagine", [option("prompt", "x" * 1499), option("style", "sketch")], user_id=MEMBER
    )
    assert "With the style `sketch`" in text_of(discord, too_long)
    assert len(flux.submits) == 2, "nothing sent for a refused style"
    listed = await discord.send_slash_command("fluxadmin", style("list"))
    assert "**sketch**: pencil\n**film noir**: sepia" in text_of(discord, listed)


async def test_settings_change_what_the_next_imagine_sends_and_a_default_not_allowed_falls_back_with_a_note(
    world: World,
) -> None:
    discord, flux = world.discord, world.flux
    unknown = await discord.send_slash_command("settings", [option("model", "dall-e")], user_id=MEMBER)
    assert "`dall-e` is not a model of this bot's provider. Pick one of `flux-dev`" in text_of(discord, unknown)
    chosen = await discord.send_slash_command(
        "settings", [option("model", "flux-pro"), option("count", 2, kind=4)], user_id=MEMBER
    )
    card = private(discord, chosen)["embeds"][0]
    assert card["description"].startswith("✅ Saved.")
    assert fields(card)["Your defaults (/settings)"] == "model `flux-pro`, count 2"
    assert fields(card)["Here, /imagine without options uses"] == (
        "model `flux-pro`, size `1024x1024`, count 2, no style"
    )

    first = await discord.send_slash_command("imagine", [option("prompt", "a lighthouse")], user_id=MEMBER)
    await final_reply(world, first, "Done")
    assert (flux.submits[0]["model"], flux.submits[0]["count"]) == ("flux-pro", 2)
    typed = await discord.send_slash_command(
        "imagine", [option("prompt", "a lighthouse"), option("count", 1, kind=4)], user_id=MEMBER
    )
    await final_reply(world, typed, "Done")
    assert (flux.submits[1]["model"], flux.submits[1]["count"]) == ("flux-pro", 1), "what is typed wins"
    others = await discord.send_slash_command("imagine", [option("prompt", "a lighthouse")])
    await final_reply(world, others, "Done")
    assert (flux.submits[2]["model"], flux.submits[2]["count"]) == ("flux-dev", 1), "another member's are their own"
    assert followups(discord, first) == [], "nothing to note when every default applies"

    await discord.send_slash_command(
        "fluxadmin", admin("models", option("default", "flux-dev"), option("allowed", "flux-dev, flux-pro-1.1"))
    )
    fallback = await discord.send_slash_command("imagine", [option("prompt", "a harbour")], user_id=MEMBER)
    shown = await final_reply(world, fallback, "Done")
    assert (flux.submits[3]["model"], flux.submits[3]["count"]) == ("flux-dev", 2), "the count still applies"
    await discord.wait_for(lambda: bool(followups(discord, fallback)), timeout=10)
    [note] = followups(discord, fallback)
    assert note["flags"] & EPHEMERAL, "the note is private"
    assert note["content"] == (
        "Some of your choices were not used here:\n"
        "• Your default model `flux-pro` is not enabled on this server, so `flux-dev` was used.\n"
        "See or change your defaults with `/settings`."
    )
    assert "flux-pro`" not in str(shown), "the public card says nothing of it"

    overview = await discord.send_slash_command("flux", user_id=MEMBER)
    card = fields(private(discord, overview)["embeds"][0])
    assert card["Your defaults (/settings)"] == "model `flux-pro`, count 2", "kept: other servers may allow it"
    assert card["Here, /imagine without options uses"] == (
        "model `flux-dev`, size `1024x1024`, count 2, no style\n"
        "• Your default model `flux-pro` is not enabled on this server, so `flux-dev` was used."
    )
    cleared = await discord.send_slash_command("settings", [option("reset", True, kind=5)], user_id=MEMBER)
    assert fields(private(discord, cleared)["embeds"][0])["Your defaults (/settings)"].startswith("none chosen")
    plain = await discord.send_slash_command("imagine", [option("prompt", "a harbour")], user_id=MEMBER)
    await final_reply(world, plain, "Done")
    assert flux.submits[4]["count"] == 1


async def test_a_default_style_applies_and_in_a_dm_the_styles_are_those_of_the_members_server(
    fakes: tuple[FakeDiscord, FakeFlux], tmp_path: Path
) -> None:
    discord, flux = fakes
    async with running_bot(discord, flux, tmp_path, DEV_GUILD_ID="") as world:
        discord.set_member(MEMBER, [])
        await discord.send_slash_command("fluxadmin", style("add", option("name", "sketch"), option("text", "pencil")))
        offered = await discord.send_autocomplete(
            "settings", [option("style", "sk")], "style", user_id=MEMBER, guild=False
        )
        assert [c["value"] for c in await choices(discord, offered)] == ["sketch"]
        in_dm = await discord.send_autocomplete("imagine", [option("style", "")], "style", user_id=MEMBER, guild=False)
        assert [c["value"] for c in await choices(discord, in_dm)] == ["sketch"], "the DM follows the member's server"

        await discord.send_slash_command("settings", [option("style", "Sketch")], user_id=MEMBER, guild=False)
        made = await discord.send_slash_command("imagine", [option("prompt", "a boat")], user_id=MEMBER, guild=False)
        await final_reply(world, made, "Done")
        assert flux.submits[0]["prompt"] == "a boat, pencil"

        await discord.send_slash_command("fluxadmin", style("remove", option("name", "sketch")))
        gone = await discord.send_slash_command("imagine", [option("prompt", "a boat")], user_id=MEMBER)
        await final_reply(world, gone, "Done")
        assert flux.submits[1]["prompt"] == "a boat", "a default style this server lacks is left out"
        await discord.wait_for(lambda: bool(followups(discord, gone)), timeout=10)
        assert "Your default style `sketch` is not a style here, so no style was used." in str(
            followups(discord, gone)[0]["content"]
        )
