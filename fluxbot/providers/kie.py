"""Client for the Kie.ai Flux Kontext API (`/api/v1/flux/kontext/generate`, `/record-info`)."""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import logging
import re
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import aiohttp

from fluxbot.catalog import KEEP_RATIO
from fluxbot.config import Secret
from fluxbot.errors import Message
from fluxbot.i18n import N_
from fluxbot.logs import scrub
from fluxbot.providers.base import (
    IMAGE_UNREACHABLE,
    KEY_CHECK_TASK,
    PROVIDER_BUSY,
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
    provider_said,
    task_id_or_none,
    unreadable,
    valid_task_id,
)

log = logging.getLogger(__name__)

#: Kie's names for the options of `catalog.KIE_OPTIONS`.
_BODY_NAMES = {
    "output_format": "outputFormat",
    "prompt_upsampling": "promptUpsampling",
    "safety_tolerance": "safetyTolerance",
    "translate": "enableTranslation",
}

#: How far a signed callback's timestamp may be from now (replayed callbacks are refused).
SIGNATURE_WINDOW_SECONDS = 15 * 60


@dataclass
class KieFlux:
    """The Kie.ai Flux Kontext API, over an injected aiohttp session."""

    session: aiohttp.ClientSession
    token: Secret = field(repr=False)
    base_url: str = "https://api.kie.ai"
    webhook_key: Secret | None = field(default=None, repr=False)
    request_timeout: float = 30.0
    name: str = "kie"
    #: record-info looks up one task a call.
    max_batch: int = 1

    async def submit(self, request: JobRequest) -> Submitted:
        """Start a generate (or, with `image_url`, an edit) task of one image and return it (Kie reports no cost)."""
        body: dict[str, Any] = {"prompt": request.prompt, "model": request.model}
        if request.size != KEEP_RATIO:  # without it, Kie keeps an edited image's own ratio
            body["aspectRatio"] = request.size
        if request.image_url:
            body["inputImage"] = request.image_url
        body.update({_BODY_NAMES[name]: value for name, value in request.options.items()})
        if request.callback_url:
            body["callBackUrl"] = request.callback_url
        data = await self._call("POST", "/api/v1/flux/kontext/generate", body=body, action=request.action)
        task_id = data.get("taskId") if isinstance(data, dict) else None
        if not isinstance(task_id, str) or not task_id:
            raise no_task_id("generate answer without data.taskId")
        return Submitted(TaskRef(task_id))

    async def lookup(self, tasks: Sequence[TaskRef]) -> Mapping[str, TaskStatus]:
        """Look tasks up with record-info, one call each (the API has no batch lookup)."""
        if len(tasks) > self.max_batch:
            raise ValueError(f"at most {self.max_batch} task id per lookup, got {len(tasks)}")
        statuses: dict[str, TaskStatus] = {}
        for task_id in (task.task_id for task in tasks):
            try:
                data = await self._call("GET", "/api/v1/flux/kontext/record-info", params={"taskId": task_id})
            except ProviderError as exc:
                # `code` is only set when Kie itself answered (its JSON envelope): an HTTP 404 from a proxy or a wrong
                # KIE_API_BASE_URL has none and is raised as the misconfiguration it is, not taken as an unknown task.
                if exc.code not in ("404", "422"):
                    raise
                log.info("record-info does not know task %s (%s); leaving it out", task_id, exc.code)
                continue
            status = parse_record(task_id, data) if isinstance(data, dict) else None
            if status is not None:
                statuses[task_id] = status
        return statuses

    def callback_task_id(self, raw: bytes, body: Any, headers: Mapping[str, str]) -> str | None:
        """A callback's `data.taskId`, None unless `valid_task_id`; with a webhook key, only when validly signed."""
        data = body.get("data") if isinstance(body, dict) else None
        task_id = task_id_or_none(data.get("taskId")) if isinstance(data, dict) else None
        if task_id is None:
            return None
        if self.webhook_key is not None:
            check_signature(self.webhook_key.reveal(), task_id, headers)
        return task_id

    async def check_key(self) -> None:
        """Look up a task that does not exist: free, and refused with the key's own error when the key is wrong."""
        await self.lookup([TaskRef(KEY_CHECK_TASK)])

    async def _call(
        self,
        method: str,
        path: str,
        *,
        body: dict[str, Any] | None = None,
        params: dict[str, str] | None = None,
        action: str | None = None,
    ) -> Any:
        headers = {"Authorization": f"Bearer {self.token.reveal()}", "Accept": "application/json"}
        status, answer = await fetch_json(
            self.session,
            method,
            self.base_url + path,
            seconds=self.request_timeout,
            headers=headers,
            json=body,
            params=params,
        )
        # Kie reports most errors as HTTP 200 with a non-200 `code` in the body; real HTTP errors happen too.
        code = as_int(answer.get("code")) if isinstance(answer, dict) else None
        if status >= 400 and not (isinstance(answer, dict) and "msg" in answer):
            # Not Kie's {"code", "msg"} envelope (an HTML page, another API's JSON): a proxy or a wrong host answered.
            raise error_for(
                None, "", http_status=status, action=action, note=f"HTTP {status} from {path} is not Kie's JSON answer"
            )
        if status >= 400 or (code is not None and code != 200):
            message = str(answer.get("msg") or "") if isinstance(answer, dict) else ""
            raise error_for(code if code != 200 else None, message, http_status=status, action=action)
        if not isinstance(answer, dict):
            raise unreadable(f"non-JSON answer from {path}", http_status=status)
        return answer.get("data")


def check_signature(key: str, task_id: str, headers: Mapping[str, str], *, now: float | None = None) -> None:
    """Raise CallbackRefused unless X-Webhook-Signature is base64(HMAC-SHA256(taskId + "." + timestamp, key))."""
    timestamp = headers.get("X-Webhook-Timestamp") or headers.get("x-webhook-timestamp") or ""
    signature = headers.get("X-Webhook-Signature") or headers.get("x-webhook-signature") or ""
    if not timestamp or not signature:
        raise CallbackRefused("the callback is not signed")
    # Headers arrive decoded with surrogateescape, so they may hold anything: check their form before any arithmetic.
    # A signed timestamp that is no time (nan, inf, text) cannot prove the callback is fresh: refuse it like an old one.
    if not _TIMESTAMP.fullmatch(timestamp):
        raise CallbackRefused("the callback's signature has a timestamp that is not a number (Unix seconds)")
    given = _digest_of(signature.strip())
    if given is None:
        raise CallbackRefused("the callback's signature is not the base64 of an HMAC-SHA256")
    if not valid_task_id(task_id):  # the caller checked it; a surrogate in it would make encode() raise below
        raise CallbackRefused("the callback names no valid task id")
    # surrogateescape gives back the bytes of a key read from the environment, whatever they are.
    secret = key.encode("utf-8", "surrogateescape")
    expected = hmac.new(secret, f"{task_id}.{timestamp}".encode("ascii"), hashlib.sha256).digest()
    if not hmac.compare_digest(expected, given):
        raise CallbackRefused("the callback's signature does not match")
    moment = int(timestamp)
    seconds = moment / 1000 if moment > 10**11 else moment  # milliseconds or seconds
    if abs((time.time() if now is None else now) - seconds) > SIGNATURE_WINDOW_SECONDS:
        raise CallbackRefused("the callback's signature is too old")


# Kie documents an integer of Unix seconds; milliseconds (13 digits) are accepted too. ASCII digits only:
# int() and float() would also take "١٢٣", "1_000", " 5" or "nan".
_TIMESTAMP = re.compile(r"[0-9]{1,13}", re.ASCII)
# base64 of the 32 bytes of an HMAC-SHA256: 43 characters and one "=" of padding (accepted without it too).
_BASE64_DIGEST = re.compile(r"[A-Za-z0-9+/]{43}=?", re.ASCII)


def _digest_of(signature: str) -> bytes | None:
    """The 32 bytes a base64 signature header stands for; None when it is anything else."""
    if not _BASE64_DIGEST.fullmatch(signature):
        return None
    try:
        digest = base64.b64decode(signature.rstrip("=") + "=", validate=True)
    except binascii.Error:
        return None
    return digest if len(digest) == hashlib.sha256().digest_size else None


def parse_record(task_id: str, data: Mapping[str, Any]) -> TaskStatus | None:
    """Turn record-info's `data` into a TaskStatus; None for an empty record (an id the API does not know)."""
    if not data or (_blank(data.get("taskId")) and _blank(data.get("successFlag"))):
        return None
    flag = as_int(data.get("successFlag"))
    if flag == 1:
        response = data.get("response")
        url = response.get("resultImageUrl") if isinstance(response, dict) else None
        if is_image_url(url):
            return TaskStatus(task_id, TaskState.SUCCEEDED, images=(Image(url),))
        return TaskStatus(task_id, TaskState.FAILED, error=no_image("successFlag 1 without resultImageUrl"))
    if flag in (2, 3):
        code = as_int(data.get("errorCode")) or (500 if flag == 2 else 501)
        message = "" if _blank(data.get("errorMessage")) else str(data.get("errorMessage"))
        return TaskStatus(task_id, TaskState.FAILED, error=error_for(code, message, http_status=None, action=None))
    return TaskStatus(task_id, TaskState.RUNNING)


#: Kie's error codes (else the HTTP status) in a member's words: `{said}` is the provider's own, when it gave any.
_ERRORS: dict[int, tuple[ErrorKind, str]] = {
    401: (ErrorKind.AUTH, N_("The bot's Kie.ai API key is missing or not valid. Please tell the bot's operator.")),
    402: (ErrorKind.OUT_OF_CREDIT, N_("The bot's Kie.ai account is out of credits. Please tell the bot's operator.")),
    404: (
        ErrorKind.MISCONFIGURED,
        N_("The bot is set up with a wrong Kie.ai address (KIE_API_BASE_URL). Please tell the bot's operator."),
    ),
    422: (ErrorKind.INVALID_REQUEST, N_("The image provider refused the request.{said} Try rewording the prompt.")),
    429: (ErrorKind.RATE_LIMITED, PROVIDER_BUSY.template),
    455: (ErrorKind.UNAVAILABLE, N_("The image provider is down for maintenance. Please try again later.")),
    **dict.fromkeys(
        (502, 503, 504),  # a gateway in front of Kie: the service itself is unreachable for now
        (
            ErrorKind.UNAVAILABLE,
            N_("The image provider cannot be reached right now. Please try again in a few minutes."),
        ),
    ),
    500: (ErrorKind.PROVIDER_FAILED, N_("The image provider failed.{said} Please try again.")),
    501: (ErrorKind.PROVIDER_FAILED, N_("The image could not be generated.{said} Please try again.")),
    505: (
        ErrorKind.MISCONFIGURED,
        N_("This feature is disabled for the bot's Kie.ai account. Please tell the bot's operator."),
    ),
    400: (ErrorKind.REFUSED, N_("The image provider refused this prompt or image (content policy).{said}")),
}
_FAILED = (ErrorKind.PROVIDER_FAILED, N_("The image job failed.{said} Please try again."))


def error_for(
    code: int | None, message: str, *, http_status: int | None, action: str | None, note: str = ""
) -> ProviderError:
    """Map Kie's own error code, else the HTTP status, to a ProviderError with a member-facing message."""
    detail = scrub(message)[:300]
    said = provider_said(detail)
    kind, template = _ERRORS.get(code or http_status or 0, _FAILED)
    text = Message(template, said=said) if "{said}" in template else Message(template)
    lowered = detail.lower()
    failed = kind in (ErrorKind.PROVIDER_FAILED, ErrorKind.INVALID_REQUEST)
    if failed and action != "generate" and ("download" in lowered or "fetch" in lowered):
        kind, text = ErrorKind.IMAGE_UNREACHABLE, IMAGE_UNREACHABLE
    return ProviderError(
        kind, text, code=str(code) if code else None, http_status=http_status, detail=detail or note,
        safe_to_resend=kind is ErrorKind.RATE_LIMITED,
    )  # fmt: skip


def _blank(value: Any) -> bool:
    # The API writes missing values as null, "" or the string "null".
    return value is None or (isinstance(value, str) and value.strip().lower() in ("", "null", "none"))
