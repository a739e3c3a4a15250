"""End to end with FLUX_PROVIDER=kie: the commands adapt, jobs run on the Kie fake, and a provider switch."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from tests.e2e import fields, final_reply, first_callback, free_port, option, running_bot
from tests.fakes.discord_api import FakeDiscord
from tests.fakes.flux_api import FakeFlux
from tests.fakes.kie_api import FakeKie

HMAC_KEY = "kie-webhook-key-0123"


@pytest.fixture
async def kie() -> AsyncIterator[FakeKie]:
    fake = FakeKie(webhook_key=HMAC_KEY)
    await fake.start()
    yield fake
    await fake.close()


def kie_env(kie: FakeKie, **extra: str) -> dict[str, str]:
    return {"FLUX_PROVIDER": "kie", "KIE_API_TOKEN": kie.token, "KIE_API_BASE_URL": kie.base_url,
            "ACEDATA_API_TOKEN": "", **extra}  # fmt: skip


async def test_with_kie_the_commands_offer_kontext_models_and_kies_options(
    fakes: tuple[FakeDiscord, FakeFlux], kie: FakeKie, tmp_path: Path
) -> None:
    discord, flux = fakes
    async with running_bot(discord, flux, tmp_path, **kie_env(kie)) as world:
        commands = {c["name"]: c for c in discord.commands[str(discord.guild_id)]}
        imagine = {o["name"]: o for o in commands["imagine"]["options"]}
        assert [c["value"] for c in imagine["model"]["choices"]] == ["flux-kontext-pro", "flux-kontext-max"]
        assert {"output_format", "prompt_upsampling", "safety_tolerance", "translate"} <= set(imagine)
        # Issue 14: Kie makes one image per task, and a job of up to four images holds one task per image.
        assert (imagine["count"]["min_value"], imagine["count"]["max_value"]) == (1, 4)
        assert imagine["safety_tolerance"]["max_value"] == 6
        assert [c["value"] for c in imagine["output_format"]["choices"]] == ["jpeg", "png"]
        assert imagine["translate"]["description"] == "Translate a non-English prompt first (on by default)"
        edit = {o["name"]: o for o in commands["edit"]["options"]}
        assert edit["safety_tolerance"]["max_value"] == 2
        sizes = await discord.send_autocomplete("imagine", [option("size", "")], "size")
        offered = [c["value"] for c in first_callback(world, sizes).json["data"]["choices"]]
        assert offered == ["21:9", "16:9", "4:3", "1:1", "3:4", "9:16"]
        refused = await discord.send_slash_command("imagine", [option("prompt", "x"), option("size", "3:2")])
        assert "aspect ratio: 21:9, 16:9" in first_callback(world, refused).json["data"]["content"]


async def test_imagine_and_edit_run_on_kie(fakes: tuple[FakeDiscord, FakeFlux], kie: FakeKie, tmp_path: Path) -> None:
    discord, flux = fakes
    async with running_bot(discord, flux, tmp_path, **kie_env(kie)) as world:
        made = await discord.send_slash_command(
            "imagine",
            [option("prompt", "a red kite"), option("size", "9:16"), option("output_format", "png"),
             option("safety_tolerance", 5, kind=4), option("translate", False, kind=5)],
        )  # fmt: skip
        done = await final_reply(world, made, "Done")
        [task_id] = kie.tasks
        assert kie.submits[0] == {"prompt": "a red kite", "model": "flux-kontext-pro", "aspectRatio": "9:16",
                                  "outputFormat": "png", "safetyTolerance": 5, "enableTranslation": False}  # fmt: skip
        assert f"{kie.base_url}/files/{task_id}/0.png" in fields(done["embeds"][0])["Originals"]
        assert [a["filename"] for a in done["attachments"]] == ["flux-1-1.png"]
        assert flux.requests == [], "nothing goes to the other provider"

        photo = discord.make_attachment("p.png", "image/png", 9000, width=800, height=600)
        edited = await discord.send_slash_command(
            "edit", [option("image", photo["id"], kind=11), option("prompt", "at night")], attachments=[photo]
        )
        await final_reply(world, edited, "Done")
        assert kie.submits[1] == {"prompt": "at night", "model": "flux-kontext-pro", "inputImage": photo["url"]}, (
            "without a size, Kie keeps the image's own ratio"
        )

        too_loose = await discord.send_slash_command(
            "edit",
            [option("image", photo["id"], kind=11), option("prompt", "x"), option("safety_tolerance", 5, kind=4)],
            attachments=[photo],
        )
        assert "from 0 to 2 for an edit" in first_callback(world, too_loose).json["data"]["content"]

        kie.hold = True
        failing = await discord.send_slash_command("imagine", [option("prompt", "doomed")])
        await final_reply(world, failing, "Flux is working on it")
        kie.finish(list(kie.tasks)[-1], flag=3, error=(501, "generation failed"))
        failed = await final_reply(world, failing, "Failed")
        assert "could not be generated" in fields(failed["embeds"][0])["What happened"]


async def test_kie_callbacks_need_their_signature(
    fakes: tuple[FakeDiscord, FakeFlux], kie: FakeKie, tmp_path: Path
) -> None:
    discord, flux = fakes
    port = free_port()
    env = kie_env(kie, CALLBACK_BASE_URL=f"http://127.0.0.1:{port}", CALLBACK_HOST="127.0.0.1",
                  CALLBACK_PORT=str(port), KIE_WEBHOOK_HMAC_KEY=HMAC_KEY)  # fmt: skip
    kie.hold = True
    async with running_bot(discord, flux, tmp_path, **env) as world:
        interaction = await discord.send_slash_command("imagine", [option("prompt", "signed")])
        await final_reply(world, interaction, "Flux is working on it")
        [task_id] = kie.tasks
        assert kie.tasks[task_id].body["callBackUrl"].startswith(f"http://127.0.0.1:{port}/callbacks/flux/")
        kie.finish(task_id)
        lookups = len(kie.lookups)
        assert await kie.send_callback(task_id, signed=False) == 401
        await asyncio.sleep(0.6)  # three poll rounds (POLL_INTERVAL_SECONDS=0.2) for any late effect to show
        assert len(kie.lookups) == lookups, "an unsigned callback is not even looked up"
        message: Any = world.discord.original_response(interaction)
        assert message["embeds"][0]["title"].endswith("working on it")
        assert await kie.send_callback(task_id) == 200
        await final_reply(world, interaction, "Done", timeout=10)
        assert HMAC_KEY not in world.bot.output


async def test_jobs_finish_on_the_provider_that_started_them(
    fakes: tuple[FakeDiscord, FakeFlux], kie: FakeKie, tmp_path: Path
) -> None:
    discord, flux = fakes
    flux.hold = True
    async with running_bot(discord, flux, tmp_path, KIE_API_TOKEN=kie.token, KIE_API_BASE_URL=kie.base_url) as world:
        on_ace = await discord.send_slash_command("imagine", [option("prompt", "started on ace")])
        await final_reply(world, on_ace, "Flux is working on it")
        second = await discord.send_slash_command("imagine", [option("prompt", "also on ace")])
        await final_reply(world, second, "Flux is working on it")

        world.bot.env["FLUX_PROVIDER"] = "kie"  # both keys still set: the old jobs finish on Ace Data
        await world.restart()
        first_task = next(t for t in flux.tasks.values() if t.request["prompt"] == "started on ace")
        flux.finish(first_task.id)
        await final_reply(world, on_ace, "Done")
        now_kie = await discord.send_slash_command("imagine", [option("prompt", "on kie")])
        await final_reply(world, now_kie, "Done")
        assert [b["prompt"] for b in kie.submits] == ["on kie"]
        ace_result: Any = world.discord.original_response(on_ace)
        reroll = await discord.send_component(int(ace_result["id"]), "fluxbot:job:reroll:1")
        refused = first_callback(world, reroll).json["data"]
        assert "made with Ace Data Cloud, but new jobs now go to Kie.ai" in refused["content"]
        assert len(kie.submits) == 1, "an Ace Data request is not sent to Kie as it was"

        world.bot.env["ACEDATA_API_TOKEN"] = ""  # the Ace Data key is gone: its last job is closed clearly
        await world.restart()
        closed = await final_reply(world, second, "Failed")
        assert "now uses another image provider" in fields(closed["embeds"][0])["What happened"]


async def test_a_servers_safety_ceiling_applies_to_what_is_sent_to_kie(
    fakes: tuple[FakeDiscord, FakeFlux], kie: FakeKie, tmp_path: Path
) -> None:
    discord, flux = fakes
    async with running_bot(discord, flux, tmp_path, **kie_env(kie)) as world:
        ceiling = [{"name": "safety", "type": 1, "options": [option("ceiling", 1, kind=4)]}]
        saved = await discord.send_slash_command("fluxadmin", ceiling)
        card = first_callback(world, saved).json["data"]["embeds"][0]
        assert fields(card)["Kie safety_tolerance"] == "at most 1 (0 is the strictest)"

        plain = await discord.send_slash_command("imagine", [option("prompt", "a quiet bay")])
        await final_reply(world, plain, "Done")
        assert kie.submits[-1]["safetyTolerance"] == 1, "Kie's default of 2 is lowered to the server's ceiling"
        looser = await discord.send_slash_command(
            "imagine", [option("prompt", "a loud bay"), option("safety_tolerance", 4, kind=4)]
        )
        assert first_callback(world, looser).json["data"]["content"] == (
            "On this server `safety_tolerance` is at most 1 (0 is the strictest). "
            "Please ask for 1 or less, or leave it out."
        )
        assert len(kie.submits) == 1


async def test_imagine_count_4_on_kie_is_four_tasks_and_one_gallery(
    fakes: tuple[FakeDiscord, FakeFlux], kie: FakeKie, tmp_path: Path
) -> None:
    discord, flux = fakes
    async with running_bot(discord, flux, tmp_path, **kie_env(kie)) as world:
        four = await discord.send_slash_command("imagine", [option("prompt", "four kites"), option("count", 4, kind=4)])
        done = await final_reply(world, four, "Done")
        assert len(kie.submits) == 4, "one Kie task per image"
        assert all(body["prompt"] == "four kites" for body in kie.submits)
        assert [a["filename"] for a in done["attachments"]] == [f"flux-1-{n}.png" for n in range(1, 5)]
        assert len(done["embeds"]) == 4, "one gallery of four"
        originals = fields(done["embeds"][0])["Originals"]
        assert all(f"{kie.base_url}/files/{task_id}/0.png" in originals for task_id in kie.tasks)
        assert "Note" not in fields(done["embeds"][0])

        kie.hold = True
        more = [option("prompt", "four more"), option("count", 4, kind=4)]
        partly = await discord.send_slash_command("imagine", more)
        await final_reply(world, partly, "Flux is working on it")
        await discord.wait_for(lambda: len(kie.tasks) == 8, timeout=10, message="the second job's four tasks")
        second = list(kie.tasks)[4:]
        kie.finish(second[1], flag=3, error=(501, "generation failed"))
        for task_id in (second[0], second[2], second[3]):
            kie.finish(task_id)
        three = await final_reply(world, partly, "Done")
        assert [a["filename"] for a in three["attachments"]] == [f"flux-2-{n}.png" for n in range(1, 4)]
        note = fields(three["embeds"][0])["Note"]
        assert note.startswith("1 of 4 images failed: The image could not be generated.")
        assert "generation failed" in note
