"""An in-process fake of fal.ai's queue API in its real shapes (see shared/fal-api.md), and of its webhook JWKS.

Submits go to `POST /<model id>` (e.g. /fal-ai/flux/dev); the answer's status and response URLs drop the model's
subpath (/fal-ai/flux/requests/<id>), so a client that rebuilds them from the model id meets a 404. A request
reads IN_QUEUE (with its queue position) and IN_PROGRESS before it is COMPLETED; its result is kept for
`result_seconds` after that (a clock the test moves), then answers 404. Webhooks are signed with Ed25519 exactly as
fal documents, with a key the fake publishes at /.well-known/jwks.json.
"""

from __future__ import annotations

import base64
import hashlib
import json
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import aiohttp
from aiohttp import web
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

from tests.fakes.png import make_png

PRESETS = ("square_hd", "square", "portrait_4_3", "portrait_16_9", "landscape_4_3", "landscape_16_9")
RATIOS = ("21:9", "16:9", "4:3", "3:2", "1:1", "2:3", "3:4", "9:16", "9:21")
_FLUX1_PRO = {"prompt", "image_size", "num_images", "seed", "safety_tolerance", "enhance_prompt", "output_format"}
_KONTEXT = {"prompt", "aspect_ratio", "guidance_scale", "num_images", "safety_tolerance", "seed", "output_format"}
_FLUX2 = {"prompt", "image_size", "seed", "safety_tolerance", "enable_safety_checker", "output_format"}
#: Each endpoint's fields (fal's model pages) and the ones it requires, written apart from the client's data.
SCHEMAS: dict[str, tuple[set[str], set[str]]] = {
    "fal-ai/flux/dev": (
        {"prompt", "image_size", "num_inference_steps", "guidance_scale", "num_images", "seed",
         "enable_safety_checker", "output_format", "acceleration"},
        {"prompt"},
    ),
    "fal-ai/flux-pro/v1.1": (_FLUX1_PRO, {"prompt"}),
    "fal-ai/flux-pro/v1.1-ultra": (
        (_FLUX1_PRO - {"image_size"}) | {"aspect_ratio", "raw", "image_url", "image_prompt_strength"}, {"prompt"}
    ),
    "fal-ai/flux-pro/kontext": (_KONTEXT | {"image_url"}, {"prompt", "image_url"}),
    "fal-ai/flux-pro/kontext/max": (_KONTEXT | {"image_url"}, {"prompt", "image_url"}),
    "fal-ai/flux-pro/kontext/text-to-image": (_KONTEXT, {"prompt"}),
    "fal-ai/flux-pro/kontext/max/text-to-image": (_KONTEXT, {"prompt"}),
    "fal-ai/flux-2-pro": (_FLUX2, {"prompt"}),
    "fal-ai/flux-2-max": (_FLUX2, {"prompt"}),
    "fal-ai/flux-2-pro/edit": (_FLUX2 | {"image_urls"}, {"prompt", "image_urls"}),
    "fal-ai/flux-2-max/edit": (_FLUX2 | {"image_urls"}, {"prompt", "image_urls"}),
    "fal-ai/flux-2-flex": (_FLUX2 | {"num_inference_steps", "guidance_scale"}, {"prompt"}),
    "fal-ai/flux-2-flex/edit": (
        _FLUX2 | {"num_inference_steps", "guidance_scale", "image_urls"}, {"prompt", "image_urls"}
    ),
}  # fmt: skip
LOCKED = "User is locked. Reason: Exhausted balance. Top up your balance at fal.ai/dashboard/billing."


def _problem(loc: str, msg: str, kind: str, **extra: Any) -> dict[str, Any]:
    return {"loc": ["body", loc], "msg": msg, "type": kind, **extra}


def validate(model_id: str, body: dict[str, Any]) -> list[dict[str, Any]]:
    """fal's 422 `detail` entries for `body` on `model_id` (empty when it is valid)."""
    fields, required = SCHEMAS[model_id]
    flux2 = model_id.startswith("fal-ai/flux-2")
    problems = [_problem(name, "Field required", "missing") for name in sorted(required - set(body))]
    extra = sorted(set(body) - fields)
    problems += [_problem(name, "Extra inputs are not permitted", "extra_forbidden") for name in extra]
    checks: dict[str, Callable[[Any], bool]] = {
        "prompt": lambda v: isinstance(v, str) and bool(v.strip()),
        "image_size": lambda v: v in PRESETS or (
            isinstance(v, dict) and set(v) == {"width", "height"}
            and all(isinstance(s, int) and 64 <= s <= 14142 for s in v.values())
        ),
        "aspect_ratio": lambda v: v in RATIOS,
        "num_images": lambda v: isinstance(v, int) and 1 <= v <= 4,
        "num_inference_steps": lambda v: isinstance(v, int) and 1 <= v <= 50,
        "guidance_scale": lambda v: isinstance(v, int | float) and not isinstance(v, bool) and 1 <= v <= 20,
        # A string: the integer 2 is refused, as fal's enum of "1".."6" refuses it.
        "safety_tolerance": lambda v: v in [str(n) for n in range(1, 6 if flux2 else 7)],
        "enable_safety_checker": lambda v: isinstance(v, bool),
        "output_format": lambda v: v in ("jpeg", "png"),
        "seed": lambda v: isinstance(v, int) and not isinstance(v, bool) and v >= 0,
        "image_url": lambda v: isinstance(v, str) and v.startswith(("http://", "https://", "data:")),
        "image_urls": lambda v: isinstance(v, list) and bool(v) and all(isinstance(u, str) for u in v),
    }  # fmt: skip
    for name, check in checks.items():
        if name in body and name in fields and not check(body[name]):
            problems.append(_problem(name, f"Input should be a valid {name}", "value_error", input=body[name]))
    return problems


@dataclass
class FalRequest:
    """One queued request of the fake."""

    id: str
    model_id: str
    body: dict[str, Any]
    webhook: str | None
    #: What the status reads before COMPLETED, one entry a read.
    steps: list[dict[str, Any]]
    completed_at: float | None = None
    #: (HTTP status, body) of the result once COMPLETED.
    result: tuple[int, Any] | None = None
    status_reads: int = 0
    result_reads: int = 0
    held: bool = False

    @property
    def alias(self) -> str:
        """The model id without its subpath (fal-ai/flux/dev -> fal-ai/flux): what the returned URLs use."""
        return "/".join(self.model_id.split("/")[:2])


@dataclass
class FakeFal:
    """The fake; `key` is the only key it accepts (as `Authorization: Key <key>`)."""

    key: str = "test-fal-id:test-fal-secret"
    user_id: str = "test-user"
    queue_positions: tuple[int, ...] = (1, 0)
    in_progress_reads: int = 1
    result_seconds: float = 360.0
    #: Answer an invalid body with 422 at once, instead of queueing it to complete with a 422 result.
    validate_at_submit: bool = False
    #: Answer status URLs of another form than response_url + "/status".
    odd_status_urls: bool = False
    #: New requests stay IN_QUEUE (at their first queue position) until `finish` or `fail` ends them.
    hold: bool = False
    locked: bool = False
    base_url: str = ""
    requests: dict[str, FalRequest] = field(default_factory=dict)
    submits: list[tuple[str, dict[str, Any], dict[str, str]]] = field(default_factory=list)
    calls: list[tuple[str, str]] = field(default_factory=list)
    signing_key: Ed25519PrivateKey = field(default_factory=Ed25519PrivateKey.generate)
    jwks_fetches: int = 0
    jwks_failing: bool = False
    clock_offset: float = 0.0
    _scripted: dict[str, list[tuple[int, Any]]] = field(
        default_factory=lambda: {"submit": [], "status": [], "result": []}
    )
    _runner: web.AppRunner | None = None

    def now(self) -> float:
        """The fake's clock: real time plus what the test moved it by."""
        return time.time() + self.clock_offset

    async def start(self) -> None:
        """Listen on a free loopback port."""
        app = web.Application()
        app.router.add_get("/.well-known/jwks.json", self._jwks)
        app.router.add_get("/files/{id}/{name}", self._file)
        app.router.add_get("/{owner}/{alias}/requests/{id}/status", self._status)
        app.router.add_get("/{owner}/{alias}/requests/{id}", self._result)
        app.router.add_post("/{model:.+}", self._submit)
        self._runner = web.AppRunner(app, access_log=None, shutdown_timeout=1.0)
        await self._runner.setup()
        await web.TCPSite(self._runner, "127.0.0.1", 0).start()
        self.base_url = f"http://127.0.0.1:{self._runner.addresses[0][1]}"

    async def close(self) -> None:
        """Stop listening."""
        if self._runner is not None:
            await self._runner.cleanup()

    @property
    def jwks_url(self) -> str:
        """Where the fake publishes its webhook keys."""
        return f"{self.base_url}/.well-known/jwks.json"

    def script(self, endpoint: str, http_status: int, body: Any, times: int = 1) -> None:
        """Answer the next `times` calls to "submit", "status" or "result" so (a str body: as HTML)."""
        self._scripted[endpoint].extend([(http_status, body)] * times)

    def finish(self, request_id: str) -> None:
        """Let a request (held or not) read COMPLETED at its next status read."""
        request = self.requests[request_id]
        request.held = False
        request.steps.clear()

    def fail(self, request_id: str, http_status: int, detail: Any) -> None:
        """Make a request complete with the model's error as its result."""
        self.requests[request_id].result = (http_status, {"detail": detail})

    def rotate_key(self) -> Ed25519PrivateKey:
        """Publish a new signing key in place of the old one (and sign with it from now on)."""
        self.signing_key = Ed25519PrivateKey.generate()
        return self.signing_key

    def jwks(self) -> dict[str, Any]:
        """The JWKS document: the current key, as an OKP/Ed25519 JWK."""
        raw = self.signing_key.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw)
        x = base64.urlsafe_b64encode(raw).rstrip(b"=").decode()
        return {"keys": [{"kty": "OKP", "crv": "Ed25519", "x": x, "kid": hashlib.sha256(raw).hexdigest()[:16]}]}

    def webhook_body(self, request_id: str) -> dict[str, Any]:
        """What fal POSTs to the webhook for a request (its result, or its error)."""
        request = self.requests[request_id]
        status, result = request.result or self._make_result(request)
        body: dict[str, Any] = {"request_id": request_id, "gateway_request_id": request_id}
        if status < 400:
            return {**body, "status": "OK", "payload": result}
        return {**body, "status": "ERROR", "error": f"Invalid status code: {status}", "payload": result}

    def signed(
        self,
        request_id: str,
        raw: bytes,
        *,
        key: Ed25519PrivateKey | None = None,
        timestamp: int | None = None,
        header_request_id: str | None = None,
    ) -> dict[str, str]:
        """The four X-Fal-Webhook-* headers fal sends with `raw`, signed as its docs say."""
        stamp = str(int(self.now()) if timestamp is None else timestamp)
        signed_id = header_request_id or request_id
        message = "\n".join((signed_id, self.user_id, stamp, hashlib.sha256(raw).hexdigest())).encode()
        signature = (key or self.signing_key).sign(message).hex()
        return {
            "X-Fal-Webhook-Request-Id": signed_id,
            "X-Fal-Webhook-User-Id": self.user_id,
            "X-Fal-Webhook-Timestamp": stamp,
            "X-Fal-Webhook-Signature": signature,
        }

    def webhook(self, request_id: str, **signing: Any) -> tuple[bytes, Any, dict[str, str]]:
        """(raw body, parsed body, headers) of the webhook for a request, as the bot's web server would get them."""
        raw = json.dumps(self.webhook_body(request_id)).encode()
        return raw, json.loads(raw), self.signed(request_id, raw, **signing)

    async def send_webhook(self, request_id: str, **signing: Any) -> int:
        """POST the signed webhook to the URL the submit gave; the HTTP status the bot answered."""
        target = self.requests[request_id].webhook
        assert target, "the request was submitted without fal_webhook"
        raw, _, headers = self.webhook(request_id, **signing)
        async with (
            aiohttp.ClientSession() as session,
            session.post(target, data=raw, headers={**headers, "Content-Type": "application/json"}) as resp,
        ):
            return resp.status

    def _refused(self, request: web.Request) -> web.Response | None:
        if request.headers.get("Authorization") != f"Key {self.key}":
            return web.json_response({"detail": "No user found for Key ID and Secret"}, status=401)
        if self.locked:
            return web.json_response({"detail": LOCKED}, status=403)
        return None

    def _scripted_answer(self, endpoint: str) -> web.Response | None:
        if not self._scripted[endpoint]:
            return None
        status, answer = self._scripted[endpoint].pop(0)
        if isinstance(answer, str):
            return web.Response(status=status, text=answer, content_type="text/html")
        return web.json_response(answer, status=status)

    def _urls(self, request: FalRequest) -> dict[str, str]:
        response = f"{self.base_url}/{request.alias}/requests/{request.id}"
        status = response + ("/status?shape=2" if self.odd_status_urls else "/status")
        return {"response_url": response, "status_url": status, "cancel_url": response + "/cancel"}

    async def _submit(self, request: web.Request) -> web.Response:
        model_id = request.match_info["model"]
        self.calls.append(("POST", request.path))
        body = await request.json()
        self.submits.append((model_id, body, dict(request.query)))
        refused = self._refused(request) or self._scripted_answer("submit")
        if refused is not None:
            return refused
        if model_id not in SCHEMAS:
            return web.json_response({"detail": f"Application '{model_id}' not found"}, status=404)
        problems = validate(model_id, body)
        if problems and self.validate_at_submit:
            return web.json_response({"detail": problems}, status=422)
        steps = [{"status": "IN_QUEUE", "queue_position": p} for p in self.queue_positions]
        steps += [{"status": "IN_PROGRESS", "logs": []}] * self.in_progress_reads
        queued = FalRequest(uuid.uuid4().hex, model_id, body, request.query.get("fal_webhook"), steps, held=self.hold)
        if problems:
            queued.result = (422, {"detail": problems})
        self.requests[queued.id] = queued
        return web.json_response({"request_id": queued.id, **self._urls(queued), "status": "IN_QUEUE"})

    def _find(self, request: web.Request) -> FalRequest | None:
        found = self.requests.get(request.match_info["id"])
        alias = f"{request.match_info['owner']}/{request.match_info['alias']}"
        return found if found is not None and found.alias == alias else None

    async def _status(self, request: web.Request) -> web.Response:
        self.calls.append(("GET", request.path))
        refused = self._refused(request) or self._scripted_answer("status")
        if refused is not None:
            return refused
        found = self._find(request)
        if found is None:
            return web.json_response({"detail": "Request not found"}, status=404)
        found.status_reads += 1
        urls = self._urls(found)
        if found.held or (found.steps and found.completed_at is None):
            step = found.steps[0] if found.held else found.steps.pop(0)
            return web.json_response({**step, "response_url": urls["response_url"]}, status=202)
        if found.completed_at is None:
            found.completed_at = self.now()
        metrics = {"inference_time": 1.2}
        return web.json_response(
            {"status": "COMPLETED", "response_url": urls["response_url"], "logs": [], "metrics": metrics}
        )

    async def _result(self, request: web.Request) -> web.Response:
        self.calls.append(("GET", request.path))
        refused = self._refused(request) or self._scripted_answer("result")
        if refused is not None:
            return refused
        found = self._find(request)
        if found is None:
            return web.json_response({"detail": "Request not found"}, status=404)
        if found.completed_at is None:
            return web.json_response({"detail": "Request is still in progress"}, status=400)
        if self.now() - found.completed_at > self.result_seconds:
            return web.json_response({"detail": "Request not found"}, status=404)
        found.result_reads += 1
        status, result = found.result or self._make_result(found)
        return web.json_response(result, status=status)

    def _make_result(self, request: FalRequest) -> tuple[int, Any]:
        prompt = str(request.body.get("prompt", ""))
        if "[policy]" in prompt:
            detail = [{"loc": ["body", "prompt"], "msg": "The content could not be processed: it violates the content"
                       " policy.", "type": "content_policy_violation"}]  # fmt: skip
            return 422, {"detail": detail}
        count = request.body.get("num_images", 1)
        images = [
            {"url": f"{self.base_url}/files/{request.id}/{n}.png", "width": 1024, "height": 768,
             "content_type": "image/png"}
            for n in range(count)
        ]  # fmt: skip
        result: dict[str, Any] = {"images": images, "seed": request.body.get("seed", 424242)}
        if not request.model_id.startswith("fal-ai/flux-2"):  # FLUX.2 answers {images, seed} only
            flagged = "[nsfw]" in prompt
            result.update(has_nsfw_concepts=[flagged] * count, prompt=prompt, timings={"inference": 1.25})
        return 200, result

    async def _file(self, request: web.Request) -> web.Response:
        return web.Response(body=make_png(64, 48), content_type="image/png")

    async def _jwks(self, request: web.Request) -> web.Response:
        self.jwks_fetches += 1
        if self.jwks_failing:
            return web.json_response({"detail": "unavailable"}, status=503)
        return web.json_response(self.jwks())
