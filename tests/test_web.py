"""The callback endpoint on raw HTTP: malformed signatures, task ids that could forge log lines, floods, slow hints."""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import json
import logging
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import aiohttp
import pytest

from fluxbot.config import Secret
from fluxbot.jobs.lifecycle import CallbackOutcome
from fluxbot.providers.acedata import AceDataFlux
from fluxbot.providers.base import Provider, valid_task_id
from fluxbot.providers.kie import KieFlux
from fluxbot.web import WebServer

SECRET = "cb-secret-0123456789abcdef"
KEY = "kie-webhook-key-0123"
TASK = "4a1c2e3f5b6d7e8f9a0b1c2d3e4f5a6b"


class Clock:
    """A clock the test moves by hand."""

    def __init__(self) -> None:
        self.now = 5000.0

    def __call__(self) -> float:
        return self.now


@dataclass
class Jobs:
    """The job core as the endpoint sees it: records each hint; with a gate, a hint waits for it."""

    provider: Provider
    hinted: list[str] = field(default_factory=list)
    gate: asyncio.Event | None = None
    done: list[str] = field(default_factory=list)
    finished: asyncio.Event = field(default_factory=asyncio.Event)
    outcome: CallbackOutcome = CallbackOutcome.ACCEPTED

    async def hint(self, task_id: str) -> CallbackOutcome:
        self.hinted.append(task_id)
        if self.gate is not None:
            await self.gate.wait()
        self.done.append(task_id)
        self.finished.set()
        return self.outcome


@dataclass
class Answer:
    status: int
    json: Any


Serve = Callable[..., Awaitable[tuple[WebServer, Jobs]]]


@pytest.fixture
async def serve(session: aiohttp.ClientSession) -> AsyncIterator[Serve]:
    servers: list[WebServer] = []

    async def start(provider: str = "kie", **kwargs: Any) -> tuple[WebServer, Jobs]:
        client: Provider = (
            KieFlux(session, Secret("kie-token"), webhook_key=Secret(KEY))
            if provider == "kie"
            else AceDataFlux(session, Secret("ace-token"))
        )
        jobs = Jobs(client)
        server = WebServer(host="127.0.0.1", port=0, setting="CALLBACK_PORT", **kwargs)
        server.serve_callbacks(jobs, SECRET)
        await server.start()
        servers.append(server)
        return server, jobs

    yield start
    for server in servers:
        await server.close()


@pytest.fixture
def logs(caplog: pytest.LogCaptureFixture) -> pytest.LogCaptureFixture:
    caplog.set_level(logging.INFO)
    return caplog


async def post(
    port: int,
    body: bytes,
    headers: Sequence[tuple[bytes, bytes]] = (),
    *,
    path: bytes = b"/callbacks/flux/" + SECRET.encode(),
    content_type: bytes = b"application/json",
) -> Answer:
    """One POST written byte for byte (aiohttp's client would refuse to send a non-UTF-8 header)."""
    head = [b"POST " + path + b" HTTP/1.1", b"Host: bot.test", b"Connection: close",
            b"Content-Type: " + content_type, b"Content-Length: %d" % len(body)]  # fmt: skip
    head += [name + b": " + value for name, value in headers]
    async with asyncio.timeout(10):
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        writer.write(b"\r\n".join(head) + b"\r\n\r\n" + body)
        answer = await reader.read()
        writer.close()
    status_line, _, rest = answer.partition(b"\r\n")
    payload = rest.partition(b"\r\n\r\n")[2]
    try:
        parsed = json.loads(payload)
    except ValueError:
        parsed = payload.decode("latin-1")
    return Answer(int(status_line.split()[1]), parsed)


def kie_body(task_id: str = TASK) -> bytes:
    return json.dumps({"code": 200, "msg": "ok", "data": {"taskId": task_id, "info": {}}}).encode()


def signature(task_id: str, stamp: str | bytes, key: str = KEY) -> bytes:
    raw = stamp if isinstance(stamp, bytes) else stamp.encode()
    return base64.b64encode(hmac.new(key.encode(), task_id.encode() + b"." + raw, hashlib.sha256).digest())


def signed(stamp: bytes | None = None, sig: bytes | None = None) -> list[tuple[bytes, bytes]]:
    stamp = str(int(time.time())).encode() if stamp is None else stamp
    return [(b"X-Webhook-Timestamp", stamp), (b"X-Webhook-Signature", signature(TASK, stamp) if sig is None else sig)]


def no_traceback(logs: pytest.LogCaptureFixture) -> None:
    bad = [r for r in logs.records if r.exc_info or r.levelno >= logging.ERROR]
    assert not bad, f"logged an error: {[r.getMessage() for r in bad]}"


NOW = str(int(time.time())).encode()
MALFORMED = {
    "a signature that is not UTF-8": signed(sig=b"\xff\xfe" + b"A" * 42),
    "a signature in Latin-1": signed(sig="é".encode("latin-1") * 44),
    "a timestamp that is not UTF-8": [
        (b"X-Webhook-Timestamp", NOW + b"\xff"),
        (b"X-Webhook-Signature", b"A" * 43 + b"="),
    ],
    "a signature in non-ASCII UTF-8": signed(sig="é".encode() * 22),
    "a signature of the wrong length": signed(sig=base64.b64encode(b"x" * 16)),
    "a signature in hex (Kie sends base64)": signed(sig=base64.b64decode(signature(TASK, NOW)).hex().encode()),
    "a signature that is not base64": signed(sig=b"!" * 44),
    "no timestamp": [(b"X-Webhook-Signature", signature(TASK, NOW))],
    "a timestamp that is text": signed(stamp=b"soon"),
    "an empty signature": signed(sig=b""),
}


@pytest.mark.parametrize("headers", MALFORMED.values(), ids=MALFORMED.keys())
async def test_a_malformed_kie_signature_is_a_401_with_a_json_error(
    serve: Serve, logs: pytest.LogCaptureFixture, headers: list[tuple[bytes, bytes]]
) -> None:
    server, jobs = await serve()
    answer = await post(server.port, kie_body(), headers)
    assert answer.status == 401, answer
    assert isinstance(answer.json, dict)
    assert answer.json["error"].startswith("the callback")
    assert jobs.hinted == [], "a refused callback reaches nothing"
    no_traceback(logs)


@pytest.mark.parametrize(
    ("path", "headers"),
    [
        (b"/callbacks/flux/" + SECRET.encode(), signed(stamp=NOW + b"\x00")),
        (b"/callbacks/flux/" + SECRET.encode(), signed(sig=b"A\x00" * 22)),
        (b"/callbacks/flux/\xff", []),
    ],
    ids=["a NUL in the timestamp", "a NUL in the signature", "a raw byte in the path"],
)
async def test_what_aiohttp_itself_refuses_writes_no_traceback(
    serve: Serve, logs: pytest.LogCaptureFixture, path: bytes, headers: list[tuple[bytes, bytes]]
) -> None:
    server, jobs = await serve()
    answer = await post(server.port, kie_body(), headers, path=path)
    assert answer.status == 400, "aiohttp answers before any handler: 400 and its own text"
    assert jobs.hinted == []
    no_traceback(logs)


async def test_a_well_signed_kie_callback_still_gets_through(serve: Serve, logs: pytest.LogCaptureFixture) -> None:
    server, jobs = await serve()
    for stamp in (NOW, NOW + b"000"):  # seconds (as documented) and milliseconds
        assert (await post(server.port, kie_body(), signed(stamp=stamp))).status == 200
    too_old = str(int(time.time()) - 3600).encode()
    assert (await post(server.port, kie_body(), signed(stamp=too_old))).json == {
        "error": "the callback's signature is too old"
    }
    assert jobs.hinted == [TASK, TASK]
    no_traceback(logs)


FORGING = {
    "a line break": "abc\n2026-01-01 00:00:00 WARNING fluxbot.jobs: forged",
    "a carriage return": "abc\rforged",
    "a terminal escape": "abc\x1b[2Jforged",
    "a lone surrogate": "abc\ud800forged",
    "a space": "abc forged",
    "non-ASCII letters": "abcéforged",
    "201 characters": "a" * 201,
}


@pytest.mark.parametrize("task_id", FORGING.values(), ids=FORGING.keys())
@pytest.mark.parametrize("provider", ["acedata", "kie"])
async def test_a_bad_task_id_is_a_400_and_never_logged(
    serve: Serve, logs: pytest.LogCaptureFixture, provider: str, task_id: str
) -> None:
    server, jobs = await serve(provider)
    if provider == "kie":
        body, headers = kie_body(task_id), [(b"X-Webhook-Timestamp", NOW), (b"X-Webhook-Signature", b"A" * 43 + b"=")]
    else:
        body, headers = json.dumps({"task_id": task_id, "success": True}).encode(), []
    answer = await post(server.port, body, headers)
    assert answer.status == 400, answer
    assert "no valid task id" in answer.json["error"]
    assert "letters, digits" in answer.json["error"]
    assert jobs.hinted == [], "a bad task id is never looked up"
    assert all("forged" not in r.getMessage() and "\n" not in r.getMessage() for r in logs.records)
    assert "callback from 127.0.0.1 without a valid task id ignored" in logs.messages
    no_traceback(logs)


async def test_the_endpoint_checks_the_task_id_whatever_the_provider_returns(
    serve: Serve, logs: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    server, jobs = await serve("acedata")
    monkeypatch.setattr(jobs.provider, "callback_task_id", lambda raw, body, headers: "evil\nWARNING forged")
    answer = await post(server.port, b'{"task_id": "anything"}')
    assert answer.status == 400
    assert jobs.hinted == []
    assert all("forged" not in r.getMessage() for r in logs.records)


def test_what_a_task_id_may_be() -> None:
    good = ["6a97c1d2-8f4e-4b1a-9c3d-2e5f6a7b8c9d", "4a1c2e3f5b6d7e8f", "fluxkontext_1736152624.a:b", "x" * 200]
    bad = ["", "x" * 201, "a\n", "a\nb", "a b", "é", "١٢٣", "a/b", "a\x00", 12, None, ["a"]]
    assert [valid_task_id(value) for value in good] == [True] * len(good)
    assert [valid_task_id(value) for value in bad] == [False] * len(bad)


async def test_a_body_in_an_unknown_charset_is_read_as_json(serve: Serve, logs: pytest.LogCaptureFixture) -> None:
    server, jobs = await serve("acedata")
    body = json.dumps({"task_id": TASK, "success": True}).encode()
    answer = await post(server.port, body, content_type=b"application/json; charset=no-such-charset")
    assert answer.json == {"status": "accepted"}, "JSON is UTF-8 whatever the request claims"
    assert jobs.hinted == [TASK]
    assert (await post(server.port, b'{"task_id": "\xff\xfe"}')).json == {"error": "body is not JSON"}
    no_traceback(logs)


async def test_wrong_secrets_and_refused_callbacks_are_logged_at_a_bounded_rate(
    serve: Serve, logs: pytest.LogCaptureFixture
) -> None:
    clock = Clock()
    server, jobs = await serve(clock=clock)
    wrong = b"/callbacks/flux/" + b"x" * len(SECRET)
    for _ in range(200):
        assert (await post(server.port, kie_body(), path=wrong)).status == 404
        assert (await post(server.port, kie_body(), signed(sig=b"A" * 43 + b"="))).status == 401
    warnings = [r.getMessage() for r in logs.records if r.levelno == logging.WARNING]
    assert warnings == [
        "callback with a wrong secret from 127.0.0.1 ignored",
        "callback from 127.0.0.1 refused: the callback's signature does not match",
    ]
    clock.now += 60
    await post(server.port, kie_body(), path=wrong)
    await post(server.port, kie_body(), signed(sig=b"A" * 43 + b"="))
    warnings = [r.getMessage() for r in logs.records if r.levelno == logging.WARNING]
    assert warnings[2:] == [
        "callback with a wrong secret from 127.0.0.1 ignored (and 199 more in the last 60 s)",
        "callback from 127.0.0.1 refused: the callback's signature does not match (and 199 more in the last 60 s)",
    ]
    clock.now += 1
    await post(server.port, kie_body(), path=wrong)
    await server.close()
    assert logs.records[-1].getMessage() == "1 more callbacks with a wrong secret in the last 1 s"
    assert jobs.hinted == []


async def test_a_slow_job_core_does_not_hold_the_callbacks_answer(serve: Serve, logs: pytest.LogCaptureFixture) -> None:
    server, jobs = await serve("acedata", hint_seconds=0.05)
    jobs.gate = asyncio.Event()
    body = json.dumps({"task_id": TASK, "success": True}).encode()
    answer = await post(server.port, body)  # post() gives up after 10 s; the hint would wait forever
    assert (answer.status, answer.json) == (202, {"status": "received"})
    assert jobs.hinted == [TASK]
    assert jobs.done == []
    jobs.gate.set()
    await asyncio.wait_for(jobs.finished.wait(), 5)
    assert jobs.done == [TASK], "the hint went on after the answer"
    jobs.gate = None
    assert (await post(server.port, body)).json == {"status": "accepted"}, "a quick hint is answered as before"
    no_traceback(logs)


async def test_a_callback_the_database_cannot_place_is_asked_again_later(
    serve: Serve, logs: pytest.LogCaptureFixture
) -> None:
    server, jobs = await serve("acedata")
    jobs.outcome = CallbackOutcome.UNAVAILABLE
    body = json.dumps({"task_id": TASK, "success": True}).encode()
    answer = await post(server.port, body)
    assert answer.status == 503, "a provider that retries its callbacks sends it again"
    assert "try again" in answer.json["error"]
    no_traceback(logs)
