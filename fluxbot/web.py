"""The bot's small aiohttp server: provider callbacks, /healthz and /metrics (each only when configured)."""

from __future__ import annotations

import asyncio
import hmac
import json
import logging
import secrets
import time
from collections.abc import Callable
from typing import Protocol

from aiohttp import web
from aiohttp.http_exceptions import HttpProcessingError
from prometheus_client import CONTENT_TYPE_LATEST

from fluxbot.config import ConfigError
from fluxbot.jobs.lifecycle import CallbackOutcome
from fluxbot.logs import RateLimitedLog, redact
from fluxbot.metrics import Exposition, Readings
from fluxbot.providers.base import TASK_ID_RULE, CallbackRefused, Provider, valid_task_id
from fluxbot.shards import ShardState
from fluxbot.storage import Store, StoreUnavailable

log = logging.getLogger(__name__)

#: A Flux result body is a few kilobytes; anything much larger is not a callback.
MAX_CALLBACK_BYTES = 256 * 1024
_META_KEY = "callback_secret"
#: How long a callback's answer waits for the job core; past it the hint goes on and the provider is answered 202.
HINT_SECONDS = 5.0
#: At most one warning per kind of rejected callback in this many seconds (floods are counted, not written out).
WARNING_SECONDS = 60.0


async def callback_secret(store: Store) -> str:
    """This install's callback secret: made once, kept in the database so restarts (and every process behind one
    load balancer) share the same URL."""
    async with store.exclusive("callback-secret"):  # two first starts at once must not make two secrets
        secret = await store.meta.get(_META_KEY)
        if secret is None:
            secret = secrets.token_urlsafe(32)
            await store.meta.set(_META_KEY, secret)
    redact(secret)
    return secret


def callback_url(base_url: str, secret: str) -> str:
    """The URL providers are given for their callbacks."""
    return f"{base_url.rstrip('/')}/callbacks/flux/{secret}"


class _CountBadRequests(logging.Filter):
    """Turns aiohttp's ERROR and traceback for each malformed HTTP request into a rate-limited warning."""

    def __init__(self) -> None:
        super().__init__()
        self.warnings = RateLimitedLog(log, seconds=WARNING_SECONDS)

    def filter(self, record: logging.LogRecord) -> bool:
        """Let everything through except malformed requests, which are counted (their text is the sender's)."""
        error = record.exc_info[1] if record.exc_info else None
        if not isinstance(error, HttpProcessingError):
            return True
        remote = record.args[0] if isinstance(record.args, tuple) and record.args else "?"
        kind = type(error).__name__
        self.warnings.log("malformed HTTP requests", "malformed HTTP request from %s ignored (%s)", remote, kind)
        return False


# aiohttp logs every request it cannot parse (a NUL in a header, a raw byte in the path) at ERROR with a traceback,
# and anyone who can reach the port can send thousands a second; its request handlers log here instead.
_HTTP_LOG = logging.getLogger(f"{__name__}.http")
_HTTP_LOG.addFilter(_CountBadRequests())


class Hints(Protocol):
    """What provider callbacks reach in the job core."""

    @property
    def provider(self) -> Provider:
        """The active provider, which reads its own callbacks."""
        ...

    async def hint(self, task_id: str) -> CallbackOutcome:
        """A provider says `task_id` finished; what that changed."""
        ...


class Health(Protocol):
    """What /healthz and /metrics read from the running bot."""

    async def health(self) -> dict[str, bool]:
        """Each check by name, True when it passes."""
        ...

    def shard_states(self) -> list[ShardState]:
        """Each Discord shard this process runs."""
        ...

    async def jobs_by_state(self) -> dict[str, int]:
        """How many jobs are in each state."""
        ...

    def database_round_trips(self) -> int:
        """Statements and queries this process sent to the database so far."""
        ...


class WebServer:
    """The bot's aiohttp server: provider callbacks and/or health and metrics, as configured."""

    def __init__(
        self,
        *,
        host: str,
        port: int,
        setting: str,
        hint_seconds: float = HINT_SECONDS,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._host = host
        self._port = port
        self._setting = setting  # the variable to name when the port cannot be used
        self._app = web.Application(client_max_size=MAX_CALLBACK_BYTES)
        self._runner: web.AppRunner | None = None
        self._jobs: Hints | None = None
        self._secret = ""
        self._health: Health | None = None
        self._exposition: Exposition | None = None
        self._hint_seconds = hint_seconds
        self._late_hints: set[asyncio.Task[CallbackOutcome]] = set()
        # Anyone who sees the callback URL can send thousands of bad requests a second: count them, do not log each.
        self._warnings = RateLimitedLog(log, seconds=WARNING_SECONDS, clock=clock)

    def serve_callbacks(self, jobs: Hints, secret: str) -> None:
        """Accept provider callbacks at /callbacks/flux/<secret>."""
        self._jobs, self._secret = jobs, secret
        self._app.router.add_post("/callbacks/flux/{secret}", self._callback)

    def serve_health(self, health: Health, *, instance: str) -> None:
        """Answer /healthz and /metrics (every series labelled with `instance`)."""
        self._health, self._exposition = health, Exposition(instance)
        self._app.router.add_get("/healthz", self._healthz)
        self._app.router.add_get("/metrics", self._metrics)

    @property
    def port(self) -> int:
        """The port actually listened on (useful when 0 was asked for)."""
        assert self._runner is not None
        return int(self._runner.addresses[0][1])

    async def start(self) -> None:
        """Start listening."""
        self._runner = web.AppRunner(self._app, access_log=None, shutdown_timeout=2.0, logger=_HTTP_LOG)
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
        """Stop listening (and write out the counts of rejected callbacks not yet logged)."""
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None
        for task in list(self._late_hints):
            task.cancel()
        self._warnings.close()

    async def _healthz(self, request: web.Request) -> web.Response:
        assert self._health is not None
        checks = await self._health.health()
        healthy = all(checks.values())
        shards = [shard.as_json() for shard in self._health.shard_states()]
        return web.json_response({"healthy": healthy, **checks, "shards": shards}, status=200 if healthy else 503)

    async def _metrics(self, request: web.Request) -> web.Response:
        assert self._health is not None
        assert self._exposition is not None
        round_trips = self._health.database_round_trips()  # before the health check's own write
        jobs: dict[str, int] | None = None
        try:
            jobs = await self._health.jobs_by_state()
        except StoreUnavailable as exc:
            # The rest still answers (the database check says it is down); a failed scrape would read "bot down".
            self._warnings.log("unread job counts", "/metrics could not read the job counts: %s", exc)
        readings = Readings(jobs, self._health.shard_states(), round_trips, await self._health.health())
        return web.Response(body=self._exposition.render(readings), headers={"Content-Type": CONTENT_TYPE_LATEST})

    async def _callback(self, request: web.Request) -> web.Response:
        # surrogateescape: whatever text the router hands over, encoding it cannot raise.
        given = request.match_info["secret"].encode("utf-8", "surrogateescape")
        if not hmac.compare_digest(given, self._secret.encode()):
            self._warnings.log(
                "callbacks with a wrong secret", "callback with a wrong secret from %s ignored", request.remote
            )
            return web.json_response({"error": "not found"}, status=404)
        try:
            raw = await request.read()
            # JSON is UTF-8 (RFC 8259): the bytes are parsed whatever charset the request claims.
            body = json.loads(raw)
        except web.HTTPRequestEntityTooLarge:
            self._warnings.log("oversized callbacks", "oversized callback from %s ignored", request.remote)
            return web.json_response({"error": "body too large"}, status=413)
        except (ValueError, RecursionError):
            return web.json_response({"error": "body is not JSON"}, status=400)
        assert self._jobs is not None
        try:
            task_id = self._jobs.provider.callback_task_id(raw, body, request.headers)
        except CallbackRefused as exc:
            self._warnings.log("refused callbacks", "callback from %s refused: %s", request.remote, exc)
            return web.json_response({"error": str(exc)}, status=401)
        if not valid_task_id(task_id):
            # The id itself is never logged: it could hold line breaks (forged log lines) or terminal escapes.
            self._warnings.log(
                "callbacks without a valid task id", "callback from %s without a valid task id ignored", request.remote
            )
            return web.json_response({"error": f"no valid task id (a task id is {TASK_ID_RULE})"}, status=400)
        outcome = await self._hint(task_id)
        if outcome is None:
            return web.json_response({"status": "received"}, status=202)
        log.info("callback for task %s: %s", task_id, outcome)
        if outcome is CallbackOutcome.UNKNOWN:
            return web.json_response({"error": "unknown task"}, status=404)
        if outcome is CallbackOutcome.UNAVAILABLE:
            self._warnings.log(
                "unplaced callbacks", "a callback came while the database could not say whose task it is"
            )
            answer = {"error": "the bot cannot check this task just now; please try again"}
            return web.json_response(answer, status=503, headers={"Retry-After": "30"})
        return web.json_response({"status": outcome.value})

    async def _hint(self, task_id: str) -> CallbackOutcome | None:
        """The job core's answer to a callback, or None when it takes too long (it goes on in the background)."""
        assert self._jobs is not None
        task = asyncio.ensure_future(self._jobs.hint(task_id))
        try:
            return await asyncio.wait_for(asyncio.shield(task), self._hint_seconds)
        except TimeoutError:
            self._warnings.log(
                "slow callbacks",
                "a callback waited %g s for the job core; answered 202, it goes on",
                self._hint_seconds,
            )
            self._late_hints.add(task)
            task.add_done_callback(self._late_hint_done)
            return None

    def _late_hint_done(self, task: asyncio.Task[CallbackOutcome]) -> None:
        self._late_hints.discard(task)
        if not task.cancelled() and (exc := task.exception()) is not None:
            self._warnings.log("failed callbacks", "a callback could not be handled: %s", exc)
