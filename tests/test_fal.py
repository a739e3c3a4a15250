"""The fal.ai client against the in-process fake of its queue API: bodies per model, statuses, URLs used as returned,
errors in plain words, and the start-up key check. (Webhook signatures: tests/test_fal_webhook.py.)"""

from __future__ import annotations

import subprocess
import sys
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import pytest

from fluxbot import catalog
from fluxbot.config import Secret, load_settings
from fluxbot.providers import build_providers
from fluxbot.providers.base import ErrorKind, JobRequest, ProviderError, TaskRef, TaskState
from fluxbot.providers.fal import FalFlux, parse_result, poll_url_of, urls_of
from tests.botprocess import ROOT
from tests.fakes.fal_api import LOCKED, FakeFal

IMAGE = "https://cdn.discordapp.test/attachments/1/2/cat.png"


@pytest.fixture
async def fal() -> AsyncIterator[FakeFal]:
    fake = FakeFal()
    await fake.start()
    yield fake
    await fake.close()


@pytest.fixture
def client(fal: FakeFal, session: aiohttp.ClientSession) -> FalFlux:
    return FalFlux(
        session, Secret(fal.key), fal.base_url, fal.jwks_url, request_timeout=5, lookup_retry_delays=(0.0, 0.0)
    )


def generate(model: str, size: str, count: int = 1, **options: Any) -> JobRequest:
    return JobRequest("generate", "a lighthouse", model, size, count=count, options=options)


def edit(model: str, size: str = catalog.KEEP_RATIO, **options: Any) -> JobRequest:
    return JobRequest("edit", "make it night", model, size, image_url=IMAGE, options=options)


async def sent(client: FalFlux, fal: FakeFal, request: JobRequest) -> tuple[str, dict[str, Any]]:
    await client.submit(request)
    model_id, body, _ = fal.submits[-1]
    return model_id, body


async def finish(client: FalFlux, ref: TaskRef) -> Any:
    """Look a task up until it is no longer running (the fake moves one step a read)."""
    for _ in range(10):
        status = (await client.lookup([ref]))[ref.task_id]
        if status.state is not TaskState.RUNNING:
            return status
    raise AssertionError("still running")


@pytest.mark.parametrize(
    ("request_", "model_id", "body"),
    [
        (generate("flux-dev", "1024x768", 4, guidance="3.5", steps=30, seed=7, enable_safety_checker=False,
                  output_format="png"),
         "fal-ai/flux/dev",
         {"prompt": "a lighthouse", "image_size": "landscape_4_3", "num_images": 4, "guidance_scale": 3.5,
          "num_inference_steps": 30, "seed": 7, "enable_safety_checker": False, "output_format": "png"}),
        (generate("flux-dev", "1216x832"), "fal-ai/flux/dev",
         {"prompt": "a lighthouse", "image_size": {"width": 1216, "height": 832}, "num_images": 1}),
        (generate("flux-pro-1.1", "1024x1024", 2, safety_tolerance=6), "fal-ai/flux-pro/v1.1",
         {"prompt": "a lighthouse", "image_size": "square_hd", "num_images": 2, "safety_tolerance": "6"}),
        (generate("flux-pro-1.1-ultra", "21:9", 3, seed=1), "fal-ai/flux-pro/v1.1-ultra",
         {"prompt": "a lighthouse", "aspect_ratio": "21:9", "num_images": 3, "seed": 1}),
        (generate("flux-kontext-pro", "1:1", 2, guidance="2.5"), "fal-ai/flux-pro/kontext/text-to-image",
         {"prompt": "a lighthouse", "aspect_ratio": "1:1", "num_images": 2, "guidance_scale": 2.5}),
        (generate("flux-kontext-max", "9:16"), "fal-ai/flux-pro/kontext/max/text-to-image",
         {"prompt": "a lighthouse", "aspect_ratio": "9:16", "num_images": 1}),
        (edit("flux-kontext-pro", safety_tolerance=1), "fal-ai/flux-pro/kontext",
         {"prompt": "make it night", "num_images": 1, "image_url": IMAGE, "safety_tolerance": "1"}),
        (edit("flux-kontext-max", "16:9"), "fal-ai/flux-pro/kontext/max",
         {"prompt": "make it night", "aspect_ratio": "16:9", "num_images": 1, "image_url": IMAGE}),
        (generate("flux-2-pro", "576x1024", safety_tolerance=6), "fal-ai/flux-2-pro",
         {"prompt": "a lighthouse", "image_size": "portrait_16_9", "safety_tolerance": "5"}),
        (generate("flux-2-max", "2048x2048", enable_safety_checker=True), "fal-ai/flux-2-max",
         {"prompt": "a lighthouse", "image_size": {"width": 2048, "height": 2048}, "enable_safety_checker": True}),
        (generate("flux-2-flex", "1024x768", steps=12, guidance="5"), "fal-ai/flux-2-flex",
         {"prompt": "a lighthouse", "image_size": "landscape_4_3", "num_inference_steps": 12, "guidance_scale": 5.0}),
        (edit("flux-2-pro"), "fal-ai/flux-2-pro/edit", {"prompt": "make it night", "image_urls": [IMAGE]}),
        (edit("flux-2-max", "1536x1024"), "fal-ai/flux-2-max/edit",
         {"prompt": "make it night", "image_size": {"width": 1536, "height": 1024}, "image_urls": [IMAGE]}),
        (edit("flux-2-flex", steps=20), "fal-ai/flux-2-flex/edit",
         {"prompt": "make it night", "image_urls": [IMAGE], "num_inference_steps": 20}),
    ],
)  # fmt: skip
async def test_each_model_gets_its_endpoints_body(
    client: FalFlux, fal: FakeFal, request_: JobRequest, model_id: str, body: dict[str, Any]
) -> None:
    assert await sent(client, fal, request_) == (model_id, body)
    [queued] = fal.requests.values()
    assert queued.result is None, "the fake found the body valid for that endpoint"


async def test_every_catalogue_model_and_option_the_model_takes_is_a_valid_body(client: FalFlux, fal: FakeFal) -> None:
    """Each model with every option it takes, at its default size (and edited where it can): fal's schema accepts."""
    from fluxbot.providers.fal_models import FAL_ENDPOINTS

    values: dict[str, Any] = {"guidance": "20", "steps": 50, "safety_tolerance": 6, "enable_safety_checker": False,
              "output_format": "png", "seed": 2**32 - 1}  # fmt: skip
    info = catalog.PROVIDERS["fal"]
    for model in info.models:
        options = {name: values[name] for name in FAL_ENDPOINTS[model.name].options}
        requests = [generate(model.name, model.default_size, model.images_per_task, **options)]
        if model.can_edit:
            requests.append(edit(model.name, **options))
        for request in requests:
            await client.submit(request)
    assert len(fal.submits) == len(info.models) + len(catalog.edit_models(info))
    assert [q.model_id for q in fal.requests.values() if q.result is not None] == [], "no body was refused"


async def test_an_option_the_model_does_not_take_is_refused_before_anything_is_sent(
    client: FalFlux, fal: FakeFal
) -> None:
    with pytest.raises(ProviderError) as info:
        await client.submit(generate("flux-pro-1.1", "1024x1024", steps=20))
    assert info.value.kind is ErrorKind.INVALID_REQUEST
    assert info.value.user_message == (
        "`steps` does not apply to FLUX 1.1 [pro] on fal.ai. Leave it out, or pick one of `flux-dev`, `flux-2-flex`."
    )
    # A server's safety ceiling adds safety_tolerance to every request: a model without it has its checker instead.
    await client.submit(generate("flux-dev", "1024x1024", safety_tolerance=2))
    bodies = [body for _, body, _ in fal.submits]
    assert bodies == [{"prompt": "a lighthouse", "image_size": "square_hd", "num_images": 1}]


async def test_a_count_above_the_models_images_per_task_is_a_programming_error(client: FalFlux) -> None:
    with pytest.raises(ValueError, match="makes 1 image"):
        await client.submit(generate("flux-2-pro", "1024x1024", 2))


async def test_the_webhook_goes_in_the_query_urlencoded(client: FalFlux, fal: FakeFal) -> None:
    callback = "https://bot.example.org/callbacks/s3cr%t?x=1&y=2"
    await client.submit(JobRequest("generate", "a cat", "flux-dev", "1024x1024", callback_url=callback))
    [(_, _, query)] = fal.submits
    assert query == {"fal_webhook": callback}
    [queued] = fal.requests.values()
    assert queued.webhook == callback
    await client.submit(generate("flux-dev", "1024x1024"))
    assert fal.submits[-1][2] == {}, "no webhook without a callback URL"


async def test_a_request_moves_from_the_queue_to_done_through_the_urls_fal_returned(
    client: FalFlux, fal: FakeFal
) -> None:
    fal.queue_positions = (2, 1, 0)
    submitted = await client.submit(generate("flux-dev", "1024x768", 2, seed=5))
    ref = submitted.task
    queued = fal.requests[ref.task_id]
    assert ref.poll_url == f"{fal.base_url}/fal-ai/flux/requests/{ref.task_id}", "the response_url, as returned"
    assert (submitted.cost, queued.model_id) == (None, "fal-ai/flux/dev")
    seen = []
    for _ in range(4):
        status = (await client.lookup([ref]))[ref.task_id]
        seen.append((status.state, status.queue_position))
    assert seen == [(TaskState.RUNNING, 2), (TaskState.RUNNING, 1), (TaskState.RUNNING, 0), (TaskState.RUNNING, None)]
    done = (await client.lookup([ref]))[ref.task_id]
    assert done.state is TaskState.SUCCEEDED
    assert [(i.url, i.seed, i.flagged) for i in done.images] == [
        (f"{fal.base_url}/files/{ref.task_id}/0.png", 5, False),
        (f"{fal.base_url}/files/{ref.task_id}/1.png", None, False),
    ]
    assert done.inference_seconds == 1.25
    assert queued.result_reads == 1, "the result was fetched in the same lookup that saw COMPLETED"
    assert all("/dev/" not in path for method, path in fal.calls if method == "GET"), "no URL was rebuilt"


async def test_a_status_url_of_another_form_is_kept_as_given(client: FalFlux, fal: FakeFal) -> None:
    fal.odd_status_urls = True
    ref = (await client.submit(generate("flux-2-pro", "1024x1024"))).task
    assert ref.poll_url is not None
    assert ref.poll_url.startswith("{")
    assert urls_of(ref.poll_url) == (
        f"{fal.base_url}/fal-ai/flux-2-pro/requests/{ref.task_id}/status?shape=2",
        f"{fal.base_url}/fal-ai/flux-2-pro/requests/{ref.task_id}",
    )
    assert (await finish(client, ref)).state is TaskState.SUCCEEDED
    assert urls_of(poll_url_of("https://q/x", "https://q/x/status")) == ("https://q/x/status", "https://q/x")
    assert urls_of(None) is None
    assert urls_of("{not json") is None


async def test_flagged_images_are_marked(client: FalFlux, fal: FakeFal) -> None:
    ref = (await client.submit(JobRequest("generate", "a cat [nsfw]", "flux-dev", "1024x1024", count=2))).task
    done = await finish(client, ref)
    assert [i.flagged for i in done.images] == [True, True]
    mixed = parse_result("t", {"images": [{"url": "https://v3.fal.media/a.png"}, {"url": "https://v3.fal.media/b.png"},
                                          {"url": "data:image/png;base64,AAAA"}],
                               "has_nsfw_concepts": [False, True, True], "seed": "12"})  # fmt: skip
    assert [(i.url[-5:], i.seed, i.flagged) for i in mixed.images] == [("a.png", 12, False), ("b.png", None, True)]


async def test_a_result_gone_before_it_was_fetched_is_a_failure_that_says_so(client: FalFlux, fal: FakeFal) -> None:
    fal.queue_positions, fal.in_progress_reads = (), 0
    ref = (await client.submit(generate("flux-dev", "1024x1024"))).task
    queued = fal.requests[ref.task_id]
    queued.completed_at, fal.clock_offset = fal.now(), 3600.0  # completed an hour ago, never fetched
    status = (await client.lookup([ref]))[ref.task_id]
    assert status.state is TaskState.FAILED
    assert status.error is not None
    assert status.error.kind is ErrorKind.PROVIDER_FAILED
    assert "expired before the bot could fetch it" in status.error.user_message


@pytest.mark.parametrize(
    ("request_", "kind", "words"),
    [
        (generate("flux-dev", "1024x1024", steps=60), ErrorKind.INVALID_REQUEST,
         "fal.ai refused the `steps` of this request: Input should be a valid num_inference_steps. Change it"),
        (JobRequest("generate", "a cat [policy]", "flux-kontext-pro", "1:1"), ErrorKind.REFUSED,
         "fal.ai's content filter refused this prompt or image."),
    ],
)  # fmt: skip
async def test_a_model_error_in_the_result_is_a_failure_in_plain_words(
    client: FalFlux, fal: FakeFal, request_: JobRequest, kind: ErrorKind, words: str
) -> None:
    ref = (await client.submit(request_)).task
    status = await finish(client, ref)
    assert status.state is TaskState.FAILED
    assert status.error is not None
    assert status.error.kind is kind
    assert words in status.error.user_message


async def test_a_422_at_submit_names_the_field(client: FalFlux, fal: FakeFal) -> None:
    fal.validate_at_submit = True
    with pytest.raises(ProviderError) as info:
        await client.submit(generate("flux-2-pro", "32x32"))
    assert info.value.kind is ErrorKind.INVALID_REQUEST
    assert info.value.user_message.startswith("fal.ai refused the `size` of this request: Input should be")
    assert info.value.detail.startswith("image_size: ")
    assert not info.value.safe_to_resend


@pytest.mark.parametrize(
    ("status", "body", "kind", "resend"),
    [
        (401, {"detail": "No user found for Key ID and Secret"}, ErrorKind.AUTH, False),
        (403, {"detail": LOCKED}, ErrorKind.OUT_OF_CREDIT, False),
        (403, {"detail": "Access denied to this application"}, ErrorKind.AUTH, False),
        (429, {"detail": "Too many requests"}, ErrorKind.RATE_LIMITED, True),
        (500, {"detail": "Internal Server Error"}, ErrorKind.UNAVAILABLE, False),
        (502, "<html>Bad Gateway</html>", ErrorKind.UNAVAILABLE, False),
        (404, {"detail": "Application 'fal-ai/flux' not found"}, ErrorKind.MISCONFIGURED, False),
    ],
)
async def test_submit_errors(
    client: FalFlux, fal: FakeFal, status: int, body: Any, kind: ErrorKind, resend: bool
) -> None:
    fal.script("submit", status, body)
    with pytest.raises(ProviderError) as info:
        await client.submit(generate("flux-dev", "1024x1024"))
    assert (info.value.kind, info.value.safe_to_resend, info.value.http_status) == (kind, resend, status)
    assert len(fal.submits) == 1, "a submit is never resent by the client (a 5xx may have started a job)"
    assert fal.key not in str(info.value)
    assert fal.key not in info.value.user_message


async def test_a_wrong_key_and_a_locked_account_are_told_apart(client: FalFlux, fal: FakeFal) -> None:
    fal.locked = True
    with pytest.raises(ProviderError) as info:
        await client.submit(generate("flux-dev", "1024x1024"))
    assert info.value.kind is ErrorKind.OUT_OF_CREDIT
    assert info.value.kind.operator_problem
    fal.locked, fal.key = False, "another-id:another-secret"
    with pytest.raises(ProviderError) as info:
        await client.submit(generate("flux-dev", "1024x1024"))
    assert (info.value.kind, info.value.user_message) == (
        ErrorKind.AUTH, "The bot's fal.ai key (FAL_KEY) is missing or not valid. Please tell the bot's operator."
    )  # fmt: skip


async def test_a_lookup_retries_5xx_and_then_gives_up_as_unavailable(client: FalFlux, fal: FakeFal) -> None:
    ref = (await client.submit(generate("flux-dev", "1024x1024"))).task
    fal.script("status", 503, "<html>Service Unavailable</html>", times=2)
    status = (await client.lookup([ref]))[ref.task_id]
    assert status.state is TaskState.RUNNING, "the third try answered"
    fal.script("status", 502, "<html>Bad Gateway</html>", times=3)
    with pytest.raises(ProviderError) as info:
        await client.lookup([ref])
    assert info.value.kind is ErrorKind.UNAVAILABLE
    assert info.value.retryable


async def test_a_result_5xx_from_the_queue_is_asked_again_not_taken_as_a_failure(client: FalFlux, fal: FakeFal) -> None:
    fal.queue_positions, fal.in_progress_reads = (), 0
    ref = (await client.submit(generate("flux-dev", "1024x1024"))).task
    fal.script("result", 504, "<html>Gateway Timeout</html>", times=3)
    with pytest.raises(ProviderError) as info:
        await client.lookup([ref])
    assert info.value.kind is ErrorKind.UNAVAILABLE
    assert (await client.lookup([ref]))[ref.task_id].state is TaskState.SUCCEEDED, "the next lookup fetches it"


async def test_a_model_5xx_result_is_the_tasks_failure(client: FalFlux, fal: FakeFal) -> None:
    ref = (await client.submit(generate("flux-dev", "1024x1024"))).task
    fal.fail(ref.task_id, 500, [{"loc": [], "msg": "CUDA out of memory", "type": "internal_server_error"}])
    status = await finish(client, ref)
    assert status.error is not None
    assert (status.state, status.error.kind) == (TaskState.FAILED, ErrorKind.PROVIDER_FAILED)
    assert status.error.user_message == (
        "fal.ai failed to make the image. The provider said: “CUDA out of memory”. Please try again."
    )


@pytest.mark.parametrize(
    ("kind_name", "kind"),
    [("file_download_error", ErrorKind.IMAGE_UNREACHABLE), ("image_too_large", ErrorKind.INVALID_REQUEST)],
)
async def test_input_image_errors(client: FalFlux, fal: FakeFal, kind_name: str, kind: ErrorKind) -> None:
    ref = (await client.submit(edit("flux-kontext-pro"))).task
    fal.fail(ref.task_id, 422, [{"loc": ["body", "image_url"], "msg": "Bad image", "type": kind_name}])
    status = await finish(client, ref)
    assert status.error is not None
    assert status.error.kind is kind


async def test_an_unknown_request_is_left_out(client: FalFlux, fal: FakeFal) -> None:
    ghost = TaskRef("ghost", poll_url=f"{fal.base_url}/fal-ai/flux/requests/ghost")
    assert await client.lookup([ghost]) == {}
    with pytest.raises(ValueError, match="at most 1"):
        await client.lookup([ghost, ghost])


async def test_urls_off_fals_hosts_are_never_sent_the_key(client: FalFlux, fal: FakeFal) -> None:
    fal.script("submit", 200, {"request_id": "r1", "response_url": "https://evil.example/requests/r1"})
    with pytest.raises(ProviderError) as info:
        await client.submit(generate("flux-dev", "1024x1024"))
    assert info.value.kind is ErrorKind.BAD_RESPONSE
    stored = TaskRef("r2", poll_url="https://evil.example/requests/r2")
    status = (await client.lookup([stored]))["r2"]
    assert status.state is TaskState.FAILED
    assert client._ours("https://queue.fal.run/fal-ai/flux/requests/x")
    assert not client._ours("http://queue.fal.run/x"), "fal's own hosts over https only"
    assert not client._ours("https://fal.run.evil.example/x")


async def test_the_key_check(client: FalFlux, fal: FakeFal) -> None:
    await client.check_key()
    assert fal.calls == [("GET", "/fal-ai/flux/requests/00000000-0000-0000-0000-000000000000/status")]
    assert fal.jwks_fetches == 0, "no webhook keys without webhooks"
    client.webhooks = True
    await client.check_key()
    assert fal.jwks_fetches == 1
    assert client.signing_keys.usable()
    fal.locked = True
    with pytest.raises(ProviderError) as info:
        await client.check_key()
    assert info.value.kind is ErrorKind.OUT_OF_CREDIT
    fal.locked, fal.key = False, "wrong:key"
    with pytest.raises(ProviderError) as info:
        await client.check_key()
    assert info.value.kind is ErrorKind.AUTH
    fal.script("status", 404, "<html>Not Found</html>")
    with pytest.raises(ProviderError) as info:
        await FalFlux(client.session, Secret(fal.key), fal.base_url).check_key()
    assert info.value.kind is ErrorKind.MISCONFIGURED
    assert "FAL_QUEUE_URL" in info.value.user_message


def test_the_key_never_shows(fal: FakeFal, session: aiohttp.ClientSession) -> None:
    shown = repr(FalFlux(session, Secret("key-id:very-secret"), fal.base_url))
    assert "very-secret" not in shown
    assert "key-id" not in shown


async def test_build_providers_builds_the_fal_client_when_its_key_is_set(
    tmp_path: Any, session: aiohttp.ClientSession
) -> None:
    env = {"DISCORD_TOKEN": "d", "FLUX_PROVIDER": "fal", "FAL_KEY": "id:secret",
           "DATABASE_PATH": str(tmp_path / "f.db"), "FAL_QUEUE_URL": "http://127.0.0.1:1/",
           "CALLBACK_BASE_URL": "https://bot.example.org"}  # fmt: skip
    clients = build_providers(load_settings(env, env_file=None), session)
    client: Any = clients["fal"]  # Any until issue 14's Provider interface describes FalFlux
    assert isinstance(client, FalFlux)
    assert (client.queue_url, client.jwks_url, client.webhooks, client.max_batch) == (
        "http://127.0.0.1:1", "https://rest.alpha.fal.ai/.well-known/jwks.json", True, 1
    )  # fmt: skip
    assert list(clients) == ["fal"]


def test_the_catalogue_entry() -> None:
    info = catalog.PROVIDERS["fal"]
    assert (info.label, info.key_setting, info.url_setting, info.results_expire, info.max_count) == (
        "fal.ai", "FAL_KEY", "FAL_QUEUE_URL", True, 4
    )  # fmt: skip
    per_task = {m.name: m.images_per_task for m in info.models}
    assert per_task == {"flux-dev": 4, "flux-pro-1.1": 4, "flux-pro-1.1-ultra": 4, "flux-kontext-pro": 4,
                        "flux-kontext-max": 4, "flux-2-pro": 1, "flux-2-max": 1, "flux-2-flex": 1}  # fmt: skip
    assert [m.name for m in catalog.edit_models(info)] == [
        "flux-kontext-pro", "flux-kontext-max", "flux-2-pro", "flux-2-max", "flux-2-flex"
    ]  # fmt: skip
    assert catalog.DEFAULT_EDIT_MODEL in catalog.model_names(info), "the Edit button's model is offered"
    fixed = {"prompt", "model", "size", "count", "style", "image"}
    assert not fixed & {o.name for o in info.options}
    assert all(len(o.choices) <= 25 and len(o.description) <= 100 for o in info.options), "Discord's limits"


@pytest.mark.parametrize("first", ["fluxbot.catalog", "fluxbot.providers.fal_models", "fluxbot.config",
                                   "fluxbot.providers", "fluxbot.limits"])  # fmt: skip
def test_the_catalogue_has_fal_whichever_module_is_imported_first(first: str) -> None:
    code = f"import {first}; from fluxbot import catalog; print(list(catalog.PROVIDERS))"
    done = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert done.stdout.strip() == "['acedata', 'kie', 'bfl', 'fal']", done.stderr
