"""The bot's small aiohttp server: provider callbacks (only when CALLBACK_BASE_URL is set)."""

from __future__ import annotations

import hmac
import logging
import secrets

from aiohttp import web

from fluxbot.config import ConfigError
from fluxbot.jobs import CallbackOutcome, JobService
from fluxbot.logs import redact
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


class CallbackServer:
    """Receives provider callbacks and hands their task ids to the job service, which confirms them."""

    def __init__(self, jobs: JobService, secret: str, *, host: str, port: int) -> None:
        self._jobs = jobs
        self._secret = secret
        self._host = host
        self._port = port
        self._runner: web.AppRunner | None = None

    @property
    def port(self) -> int:
        """The port actually listened on (useful when 0 was asked for)."""
        assert self._runner is not None
        return int(self._runner.addresses[0][1])

    async def start(self) -> None:
        """Start listening."""
        app = web.Application(client_max_size=MAX_CALLBACK_BYTES)
        app.router.add_post("/callbacks/flux/{secret}", self._callback)
        self._runner = web.AppRunner(app, access_log=None, shutdown_timeout=2.0)
        await self._runner.setup()
        try:
            await web.TCPSite(self._runner, self._host, self._port).start()
        except OSError as exc:
            await self.close()
            raise ConfigError(
                "CALLBACK_PORT", f"a port the bot can listen on at {self._host} ({self._port}: {exc.strerror})"
            ) from None
        log.info("listening for provider callbacks on %s:%d", self._host, self.port)

    async def close(self) -> None:
        """Stop listening."""
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

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
