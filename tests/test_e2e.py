"""End to end: the real bot.py process and the real discord.py against the fake Discord and fake Flux API."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from tests.botprocess import BotProcess
from tests.e2e import (
    CHANNEL_MESSAGE,
    DEFERRED_CHANNEL_MESSAGE,
    EPHEMERAL,
    World,
    bot_env,
    delivered_via,
    fields,
    final_reply,
    first_callback,
    held_job,
    job_requests,
    last_edit,
    option,
    running_bot,
)
from tests.fakes.discord_api import FakeDiscord
from tests.fakes.flux_api import FakeFlux, envelope

# -- tests -----------------------------------------------------------------------------------------


async def test_commands_are_synced_globally_once_with_their_options(
    fakes: tuple[FakeDiscord, FakeFlux], tmp_path: Path
) -> None:
    discord, flux = fakes
    bot = BotProcess(bot_env(discord, flux, tmp_path, DEV_GUILD_ID=""), tmp_path)
    await bot.start()
    try:
        await discord.wait_for(lambda: bool(discord.commands.get("global")), timeout=30)
        commands = {c["name"]: c for c in discord.commands["global"]}
        assert set(commands) == {"imagine", "edit", "jobs", "job", "Edit with Flux", "flux", "settings", "fluxadmin"}
        assert commands["Edit with Flux"]["type"] == 3, "a message context menu"
        admin = commands["fluxadmin"]
        assert int(admin["default_member_permissions"]) == 1 << 5, "visible only with Manage Server"
        assert {o["name"] for o in admin["options"]} == {
            "show",
            "models",
            "channels",
            "role",
            "limits",
            "budget",
            "dms",
            "usage",
            "cancel",
            "blocklist",
            "modlog",
            "strikes",
            "pardon",
            "safety",
            "spoilers",
            "style",
            "language",
        }
        blocklist = {o["name"]: o for o in admin["options"]}["blocklist"]
        assert blocklist["type"] == 2, "a subcommand group"
        assert [o["name"] for o in blocklist["options"]] == ["add", "remove", "show"]
        styles = {o["name"]: o for o in admin["options"]}["style"]
        assert [o["name"] for o in styles["options"]] == ["add", "remove", "list"]

        imagine = {o["name"]: o for o in commands["imagine"]["options"]}
        assert list(imagine) == ["prompt", "model", "size", "count", "style"]
        assert (imagine["prompt"]["type"], imagine["prompt"]["required"]) == (3, True)
        assert [c["value"] for c in imagine["model"]["choices"]] == [
            "flux-dev", "flux-pro", "flux-pro-1.1", "flux-pro-1.1-ultra", "flux-kontext-pro",
            "flux-kontext-max", "flux-2-flex", "flux-2-pro", "flux-2-max", "flux-2-klein",
        ]  # fmt: skip
        assert imagine["size"]["autocomplete"] is True
        assert (imagine["count"]["type"], imagine["count"]["min_value"], imagine["count"]["max_value"]) == (4, 1, 4)
        assert not imagine["count"].get("required", False), "left out, it takes the member's default"
        assert (imagine["style"]["type"], imagine["style"]["autocomplete"]) == (3, True)

        edit = {o["name"]: o for o in commands["edit"]["options"]}
        assert list(edit) == ["image", "prompt", "model", "size", "style"]
        assert (edit["image"]["type"], edit["image"]["required"]) == (11, True)
        assert [c["value"] for c in edit["model"]["choices"]] == ["flux-kontext-pro", "flux-kontext-max"]
        assert not edit["size"].get("required", False)

        syncs = [r for r in discord.requests if r.method == "PUT" and r.path.endswith("/commands")]
        assert len(syncs) == 1
        # The commands' hash is stored after Discord answered the sync: stop only once it is (the log says so).
        await discord.wait_for(lambda: "command(s) globally" in bot.output, timeout=30)
        await bot.stop()
        await bot.start()
        await discord.wait_for(lambda: bot.output.count("commands unchanged") == 1, timeout=30)
        syncs = [r for r in discord.requests if r.method == "PUT" and r.path.endswith("/commands")]
        assert len(syncs) == 1, "an unchanged command set is not synced again on restart"
    finally:
        await bot.stop()


async def test_dev_guild_gets_the_commands_at_start_up(world: World) -> None:
    names = {c["name"] for c in world.discord.commands[str(world.discord.guild_id)]}
    assert names == {"imagine", "edit", "jobs", "job", "Edit with Flux", "flux", "settings", "fluxadmin"}
    assert "global" not in world.discord.commands


async def test_imagine_is_deferred_and_the_reply_becomes_four_images(world: World) -> None:
    world.flux.lookups_before_done = 3
    interaction = await world.discord.send_slash_command(
        "imagine",
        [option("prompt", "a white siamese cat"), option("model", "flux-pro-1.1"), option("size", "1024x768"),
         option("count", 4, kind=4)],
    )  # fmt: skip
    callback = first_callback(world, interaction)
    assert callback.json["type"] == DEFERRED_CHANNEL_MESSAGE
    assert not (callback.json.get("data") or {}).get("flags", 0) & EPHEMERAL

    queued = await final_reply(world, interaction, "Flux is working on it")
    card = fields(queued["embeds"][0])
    [task_id] = world.flux.tasks
    assert card["Task"] == f"`{task_id}`"
    assert (card["Size"], card["Images"]) == ("`1024x768`", "4")
    assert "flux-pro-1.1" in card["Model"]
    assert "Elapsed" in card
    assert "a white siamese cat" in queued["embeds"][0]["description"]

    done = await final_reply(world, interaction, "Done")
    embeds = done["embeds"]
    assert len(embeds) == 4
    names = [f"flux-1-{n}.png" for n in range(1, 5)]
    assert [e["image"]["url"] for e in embeds] == [f"attachment://{name}" for name in names]
    assert len({e["url"] for e in embeds}) == 1, "embeds sharing one url show as a gallery"
    assert [a["filename"] for a in done["attachments"]] == names
    result = fields(embeds[0])
    assert result["Seeds"] == "1000, 1001, 1002, 1003"
    assert ("`flux-pro-1.1`" in result["Model"], result["Size"]) == (True, "`1024x768`")
    assert "a white siamese cat" in embeds[0]["description"]
    originals = [f"{world.flux.base_url}/files/{task_id}/{i}.png" for i in range(4)]
    assert all(url in result["Originals"] for url in originals)
    upload = last_edit(world, interaction)
    assert [(f.filename, f.data) for f in upload.files] == [(name, world.flux.image_bytes) for name in names], (
        "real PNG bytes reach Discord as multipart files"
    )
    assert "a white siamese cat" in embeds[0]["description"]
    assert world.flux.submits == [
        {"action": "generate", "prompt": "a white siamese cat", "model": "flux-pro-1.1", "size": "1024x768",
         "count": 4, "async": True}
    ]  # fmt: skip
    assert all(body["action"] == "retrieve_batch" for body in world.flux.lookups)


async def test_edit_sends_the_attachment_url_with_a_kontext_model(world: World) -> None:
    photo = world.discord.make_attachment("photo.png", "image/png", 120_000, width=1080, height=1920)
    interaction = await world.discord.send_slash_command(
        "edit",
        [option("image", photo["id"], kind=11), option("prompt", "make the cat blue")],
        attachments=[photo],
    )
    assert first_callback(world, interaction).json["type"] == DEFERRED_CHANNEL_MESSAGE
    done = await final_reply(world, interaction, "Done")
    assert world.flux.submits == [
        {"action": "edit", "prompt": "make the cat blue", "model": "flux-kontext-pro", "size": "9:16",
         "image_url": photo["url"], "async": True}
    ]  # fmt: skip
    assert len(done["embeds"]) == 1


@pytest.mark.parametrize(
    ("command", "options", "says"),
    [
        ("imagine", [option("prompt", "a cat"), option("size", "1000x1000")], "not a multiple of 32"),
        ("imagine", [option("prompt", "a cat"), option("size", "4096x4096")], "out of range"),
        ("imagine", [option("prompt", "   ")], "prompt is empty"),
        ("imagine", [option("prompt", "x" * 1501)], "the limit is 1,500"),
        ("imagine", [option("prompt", "a cat"), option("model", "flux-kontext-pro"), option("size", "1024x1024")],
         "aspect ratio"),
        ("edit", "notes.txt", "not an image"),
    ],
)  # fmt: skip
async def test_invalid_input_gets_an_ephemeral_message_and_no_api_call(
    world: World, command: str, options: Any, says: str
) -> None:
    attachments = None
    if options == "notes.txt":
        notes = world.discord.make_attachment("notes.txt", "text/plain; charset=utf-8", 120)
        options, attachments = [option("image", notes["id"], kind=11), option("prompt", "make it blue")], [notes]
    interaction = await world.discord.send_slash_command(command, options, attachments=attachments)
    await world.discord.wait_for(lambda: bool(world.discord.callbacks_for(interaction)))
    callback = first_callback(world, interaction)
    assert callback.json["type"] == CHANNEL_MESSAGE
    assert callback.json["data"]["flags"] & EPHEMERAL
    assert says in callback.json["data"]["content"]
    assert job_requests(world.flux) == []


async def test_kontext_sizes_are_offered_for_a_kontext_model(world: World) -> None:
    interaction = await world.discord.send_autocomplete(
        "imagine", [option("prompt", "cat"), option("model", "flux-kontext-pro"), option("size", "16")], "size"
    )
    await world.discord.wait_for(lambda: bool(world.discord.callbacks_for(interaction)))
    choices = first_callback(world, interaction).json["data"]["choices"]
    assert [c["value"] for c in choices] == ["16:9"]
    interaction = await world.discord.send_autocomplete("imagine", [option("size", "")], "size")
    await world.discord.wait_for(lambda: bool(world.discord.callbacks_for(interaction)))
    assert "1024x1024" in [c["value"] for c in first_callback(world, interaction).json["data"]["choices"]]


async def test_a_provider_error_is_shown_in_plain_words(world: World) -> None:
    world.flux.script("/flux/images", 403, envelope("used_up", "insufficient balance"))
    interaction = await world.discord.send_slash_command("imagine", [option("prompt", "a cat")])
    failed = await final_reply(world, interaction, "Failed")
    assert "out of credit" in fields(failed["embeds"][0])["What happened"]
    assert "operator action needed" in world.bot.output


async def test_a_job_survives_sigkill_and_is_delivered_after_restart(world: World) -> None:
    interaction, _, task_id = await held_job(world, "a lighthouse at dusk")

    await world.bot.kill()
    world.flux.finish(task_id)
    await world.restart()

    done = await final_reply(world, interaction, "Done")
    assert f"{world.flux.base_url}/files/{task_id}/0.png" in fields(done["embeds"][0])["Originals"]
    assert len(world.flux.submits) == 1, "the job was not sent twice"
    assert "took over 1 job(s) of an earlier run: 1 to follow" in world.bot.output


async def test_a_job_killed_before_its_task_id_was_stored_is_closed_clearly(world: World) -> None:
    world.flux.submit_delay = 30
    interaction = await world.discord.send_slash_command("imagine", [option("prompt", "a red fox")])
    await world.flux.wait_for_submits(1)
    await world.bot.kill()
    world.flux.submit_delay = 0
    await world.restart()

    failed = await final_reply(world, interaction, "Failed")
    assert "restarted while it was sending this job" in fields(failed["embeds"][0])["What happened"]
    assert "run the command again" in fields(failed["embeds"][0])["What happened"]


async def test_a_job_the_provider_never_finishes_times_out(fakes: tuple[FakeDiscord, FakeFlux], tmp_path: Path) -> None:
    discord, flux = fakes
    flux.hold = True
    async with running_bot(discord, flux, tmp_path, JOB_TIMEOUT_SECONDS="1") as world:
        interaction = await discord.send_slash_command("imagine", [option("prompt", "a slow snail")])
        timed_out = await final_reply(world, interaction, "Timed out")
        assert "did not finish this job within" in fields(timed_out["embeds"][0])["What happened"]
        assert len(flux.submits) == 1


async def test_after_the_interaction_token_expired_the_result_arrives_through_the_channel(world: World) -> None:
    interaction, queued, task_id = await held_job(world, "an old oak")
    world.discord.expire_token(interaction)
    world.flux.finish(task_id)

    await final_reply(world, interaction, "Done")
    posts = [r for r in world.discord.requests if r.method == "POST" and r.path.endswith("/messages")]
    assert posts == [], "the same reply, edited: nothing new was posted"
    channel_edit = f"/api/v10/channels/{world.discord.channel_id}/messages/{queued['id']}"
    [edit] = [r for r in world.discord.requests if r.method == "PATCH" and r.path == channel_edit and r.status == 200]
    assert [f.data for f in edit.files] == [world.flux.image_bytes], "the image is uploaded through the channel too"
    assert "interaction token expired; editing the reply with the bot token" in world.bot.output
    await world.discord.wait_for(lambda: delivered_via(world) == "channel")


async def test_sigterm_waits_for_a_submit_under_way_and_the_job_finishes_after_restart(world: World) -> None:
    world.flux.submit_delay = 1.5
    interaction = await world.discord.send_slash_command("imagine", [option("prompt", "a patient heron")])
    await world.flux.wait_for_submits(1)
    assert await world.bot.stop() == 0
    assert "waiting for 1 job(s) being submitted" in world.bot.output
    world.flux.submit_delay = 0
    await world.restart()

    done = await final_reply(world, interaction, "Done")
    assert "a patient heron" in done["embeds"][0]["description"]
    assert len(world.flux.submits) == 1
