"""End to end with FLUX_PROVIDER=fal: jobs of one and of several fal requests, edits, fal's own queue on the card,
flagged results as spoilers, signed webhooks, and a 422 in the member's words."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from tests.e2e import World, fields, final_reply, free_port, option, running_bot
from tests.fakes.discord_api import FakeDiscord, SentInteraction
from tests.fakes.fal_api import FakeFal
from tests.fakes.flux_api import FakeFlux


@pytest.fixture
async def fal() -> AsyncIterator[FakeFal]:
    fake = FakeFal()
    await fake.start()
    yield fake
    await fake.close()


def fal_env(fal: FakeFal, **extra: str) -> dict[str, str]:
    return {"FLUX_PROVIDER": "fal", "FAL_KEY": fal.key, "FAL_QUEUE_URL": fal.base_url, "FAL_JWKS_URL": fal.jwks_url,
            "ACEDATA_API_TOKEN": "", **extra}  # fmt: skip


def imagine(prompt: str, model: str, count: int = 1, *more: dict[str, Any]) -> list[dict[str, Any]]:
    return [option("prompt", prompt), option("model", model), option("count", count, kind=4), *more]


def files_of(fal: FakeFal, request_id: str, count: int) -> list[str]:
    """The image URLs the fake's result for a request holds."""
    return [f"{fal.base_url}/files/{request_id}/{n}.png" for n in range(count)]


def no_key_leaked(world: World, fal: FakeFal) -> None:
    key_secret = fal.key.partition(":")[2]
    assert fal.key not in world.bot.output
    assert key_secret not in world.bot.output, "not even the KEY_SECRET half of FAL_KEY"


def results_shown(discord: FakeDiscord, interaction: SentInteraction) -> int:
    """How many times the interaction's reply was edited into a finished result."""
    shown = 0
    for r in discord.requests:
        if r.method == "PATCH" and interaction.token in r.path and isinstance(r.json, dict):
            shown += str((r.json.get("embeds") or [{}])[0].get("title", "")).endswith("Done")
    return shown


async def test_imagine_count_4_is_one_fal_request_on_flux_1_and_four_on_flux_2(
    fakes: tuple[FakeDiscord, FakeFlux], fal: FakeFal, tmp_path: Path
) -> None:
    discord, flux = fakes
    async with running_bot(discord, flux, tmp_path, **fal_env(fal)) as world:
        commands = {c["name"]: c for c in discord.commands[str(discord.guild_id)]}
        count = {o["name"]: o for o in commands["imagine"]["options"]}["count"]
        assert (count["min_value"], count["max_value"]) == (1, 4)

        one = await discord.send_slash_command("imagine", imagine("four lighthouses", "flux-dev", 4))
        done = await final_reply(world, one, "Done")
        [(model_id, body, _)] = fal.submits
        assert (model_id, body["num_images"]) == ("fal-ai/flux/dev", 4), "FLUX.1 makes the four in one request"
        [request_id] = fal.requests
        assert len(done["embeds"]) == 4, "one gallery of four"
        assert [a["filename"] for a in done["attachments"]] == [f"flux-1-{n}.png" for n in range(1, 5)]
        originals = fields(done["embeds"][0])["Originals"]
        assert all(url in originals for url in files_of(fal, request_id, 4))

        four = await discord.send_slash_command("imagine", imagine("four towers", "flux-2-pro", 4))
        done = await final_reply(world, four, "Done")
        flux2 = fal.submits[1:]
        assert [model_id for model_id, _, _ in flux2] == ["fal-ai/flux-2-pro"] * 4, "FLUX.2: one request an image"
        assert all(body["prompt"] == "four towers" and "num_images" not in body for _, body, _ in flux2)
        assert len(done["embeds"]) == 4, "the four requests delivered together, as one gallery"
        assert [a["filename"] for a in done["attachments"]] == [f"flux-2-{n}.png" for n in range(1, 5)]
        originals = fields(done["embeds"][0])["Originals"]
        assert all(files_of(fal, request_id, 1)[0] in originals for request_id in list(fal.requests)[1:])
        assert "Note" not in fields(done["embeds"][0]), "no image failed"
        assert flux.requests == [], "nothing goes to the other provider"
    no_key_leaked(world, fal)


async def test_edits_send_the_discord_attachment_as_each_family_takes_it(
    fakes: tuple[FakeDiscord, FakeFlux], fal: FakeFal, tmp_path: Path
) -> None:
    discord, flux = fakes
    fal.validate_at_submit = True  # a body the endpoint would not take is answered 422 at once
    async with running_bot(discord, flux, tmp_path, **fal_env(fal)) as world:
        photo = discord.make_attachment("p.png", "image/png", 9000, width=800, height=600)
        image = option("image", photo["id"], kind=11)
        kontext = await discord.send_slash_command(
            "edit", [image, option("prompt", "at night"), option("model", "flux-kontext-pro")], attachments=[photo]
        )
        await final_reply(world, kontext, "Done")
        model_id, body, _ = fal.submits[-1]
        assert model_id == "fal-ai/flux-pro/kontext", "Kontext's edit endpoint, not text-to-image"
        assert body["image_url"] == photo["url"]
        assert "aspect_ratio" not in body, "without a size the edit keeps the image's own shape"

        flux2 = await discord.send_slash_command(
            "edit", [image, option("prompt", "in snow"), option("model", "flux-2-pro")], attachments=[photo]
        )
        await final_reply(world, flux2, "Done")
        model_id, body, _ = fal.submits[-1]
        assert model_id == "fal-ai/flux-2-pro/edit"
        assert body["image_urls"] == [photo["url"]]
        assert "image_url" not in body
        assert len(fal.submits) == 2
    no_key_leaked(world, fal)


async def test_the_card_shows_the_place_in_fals_queue_while_in_queue(
    fakes: tuple[FakeDiscord, FakeFlux], fal: FakeFal, tmp_path: Path
) -> None:
    discord, flux = fakes
    fal.hold, fal.queue_positions = True, (3,)
    async with running_bot(discord, flux, tmp_path, **fal_env(fal)) as world:
        waiting = await discord.send_slash_command("imagine", imagine("a long line", "flux-dev"))
        await final_reply(world, waiting, "Flux is working on it")

        def place() -> str | None:
            message = world.discord.original_response(waiting) or {}
            return fields((message.get("embeds") or [{}])[0]).get("At the provider")

        # Well within the 15 s at which a running card shows its new elapsed time: the place shows when it is new.
        await discord.wait_for(lambda: place() is not None, timeout=10, message="no place in fal's queue on the card")
        assert place() == "place 4 in the provider's queue", "fal's queue_position 3: three ahead of it"
        [request_id] = fal.requests
        fal.requests[request_id].steps[0]["queue_position"] = 0  # the line moved: it is next
        await discord.wait_for(lambda: place() == "place 1 in the provider's queue", timeout=10)
        fal.finish(request_id)
        done = await final_reply(world, waiting, "Done")
        assert "At the provider" not in fields(done["embeds"][0])


async def test_a_result_fal_flags_is_delivered_as_spoilers(
    fakes: tuple[FakeDiscord, FakeFlux], fal: FakeFal, tmp_path: Path
) -> None:
    discord, flux = fakes
    async with running_bot(discord, flux, tmp_path, **fal_env(fal)) as world:
        plain = await discord.send_slash_command("imagine", imagine("a calm beach", "flux-dev", 2))
        done = await final_reply(world, plain, "Done")
        assert [a["filename"] for a in done["attachments"]] == ["flux-1-1.png", "flux-1-2.png"]

        flagged = await discord.send_slash_command("imagine", imagine("a beach [nsfw]", "flux-dev", 2))
        done = await final_reply(world, flagged, "Done")
        request_id = list(fal.requests)[-1]
        assert fal.requests[request_id].body["num_images"] == 2
        assert [a["filename"] for a in done["attachments"]] == ["SPOILER_flux-2-1.png", "SPOILER_flux-2-2.png"]
        card = fields(done["embeds"][0])
        assert "flagged this result as possibly sensitive" in card["Images"]
        assert card["Originals"].startswith("||"), "the links are behind spoiler marks too"
        assert card["Originals"].endswith("||")
        assert all("image" not in embed for embed in done["embeds"]), "no embed shows the image unblurred"


async def test_signed_webhooks_finish_jobs_at_once_and_bad_ones_change_nothing(
    fakes: tuple[FakeDiscord, FakeFlux], fal: FakeFal, tmp_path: Path
) -> None:
    discord, flux = fakes
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    env = fal_env(fal, CALLBACK_BASE_URL=base, CALLBACK_HOST="127.0.0.1", CALLBACK_PORT=str(port))
    fal.hold = True
    async with running_bot(discord, flux, tmp_path, **env) as world:
        assert fal.jwks_fetches >= 1, "the webhook keys are fetched at start"
        forged = await discord.send_slash_command("imagine", imagine("forged webhook", "flux-dev"))
        await final_reply(world, forged, "Flux is working on it")
        signed = await discord.send_slash_command("imagine", imagine("signed webhook", "flux-dev"))
        await final_reply(world, signed, "Flux is working on it")
        forged_id, signed_id = fal.requests
        assert all(r.webhook and r.webhook.startswith(f"{base}/callbacks/flux/") for r in fal.requests.values())

        # Both are done at fal; the first one's webhooks are not fal's.
        fal.finish(forged_id)
        assert await fal.send_webhook(forged_id, key=Ed25519PrivateKey.generate()) == 401
        assert await fal.send_webhook(forged_id, timestamp=int(fal.now()) - 600) == 401, "older than 5 minutes"

        # A signed webhook is only a hint: while fal still holds the request, the lookup it causes finds it running.
        assert await fal.send_webhook(signed_id) == 200
        await discord.wait_for(lambda: fal.requests[signed_id].status_reads >= 1, timeout=10)
        assert fal.requests[signed_id].result_reads == 0
        assert world.discord.original_response(signed)["embeds"][0]["title"].endswith("working on it")  # type: ignore[index]
        fal.finish(signed_id)
        assert await fal.send_webhook(signed_id) == 200  # fal's retry, now that it is done
        await final_reply(world, signed, "Done", timeout=10)
        assert fal.requests[signed_id].result_reads == 1, "its result fetched once, by the lookup"
        # Without a believed webhook, a job with callbacks is looked up 30 s in: the forged one has not been yet.
        assert fal.requests[forged_id].status_reads == 0, "a refused webhook causes no lookup"
        assert world.discord.original_response(forged)["embeds"][0]["title"].endswith("working on it")  # type: ignore[index]

        # fal resends for two hours: the same signed webhook again does no harm.
        assert await fal.send_webhook(signed_id) == 200
        assert await fal.send_webhook(signed_id) == 200

        # The forged job still finishes, by polling (the safety net).
        await final_reply(world, forged, "Done", timeout=45)
        assert fal.requests[forged_id].result_reads == 1
        assert results_shown(discord, signed) == 1, "one result, however many webhooks came"
        assert fal.requests[signed_id].result_reads == 1, "the resent webhooks fetched nothing more"
    no_key_leaked(world, fal)


async def test_a_422_at_submit_is_refused_naming_the_field(
    fakes: tuple[FakeDiscord, FakeFlux], fal: FakeFal, tmp_path: Path
) -> None:
    discord, flux = fakes
    async with running_bot(discord, flux, tmp_path, **fal_env(fal)) as world:
        problem = {"loc": ["body", "num_inference_steps"], "msg": "Input should be less than or equal to 40",
                   "type": "less_than_equal", "input": 45}  # fmt: skip
        fal.script("submit", 422, {"detail": [problem]})
        refused = await discord.send_slash_command(
            "imagine", imagine("a fine grain", "flux-dev", 1, option("steps", 45, kind=4))
        )
        failed = await final_reply(world, refused, "Failed")
        said = fields(failed["embeds"][0])["What happened"]
        assert "refused the `steps` of this request: Input should be less than or equal to 40" in said
        assert "num_inference_steps" not in said, "the member's word for the field, not fal's"
        assert len(fal.submits) == 1, "a refusal is not resent"
        assert fal.requests == {}
