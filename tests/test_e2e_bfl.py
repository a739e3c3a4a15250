"""End to end with FLUX_PROVIDER=bfl: jobs of one BFL task per image through the real bot, the fake Discord and the
BFL fake (polling only): galleries, edits, moderation, a restart, results kept before their links expire, and the
account's concurrency kept by the queue."""

from __future__ import annotations

import contextlib
import urllib.parse
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from tests.e2e import World, fields, final_reply, first_callback, option, reply_edits, running_bot
from tests.fakes.bfl_api import KONTEXT_MAX, FakeBfl
from tests.fakes.discord_api import FakeDiscord, SentInteraction
from tests.fakes.flux_api import FakeFlux

#: The members of the concurrency test (each may have several jobs open: MAX_JOBS_PER_MEMBER).
MEMBERS = (111111111111111111, 222222222222222222, 333333333333333333)


@pytest.fixture
async def bfl() -> AsyncIterator[FakeBfl]:
    fake = FakeBfl()
    await fake.start()
    yield fake
    await fake.close()


@contextlib.asynccontextmanager
async def bfl_bot(
    fakes: tuple[FakeDiscord, FakeFlux], bfl: FakeBfl, tmp_path: Path, **extra: str
) -> AsyncIterator[World]:
    """The bot on BFL (no Ace Data key: the Ace fake stays idle); on exit, the BFL key never reached its logs."""
    discord, flux = fakes
    env = {"FLUX_PROVIDER": "bfl", "BFL_API_KEY": bfl.key, "BFL_API_BASE_URL": bfl.base_url, "ACEDATA_API_TOKEN": ""}
    async with running_bot(discord, flux, tmp_path, **env, **extra) as world:
        yield world
    assert bfl.key not in world.bot.output, "the BFL key reached the bot's log output"
    assert flux.requests == [], "nothing goes to the other provider"


def imagine(prompt: str, count: int = 1, **more: Any) -> list[dict[str, Any]]:
    """The options of an /imagine."""
    extra = [option(name, value) for name, value in more.items()]
    return [option("prompt", prompt), *([option("count", count, kind=4)] if count > 1 else []), *extra]


def job_tasks(bfl: FakeBfl, prompt: str) -> list[str]:
    """The fake's tasks of one prompt, in the order they were submitted."""
    return [task.id for task in bfl.tasks.values() if task.body.get("prompt") == prompt]


async def wait_tasks(world: World, bfl: FakeBfl, prompt: str, n: int) -> list[str]:
    """Wait until the fake holds `n` tasks of this prompt; return them."""
    await world.discord.wait_for(lambda: len(job_tasks(bfl, prompt)) >= n, timeout=20, message=f"{n} tasks of {prompt}")
    return job_tasks(bfl, prompt)


async def details(world: World, done: dict[str, Any]) -> dict[str, str]:
    """The fields of the Details card of a result."""
    [button] = [
        c["custom_id"] for row in done["components"] for c in row["components"] if ":details:" in c["custom_id"]
    ]
    clicked = await world.discord.send_component(int(done["id"]), button)
    return fields(first_callback(world, clicked).json["data"]["embeds"][0])


def polled_ids(bfl: FakeBfl) -> list[str]:
    """The task ids of every get_result, each checked to be at the task's own polling_url, exactly as submitted."""
    ids = []
    for poll in bfl.polls:
        task_id = poll.query["id"]
        expected = urllib.parse.urlsplit(bfl.tasks[task_id].polling_url or "")
        assert (poll.path, f"id={task_id}") == (expected.path, expected.query), "the polling_url, not a rebuilt one"
        ids.append(task_id)
    return ids


async def test_imagine_count_4_is_four_bfl_tasks_sent_together_and_one_gallery_with_their_cost(
    fakes: tuple[FakeDiscord, FakeFlux], bfl: FakeBfl, tmp_path: Path
) -> None:
    async with bfl_bot(fakes, bfl, tmp_path) as world:
        bfl.hold = True
        four = await world.discord.send_slash_command("imagine", imagine("four lighthouses", 4))
        tasks = await wait_tasks(world, bfl, "four lighthouses", 4)
        await final_reply(world, four, "Flux is working on it")
        assert bfl.active == 4, "the four tasks run at BFL together"
        assert [bfl.tasks[task_id].model for task_id in tasks] == ["flux-2-pro"] * 4
        assert all(set(body) == {"prompt", "width", "height"} for body in bfl.submits), "one image a task, no count"
        for task_id in tasks:
            bfl.finish(task_id)

        done = await final_reply(world, four, "Done")
        assert [a["filename"] for a in done["attachments"]] == [f"flux-1-{n}.png" for n in range(1, 5)]
        assert len(done["embeds"]) == 4, "one gallery of four"
        assert "Note" not in fields(done["embeds"][0])
        assert set(polled_ids(bfl)) == set(tasks)
        card = await details(world, done)
        costs = [bfl.tasks[task_id].cost for task_id in tasks]
        assert costs == [3.0] * 4, "FLUX.2 [pro] at one megapixel, as the fake's price list has it"
        assert card["Cost"] == f"{sum(costs):g} (as Black Forest Labs counts it)"
        assert all(task_id in card["Tasks"] for task_id in tasks)
        assert card["Seeds"] == ", ".join(str(bfl.tasks[task_id].seed) for task_id in tasks)


async def test_edit_sends_the_attachment_url_as_input_image_to_kontext(
    fakes: tuple[FakeDiscord, FakeFlux], bfl: FakeBfl, tmp_path: Path
) -> None:
    async with bfl_bot(fakes, bfl, tmp_path) as world:
        photo = world.discord.make_attachment("harbour.png", "image/png", 9000, width=800, height=600)
        edited = await world.discord.send_slash_command(
            "edit",
            [option("image", photo["id"], kind=11), option("prompt", "at night"), option("model", "flux-kontext-pro")],
            attachments=[photo],
        )
        done = await final_reply(world, edited, "Done")
        [task] = bfl.tasks.values()
        assert task.model == "flux-kontext-pro"
        assert task.body == {"prompt": "at night", "input_image": photo["url"]}, (
            "the URL as Discord gave it, without a size: Kontext keeps the image's own ratio"
        )
        assert [a["filename"] for a in done["attachments"]] == ["flux-1-1.png"]
        assert (await details(world, done))["Cost"] == "4 (as Black Forest Labs counts it)"


@pytest.mark.parametrize(
    ("outcome", "blocked"),
    [
        ("Request Moderated", "this request (the prompt, or the image to edit)"),
        ("Content Moderated", "the image it made"),
    ],
)
async def test_a_moderated_task_says_the_safety_filter_blocked_it_and_nothing_was_charged(
    fakes: tuple[FakeDiscord, FakeFlux], bfl: FakeBfl, tmp_path: Path, outcome: str, blocked: str
) -> None:
    async with bfl_bot(fakes, bfl, tmp_path, DAILY_IMAGES_PER_MEMBER="1") as world:
        bfl.outcomes.append(outcome)
        refused = await world.discord.send_slash_command("imagine", imagine("a forbidden thing"))
        failed = await final_reply(world, refused, "Failed")
        said = fields(failed["embeds"][0])["What happened"]
        assert f"The image provider's safety filter blocked {blocked}" in said
        assert "nothing was made and nothing was charged" in said
        assert "Reason given: Derivative Works Filter." in said
        assert (await details(world, failed))["Cost"] == "0 (as Black Forest Labs counts it)", (
            "not the 3 credits the submit reported: BFL does not charge a moderated task"
        )
        # Nor does it count against the member's daily image (DAILY_IMAGES_PER_MEMBER=1): the next job runs.
        allowed = await world.discord.send_slash_command("imagine", imagine("a harmless thing"))
        await final_reply(world, allowed, "Done")
        assert len(bfl.tasks) == 2


async def test_jobs_running_at_bfl_over_a_restart_are_followed_at_their_polling_url_and_delivered_on_their_replies(
    fakes: tuple[FakeDiscord, FakeFlux], bfl: FakeBfl, tmp_path: Path
) -> None:
    async with bfl_bot(fakes, bfl, tmp_path) as world:
        bfl.hold = True
        two = await world.discord.send_slash_command("imagine", imagine("two owls", 2))
        one = await world.discord.send_slash_command("imagine", imagine("one owl"))
        owls = await wait_tasks(world, bfl, "two owls", 2)
        [owl] = await wait_tasks(world, bfl, "one owl", 1)
        queued_two = await final_reply(world, two, "Flux is working on it")
        queued_one = await final_reply(world, one, "Flux is working on it")
        assert await world.bot.stop() == 0, "SIGTERM while BFL holds the tasks"
        polls_before = len(bfl.polls)
        bfl.finish(owls[0])  # one ends while the bot is away: its image is read after the start

        await world.start()
        await world.discord.wait_for(lambda: len(bfl.polls) > polls_before + 2, timeout=20)
        for task_id in (owls[1], owl):
            bfl.finish(task_id)
        done_two = await final_reply(world, two, "Done")
        done_one = await final_reply(world, one, "Done")
        assert len(bfl.submits) == 3, "nothing was sent again"
        assert set(polled_ids(bfl)[polls_before:]) == {*owls, owl}, "every task followed after the start"
        assert [a["filename"] for a in done_two["attachments"]] == ["flux-1-1.png", "flux-1-2.png"]
        assert [a["filename"] for a in done_one["attachments"]] == ["flux-2-1.png"]
        assert (done_two["id"], done_one["id"]) == (queued_two["id"], queued_one["id"]), "on the original replies"
        assert "took over 2 job(s) of an earlier run: 2 to follow, 0 to deliver" in world.bot.output


async def test_results_are_downloaded_the_moment_they_are_ready_and_delivered_after_their_links_expired(
    fakes: tuple[FakeDiscord, FakeFlux], bfl: FakeBfl, tmp_path: Path
) -> None:
    async with bfl_bot(fakes, bfl, tmp_path) as world:
        bfl.hold = True
        four = await world.discord.send_slash_command("imagine", imagine("four comets", 4))
        tasks = await wait_tasks(world, bfl, "four comets", 4)
        queued = await final_reply(world, four, "Flux is working on it")

        bfl.finish(tasks[0])
        await world.discord.wait_for(lambda: (tasks[0], 200) in bfl.sample_downloads, timeout=10)
        assert bfl.active == 3, "downloaded while the job's other tasks still run"
        bfl.expire_samples()  # the first task's link dies long before the job is delivered

        # Discord refuses the result for a while: by the time it takes it, every link has expired.
        server_error = {"message": "500: Internal Server Error", "code": 0}
        world.discord.fail_next("PATCH", rf"/messages/{queued['id']}$", 500, server_error, times=2)
        for task_id in tasks[1:]:
            bfl.finish(task_id)
        await world.discord.wait_for_request(lambda r: r.status == 500 and bool(r.files), timeout=20)
        assert sorted(bfl.sample_downloads) == sorted((task_id, 200) for task_id in tasks), (
            "each image was downloaded once, before the first try to deliver it"
        )
        bfl.expire_samples()

        done = await final_reply(world, four, "Done")
        delivered = [r for r in reply_edits(world, four) if r.status == 200 and r.files]
        assert len(delivered) == 1
        assert [f.data for f in delivered[0].files] == [bfl.image_bytes] * 4, "the kept bytes, as attachments"
        assert [a["filename"] for a in done["attachments"]] == [f"flux-1-{n}.png" for n in range(1, 5)]
        assert "Note" not in fields(done["embeds"][0]), "no image fell back to its (dead) link"
        assert all(status == 200 for _, status in bfl.sample_downloads), "no expired link was fetched"
        assert len(bfl.sample_downloads) == 4


async def test_the_queue_keeps_within_bfls_concurrency_so_nothing_is_refused_with_429(
    fakes: tuple[FakeDiscord, FakeFlux], bfl: FakeBfl, tmp_path: Path
) -> None:
    async with bfl_bot(fakes, bfl, tmp_path, MAX_JOBS_PER_MEMBER="6") as world:
        bfl.hold = True
        # Kontext [max] runs at most 6 tasks an account: 3 + 3 fill it, the 2 and the 4 wait their turn.
        kontext = [("max one", 3), ("max two", 3), ("max three", 2), ("max four", 4)]
        # The account runs at most 24: 4 + 4 + 4 + 4 + 2 FLUX.2 [pro] tasks fill it with those 6; the last waits.
        pro = [*((f"pro {n}", 4) for n in range(1, 5)), ("pro 5", 2), ("pro 6", 1)]
        sent: list[tuple[SentInteraction, str, int]] = []
        for number, (prompt, count) in enumerate(kontext + pro):
            model = KONTEXT_MAX if prompt.startswith("max") else "flux-2-pro"
            options = imagine(prompt, count, model=model)
            interaction = await world.discord.send_slash_command("imagine", options, user_id=MEMBERS[number % 3])
            sent.append((interaction, prompt, count))
        await world.discord.wait_for(lambda: len(bfl.tasks) == 24, timeout=20, message="24 tasks at BFL")
        await wait_tasks(world, bfl, "pro 5", 2)
        assert (bfl.peak_active, bfl.peak_active_by_model[KONTEXT_MAX]) == (24, 6)
        assert job_tasks(bfl, "max three") == job_tasks(bfl, "max four") == [], "Kontext [max]'s 6 are in use"
        assert job_tasks(bfl, "pro 6") == [], "the account's 24 are in use"

        bfl.hold = False  # from now on each task is ready at its second poll: the queue runs through
        for task_id in list(bfl.tasks):
            bfl.finish(task_id)
        for interaction, prompt, count in sent:
            done = await final_reply(world, interaction, "Done")
            assert len(done["attachments"]) == count, prompt
            assert "Note" not in fields(done["embeds"][0]), f"{prompt}: no image failed"
        assert len(bfl.tasks) == 3 + 3 + 2 + 4 + 4 * 4 + 2 + 1
        assert bfl.too_busy_answers == 0, "BFL never had to refuse a task"
        assert len(bfl.submits) == len(bfl.tasks), "every submit was taken at once"
        assert bfl.peak_active_by_model[KONTEXT_MAX] <= 6
        assert bfl.peak_active <= 24
