"""fal.ai's webhooks: Ed25519 signatures checked against the fake's JWKS exactly as fal's four steps say, key
rotation, a JWKS that cannot be fetched, and resent callbacks."""

from __future__ import annotations

import hashlib
import json
import time
from collections.abc import AsyncIterator

import aiohttp
import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from fluxbot.config import Secret
from fluxbot.providers.base import CallbackRefused, JobRequest
from fluxbot.providers.fal import FalFlux
from fluxbot.providers.fal_webhook import (
    KEYS_MAX_AGE_SECONDS,
    KEYS_REFRESH_AGE_SECONDS,
    SIGNED_HEADERS,
    check_signature,
    public_keys,
    signed_message,
)
from tests.fakes.fal_api import FakeFal

CALLBACK = "https://bot.example.org/callbacks/secret-path"


@pytest.fixture
async def fal() -> AsyncIterator[FakeFal]:
    fake = FakeFal()
    await fake.start()
    yield fake
    await fake.close()


@pytest.fixture
async def client(fal: FakeFal, session: aiohttp.ClientSession) -> FalFlux:
    client = FalFlux(session, Secret(fal.key), fal.base_url, fal.jwks_url, webhooks=True, request_timeout=5)
    await client.check_key()  # fetches the webhook keys
    return client


async def submitted(client: FalFlux) -> str:
    request = JobRequest("generate", "a cat", "flux-dev", "1024x1024", callback_url=CALLBACK)
    return (await client.submit(request)).task.task_id


async def test_a_validly_signed_callback_names_its_request(client: FalFlux, fal: FakeFal) -> None:
    request_id = await submitted(client)
    raw, body, headers = fal.webhook(request_id)
    assert body["status"] == "OK"
    assert body["payload"]["images"]
    assert client.callback_task_id(raw, body, headers) == request_id
    lowered = {name.lower(): value for name, value in headers.items()}
    assert client.callback_task_id(raw, body, lowered) == request_id, "header names in any case"


async def test_a_resent_callback_is_answered_the_same_without_fetching_anything(client: FalFlux, fal: FakeFal) -> None:
    """fal resends up to 10 times over 2 hours: each resend names the same request (the core then finds it finished
    and does nothing), and costs no JWKS fetch."""
    request_id = await submitted(client)
    fetches = fal.jwks_fetches
    for _ in range(3):
        raw, body, headers = fal.webhook(request_id)
        assert client.callback_task_id(raw, body, headers) == request_id
    assert fal.jwks_fetches == fetches


async def test_a_tampered_body_is_refused(client: FalFlux, fal: FakeFal) -> None:
    request_id = await submitted(client)
    raw, _body, headers = fal.webhook(request_id)
    forged = raw.replace(b'"OK"', b'"ERROR"')
    with pytest.raises(CallbackRefused, match=r"matches none of fal.ai's published keys"):
        client.callback_task_id(forged, json.loads(forged), headers)


async def test_an_old_or_future_timestamp_is_refused(client: FalFlux, fal: FakeFal) -> None:
    request_id = await submitted(client)
    for moment in (int(time.time()) - 301, int(time.time()) + 400):
        raw, body, headers = fal.webhook(request_id, timestamp=moment)
        with pytest.raises(CallbackRefused, match="more than 5 minutes old"):
            client.callback_task_id(raw, body, headers)
    raw, body, headers = fal.webhook(request_id, timestamp=int(time.time()) - 240)
    assert client.callback_task_id(raw, body, headers) == request_id, "within the 5 minutes"


@pytest.mark.parametrize("missing", SIGNED_HEADERS)
async def test_a_missing_header_is_refused(client: FalFlux, fal: FakeFal, missing: str) -> None:
    request_id = await submitted(client)
    raw, body, headers = fal.webhook(request_id)
    del headers[missing]
    with pytest.raises(CallbackRefused, match=f"lacks fal.ai's signature header {missing}"):
        client.callback_task_id(raw, body, headers)


async def test_malformed_headers_are_refused(client: FalFlux, fal: FakeFal) -> None:
    request_id = await submitted(client)
    raw, body, headers = fal.webhook(request_id)
    for name, value, words in [
        ("X-Fal-Webhook-Timestamp", "1e9", "not a number"),
        ("X-Fal-Webhook-Signature", "zz" * 64, "not the hex"),
        ("X-Fal-Webhook-Request-Id", "evil\nline", "not a request id"),
    ]:
        with pytest.raises(CallbackRefused, match=words):
            client.callback_task_id(raw, body, {**headers, name: value})
    other = fal.webhook(request_id, header_request_id="another-request")
    with pytest.raises(CallbackRefused, match="not the one its body names"):
        client.callback_task_id(*other)


async def test_an_unknown_key_refetches_the_keys_once_and_is_still_refused(client: FalFlux, fal: FakeFal) -> None:
    request_id = await submitted(client)
    raw, body, headers = fal.webhook(request_id, key=Ed25519PrivateKey.generate())
    fetches = fal.jwks_fetches
    with pytest.raises(CallbackRefused, match="matches none"):
        client.callback_task_id(raw, body, headers)
    await client.signing_keys.settled()
    assert fal.jwks_fetches == fetches + 1, "a refetch, in case fal rotated its keys"
    with pytest.raises(CallbackRefused, match="matches none"):
        client.callback_task_id(raw, body, headers)
    await client.signing_keys.settled()
    assert fal.jwks_fetches == fetches + 1, "a flood of bad signatures causes one fetch a minute at most"


async def test_a_rotated_key_is_believed_once_its_refetch_is_in(client: FalFlux, fal: FakeFal) -> None:
    request_id = await submitted(client)
    fal.rotate_key()
    raw, body, headers = fal.webhook(request_id)
    with pytest.raises(CallbackRefused):
        client.callback_task_id(raw, body, headers)
    await client.signing_keys.settled()
    raw, body, headers = fal.webhook(request_id)  # fal's retry of the same callback
    assert client.callback_task_id(raw, body, headers) == request_id


async def test_without_keys_every_callback_is_refused(fal: FakeFal, session: aiohttp.ClientSession) -> None:
    fal.jwks_failing = True
    client = FalFlux(session, Secret(fal.key), fal.base_url, fal.jwks_url, webhooks=True, request_timeout=5)
    await client.check_key()  # logs that the keys could not be fetched; the key itself is fine
    request_id = await submitted(client)
    raw, body, headers = fal.webhook(request_id)
    with pytest.raises(CallbackRefused, match="keys are not loaded"):
        client.callback_task_id(raw, body, headers)
    await client.signing_keys.settled()  # the refetch it caused failed too
    fal.jwks_failing = False
    client.signing_keys._last_refetch = None  # a minute later
    with pytest.raises(CallbackRefused, match="keys are not loaded"):
        client.callback_task_id(raw, body, headers)
    await client.signing_keys.settled()
    assert client.callback_task_id(raw, body, headers) == request_id


async def test_keys_older_than_a_day_are_not_used_and_old_ones_are_refreshed_at_submit(
    client: FalFlux, fal: FakeFal
) -> None:
    request_id = await submitted(client)
    keys = client.signing_keys
    assert keys.fetched_at is not None
    keys.fetched_at -= KEYS_REFRESH_AGE_SECONDS + 1
    fetches = fal.jwks_fetches
    await submitted(client)
    await keys.settled()
    assert fal.jwks_fetches == fetches + 1, "a submit that asks for a webhook refreshes keys half a day old"
    keys.fetched_at -= KEYS_MAX_AGE_SECONDS + 1
    keys._last_refetch = None  # a minute later
    raw, body, headers = fal.webhook(request_id)
    with pytest.raises(CallbackRefused, match="not loaded"):
        client.callback_task_id(raw, body, headers)
    await keys.settled()
    assert client.callback_task_id(raw, body, headers) == request_id


async def test_other_providers_callbacks_are_not_fals(client: FalFlux) -> None:
    assert client.callback_task_id(b"{}", {"task_id": "abc", "success": True}, {}) is None
    assert client.callback_task_id(b"{}", {"code": 200, "data": {"taskId": "abc"}}, {}) is None
    with pytest.raises(CallbackRefused, match="lacks"):
        client.callback_task_id(b"{}", {"request_id": "a", "gateway_request_id": "a", "status": "OK"}, {})


def test_the_signature_is_over_fals_four_lines(fal: FakeFal) -> None:
    raw = b'{"request_id": "r"}'
    headers = fal.signed("r", raw, timestamp=1_700_000_000)
    message = signed_message("r", fal.user_id, "1700000000", raw)
    assert message == f"r\n{fal.user_id}\n1700000000\n".encode() + hashlib.sha256(raw).hexdigest().encode()
    fal.signing_key.public_key().verify(bytes.fromhex(headers["X-Fal-Webhook-Signature"]), message)
    assert len(public_keys(fal.jwks())) == 1
    assert public_keys({"keys": [{"kty": "RSA", "n": "x"}, {"x": "short"}, "junk"]}) == ()
    assert public_keys(None) == ()


async def test_check_signature_uses_the_given_clock(client: FalFlux, fal: FakeFal) -> None:
    request_id = await submitted(client)
    raw, _, headers = fal.webhook(request_id, timestamp=1_000_000)
    assert check_signature(client.signing_keys, raw, headers, now=1_000_100) == request_id
