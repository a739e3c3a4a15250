"""The cards stay inside Discord's embed limits whatever the provider sends back."""

from __future__ import annotations

import discord

from fluxbot import render
from fluxbot.jobs.durations import Estimate
from fluxbot.jobs.lifecycle import Job, JobStatus, Reply
from fluxbot.providers.base import Image


def job(**changes: object) -> Job:
    values: dict[str, object] = {
        "id": 7,
        "status": JobStatus.SUBMITTED,
        "action": "generate",
        "provider": "acedata",
        "model": "flux-dev",
        "prompt": "a white siamese cat",
        "size": "1024x1024",
        "count": 4,
        "image_url": None,
        "reply": Reply(user_id=42, guild_id=1, channel_id=2, application_id=3, interaction_token="t"),
        "task_id": "task-1",
        "created_at": 1000.0,
        "submitted_at": 1001.0,
    }
    values.update(changes)
    return Job(**values)  # type: ignore[arg-type]


def within_limits(embeds: list[discord.Embed]) -> None:
    assert 1 <= len(embeds) <= 10
    total = 0
    for embed in embeds:
        data = embed.to_dict()
        assert len(data.get("title", "")) <= 256
        assert len(data.get("description", "")) <= 4096
        assert len(data.get("fields", [])) <= 25
        for f in data.get("fields", []):
            assert len(f["name"]) <= 256
            assert 0 < len(f["value"]) <= 1024
        total += len(data.get("title", "")) + len(data.get("description", ""))
        total += sum(len(f["name"]) + len(f["value"]) for f in data.get("fields", []))
        total += len(data.get("footer", {}).get("text", ""))
    assert total <= 6000


def test_the_queued_card_shows_what_was_asked_and_the_elapsed_time() -> None:
    [card] = render.queued_card(job(), now=1075.0)
    fields = {f.name: f.value for f in card.fields}
    assert fields["Task"] == "`task-1`"
    assert str(fields["Elapsed"]).startswith("1m 15s")
    assert (fields["Size"], fields["Images"]) == ("`1024x1024`", "4")
    assert "a white siamese cat" in (card.description or "")


def test_a_result_is_a_gallery_of_embeds_sharing_one_url() -> None:
    images = tuple(Image(f"https://img.test/{i}.png", seed=i) for i in range(4))
    embeds = render.result_card(job(status=JobStatus.SUCCEEDED, images=images, finished_at=1040.0))
    assert [e.image.url for e in embeds] == [i.url for i in images]
    assert {e.url for e in embeds} == {images[0].url}
    within_limits(embeds)


def test_huge_provider_values_and_prompts_stay_within_the_limits() -> None:
    images = tuple(Image(f"https://img.test/{i}.png", seed=10**22 + i) for i in range(4))
    long_prompt = ("word " * 300 + "\n") * 5
    huge = job(status=JobStatus.SUCCEEDED, images=images, task_id="t" * 5000, prompt=long_prompt, finished_at=1.0)
    within_limits(render.result_card(huge))
    within_limits(render.queued_card(huge, now=5000.0))
    failed = job(status=JobStatus.FAILED, error_message="x" * 5000, task_id="t" * 5000, prompt=long_prompt)
    within_limits(render.failure_card(failed))


def test_elapsed_text() -> None:
    assert [render.elapsed_text(s, None) for s in (0, 42, 185, 3720, -5)] == ["0s", "42s", "3m 05s", "1h 02m", "0s"]


def test_the_card_says_queued_until_the_provider_has_the_job() -> None:
    [pending] = render.queued_card(job(status=JobStatus.PENDING, task_id=None), now=1001.0)
    [running] = render.queued_card(job(), now=1001.0)
    assert pending.title == "⏳ Queued"
    assert {f.name: f.value for f in pending.fields}["Task"] == "sending…"
    assert running.title == "🎨 Running — Flux is working on it"


def card_fields(embed: discord.Embed) -> dict[str, str]:
    return {f.name or "": f.value or "" for f in embed.fields}


def test_a_running_card_says_when_jobs_of_this_model_are_usually_ready() -> None:
    usual = Estimate(early=6.0, typical=25.0, late=40.0)
    [card] = render.queued_card(job(), now=1011.0, estimate=usual)
    assert card_fields(card)["Expected"] == "Usually ready in about 25s"
    [late] = render.queued_card(job(), now=1001.0 + 41, estimate=usual)
    assert card_fields(late)["Expected"] == "Taking longer than usual; still waiting for the provider"
    [unknown] = render.queued_card(job(), now=1011.0)
    assert "Expected" not in card_fields(unknown), "no history: no promise"
