"""Client for fal.ai's queue API (`POST {queue}/<model id>`, then the status and response URLs it answers).

A task's `poll_url` is the `response_url` fal returned, character for character; its status is read from
`response_url + "/status"`, which is what fal returns as `status_url`. When a submit answers a `status_url` of
any other form, both are kept as given in a compact JSON object instead (`{"status_url": …, "response_url": …}`),
so no URL is ever rebuilt from the model id (fal's URLs drop the model's subpath).
"""

from __future__ import annotations

import asyncio
import json
import logging
import urllib.parse
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, TypeGuard

import aiohttp

from fluxbot.catalog import KEEP_RATIO, Model, SizeKind, get_model
from fluxbot.config import Secret
from fluxbot.errors import Message, OptionName
from fluxbot.i18n import N_
from fluxbot.providers.base import (
    CallbackRefused,
    ErrorKind,
    Image,
    JobRequest,
    ProviderError,
    Submitted,
    TaskRef,
    TaskState,
    TaskStatus,
    as_int,
    fetch_json,
    is_image_url,
    no_image,
    no_task_id,
    task_id_or_none,
    unreadable,
)
from fluxbot.providers.fal_errors import error_for, expired, stated_error
from fluxbot.providers.fal_models import FAL, FAL_ENDPOINTS, IMAGE_SIZE_PRESETS, Endpoint
from fluxbot.providers.fal_webhook import SIGNED_HEADERS, SigningKeys, check_signature, header

log = logging.getLogger(__name__)

DEFAULT_QUEUE_URL = "https://queue.fal.run"
DEFAULT_JWKS_URL = "https://rest.alpha.fal.ai/.well-known/jwks.json"
#: A request id no one has: check_key asks for its status, which proves the key without starting anything.
PROBE_REQUEST_ID = "00000000-0000-0000-0000-000000000000"
#: The member's option names in fal's bodies (the others are fal's own names).
_BODY_NAMES = {"guidance": "guidance_scale", "steps": "num_inference_steps"}
#: Options a model without them may simply not send: a server's safety ceiling adds `safety_tolerance` to every
#: request, and models without it have their safety checker on by default.
_DROPPED_WHERE_ABSENT = frozenset({"safety_tolerance"})
#: Hosts fal itself answers from: a returned URL elsewhere is never sent the key.
_FAL_DOMAINS = ("fal.run", "fal.ai", "fal.media")


@dataclass
class FalFlux:
    """fal.ai's queue API for the Flux models of `fal_models`, over an injected aiohttp session."""

    session: aiohttp.ClientSession
    key: Secret = field(repr=False)
    queue_url: str = DEFAULT_QUEUE_URL
    jwks_url: str = DEFAULT_JWKS_URL
    #: Whether the bot has a callback URL, so fal's webhook keys are fetched at start.
    webhooks: bool = False
    request_timeout: float = 30.0
    #: Pauses before the retries of a lookup that met a 5xx or a broken connection (a submit is never resent).
    lookup_retry_delays: tuple[float, ...] = (0.5, 2.0)
    name: str = "fal"
    #: fal has no batch status lookup.
    max_batch: int = 1
    signing_keys: SigningKeys = field(init=False, repr=False)

    def __post_init__(self) -> None:
        self.signing_keys = SigningKeys(self.session, self.jwks_url)

    async def submit(self, request: JobRequest) -> Submitted:
        """Queue one request on the model's endpoint (its edit endpoint for an edit); its id and URLs as answered."""
        model, endpoint = _model(request.model)
        model_id = endpoint.edit if request.action == "edit" else endpoint.generate
        if model_id is None:
            raise ProviderError(
                ErrorKind.INVALID_REQUEST,
                Message(
                    N_("`{model}` cannot edit images on fal.ai. Pick a Kontext or FLUX.2 model."), model=model.name
                ),
            )
        body = request_body(request, model, endpoint)
        params = None
        if request.callback_url:
            params = {"fal_webhook": request.callback_url}
            self.signing_keys.refresh_if_old()  # so that the callback finds fresh keys
        status, answer = await fetch_json(
            self.session, "POST", f"{self.queue_url}/{model_id}", seconds=self.request_timeout,
            headers=self._headers(), json=body, params=params,
        )  # fmt: skip
        if status >= 400:
            raise error_for(status, answer, action=request.action, stage="submit")
        if not isinstance(answer, dict):
            raise unreadable("non-JSON answer to a submit", http_status=status)
        request_id = task_id_or_none(answer.get("request_id"))
        response_url, status_url = answer.get("response_url"), answer.get("status_url")
        if request_id is None:
            raise no_task_id(f"submit answer without a request_id: keys {sorted(answer)}")
        if not self._ours(response_url) or not self._ours(status_url or response_url):
            raise ProviderError(
                ErrorKind.BAD_RESPONSE,
                Message(
                    N_("fal.ai accepted the job but gave no address on its own servers to follow it. Please try again.")
                ),
                detail=f"request {request_id}: response_url/status_url missing or not on fal's hosts",
            )
        return Submitted(TaskRef(request_id, poll_url=poll_url_of(response_url, status_url or None)))

    async def lookup(self, tasks: Sequence[TaskRef]) -> Mapping[str, TaskStatus]:
        """Read each task's status; a finished one's result is fetched at once (fal keeps it minutes only)."""
        if len(tasks) > self.max_batch:
            raise ValueError(f"at most {self.max_batch} task per lookup, got {len(tasks)}")
        statuses: dict[str, TaskStatus] = {}
        for task in tasks:
            status = await self._lookup_one(task)
            if status is not None:
                statuses[task.task_id] = status
        return statuses

    def callback_task_id(self, raw: bytes, body: Any, headers: Mapping[str, str]) -> str | None:
        """The request id of a fal webhook whose Ed25519 signature verifies; None when it is not fal's at all.

        Idempotent: fal resends a callback up to 10 times over 2 hours, and each time the same id comes back; the
        job core confirms it with a lookup and ignores ids of tasks already finished, so a resend does no work."""
        claims = any(header(headers, name) for name in SIGNED_HEADERS)
        if not claims and not (isinstance(body, dict) and "request_id" in body and "gateway_request_id" in body):
            return None
        signed_id = check_signature(self.signing_keys, raw, headers)
        named = (body.get("request_id"), body.get("gateway_request_id")) if isinstance(body, dict) else ()
        # The header's id is signed and the body is hashed into the signature; which of the body's two ids the header
        # repeats is not documented, so either is taken.
        task_id = task_id_or_none(named[0]) if named else None
        if task_id is None or signed_id not in named:
            raise CallbackRefused("the callback's signed request id is not the one its body names")
        return task_id

    async def check_key(self) -> None:
        """Prove the key with the status of a request that does not exist (401/403: refused; 404: accepted).

        fal documents no endpoint for this; that its queue checks the key before it looks the request up is
        UNCONFIRMED, so only a clear refusal fails the start. With webhooks on, fal's signing keys are fetched too."""
        url = f"{self.queue_url}/fal-ai/flux/requests/{PROBE_REQUEST_ID}/status"
        status, answer = await fetch_json(
            self.session, "GET", url, seconds=self.request_timeout, headers=self._headers()
        )
        if status in (401, 402, 403):
            raise error_for(status, answer, action=None, stage="check")
        if status == 404 and not isinstance(answer, dict):
            raise error_for(status, answer, action=None, stage="check")  # not fal's JSON: a wrong FAL_QUEUE_URL
        if status >= 500 or status == 429:
            log.warning("fal.ai's queue answered HTTP %s to the key check; the key is judged at the first job", status)
        if self.webhooks and not await self.signing_keys.refresh():
            log.warning("fal.ai's webhook keys could not be fetched: callbacks are refused until they are")

    async def _lookup_one(self, task: TaskRef) -> TaskStatus | None:
        if not task.poll_url:  # every request this client submitted has one: this one is not known here
            log.info("no fal.ai request %s with a status address; leaving it out", task.task_id)
            return None
        urls = urls_of(task.poll_url)
        if urls is None or not all(self._ours(url) for url in urls):
            error = unreadable(f"request {task.task_id}: no usable status address stored")
            return TaskStatus(task.task_id, TaskState.FAILED, error=error)
        status_url, response_url = urls
        status, answer = await self._get(status_url)
        if status == 404:
            log.info("fal.ai does not know request %s; leaving it out", task.task_id)
            return None
        if status >= 400:
            raise error_for(status, answer, action=None, stage="status")
        if not isinstance(answer, dict):
            raise unreadable("non-JSON status answer", http_status=status)
        state = answer.get("status")
        if state == "IN_QUEUE":
            return TaskStatus(task.task_id, TaskState.RUNNING, queue_position=as_int(answer.get("queue_position")))
        if state != "COMPLETED":  # IN_PROGRESS, or a state fal may add: followed until it completes or times out
            return TaskStatus(task.task_id, TaskState.RUNNING)
        status, result = await self._get(response_url, missing_may_appear=True)
        if status in (404, 410):
            return TaskStatus(task.task_id, TaskState.FAILED, error=expired())
        if status in (401, 403, 429) or (status >= 500 and not isinstance(result, dict)):
            raise error_for(status, result, action=None, stage="status")  # the queue itself answered: ask again
        if status >= 400:  # the model's own error, kept as the result
            error = error_for(status, result, action=None, stage="result")
            return TaskStatus(task.task_id, TaskState.FAILED, error=error)
        if not isinstance(result, dict):
            raise unreadable("non-JSON result", http_status=status)
        return parse_result(task.task_id, result, stated=stated_error(answer))

    async def _get(self, url: str, *, missing_may_appear: bool = False) -> tuple[int, Any]:
        """GET with the retries of a lookup: a 5xx or a broken connection is asked again after a pause."""
        delays = (*self.lookup_retry_delays, None)
        for delay in delays:
            try:
                status, answer = await fetch_json(
                    self.session, "GET", url, seconds=self.request_timeout, headers=self._headers()
                )
            except ProviderError:
                if delay is None:
                    raise
            else:
                again = status >= 500 or (missing_may_appear and status == 404)
                if not again or delay is None:
                    return status, answer
            await asyncio.sleep(delay)
        raise AssertionError("unreachable")  # the last delay is None: it returns or raises

    def _headers(self) -> dict[str, str]:
        return {"Authorization": f"Key {self.key.reveal()}", "Accept": "application/json"}

    def _ours(self, url: Any) -> TypeGuard[str]:
        """True for an http(s) URL on the queue's own origin or fal's hosts (the only ones sent the key)."""
        if not is_image_url(url):
            return False
        parts, queue = urllib.parse.urlsplit(url), urllib.parse.urlsplit(self.queue_url)
        if (parts.scheme, parts.netloc) == (queue.scheme, queue.netloc):
            return True
        host = parts.hostname or ""
        return parts.scheme == "https" and any(host == d or host.endswith("." + d) for d in _FAL_DOMAINS)


def _model(name: str) -> tuple[Model, Endpoint]:
    try:
        return get_model(FAL, name), FAL_ENDPOINTS[name]
    except KeyError:
        names = ", ".join(f"`{m.name}`" for m in FAL.models)
        raise ProviderError(
            ErrorKind.INVALID_REQUEST,
            Message(N_("fal.ai has no model `{model}` here. Pick one of {names}."), model=name[:40], names=names),
        ) from None


def request_body(request: JobRequest, model: Model, endpoint: Endpoint) -> dict[str, Any]:
    """The body one model's endpoint takes; ProviderError (nothing sent) for an option the model does not have."""
    if request.count > model.images_per_task:
        raise ValueError(f"{model.name} makes {model.images_per_task} image(s) a task, asked for {request.count}")
    body: dict[str, Any] = {"prompt": request.prompt}
    size = _size_field(model, request.size)
    if size is not None:
        body[size[0]] = size[1]
    if endpoint.num_images:
        body["num_images"] = request.count
    if request.action == "edit" and request.image_url:
        body[model.edit_field] = [request.image_url] if model.edit_field == "image_urls" else request.image_url
    for name, value in request.options.items():
        if name not in endpoint.options:
            if name in _DROPPED_WHERE_ABSENT:
                continue
            takers = ", ".join(f"`{m}`" for m, e in FAL_ENDPOINTS.items() if name in e.options)
            raise ProviderError(
                ErrorKind.INVALID_REQUEST,
                Message(
                    # Translators: {model} is a model's label (FLUX.1 [dev]), {models} a list of model names.
                    N_("`{name}` does not apply to {model} on fal.ai. Leave it out, or pick one of {models}."),
                    name=OptionName(name),
                    model=model.label,
                    models=takers,
                ),
            )
        body[_BODY_NAMES.get(name, name)] = _value(name, value, endpoint)
    return body


def _size_field(model: Model, size: str) -> tuple[str, Any] | None:
    """("image_size", preset or {width, height}) or ("aspect_ratio", ratio); None keeps an edited image's shape."""
    if size == KEEP_RATIO or not size:
        return None
    if model.size_rule.kind is SizeKind.RATIO:
        return "aspect_ratio", size
    width, _, height = size.partition("x")
    preset = IMAGE_SIZE_PRESETS.get(size)
    return "image_size", preset or {"width": int(width), "height": int(height)}


def _value(name: str, value: str | bool | int, endpoint: Endpoint) -> Any:
    if name == "safety_tolerance" and isinstance(value, int):
        return str(min(max(value, 1), endpoint.max_safety))  # a string "1".."6" ("5" on FLUX.2)
    if name == "guidance" and isinstance(value, str):
        try:
            return float(value)
        except ValueError:
            raise ProviderError(
                ErrorKind.INVALID_REQUEST, Message(N_("`guidance` must be a number such as 3.5."))
            ) from None
    return value


def poll_url_of(response_url: str, status_url: str | None) -> str:
    """What a TaskRef keeps: the response URL as returned, or both URLs as JSON when the status URL is not
    `response_url + "/status"`."""
    if status_url is None or status_url == response_url + "/status":
        return response_url
    return json.dumps({"status_url": status_url, "response_url": response_url}, separators=(",", ":"))


def urls_of(poll_url: str | None) -> tuple[str, str] | None:
    """(status URL, response URL) of a stored `poll_url`; None when there is none to read."""
    if not poll_url:
        return None
    if not poll_url.startswith("{"):
        return poll_url + "/status", poll_url
    try:
        kept = json.loads(poll_url)
    except ValueError:
        return None
    urls = (kept.get("status_url"), kept.get("response_url")) if isinstance(kept, dict) else (None, None)
    return (urls[0], urls[1]) if isinstance(urls[0], str) and isinstance(urls[1], str) else None


def parse_result(task_id: str, result: Mapping[str, Any], *, stated: ProviderError | None = None) -> TaskStatus:
    """A completed request's result (`images`, `seed`, `has_nsfw_concepts`, `timings`) as a TaskStatus."""
    items = result.get("images")
    flags = result.get("has_nsfw_concepts")
    flags = flags if isinstance(flags, list) else []
    seed = as_int(result.get("seed"))
    images: list[Image] = []
    for index, item in enumerate(items if isinstance(items, list) else []):
        url = item.get("url") if isinstance(item, dict) else None
        if not is_image_url(url):
            continue
        flagged = index < len(flags) and flags[index] is True
        # fal reports one seed for the request: it is the first image's (the others' are not documented).
        images.append(Image(url, seed=seed if not images else None, flagged=flagged))
    if not images:
        return TaskStatus(task_id, TaskState.FAILED, error=stated or no_image("COMPLETED without an image URL"))
    timings = result.get("timings")
    inference = timings.get("inference") if isinstance(timings, dict) else None
    seconds = float(inference) if isinstance(inference, int | float) and not isinstance(inference, bool) else None
    return TaskStatus(task_id, TaskState.SUCCEEDED, images=tuple(images), inference_seconds=seconds)
