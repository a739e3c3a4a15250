"""An in-process fake of the Ace Data Cloud Flux API that speaks its real JSON shapes (see shared/flux-api.md)."""

from __future__ import annotations

import asyncio
import json
import logging
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import aiohttp
from aiohttp import web

from tests.fakes.png import make_png

log = logging.getLogger(__name__)

KONTEXT = ("flux-kontext-pro", "flux-kontext-max")


@dataclass
class FakeTask:
    """One job the fake provider holds."""

    id: str
    request: dict[str, Any]
    created_at: float
    trace_id: str = field(default_factory=lambda: str(uuid.uuid4()))
    response: dict[str, Any] | None = None
    finished_at: float | None = None
    lookups: int = 0
    error: tuple[str, str] | None = None
    #: time.monotonic() when it finished (for latency figures).
    done_at: float | None = None

    def record(self) -> dict[str, Any]:
        """The task record `/flux/tasks` returns: no `response` key while it runs."""
        record: dict[str, Any] = {
            "id": self.id,
            "created_at": self.created_at,
            "request": self.request,
            "trace_id": self.trace_id,
        }
        if self.response is not None:
            record["response"] = self.response
            record["finished_at"] = self.finished_at
        return record


@dataclass
class SeenRequest:
    """A request the fake received."""

    path: str
    body: Any
    headers: dict[str, str]


def envelope(code: str, message: str) -> dict[str, Any]:
    """The provider's error envelope."""
    return {"success": False, "error": {"code": code, "message": message}, "trace_id": str(uuid.uuid4())}


class FakeFlux:
    """The fake provider. Tasks finish after `lookups_before_done` lookups unless `hold` is set, or on a timer."""

    def __init__(self, *, token: str = "test-flux-token", lookups_before_done: int = 1) -> None:
        self.token = token
        self.lookups_before_done = lookups_before_done
        self.hold = False
        #: Seconds a submit takes before it is answered (to catch the bot mid-submit).
        self.submit_delay = 0.0
        #: Seconds a batch lookup's answer takes to arrive, after the tasks' states were read.
        self.lookup_delay = 0.0
        #: Put an empty record `{}` in a batch answer for each unknown id (the API answers `{}` for one).
        self.empty_records_for_unknown = False
        #: Errors (code, message) the next new tasks will end with, one per task.
        self.task_errors: list[tuple[str, str]] = []
        self.tasks: dict[str, FakeTask] = {}
        self.requests: list[SeenRequest] = []
        self._scripted: dict[str, list[tuple[int, Any]]] = {"/flux/images": [], "/flux/tasks": []}
        #: Answers for particular submits, by their number (1 = the first submit the fake receives).
        self._scripted_submits: dict[int, tuple[int, Any]] = {}
        self._runner: web.AppRunner | None = None
        self.base_url = ""
        self.image_bytes = make_png(16, 16)
        self.image_content_type = "image/png"
        self.image_status = 200
        #: How many times an image file was downloaded.
        self.file_downloads = 0
        #: POST the result to a task's callback_url when it finishes (as the real API does).
        self.auto_callback = True
        #: (url, HTTP status answered) of every callback sent.
        self.callbacks: list[tuple[str, int]] = []
        #: Seconds a new task runs before it finishes by itself, by task (None: it does not). Set `hold` too, so
        #: that lookups do not finish it sooner.
        self.task_seconds: Callable[[FakeTask], float | None] | None = None
        #: Which tasks' automatic callbacks are lost on the way (never sent), when set.
        self.loses_callback: Callable[[FakeTask], bool] | None = None
        self._callback_tasks: set[asyncio.Task[None]] = set()
        self._timers: list[asyncio.TimerHandle] = []

    async def start(self) -> None:
        """Listen on a free loopback port."""
        app = web.Application()
        app.router.add_post("/flux/images", self._images)
        app.router.add_post("/flux/tasks", self._tasks)
        app.router.add_get("/files/{task}/{name}", self._file)
        self._runner = web.AppRunner(app, access_log=None, shutdown_timeout=1.0)
        await self._runner.setup()
        await web.TCPSite(self._runner, "127.0.0.1", 0).start()
        port = self._runner.addresses[0][1]
        self.base_url = f"http://127.0.0.1:{port}"

    async def close(self) -> None:
        """Stop listening."""
        for pending in self._callback_tasks:
            pending.cancel()
        for timer in self._timers:
            timer.cancel()
        if self._runner is not None:
            await self._runner.cleanup()

    # -- test controls ---------------------------------------------------------------------------

    def script(self, path: str, status: int, body: Any, times: int = 1) -> None:
        """Answer the next `times` requests to `path` with `status` and `body` (a dict, or raw text)."""
        self._scripted[path].extend([(status, body)] * times)

    def script_submit(self, number: int, status: int, body: Any) -> None:
        """Answer the `number`-th submit (counting every submit received, from 1) with `status` and `body`."""
        self._scripted_submits[number] = (status, body)

    @property
    def submits(self) -> list[dict[str, Any]]:
        """Bodies of every `/flux/images` request."""
        return [r.body for r in self.requests if r.path == "/flux/images"]

    @property
    def lookups(self) -> list[dict[str, Any]]:
        """Bodies of every `/flux/tasks` request."""
        return [r.body for r in self.requests if r.path == "/flux/tasks"]

    def finish(self, task_id: str, *, error: tuple[str, str] | None = None) -> None:
        """Finish a task now, with images or with an error (code, message); calls back when asked to."""
        task = self.tasks[task_id]
        if task.response is not None:
            return
        self._set_response(task, error)
        self._schedule_callback(task)

    def _set_response(self, task: FakeTask, error: tuple[str, str] | None) -> None:
        task.finished_at = time.time()
        task.done_at = time.monotonic()
        error = error or task.error
        if error is not None:
            task.response = {"success": False, "task_id": task.id, "trace_id": task.trace_id} | {
                "error": {"code": error[0], "message": error[1]}
            }
            return
        count = 1 if task.request.get("action") == "edit" else int(task.request.get("count") or 1)
        task.response = {
            "success": True,
            "task_id": task.id,
            "trace_id": task.trace_id,
            "data": [
                {
                    "prompt": task.request.get("prompt"),
                    "image_url": f"{self.base_url}/files/{task.id}/{index}.png",
                    "seed": 1000 + index,
                    "timings": {"inference": 3.328},
                }
                for index in range(count)
            ],
        }

    async def send_callback(self, task_id: str, *, url: str | None = None, body: Any = None) -> int:
        """POST a callback for `task_id` (its result body unless `body` is given) and return the status."""
        task = self.tasks.get(task_id)
        target = url or (task.request.get("callback_url") if task else None)
        assert target, "no callback_url to call"
        payload = body if body is not None else (task.response if task else None)
        async with aiohttp.ClientSession() as session:
            data = payload if isinstance(payload, bytes) else json.dumps(payload).encode()
            async with session.post(target, data=data, headers={"content-type": "application/json"}) as resp:
                self.callbacks.append((target, resp.status))
                return resp.status

    def _schedule_callback(self, task: FakeTask) -> None:
        if not (self.auto_callback and task.request.get("callback_url")):
            return
        if self.loses_callback is not None and self.loses_callback(task):
            return
        pending = asyncio.get_running_loop().create_task(self._auto_callback(task.id))
        self._callback_tasks.add(pending)
        pending.add_done_callback(self._callback_tasks.discard)

    async def _auto_callback(self, task_id: str) -> None:
        try:
            await self.send_callback(task_id)
        except aiohttp.ClientError as exc:
            log.info("callback for %s failed: %s", task_id, exc)

    async def wait_for_submits(self, n: int, timeout: float = 20) -> None:
        """Wait until `n` submits arrived."""
        deadline = time.monotonic() + timeout
        while len(self.submits) < n:
            if time.monotonic() > deadline:
                raise AssertionError(f"expected {n} submit(s), got {len(self.submits)}")
            await asyncio.sleep(0.02)

    # -- handlers --------------------------------------------------------------------------------

    async def _read(self, request: web.Request) -> tuple[Any, web.Response | None]:
        try:
            body = await request.json()
        except ValueError:
            body = None
        self.requests.append(SeenRequest(request.path, body, dict(request.headers)))
        if request.headers.get("authorization") != f"Bearer {self.token}":
            return body, web.json_response(envelope("invalid_token", "Invalid token"), status=401)
        scripted = self._scripted[request.path]
        if scripted:
            status, answer = scripted.pop(0)
            if isinstance(answer, str):
                return body, web.Response(status=status, text=answer, content_type="text/html")
            return body, web.json_response(answer, status=status)
        if not isinstance(body, dict):
            return body, web.json_response(envelope("bad_request", "body must be JSON"), status=400)
        return body, None

    async def _images(self, request: web.Request) -> web.Response:
        body, early = await self._read(request)
        if early is not None:
            return early
        if len(self.submits) in self._scripted_submits:
            status, answer = self._scripted_submits.pop(len(self.submits))
            return web.json_response(answer, status=status)
        if self.submit_delay:
            await asyncio.sleep(self.submit_delay)
        problem = self._check_submit(body)
        if problem:
            return web.json_response(envelope("bad_request", problem), status=400)
        task = FakeTask(id=str(uuid.uuid4()), request=body, created_at=time.time())
        if self.task_errors:
            task.error = self.task_errors.pop(0)
        self.tasks[task.id] = task
        seconds = self.task_seconds(task) if self.task_seconds is not None else None
        if seconds is not None:
            self._timers.append(asyncio.get_running_loop().call_later(seconds, self.finish, task.id))
        if body.get("async") or body.get("callback_url"):
            return web.json_response({"task_id": task.id, "trace_id": task.trace_id})
        self.finish(task.id)
        assert task.response is not None
        return web.json_response(task.response)

    @staticmethod
    def _check_submit(body: dict[str, Any]) -> str | None:
        if body.get("action") not in ("generate", "edit"):
            return "action must be generate or edit"
        if not body.get("prompt"):
            return "prompt is required"
        if not body.get("size"):
            return "size is required"
        if body["action"] == "edit" and (not body.get("image_url") or body.get("model") not in KONTEXT):
            return "edit needs image_url and a kontext model"
        return None

    async def _tasks(self, request: web.Request) -> web.Response:
        body, early = await self._read(request)
        if early is not None:
            return early
        if body.get("action") == "retrieve":
            task = self._look(str(body.get("id")))
            return web.json_response(task.record() if task else {})
        if body.get("action") == "retrieve_batch":
            ids = body.get("ids") or []
            looked = [self._look(str(i)) for i in ids]
            items = [t.record() if t else {} for t in looked if t or self.empty_records_for_unknown]
            await asyncio.sleep(self.lookup_delay)
            return web.json_response({"items": items, "count": len(items)})
        return web.json_response(envelope("bad_request", "unknown action"), status=400)

    def _look(self, task_id: str) -> FakeTask | None:
        task = self.tasks.get(task_id)
        if task is None:
            return None
        task.lookups += 1
        if task.response is None and not self.hold and task.lookups > self.lookups_before_done:
            self.finish(task.id)
        return task

    async def _file(self, request: web.Request) -> web.Response:
        self.file_downloads += 1
        return web.Response(status=self.image_status, body=self.image_bytes, content_type=self.image_content_type)
