"""The Kie.ai client against the in-process fake that speaks Kie's shapes, and callback signatures."""

from __future__ import annotations

import base64
import hashlib
import hmac
import time
from collections.abc import AsyncIterator

import aiohttp
import pytest

from fluxbot.config import Secret
from fluxbot.providers.base import CallbackRefused, ErrorKind, JobRequest, ProviderError, TaskRef, TaskState
from fluxbot.providers.kie import KieFlux, check_signature, parse_record
from tests.fakes.kie_api import FakeKie

GENERATE = JobRequest(
    "generate", "a lighthouse", "flux-kontext-max", "16:9",
    options={"output_format": "png", "prompt_upsampling": True, "safety_tolerance": 4, "translate": False},
)  # fmt: skip
EDIT = JobRequest("edit", "make it night", "flux-kontext-pro", "1:1", image_url="https://cdn.test/a.png")


@pytest.fixture
async def kie() -> AsyncIterator[FakeKie]:
    fake = FakeKie(webhook_key="whsec-test")
    await fake.start()
    yield fake
    await fake.close()


@pytest.fixture
def client(kie: FakeKie, session: aiohttp.ClientSession) -> KieFlux:
    return KieFlux(session, Secret(kie.token), kie.base_url, webhook_key=Secret("whsec-test"), request_timeout=5)


async def test_generate_and_edit_send_kies_fields(client: KieFlux, kie: FakeKie) -> None:
    await client.submit(GENERATE)
    await client.submit(EDIT)
    assert kie.submits == [
        {"prompt": "a lighthouse", "model": "flux-kontext-max", "aspectRatio": "16:9", "outputFormat": "png",
         "promptUpsampling": True, "safetyTolerance": 4, "enableTranslation": False},
        {"prompt": "make it night", "model": "flux-kontext-pro", "aspectRatio": "1:1",
         "inputImage": "https://cdn.test/a.png"},
    ]  # fmt: skip


async def test_a_task_goes_from_generating_to_done(client: KieFlux, kie: FakeKie) -> None:
    kie.hold = True
    task_id = (await client.submit(GENERATE)).task.task_id
    assert (await client.lookup([TaskRef(task_id)]))[task_id].state is TaskState.RUNNING
    kie.finish(task_id)
    done = (await client.lookup([TaskRef(task_id)]))[task_id]
    assert done.state is TaskState.SUCCEEDED
    assert [i.url for i in done.images] == [f"{kie.base_url}/files/{task_id}/0.png"]
    assert kie.lookups == [task_id, task_id]


@pytest.mark.parametrize(("flag", "error", "kind"), [(2, (500, "create failed"), ErrorKind.PROVIDER_FAILED),
                                                     (3, (501, "generation failed"), ErrorKind.PROVIDER_FAILED),
                                                     (3, (400, "nsfw"), ErrorKind.REFUSED)])  # fmt: skip
async def test_both_failure_flags_are_failures(
    client: KieFlux, kie: FakeKie, flag: int, error: tuple[int, str], kind: ErrorKind
) -> None:
    kie.hold = True
    task_id = (await client.submit(GENERATE)).task.task_id
    kie.finish(task_id, flag=flag, error=error)
    status = (await client.lookup([TaskRef(task_id)]))[task_id]
    assert status.state is TaskState.FAILED
    assert status.error is not None
    assert status.error.kind is kind
    assert status.error.code == str(error[0])


def test_records_are_parsed_leniently() -> None:
    running = parse_record("t", {"taskId": "t", "successFlag": "0", "response": None, "errorCode": "null"})
    assert running is not None
    assert running.state is TaskState.RUNNING
    failed = parse_record("t", {"taskId": "t", "successFlag": "3", "errorCode": "null", "errorMessage": "null"})
    assert failed is not None
    assert failed.state is TaskState.FAILED
    assert failed.error is not None
    assert "“" not in failed.error.user_message, "a 'null' message is no message"
    assert parse_record("t", {}) is None
    no_image = parse_record("t", {"taskId": "t", "successFlag": 1, "response": {"resultImageUrl": "null"}})
    assert no_image is not None
    assert no_image.state is TaskState.FAILED


async def test_an_unknown_task_is_left_out(client: KieFlux) -> None:
    assert await client.lookup([TaskRef("nope")]) == {}


@pytest.mark.parametrize(
    ("code", "kind", "says"),
    [
        (401, ErrorKind.AUTH, "API key"),
        (402, ErrorKind.OUT_OF_CREDIT, "out of credits"),
        (404, ErrorKind.MISCONFIGURED, "KIE_API_BASE_URL"),
        (422, ErrorKind.INVALID_REQUEST, "refused the request"),
        (429, ErrorKind.RATE_LIMITED, "try again in a minute"),
        (455, ErrorKind.UNAVAILABLE, "maintenance"),
        (500, ErrorKind.PROVIDER_FAILED, "failed"),
        (501, ErrorKind.PROVIDER_FAILED, "could not be generated"),
        (505, ErrorKind.MISCONFIGURED, "disabled"),
        (400, ErrorKind.REFUSED, "content policy"),
    ],
)
async def test_errors_in_an_http_200_body_get_their_own_message(
    client: KieFlux, kie: FakeKie, code: int, kind: ErrorKind, says: str
) -> None:
    kie.script("generate", 200, {"code": code, "msg": "something", "data": None})
    with pytest.raises(ProviderError) as info:
        await client.submit(GENERATE)
    assert (info.value.kind, info.value.code, info.value.http_status) == (kind, str(code), 200)
    assert says in info.value.user_message
    assert info.value.safe_to_resend is (code == 429)


@pytest.mark.parametrize(
    ("status", "kind", "says"),
    [
        (401, ErrorKind.AUTH, "Kie.ai API key is missing or not valid"),
        (402, ErrorKind.OUT_OF_CREDIT, "Kie.ai account is out of credits"),
        (422, ErrorKind.INVALID_REQUEST, "refused the request"),
        (429, ErrorKind.RATE_LIMITED, "busy right now"),
        (455, ErrorKind.UNAVAILABLE, "down for maintenance"),
        (500, ErrorKind.PROVIDER_FAILED, "The image provider failed."),
        (501, ErrorKind.PROVIDER_FAILED, "could not be generated"),
        (505, ErrorKind.MISCONFIGURED, "feature is disabled for the bot's Kie.ai account"),
        (502, ErrorKind.UNAVAILABLE, "cannot be reached right now"),
        (503, ErrorKind.UNAVAILABLE, "cannot be reached right now"),
        (504, ErrorKind.UNAVAILABLE, "cannot be reached right now"),
    ],
)
@pytest.mark.parametrize("kies_json", [True, False], ids=["kie-json", "not-json"])
async def test_real_http_errors_get_their_own_message(
    client: KieFlux, kie: FakeKie, status: int, kind: ErrorKind, says: str, kies_json: bool
) -> None:
    body = {"code": status, "msg": "something"} if kies_json else f"<html><h1>{status} Error</h1></html>"
    kie.script("generate", status, body)
    with pytest.raises(ProviderError) as info:
        await client.submit(GENERATE)
    assert (info.value.kind, info.value.http_status) == (kind, status)
    assert info.value.code == (str(status) if kies_json else None), "only Kie's own answer carries its code"
    assert says in info.value.user_message
    assert "<html" not in info.value.user_message
    assert info.value.safe_to_resend is (status == 429)


@pytest.mark.parametrize("http_status", [200, 404])
async def test_a_404_in_kies_json_answer_is_an_unknown_task(client: KieFlux, kie: FakeKie, http_status: int) -> None:
    kie.script("record", http_status, {"code": 404, "msg": "task not found", "data": None})
    assert await client.lookup([TaskRef("gone")]) == {}


@pytest.mark.parametrize(
    "body", ["<html><body><h1>404 Not Found</h1>nginx</body></html>", {"detail": "Not Found"}, {"code": 404}]
)
async def test_an_http_404_that_is_not_kies_answer_is_a_wrong_base_url(
    client: KieFlux, kie: FakeKie, body: object
) -> None:
    kie.script("record", 404, body)
    with pytest.raises(ProviderError) as info:
        await client.lookup([TaskRef("t")])
    assert (info.value.kind, info.value.http_status, info.value.code) == (ErrorKind.MISCONFIGURED, 404, None)
    assert info.value.kind.operator_problem
    assert "KIE_API_BASE_URL" in info.value.user_message
    assert "not Kie's JSON answer" in str(info.value), "the log line says why"


async def test_a_base_url_with_a_wrong_path_is_reported_not_taken_for_unknown_tasks(
    kie: FakeKie, session: aiohttp.ClientSession
) -> None:
    wrong = KieFlux(session, Secret(kie.token), kie.base_url + "/proxy", request_timeout=5)
    with pytest.raises(ProviderError) as looked_up:
        await wrong.lookup([TaskRef("t")])
    with pytest.raises(ProviderError) as submitted:
        await wrong.submit(GENERATE)
    for info in (looked_up, submitted):
        assert info.value.kind is ErrorKind.MISCONFIGURED
        assert "KIE_API_BASE_URL" in info.value.user_message
    assert kie.lookups == [], "nothing reached the real endpoints"


async def test_a_real_http_429_is_rate_limiting(client: KieFlux, kie: FakeKie) -> None:
    kie.script("record", 429, {"code": 429, "msg": "Too Many Requests"})
    with pytest.raises(ProviderError) as info:
        await client.lookup([TaskRef("x")])
    assert (info.value.kind, info.value.http_status) == (ErrorKind.RATE_LIMITED, 429)


async def test_a_wrong_key_is_refused_as_an_operator_problem(kie: FakeKie, session: aiohttp.ClientSession) -> None:
    wrong = KieFlux(session, Secret("nope"), kie.base_url)
    with pytest.raises(ProviderError) as info:
        await wrong.submit(GENERATE)
    assert info.value.kind.operator_problem
    assert "nope" not in repr(wrong)


async def test_callbacks_need_a_valid_signature_when_a_key_is_set(client: KieFlux, kie: FakeKie) -> None:
    task_id = (await client.submit(GENERATE)).task.task_id
    kie.finish(task_id)
    body = kie.callback_body(task_id)
    assert client.callback_task_id(b"", body, kie.signed_headers(task_id)) == task_id
    with pytest.raises(CallbackRefused, match="not signed"):
        client.callback_task_id(b"", body, {})
    with pytest.raises(CallbackRefused, match="does not match"):
        client.callback_task_id(b"", body, kie.signed_headers(task_id, key="another key"))
    with pytest.raises(CallbackRefused, match="too old"):
        client.callback_task_id(b"", body, kie.signed_headers(task_id, timestamp=int(time.time()) - 3600))
    unsigned = KieFlux(client.session, Secret("k"), kie.base_url)
    assert unsigned.callback_task_id(b"", body, {}) == task_id, "without a key, callbacks are hints confirmed by lookup"
    assert client.callback_task_id(b"", {"code": 200}, {}) is None


@pytest.mark.parametrize("stamp", ["soon", "nan", "inf", "-inf", "1e999", "2026-01-06 08:17:04"])
async def test_a_signed_timestamp_that_is_not_a_number_is_refused(client: KieFlux, kie: FakeKie, stamp: str) -> None:
    task_id = (await client.submit(GENERATE)).task.task_id
    kie.finish(task_id)
    headers = kie.signed_headers(task_id, timestamp=stamp)
    with pytest.raises(CallbackRefused, match="not a number"):
        client.callback_task_id(b"", kie.callback_body(task_id), headers)


def test_signatures_in_milliseconds_are_accepted() -> None:
    fake = FakeKie(webhook_key="k")
    now = 1_800_000_000
    check_signature("k", "t1", fake.signed_headers("t1", timestamp=now * 1000), now=now)


async def test_a_task_record_info_refuses_is_left_out_without_failing_the_round(client: KieFlux, kie: FakeKie) -> None:
    kie.script("record", 200, {"code": 422, "msg": "record not found", "data": None})
    assert await client.lookup([TaskRef("expired-task")]) == {}
    kie.script("record", 200, {"code": 401, "msg": "bad key", "data": None})
    with pytest.raises(ProviderError) as info:
        await client.lookup([TaskRef("any")])
    assert info.value.kind is ErrorKind.AUTH, "key problems still fail the round"


def test_only_a_failed_edit_blames_the_input_image() -> None:
    from fluxbot.providers.kie import error_for

    assert error_for(500, "failed to fetch image", http_status=None, action=None).kind is ErrorKind.IMAGE_UNREACHABLE
    assert error_for(401, "could not fetch credentials", http_status=401, action=None).kind is ErrorKind.AUTH
    generate = error_for(500, "fetch timeout", http_status=None, action="generate")
    assert generate.kind is ErrorKind.PROVIDER_FAILED


NOW = str(int(time.time()))
GOOD_DIGEST = "A" * 43 + "="
# Header values as aiohttp hands them over: bytes that are not UTF-8 arrive as lone surrogates (surrogateescape).
MALFORMED_HEADERS = {
    "a signature that was not UTF-8": {"X-Webhook-Timestamp": NOW, "X-Webhook-Signature": "\udcff\udcfe" + "A" * 42},
    "a timestamp that was not UTF-8": {"X-Webhook-Timestamp": NOW + "\udcff", "X-Webhook-Signature": GOOD_DIGEST},
    "a signature in non-ASCII text": {"X-Webhook-Timestamp": NOW, "X-Webhook-Signature": "é" * 44},
    "a signature of 16 bytes": {"X-Webhook-Timestamp": NOW, "X-Webhook-Signature": "A" * 22 + "=="},
    "a signature in hex": {"X-Webhook-Timestamp": NOW, "X-Webhook-Signature": "ab" * 32},
    "no timestamp": {"X-Webhook-Signature": GOOD_DIGEST},
    "no signature": {"X-Webhook-Timestamp": NOW},
}


@pytest.mark.parametrize("headers", MALFORMED_HEADERS.values(), ids=MALFORMED_HEADERS.keys())
def test_every_malformed_signature_header_is_a_refusal(headers: dict[str, str]) -> None:
    with pytest.raises(CallbackRefused, match=r"^the callback"):
        check_signature("k", "t1", headers)


@pytest.mark.parametrize("stamp", ["1_800_000_000", "١٨٠٠٠٠٠٠٠٠", "+1800000000", "1800000000.5", "18" * 10])
def test_a_signed_timestamp_is_an_integer_in_ascii_digits(stamp: str) -> None:
    # float() takes each of these (and the HMAC matches): only Kie's documented form proves the callback is fresh.
    fake = FakeKie(webhook_key="k")
    with pytest.raises(CallbackRefused, match="not a number"):
        check_signature("k", "t1", fake.signed_headers("t1", timestamp=stamp), now=1_800_000_000)


def test_a_key_read_from_the_environment_with_odd_bytes_still_checks() -> None:
    # os.environ decodes a non-UTF-8 value with surrogateescape: the key's bytes are what Kie signs with.
    digest = hmac.new(b"k\xff", b"t1.1800000000", hashlib.sha256).digest()
    headers = {"X-Webhook-Timestamp": "1800000000", "X-Webhook-Signature": base64.b64encode(digest).decode()}
    check_signature("k\udcff", "t1", headers, now=1_800_000_000)
    unpadded = {**headers, "X-Webhook-Signature": headers["X-Webhook-Signature"].rstrip("=")}
    check_signature("k\udcff", "t1", unpadded, now=1_800_000_000)


@pytest.mark.parametrize("task_id", ["a\nb", "a b", "a\ud800", "é", "x" * 201, "", 12])
def test_a_callback_task_id_that_could_forge_a_log_line_is_none(client: KieFlux, kie: FakeKie, task_id: object) -> None:
    body = {"code": 200, "data": {"taskId": task_id}}
    headers = kie.signed_headers(task_id) if isinstance(task_id, str) and "\ud800" not in task_id else {}
    assert client.callback_task_id(b"", body, headers) is None, "checked before the signature (or anything) uses it"
