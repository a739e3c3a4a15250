"""What every provider client offers, the typed results it returns and the one exception it raises."""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any, Literal, Protocol, TypeGuard

import aiohttp

from fluxbot.errors import FluxbotError, Message
from fluxbot.i18n import N_

Action = Literal["generate", "edit"]
#: The value of a provider-specific option.
OptionValue = str | bool | int


@dataclass(frozen=True)
class JobRequest:
    """What to ask a provider for: one generate or edit job."""

    action: Action
    prompt: str
    model: str
    size: str
    count: int = 1
    image_url: str | None = None
    callback_url: str | None = field(default=None, repr=False)
    #: Options only some providers have, by name (only those asked for); see `catalog.ProviderInfo.options`.
    options: Mapping[str, OptionValue] = field(default_factory=dict)
    #: The server's style preset the prompt was made with (its text is in `prompt` already), or None.
    style: str | None = None


@dataclass(frozen=True)
class TaskRef:
    """One task at a provider: its id, and the URL its status is read from when the provider gave one (as given)."""

    task_id: str
    poll_url: str | None = None


@dataclass(frozen=True)
class Submitted:
    """What a submit answered: the task, and what the provider says it costs when it says (its own unit)."""

    task: TaskRef
    cost: float | None = None


@dataclass(frozen=True)
class Image:
    """One finished image."""

    url: str
    seed: int | None = None
    #: The provider flagged it (fal's has_nsfw_concepts): it is shown as a spoiler, whatever the server's setting.
    flagged: bool = False


class TaskState(StrEnum):
    """Where a provider task stands."""

    RUNNING = "running"
    SUCCEEDED = "succeeded"
    FAILED = "failed"


@dataclass(frozen=True)
class TaskStatus:
    """A provider's answer about one task."""

    task_id: str
    state: TaskState
    images: tuple[Image, ...] = ()
    error: ProviderError | None = None
    inference_seconds: float | None = None
    #: While it waits in the provider's own queue (fal IN_QUEUE): how many are ahead of it, as the provider counts
    #: (fal's queue_position, 0 = next to run).
    queue_position: int | None = None
    #: What the provider says the task cost, when it says (its own unit); replaces the submit's figure.
    cost: float | None = None


#: A task id no provider has: looking it up costs nothing and proves the key (an unknown id is no error).
KEY_CHECK_TASK = "fluxbot-key-check"

#: The member-facing words every provider uses for the same situations.
PROVIDER_BUSY = Message(N_("The image provider is busy right now. Please try again in a minute."))
IMAGE_UNREACHABLE = Message(
    N_("The image provider could not download your image. Upload it again (Discord links expire) and retry.")
)


class ErrorKind(StrEnum):
    """What went wrong, in terms of who can fix it."""

    INVALID_REQUEST = "invalid_request"  # the member can change the input
    REFUSED = "refused"  # content moderation
    AUTH = "auth"  # the operator's key is wrong, expired or not enabled
    OUT_OF_CREDIT = "out_of_credit"  # the operator must top up
    MISCONFIGURED = "misconfigured"  # wrong base URL and the like
    RATE_LIMITED = "rate_limited"
    IMAGE_UNREACHABLE = "image_unreachable"  # the provider could not download the input image
    PROVIDER_FAILED = "provider_failed"
    UNAVAILABLE = "unavailable"  # down, overloaded or too slow
    BAD_RESPONSE = "bad_response"  # an answer we could not read

    @property
    def operator_problem(self) -> bool:
        """True when only the bot's operator can fix it."""
        return self in (ErrorKind.AUTH, ErrorKind.OUT_OF_CREDIT, ErrorKind.MISCONFIGURED)


class ProviderFault(FluxbotError):
    """Anything the provider boundary raises: a failed call, or a callback that must not be believed."""


class ProviderError(ProviderFault):
    """A provider call failed; `user_message` says so in words a member understands: an `errors.Message` (its
    template and values), so it is said in the member's or the server's language (`errors.said`); as a `str`, and
    in `str(error)`, it is English (logs)."""

    def __init__(
        self,
        kind: ErrorKind,
        user_message: str,
        *,
        code: str | None = None,
        http_status: int | None = None,
        detail: str = "",
        safe_to_resend: bool = False,
    ) -> None:
        super().__init__(f"{kind.value} (HTTP {http_status}, code {code}): {detail or user_message}")
        self.kind = kind
        #: A plain text is taken as a template without values (said in a locale when a catalog has it).
        self.user_message = user_message if isinstance(user_message, Message) else Message(user_message)
        self.code = code
        self.http_status = http_status
        self.detail = detail
        #: True when the request surely did not start a job (429, connection refused): resending cannot bill twice.
        self.safe_to_resend = safe_to_resend

    @property
    def retryable(self) -> bool:
        """True when the same call may work later without anyone changing anything."""
        return self.kind in (ErrorKind.RATE_LIMITED, ErrorKind.UNAVAILABLE, ErrorKind.PROVIDER_FAILED)


def unreadable(detail: str, *, http_status: int | None = None) -> ProviderError:
    """A provider answer the bot could not read."""
    return ProviderError(
        ErrorKind.BAD_RESPONSE,
        Message(N_("The image provider sent an answer the bot could not read.")),
        http_status=http_status,
        detail=detail,
    )


def no_task_id(detail: str) -> ProviderError:
    """A submit the provider accepted without saying which task it started."""
    return ProviderError(
        ErrorKind.BAD_RESPONSE,
        Message(
            N_("The image provider accepted the job but sent no task id, so it cannot be followed. Please try again.")
        ),
        detail=detail,
    )


def no_image(detail: str) -> ProviderError:
    """A task the provider reports done, with no usable image."""
    return ProviderError(
        ErrorKind.PROVIDER_FAILED,
        Message(N_("The image provider finished the job but returned no image. Please try again.")),
        detail=detail,
    )


def provider_said(detail: str) -> Message | str:
    """The provider's own words, quoted for a member-facing message (empty when it said nothing): the `{said}`
    value of the messages that quote them. The words are a value, as the provider sent them, never translated."""
    if not detail:
        return ""
    # Translators: added right after a sentence (hence the leading space) when the provider gave a reason in its
    # own words (often English), quoted as it sent them.
    return Message(N_(" The provider said: “{detail}”."), detail=detail[:200])


#: The longest task id a callback may name (both APIs use UUID-like ids of 32 to 36 characters).
MAX_TASK_ID_LENGTH = 200
# ASCII only (no re.UNICODE digits or letters), no spaces or line breaks: safe to log and to send back in a URL.
_TASK_ID = re.compile(rf"[A-Za-z0-9_.:-]{{1,{MAX_TASK_ID_LENGTH}}}", re.ASCII)
#: What `valid_task_id` accepts, in words for error messages.
TASK_ID_RULE = f"1 to {MAX_TASK_ID_LENGTH} letters, digits, '-', '_', '.' or ':'"


def valid_task_id(value: Any) -> TypeGuard[str]:
    """True when `value` may be a task id: checked before a callback's id is logged, signed over or looked up."""
    return isinstance(value, str) and _TASK_ID.fullmatch(value) is not None


def task_id_or_none(value: Any) -> str | None:
    """`value` when it is a valid task id (see `valid_task_id`), else None."""
    return value if valid_task_id(value) else None


def is_image_url(value: Any) -> TypeGuard[str]:
    """True for an http(s) URL Discord accepts in an embed (at most 2048 characters)."""
    return isinstance(value, str) and value.startswith(("https://", "http://")) and len(value) <= 2048


def as_int(value: Any) -> int | None:
    """An int from an int or a decimal string (as APIs write numbers either way); None for anything else."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    # isdecimal (not isdigit, true for "²") and the length cap keep int() from raising on odd strings.
    if isinstance(value, str) and value.strip().lstrip("-").isdecimal() and len(value) < 24:
        return int(value.strip())
    return None


async def fetch_json(
    session: aiohttp.ClientSession,
    method: str,
    url: str,
    *,
    seconds: float,
    headers: Mapping[str, str],
    json: Any = None,
    params: Mapping[str, str] | None = None,
) -> tuple[int, Any]:
    """(HTTP status, parsed JSON body or None) of one request within `seconds`; network failures: ProviderError."""
    try:
        async with session.request(
            method, url, json=json, params=params, headers=headers, timeout=aiohttp.ClientTimeout(total=seconds)
        ) as resp:
            try:
                return resp.status, await resp.json(content_type=None)
            except ValueError:
                return resp.status, None
    except aiohttp.ClientConnectorError as exc:
        # Nothing reached the provider: resending is safe.
        raise ProviderError(
            ErrorKind.UNAVAILABLE,
            Message(N_("The bot could not reach the image provider. Please try again in a few minutes.")),
            detail=f"cannot connect: {exc.os_error}",
            safe_to_resend=True,
        ) from None
    except TimeoutError:
        raise ProviderError(
            ErrorKind.UNAVAILABLE,
            Message(N_("The image provider took too long to answer. Please try again in a few minutes.")),
            detail=f"no answer within {seconds:g} s",
        ) from None
    except aiohttp.ClientError as exc:
        raise ProviderError(
            ErrorKind.UNAVAILABLE,
            Message(N_("The connection to the image provider broke. Please try again in a few minutes.")),
            detail=type(exc).__name__,
        ) from None


class CallbackRefused(ProviderFault):
    """A callback that must not be believed (e.g. its signature is wrong); the message says why."""


class Provider(Protocol):
    """A remote image API: submit tasks, look them up, read its callbacks, check its key.

    `JobRequest.count` is the images one task makes: the job core splits a job of more images than the model's
    `images_per_task` into several tasks, so a client never receives a count above it.
    """

    name: str
    #: The most TaskRefs one `lookup` call may carry.
    max_batch: int

    async def submit(self, request: JobRequest) -> Submitted:
        """Start one task and return it (with its cost when the provider says); raises ProviderError."""
        ...

    async def lookup(self, tasks: Sequence[TaskRef]) -> Mapping[str, TaskStatus]:
        """Statuses of the given tasks (at most `max_batch`), keyed by task id; tasks the provider does not know are
        left out."""
        ...

    def callback_task_id(self, raw: bytes, body: Any, headers: Mapping[str, str]) -> str | None:
        """The provider's task id a callback is about (`raw` is the request body, `body` its JSON); None when it is
        not this provider's callback. Raises CallbackRefused when it claims to be but its signature fails."""
        ...

    async def check_key(self) -> None:
        """One cheap authenticated call at start-up; raises ProviderError (AUTH, MISCONFIGURED, OUT_OF_CREDIT...)."""
        ...
