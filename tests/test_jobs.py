"""The job service: validation, submit rules, batched tracking, timeouts, exactly-once delivery, resume."""

from __future__ import annotations

import asyncio
import logging
from dataclasses import replace
from typing import Any

import pytest

from fluxbot import catalog
from fluxbot.delivery import DeliveryError
from fluxbot.jobs import requests
from fluxbot.jobs.alarms import REPEAT_AFTER, OperatorAlarms
from fluxbot.jobs.cards import QUEUE_CARD_EDITS_PER_ROUND
from fluxbot.jobs.lifecycle import CallbackOutcome, EditImage, Job, JobStatus, JobTask, Outcome, Reply
from fluxbot.jobs.ownership import RESTARTED_DURING_SUBMIT
from fluxbot.jobs.requests import (
    PROMPT_MAX_CHARS,
    AttachmentInfo,
    InvalidRequest,
    may_delete,
    message_images,
    request_of,
    result_images,
    url_expired,
)
from fluxbot.jobs.service import NO_LIMITS, Jobs
from fluxbot.jobs.tracker import TIMEOUT_GRACE_SECONDS
from fluxbot.providers.acedata import AceDataFlux
from fluxbot.providers.base import ErrorKind, Image, JobRequest, OptionValue, ProviderError
from fluxbot.storage import Store
from tests.conftest import earlier_run
from tests.doubles import Clock, RecordingReplier
from tests.fakes.flux_api import FakeFlux, envelope

ACE = catalog.PROVIDERS["acedata"]
KIE = catalog.PROVIDERS["kie"]


def prepare_imagine(*args: Any, info: catalog.ProviderInfo = ACE) -> JobRequest:
    return requests.prepare_imagine(info, *args)


def prepare_edit(*args: Any, info: catalog.ProviderInfo = ACE) -> JobRequest:
    return requests.prepare_edit(info, *args)


def edit_request(prompt: str, image: EditImage, *, info: catalog.ProviderInfo = ACE) -> JobRequest:
    return requests.edit_request(info, prompt, image)


REPLY = Reply(user_id=42, guild_id=7, channel_id=8, application_id=9, interaction_token="tok", message_id=1001)
PNG = AttachmentInfo("https://cdn.discordapp.test/cat.png", "cat.png", "image/png", 50_000, 1920, 1080)


# -- validation ------------------------------------------------------------------------------------


def test_imagine_defaults_the_size_to_the_model() -> None:
    assert prepare_imagine("cat", "flux-dev", None, 1).size == "1024x1024"
    assert prepare_imagine("cat", "flux-kontext-max", None, 2).size == "1:1"
    request = prepare_imagine("  a cat  ", "flux-dev", "1024 x 768", 4)
    assert (request.prompt, request.size, request.count, request.action) == ("a cat", "1024x768", 4, "generate")


@pytest.mark.parametrize(
    ("prompt", "model", "size", "count", "says"),
    [
        ("   ", "flux-dev", None, 1, "prompt is empty"),
        ("x" * (PROMPT_MAX_CHARS + 1), "flux-dev", None, 1, "the limit is 1,500"),
        ("cat", "flux-dev", "1000x1000", 1, "not a multiple of 32"),
        ("cat", "flux-dev", "4096x4096", 1, "out of range"),
        ("cat", "flux-kontext-pro", "1024x1024", 1, "aspect ratio"),
        ("cat", "flux-dev", None, 5, "between 1 and 4"),
        ("cat", "dall-e-3", None, 1, "not a model this bot knows"),
    ],
)
def test_imagine_refuses_bad_input(prompt: str, model: str, size: str | None, count: int, says: str) -> None:
    with pytest.raises(InvalidRequest, match=says):
        prepare_imagine(prompt, model, size, count)


def test_edit_takes_the_attachment_url_and_the_closest_ratio() -> None:
    request = prepare_edit("make it blue", "flux-kontext-pro", None, PNG)
    assert (request.action, request.image_url, request.size, request.count) == ("edit", PNG.url, "16:9", 1)
    assert prepare_edit("blue", "flux-kontext-max", "9:16", PNG).size == "9:16"
    untyped = AttachmentInfo("https://x/p.webp", "p.webp", None, 10, 100, 100)
    assert prepare_edit("blue", "flux-kontext-pro", None, untyped).size == "1:1"


@pytest.mark.parametrize(
    ("attachment", "model", "size", "says"),
    [
        (
            AttachmentInfo("https://x/notes.txt", "notes.txt", "text/plain; charset=utf-8", 10),
            None,
            None,
            "not an image",
        ),
        (AttachmentInfo("https://x/a.gif", "a.gif", "image/gif", 10), None, None, "is image/gif; Flux can edit PNG"),
        (AttachmentInfo("https://x/doc", "doc", None, 10), None, None, "unknown type"),
        (AttachmentInfo("https://x/big.png", "big.png", "image/png", 30 * 1024 * 1024), None, None, "limit is 20 MB"),
        (PNG, "flux-dev", None, "cannot edit images"),
        (PNG, None, "1024x1024", "aspect ratio"),
    ],
)
def test_edit_refuses_bad_input(attachment: AttachmentInfo, model: str | None, size: str | None, says: str) -> None:
    with pytest.raises(InvalidRequest, match=says):
        prepare_edit("make it blue", model or "flux-kontext-pro", size, attachment)


# -- the service -----------------------------------------------------------------------------------


@pytest.fixture
def service(store: Store, client: AceDataFlux, replier: RecordingReplier, clock: Clock) -> Jobs:
    jobs = Jobs(store, client, replier, poll_interval=3, job_timeout=600, clock=clock)
    jobs.dispatcher.submit_retry_delays = (0.0, 0.0)
    return jobs


async def test_a_job_is_submitted_tracked_and_delivered_once(
    service: Jobs, flux: FakeFlux, replier: RecordingReplier, store: Store, clock: Clock
) -> None:
    job = await service.start(prepare_imagine("cat", "flux-dev", None, 2), REPLY)
    assert job.status is JobStatus.SUBMITTED
    assert replier.progress == [(job.id, job.task_id)], "the queued card shows the task id"

    clock.now += 3
    await service.round()  # first lookup: still running
    assert replier.outcomes == []
    clock.now += 3
    await service.round()  # second lookup: done
    assert [(j.id, j.status, len(j.images)) for j in replier.outcomes] == [(job.id, JobStatus.SUCCEEDED, 2)]
    clock.now += 3
    await service.round()
    assert len(replier.outcomes) == 1
    final = await store.get_job(job.id)
    assert final is not None
    assert (final.delivered_via, final.status) == ("interaction", JobStatus.SUCCEEDED)
    assert len(flux.lookups) == 2, "nothing is looked up once the job is finished"


async def test_nothing_is_looked_up_when_nothing_is_pending(service: Jobs, flux: FakeFlux) -> None:
    await service.round()
    await service.round()
    assert flux.requests == []


async def test_lookups_are_batched_fifty_ids_at_a_time(service: Jobs, flux: FakeFlux, clock: Clock) -> None:
    flux.hold = True
    service.dispatcher.max_in_flight = 200
    for _ in range(120):
        await service.start(prepare_imagine("cat", "flux-dev", None, 1), REPLY)
    clock.now += 3
    await service.round()
    sizes = sorted(len(body["ids"]) for body in flux.lookups)
    assert sizes == [20, 50, 50]
    assert all(body["action"] == "retrieve_batch" for body in flux.lookups)


async def test_a_failed_task_shows_the_providers_error(
    service: Jobs, flux: FakeFlux, replier: RecordingReplier, clock: Clock
) -> None:
    flux.lookups_before_done = 0
    flux.task_errors.append(("api_error", "fetch failed"))
    await service.start(prepare_edit("blue", "flux-kontext-pro", None, PNG), REPLY)
    clock.now += 3
    await service.round()
    [job] = replier.outcomes
    assert job.status is JobStatus.FAILED
    assert job.error_kind == "image_unreachable"
    assert job.error_message is not None
    assert "could not download your image" in job.error_message


async def test_a_rate_limited_submit_is_retried_then_reported(
    service: Jobs, flux: FakeFlux, replier: RecordingReplier
) -> None:
    flux.script("/flux/images", 429, envelope("too_many_requests", "slow down"), times=3)
    job = await service.start(prepare_imagine("cat", "flux-dev", None, 1), REPLY)
    assert len(flux.submits) == 3, "a 429 is safe to resend"
    assert job.status is JobStatus.FAILED
    assert [j.error_message for j in replier.outcomes] == [
        "The image provider is busy right now. Please try again in a minute."
    ]


async def test_a_rate_limit_that_clears_still_submits(service: Jobs, flux: FakeFlux) -> None:
    flux.script("/flux/images", 429, envelope("too_many_requests", "slow down"), times=1)
    job = await service.start(prepare_imagine("cat", "flux-dev", None, 1), REPLY)
    assert job.status is JobStatus.SUBMITTED
    assert len(flux.submits) == 2


@pytest.mark.parametrize(("status", "code"), [(500, "api_error"), (504, "timeout"), (503, "service_unavailable")])
async def test_an_ambiguous_submit_failure_is_not_resent(
    service: Jobs, flux: FakeFlux, replier: RecordingReplier, status: int, code: str
) -> None:
    flux.script("/flux/images", status, envelope(code, "boom"))
    job = await service.start(prepare_imagine("cat", "flux-dev", None, 1), REPLY)
    assert len(flux.submits) == 1, "resending could bill twice"
    assert job.status is JobStatus.FAILED
    assert replier.outcomes[0].id == job.id


async def test_an_operator_problem_is_logged_for_the_operator(
    service: Jobs, flux: FakeFlux, replier: RecordingReplier, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO)
    flux.script("/flux/images", 403, envelope("used_up", "insufficient balance"), times=3)
    for _ in range(3):
        await service.start(prepare_imagine("cat", "flux-dev", None, 1), REPLY)
    assert "out of credit" in (replier.outcomes[0].error_message or "")
    alarms = [r for r in caplog.records if r.levelname == "ERROR" and "operator action needed" in r.getMessage()]
    assert len(alarms) == 1, "logged once as such, not once per job"
    assert sum("the same operator problem as before" in r.getMessage() for r in caplog.records) == 2


def test_an_operator_problem_still_there_is_raised_again_after_a_while() -> None:
    now = [0.0]
    alarms = OperatorAlarms(clock=lambda: now[0])
    refused = ProviderError(ErrorKind.AUTH, "The bot's API key was refused.")
    assert alarms.first("acedata", refused)
    now[0] = REPEAT_AFTER - 1
    assert not alarms.first("acedata", refused)
    assert alarms.first("kie", refused), "another provider's problem is its own"
    assert alarms.first("acedata", ProviderError(ErrorKind.OUT_OF_CREDIT, "out")), "and so is another kind"
    now[0] = REPEAT_AFTER + 1
    assert alarms.first("acedata", refused)


async def test_a_job_past_the_timeout_ends_as_timed_out(
    service: Jobs, flux: FakeFlux, replier: RecordingReplier, clock: Clock
) -> None:
    flux.hold = True
    job = await service.start(prepare_imagine("cat", "flux-dev", None, 1), REPLY)
    clock.now += 599
    await service.round()
    assert replier.outcomes == []
    clock.now += 2
    await service.round()
    [done] = replier.outcomes
    assert (done.id, done.status) == (job.id, JobStatus.TIMED_OUT)
    assert "within 10 minutes" in (done.error_message or "")


async def test_a_job_is_not_timed_out_while_lookups_back_off(
    service: Jobs, flux: FakeFlux, replier: RecordingReplier, clock: Clock
) -> None:
    flux.hold = True
    job = await service.start(prepare_imagine("cat", "flux-dev", None, 1), REPLY)
    flux.script("/flux/tasks", 429, envelope("too_many_requests", "slow down"), times=1)
    clock.now += 599
    await service.round()  # rate limited: the next lookup waits 3 s
    assert job.task_id is not None
    flux.finish(job.task_id)
    clock.now += 2
    await service.round()  # past the timeout but inside the back-off: no lookup, so no verdict
    assert replier.outcomes == []
    clock.now += 2
    await service.round()
    [done] = replier.outcomes
    assert done.status is JobStatus.SUCCEEDED, "the finished job is delivered, not timed out"


async def test_a_job_whose_lookups_keep_failing_times_out_after_a_grace(
    service: Jobs, flux: FakeFlux, replier: RecordingReplier, clock: Clock
) -> None:
    flux.hold = True
    await service.start(prepare_imagine("cat", "flux-dev", None, 1), REPLY)
    flux.script("/flux/tasks", 502, {"error": {"code": "api_error", "message": "bad gateway"}}, times=1000)
    for _ in range(30):
        clock.now += 30
        await service.round()
    assert replier.outcomes == [], "900 s: the lookups failed, so the job is not judged yet"
    clock.now += TIMEOUT_GRACE_SECONDS
    await service.round()
    [done] = replier.outcomes
    assert done.status is JobStatus.TIMED_OUT


async def test_cards_are_refreshed_at_a_modest_cadence(
    service: Jobs, flux: FakeFlux, replier: RecordingReplier, clock: Clock
) -> None:
    flux.hold = True
    await service.start(prepare_imagine("cat", "flux-dev", None, 1), REPLY)
    for _ in range(10):  # 30 s of ticks every 3 s
        clock.now += 3
        await service.round()
    assert len(replier.progress) == 1 + 2, "the start card, then one refresh per 15 s"
    flux.finish(next(iter(flux.tasks)))
    for _ in range(10):
        clock.now += 3
        await service.round()
    assert len(replier.progress) == 3, "refreshes stop when the job ends"
    assert replier.edits[-1] == "outcome"


async def test_lookups_back_off_when_rate_limited(service: Jobs, flux: FakeFlux, clock: Clock) -> None:
    flux.hold = True
    await service.start(prepare_imagine("cat", "flux-dev", None, 1), REPLY)
    flux.script("/flux/tasks", 429, envelope("too_many_requests", "slow down"), times=2)
    clock.now += 3
    await service.round()
    await service.round()  # inside the back-off: no call
    assert len(flux.lookups) == 1
    clock.now += 3.1
    await service.round()  # second 429, longer pause
    clock.now += 3.1
    await service.round()
    assert len(flux.lookups) == 2
    clock.now += 3.1
    await service.round()
    assert len(flux.lookups) == 3


async def test_racing_finishers_deliver_once(
    service: Jobs, flux: FakeFlux, replier: RecordingReplier, clock: Clock
) -> None:
    flux.lookups_before_done = 0
    replier.delay = 0.05
    await service.start(prepare_imagine("cat", "flux-dev", None, 1), REPLY)
    clock.now += 3
    await asyncio.gather(service.round(), service.round(), service.round())
    assert len(replier.outcomes) == 1


async def test_racing_deliveries_edit_the_reply_once(
    service: Jobs, flux: FakeFlux, replier: RecordingReplier, store: Store
) -> None:
    flux.script("/flux/images", 403, envelope("used_up", "broke"))
    replier.delay = 0.05
    replier.failures.append(DeliveryError("Discord answered 503", retryable=True))
    job = await service.start(prepare_imagine("cat", "flux-dev", None, 1), REPLY)
    assert replier.outcomes == [], "the first delivery failed and waits for its retry"
    results = await asyncio.gather(*(service.deliver(job.id) for _ in range(4)))
    assert results.count(True) == 1
    assert len(replier.outcomes) == 1


async def test_a_slow_queued_card_never_covers_the_result(
    service: Jobs, flux: FakeFlux, replier: RecordingReplier, clock: Clock
) -> None:
    flux.lookups_before_done = 0
    replier.progress_delay = 0.2

    async def tick_soon() -> None:
        while not service.tracker.followed():  # submitted: its running card (0.2 s) is on its way now
            await asyncio.sleep(0.005)
        clock.now += 3
        await service.round()

    started, _ = await asyncio.gather(service.start(prepare_imagine("cat", "flux-dev", None, 1), REPLY), tick_soon())
    assert replier.edits[-1] == "outcome"
    service.cards.show(started)  # a refresh that was decided before the job finished
    await service.settle()
    assert replier.edits[-1] == "outcome", "a card refresh after the result leaves the result alone"
    assert replier.edits.count("outcome") == 1


async def test_a_timeout_caused_by_an_operator_problem_says_so(
    service: Jobs, flux: FakeFlux, replier: RecordingReplier, clock: Clock
) -> None:
    flux.hold = True
    await service.start(prepare_imagine("cat", "flux-dev", None, 1), REPLY)
    flux.script("/flux/tasks", 401, envelope("invalid_token", "bad key"), times=10)
    clock.now += 601
    await service.round()
    [job] = replier.outcomes
    assert job.status is JobStatus.TIMED_OUT
    assert "could not check on this job" in (job.error_message or "")
    assert "API key is not valid" in (job.error_message or "")


async def test_a_delivery_that_fails_for_now_is_retried(
    service: Jobs, flux: FakeFlux, replier: RecordingReplier, clock: Clock, store: Store
) -> None:
    flux.lookups_before_done = 0
    replier.failures.append(DeliveryError("Discord answered 503", retryable=True))
    job = await service.start(prepare_imagine("cat", "flux-dev", None, 1), REPLY)
    clock.now += 3
    await service.round()
    assert replier.outcomes == []
    await service.round()  # too early for the retry
    assert replier.outcomes == []
    clock.now += 5
    await service.round()
    assert [j.id for j in replier.outcomes] == [job.id]
    stored = await store.get_job(job.id)
    assert stored is not None
    assert stored.delivered_via == "interaction"


async def test_a_reply_that_is_gone_is_not_retried_forever(
    service: Jobs, flux: FakeFlux, replier: RecordingReplier, store: Store, clock: Clock
) -> None:
    flux.lookups_before_done = 0
    replier.failures.append(DeliveryError("reply gone", retryable=False))
    job = await service.start(prepare_imagine("cat", "flux-dev", None, 1), REPLY)
    clock.now += 3
    await service.round()
    stored = await store.get_job(job.id)
    assert stored is not None
    assert stored.delivered_via == "unreachable"
    await service.round()
    assert replier.outcomes == []


async def test_resume_closes_unsent_jobs_and_finishes_the_rest(
    service: Jobs, flux: FakeFlux, replier: RecordingReplier, store: Store, clock: Clock
) -> None:
    request = prepare_imagine("cat", "flux-dev", None, 1)

    async def row(token: str) -> Job:
        job = await store.admit("acedata", request, replace(REPLY, interaction_token=token), limits=NO_LIMITS)
        assert job is not None
        claimed = await store.claim(100)
        assert claimed is not None
        return claimed

    with earlier_run(store):
        unsent = await row("a")
        flux.lookups_before_done = 0
        task_id = (await service.provider.submit(prepare_imagine("cat", "flux-dev", None, 1))).task.task_id
        running = await row("b")
        await store.mark_submitted(running.id, [JobTask(1, task_id)], now=clock.now)
        finished = await row("c")
        await store.finish(finished.id, Outcome(JobStatus.SUCCEEDED))

    await service.resume()
    clock.now += 3
    await service.round()
    by_id = {j.id: j for j in replier.outcomes}
    assert set(by_id) == {unsent.id, running.id, finished.id}
    assert by_id[unsent.id].status is JobStatus.FAILED
    assert by_id[unsent.id].error_message == RESTARTED_DURING_SUBMIT
    assert by_id[running.id].status is JobStatus.SUCCEEDED
    assert await store.undelivered_jobs() == []


@pytest.fixture
def callback_service(store: Store, client: AceDataFlux, replier: RecordingReplier, clock: Clock) -> Jobs:
    return Jobs(
        store, client, replier, poll_interval=3, job_timeout=600, callback_url="https://bot.test/cb/s3cret", clock=clock
    )


async def test_with_callbacks_submits_carry_the_url_and_polling_backs_off(
    callback_service: Jobs, flux: FakeFlux, clock: Clock
) -> None:
    flux.hold = True
    job = await callback_service.start(prepare_imagine("cat", "flux-dev", None, 1), REPLY)
    assert job.expects_callback
    assert flux.submits[0]["callback_url"] == "https://bot.test/cb/s3cret"
    for _ in range(9):  # 27 s of ticks: inside the callback poll interval
        clock.now += 3
        await callback_service.round()
    assert flux.lookups == []
    clock.now += 3
    await callback_service.round()
    assert len(flux.lookups) == 1, "the safety-net poll still runs every 30 s"


async def test_a_hint_is_confirmed_by_a_lookup_before_anything_changes(
    callback_service: Jobs, flux: FakeFlux, replier: RecordingReplier, store: Store, clock: Clock
) -> None:
    flux.hold = True
    job = await callback_service.start(prepare_imagine("cat", "flux-dev", None, 1), REPLY)
    assert job.task_id is not None
    assert await callback_service.hint("someone-elses-task") is CallbackOutcome.UNKNOWN

    assert await callback_service.hint(job.task_id) is CallbackOutcome.ACCEPTED
    clock.now += 3
    await callback_service.round()
    assert len(flux.lookups) == 1, "looked up at once"
    assert replier.outcomes == [], "the task is still running, whatever the callback said"

    flux.finish(job.task_id)
    assert await callback_service.hint(job.task_id) is CallbackOutcome.ACCEPTED
    clock.now += 3
    await callback_service.round()
    assert [j.status for j in replier.outcomes] == [JobStatus.SUCCEEDED]
    assert await callback_service.hint(job.task_id) is CallbackOutcome.FINISHED
    await callback_service.round()
    assert len(replier.outcomes) == 1
    assert len(flux.lookups) == 2


def test_message_images_take_image_attachments_else_embeds() -> None:
    text = AttachmentInfo("https://x/notes.txt", "notes.txt", "text/plain", 10)
    huge = AttachmentInfo("https://x/huge.png", "huge.png", "image/png", 50 * 1024 * 1024, 10, 10)
    wide = AttachmentInfo("https://x/wide.png", "wide.png", "image/png", 10, 2560, 1080)
    embedded = [("https://x/embed.jpg", 768, 1024), ("attachment://local.png", 1, 1)]
    images = message_images([text, huge, wide], embedded, now=0)
    assert [(i.url, i.ratio) for i in images] == [("https://x/wide.png", "21:9")], "embeds repeat the attachments"
    only_embeds = message_images([text], embedded, now=0)
    assert [(i.url, i.ratio) for i in only_embeds] == [("https://x/embed.jpg", "3:4")]
    untyped = AttachmentInfo("https://x/photo.webp", "photo.webp", None, 10, 100, 100)
    assert [i.url for i in message_images([untyped], [], now=0)] == [untyped.url], "typed by its name, as /edit does"


def test_expired_discord_links_are_recognised_and_left_out() -> None:
    signed = "https://cdn.discordapp.com/attachments/1/2/cat.png?ex=6500a000&is=64ff0000&hm=abc"
    assert url_expired(signed, now=0x6500A001)
    assert not url_expired(signed, now=0x6500A000 - 1)
    assert not url_expired("https://provider.test/cat.png", now=10**10)
    cat = AttachmentInfo(signed, "cat.png", "image/png", 10, 10, 10)
    assert message_images([cat], [], now=0x6500A001) == []


def test_result_images_prefer_the_uploaded_copy_and_keep_the_ratio() -> None:
    job = Job(
        id=5, status=JobStatus.SUCCEEDED, action="generate", provider="acedata", model="flux-dev", prompt="p",
        size="1344x768", count=2, image_url=None,
        reply=Reply(user_id=1, guild_id=None, channel_id=None, application_id=1, interaction_token=""),
        images=(Image("https://provider/1.png"), Image("https://provider/2.png")),
    )  # fmt: skip
    uploaded = {"flux-5-2.png": "https://cdn.discord.test/flux-5-2.png", "other.png": "https://cdn/other.png"}
    assert [(i.url, i.ratio) for i in result_images(job, uploaded)] == [
        ("https://provider/1.png", "16:9"),
        ("https://cdn.discord.test/flux-5-2.png", "16:9"),
    ]
    again = request_of(job)
    assert (again.action, again.prompt, again.model, again.size, again.count) == (
        "generate",
        "p",
        "flux-dev",
        "1344x768",
        2,
    )
    assert may_delete(job, 1, manage_messages=False)
    assert not may_delete(job, 2, manage_messages=False)
    assert may_delete(job, 2, manage_messages=True)


async def test_queued_cards_show_their_place_and_follow_the_line(
    service: Jobs, flux: FakeFlux, replier: RecordingReplier, clock: Clock
) -> None:
    flux.hold = True
    service.dispatcher.max_in_flight = 1
    first = await service.start(prepare_imagine("first", "flux-dev", None, 1), replace(REPLY, user_id=1))
    second = await service.start(prepare_imagine("second", "flux-dev", None, 1), replace(REPLY, user_id=2))
    third = await service.start(prepare_imagine("third", "flux-dev", None, 1), replace(REPLY, user_id=3))
    assert [j.status for j in (first, second, third)] == [JobStatus.SUBMITTED, JobStatus.QUEUED, JobStatus.QUEUED]
    assert replier.positions == [None, 1, 2]
    assert [b["prompt"] for b in flux.submits] == ["first"]

    assert first.task_id is not None
    flux.finish(first.task_id)
    clock.now += 3
    await service.round()  # the first finishes, the second starts
    assert [b["prompt"] for b in flux.submits] == ["first", "second"]
    clock.now += 3
    await service.round()  # the line moved: the third card shows it at once
    assert replier.positions[-1] == 1
    assert replier.progress[-1] == (third.id, None)


async def test_a_long_line_moving_does_not_edit_every_card_every_round(
    service: Jobs, flux: FakeFlux, replier: RecordingReplier, clock: Clock
) -> None:
    flux.hold = True
    service.dispatcher.max_in_flight = 1
    jobs = [
        await service.start(prepare_imagine(f"job {n}", "flux-dev", None, 1), replace(REPLY, user_id=n))
        for n in range(60)
    ]
    waiting = {job.id for job in jobs[2:]}

    def queued_cards_edited_since(mark: int) -> list[int]:
        return [job_id for job_id, task_id in replier.progress[mark:] if task_id is None]

    assert jobs[0].task_id is not None
    flux.finish(jobs[0].task_id)
    clock.now += 3
    await service.round()  # the first job finishes and the second starts: everyone moves up one place
    clock.now += 3
    mark = len(replier.progress)
    await service.round()
    assert sorted(queued_cards_edited_since(mark)) == [job.id for job in jobs[2:12]], "only the front shows it at once"

    clock.now += 15  # every card is due for its refresh
    mark = len(replier.progress)
    await service.round()
    assert len(queued_cards_edited_since(mark)) == QUEUE_CARD_EDITS_PER_ROUND
    for _ in range(2):
        clock.now += 3
        await service.round()
    edited = queued_cards_edited_since(mark)
    assert set(edited) == waiting, "the cards shown longest ago go first, so none is starved"
    assert len(edited) == len(waiting), "and none is edited twice meanwhile"


async def test_stopping_the_tracker_lets_the_delivery_under_way_finish(
    service: Jobs, flux: FakeFlux, replier: RecordingReplier, store: Store, clock: Clock
) -> None:
    flux.hold = True
    job = await service.start(prepare_imagine("cat", "flux-dev", None, 1), REPLY)
    assert job.task_id is not None
    flux.finish(job.task_id)
    replier.delay = 1.0
    clock.now += 3
    service.start_tracker()
    while not flux.lookups:
        await asyncio.sleep(0.01)
    await asyncio.sleep(0.1)  # the first round found it finished and is editing the reply (1 s)
    assert replier.outcomes == []
    await service.stop_tracker()
    assert [j.id for j in replier.outcomes] == [job.id], "the edit was not cut off"
    delivered = await store.get_job(job.id)
    assert delivered is not None
    assert delivered.delivered_via == "interaction"
    assert not service.tracker_alive()


async def test_showing_a_result_again_leaves_the_job_alone_and_says_when_it_failed(
    service: Jobs, replier: RecordingReplier, store: Store, clock: Clock
) -> None:
    job = await service.start(prepare_imagine("cat", "flux-dev", None, 1), REPLY)
    clock.now += 3
    await service.round()
    clock.now += 3
    await service.round()
    await store.mark_reply_deleted(job.id)  # the member deleted the first reply
    done = await store.get_job(job.id)
    assert done is not None
    assert done.delivered_via == "interaction"
    new_reply = replace(REPLY, interaction_token="fresh-token", message_id=2002)
    assert await service.show_again(done, new_reply)
    shown = replier.outcomes[-1]
    assert (shown.id, shown.reply.message_id, shown.deleted_at) == (job.id, 2002, None), "the copy is a new, live reply"
    replier.failures.append(DeliveryError("Discord answered 503", retryable=True))
    assert not await service.show_again(done, new_reply)
    assert await store.get_job(job.id) == done, "the stored job is unchanged"


async def test_showing_a_result_again_passes_on_the_first_replys_uploads(
    service: Jobs, replier: RecordingReplier, store: Store, clock: Clock
) -> None:
    job = await service.start(prepare_imagine("cat", "flux-dev", None, 1), REPLY)
    for _ in range(2):
        clock.now += 3
        await service.round()
    done = await store.get_job(job.id)
    assert done is not None
    assert done.status is JobStatus.SUCCEEDED
    new_reply = replace(REPLY, interaction_token="fresh-token", message_id=2002)
    assert await service.show_again(done, new_reply)
    assert replier.copies_shown[-1] == [], "nothing on Discord to reuse: the images are copied"
    replier.uploads[job.id] = ["https://cdn.discordapp.test/attachments/1/2/flux-1-1.png"]
    assert await service.show_again(done, new_reply)
    assert replier.copies_shown[-1] == replier.uploads[job.id]


async def test_a_tracker_stuck_in_a_round_is_reported_unhealthy(
    service: Jobs, clock: Clock, monkeypatch: pytest.MonkeyPatch
) -> None:
    stuck = asyncio.Event()

    async def never_returns() -> None:
        await stuck.wait()

    monkeypatch.setattr(service.tracker, "round", never_returns)
    service.start_tracker()
    await asyncio.sleep(0)
    assert service.tracker_alive()
    clock.now += 61
    assert not service.tracker_alive(), "a round that started over a minute ago and never ended"
    stuck.set()
    await service.stop_tracker()


def test_options_only_some_providers_have_are_refused_elsewhere() -> None:
    with pytest.raises(InvalidRequest, match="`output_format` is not available with this bot's image provider"):
        prepare_imagine("cat", "flux-dev", None, 1, {"output_format": "png"})
    assert prepare_imagine("cat", "flux-dev", None, 1, {"output_format": None}).options == {}, "None: not asked for"


def test_with_kie_the_kontext_models_ratios_and_options_apply() -> None:
    chosen: dict[str, OptionValue | None] = {
        "output_format": "png",
        "prompt_upsampling": True,
        "safety_tolerance": 6,
        "translate": False,
    }
    request = prepare_imagine("cat", "flux-kontext-max", "21:9", 1, chosen, info=KIE)
    assert (request.size, request.options) == ("21:9", chosen)
    with pytest.raises(InvalidRequest, match="`output_format` must be jpeg or png, not `gif`"):
        prepare_imagine("cat", "flux-kontext-max", None, 1, {"output_format": "gif"}, info=KIE)
    with pytest.raises(InvalidRequest, match="from 0 to 6 for a new image"):
        prepare_imagine("cat", "flux-kontext-max", None, 1, {"safety_tolerance": 7}, info=KIE)
    with pytest.raises(InvalidRequest, match="not a model this bot knows"):
        prepare_imagine("cat", "flux-dev", None, 1, info=KIE)
    with pytest.raises(InvalidRequest, match="aspect ratio: 21:9, 16:9, 4:3, 1:1, 3:4, 9:16"):
        prepare_imagine("cat", "flux-kontext-pro", "3:2", 1, info=KIE)
    with pytest.raises(InvalidRequest, match="from 0 to 2 for an edit"):
        prepare_edit("x", "flux-kontext-pro", None, PNG, {"safety_tolerance": 3}, info=KIE)
    assert prepare_edit("x", "flux-kontext-pro", None, PNG, info=KIE).size == catalog.KEEP_RATIO, (
        "Kie keeps the image's ratio"
    )
    # Issue 14: Kie makes one image per task, and a job of four images holds four tasks.
    assert prepare_imagine("cat", "flux-kontext-pro", None, 4, info=KIE).count == 4
    with pytest.raises(InvalidRequest, match="between 1 and 4 with this bot's provider"):
        prepare_imagine("cat", "flux-kontext-pro", None, 5, info=KIE)
    portrait = EditImage("https://x/p.png", "2:3")  # 2:3 is not one of Kie's ratios
    assert edit_request("warmer", portrait, info=KIE).size == "3:4"
