"""What a member may ask for: prompts, models, sizes, options and images, checked before anything is stored.

Every check takes the active provider's data (`catalog.ProviderInfo`) as an argument; nothing is read from a
module variable.
"""

from __future__ import annotations

import unicodedata
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import PurePosixPath
from urllib.parse import parse_qs, urlsplit

from fluxbot import catalog
from fluxbot.catalog import ProviderInfo
from fluxbot.errors import MemberError, Number, OptionName, either
from fluxbot.i18n import N_
from fluxbot.jobs.lifecycle import EditImage, Job
from fluxbot.providers.base import Action, JobRequest, OptionValue

PROMPT_MAX_CHARS = 1500
MAX_COUNT = 4
MAX_ATTACHMENT_BYTES = 20 * 1024 * 1024
EDITABLE_TYPES = {"image/png": "PNG", "image/jpeg": "JPEG", "image/webp": "WebP"}
_EXTENSION_TYPES = {".png": "image/png", ".jpg": "image/jpeg", ".jpeg": "image/jpeg", ".webp": "image/webp"}
EMPTY_PROMPT = N_("The prompt is empty. Describe the image you want, e.g. `a white siamese cat`.")
#: Characters that render as blank although Unicode does not call them spaces (Hangul fillers, the braille blank).
_BLANK = frozenset("\u115f\u1160\u3164\uffa0\u2800")


class InvalidRequest(MemberError, ValueError):
    """The member's input cannot make a job; the message says what is valid."""


@dataclass(frozen=True)
class AttachmentInfo:
    """The parts of a Discord attachment an edit job needs."""

    url: str
    filename: str
    content_type: str | None
    size: int
    width: int | None = None
    height: int | None = None


def _invisible(char: str) -> bool:
    return char.isspace() or char in _BLANK or unicodedata.category(char) in ("Cc", "Cf", "Zs", "Zl", "Zp")


def check_prompt(prompt: str) -> str:
    """The prompt as it is sent: control characters removed, stripped; InvalidRequest when nothing visible is left
    or it is too long."""
    # Control characters (other than line breaks) cannot mean anything to the model and may confuse logs.
    text = "".join(c for c in prompt if c == "\n" or unicodedata.category(c) != "Cc").strip()
    if all(_invisible(c) for c in text):
        raise InvalidRequest(EMPTY_PROMPT)
    if len(text) > PROMPT_MAX_CHARS:
        raise InvalidRequest(
            N_("The prompt is {length} characters long; the limit is {limit}. Shorten it and try again."),
            length=Number(len(text)),
            limit=Number(PROMPT_MAX_CHARS),
        )
    return text


def check_options(info: ProviderInfo, options: Mapping[str, OptionValue | None], action: str) -> dict[str, OptionValue]:
    """The options asked for (None = not asked), checked against the provider's; raises InvalidRequest."""
    offered = {option.name: option for option in info.options}
    chosen = {name: value for name, value in options.items() if value is not None}
    for name, value in chosen.items():
        option = offered.get(name)
        if option is None:
            raise InvalidRequest(
                N_(
                    "`{name}` is not available with this bot's image provider ({provider}). Leave it out and try again."
                ),
                name=OptionName(name),
                provider=info.label,
            )
        if option.choices and value not in option.choices:
            allowed = either(option.choices)
            raise InvalidRequest(
                N_("`{name}` must be {allowed}, not `{value}`."),
                name=OptionName(name),
                allowed=allowed,
                value=str(value)[:20],
            )
        limits = option.range_for(action)
        if limits is not None and isinstance(value, int) and not limits[0] <= value <= limits[1]:
            low, high = limits
            if action == "edit":
                raise InvalidRequest(
                    N_("`{name}` must be from {low} to {high} for an edit."), name=OptionName(name), low=low, high=high
                )
            raise InvalidRequest(
                N_("`{name}` must be from {low} to {high} for a new image."), name=OptionName(name), low=low, high=high
            )
    return chosen


def prepare_imagine(
    info: ProviderInfo,
    prompt: str,
    model: str,
    size: str | None,
    count: int,
    options: Mapping[str, OptionValue | None] | None = None,
) -> JobRequest:
    """Check an /imagine request and return what to submit; raises InvalidRequest."""
    text = check_prompt(prompt)
    flux_model = _model(info, model)
    most = min(MAX_COUNT, info.max_count)
    if not 1 <= count <= most:
        raise InvalidRequest(
            N_("`count` must be between 1 and {most} with this bot's provider; you asked for {count}."),
            most=most,
            count=count,
        )
    chosen = check_options(info, options or {}, "generate")
    return JobRequest("generate", text, flux_model.name, _size(flux_model, size), count=count, options=chosen)


def prepare_edit(
    info: ProviderInfo,
    prompt: str,
    model: str,
    size: str | None,
    image: AttachmentInfo,
    options: Mapping[str, OptionValue | None] | None = None,
) -> JobRequest:
    """Check an /edit request and return what to submit; raises InvalidRequest."""
    text = check_prompt(prompt)
    flux_model = _model(info, model)
    chosen_options = check_options(info, options or {}, "edit")
    if not flux_model.can_edit:
        names = ", ".join(f"`{m.name}`" for m in catalog.edit_models(info))
        raise InvalidRequest(
            N_("`{model}` cannot edit images. Pick one of {names}."), model=flux_model.name, names=names
        )
    content_type = attachment_type(image)
    if content_type not in EDITABLE_TYPES:
        kinds = ", ".join(EDITABLE_TYPES.values())
        if content_type.startswith("image/"):
            raise InvalidRequest(
                N_("`{file}` is {type}; Flux can edit {kinds} images only."),
                file=image.filename,
                type=content_type,
                kinds=kinds,
            )
        if not content_type:
            raise InvalidRequest(
                N_("`{file}` is an unknown type, not an image. Attach a {kinds} image."),
                file=image.filename,
                kinds=kinds,
            )
        raise InvalidRequest(
            N_("`{file}` is {type}, not an image. Attach a {kinds} image."),
            file=image.filename,
            type=content_type,
            kinds=kinds,
        )
    if image.size > MAX_ATTACHMENT_BYTES:
        raise InvalidRequest(
            N_("`{file}` is {size} MB; the limit is {limit} MB. Attach a smaller image."),
            file=image.filename,
            size=round(image.size / 1048576, 1),
            limit=MAX_ATTACHMENT_BYTES // 1048576,
        )
    if (size is None or not size.strip()) and info.keeps_ratio_on_edit:
        chosen = catalog.KEEP_RATIO
    elif size is None or not size.strip():
        chosen = catalog.closest_ratio(image.width or 1, image.height or 1, flux_model.size_rule.suggestions)
    else:
        chosen = _size(flux_model, size)
    return JobRequest("edit", text, flux_model.name, chosen, count=1, image_url=image.url, options=chosen_options)


def check_reroll(info: ProviderInfo, job: Job) -> None:
    """Refuse to re-run a job made with a provider new jobs no longer go to (its model or options may not exist)."""
    if job.provider != info.name:
        maker = catalog.PROVIDERS[job.provider].label if job.provider in catalog.PROVIDERS else job.provider
        raise InvalidRequest(
            N_(
                "This job was made with {maker}, but new jobs now go to {provider}, so it cannot be re-rolled "
                "as it was. Please run `/imagine` again."
            ),
            maker=maker,
            provider=info.label,
        )


def request_of(job: Job, *, callback_url: str | None = None) -> JobRequest:
    """The request that made `job`: what its submit sends, and what a re-roll runs again."""
    action: Action = "edit" if job.action == "edit" else "generate"
    return JobRequest(
        action,
        job.prompt,
        job.model,
        job.size,
        count=job.count,
        image_url=job.image_url,
        callback_url=callback_url,
        options=dict(job.options),
        style=job.style,
    )


def edit_request(
    info: ProviderInfo, prompt: str, image: EditImage, model: str = catalog.DEFAULT_EDIT_MODEL
) -> JobRequest:
    """A Kontext edit of an image the bot took from a result or a Discord message (never from typed text)."""
    ratio = catalog.fit_ratio(image.ratio, _model(info, model))
    return JobRequest("edit", check_prompt(prompt), model, ratio, image_url=image.url)


def result_images(job: Job, uploaded: dict[str, str]) -> list[EditImage]:
    """A finished job's images for editing: the copy uploaded to Discord when there is one, else the original.

    `uploaded` maps attachment file names on the result message (`flux-<job>-<n>.<ext>`) to their URLs.
    """
    ratio = job.size if ":" in job.size else _ratio_of(job.size)
    images = []
    for number, image in enumerate(job.images, start=1):
        copy = next((url for name, url in uploaded.items() if name.startswith(f"flux-{job.id}-{number}.")), None)
        images.append(EditImage(copy or image.url, ratio))
    return images


def attachment_type(attachment: AttachmentInfo) -> str:
    """An attachment's media type as Discord gives it, else as its file name's extension suggests."""
    given = (attachment.content_type or "").split(";")[0].strip().lower()
    return given or _EXTENSION_TYPES.get(PurePosixPath(attachment.filename).suffix.lower(), "")


def message_images(
    attachments: Sequence[AttachmentInfo], embedded: Sequence[tuple[str, int | None, int | None]], *, now: float
) -> list[EditImage]:
    """The images of a Discord message that can be edited: its image attachments, else its embed images.

    Embeds are only used without attachments: on the bot's own results they show the same attachments again.
    """
    images = []
    for attachment in attachments:
        if attachment_type(attachment) in EDITABLE_TYPES and attachment.size <= MAX_ATTACHMENT_BYTES:
            images.append(
                EditImage(attachment.url, catalog.closest_ratio(attachment.width or 1, attachment.height or 1))
            )
    if not images:
        for url, width, height in embedded:
            if url.startswith(("https://", "http://")):
                images.append(EditImage(url, catalog.closest_ratio(width or 1, height or 1)))
    return [i for i in images if not url_expired(i.url, now=now)][:MAX_COUNT]


def url_expired(url: str, *, now: float) -> bool:
    """True for a signed Discord media URL whose `ex` (hex unix time) has passed; other URLs are not judged."""
    query = parse_qs(urlsplit(url).query)
    expiry = (query.get("ex") or [""])[0]
    try:
        return int(expiry, 16) < now
    except ValueError:
        return False


def may_delete(job: Job, user_id: int, *, manage_messages: bool) -> bool:
    """Only the member who asked, or someone who may manage messages, deletes a result."""
    return job.reply.user_id == user_id or manage_messages


def _ratio_of(size: str) -> str:
    width, _, height = size.partition("x")
    return catalog.closest_ratio(int(width), int(height)) if width.isdigit() and height.isdigit() else "1:1"


def _model(info: ProviderInfo, name: str) -> catalog.Model:
    try:
        return catalog.get_model(info, name)
    except KeyError:
        names = ", ".join(f"`{n}`" for n in catalog.model_names(info))
        raise InvalidRequest(
            N_("`{model}` is not a model this bot knows. Pick one of {names}."), model=name[:40], names=names
        ) from None


def _size(model: catalog.Model, size: str | None) -> str:
    if size is None or not size.strip():
        return model.default_size
    try:
        return model.size_rule.normalize(size)
    except catalog.InvalidSize as exc:
        raise InvalidRequest(catalog.MODEL_SIZE, reason=exc.message, model=model.name) from None
