"""An in-process fake of the Kie.ai Flux Kontext API in its real shapes (see shared/kie-api.md)."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import time
import uuid
from dataclasses import dataclass, field
from typing import Any

import aiohttp
from aiohttp import web

from tests.fakes.png import make_png


@dataclass
class KieTask:
    """One task of the fake."""

    id: str
    body: dict[str, Any]
    created: float = field(default_factory=time.time)
    flag: int = 0  # 0 generating, 1 success, 2 create failed, 3 generation failed
    error: tuple[int, str] | None = None
    lookups: int = 0

    def record(self, base_url: str) -> dict[str, Any]:
        """record-info's `data`: times as "YYYY-MM-DD HH:MM:SS", empty values as the string "null"."""
        done = self.flag != 0
        files = f"{base_url}/files/{self.id}"
        result = {"originImageUrl": f"{files}/origin.png", "resultImageUrl": f"{files}/0.png"}
        return {
            "taskId": self.id,
            "paramJson": json.dumps(self.body),
            "createTime": time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime(self.created)),
            "completeTime": time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime()) if done else "null",
            "response": result if self.flag == 1 else None,
            "successFlag": self.flag,
            "errorCode": self.error[0] if self.error else "null",
            "errorMessage": self.error[1] if self.error else "null",
        }  # fmt: skip


class FakeKie:
    """The fake. Tasks succeed after `lookups_before_done` lookups unless `hold` is set."""

    def __init__(self, *, token: str = "test-kie-key", webhook_key: str | None = None) -> None:
        self.token = token
        self.webhook_key = webhook_key
        self.lookups_before_done = 1
        self.hold = False
        self.tasks: dict[str, KieTask] = {}
        self.submits: list[dict[str, Any]] = []
        self.lookups: list[str] = []
        self.callbacks: list[tuple[str, int]] = []
        self._scripted: dict[str, list[tuple[int, Any]]] = {"generate": [], "record": []}
        #: Task ids whose record-info answers HTTP 500 (Kie's JSON), however often they are asked for.
        self.failing_records: set[str] = set()
        #: Serve each result file once only, then answer 404 as an expired link does (BFL's live 10 minutes).
        self.files_once = False
        #: The path of every result file asked for, and of every one served.
        self.file_requests: list[str] = []
        self.file_downloads: list[str] = []
        self._runner: web.AppRunner | None = None
        self.base_url = ""

    async def start(self) -> None:
        """Listen on a free loopback port."""
        app = web.Application()
        app.router.add_post("/api/v1/flux/kontext/generate", self._generate)
        app.router.add_get("/api/v1/flux/kontext/record-info", self._record)
        app.router.add_get("/files/{task}/{name}", self._file)
        self._runner = web.AppRunner(app, access_log=None, shutdown_timeout=1.0)
        await self._runner.setup()
        await web.TCPSite(self._runner, "127.0.0.1", 0).start()
        self.base_url = f"http://127.0.0.1:{self._runner.addresses[0][1]}"

    async def close(self) -> None:
        """Stop listening."""
        if self._runner is not None:
            await self._runner.cleanup()

    def script(self, endpoint: str, http_status: int, body: Any, times: int = 1) -> None:
        """Answer the next `times` calls to "generate" or "record" with this status and body (a str: as HTML)."""
        self._scripted[endpoint].extend([(http_status, body)] * times)

    def finish(self, task_id: str, *, flag: int = 1, error: tuple[int, str] | None = None) -> None:
        """End a task: 1 success, 2 create failed, 3 generation failed."""
        task = self.tasks[task_id]
        task.flag, task.error = flag, error

    def signed_headers(
        self, task_id: str, *, key: str | None = None, timestamp: int | str | None = None
    ) -> dict[str, str]:
        """The X-Webhook-* headers Kie sends when signing is on."""
        stamp = str(timestamp if timestamp is not None else int(time.time()))
        secret = (key or self.webhook_key or "").encode()
        digest = hmac.new(secret, f"{task_id}.{stamp}".encode(), hashlib.sha256).digest()
        return {"X-Webhook-Timestamp": stamp, "X-Webhook-Signature": base64.b64encode(digest).decode()}

    def callback_body(self, task_id: str) -> dict[str, Any]:
        """The callback body for a finished task (`data.info`, unlike record-info's `data.response`)."""
        task = self.tasks[task_id]
        ok = task.flag == 1
        info = {"originImageUrl": "", "resultImageUrl": f"{self.base_url}/files/{task_id}/0.png" if ok else ""}
        return {"code": 200 if ok else 501, "msg": "BFL image generated successfully." if ok else "failed",
                "data": {"taskId": task_id, "info": info}}  # fmt: skip

    async def send_callback(self, task_id: str, *, url: str | None = None, signed: bool = True) -> int:
        """POST the callback for a task to its callBackUrl; returns the HTTP status the bot answered."""
        target = url or self.tasks[task_id].body["callBackUrl"]
        headers = {"Content-Type": "application/json"}
        if signed and self.webhook_key:
            headers.update(self.signed_headers(task_id))
        async with (
            aiohttp.ClientSession() as session,
            session.post(target, data=json.dumps(self.callback_body(task_id)), headers=headers) as resp,
        ):
            self.callbacks.append((target, resp.status))
            return resp.status

    def _refuse(self, request: web.Request) -> web.Response | None:
        if request.headers.get("Authorization") != f"Bearer {self.token}":
            return web.json_response({"code": 401, "msg": "You do not have access permissions"})
        return None

    def _scripted_answer(self, endpoint: str) -> web.Response:
        status, answer = self._scripted[endpoint].pop(0)
        if isinstance(answer, str):  # what a proxy or another server sends: not Kie's JSON
            return web.Response(status=status, text=answer, content_type="text/html")
        return web.json_response(answer, status=status)

    async def _generate(self, request: web.Request) -> web.Response:
        body = await request.json()
        self.submits.append(body)
        refused = self._refuse(request)
        if refused is not None:
            return refused
        if self._scripted["generate"]:
            return self._scripted_answer("generate")
        if not body.get("prompt"):
            return web.json_response({"code": 422, "msg": "prompt is required"})
        task = KieTask(id=uuid.uuid4().hex, body=body)
        self.tasks[task.id] = task
        return web.json_response({"code": 200, "msg": "success", "data": {"taskId": task.id}})

    async def _record(self, request: web.Request) -> web.Response:
        task_id = request.query.get("taskId", "")
        self.lookups.append(task_id)
        refused = self._refuse(request)
        if refused is not None:
            return refused
        if self._scripted["record"]:
            return self._scripted_answer("record")
        if task_id in self.failing_records:
            return web.json_response({"code": 500, "msg": "Server error, please try again later"}, status=500)
        task = self.tasks.get(task_id)
        if task is None:
            return web.json_response({"code": 200, "msg": "success", "data": None})
        task.lookups += 1
        if task.flag == 0 and not self.hold and task.lookups > self.lookups_before_done:
            task.flag = 1
        return web.json_response({"code": 200, "msg": "success", "data": task.record(self.base_url)})

    async def _file(self, request: web.Request) -> web.Response:
        self.file_requests.append(request.path)
        if self.files_once and request.path in self.file_downloads:
            return web.Response(status=404, text="<Error><Code>AccessDenied</Code>Request has expired</Error>")
        self.file_downloads.append(request.path)
        return web.Response(body=make_png(24, 16), content_type="image/png")
