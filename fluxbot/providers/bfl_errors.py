"""Black Forest Labs' errors in plain words: the HTTP statuses of its help centre's table, the failed task
statuses, and refused webhooks. Error bodies other than 422's are not documented: any `detail` is read leniently."""

from __future__ import annotations

from typing import Any

from fluxbot.errors import Message, OptionName
from fluxbot.i18n import N_
from fluxbot.logs import scrub
from fluxbot.providers.base import (
    IMAGE_UNREACHABLE,
    CallbackRefused,
    ErrorKind,
    ProviderError,
    no_image,
    provider_said,
)

#: A 422's field in the words of the command (width and height are the size, input_image the attachment).
_MEMBER_WORDS = {"width": "size", "height": "size", "aspect_ratio": "size", "input_image": "image"}
#: Words of an error about the input image that say the API could not fetch it.
_UNREACHABLE = ("download", "fetch", "retriev", "reach", "url", "access")
_ADDRESS = "BFL_REGION / BFL_API_BASE_URL"


def error_for(
    status: int,
    answer: Any,
    *,
    model: str | None,
    action: str | None,
    checking_key: bool = False,
    hide: tuple[str, ...] = (),
) -> ProviderError:
    """Map an HTTP error of the API to a ProviderError with a member-facing message; `hide` (the client's own
    secrets) never appears in it, even before the log scrubber knows them."""
    detail = _hidden(detail_text(answer.get("detail") if isinstance(answer, dict) else None), hide)[:300]
    said = provider_said(detail)
    unreachable = action == "edit" and any(word in detail.lower() for word in _UNREACHABLE)
    if status == 422:
        return _validation_error(answer, detail, action, hide)
    if status == 400 and unreachable:
        return ProviderError(ErrorKind.IMAGE_UNREACHABLE, IMAGE_UNREACHABLE, http_status=status, detail=detail)
    kind, text = _status_error(status, model, said, checking_key=checking_key)
    # Only a 429 surely started nothing: a submit's 5xx may have started a task that is billed.
    return ProviderError(
        kind, text, http_status=status, detail=detail or f"HTTP {status}", safe_to_resend=kind is ErrorKind.RATE_LIMITED
    )


def _status_error(
    status: int, model: str | None, said: Message | str, *, checking_key: bool
) -> tuple[ErrorKind, Message]:
    """An HTTP error status (not 422) in a member's words; `model` is the one the request was for, if any."""
    if status == 400:
        return ErrorKind.INVALID_REQUEST, Message(
            N_("The image provider could not take this request.{said} Check the prompt and the options and try again."),
            said=said,
        )
    if status == 401:  # not in BFL's table (only in its skill notes): a refused key all the same
        return ErrorKind.AUTH, Message(
            N_("The bot's Black Forest Labs API key (BFL_API_KEY) was not accepted. Please tell the bot's operator.")
        )
    if status == 402:
        return ErrorKind.OUT_OF_CREDIT, Message(
            N_("The bot's Black Forest Labs account is out of credits. Please tell the bot's operator.")
        )
    if status == 403 and checking_key:
        return ErrorKind.AUTH, Message(
            N_("The bot's Black Forest Labs API key was refused (BFL_API_KEY). Please tell the bot's operator.")
        )
    if status == 403 and model:
        return ErrorKind.AUTH, Message(
            N_("The bot's Black Forest Labs API key may not use `{model}`. Please tell the bot's operator."),
            model=model,
        )
    if status == 403:
        return ErrorKind.AUTH, Message(
            N_(
                "The bot's Black Forest Labs API key may not use Black Forest Labs' API. "
                "Please tell the bot's operator."
            )
        )
    if status == 404 and model:
        return ErrorKind.MISCONFIGURED, Message(
            N_(
                "The bot is set up with a wrong Black Forest Labs address ({settings}), or the API no longer offers "
                "`{model}`. Please tell the bot's operator."
            ),
            settings=_ADDRESS,
            model=model,
        )
    if status == 404:
        return ErrorKind.MISCONFIGURED, Message(
            N_(
                "The bot is set up with a wrong Black Forest Labs address ({settings}), or the API no longer offers "
                "Black Forest Labs' API. Please tell the bot's operator."
            ),
            settings=_ADDRESS,
        )
    if status == 429:  # the account runs as many tasks as it may (24; 6 Kontext [max]): nothing started
        return ErrorKind.RATE_LIMITED, Message(
            N_(
                "The image provider is running as many images as the bot's account may run at once. "
                "Please try again in a minute."
            )
        )
    if status >= 500:
        return ErrorKind.UNAVAILABLE, Message(
            N_("The image provider is having trouble right now. Please try again in a few minutes.")
        )
    return ErrorKind.PROVIDER_FAILED, Message(N_("The image job failed.{said} Please try again."), said=said)


def _validation_error(answer: Any, detail: str, action: str | None, hide: tuple[str, ...]) -> ProviderError:
    """A 422: the body failed the schema; the message names the field of `detail[].loc`."""
    field = invalid_field(answer)
    if field is None:
        text = Message(
            N_("The image provider refused the request as invalid.{said} Change it and try again."),
            said=provider_said(detail),
        )
        return ProviderError(ErrorKind.INVALID_REQUEST, text, http_status=422, detail=detail)
    first = answer["detail"][0]
    message = _hidden(detail_text(first.get("msg")), hide)[:200]
    if field == "input_image" and action == "edit" and any(word in message.lower() for word in _UNREACHABLE):
        return ProviderError(ErrorKind.IMAGE_UNREACHABLE, IMAGE_UNREACHABLE, http_status=422, detail=detail)
    word = OptionName(_MEMBER_WORDS[field]) if field in _MEMBER_WORDS else field
    text = Message(
        # Translators: {field} is the name of a command option or of the API's field (`size`, `image`, `seed`).
        N_("The image provider refused `{field}`.{said} Change it and try again."),
        field=word,
        said=provider_said(f"{field}: {message}"),
    )
    return ProviderError(ErrorKind.INVALID_REQUEST, text, code=field, http_status=422, detail=detail)


def _hidden(text: str, secrets: tuple[str, ...]) -> str:
    for secret in secrets:
        text = text.replace(secret, "***")
    return scrub(text)


def invalid_field(answer: Any) -> str | None:
    """The body field a 422 answer's first `detail[].loc` names (e.g. "width"), when it names one."""
    detail = answer.get("detail") if isinstance(answer, dict) else None
    first = detail[0] if isinstance(detail, list) and detail else None
    loc = first.get("loc") if isinstance(first, dict) else None
    parts = loc if isinstance(loc, list) else []
    names = [part for part in parts if isinstance(part, str) and part not in ("body", "query")]
    return names[0][:60] if names else None


def invalid(template: str, /, **values: object) -> ProviderError:
    """A request the bot does not send, because the API would refuse it (nothing started): the member's message
    `template` with its `values` (`errors.Message`)."""
    message = Message(template, **values)
    return ProviderError(ErrorKind.INVALID_REQUEST, message, detail=str(message), safe_to_resend=False)


def moderated(status: str, details: Any) -> ProviderError:
    """`Request Moderated` (the prompt or input image) or `Content Moderated` (the image made): both not charged."""
    # e.g. {"Moderation Reasons": ["Derivative Works Filter"]}: the reasons, without the key that holds them.
    reason = scrub(detail_text(list(details.values()) if isinstance(details, dict) else details))[:200]
    # Translators: added right after a sentence (hence the leading space); {reason} is the filter's, as it sent it.
    why = Message(N_(" Reason given: {reason}."), reason=reason) if reason else ""
    if status == "request moderated":
        code = "request_moderated"
        text = Message(
            N_(
                "The image provider's safety filter blocked this request (the prompt, or the image to edit), so "
                "nothing was made and nothing was charged.{why} Try rewording the prompt."
            ),
            why=why,
        )
    else:
        code = "content_moderated"
        text = Message(
            N_(
                "The image provider's safety filter blocked the image it made, so nothing was made and nothing was "
                "charged.{why} Try rewording the prompt."
            ),
            why=why,
        )
    return ProviderError(ErrorKind.REFUSED, text, code=code, detail=reason or status)


def task_error(details: Any, *, no_image_given: bool = False) -> ProviderError:
    """A task that ended with status `Error` (or `Ready` without an image)."""
    detail = scrub(detail_text(details))[:300]
    if no_image_given:
        return no_image(detail)
    text = Message(
        N_("The image provider failed to make the image.{said} Please try again."), said=provider_said(detail)
    )
    return ProviderError(ErrorKind.PROVIDER_FAILED, text, code="error", detail=detail or "Error")


def webhook_refused(why: str) -> CallbackRefused:
    """A webhook that claims to be BFL's but whose signature fails."""
    return CallbackRefused(f"the BFL callback is refused: {why}")


def detail_text(value: Any, depth: int = 0) -> str:
    """The words of an undocumented error value (text, a list, an object), at most five items a level."""
    if isinstance(value, str):
        return value.strip()
    if isinstance(value, bool | int | float):
        return str(value)
    if depth > 2:
        return ""
    if isinstance(value, list):
        return "; ".join(text for text in (detail_text(item, depth + 1) for item in value[:5]) if text)
    if isinstance(value, dict):
        if "msg" in value:  # a 422 detail item: {"loc": [...], "msg": ..., "type": ...}
            field = invalid_field({"detail": [value]})
            message = detail_text(value["msg"], depth + 1)
            return f"{field}: {message}" if field else message
        parts = ((str(key)[:40], detail_text(item, depth + 1)) for key, item in list(value.items())[:5])
        return "; ".join(f"{key}: {text}" for key, text in parts if text)
    return ""
