"""fal.ai's errors in plain words: HTTP statuses, and the `detail` list its models answer (`loc`, `msg`, `type`)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Literal

from fluxbot.errors import Message, OptionName
from fluxbot.i18n import N_
from fluxbot.logs import scrub
from fluxbot.providers.base import (
    IMAGE_UNREACHABLE,
    PROVIDER_BUSY,
    ErrorKind,
    ProviderError,
    provider_said,
)

#: Where an answer came from: a submit, a status read, a finished request's result, or the start-up key check.
Stage = Literal["submit", "status", "result", "check"]

#: fal's body fields in the words of the bot's commands.
FIELD_WORDS = {
    "image_size": "size",
    "aspect_ratio": "size",
    "num_images": "count",
    "num_inference_steps": "steps",
    "guidance_scale": "guidance",
    "image_url": "image",
    "image_urls": "image",
}
#: Error types about the input image that say it could not be read.
_UNREACHABLE_TYPES = frozenset({"file_download_error", "image_load_error"})
#: Error types about the input image itself.
_IMAGE_TYPES = frozenset({"image_too_large", "image_too_small", "unsupported_image_format", "file_too_large"})
#: Words of a 403 that mean the account, not the key, is the problem. fal documents that a low balance locks the
#: account, but not the status or text of that answer (403 per third parties): UNCONFIRMED.
_BILLING_WORDS = ("locked", "balance", "credit", "billing", "exhausted", "payment")


def first_detail(answer: Any) -> tuple[str, str, str]:
    """(field, message, type) of fal's first error detail; a list of {loc, msg, type}, a string, or {error}."""
    detail = answer.get("detail") if isinstance(answer, Mapping) else None
    if isinstance(detail, list) and detail and isinstance(detail[0], Mapping):
        item = detail[0]
        loc = item.get("loc")
        names = [part for part in loc if isinstance(part, str) and part != "body"] if isinstance(loc, list) else []
        return (names[0] if names else ""), str(item.get("msg") or ""), str(item.get("type") or "")
    if isinstance(detail, str):
        return "", detail, ""
    if isinstance(answer, Mapping) and isinstance(answer.get("error"), str):
        return "", answer["error"], str(answer.get("error_type") or "")
    return "", "", ""


def stated_error(status_answer: Any) -> ProviderError | None:
    """The error a COMPLETED status carries (`error`, `error_type`), when it carries one."""
    if not isinstance(status_answer, Mapping) or not isinstance(status_answer.get("error"), str):
        return None
    return error_for(None, status_answer, action=None, stage="result")


def expired() -> ProviderError:
    """A completed request whose result fal no longer keeps."""
    return ProviderError(
        ErrorKind.PROVIDER_FAILED,
        Message(
            N_("fal.ai finished the image, but its result expired before the bot could fetch it. Please try again.")
        ),
        detail="response_url answered 404 after COMPLETED",
    )


def error_for(http_status: int | None, answer: Any, *, action: str | None, stage: Stage) -> ProviderError:
    """Map one of fal's answers (its HTTP status and body) to a ProviderError with a member-facing message."""
    field, message, kind_name = first_detail(answer)
    # fal may echo the input back; only its own message is kept, scrubbed of any secret.
    message = scrub(message)[:300]
    kind, text = _classify(http_status, field, message, kind_name, action, stage)
    return ProviderError(
        kind,
        text,
        code=kind_name or None,
        http_status=http_status,
        detail=(f"{field}: " if field else "") + message,
        safe_to_resend=kind is ErrorKind.RATE_LIMITED,
    )


def _classify(
    status: int | None, field: str, message: str, kind_name: str, action: str | None, stage: Stage
) -> tuple[ErrorKind, Message]:
    said = provider_said(message)
    if kind_name == "content_policy_violation":
        return ErrorKind.REFUSED, Message(
            N_(
                "fal.ai's content filter refused this prompt or image.{said} Try rewording the prompt or another image."
            ),
            said=said,
        )
    if kind_name in _UNREACHABLE_TYPES or (action == "edit" and "download" in message.lower()):
        return ErrorKind.IMAGE_UNREACHABLE, IMAGE_UNREACHABLE
    if kind_name in _IMAGE_TYPES:
        return ErrorKind.INVALID_REQUEST, Message(
            N_("fal.ai cannot use this image.{said} Attach another image and retry."), said=said
        )
    if status == 401:
        return ErrorKind.AUTH, Message(
            N_("The bot's fal.ai key (FAL_KEY) is missing or not valid. Please tell the bot's operator.")
        )
    if status == 402 or (status == 403 and any(word in message.lower() for word in _BILLING_WORDS)):
        return ErrorKind.OUT_OF_CREDIT, Message(
            N_("The bot's fal.ai account is locked or out of balance. Please tell the bot's operator.")
        )
    if status == 403:
        return ErrorKind.AUTH, Message(
            N_("fal.ai does not let the bot's key (FAL_KEY) use this model. Please tell the bot's operator.")
        )
    if status == 404:
        return ErrorKind.MISCONFIGURED, Message(
            N_(
                "fal.ai's queue was not found at the bot's address for it (FAL_QUEUE_URL). "
                "Please tell the bot's operator."
            )
        )
    if status == 429:
        return ErrorKind.RATE_LIMITED, PROVIDER_BUSY
    if status == 413:
        return ErrorKind.INVALID_REQUEST, Message(
            N_("The request is too large for fal.ai. Shorten the prompt or use a smaller image.")
        )
    if status in (400, 422) or (status is None and field):
        return ErrorKind.INVALID_REQUEST, _invalid(field, message, said)
    if status is not None and (status >= 500 or status in (408, 409)) and stage != "result":
        return ErrorKind.UNAVAILABLE, Message(
            N_("fal.ai is not answering properly right now. Please try again in a few minutes.")
        )
    return ErrorKind.PROVIDER_FAILED, Message(N_("fal.ai failed to make the image.{said} Please try again."), said=said)


def _invalid(field: str, message: str, said: Message | str) -> Message:
    """A request fal refused as invalid, naming the field (in the words of the bot's commands) when it named one."""
    if not field:
        return Message(N_("fal.ai refused the request as invalid.{said} Change it and try again."), said=said)
    word = OptionName(FIELD_WORDS[field]) if field in FIELD_WORDS else field
    if not message:
        return Message(N_("fal.ai refused the `{field}` of this request. Change it and retry."), field=word)
    return Message(
        # Translators: {field} is a command option or fal's field (`size`, `count`); {reason} is fal's own words.
        N_("fal.ai refused the `{field}` of this request: {reason}. Change it and retry."),
        field=word,
        reason=message.rstrip("."),
    )
