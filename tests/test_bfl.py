"""The Black Forest Labs client against the in-process fake that speaks the API's schema: every model's body, sizes
and clamping, each task status and HTTP error, polling_url used as given, cost, the key check and webhooks."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import pytest
from aiohttp import web

from cogs.images import images_cog
from fluxbot import catalog
from fluxbot.config import Secret, Settings
from fluxbot.providers import build_providers
from fluxbot.providers.base import CallbackRefused, ErrorKind, JobRequest, ProviderError, TaskRef, TaskState
from fluxbot.providers.bfl import BflFlux, parse_result
from fluxbot.providers.bfl_models import BFL, BFL_MODELS, ENDPOINTS
from tests.fakes.bfl_api import CLUSTER, FakeBfl

SECRET = "whsec-bfl-test"
#: A value for every option, as a member would give it (guidance within every model's range).
EVERY_OPTION: dict[str, Any] = {
    "raw": True, "steps": 20, "guidance": "4.5", "safety_tolerance": 6, "output_format": "png",
    "prompt_upsampling": False, "seed": 42,
}  # fmt: skip
EDITORS = [m.name for m in BFL_MODELS if m.can_edit]


@pytest.fixture
async def bfl() -> AsyncIterator[FakeBfl]:
    fake = FakeBfl()
    await fake.start()
    yield fake
    await fake.close()


@pytest.fixture
def client(bfl: FakeBfl, session: aiohttp.ClientSession) -> BflFlux:
    return BflFlux(session, Secret(bfl.key), bfl.base_url, webhook_secret=Secret(SECRET), request_timeout=5)


def generate(model: str, size: str = "", **options: Any) -> JobRequest:
    return JobRequest("generate", "a lighthouse at dusk", model, size, options=options)


def edit(model: str, size: str = "auto", **options: Any) -> JobRequest:
    return JobRequest("edit", "make it night", model, size, image_url="https://cdn.discordapp.com/a/1/cat.png",
                      options=options)  # fmt: skip


async def until_done(client: BflFlux, task: TaskRef, polls: int = 5) -> Any:
    for _ in range(polls):
        status = (await client.lookup([task]))[task.task_id]
        if status.state is not TaskState.RUNNING:
            return status
    raise AssertionError("still running")


# -- the catalogue ------------------------------------------------------------------------------


def test_the_catalogue_entry_has_every_model_one_image_a_task_and_the_concurrency() -> None:
    info = catalog.PROVIDERS["bfl"]
    assert info is BFL
    assert catalog.model_names(info) == (
        "flux-2-pro", "flux-2-max", "flux-2-flex", "flux-2-klein-4b", "flux-2-klein-9b", "flux-pro-1.1",
        "flux-pro-1.1-ultra", "flux-dev", "flux-kontext-pro", "flux-kontext-max",
    )  # fmt: skip
    assert set(catalog.model_names(info)) == set(ENDPOINTS)
    assert {m.images_per_task for m in info.models} == {1}
    assert {m.edit_field for m in info.models} == {"input_image"}
    assert {m.name: m.max_active_tasks for m in info.models if m.max_active_tasks} == {"flux-kontext-max": 6}
    assert (info.max_count, info.max_active_tasks, info.results_expire) == (4, 24, True)
    assert (info.key_setting, info.url_setting, info.keeps_ratio_on_edit) == ("BFL_API_KEY", "BFL_REGION", True)
    assert EDITORS == ["flux-2-pro", "flux-2-max", "flux-2-flex", "flux-2-klein-4b", "flux-2-klein-9b",
                       "flux-kontext-pro", "flux-kontext-max"]  # fmt: skip
    assert catalog.DEFAULT_EDIT_MODEL in EDITORS


@pytest.mark.parametrize(
    ("model", "size", "expected"),
    [
        ("flux-pro-1.1", "1440x1440", "1440x1440"),
        ("flux-dev", "256 x 512", "256x512"),
        ("flux-2-pro", "2048x2048", "2048x2048"),
        ("flux-2-klein-4b", "64x1008", "64x1008"),
        ("flux-pro-1.1-ultra", "21:9", "21:9"),
        ("flux-kontext-max", "9:21", "9:21"),
    ],
)
def test_each_model_takes_its_own_sizes(model: str, size: str, expected: str) -> None:
    assert catalog.get_model(BFL, model).size_rule.normalize(size) == expected


@pytest.mark.parametrize(
    ("model", "size", "why"),
    [
        ("flux-pro-1.1", "1472x1024", "out of range"),
        ("flux-dev", "1000x1024", "multiple of 32"),
        ("flux-2-max", "2064x1024", "out of range"),
        ("flux-2-flex", "1000x1000", "multiple of 16"),
        ("flux-kontext-pro", "3:1", "aspect ratio"),
        ("flux-pro-1.1-ultra", "1024x768", "aspect ratio"),
    ],
)
def test_sizes_a_model_does_not_take_are_refused_saying_what_it_takes(model: str, size: str, why: str) -> None:
    with pytest.raises(catalog.InvalidSize, match=why):
        catalog.get_model(BFL, model).size_rule.normalize(size)


def test_the_commands_offer_the_bfl_options_and_count_up_to_four() -> None:
    commands = {c.name: c for c in images_cog(BFL).__cog_app_commands__}
    imagine = {p.name: p for p in commands["imagine"].parameters}  # type: ignore[union-attr]
    assert list(imagine) == ["prompt", "model", "size", "count", "style", "raw", "steps", "guidance",
                             "safety_tolerance", "output_format", "prompt_upsampling", "seed"]  # fmt: skip
    assert (imagine["count"].min_value, imagine["count"].max_value) == (1, 4)
    assert (imagine["safety_tolerance"].min_value, imagine["safety_tolerance"].max_value) == (0, 6)
    assert [c.value for c in imagine["guidance"].choices][:3] == ["1.5", "2", "2.5"]
    assert all(len(option.description) <= 100 for option in BFL.options), "Discord's limit"
    edit_models = [c.value for c in {p.name: p for p in commands["edit"].parameters}["model"].choices]  # type: ignore[union-attr]
    assert edit_models == EDITORS


# -- submit bodies ------------------------------------------------------------------------------


@pytest.mark.parametrize("model", [m.name for m in BFL_MODELS])
async def test_every_model_takes_its_default_size_and_every_option_it_has(
    client: BflFlux, bfl: FakeBfl, model: str
) -> None:
    options = {name: value for name, value in EVERY_OPTION.items() if name in ENDPOINTS[model].options}
    submitted = await client.submit(generate(model, **options))
    body = bfl.submits[-1]
    assert set(body) - {"prompt", "width", "height", "aspect_ratio"} == set(options)
    assert submitted.task.task_id in bfl.tasks, "the fake checked the body against the model's schema"
    assert body["safety_tolerance"] == ENDPOINTS[model].safety_max, "6 is lowered to 5 for FLUX.2"
    done = await until_done(client, submitted.task)
    assert done.state is TaskState.SUCCEEDED
    assert done.images[0].seed == 42


@pytest.mark.parametrize("model", EDITORS)
async def test_every_editing_model_sends_the_attachment_url_as_input_image(
    client: BflFlux, bfl: FakeBfl, model: str
) -> None:
    await client.submit(edit(model))
    assert bfl.submits[-1] == {"prompt": "make it night", "input_image": "https://cdn.discordapp.com/a/1/cat.png"}


async def test_bodies_hold_each_models_own_fields(client: BflFlux, bfl: FakeBfl) -> None:
    await client.submit(generate("flux-pro-1.1", "1024x768", seed=7, output_format="webp", prompt_upsampling=True))
    await client.submit(generate("flux-pro-1.1-ultra", "21:9", raw=True, safety_tolerance=0))
    await client.submit(generate("flux-dev", "768x1344", steps=12, guidance="2.5"))
    await client.submit(generate("flux-2-flex", "1536x1024", steps=50, guidance="10", prompt_upsampling=False))
    await client.submit(edit("flux-kontext-max", "16:9", safety_tolerance=6))
    await client.submit(edit("flux-2-max", "1024x1536", safety_tolerance=6))
    prompt, image = "a lighthouse at dusk", "https://cdn.discordapp.com/a/1/cat.png"
    assert bfl.submits == [
        {"prompt": prompt, "width": 1024, "height": 768, "seed": 7, "output_format": "webp",
         "prompt_upsampling": True},
        {"prompt": prompt, "aspect_ratio": "21:9", "raw": True, "safety_tolerance": 0},
        {"prompt": prompt, "width": 768, "height": 1344, "steps": 12, "guidance": 2.5},
        {"prompt": prompt, "width": 1536, "height": 1024, "steps": 50, "guidance": 10.0, "prompt_upsampling": False},
        {"prompt": "make it night", "aspect_ratio": "16:9", "input_image": image, "safety_tolerance": 6},
        {"prompt": "make it night", "width": 1024, "height": 1536, "input_image": image, "safety_tolerance": 5},
    ]  # fmt: skip
    assert [r.path for r in bfl.requests] == [
        "/v1/flux-pro-1.1", "/v1/flux-pro-1.1-ultra", "/v1/flux-dev", "/v1/flux-2-flex", "/v1/flux-kontext-max",
        "/v1/flux-2-max",
    ]  # fmt: skip
    assert {r.headers["x-key"] for r in bfl.requests} == {bfl.key}


async def test_sizes_in_the_other_form_are_converted(client: BflFlux, bfl: FakeBfl) -> None:
    await client.submit(generate("flux-kontext-pro", "1024x768"))  # e.g. a re-roll of an old job
    await client.submit(generate("flux-2-pro", "16:9"))
    await client.submit(generate("flux-pro-1.1", "1:1"))
    await client.submit(edit("flux-2-pro", "3:2"))  # the Edit button: the input's ratio, kept by the API
    sizes = [{k: v for k, v in body.items() if k in ("width", "height", "aspect_ratio")} for body in bfl.submits]
    assert sizes == [{"aspect_ratio": "4:3"}, {"width": 1360, "height": 768}, {"width": 1024, "height": 1024}, {}]
    assert len(bfl.tasks) == 4, "the fake took every size"


@pytest.mark.parametrize(
    ("request_", "says"),
    [
        (generate("flux-2-pro", raw=True), "`raw` only works with `flux-pro-1.1-ultra`, not `flux-2-pro`"),
        (generate("flux-pro-1.1", steps=20), "`steps` only works with `flux-2-flex`, `flux-dev`"),
        (generate("flux-2-klein-9b", prompt_upsampling=True), "`prompt_upsampling` only works with"),
        (generate("flux-dev", guidance="7"), "`guidance` must be from 1.5 to 5 with `flux-dev`"),
        (generate("flux-2-pro", translate=True), "`translate` is not an option"),
        (generate("midjourney"), "not a Black Forest Labs model"),
        (edit("flux-dev"), "`flux-dev` cannot edit images"),
        (generate("flux-dev", "1000x1000"), "multiple of 32"),
    ],
)
async def test_what_a_model_cannot_take_is_refused_before_anything_is_sent(
    client: BflFlux, bfl: FakeBfl, request_: JobRequest, says: str
) -> None:
    with pytest.raises(ProviderError) as info:
        await client.submit(request_)
    assert info.value.kind is ErrorKind.INVALID_REQUEST
    assert says in info.value.user_message
    assert bfl.requests == []


async def test_a_task_makes_one_image_and_a_lookup_reads_one_task(client: BflFlux) -> None:
    with pytest.raises(ValueError, match="one image a task"):
        await client.submit(JobRequest("generate", "two cats", "flux-2-pro", "1024x1024", count=2))
    with pytest.raises(ValueError, match="at most 1 task"):
        await client.lookup([TaskRef("a"), TaskRef("b")])
    assert client.max_batch == 1


# -- polling ------------------------------------------------------------------------------------


async def test_a_task_is_polled_at_its_polling_url_as_given_until_ready(client: BflFlux, bfl: FakeBfl) -> None:
    bfl.polls_before_ready = 2
    submitted = await client.submit(generate("flux-2-pro", "1024x1024", seed=5))
    task = submitted.task
    assert task.poll_url == f"{bfl.base_url}{CLUSTER}/v1/get_result?id={task.task_id}"
    assert submitted.cost == 3.0, "the cost the answer reports, in credits"
    states = [(await client.lookup([task]))[task.task_id] for _ in range(3)]
    assert [s.state for s in states] == [TaskState.RUNNING, TaskState.RUNNING, TaskState.SUCCEEDED]
    ready = states[-1]
    assert ready.images[0].url == bfl.sample_url(bfl.tasks[task.task_id])
    assert ready.images[0].seed == 5
    assert [(r.path, r.query) for r in bfl.polls] == [(f"{CLUSTER}/v1/get_result", {"id": task.task_id})] * 3
    assert {r.headers["x-key"] for r in bfl.polls} == {bfl.key}


async def test_a_rebuilt_url_would_not_find_the_task(client: BflFlux, bfl: FakeBfl) -> None:
    task = (await client.submit(generate("flux-2-pro"))).task
    rebuilt = TaskRef(task.task_id)  # what a client that ignores polling_url would read
    assert await client.lookup([rebuilt]) == {}, "Task not found: unknown there"
    assert bfl.polls[-1].path == "/v1/get_result"


@pytest.mark.parametrize(
    ("poll_url", "used"),
    [
        ("https://api.us1.bfl.ai/v1/get_result?id=t1", True),
        ("https://api.eu.bfl.ai/v1/get_result?id=t1", True),
        ("https://bfl.ai/v1/get_result?id=t1", True),
        ("http://api.bfl.ai/v1/get_result?id=t1", False),  # the key never travels in clear text
        ("https://api.bfl.ai.attacker.example/v1/get_result?id=t1", False),
        ("https://attacker.example/v1/get_result?id=t1", False),
        ("not a url", False),
    ],
)
def test_the_key_is_only_sent_to_bfl_hosts(client: BflFlux, poll_url: str, used: bool) -> None:
    chosen = client.poll_url(TaskRef("t1", poll_url))
    assert chosen == (poll_url if used else f"{client.base_url}/v1/get_result?id=t1")


async def test_a_webhook_answer_without_polling_url_is_read_at_the_base(client: BflFlux, bfl: FakeBfl) -> None:
    bfl.webhook_answer_without_polling_url = True
    bfl.auto_webhook = False
    submitted = await client.submit(
        JobRequest("generate", "a fox", "flux-kontext-pro", "1:1", callback_url="https://bot.example/callbacks/x")
    )
    assert submitted.task.poll_url is None
    assert submitted.cost == 4.0
    assert (await until_done(client, submitted.task)).state is TaskState.SUCCEEDED
    assert {r.path for r in bfl.polls} == {"/v1/get_result"}


@pytest.mark.parametrize(
    ("outcome", "kind", "says"),
    [
        ("Request Moderated", ErrorKind.REFUSED, "blocked this request (the prompt, or the image to edit)"),
        ("Content Moderated", ErrorKind.REFUSED, "blocked the image it made"),
        ("Error", ErrorKind.PROVIDER_FAILED, "failed to make the image"),
    ],
)
async def test_failed_tasks_say_why(client: BflFlux, bfl: FakeBfl, outcome: str, kind: ErrorKind, says: str) -> None:
    bfl.outcomes.append(outcome)
    status = await until_done(client, (await client.submit(generate("flux-2-pro"))).task)
    assert status.state is TaskState.FAILED
    assert status.error is not None
    assert status.error.kind is kind
    assert says in status.error.user_message
    if kind is ErrorKind.REFUSED:
        assert "safety filter" in status.error.user_message
        assert "nothing was charged" in status.error.user_message
        assert "Reason given: Derivative Works Filter." in status.error.user_message, "the reason the API gave"
        assert status.cost == 0, "BFL does not charge a moderated task, whatever its submit reported"
    else:
        assert status.cost is None, "the submit's cost stands"


async def test_a_task_the_api_no_longer_has_is_left_out_until_the_jobs_timeout(client: BflFlux, bfl: FakeBfl) -> None:
    task = (await client.submit(generate("flux-2-pro"))).task
    bfl.forget(task.task_id)
    assert await client.lookup([task]) == {}, "`Task not found` is left out (the contract): a billed task is not failed"
    assert await client.lookup([TaskRef("no-such-task-0123")]) == {}


def test_results_are_read_leniently() -> None:
    unknown = parse_result("t", {"id": "t", "status": "Queued"})
    assert unknown.state is TaskState.RUNNING, "an undocumented status keeps the task waiting"
    no_sample = parse_result("t", {"id": "t", "status": "Ready", "result": {"sample": None}})
    assert no_sample.state is TaskState.FAILED
    without_seed = parse_result("t", {"status": "Ready", "result": {"sample": "https://delivery.bfl.ai/a.jpg"}})
    assert without_seed.images[0].seed is None
    text_seed = parse_result("t", {"status": "Ready", "result": {"sample": "https://d.bfl.ai/a.jpg", "seed": "9"}})
    assert text_seed.images[0].seed == 9
    odd = parse_result("t", {"status": "Error", "details": [{"deep": {"er": ["too", {"x": 1}]}}]})
    assert odd.error is not None
    assert odd.error.kind is ErrorKind.PROVIDER_FAILED
    assert parse_result("t", {"status": 3}).state is TaskState.RUNNING


async def test_sample_urls_stop_working_after_their_expiry(
    client: BflFlux, bfl: FakeBfl, session: aiohttp.ClientSession
) -> None:
    now = [1000.0]
    bfl.clock = lambda: now[0]
    status = await until_done(client, (await client.submit(generate("flux-2-pro"))).task)
    url = status.images[0].url
    async with session.get(url) as fresh:
        assert (fresh.status, fresh.content_type) == (200, "image/png")
    now[0] += 599
    async with session.get(url) as still:
        assert still.status == 200
    now[0] += 2
    async with session.get(url) as expired:
        assert expired.status == 403, "10 minutes after Ready the link is dead"
    assert [code for _, code in bfl.sample_downloads] == [200, 200, 403]


# -- HTTP errors --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("status", "kind", "says"),
    [
        (400, ErrorKind.INVALID_REQUEST, "could not take this request"),
        (401, ErrorKind.AUTH, "BFL_API_KEY"),
        (402, ErrorKind.OUT_OF_CREDIT, "out of credits"),
        (403, ErrorKind.AUTH, "may not use `flux-2-pro`"),
        (404, ErrorKind.MISCONFIGURED, "BFL_REGION"),
        (429, ErrorKind.RATE_LIMITED, "at once"),
        (500, ErrorKind.UNAVAILABLE, "trouble"),
        (502, ErrorKind.UNAVAILABLE, "trouble"),
        (503, ErrorKind.UNAVAILABLE, "trouble"),
        (418, ErrorKind.PROVIDER_FAILED, "failed"),
    ],
)
async def test_each_http_error_of_a_submit_gets_its_message(
    client: BflFlux, bfl: FakeBfl, status: int, kind: ErrorKind, says: str
) -> None:
    bfl.script("submit", status, {"detail": "something went wrong"})
    with pytest.raises(ProviderError) as info:
        await client.submit(generate("flux-2-pro"))
    assert (info.value.kind, info.value.http_status) == (kind, status)
    assert says in info.value.user_message
    assert info.value.safe_to_resend is (status == 429), "only a 429 surely started nothing; a 5xx may have"
    assert kind.operator_problem is (status in (401, 402, 403, 404))


async def test_a_422_names_the_field_in_the_members_words(client: BflFlux, bfl: FakeBfl) -> None:
    with pytest.raises(ProviderError) as info:
        await client.submit(generate("flux-2-pro", seed="soon"))  # the fake's schema check answers
    assert info.value.kind is ErrorKind.INVALID_REQUEST
    assert "refused `seed`" in info.value.user_message
    assert "valid integer" in info.value.user_message
    detail = [{"type": "multiple_of", "loc": ["body", "width"], "msg": "Input should be a multiple of 32"}]
    bfl.script("submit", 422, {"detail": detail})
    with pytest.raises(ProviderError) as info:
        await client.submit(generate("flux-pro-1.1"))
    assert "refused `size`" in info.value.user_message
    assert "width: Input should be a multiple of 32" in info.value.user_message


async def test_an_edit_image_the_api_cannot_fetch_says_so(client: BflFlux, bfl: FakeBfl) -> None:
    detail = [{"type": "value_error", "loc": ["body", "input_image"], "msg": "Failed to download image from URL"}]
    bfl.script("submit", 422, {"detail": detail})
    with pytest.raises(ProviderError) as info:
        await client.submit(edit("flux-kontext-pro"))
    assert info.value.kind is ErrorKind.IMAGE_UNREACHABLE


async def test_credits_that_run_out_answer_402(client: BflFlux, bfl: FakeBfl) -> None:
    bfl.credits = 5
    await client.submit(generate("flux-2-pro"))
    with pytest.raises(ProviderError) as info:
        await client.submit(generate("flux-2-pro"))
    assert info.value.kind is ErrorKind.OUT_OF_CREDIT


async def test_the_concurrency_limit_answers_429_safe_to_resend(client: BflFlux, bfl: FakeBfl) -> None:
    bfl.hold = True
    for _ in range(6):
        await client.submit(edit("flux-kontext-max"))
    with pytest.raises(ProviderError) as info:
        await client.submit(edit("flux-kontext-max"))
    assert (info.value.kind, info.value.safe_to_resend) == (ErrorKind.RATE_LIMITED, True)
    assert len(bfl.tasks) == 6, "the refused submit started nothing"
    for _ in range(18):
        await client.submit(generate("flux-2-klein-4b"))
    with pytest.raises(ProviderError) as info:
        await client.submit(generate("flux-2-klein-4b"))
    assert info.value.kind is ErrorKind.RATE_LIMITED
    assert bfl.active == 24


@pytest.mark.parametrize("refused_with", [401, 403])
async def test_a_wrong_key_is_an_auth_error_everywhere(
    bfl: FakeBfl, session: aiohttp.ClientSession, refused_with: int
) -> None:
    bfl.bad_key_status = refused_with
    wrong = BflFlux(session, Secret("not-the-key"), bfl.base_url, request_timeout=5)
    for call in (wrong.submit(generate("flux-2-pro")), wrong.check_key(), wrong.lookup([TaskRef("t")])):
        with pytest.raises(ProviderError) as info:
            await call
        assert info.value.kind is ErrorKind.AUTH
        assert "not-the-key" not in str(info.value) + info.value.user_message


async def test_lookup_errors_are_raised_and_5xx_is_retryable(client: BflFlux, bfl: FakeBfl) -> None:
    task = (await client.submit(generate("flux-2-pro"))).task
    bfl.script("poll", 503, "<html>Service Unavailable</html>")
    with pytest.raises(ProviderError) as info:
        await client.lookup([task])
    assert (info.value.kind, info.value.retryable) == (ErrorKind.UNAVAILABLE, True)
    bfl.script("poll", 200, "<html>a captive portal</html>")
    with pytest.raises(ProviderError) as info:
        await client.lookup([task])
    assert info.value.kind is ErrorKind.BAD_RESPONSE
    assert (await until_done(client, task)).state is TaskState.SUCCEEDED


async def test_secrets_never_show_in_errors_or_repr(client: BflFlux, bfl: FakeBfl) -> None:
    bfl.script("submit", 500, {"detail": f"failed on {{'x-key': '{bfl.key}', 'webhook_secret': '{SECRET}'}}"})
    with pytest.raises(ProviderError) as info:
        await client.submit(JobRequest("generate", "a", "flux-2-pro", "", callback_url="https://bot.example/c/s"))
    shown = str(info.value) + info.value.user_message + info.value.detail + repr(client)
    assert bfl.key not in shown
    assert SECRET not in shown


# -- the key check ------------------------------------------------------------------------------


async def test_check_key_reads_the_credits(client: BflFlux, bfl: FakeBfl) -> None:
    await client.check_key()
    assert bfl.requests[-1].path == "/v1/credits"
    bfl.credits = 0
    with pytest.raises(ProviderError) as info:
        await client.check_key()
    assert info.value.kind is ErrorKind.OUT_OF_CREDIT


@pytest.mark.parametrize(
    ("status", "body", "kind"),
    [
        (403, {"detail": "Forbidden"}, ErrorKind.AUTH),
        (401, {"detail": "Unauthorized"}, ErrorKind.AUTH),
        (404, "<html>Not Found</html>", ErrorKind.MISCONFIGURED),
        (200, "<html>a proxy's page</html>", ErrorKind.BAD_RESPONSE),
        (503, {"detail": "maintenance"}, ErrorKind.UNAVAILABLE),
    ],
)
async def test_check_key_failures(client: BflFlux, bfl: FakeBfl, status: int, body: Any, kind: ErrorKind) -> None:
    bfl.script("credits", status, body)
    with pytest.raises(ProviderError) as info:
        await client.check_key()
    assert info.value.kind is kind


# -- webhooks -----------------------------------------------------------------------------------


async def test_a_callback_url_is_sent_as_webhook_url_with_the_secret(
    client: BflFlux, bfl: FakeBfl, session: aiohttp.ClientSession
) -> None:
    url = "https://bot.example/callbacks/flux/s3cret"
    await client.submit(JobRequest("generate", "a", "flux-2-pro", "", callback_url=url))
    assert (bfl.submits[-1]["webhook_url"], bfl.submits[-1]["webhook_secret"]) == (url, SECRET)
    unsigned = BflFlux(session, Secret(bfl.key), bfl.base_url)
    await unsigned.submit(JobRequest("generate", "a", "flux-2-pro", "", callback_url=url))
    assert bfl.submits[-1]["webhook_url"] == url
    assert "webhook_secret" not in bfl.submits[-1]
    await client.submit(JobRequest("generate", "a", "flux-2-pro", "", callback_url="https://b.example/" + "x" * 2100))
    assert "webhook_url" not in bfl.submits[-1], "longer than the schema takes: polling only"


@pytest.mark.parametrize(
    ("status", "detail"),
    [
        (422, [{"type": "value_error", "loc": ["body", "webhook_url"], "msg": "URL scheme should be 'https'"}]),
        (400, "webhook_url must use HTTPS"),
    ],
)
async def test_a_refused_webhook_url_is_dropped_and_the_job_still_starts(
    client: BflFlux, bfl: FakeBfl, status: int, detail: Any
) -> None:
    bfl.script("submit", status, {"detail": detail})
    submitted = await client.submit(JobRequest("generate", "a", "flux-2-pro", "", callback_url="http://bot:8080/c"))
    assert submitted.task.task_id in bfl.tasks
    assert ["webhook_url" in body for body in bfl.submits] == [True, False]
    bfl.script("submit", 400, {"detail": "prompt too long"})
    with pytest.raises(ProviderError):
        await client.submit(JobRequest("generate", "a", "flux-2-pro", "", callback_url="http://bot:8080/c"))
    assert len(bfl.submits) == 3, "any other refusal is not resent"


def test_callback_bodies_give_only_the_task_id_as_a_hint(client: BflFlux, bfl: FakeBfl) -> None:
    raw = b'{"id": "3f6c4d5e-1a2b-4c3d-9e8f-0a1b2c3d4e5f", "status": "Ready", "result": {"sample": "https://x"}}'
    body = {"id": "3f6c4d5e-1a2b-4c3d-9e8f-0a1b2c3d4e5f", "status": "Ready"}
    signed = {"X-BFL-Signature": bfl.signature(raw, SECRET)}
    assert client.callback_task_id(raw, body, signed) == body["id"]
    upper_hex = {"x-bfl-signature": "sha256=" + bfl.signature(raw, SECRET).removeprefix("sha256=").upper()}
    assert client.callback_task_id(raw, body, upper_hex) == body["id"], "any case of the header and the hex"
    assert client.callback_task_id(raw, body, {}) == body["id"], "the scheme is not documented: unsigned is a hint"
    for wrong in (bfl.signature(raw, "another secret"), bfl.signature(raw + b" ", SECRET), "sha1=abc", "v1,xyz"):
        with pytest.raises(CallbackRefused):
            client.callback_task_id(raw, body, {"X-BFL-Signature": wrong})
    no_secret = BflFlux(client.session, Secret(bfl.key), bfl.base_url)
    assert no_secret.callback_task_id(raw, body, {"X-BFL-Signature": "sha256=00"}) == body["id"]
    assert client.callback_task_id(raw, {"status": "Ready"}, {}) is None
    assert client.callback_task_id(raw, {"id": "bad id\n"}, {}) is None
    assert client.callback_task_id(raw, ["id"], {}) is None
    ace_data = {"success": True, "task_id": body["id"], "trace_id": "t", "data": []}
    assert client.callback_task_id(raw, ace_data, {}) is None, "another provider's callback (its `task_id`)"


async def test_a_real_webhook_from_the_fake_is_accepted_and_confirmed_by_a_lookup(
    client: BflFlux, bfl: FakeBfl
) -> None:
    hints: list[str | None] = []

    async def receive(request: web.Request) -> web.Response:
        raw = await request.read()
        hints.append(client.callback_task_id(raw, await request.json(), request.headers))
        return web.Response(status=200)

    app = web.Application()
    app.router.add_post("/callbacks/flux/s", receive)
    runner = web.AppRunner(app)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", 0).start()
    try:
        url = f"http://127.0.0.1:{runner.addresses[0][1]}/callbacks/flux/s"
        task = (await client.submit(JobRequest("generate", "a", "flux-2-pro", "", callback_url=url))).task
        bfl.auto_webhook = False
        bfl.finish(task.task_id)
        assert await bfl.send_webhook(task.task_id) == 200
        assert hints == [task.task_id]
        assert await bfl.send_webhook(task.task_id, signature="sha256=" + "0" * 64) == 500
        confirmed = (await client.lookup([task]))[task.task_id]
        assert confirmed.state is TaskState.SUCCEEDED, "the lookup, not the webhook body, gives the result"
    finally:
        await runner.cleanup()


# -- wiring -------------------------------------------------------------------------------------


async def test_build_providers_makes_a_bfl_client_for_its_key(session: aiohttp.ClientSession) -> None:
    settings = Settings(
        discord_token=Secret("d"), provider="bfl", bfl_api_key=Secret("k-bfl"), bfl_region="eu",
        bfl_api_base_url="https://api.eu.bfl.ai", bfl_webhook_secret=Secret("w"),
    )  # fmt: skip
    clients = build_providers(settings, session)
    client: object = clients["bfl"]
    assert isinstance(client, BflFlux)
    assert (client.base_url, client.key, client.webhook_secret) == (
        "https://api.eu.bfl.ai",
        Secret("k-bfl"),
        Secret("w"),
    )
    assert "bfl" not in build_providers(Settings(discord_token=Secret("d")), session)


@pytest.mark.parametrize(
    ("model", "body", "loc", "kind"),
    [
        ("flux-pro-1.1", {"prompt": "a", "width": 1000, "height": 768}, "width", "multiple_of"),
        ("flux-dev", {"prompt": "a", "guidance": 7}, "guidance", "less_than_equal"),
        ("flux-2-pro", {"prompt": "a", "safety_tolerance": 6}, "safety_tolerance", "less_than_equal"),
        ("flux-2-pro", {"prompt": "a", "raw": True}, "raw", "extra_forbidden"),
        ("flux-kontext-pro", {"input_image": "https://x/a.png"}, "prompt", "missing"),
        ("flux-pro-1.1-ultra", {"prompt": "a", "aspect_ratio": "3:1"}, "aspect_ratio", "value_error"),
        ("flux-2-max", {"prompt": "a", "width": 2560, "height": 2048}, "width", "value_error"),
    ],
)
async def test_the_fake_refuses_what_the_schema_refuses(
    bfl: FakeBfl, session: aiohttp.ClientSession, model: str, body: dict[str, Any], loc: str, kind: str
) -> None:
    async with session.post(f"{bfl.base_url}/v1/{model}", json=body, headers={"x-key": bfl.key}) as resp:
        assert resp.status == 422
        [problem] = (await resp.json())["detail"]
    assert (problem["loc"], problem["type"]) == (["body", loc], kind)
    assert bfl.tasks == {}
