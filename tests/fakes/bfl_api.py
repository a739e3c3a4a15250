"""An in-process fake of Black Forest Labs' FLUX API in the shapes of its OpenAPI schema (see shared/bfl-api.md).

Submits are checked field by field per model as the schema says (422 with `detail[].loc`), and more strictly in
one way: a field the model's schema does not have is refused too, so a field sent to the wrong model is caught.
Each task is polled at its own `polling_url`, on a cluster path of its own: `/v1/get_result` at the base knows
only the tasks submitted without one (the webhook answer), so a client that rebuilds the URL gets `Task not found`.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
import logging
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import aiohttp
from aiohttp import web

from tests.fakes.bfl_schema import check_body, price_of
from tests.fakes.png import make_png

log = logging.getLogger(__name__)

KONTEXT_MAX = "flux-kontext-max"
#: Where the fake's tasks are polled: a cluster path no rebuilt URL has.
CLUSTER = "/cluster-eu4"


@dataclass
class BflTask:
    """One task of the fake."""

    id: str
    model: str
    body: dict[str, Any]
    cost: float
    polling_url: str | None
    status: str = "Pending"
    polls: int = 0
    #: The status the task ends with instead of Ready ("Request Moderated", "Content Moderated", "Error").
    outcome: str = "Ready"
    seed: int = 0
    ready_at: float | None = None
    #: When the sample URL stops working (the clock's time), once Ready.
    expires_at: float | None = None

    @property
    def active(self) -> bool:
        """Counted against the account's concurrency."""
        return self.status == "Pending"


@dataclass
class SeenRequest:
    """A request the fake received."""

    method: str
    path: str
    query: dict[str, str]
    body: Any
    headers: dict[str, str]


class FakeBfl:
    """The fake. A task is Ready at its `polls_before_ready + 1`-th poll unless `hold` is set."""

    def __init__(self, *, key: str = "test-bfl-key", polls_before_ready: int = 1, sample_ttl: float = 600.0) -> None:
        self.key = key
        self.polls_before_ready = polls_before_ready
        self.hold = False
        #: Seconds a Ready task's sample URL works (BFL: 10 minutes), measured on `clock`.
        self.sample_ttl = sample_ttl
        self.clock: Callable[[], float] = time.monotonic
        #: The statuses the next new tasks end with instead of Ready, one per task.
        self.outcomes: list[str] = []
        #: The account's credits; each submit costs its model's price (402 when it does not cover it).
        self.credits = 10_000.0
        #: BFL's concurrency: active tasks per account, and per model.
        self.max_active = 24
        self.max_active_per_model = {KONTEXT_MAX: 6}
        #: The most tasks that were active at once, of the account and of each model; and the 429s answered.
        self.peak_active = 0
        self.peak_active_by_model: dict[str, int] = {}
        self.too_busy_answers = 0
        #: The HTTP status of a request with a wrong or missing x-key (403 in BFL's table; 401 in its skill notes).
        self.bad_key_status = 403
        #: Answer a submit with a webhook_url in the AsyncWebhookResponse shape (no polling_url).
        self.webhook_answer_without_polling_url = False
        #: The result has a `seed` (the schema leaves `result` untyped).
        self.result_has_seed = True
        #: POST a webhook to a task's webhook_url when it ends.
        self.auto_webhook = True
        #: Seconds a new task runs before it ends by itself (None: only polls or `finish` end it).
        self.task_seconds: float | None = None
        self.tasks: dict[str, BflTask] = {}
        self.requests: list[SeenRequest] = []
        #: (task id, HTTP status served) of every sample download.
        self.sample_downloads: list[tuple[str, int]] = []
        #: (url, HTTP status the bot answered) of every webhook sent.
        self.webhooks: list[tuple[str, int]] = []
        self._scripted: dict[str, list[tuple[int, Any]]] = {"submit": [], "poll": [], "credits": []}
        self._background: set[asyncio.Task[None]] = set()
        self._timers: list[asyncio.TimerHandle] = []
        self._runner: web.AppRunner | None = None
        self.base_url = ""
        self.image_bytes = make_png(32, 32)

    async def start(self) -> None:
        """Listen on a free loopback port."""
        app = web.Application()
        app.router.add_get("/v1/credits", self._credits)
        app.router.add_get("/v1/get_result", self._base_get_result)
        app.router.add_get(CLUSTER + "/v1/get_result", self._get_result)
        app.router.add_post("/v1/{model}", self._submit)
        app.router.add_get("/delivery/{task}/sample.png", self._sample)
        self._runner = web.AppRunner(app, access_log=None, shutdown_timeout=1.0)
        await self._runner.setup()
        await web.TCPSite(self._runner, "127.0.0.1", 0).start()
        self.base_url = f"http://127.0.0.1:{self._runner.addresses[0][1]}"

    async def close(self) -> None:
        """Stop listening."""
        for pending in self._background:
            pending.cancel()
        for timer in self._timers:
            timer.cancel()
        if self._runner is not None:
            await self._runner.cleanup()

    # -- test controls ---------------------------------------------------------------------------

    def script(self, endpoint: str, http_status: int, body: Any, times: int = 1) -> None:
        """Answer the next `times` calls to "submit", "poll" or "credits" with this status and body (a str: HTML)."""
        self._scripted[endpoint].extend([(http_status, body)] * times)

    @property
    def submits(self) -> list[dict[str, Any]]:
        """The bodies of every submit, in order."""
        return [r.body for r in self.requests if r.method == "POST"]

    @property
    def polls(self) -> list[SeenRequest]:
        """Every get_result request (at a polling_url or at the base)."""
        return [r for r in self.requests if r.path.endswith("/v1/get_result")]

    @property
    def active(self) -> int:
        """Tasks running now."""
        return sum(task.active for task in self.tasks.values())

    def finish(self, task_id: str, status: str | None = None) -> None:
        """End a task now with `status` (default: its outcome, usually Ready); calls its webhook when asked to."""
        task = self.tasks[task_id]
        if not task.active:
            return
        task.status = status or task.outcome
        if task.status == "Ready":
            task.ready_at = self.clock()
            task.expires_at = task.ready_at + self.sample_ttl
        if self.auto_webhook and task.body.get("webhook_url"):
            pending = asyncio.get_running_loop().create_task(self._auto_webhook(task.id))
            self._background.add(pending)
            pending.add_done_callback(self._background.discard)

    def forget(self, task_id: str) -> None:
        """Drop a task, as the API does some time after it ended: it is then `Task not found`."""
        self.tasks.pop(task_id)

    def expire_samples(self) -> None:
        """Make every sample URL handed out so far stop working now."""
        for task in self.tasks.values():
            if task.expires_at is not None:
                task.expires_at = self.clock() - 1

    def sample_url(self, task: BflTask) -> str:
        """Where a Ready task's image is (signed-looking, like the delivery host's)."""
        return f"{self.base_url}/delivery/{task.id}/sample.png?se={task.expires_at}&sig=fake"

    def webhook_body(self, task_id: str) -> dict[str, Any]:
        """What a webhook carries in BFL's skill notes: the task's get_result answer."""
        return self._result(self.tasks[task_id])

    def signature(self, raw: bytes, secret: str) -> str:
        """The X-BFL-Signature of a raw body (BFL's skill notes: sha256=<hex HMAC-SHA256>)."""
        return "sha256=" + hmac.new(secret.encode(), raw, hashlib.sha256).hexdigest()

    async def send_webhook(
        self, task_id: str, *, url: str | None = None, body: Any = None, signature: str | None = None
    ) -> int:
        """POST a webhook for a task (signed with its webhook_secret when it has one); returns the bot's status."""
        task = self.tasks[task_id]
        target = url or task.body["webhook_url"]
        raw = json.dumps(body if body is not None else self.webhook_body(task_id)).encode()
        headers = {"Content-Type": "application/json"}
        secret = task.body.get("webhook_secret")
        if signature is not None:
            headers["X-BFL-Signature"] = signature
        elif isinstance(secret, str):
            headers["X-BFL-Signature"] = self.signature(raw, secret)
        async with aiohttp.ClientSession() as session, session.post(target, data=raw, headers=headers) as resp:
            self.webhooks.append((target, resp.status))
            return resp.status

    async def wait_for_submits(self, n: int, timeout: float = 20) -> None:
        """Wait until `n` submits arrived."""
        deadline = time.monotonic() + timeout
        while len(self.submits) < n:
            if time.monotonic() > deadline:
                raise AssertionError(f"expected {n} submit(s), got {len(self.submits)}")
            await asyncio.sleep(0.02)

    # -- handlers --------------------------------------------------------------------------------

    async def _auto_webhook(self, task_id: str) -> None:
        try:
            await self.send_webhook(task_id)
        except aiohttp.ClientError as exc:
            log.info("webhook for %s failed: %s", task_id, exc)

    async def _seen(self, request: web.Request) -> web.Response | None:
        """Record the request; the answer when the key is wrong or an answer is scripted."""
        try:
            body = await request.json() if request.method == "POST" else None
        except ValueError:
            body = None
        seen = SeenRequest(request.method, request.path, dict(request.query), body, dict(request.headers))
        self.requests.append(seen)
        if request.headers.get("x-key") != self.key:
            refused = {"detail": "Not authenticated: invalid or missing x-key"}
            return web.json_response(refused, status=self.bad_key_status)
        endpoint = "submit" if request.method == "POST" else "credits" if request.path == "/v1/credits" else "poll"
        if self._scripted[endpoint]:
            status, answer = self._scripted[endpoint].pop(0)
            if isinstance(answer, str):  # what a proxy or another server sends
                return web.Response(status=status, text=answer, content_type="text/html")
            return web.json_response(answer, status=status)
        return None

    async def _credits(self, request: web.Request) -> web.Response:
        early = await self._seen(request)
        return early or web.json_response({"credits": self.credits})

    async def _submit(self, request: web.Request) -> web.Response:
        early = await self._seen(request)
        if early is not None:
            return early
        model = request.match_info["model"]
        body = self.requests[-1].body
        if not isinstance(body, dict):
            return web.json_response({"detail": "There was an error parsing the body"}, status=400)
        problems = check_body(model, body)
        if problems is None:
            return web.json_response({"detail": "Not Found"}, status=404)
        if problems:
            return web.json_response({"detail": problems}, status=422)
        limit = self.max_active_per_model.get(model, self.max_active)
        if self.active >= self.max_active or sum(t.active for t in self.tasks.values() if t.model == model) >= limit:
            self.too_busy_answers += 1
            return web.json_response({"detail": "Too many active tasks. Wait for one to finish."}, status=429)
        cost = price_of(model, body)
        if cost > self.credits:
            return web.json_response({"detail": "Insufficient credits"}, status=402)
        self.credits -= cost
        task_id = str(uuid.uuid4())
        webhook = bool(body.get("webhook_url"))
        polling_url = None if webhook and self.webhook_answer_without_polling_url else self._polling_url(task_id)
        seed = body.get("seed")
        seed = seed if isinstance(seed, int) else 1000 + len(self.tasks)  # a seed of its own when none is asked
        task = BflTask(task_id, model, body, cost, polling_url, seed=seed)
        if self.outcomes:
            task.outcome = self.outcomes.pop(0)
        self.tasks[task_id] = task
        self.peak_active = max(self.peak_active, self.active)
        of_model = sum(t.active for t in self.tasks.values() if t.model == model)
        self.peak_active_by_model[model] = max(self.peak_active_by_model.get(model, 0), of_model)
        if self.task_seconds is not None:
            self._timers.append(asyncio.get_running_loop().call_later(self.task_seconds, self.finish, task_id))
        answer: dict[str, Any] = {"id": task_id, "cost": cost, "input_mp": None, "output_mp": _megapixels(body)}
        if polling_url is None:
            answer |= {"status": "Pending", "webhook_url": body["webhook_url"]}
        else:
            answer["polling_url"] = polling_url
        return web.json_response(answer)

    def _polling_url(self, task_id: str) -> str:
        return f"{self.base_url}{CLUSTER}/v1/get_result?id={task_id}"

    async def _get_result(self, request: web.Request) -> web.Response:
        early = await self._seen(request)
        if early is not None:
            return early
        task = self.tasks.get(request.query.get("id", ""))
        return web.json_response(self._poll(task) if task else _not_found(request.query.get("id", "")))

    async def _base_get_result(self, request: web.Request) -> web.Response:
        """get_result without the cluster: it knows only tasks that were given no polling_url."""
        early = await self._seen(request)
        if early is not None:
            return early
        task_id = request.query.get("id", "")
        if not task_id:
            detail = [{"type": "missing", "loc": ["query", "id"], "msg": "Field required", "input": None}]
            return web.json_response({"detail": detail}, status=422)
        task = self.tasks.get(task_id)
        if task is None or task.polling_url is not None:
            return web.json_response(_not_found(task_id))
        return web.json_response(self._poll(task))

    def _poll(self, task: BflTask) -> dict[str, Any]:
        task.polls += 1
        # A moderated request ends at once: the input is checked before anything runs.
        due = task.outcome == "Request Moderated" or task.polls > self.polls_before_ready
        if task.active and due and not self.hold:
            self.finish(task.id)
        return self._result(task)

    def _result(self, task: BflTask) -> dict[str, Any]:
        answer: dict[str, Any] = {"id": task.id, "status": task.status, "result": None, "progress": None,
                                  "details": None, "preview": None}  # fmt: skip
        if task.status == "Pending":
            answer["progress"] = round(min(0.9, task.polls / (self.polls_before_ready + 1)), 2)
        elif task.status == "Ready":
            result: dict[str, Any] = {
                "sample": self.sample_url(task),
                "prompt": task.body.get("prompt"),
                "start_time": task.ready_at,
                "end_time": task.ready_at,
                "duration": 1.5,
            }
            if self.result_has_seed:
                result["seed"] = task.seed
            answer["result"] = result
        elif task.status.endswith("Moderated"):
            answer["details"] = {"Moderation Reasons": ["Derivative Works Filter"]}
        elif task.status == "Error":
            answer["details"] = {"error": "Internal generation error"}
        return answer

    async def _sample(self, request: web.Request) -> web.Response:
        task = self.tasks.get(request.match_info["task"])
        expired = task is None or task.expires_at is None or self.clock() >= task.expires_at
        status = 403 if expired else 200
        self.sample_downloads.append((request.match_info["task"], status))
        if expired:  # what the delivery host's signed URLs answer once past their expiry
            return web.Response(status=403, text="AuthenticationFailed: signed expiry time has passed")
        return web.Response(body=self.image_bytes, content_type="image/png")


def _not_found(task_id: str) -> dict[str, Any]:
    return {"id": task_id, "status": "Task not found", "result": None, "progress": None, "details": None,
            "preview": None}  # fmt: skip


def _megapixels(body: dict[str, Any]) -> float | None:
    width, height = body.get("width"), body.get("height")
    if isinstance(width, int) and isinstance(height, int) and width and height:
        return round(width * height / 1_000_000, 2)
    return None
