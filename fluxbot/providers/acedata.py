"""Client for the Ace Data Cloud Flux API (`POST /flux/images`, `POST /flux/tasks`)."""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import aiohttp

from fluxbot.config import Secret
from fluxbot.errors import Message
from fluxbot.i18n import N_
from fluxbot.logs import scrub
from fluxbot.providers.base import (
    IMAGE_UNREACHABLE,
    KEY_CHECK_TASK,
    PROVIDER_BUSY,
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
)

log = logging.getLogger(__name__)


@dataclass
class AceDataFlux:
    """The Ace Data Cloud Flux API, over an injected aiohttp session."""

    session: aiohttp.ClientSession
    token: Secret = field(repr=False)
    base_url: str = "https://api.acedata.cloud"
    request_timeout: float = 30.0
    name: str = "acedata"
    max_batch: int = 50

    async def submit(self, request: JobRequest) -> Submitted:
        """Start a task asynchronously and return it (the API reports no cost)."""
        body: dict[str, Any] = {
            "action": request.action,
            "prompt": request.prompt,
            "model": request.model,
            "size": request.size,
            "async": True,
        }
        if request.action == "generate":
            body["count"] = request.count
        if request.image_url:
            body["image_url"] = request.image_url
        if request.callback_url:
            body["callback_url"] = request.callback_url
        answer = await self._post("/flux/images", body, action=request.action)
        task_id = answer.get("task_id")
        if not isinstance(task_id, str) or not task_id:
            raise no_task_id(f"submit answer without task_id: keys {sorted(answer)}")
        return Submitted(TaskRef(task_id))

    async def lookup(self, tasks: Sequence[TaskRef]) -> Mapping[str, TaskStatus]:
        """Look up to `max_batch` tasks in one `retrieve_batch` call."""
        if not tasks:
            return {}
        if len(tasks) > self.max_batch:
            raise ValueError(f"at most {self.max_batch} task ids per lookup, got {len(tasks)}")
        task_ids = [task.task_id for task in tasks]
        answer = await self._post("/flux/tasks", {"action": "retrieve_batch", "ids": task_ids})
        items = answer.get("items")
        if not isinstance(items, list):
            raise unreadable(f"retrieve_batch answer without items: keys {sorted(answer)}")
        wanted = set(task_ids)
        statuses: dict[str, TaskStatus] = {}
        for item in items:
            status = parse_task_record(item) if isinstance(item, dict) else None
            if status is not None and status.task_id in wanted:
                statuses[status.task_id] = status
        return statuses

    def callback_task_id(self, raw: bytes, body: Any, headers: Mapping[str, str]) -> str | None:
        """The `task_id` of a callback body, None unless `valid_task_id` (the API does not sign it: only a hint)."""
        return task_id_or_none(body.get("task_id")) if isinstance(body, dict) else None

    async def check_key(self) -> None:
        """Look up a task that does not exist: free, and refused with the key's own error when the key is wrong."""
        await self.lookup([TaskRef(KEY_CHECK_TASK)])

    async def _post(self, path: str, body: dict[str, Any], *, action: str | None = None) -> dict[str, Any]:
        headers = {
            "authorization": f"Bearer {self.token.reveal()}",
            "content-type": "application/json",
            "accept": "application/json",
        }
        status, data = await fetch_json(
            self.session, "POST", self.base_url + path, seconds=self.request_timeout, headers=headers, json=body
        )
        if status >= 400 or (isinstance(data, dict) and data.get("success") is False and "error" in data):
            raise error_from_answer(status, data, action=action)
        if not isinstance(data, dict):
            raise unreadable(f"non-JSON answer from {path}", http_status=status)
        return data


def parse_task_record(record: Mapping[str, Any]) -> TaskStatus | None:
    """Turn one `/flux/tasks` record into a TaskStatus; None for the empty record of an unknown id."""
    task_id = record.get("id") or record.get("task_id")
    if not isinstance(task_id, str) or not task_id:
        return None
    response = record.get("response")
    if response is None:
        return TaskStatus(task_id, TaskState.RUNNING)
    if not isinstance(response, dict):
        return TaskStatus(task_id, TaskState.FAILED, error=unreadable(f"response of type {type(response)}"))
    return parse_result(task_id, response)


def parse_result(task_id: str, result: Mapping[str, Any]) -> TaskStatus:
    """Turn a finished job's result body (task record `response` or callback) into a TaskStatus."""
    if result.get("success") is False or "error" in result:
        return TaskStatus(task_id, TaskState.FAILED, error=error_from_answer(None, dict(result), action=None))
    items = result.get("data")
    images: list[Image] = []
    inference: float | None = None
    for item in items if isinstance(items, list) else []:
        if not isinstance(item, dict) or not is_image_url(item.get("image_url")):
            continue
        images.append(Image(url=item["image_url"], seed=as_int(item.get("seed"))))
        timings = item.get("timings")
        if isinstance(timings, dict) and isinstance(timings.get("inference"), int | float):
            inference = float(timings["inference"])
    if not images:
        return TaskStatus(task_id, TaskState.FAILED, error=no_image("success without images"))
    return TaskStatus(task_id, TaskState.SUCCEEDED, images=tuple(images), inference_seconds=inference)


def error_from_answer(http_status: int | None, data: Any, *, action: str | None) -> ProviderError:
    """Map the provider's error envelope (and HTTP status) to a ProviderError with a member-facing message."""
    error = data.get("error") if isinstance(data, dict) else None
    code = str(error.get("code") or "") if isinstance(error, dict) else ""
    detail = str(error.get("message") or "") if isinstance(error, dict) else ""
    if not detail and isinstance(data, dict) and isinstance(data.get("message"), str):
        detail = data["message"]
    # The provider may echo the request (callback URL and its secret included) in its error text.
    detail = scrub(detail)
    kind, message = _classify(http_status, code, detail, action)
    return ProviderError(
        kind,
        message,
        code=code or None,
        http_status=http_status,
        detail=detail[:300],
        safe_to_resend=kind is ErrorKind.RATE_LIMITED,
    )


#: The error codes only the bot's operator can fix, and what the member is told.
_OPERATOR_CODES: dict[str, tuple[ErrorKind, str]] = {
    "token_expired": (
        ErrorKind.AUTH,
        N_("The bot's image-provider API key has expired. Please tell the bot's operator."),
    ),
    "no_token": (ErrorKind.AUTH, N_("The bot's image-provider API key is missing. Please tell the bot's operator.")),
    "invalid_token": (
        ErrorKind.AUTH,
        N_("The bot's image-provider API key is not valid for the Flux API. Please tell the bot's operator."),
    ),
    "api_not_implemented": (
        ErrorKind.AUTH,
        N_("The bot's API key is not enabled for the Flux API. Please tell the bot's operator."),
    ),
    "disabled": (
        ErrorKind.AUTH,
        N_("The bot's image-provider application is disabled. Please tell the bot's operator."),
    ),
    "used_up": (
        ErrorKind.OUT_OF_CREDIT,
        N_("The bot's image-provider account is out of credit. Please tell the bot's operator."),
    ),
}
_OPERATOR_CODES["token_mismatched"] = _OPERATOR_CODES["invalid_token"]


def _classify(status: int | None, code: str, detail: str, action: str | None) -> tuple[ErrorKind, Message]:
    said = provider_said(detail)
    if code in _OPERATOR_CODES:
        kind, words = _OPERATOR_CODES[code]
        return kind, Message(words)
    if status == 401:
        return ErrorKind.AUTH, Message(_OPERATOR_CODES["invalid_token"][1])
    if status == 403:
        return ErrorKind.REFUSED, Message(
            # Translators: {said} is " The provider said: “…”." (its own words), or nothing.
            N_(
                "The image provider refused this request (its content rules).{said} "
                "Try rewording the prompt or using another image."
            ),
            said=said,
        )
    if code == "no_api" or status == 404:
        return ErrorKind.MISCONFIGURED, Message(
            N_(
                "The bot is set up with a wrong image-provider address (FLUX_API_BASE_URL). "
                "Please tell the bot's operator."
            )
        )
    if code == "too_many_requests" or status == 429:
        return ErrorKind.RATE_LIMITED, PROVIDER_BUSY
    if code == "bad_request" or status == 400:
        return ErrorKind.INVALID_REQUEST, Message(
            N_("The image provider refused the request as invalid.{said}"), said=said
        )
    if "fetch failed" in detail.lower() or (action == "edit" and "fetch" in detail.lower()):
        return ErrorKind.IMAGE_UNREACHABLE, IMAGE_UNREACHABLE
    if code == "service_unavailable" or status == 503:
        return ErrorKind.UNAVAILABLE, Message(
            N_("The image provider is down for the moment. Please try again in a few minutes.")
        )
    if code == "timeout" or status == 504:
        return ErrorKind.UNAVAILABLE, Message(
            N_("The image provider took too long. Please try again in a few minutes.")
        )
    if code == "api_error" or (status is not None and status >= 500):
        return ErrorKind.PROVIDER_FAILED, Message(
            N_("The image provider failed to make the image.{said} Please try again."), said=said
        )
    return ErrorKind.PROVIDER_FAILED, Message(N_("The image job failed.{said} Please try again."), said=said)
