"""The Ace Data Cloud client against the in-process fake that speaks the provider's JSON shapes."""

from __future__ import annotations

import asyncio
import logging

import aiohttp
import pytest
from aiohttp import web

from fluxbot.config import Secret
from fluxbot.logs import redact, setup_logging
from fluxbot.providers.acedata import AceDataFlux, error_from_answer, parse_result, parse_task_record
from fluxbot.providers.base import ErrorKind, JobRequest, ProviderError, TaskRef, TaskState
from tests.e2e import free_port
from tests.fakes.flux_api import FakeFlux, envelope

GENERATE = JobRequest("generate", "a white siamese cat", "flux-pro-1.1", "1024x768", count=4)
EDIT = JobRequest("edit", "make it blue", "flux-kontext-pro", "16:9", image_url="https://cdn.example/cat.png")


async def test_submit_generate_sends_the_documented_body(client: AceDataFlux, flux: FakeFlux) -> None:
    task_id = (await client.submit(GENERATE)).task.task_id
    assert task_id in flux.tasks
    assert flux.submits == [
        {
            "action": "generate",
            "prompt": "a white siamese cat",
            "model": "flux-pro-1.1",
            "size": "1024x768",
            "count": 4,
            "async": True,
        }
    ]
    headers = flux.requests[0].headers
    assert headers["Authorization"] == f"Bearer {flux.token}"
    assert headers["Accept"] == "application/json"


async def test_submit_edit_sends_the_image_url_and_no_count(client: AceDataFlux, flux: FakeFlux) -> None:
    await client.submit(EDIT)
    body = flux.submits[0]
    assert body["image_url"] == "https://cdn.example/cat.png"
    assert body["model"] == "flux-kontext-pro"
    assert "count" not in body


async def test_lookup_follows_a_task_from_running_to_done(client: AceDataFlux, flux: FakeFlux) -> None:
    flux.hold = True
    task_id = (await client.submit(GENERATE)).task.task_id
    running = await client.lookup([TaskRef(task_id)])
    assert running[task_id].state is TaskState.RUNNING
    assert flux.lookups[-1] == {"action": "retrieve_batch", "ids": [task_id]}

    flux.finish(task_id)
    done = (await client.lookup([TaskRef(task_id)]))[task_id]
    assert done.state is TaskState.SUCCEEDED
    assert [i.seed for i in done.images] == [1000, 1001, 1002, 1003]
    assert done.images[0].url.endswith(f"/files/{task_id}/0.png")
    assert done.inference_seconds == pytest.approx(3.328)


async def test_lookup_of_a_failed_task_maps_its_error(client: AceDataFlux, flux: FakeFlux) -> None:
    flux.lookups_before_done = 0
    flux.task_errors.append(("api_error", "fetch failed"))
    task_id = (await client.submit(EDIT)).task.task_id
    status = (await client.lookup([TaskRef(task_id)]))[task_id]
    assert status.state is TaskState.FAILED
    assert status.error is not None
    assert status.error.kind is ErrorKind.IMAGE_UNREACHABLE
    assert "could not download your image" in status.error.user_message


@pytest.mark.parametrize("empty_records", [False, True])
async def test_batch_lookup_leaves_unknown_ids_out(client: AceDataFlux, flux: FakeFlux, empty_records: bool) -> None:
    flux.hold = True
    flux.empty_records_for_unknown = empty_records
    ids = [(await client.submit(GENERATE)).task.task_id for _ in range(3)]
    flux.finish(ids[1])
    statuses = await client.lookup([TaskRef(i) for i in [*ids, "not-a-task"]])
    assert set(statuses) == set(ids)
    assert [statuses[i].state for i in ids] == [TaskState.RUNNING, TaskState.SUCCEEDED, TaskState.RUNNING]
    assert len(flux.lookups) == 1


async def test_lookup_refuses_more_than_a_batch(client: AceDataFlux) -> None:
    with pytest.raises(ValueError, match="at most 50"):
        await client.lookup([TaskRef(str(i)) for i in range(51)])
    assert await client.lookup([]) == {}


async def test_an_unknown_id_is_an_empty_record(client: AceDataFlux, flux: FakeFlux) -> None:
    flux.empty_records_for_unknown = True
    assert await client.lookup([TaskRef("nobody-knows-me")]) == {}
    assert flux.lookups == [{"action": "retrieve_batch", "ids": ["nobody-knows-me"]}]
    assert parse_task_record({}) is None


def test_results_are_parsed_leniently() -> None:
    status = parse_result(
        "t",
        {
            "success": True,
            "data": [
                {"prompt": "p", "image_url": "https://a/1.png", "timings": 1752743801},
                {"prompt": "p", "image_url": "https://a/2.png", "seed": "77"},
                {"prompt": "no url"},
                {"prompt": "not a web url", "image_url": "javascript:alert(1)"},
                {"prompt": "seed too big", "image_url": "https://a/3.png", "seed": "9" * 40},
                {"prompt": "a superscript is a digit but no number", "image_url": "https://a/4.png", "seed": "²"},
            ],
        },
    )
    assert status.state is TaskState.SUCCEEDED
    assert [(i.url, i.seed) for i in status.images] == [
        ("https://a/1.png", None),
        ("https://a/2.png", 77),
        ("https://a/3.png", None),
        ("https://a/4.png", None),
    ]
    assert status.inference_seconds is None
    empty = parse_result("t", {"success": True, "data": []})
    assert empty.state is TaskState.FAILED


@pytest.mark.parametrize(
    ("status", "code", "message", "kind", "says"),
    [
        (400, "bad_request", "size is required", ErrorKind.INVALID_REQUEST, "size is required"),
        (400, "token_mismatched", "token mismatched", ErrorKind.AUTH, "operator"),
        (400, "api_not_implemented", "not implemented", ErrorKind.AUTH, "not enabled"),
        (400, "no_token", "no token", ErrorKind.AUTH, "missing"),
        (400, "disabled", "application disabled", ErrorKind.AUTH, "disabled"),
        (401, "invalid_token", "invalid token", ErrorKind.AUTH, "API key is not valid"),
        (401, "token_expired", "expired", ErrorKind.AUTH, "expired"),
        (401, "token_mismatched", "mismatch", ErrorKind.AUTH, "operator"),
        (403, "used_up", "insufficient balance", ErrorKind.OUT_OF_CREDIT, "out of credit"),
        (403, "forbidden", "content moderation", ErrorKind.REFUSED, "content rules"),
        (404, "no_api", "no api", ErrorKind.MISCONFIGURED, "FLUX_API_BASE_URL"),
        (429, "too_many_requests", "slow down", ErrorKind.RATE_LIMITED, "try again in a minute"),
        (500, "api_error", "fetch failed", ErrorKind.IMAGE_UNREACHABLE, "could not download"),
        (500, "api_error", "model crashed", ErrorKind.PROVIDER_FAILED, "model crashed"),
        (503, "service_unavailable", "down", ErrorKind.UNAVAILABLE, "down for the moment"),
        (504, "timeout", "too slow", ErrorKind.UNAVAILABLE, "took too long"),
    ],
)
async def test_every_documented_error_gets_its_own_message(
    client: AceDataFlux, flux: FakeFlux, status: int, code: str, message: str, kind: ErrorKind, says: str
) -> None:
    flux.script("/flux/images", status, envelope(code, message))
    with pytest.raises(ProviderError) as info:
        await client.submit(EDIT)
    error = info.value
    assert (error.kind, error.http_status, error.code) == (kind, status, code)
    assert says in error.user_message
    assert error.safe_to_resend is (status == 429)
    assert flux.token not in str(error)


async def test_operator_problems_are_flagged(client: AceDataFlux, flux: FakeFlux) -> None:
    flux.script("/flux/tasks", 401, envelope("invalid_token", "bad"))
    with pytest.raises(ProviderError) as info:
        await client.lookup([TaskRef("x")])
    assert info.value.kind.operator_problem


async def test_a_wrong_token_is_refused_by_the_fake_and_mapped(flux: FakeFlux, session: aiohttp.ClientSession) -> None:
    wrong = AceDataFlux(session, Secret("nope"), flux.base_url)
    with pytest.raises(ProviderError) as info:
        await wrong.submit(GENERATE)
    assert info.value.kind is ErrorKind.AUTH
    assert "nope" not in repr(wrong)


async def test_a_non_json_gateway_error_is_a_provider_failure(client: AceDataFlux, flux: FakeFlux) -> None:
    flux.script("/flux/images", 502, "<html>Bad Gateway</html>")
    with pytest.raises(ProviderError) as info:
        await client.submit(GENERATE)
    assert info.value.kind is ErrorKind.PROVIDER_FAILED
    assert not info.value.safe_to_resend


async def test_a_submit_answer_without_task_id_is_reported(client: AceDataFlux, flux: FakeFlux) -> None:
    flux.script("/flux/images", 200, {"trace_id": "t"})
    with pytest.raises(ProviderError) as info:
        await client.submit(GENERATE)
    assert info.value.kind is ErrorKind.BAD_RESPONSE


async def test_connection_refused_is_safe_to_resend(session: aiohttp.ClientSession) -> None:
    client = AceDataFlux(session, Secret("t"), f"http://127.0.0.1:{free_port()}")
    with pytest.raises(ProviderError) as info:
        await client.submit(GENERATE)
    assert info.value.kind is ErrorKind.UNAVAILABLE
    assert info.value.safe_to_resend


async def test_a_timeout_is_ambiguous_and_not_safe_to_resend(session: aiohttp.ClientSession) -> None:
    async def slow(request: web.Request) -> web.Response:
        await asyncio.sleep(1)
        return web.json_response({})

    app = web.Application()
    app.router.add_post("/flux/images", slow)
    runner = web.AppRunner(app)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", 0).start()
    port = runner.addresses[0][1]
    try:
        client = AceDataFlux(session, Secret("t"), f"http://127.0.0.1:{port}", request_timeout=0.2)
        with pytest.raises(ProviderError) as info:
            await client.submit(GENERATE)
        assert info.value.kind is ErrorKind.UNAVAILABLE
        assert not info.value.safe_to_resend
    finally:
        await runner.cleanup()


def test_the_api_key_echoed_in_a_provider_error_is_not_shown_to_members() -> None:
    root = logging.getLogger()
    handlers, level = root.handlers[:], root.level
    try:
        setup_logging("INFO", ["sk-operator-key-0123456789"])
    finally:
        root.handlers[:], root.level = handlers, level
    error = error_from_answer(
        400, envelope("bad_request", "token sk-operator-key-0123456789 is malformed"), action=None
    )
    assert "sk-operator-key-0123456789" not in error.user_message
    assert "***" in error.user_message


def test_a_secret_echoed_in_a_provider_error_is_not_shown() -> None:
    redact("cb-secret-0123456789")
    error = error_from_answer(
        400,
        envelope("bad_request", "invalid callback_url https://bot.test/callbacks/flux/cb-secret-0123456789"),
        action=None,
    )
    assert "cb-secret-0123456789" not in error.user_message
    assert "cb-secret-0123456789" not in str(error)


@pytest.mark.parametrize("task_id", ["a\nb", "a\r\nWARNING forged", "a b", "a\ud800", "é", "x" * 201, "", 12, None])
def test_a_callback_task_id_that_could_forge_a_log_line_is_none(client: AceDataFlux, task_id: object) -> None:
    assert client.callback_task_id(b"", {"task_id": task_id, "success": True}, {}) is None


def test_a_callback_task_id_of_the_documented_form_is_read(client: AceDataFlux) -> None:
    task_id = "6a97c1d2-8f4e-4b1a-9c3d-2e5f6a7b8c9d"
    assert client.callback_task_id(b"", {"task_id": task_id, "success": True}, {}) == task_id
