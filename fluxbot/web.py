"""The bot's small aiohttp server: provider callbacks, /healthz and /metrics (each only when configured)."""

from __future__ import annotations

import hmac
import logging
import secrets
from typing import Protocol

from aiohttp import web

from fluxbot.config import ConfigError
from fluxbot.jobs import CallbackOutcome, JobService
from fluxbot.logs import redact
from fluxbot.metrics import METRICS
from fluxbot.providers.base import CallbackRefused
from fluxbot.store import Store

log = logging.getLogger(__name__)

#: A Flux result body is a few kilobytes; anything much larger is not a callback.
MAX_CALLBACK_BYTES = 256 * 1024
_META_KEY = "callback_secret"


async def callback_secret(store: Store) -> str:
    """This install's callback secret: made once, kept in the database so restarts keep the same URL."""
    secret = await store.get_meta(_META_KEY)
    if secret is None:
        secret = secrets.token_urlsafe(32)
        await store.set_meta(_META_KEY, secret)
    redact(secret)
    return secret


def callback_url(base_url: str, secret: str) -> str:
    """The URL providers are given for their callbacks."""
    return f"{base_url.rstrip('/')}/callbacks/flux/{secret}"


class Health(Protocol):
    """What /healthz and /metrics read from the running bot."""

    async def health(self) -> dict[str, bool]:
        """Each check by name, True when it passes."""
        ...

    async def jobs_by_state(self) -> dict[str, int]:
        """How many jobs are in each state."""
        ...


class WebServer:
    """The bot's aiohttp server: provider callbacks and/or health and metrics, as configured."""

    def __init__(self, *, host: str, port: int, setting: str) -> None:
        self._host = host
        self._port = port
        self._setting = setting  # the variable to name when the port cannot be used
        self._app = web.Application(client_max_size=MAX_CALLBACK_BYTES)
        self._runner: web.AppRunner | None = None
        self._jobs: JobService | None = None
        self._secret = ""
        self._health: Health | None = None

    def serve_callbacks(self, jobs: JobService, secret: str) -> None:
        """Accept provider callbacks at /callbacks/flux/<secret>."""
        self._jobs, self._secret = jobs, secret
        self._app.router.add_post("/callbacks/flux/{secret}", self._callback)

    def serve_health(self, health: Health) -> None:
        """Answer /healthz and /metrics."""
        self._health = health
        self._app.router.add_get("/healthz", self._healthz)
        self._app.router.add_get("/metrics", self._metrics)

    @property
    def port(self) -> int:
        """The port actually listened on (useful when 0 was asked for)."""
        assert self._runner is not None
        return int(self._runner.addresses[0][1])

    async def start(self) -> None:
        """Start listening."""
        self._runner = web.AppRunner(self._app, access_log=None, shutdown_timeout=2.0)
        await self._runner.setup()
        try:
            await web.TCPSite(self._runner, self._host, self._port).start()
        except OSError as exc:
            await self.close()
            raise ConfigError(
                self._setting, f"a port the bot can listen on at {self._host} ({self._port}: {exc.strerror})"
            ) from None
        served = [name for name, on in (("provider callbacks", self._jobs), ("health and metrics", self._health)) if on]
        log.info("listening for %s on %s:%d", " and ".join(served), self._host, self.port)

    async def close(self) -> None:
        """Stop listening."""
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    async def _healthz(self, request: web.Request) -> web.Response:
        assert self._health is not None
        checks = await self._health.health()
        healthy = all(checks.values())
        return web.json_response({"healthy": healthy, **checks}, status=200 if healthy else 503)

    async def _metrics(self, request: web.Request) -> web.Response:
        assert self._health is not None
        text = METRICS.render(await self._health.jobs_by_state())
        return web.Response(body=text.encode(), headers={"Content-Type": "text/plain; version=0.0.4; charset=utf-8"})

    async def _callback(self, request: web.Request) -> web.Response:
        if not hmac.compare_digest(request.match_info["secret"].encode(), self._secret.encode()):
            log.warning("callback with a wrong secret from %s ignored", request.remote)
            return web.json_response({"error": "not found"}, status=404)
        try:
            body = await request.json()
        except web.HTTPRequestEntityTooLarge:
            log.warning("oversized callback from %s ignored", request.remote)
            return web.json_response({"error": "body too large"}, status=413)
        except (ValueError, RecursionError):
            return web.json_response({"error": "body is not JSON"}, status=400)
        assert self._jobs is not None
        try:
            task_id = self._jobs.provider.callback_task_id(body, request.headers)
        except CallbackRefused as exc:
            log.warning("callback from %s refused: %s", request.remote, exc)
            return web.json_response({"error": str(exc)}, status=401)
        if task_id is None:
            return web.json_response({"error": "no task id"}, status=400)
        outcome = await self._jobs.hint(task_id)
        log.info("callback for task %s: %s", task_id, outcome)
        if outcome is CallbackOutcome.UNKNOWN:
            return web.json_response({"error": "unknown task"}, status=404)
        return web.json_response({"status": outcome.value})
