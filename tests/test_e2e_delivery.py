"""End to end: callbacks, uploaded images, expired tokens and the fallbacks that still reach the member."""

from __future__ import annotations

import asyncio
import copy
import sqlite3
from collections.abc import AsyncIterator
from pathlib import Path

import aiohttp
import pytest
from aiohttp import web

from tests.e2e import (
    World,
    close_every_way_but_dms,
    delivered_via,
    fields,
    final_reply,
    free_port,
    held_job,
    option,
    reply_edits,
    running_bot,
)
from tests.fakes.discord_api import FakeDiscord, RecordedRequest
from tests.fakes.flux_api import FakeFlux


def stored_delivery(tmp_path: Path, job_id: int) -> tuple[str | None, float | None, str]:
    with sqlite3.connect(tmp_path / "data" / "fluxbot.db") as db:
        row = db.execute("SELECT delivered_via, delivered_at, interaction_token FROM jobs WHERE id = ?", (job_id,))
        via, at, token = row.fetchone()
    return via, at, token


async def result_posted_in_the_channel(world: World) -> RecordedRequest:
    """Wait for the channel post that replaces a reply, and check that it mentions the member."""
    post = await world.discord.wait_for_request(
        lambda r: r.method == "POST" and r.path == f"/api/v10/channels/{world.discord.channel_id}/messages"
    )
    assert post.json["content"].startswith(f"<@{world.discord.user_id}> Here is the result of your job #1")
    return post


async def test_callbacks_deliver_once_and_forged_ones_change_nothing(
    fakes: tuple[FakeDiscord, FakeFlux], tmp_path: Path
) -> None:
    discord, flux = fakes
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    flux.hold = True
    async with running_bot(discord, flux, tmp_path, CALLBACK_BASE_URL=base, CALLBACK_HOST="127.0.0.1",
                           CALLBACK_PORT=str(port)) as world:  # fmt: skip
        interaction = await discord.send_slash_command("imagine", [option("prompt", "a lantern")])
        await final_reply(world, interaction, "Flux is working on it")
        [task_id] = flux.tasks
        url = flux.submits[0]["callback_url"]
        assert url.startswith(f"{base}/callbacks/flux/")
        secret = url.rsplit("/", 1)[1]
        assert len(secret) >= 40, "the path holds an unguessable secret"
        lookups_before = len(flux.lookups)

        # Forgeries: a callback that claims success for a running task is confirmed by a lookup, and ignored.
        assert await flux.send_callback(task_id, body={"success": True, "task_id": task_id, "data": []}) == 200
        await discord.wait_for(lambda: len(flux.lookups) > lookups_before)
        assert await flux.send_callback(task_id, url=f"{base}/callbacks/flux/{'x' * len(secret)}") == 404
        assert await flux.send_callback(task_id, body={"task_id": "not-ours", "success": True}) == 404
        assert await flux.send_callback(task_id, body=b"<html>not json") == 400
        assert await flux.send_callback(task_id, body={"no": "task id"}) == 400
        assert await flux.send_callback(task_id, body={"task_id": task_id, "pad": "x" * 400_000}) == 413
        await asyncio.sleep(0.6)  # three poll rounds (POLL_INTERVAL_SECONDS=0.2) for any late effect to show
        assert len(flux.lookups) == lookups_before + 1, "only the first (well-addressed) callback was looked up"
        unchanged = world.discord.original_response(interaction)
        assert unchanged is not None
        assert unchanged["embeds"][0]["title"].endswith("working on it")

        # The real callback: the job is delivered at once, long before the 30 s safety-net poll.
        flux.finish(task_id)
        done = copy.deepcopy(await final_reply(world, interaction, "Done", timeout=10))
        assert flux.callbacks[-1] == (url, 200)
        edits = len(reply_edits(world, interaction))

        # A duplicate callback is acknowledged and changes nothing, also after the tracker had its next rounds.
        lookups = len(flux.lookups)
        assert await flux.send_callback(task_id) == 200
        assert await flux.send_callback(task_id) == 200
        await discord.wait_for(lambda: world.bot.output.count(f"callback for task {task_id}: finished") == 2)
        await asyncio.sleep(0.6)  # three poll rounds (POLL_INTERVAL_SECONDS=0.2) for any late effect to show
        assert len(reply_edits(world, interaction)) == edits
        assert len(flux.lookups) == lookups, "a callback for a finished job is not even looked up"
        assert world.discord.original_response(interaction) == done
        assert secret not in world.bot.output, "the callback secret never reaches the logs"
    via, at, token = stored_delivery(tmp_path, 1)
    assert (via, token) == ("interaction", "")
    assert at is not None


async def test_without_a_callback_url_nothing_listens(fakes: tuple[FakeDiscord, FakeFlux], tmp_path: Path) -> None:
    discord, flux = fakes
    port = free_port()
    async with running_bot(discord, flux, tmp_path, CALLBACK_HOST="127.0.0.1", CALLBACK_PORT=str(port)) as world:
        interaction = await discord.send_slash_command("imagine", [option("prompt", "a quiet bot")])
        await final_reply(world, interaction, "Done")
        assert "callback_url" not in flux.submits[0]
        with pytest.raises(aiohttp.ClientConnectionError):
            async with aiohttp.ClientSession() as session, session.post(f"http://127.0.0.1:{port}/callbacks/flux/x"):
                pass


@pytest.mark.parametrize(
    ("problem", "logged"),
    [
        ("not an image", "image download failed (image 1: not an image"),
        ("an HTML page", "image download failed (image 1: not an image (text/html))"),
        ("HTTP 404", "image download failed (image 1: HTTP 404)"),
        ("over the upload limit", "image download failed (image 1: over the"),
        ("Discord refuses the upload", "Discord refused the upload as too large"),
    ],
)
async def test_when_the_images_cannot_be_uploaded_the_reply_links_them_and_says_so(
    world: World, problem: str, logged: str
) -> None:
    if problem == "over the upload limit":
        world.discord.attachment_size_limit = 50  # sent with the interaction: the bot learns it there
    interaction, _, task_id = await held_job(world, "a broken link")
    if problem == "not an image":
        world.flux.image_bytes, world.flux.image_content_type = b"<html>gone</html>", "image/png"
    elif problem == "an HTML page":
        world.flux.image_bytes, world.flux.image_content_type = b"<html>sign in</html>", "text/html"
    elif problem == "HTTP 404":
        world.flux.image_status = 404
    elif problem == "Discord refuses the upload":
        too_large = {"message": "Request entity too large", "code": 40005}
        world.discord.fail_next("PATCH", r"/webhooks/\d+/[^/]+/messages/\d+$", 413, too_large, times=1)
    world.flux.finish(task_id)
    done = await final_reply(world, interaction, "Done")
    assert done["embeds"][0]["image"]["url"] == f"{world.flux.base_url}/files/{task_id}/0.png"
    assert "Nothing is lost" in fields(done["embeds"][0])["Note"]
    assert done["attachments"] == []
    assert logged in world.bot.output


@pytest.fixture
async def redirecting_host() -> AsyncIterator[tuple[str, str, list[str]]]:
    """An image host whose links redirect to an internal server; (its base, the internal base, internal hits)."""
    hits: list[str] = []

    async def internal(request: web.Request) -> web.Response:
        hits.append(request.path_qs)
        return web.Response(body=b"\x89PNG\r\n\x1a\n", content_type="image/png")

    runners = [web.AppRunner(web.Application(), access_log=None, shutdown_timeout=0.5) for _ in range(2)]
    inside, outside = runners
    inside.app.router.add_get("/{path:.*}", internal)
    await inside.setup()
    await web.TCPSite(inside, "127.0.0.1", 0).start()
    internal_base = f"http://127.0.0.1:{inside.addresses[0][1]}"

    async def redirect(request: web.Request) -> web.Response:
        raise web.HTTPFound(f"{internal_base}/admin/export.png?token=internal-secret")

    outside.app.router.add_get("/{path:.*}", redirect)
    await outside.setup()
    await web.TCPSite(outside, "127.0.0.1", 0).start()
    yield f"http://127.0.0.1:{outside.addresses[0][1]}", internal_base, hits
    for runner in runners:
        await runner.cleanup()


async def test_an_image_link_that_redirects_to_an_internal_address_is_not_followed(
    world: World, redirecting_host: tuple[str, str, list[str]]
) -> None:
    interaction, _, task_id = await held_job(world, "a link that points inside")
    host, internal, hits = redirecting_host
    world.flux.base_url = host  # the result's image links now point at the redirecting host
    world.flux.finish(task_id)

    done = await final_reply(world, interaction, "Done")
    assert done["embeds"][0]["image"]["url"] == f"{host}/files/{task_id}/0.png", "the provider's link is shown"
    assert "Nothing is lost" in fields(done["embeds"][0])["Note"]
    assert done["attachments"] == []
    assert hits == [], "the internal server was never asked"
    refused = f"image 1: redirect to {internal} refused, 127.0.0.1 is a loopback address"
    assert world.bot.output.count(refused) == 1
    assert "internal-secret" not in world.bot.output


async def test_an_image_served_as_octet_stream_is_still_uploaded(world: World) -> None:
    world.flux.image_content_type = "application/octet-stream"
    interaction = await world.discord.send_slash_command("imagine", [option("prompt", "bytes decide")])
    done = await final_reply(world, interaction, "Done")
    assert [a["filename"] for a in done["attachments"]] == ["flux-1-1.png"]
    assert "Note" not in fields(done["embeds"][0])


async def test_image_delivery_url_shows_the_providers_links(
    fakes: tuple[FakeDiscord, FakeFlux], tmp_path: Path
) -> None:
    discord, flux = fakes
    async with running_bot(discord, flux, tmp_path, IMAGE_DELIVERY="url") as world:
        interaction = await discord.send_slash_command("imagine", [option("prompt", "plain links")])
        done = await final_reply(world, interaction, "Done")
        [task_id] = flux.tasks
        assert done["embeds"][0]["image"]["url"] == f"{flux.base_url}/files/{task_id}/0.png"
        assert "Note" not in fields(done["embeds"][0])
        assert all(not r.files for r in reply_edits(world, interaction))


async def test_a_reply_that_cannot_be_edited_is_posted_in_the_channel_mentioning_the_member(world: World) -> None:
    interaction, queued, task_id = await held_job(world, "a locked channel")
    world.discord.expire_token(interaction)
    missing_access = {"message": "Missing Access", "code": 50001}
    world.discord.fail_next("PATCH", rf"/channels/\d+/messages/{queued['id']}$", 403, missing_access, times=5)
    world.flux.finish(task_id)

    post = await result_posted_in_the_channel(world)
    assert post.json["embeds"][0]["title"] == "✅ Done"
    assert [f.data for f in post.files] == [world.flux.image_bytes]
    await world.discord.wait_for(lambda: "result posted in the channel, mentioning the member" in world.bot.output)


async def test_when_the_channel_is_closed_too_the_result_goes_by_dm(world: World) -> None:
    interaction, queued, task_id = await held_job(world, "a private result")
    close_every_way_but_dms(world, interaction, queued)
    channel = world.discord.channel_id
    world.flux.finish(task_id)

    await world.discord.wait_for(lambda: "result sent to the member by DM" in world.bot.output)
    dm = next(r for r in world.discord.requests if r.method == "POST" and r.path == "/api/v10/users/@me/channels")
    assert str(dm.json["recipient_id"]) == str(world.discord.user_id)
    sent = [
        r for r in world.discord.requests if r.method == "POST" and r.path.endswith("/messages") and r.status == 200
    ]
    assert len(sent) == 1
    assert f"<#{channel}>" in sent[0].json["content"]
    await world.discord.wait_for(lambda: delivered_via(world) == "dm")


async def test_a_deleted_reply_is_replaced_by_a_post_in_the_channel_and_the_bot_carries_on(world: World) -> None:
    _, queued, task_id = await held_job(world, "deleted on purpose")
    unknown = {"message": "Unknown Message", "code": 10008}
    world.discord.fail_next("PATCH", rf"/messages/{queued['id']}$", 404, unknown, times=50)
    world.flux.finish(task_id)
    await result_posted_in_the_channel(world)
    await world.discord.wait_for(lambda: delivered_via(world) == "channel_post")
    assert "the reply is gone (code 10008); posting the result instead" in world.bot.output

    world.flux.hold = False
    fine = await world.discord.send_slash_command("imagine", [option("prompt", "a reply that is still there")])
    await final_reply(world, fine, "Done")
    posts = [r for r in world.discord.requests if r.method == "POST" and r.path.endswith("/messages")]
    assert len(posts) == 1, "posted once; the next job's reply is edited as usual"


async def test_killed_between_finalize_and_delivery_the_result_is_shown_once(world: World) -> None:
    interaction, queued, task_id = await held_job(world, "an interrupted delivery")
    server_error = {"message": "500: Internal Server Error", "code": 0}
    world.discord.fail_next("PATCH", rf"/messages/{queued['id']}$", 500, server_error, times=2)
    world.flux.finish(task_id)
    await world.discord.wait_for_request(lambda r: r.status == 500)  # finalized; the edit is being retried
    await world.restart()

    await final_reply(world, interaction, "Done")
    results = [r for r in reply_edits(world, interaction) if r.status == 200 and r.files]
    assert len(results) == 1, "the result was shown once"
    assert [r.status for r in reply_edits(world, interaction)][-3:] == [500, 500, 200]
    await world.discord.wait_for(lambda: delivered_via(world) == "interaction")
    assert "took over 1 job(s) of an earlier run: 0 to follow, 1 to deliver" in world.bot.output


async def test_a_callback_after_a_restart_still_reaches_the_bot(
    fakes: tuple[FakeDiscord, FakeFlux], tmp_path: Path
) -> None:
    discord, flux = fakes
    port = free_port()
    env = {"CALLBACK_BASE_URL": f"http://127.0.0.1:{port}", "CALLBACK_HOST": "127.0.0.1", "CALLBACK_PORT": str(port)}
    flux.hold = True
    async with running_bot(discord, flux, tmp_path, **env) as world:
        interaction = await discord.send_slash_command("imagine", [option("prompt", "patience")])
        await final_reply(world, interaction, "Flux is working on it")
        await world.restart()
        [task_id] = flux.tasks
        flux.finish(task_id)
        await final_reply(world, interaction, "Done", timeout=10)
        assert flux.callbacks == [(flux.submits[0]["callback_url"], 200)], "the same URL works after the restart"
        async with aiohttp.ClientSession() as session, session.get(f"http://127.0.0.1:{port}/callbacks/flux/x") as resp:
            assert resp.status == 405


async def test_a_job_that_outlived_its_interaction_token_is_delivered_with_the_bot_token(world: World) -> None:
    interaction, _, task_id = await held_job(world, "a very slow glacier")
    await world.bot.kill()
    with sqlite3.connect(Path(world.bot.env["DATABASE_PATH"])) as db:
        db.execute("UPDATE jobs SET created_at = created_at - 16 * 60 WHERE id = 1")  # the command was 16 min ago
    world.flux.finish(task_id)
    await world.restart()

    await final_reply(world, interaction, "Done")
    assert reply_edits(world, interaction)[-1].json["embeds"][0]["title"].endswith("working on it"), (
        "the token (which the fake would still accept) was not used once Discord no longer would"
    )
    await world.discord.wait_for(lambda: delivered_via(world) == "channel")


async def test_a_reply_the_member_deleted_is_not_posted_again(world: World) -> None:
    _, queued, task_id = await held_job(world, "deleted by its member")
    with sqlite3.connect(Path(world.bot.env["DATABASE_PATH"])) as db:
        db.execute("UPDATE jobs SET deleted_at = 1 WHERE id = 1")  # as the Delete button records it
    unknown = {"message": "Unknown Message", "code": 10008}
    world.discord.fail_next("PATCH", rf"/messages/{queued['id']}$", 404, unknown, times=50)
    world.flux.finish(task_id)
    await world.discord.wait_for(lambda: "the member deleted the reply; not posting it again" in world.bot.output)
    await asyncio.sleep(0.3)
    assert not [r for r in world.discord.requests if r.method == "POST" and r.path.endswith("/messages")]


async def test_a_provider_that_returns_more_images_than_asked_shows_only_those_asked_for(world: World) -> None:
    world.flux.hold = True
    interaction = await world.discord.send_slash_command("imagine", [option("prompt", "two"), option("count", 2, 4)])
    await final_reply(world, interaction, "Flux is working on it")
    [task] = world.flux.tasks.values()
    task.request["count"] = 6  # the fake answers with as many images as the request asks for
    world.flux.finish(task.id)

    done = await final_reply(world, interaction, "Done")
    assert task.response is not None
    assert len(task.response["data"]) == 6
    assert [a["filename"] for a in done["attachments"]] == ["flux-1-1.png", "flux-1-2.png"]
    assert [e["image"]["url"] for e in done["embeds"]] == ["attachment://flux-1-1.png", "attachment://flux-1-2.png"]
    assert fields(done["embeds"][0])["Originals"].count("](") == 2
