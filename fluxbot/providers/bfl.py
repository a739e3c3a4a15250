"""Client for Black Forest Labs' own FLUX API: `POST /v1/<model>`, the `polling_url` it answers, `GET /v1/credits`.

What the public documentation leaves open (see shared/bfl-api.md) is read defensively: a result's `seed`, the
error bodies other than 422, the webhook's body and signature, 401. The key is only ever sent to the configured
address or to a `*.bfl.ai` host over HTTPS.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import math
import re
import urllib.parse
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import aiohttp

from fluxbot.catalog import KEEP_RATIO, MODEL_SIZE, InvalidSize, Model, SizeKind, closest_ratio
from fluxbot.config import Secret
from fluxbot.errors import OptionName, either
from fluxbot.i18n import N_
from fluxbot.providers.base import (
    Image,
    JobRequest,
    Submitted,
    TaskRef,
    TaskState,
    TaskStatus,
    as_int,
    fetch_json,
    no_task_id,
    task_id_or_none,
    unreadable,
)
from fluxbot.providers.bfl_errors import (
    error_for,
    invalid,
    invalid_field,
    moderated,
    task_error,
    webhook_refused,
)
from fluxbot.providers.bfl_models import BFL_MODELS, ENDPOINTS, OUTPUT_FORMATS, Endpoint

log = logging.getLogger(__name__)

#: The header BFL's own skill notes say a webhook is signed in (`sha256=<hex HMAC-SHA256(secret, raw body)>`).
SIGNATURE_HEADER = "X-BFL-Signature"
#: The longest webhook_url the schema takes.
MAX_WEBHOOK_URL = 2083
#: The size a generate job gets when it names only an aspect ratio for a model that takes pixels (1 megapixel).
_PIXELS_FOR_RATIO = 1024 * 1024
_SIGNATURE = re.compile(r"sha256=([0-9a-fA-F]{64})", re.ASCII)
_MODELS = {model.name: model for model in BFL_MODELS}
#: The undocumented statuses already warned about (each is logged once).
_UNKNOWN_STATUSES: set[str] = set()


@dataclass
class BflFlux:
    """Black Forest Labs' FLUX API, over an injected aiohttp session."""

    session: aiohttp.ClientSession
    key: Secret = field(repr=False)
    base_url: str = "https://api.bfl.ai"
    webhook_secret: Secret | None = field(default=None, repr=False)
    request_timeout: float = 30.0
    name: str = "bfl"
    #: Each task is read from its own polling_url: one a call.
    max_batch: int = 1
    #: Tasks the API answered `Task not found` for (each is logged once).
    _not_found: set[str] = field(default_factory=set, init=False, repr=False)

    async def submit(self, request: JobRequest) -> Submitted:
        """Start one task (one image) and return it with the cost the API reports (credits)."""
        if request.count > 1:
            raise ValueError(f"BFL makes one image a task, asked for {request.count}")
        model, endpoint = _MODELS.get(request.model), ENDPOINTS.get(request.model)
        if model is None or endpoint is None:
            names = ", ".join(f"`{name}`" for name in _MODELS)
            raise invalid(
                N_("`{model}` is not a Black Forest Labs model. Pick one of {names}."),
                model=request.model[:40],
                names=names,
            )
        body = request_body(request, model, endpoint)
        url = f"{self.base_url}/v1/{model.name}"
        webhook = self._webhook_fields(request.callback_url)
        status, answer = await self._send("POST", url, {**body, **webhook})
        if webhook and refuses_webhook(status, answer):
            # Nothing started (a validation error); the webhook is only a hint, polling finds the result anyway.
            log.warning("BFL refused the webhook fields (HTTP %d); submitting without them, polling only", status)
            status, answer = await self._send("POST", url, body)
        if status >= 400:
            raise error_for(status, answer, model=model.name, action=request.action, hide=self._secrets())
        return submitted_from(answer, status)

    async def lookup(self, tasks: Sequence[TaskRef]) -> Mapping[str, TaskStatus]:
        """The status of each task, read from the polling_url its submit answered (exactly as given)."""
        if len(tasks) > self.max_batch:
            raise ValueError(f"at most {self.max_batch} task per lookup, got {len(tasks)}")
        statuses: dict[str, TaskStatus] = {}
        for task in tasks:
            status, answer = await self._send("GET", self.poll_url(task))
            if status >= 400:
                raise error_for(status, answer, model=None, action=None, hide=self._secrets())
            if not isinstance(answer, dict):
                raise unreadable("get_result answer is not a JSON object", http_status=status)
            if status_word(answer) == "task not found":
                # Unknown or expired: left out as the Provider contract says, so a billed task is not failed on one
                # answer (the job's timeout ends it if the API never finds it again).
                if task.task_id not in self._not_found and len(self._not_found) < 10_000:
                    self._not_found.add(task.task_id)
                    log.warning("BFL answers Task not found for task %s; looking again until the timeout", task.task_id)
                continue
            statuses[task.task_id] = parse_result(task.task_id, answer)
        return statuses

    def poll_url(self, task: TaskRef) -> str:
        """Where a task's status is read: its polling_url when the key may go there, else get_result at the base."""
        if task.poll_url and self._may_send_key_to(task.poll_url):
            return task.poll_url
        if task.poll_url:
            log.warning("polling_url of task %s is not a BFL address; using get_result at the base", task.task_id)
        return f"{self.base_url}/v1/get_result?id={urllib.parse.quote(task.task_id, safe='')}"

    def callback_task_id(self, raw: bytes, body: Any, headers: Mapping[str, str]) -> str | None:
        """A webhook's task `id`, only as a hint for a lookup (its format is not documented: its result is never
        used). With a secret set, an X-BFL-Signature that does not match raises CallbackRefused."""
        # Only `id`, the task's own field (S5's body is its get_result answer): Ace Data's callbacks carry `task_id`.
        task_id = task_id_or_none(body.get("id")) if isinstance(body, dict) else None
        if task_id is None:
            return None
        signature = _header(headers, SIGNATURE_HEADER)
        if signature is not None and self.webhook_secret is not None:
            check_signature(self.webhook_secret.reveal(), raw, signature)
        return task_id

    async def check_key(self) -> None:
        """Read the account's credits (free): AUTH when the key is refused, OUT_OF_CREDIT at 0 credits or less."""
        status, answer = await self._send("GET", f"{self.base_url}/v1/credits")
        if status >= 400:
            raise error_for(status, answer, model=None, action=None, checking_key=True, hide=self._secrets())
        credits = answer.get("credits") if isinstance(answer, dict) else None
        if not isinstance(credits, int | float) or isinstance(credits, bool):
            raise unreadable("/v1/credits answer without a credits number", http_status=status)
        if credits <= 0:
            raise error_for(402, None, model=None, action=None)
        log.info("the Black Forest Labs account has %s credits", credits)

    def _secrets(self) -> tuple[str, ...]:
        return tuple(s.reveal() for s in (self.key, self.webhook_secret) if s is not None and s.reveal())

    def _webhook_fields(self, callback_url: str | None) -> dict[str, str]:
        if not callback_url:
            return {}
        if len(callback_url) > MAX_WEBHOOK_URL:
            log.warning("the callback URL is longer than BFL takes (%d characters); polling only", MAX_WEBHOOK_URL)
            return {}
        fields = {"webhook_url": callback_url}
        if self.webhook_secret is not None:
            fields["webhook_secret"] = self.webhook_secret.reveal()
        return fields

    def _may_send_key_to(self, url: str) -> bool:
        """True for the configured address, and for BFL's own hosts over HTTPS (regional clusters)."""
        try:
            given, base = urllib.parse.urlsplit(url), urllib.parse.urlsplit(self.base_url)
            host = given.hostname or ""
        except ValueError:
            return False
        if (given.scheme, given.netloc) == (base.scheme, base.netloc):
            return True
        return given.scheme == "https" and not given.username and (host == "bfl.ai" or host.endswith(".bfl.ai"))

    async def _send(self, method: str, url: str, body: dict[str, Any] | None = None) -> tuple[int, Any]:
        headers = {"x-key": self.key.reveal(), "accept": "application/json"}
        return await fetch_json(self.session, method, url, seconds=self.request_timeout, headers=headers, json=body)


#: The submit fields that carry the webhook.
WEBHOOK_FIELDS = ("webhook_url", "webhook_secret")


def refuses_webhook(status: int, answer: Any) -> bool:
    """True for a validation error about the webhook fields (BFL's rules for them, HTTPS only, are not published)."""
    if status not in (400, 422):
        return False
    if invalid_field(answer) in WEBHOOK_FIELDS:
        return True
    detail = answer.get("detail") if isinstance(answer, dict) else None
    return isinstance(detail, str) and "webhook" in detail.lower()


def request_body(request: JobRequest, model: Model, endpoint: Endpoint) -> dict[str, Any]:
    """The JSON body of a submit: the prompt, the size in the model's terms, the edit's image and the options."""
    body: dict[str, Any] = {"prompt": request.prompt, **size_fields(request, model)}
    if request.action == "edit":
        if not model.can_edit:
            editors = ", ".join(f"`{m.name}`" for m in BFL_MODELS if m.can_edit)
            raise invalid(N_("`{model}` cannot edit images. Pick one of {names}."), model=model.name, names=editors)
        if not request.image_url:
            raise invalid(N_("An edit needs an image. Attach one and try again."))
        body[model.edit_field] = request.image_url  # the API fetches the URL itself
    for name, value in request.options.items():
        if name not in endpoint.options:
            takers = [m for m, e in ENDPOINTS.items() if name in e.options]
            if not takers:
                raise invalid(
                    N_("`{name}` is not an option of Black Forest Labs' API. Leave it out and try again."),
                    name=OptionName(name),
                )
            shown = ", ".join(f"`{m}`" for m in takers)
            raise invalid(
                # Translators: {models} is a list of model names, {model} the one the member picked.
                N_("`{name}` only works with {models}, not `{model}`. Leave it out or pick one of those."),
                name=OptionName(name),
                models=shown,
                model=model.name,
            )
        body[name] = option_value(name, value, model.name, endpoint)
    return body


def option_value(name: str, value: Any, model: str, endpoint: Endpoint) -> Any:
    """An option as the endpoint takes it: safety_tolerance lowered to the model family's highest, guidance as a
    number within the model's range."""
    if name == "safety_tolerance" and isinstance(value, int):
        return max(0, min(value, endpoint.safety_max))
    if name == "guidance":
        low, high = endpoint.guidance or (0.0, 0.0)
        try:
            number = float(str(value))
        except ValueError:
            number = math.nan
        if not low <= number <= high:  # nan fails this too
            raise invalid(
                N_("`guidance` must be from {low} to {high} with `{model}`."),
                low=low,
                high=high,
                model=model,
            )
        return number
    if name == "output_format" and value not in OUTPUT_FORMATS:
        raise invalid(N_("`output_format` must be {formats}."), formats=either(OUTPUT_FORMATS))
    return value


def size_fields(request: JobRequest, model: Model) -> dict[str, Any]:
    """The size as the model takes it: aspect_ratio, or width and height; nothing for an edit that keeps the
    input image's own (an edit without a size, or a ratio for a model that takes pixels)."""
    size = request.size.strip().lower()
    if size in ("", KEEP_RATIO):
        if request.action == "edit":
            return {}
        size = model.default_size
    rule = model.size_rule
    pixels = re.fullmatch(r"(\d{1,5})\s*[x×*]\s*(\d{1,5})", size)
    if rule.kind is SizeKind.RATIO:
        if pixels:  # a size in pixels (an old job's, another model's): the ratio nearest to it
            return {"aspect_ratio": closest_ratio(int(pixels[1]), int(pixels[2]), rule.suggestions)}
        return {"aspect_ratio": _normalized(model, size)}
    if not pixels:
        ratio = re.fullmatch(r"(\d{1,2})\s*:\s*(\d{1,2})", size)
        if ratio is None:
            _normalized(model, size)  # raises, saying what the model takes
            return {}
        if request.action == "edit":
            return {}
        width, height = _pixels_of(int(ratio[1]), int(ratio[2]), model)
        return {"width": width, "height": height}
    wide, _, high = _normalized(model, size).partition("x")
    return {"width": int(wide), "height": int(high)}


def _normalized(model: Model, size: str) -> str:
    try:
        return model.size_rule.normalize(size)
    except InvalidSize as exc:
        raise invalid(MODEL_SIZE, reason=exc.message, model=model.name) from None


def _pixels_of(ratio_w: int, ratio_h: int, model: Model) -> tuple[int, int]:
    """About one megapixel at this ratio, in the model's steps and bounds."""
    rule = model.size_rule
    ratio = ratio_w / ratio_h if ratio_w > 0 and ratio_h > 0 else 1.0
    high = rule.max_side or 2048

    def side(exact: float) -> int:
        return max(rule.min_side, min(high, round(exact / rule.multiple) * rule.multiple))

    return side(math.sqrt(_PIXELS_FOR_RATIO * ratio)), side(math.sqrt(_PIXELS_FOR_RATIO / ratio))


def submitted_from(answer: Any, status: int) -> Submitted:
    """The task a submit started (`id`, `polling_url`) and its `cost`; a webhook answer may have no polling_url."""
    if not isinstance(answer, dict):
        raise unreadable("submit answer is not a JSON object", http_status=status)
    task_id = task_id_or_none(answer.get("id"))
    if task_id is None:
        raise no_task_id(f"submit answer without a valid id: keys {sorted(answer)[:10]}")
    polling_url = answer.get("polling_url")
    usable = (
        isinstance(polling_url, str) and polling_url.startswith(("https://", "http://")) and len(polling_url) < 4096
    )
    return Submitted(TaskRef(task_id, polling_url if usable else None), cost=_number(answer.get("cost")))


def status_word(answer: Mapping[str, Any]) -> str:
    """A get_result answer's `status`, trimmed and in lower case ("" when it is not text)."""
    status = answer.get("status")
    return status.strip().casefold() if isinstance(status, str) else ""


def parse_result(task_id: str, answer: Mapping[str, Any]) -> TaskStatus:
    """Turn a get_result answer (`status`, `result`, `progress`, `details`) into a TaskStatus."""
    status = answer.get("status")
    said = status_word(answer)
    if said == "ready":
        result = answer.get("result")
        sample = result.get("sample") if isinstance(result, dict) else result
        if isinstance(sample, str) and sample.startswith(("https://", "http://")) and len(sample) <= 2048:
            seed = as_int(result.get("seed")) if isinstance(result, dict) else None  # not in the schema: if there
            return TaskStatus(task_id, TaskState.SUCCEEDED, images=(Image(sample, seed=seed),))
        return TaskStatus(
            task_id, TaskState.FAILED, error=task_error("Ready without result.sample", no_image_given=True)
        )
    if said in ("request moderated", "content moderated"):
        # Moderated tasks are not charged (BFL's status table): 0 replaces the cost the submit reported.
        return TaskStatus(task_id, TaskState.FAILED, error=moderated(said, answer.get("details")), cost=0.0)
    if said in ("error", "failed"):
        return TaskStatus(task_id, TaskState.FAILED, error=task_error(answer.get("details") or answer.get("result")))
    if said != "pending" and said[:40] not in _UNKNOWN_STATUSES and len(_UNKNOWN_STATUSES) < 20:
        # Not one of the six documented values: keep waiting (the job's timeout still ends it), and say so once.
        _UNKNOWN_STATUSES.add(said[:40])
        log.warning("task %s has a status BFL does not document: %r; still waiting", task_id, str(status)[:40])
    log.debug("task %s pending (progress %s)", task_id, answer.get("progress"))
    return TaskStatus(task_id, TaskState.RUNNING)


def check_signature(secret: str, raw: bytes, signature: str) -> None:
    """Raise CallbackRefused unless `signature` is `sha256=<hex HMAC-SHA256(secret, raw body)>`."""
    given = _SIGNATURE.fullmatch(signature.strip())
    if given is None:
        raise webhook_refused("its X-BFL-Signature is not sha256=<hex digest>")
    key = secret.encode("utf-8", "surrogateescape")  # the bytes of the secret as read from the environment
    expected = hmac.new(key, raw, hashlib.sha256).hexdigest()
    if not hmac.compare_digest(expected, given[1].lower()):
        raise webhook_refused("its X-BFL-Signature does not match BFL_WEBHOOK_SECRET")


def _header(headers: Mapping[str, str], name: str) -> str | None:
    value = headers.get(name)
    if value is None:  # a plain dict (aiohttp's headers ignore case themselves)
        value = next((v for k, v in headers.items() if k.lower() == name.lower()), None)
    return value


def _number(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, int | float | str):
        return None
    try:
        number = float(value)
    except ValueError:
        return None
    return number if math.isfinite(number) and number >= 0 else None
