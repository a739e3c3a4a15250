"""End to end: the buttons under results, the edit prompt, "Edit with Flux", /jobs and /job — across restarts."""

from __future__ import annotations

import asyncio
import copy
import sqlite3
import time
from pathlib import Path
from typing import Any

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

MODAL = 9
UPDATE_MESSAGE = 7
MANAGE_MESSAGES = 1 << 13
OTHER_MEMBER = 222222222222222222


async def finished_job(world: World, prompt: str, count: int = 1) -> tuple[SentInteraction, dict[str, Any]]:
    options = [option("prompt", prompt)] + ([option("count", count, kind=4)] if count > 1 else [])
    interaction = await world.discord.send_slash_command("imagine", options)
    done = await final_reply(world, interaction, "Done")
    return interaction, done


def buttons(message: dict[str, Any]) -> list[str]:
    return [c["custom_id"] for row in message.get("components", []) for c in row["components"]]


def custom_id(message: dict[str, Any], action: str) -> str:
    [found] = [c for c in buttons(message) if c.startswith(f"fluxbot:job:{action}:")]
    return found


async def click(world: World, message: dict[str, Any], action: str, **kwargs: Any) -> SentInteraction:
    return await world.discord.send_component(int(message["id"]), custom_id(message, action), **kwargs)


async def submit_edit(world: World, opened: SentInteraction, message_id: int | None, **values: str) -> SentInteraction:
    modal = first_callback(world, opened).json
    assert modal["type"] == MODAL
    return await world.discord.send_modal_submit(modal["data"]["custom_id"], values, message_id=message_id)


async def test_a_result_carries_four_buttons_and_a_failure_three(world: World) -> None:
    _, done = await finished_job(world, "a fox")
    assert buttons(done) == [f"fluxbot:job:{a}:1" for a in ("reroll", "edit", "details", "delete")]
    world.flux.task_errors.append(("api_error", "model crashed"))
    interaction = await world.discord.send_slash_command("imagine", [option("prompt", "a crash")])
    failed = await final_reply(world, interaction, "Failed")
    assert buttons(failed) == [f"fluxbot:job:{a}:2" for a in ("reroll", "details", "delete")]


async def test_reroll_runs_the_same_request_as_a_new_job_with_its_own_reply(world: World) -> None:
    _, done = await finished_job(world, "a foggy harbour", count=2)
    before = copy.deepcopy(done)
    reroll = await click(world, done, "reroll", user_id=OTHER_MEMBER)
    assert first_callback(world, reroll).json["type"] == DEFERRED_CHANNEL_MESSAGE
    again = await final_reply(world, reroll, "Done")
    first, second = world.flux.submits
    assert first == second, "the same request is sent again"
    assert again["id"] != done["id"]
    assert "Job #2" in again["embeds"][0]["footer"]["text"]
    assert f"<@{OTHER_MEMBER}>" in again["embeds"][0]["description"], "the new job is the clicker's"
    assert world.discord.messages[int(done["id"])] == before, "the first result is untouched"


async def test_details_are_ephemeral_and_complete(world: World) -> None:
    _, done = await finished_job(world, "a very detailed prompt " * 60, count=2)
    details = await click(world, done, "details")
    answer = first_callback(world, details).json
    assert answer["data"]["flags"] & EPHEMERAL
    [card] = answer["data"]["embeds"]
    info = fields(card)
    assert card["description"].startswith("a very detailed prompt")
    assert len(card["description"]) > 1000, "the full prompt, not the shortened one"
    [task_id] = world.flux.tasks
    assert task_id in info["Task"]
    assert info["Seeds"] == "1000, 1001"
    assert info["Asked by"] == f"<@{world.discord.user_id}>"
    assert "flux-dev" in info["Model"]
    assert "3.3s of inference" in info["Timings"]


async def test_delete_is_for_the_asker_or_a_moderator(world: World) -> None:
    _, first = await finished_job(world, "mine to delete")
    refused = await click(world, first, "delete", user_id=OTHER_MEMBER, permissions=0)
    answer = first_callback(world, refused).json
    assert answer["data"]["flags"] & EPHEMERAL
    assert "Only" in answer["data"]["content"]
    assert int(first["id"]) in world.discord.messages, "a refused delete deletes nothing"

    await click(world, first, "delete", permissions=0)  # the asker needs no permission
    await world.discord.wait_for(lambda: int(first["id"]) not in world.discord.messages)

    _, second = await finished_job(world, "a moderator may delete it")
    await click(world, second, "delete", user_id=OTHER_MEMBER, permissions=MANAGE_MESSAGES)
    await world.discord.wait_for(lambda: int(second["id"]) not in world.discord.messages)


async def test_edit_asks_which_image_and_edits_the_uploaded_copy(world: World) -> None:
    _, done = await finished_job(world, "two cats", count=2)
    opened = await click(world, done, "edit")
    modal = first_callback(world, opened).json["data"]
    assert modal["title"] == "Edit with Flux"
    inputs = [c["custom_id"] for row in modal["components"] for c in row["components"]]
    assert inputs == ["prompt", "image"]

    wrong = await submit_edit(world, opened, int(done["id"]), prompt="make it blue", image="7")
    assert "not an image number" in first_callback(world, wrong).json["data"]["content"]

    submitted = await submit_edit(world, opened, int(done["id"]), prompt="make it blue", image="2")
    await final_reply(world, submitted, "Done")
    second_copy = next(a["url"] for a in done["attachments"] if a["filename"] == "flux-1-2.png")
    assert world.flux.submits[-1] == {
        "action": "edit",
        "prompt": "make it blue",
        "model": "flux-kontext-pro",
        "size": "1:1",
        "image_url": second_copy,
        "async": True,
    }


async def test_buttons_and_a_prompt_opened_before_a_restart_work_after_it(world: World) -> None:
    _, done = await finished_job(world, "before the restart")
    opened = await click(world, done, "edit")
    photo = world.discord.make_attachment("harbour.png", "image/png", 50_000, width=1024, height=1024)
    posted = world.discord.add_message(content="edit me later", attachments=[photo])
    from_menu = await world.discord.send_message_command("Edit with Flux", int(posted["id"]))
    await world.restart()

    submitted = await submit_edit(world, opened, int(done["id"]), prompt="after the restart")
    await final_reply(world, submitted, "Done")
    assert world.flux.submits[-1]["prompt"] == "after the restart"
    menu_edit = await submit_edit(world, from_menu, None, prompt="the context menu survived too")
    await final_reply(world, menu_edit, "Done")
    assert (world.flux.submits[-1]["prompt"], world.flux.submits[-1]["image_url"]) == (
        "the context menu survived too",
        photo["url"],
    )

    details = await click(world, done, "details")
    assert "before the restart" in first_callback(world, details).json["data"]["embeds"][0]["description"]
    reroll = await click(world, done, "reroll")
    await final_reply(world, reroll, "Done")
    assert world.flux.submits[-1]["prompt"] == "before the restart"
    reopened = await click(world, done, "edit")
    resubmitted = await submit_edit(world, reopened, int(done["id"]), prompt="and once more")
    await final_reply(world, resubmitted, "Done")
    await click(world, done, "delete")
    await world.discord.wait_for(lambda: int(done["id"]) not in world.discord.messages)


async def test_a_button_whose_job_is_gone_says_so(world: World) -> None:
    _, done = await finished_job(world, "soon forgotten")
    with sqlite3.connect(Path(world.bot.env["DATABASE_PATH"])) as db:
        db.execute("DELETE FROM jobs WHERE id = 1")  # e.g. an operator cleaned the database up
    clicked = await click(world, done, "details")
    answer = first_callback(world, clicked).json
    assert answer["data"]["flags"] & EPHEMERAL
    assert "no longer in the bot's records" in answer["data"]["content"]


async def test_edit_with_flux_on_a_message_with_and_without_an_image(world: World) -> None:
    photo = world.discord.make_attachment("holiday.jpg", "image/jpeg", 80_000, width=1600, height=900)
    with_image = world.discord.add_message(content="look", attachments=[photo])
    opened = await world.discord.send_message_command("Edit with Flux", int(with_image["id"]))
    modal = first_callback(world, opened).json["data"]
    assert [c["custom_id"] for row in modal["components"] for c in row["components"]] == ["prompt"]
    source_id = first_callback(world, opened).json["data"]["custom_id"]
    by_someone_else = await world.discord.send_modal_submit(source_id, {"prompt": "mine now"}, user_id=OTHER_MEMBER)
    assert "This edit prompt is too old" in first_callback(world, by_someone_else).json["data"]["content"]
    submitted = await submit_edit(world, opened, None, prompt="add a rainbow")
    await final_reply(world, submitted, "Done")
    body = world.flux.submits[-1]
    assert (body["image_url"], body["size"], body["action"]) == (photo["url"], "16:9", "edit")

    text_only = world.discord.add_message(content="no pictures here")
    refused = await world.discord.send_message_command("Edit with Flux", int(text_only["id"]))
    answer = first_callback(world, refused).json
    assert answer["data"]["flags"] & EPHEMERAL
    assert "no image I can edit" in answer["data"]["content"]
    notes = world.discord.make_attachment("notes.txt", "text/plain", 100)
    not_an_image = world.discord.add_message(content="notes", attachments=[notes])
    refused = await world.discord.send_message_command("Edit with Flux", int(not_an_image["id"]))
    assert "no image I can edit" in first_callback(world, refused).json["data"]["content"]
    assert len(world.flux.submits) == 1


def seed_jobs(world: World, count: int) -> None:
    """Old jobs of the member, written straight into the bot's database."""
    with sqlite3.connect(Path(world.bot.env["DATABASE_PATH"])) as db:
        for n in range(count):
            db.execute(
                """INSERT INTO jobs (status, action, provider, model, prompt, size, count, user_id, guild_id,
                       channel_id, application_id, interaction_token, message_id, created_at, finished_at,
                       delivered_at, images)
                   VALUES ('succeeded', 'generate', 'acedata', 'flux-dev', ?, '1024x1024', 1, ?, ?, ?, ?, '', ?,
                       ?, ?, ?, '[{"url": "https://img.test/x.png", "seed": 1}]')""",
                (f"old prompt {n}", world.discord.user_id, world.discord.guild_id, world.discord.channel_id,
                 world.discord.application_id, 5000 + n, time.time() - 3600, time.time() - 3500, time.time() - 3500),
            )  # fmt: skip


async def test_jobs_lists_the_members_jobs_in_pages(world: World) -> None:
    seed_jobs(world, 11)
    await finished_job(world, "the newest one")
    listed = await world.discord.send_slash_command("jobs")
    answer = first_callback(world, listed).json["data"]
    assert answer["flags"] & EPHEMERAL
    [page] = answer["embeds"]
    assert page["description"].startswith("**#12** ✅ done · `flux-dev`")
    assert "the newest one" in page["description"]
    assert f"https://discord.com/channels/{world.discord.guild_id}/{world.discord.channel_id}/" in page["description"]
    assert page["footer"]["text"].startswith("Page 1 of 2 · 12 jobs")
    message = world.discord.original_response(listed)
    assert message is not None
    assert buttons(message) == ["fluxbot:jobs:0:prev", "fluxbot:jobs:1:next"]

    older = await world.discord.send_component(int(message["id"]), "fluxbot:jobs:1:next")
    turned = first_callback(world, older).json
    assert turned["type"] == UPDATE_MESSAGE
    assert "**#2**" in turned["data"]["embeds"][0]["description"]
    assert turned["data"]["embeds"][0]["footer"]["text"].startswith("Page 2 of 2")

    stranger = await world.discord.send_slash_command("jobs", user_id=OTHER_MEMBER)
    assert "no jobs yet" in first_callback(world, stranger).json["data"]["embeds"][0]["description"]


async def test_job_shows_a_finished_result_again_for_its_owner(world: World) -> None:
    _, done = await finished_job(world, "worth seeing twice", count=2)
    downloads = world.flux.file_downloads
    shown = await world.discord.send_slash_command("job", [option("number", 1, kind=4)])
    again = await final_reply(world, shown, "Done")
    assert again["id"] != done["id"]
    assert buttons(again) == buttons(done)
    # The first reply still has its uploads: the copy shows them, nothing is downloaded or uploaded again.
    assert again["attachments"] == []
    first_uploads = [a["url"] for a in done["attachments"]]
    assert [e["image"]["url"] for e in again["embeds"]] == first_uploads
    assert world.flux.file_downloads == downloads

    refused = await world.discord.send_slash_command("job", [option("number", 1, kind=4)], user_id=OTHER_MEMBER)
    assert "Only the member who asked" in first_callback(world, refused).json["data"]["content"]
    missing = await world.discord.send_slash_command("job", [option("number", 42, kind=4)])
    assert "There is no job #42" in first_callback(world, missing).json["data"]["content"]

    art = await world.discord.add_text_channel("art")
    fluxadmin = [{"name": "channels", "type": 1, "options": [option("add", str(art), kind=7)]}]
    await world.discord.send_slash_command("fluxadmin", fluxadmin)
    elsewhere = await world.discord.send_slash_command("job", [option("number", 1, kind=4)])
    assert f"you can use me in <#{art}>" in first_callback(world, elsewhere).json["data"]["content"]


async def test_job_copies_the_images_again_when_the_first_reply_lost_them(world: World) -> None:
    _, done = await finished_job(world, "a reply that lost its images")
    world.discord.messages[int(done["id"])]["attachments"] = []  # e.g. a moderator removed the images
    downloads = world.flux.file_downloads
    shown = await world.discord.send_slash_command("job", [option("number", 1, kind=4)])
    again = await final_reply(world, shown, "Done")
    assert [a["filename"] for a in again["attachments"]] == ["flux-1-1.png"]
    assert again["embeds"][0]["image"]["url"].endswith("flux-1-1.png")
    assert world.flux.file_downloads == downloads + 1


async def test_buttons_work_after_the_commands_token_expired(world: World) -> None:
    command, done = await finished_job(world, "an old result")
    world.discord.expire_token(command)
    details = await click(world, done, "details")
    assert "an old result" in first_callback(world, details).json["data"]["embeds"][0]["description"]
    reroll = await click(world, done, "reroll")
    await final_reply(world, reroll, "Done")


async def test_edit_with_flux_on_an_embedded_image_uses_discords_copy(world: World) -> None:
    proxied = "https://media.discordapp.test/external/abc/photo.png"
    typed = "https://typed.example/photo.png"
    picture = {"url": typed, "proxy_url": proxied, "width": 1080, "height": 1350}
    embed = {"type": "image", "url": typed, "image": picture}
    message = world.discord.add_message(content="https://typed.example/photo.png", embeds=[embed])
    opened = await world.discord.send_message_command("Edit with Flux", int(message["id"]))
    submitted = await submit_edit(world, opened, None, prompt="warmer light")
    await final_reply(world, submitted, "Done")
    assert (world.flux.submits[-1]["image_url"], world.flux.submits[-1]["size"]) == (proxied, "4:5")


async def test_rerolling_an_edit_whose_image_expired_says_so(world: World) -> None:
    expired = "https://cdn.discordapp.test/attachments/1/2/old.png?ex=60000000&is=5fff0000&hm=ab"
    old = world.discord.make_attachment("old.png", "image/png", 5000, url=expired, width=512, height=512)
    interaction = await world.discord.send_slash_command(
        "edit", [option("image", old["id"], kind=11), option("prompt", "sharper")], attachments=[old]
    )
    done = await final_reply(world, interaction, "Done")
    reroll = await click(world, done, "reroll")
    answer = first_callback(world, reroll).json
    assert answer["data"]["flags"] & EPHEMERAL
    assert "expired on Discord" in answer["data"]["content"]
    assert len(world.flux.submits) == 1


async def test_showing_a_result_again_counts_against_the_cooldown(
    fakes: tuple[FakeDiscord, FakeFlux], tmp_path: Path
) -> None:
    discord, flux = fakes
    async with running_bot(discord, flux, tmp_path, COOLDOWN_SECONDS="2") as world:
        made = await discord.send_slash_command("imagine", [option("prompt", "a tidy desk")])
        await final_reply(world, made, "Done")
        await asyncio.sleep(2.1)  # the cooldown after the command has passed
        shown = await discord.send_slash_command("job", [option("number", 1, kind=4)])
        await final_reply(world, shown, "Done")
        for command, options in (("job", [option("number", 1, kind=4)]), ("imagine", [option("prompt", "x")])):
            refused = await discord.send_slash_command(command, options)
            content = first_callback(world, refused).json["data"]["content"]
            assert content.startswith("Please wait a little between commands here"), command
        assert len(flux.submits) == 1
