"""Members' defaults (`/settings`) and what a command uses for the options a member left out.

The order, for each of model, size and count: the option typed > the style's > the member's default > the
server's default. The style itself is the one typed, else the member's default style. A default that does not apply
here (a model the server does not enable, a style it lacks, a size the model does not take, a count above the
provider's) is skipped with a note for the member; the next in the order applies. `/edit` keeps the image's shape
unless a size is typed (no style's or default size applies), and takes a style's or default model only if it can edit.
"""

from __future__ import annotations

import functools
import json
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from typing import TypeVar

from fluxbot import catalog, i18n
from fluxbot.catalog import ProviderInfo
from fluxbot.errors import Message, Number, said
from fluxbot.i18n import N_
from fluxbot.jobs.requests import MAX_COUNT, InvalidRequest
from fluxbot.limits import Policy, Style
from fluxbot.providers.base import Action
from fluxbot.styles import NOT_A_MODEL, find_style, model_words, pick_style, size_words, style_name

T = TypeVar("T")

#: A candidate that does not apply to this action (a model that cannot edit, for /edit): skipped without a note.
_NOT_FOR_THIS = ""
#: Why a candidate was skipped: not the provider's model, not enabled here, a size the model does not take, too many.
_PROVIDER, _SERVER, _FIT, _MOST = "provider", "server", "fit", "most"
#: The note for each candidate skipped, by (whose it was, why); `{used}` is what the command used instead.
_NOTES = {
    ("style", _PROVIDER): N_(
        "The style `{style}`'s model `{model}` is not a model of this bot's provider, so `{used}` was used."
    ),
    ("style", _SERVER): N_(
        "The style `{style}`'s model `{model}` is not enabled on this server, so `{used}` was used."
    ),
    ("default", _PROVIDER): N_(
        "Your default model `{model}` is not a model of this bot's provider, so `{used}` was used."
    ),
    ("default", _SERVER): N_("Your default model `{model}` is not enabled on this server, so `{used}` was used."),
    ("style", _FIT): N_("The style `{style}`'s size `{size}` does not fit `{model}`, so `{used}` was used."),
    ("default", _FIT): N_("Your default size `{size}` does not fit `{model}`, so `{used}` was used."),
    ("default", _MOST): N_(
        "Your default count `{count}` is more than this bot's provider makes in one job ({most}), so {used} was used."
    ),
}


@dataclass(frozen=True)
class MemberDefaults:
    """What a member chose with `/settings`, for every server (None: not chosen)."""

    model: str | None = None
    size: str | None = None
    count: int | None = None
    style: str | None = None

    @property
    def empty(self) -> bool:
        """True when nothing is chosen."""
        return self == MemberDefaults()

    def to_json(self) -> str:
        """The defaults as stored (only those chosen)."""
        return json.dumps({k: v for k, v in asdict(self).items() if v is not None}, sort_keys=True)

    @classmethod
    def from_json(cls, text: str) -> MemberDefaults:
        """Defaults as stored; unknown keys (from a newer version) and values of the wrong type are ignored."""
        data = json.loads(text)

        def text_of(key: str) -> str | None:
            value = data.get(key)
            return value if isinstance(value, str) else None

        count = data.get("count")
        number = count if isinstance(count, int) and not isinstance(count, bool) else None
        return cls(model=text_of("model"), size=text_of("size"), count=number, style=text_of("style"))


@dataclass(frozen=True)
class Typed:
    """The options a member typed in one command (None: left out)."""

    model: str | None = None
    size: str | None = None
    count: int | None = None
    style: str | None = None


@dataclass(frozen=True)
class Chosen:
    """What the command uses, and a note (a sentence) for each default or style setting that was skipped here."""

    model: str
    #: None: the model's default size (for an edit: the image's shape).
    size: str | None
    count: int
    style: Style | None
    notes: tuple[Message, ...] = field(default_factory=tuple)


def most_images(provider: ProviderInfo) -> int:
    """The most images one job may make with this provider."""
    return min(MAX_COUNT, provider.max_count)


def choose(action: Action, typed: Typed, defaults: MemberDefaults, policy: Policy, provider: ProviderInfo) -> Chosen:
    """The model, size, count and style a command uses here. An unknown style typed is an InvalidRequest; a typed
    model or size is taken as it is (the request checks refuse what is invalid)."""
    notes: list[Message] = []
    style = _style(typed, defaults, policy, notes)
    model = _model(action, typed, style, defaults, policy, provider, notes)
    size = _size(action, typed, style, defaults, model, provider, notes)
    count = _count(action, typed, defaults, provider, notes)
    return Chosen(model, size, count, style, tuple(notes))


def _style(typed: Typed, defaults: MemberDefaults, policy: Policy, notes: list[Message]) -> Style | None:
    if typed.style is not None and typed.style.strip():
        return pick_style(policy.styles, typed.style)
    if defaults.style is None:
        return None
    style = find_style(policy.styles, defaults.style)
    if style is None:
        notes.append(
            Message(N_("Your default style `{style}` is not a style here, so no style was used."), style=defaults.style)
        )
    return style


def _first(
    candidates: Sequence[tuple[T | None, str]], problem: Callable[[T], str | None], fallback: T
) -> tuple[T, list[tuple[str, T, str]]]:
    """The first candidate (value, whose it is) without a problem, else `fallback`; (whose, value, problem) of each
    one skipped, for its note."""
    skipped: list[tuple[str, T, str]] = []
    chosen = fallback
    for value, whose in candidates:
        if value is None:
            continue
        reason = problem(value)
        if reason is None:
            chosen = value
            break
        if reason != _NOT_FOR_THIS:
            skipped.append((whose, value, reason))
    return chosen, skipped


def _model(
    action: Action,
    typed: Typed,
    style: Style | None,
    defaults: MemberDefaults,
    policy: Policy,
    provider: ProviderInfo,
    notes: list[Message],
) -> str:
    if typed.model is not None and typed.model.strip():
        return typed.model
    names = catalog.model_names(provider)

    def problem(model: str) -> str | None:
        if model not in names:
            return _PROVIDER
        if action == "edit" and not catalog.get_model(provider, model).can_edit:
            return _NOT_FOR_THIS
        if policy.allowed_models and model not in policy.allowed_models:
            return _SERVER
        return None

    candidates = [(style.model if style else None, "style"), (defaults.model, "default")]
    fallback = policy.edit_model if action == "edit" else policy.default_model
    model, skipped = _first(candidates, problem, fallback)
    style_shown = style.name if style else ""
    notes.extend(Message(_NOTES[w, why], style=style_shown, model=value, used=model) for w, value, why in skipped)
    return model


def _size(
    action: Action,
    typed: Typed,
    style: Style | None,
    defaults: MemberDefaults,
    model: str,
    provider: ProviderInfo,
    notes: list[Message],
) -> str | None:
    if typed.size is not None and typed.size.strip():
        return typed.size
    if action == "edit" or model not in catalog.model_names(provider):
        return None  # an edit keeps the image's shape; an unknown model is refused by the request checks
    rule = catalog.get_model(provider, model).size_rule

    def problem(size: str) -> str | None:
        try:
            rule.normalize(size)
        except catalog.InvalidSize:
            return _FIT
        return None

    candidates = [(style.size if style else None, "style"), (defaults.size, "default")]
    size, skipped = _first(candidates, problem, "")  # "": the model's own default size
    used = size or catalog.get_model(provider, model).default_size
    style_shown = style.name if style else ""
    notes.extend(
        Message(_NOTES[w, why], style=style_shown, size=value, model=model, used=used) for w, value, why in skipped
    )
    return size or None


def _count(action: Action, typed: Typed, defaults: MemberDefaults, provider: ProviderInfo, notes: list[Message]) -> int:
    if action == "edit":
        return 1
    if typed.count is not None:
        return typed.count
    most = most_images(provider)

    def problem(count: int) -> str | None:
        return None if 1 <= count <= most else _MOST

    count, skipped = _first([(defaults.count, "default")], problem, 1)
    notes.extend(
        Message(_NOTES[w, why], count=Number(value), most=Number(most), used=Number(count)) for w, value, why in skipped
    )
    return count


def changed_defaults(
    current: MemberDefaults,
    provider: ProviderInfo,
    *,
    model: str | None = None,
    size: str | None = None,
    count: int | None = None,
    style: str | None = None,
    reset: bool = False,
) -> MemberDefaults:
    """`current` (nothing, with `reset`) with the given values, each checked against the provider; InvalidRequest
    says what is valid. A value the server here does not allow is kept: other servers may allow it."""
    base = MemberDefaults() if reset else current
    names = catalog.model_names(provider)
    if model is not None:
        model = model.strip()
        if model not in names:
            known = ", ".join(f"`{n}`" for n in names)
            raise InvalidRequest(NOT_A_MODEL, model=model[:40], names=known)
    new_model = model if model is not None else base.model
    new_size = base.size if size is None else _default_size(provider, new_model, size)
    if count is not None and not 1 <= count <= most_images(provider):
        raise InvalidRequest(
            N_("`count` must be between 1 and {most} with this bot's provider; you asked for {count}."),
            most=most_images(provider),
            count=count,
        )
    return MemberDefaults(
        new_model,
        new_size,
        count if count is not None else base.count,
        style_name(style) if style is not None else base.style,
    )


def _default_size(provider: ProviderInfo, model: str | None, size: str) -> str:
    """A default size in the provider's spelling: one the default model takes, else (no default model) one some
    model takes."""
    models = [catalog.get_model(provider, model)] if model else list(provider.models)
    problems: list[Message] = []
    for candidate in models:
        try:
            return candidate.size_rule.normalize(size)
        except catalog.InvalidSize as exc:
            problems.append(exc.message)
    if model:
        # Translators: {reason} says why a size does not fit (a whole sentence); {model} is the model's name.
        raise InvalidRequest(N_("{reason} (your default model `{model}`)"), reason=problems[-1], model=model)
    kinds = sorted({m.size_rule.describe() for m in provider.models})
    # Translators: joins the kinds of sizes the models take ("an aspect ratio: 1:1, 16:9; or WIDTHxHEIGHT, …").
    joined = N_("{sizes}; or {size}")
    sizes = functools.reduce(lambda sizes, kind: Message(joined, sizes=sizes, size=kind), kinds)
    shown = size.strip()[:40]
    raise InvalidRequest(N_("`{size}` is not a size any model here takes. Use {sizes}."), size=shown, sizes=sizes)


def notes_message(notes: Sequence[str], locale: i18n.LocaleValue = None) -> str:
    """The private note telling a member, in `locale`, which of their choices did not apply here, and why (each
    note a sentence: a `Message` is said in `locale`)."""
    lines = "\n".join(f"• {said(note, locale)}" for note in notes)
    # Translators: {notes} is one line per choice, each "• <a sentence>".
    return i18n.text(
        locale,
        "Some of your choices were not used here:\n{notes}\nSee or change your defaults with `/settings`.",
        notes=lines,
    )


def describe_defaults(defaults: MemberDefaults, locale: i18n.LocaleValue = None) -> str:
    """A member's defaults in a few words each, in `locale`."""
    if defaults.empty:
        return i18n.text(locale, "none chosen: `/settings` chooses a default model, size, count and style")
    parts = [
        model_words(locale, defaults.model) if defaults.model else "",
        size_words(locale, defaults.size) if defaults.size else "",
        count_words(locale, defaults.count) if defaults.count else "",
        style_words(locale, defaults.style) if defaults.style else "",
    ]
    return ", ".join(p for p in parts if p)


def describe_chosen(chosen: Chosen, provider: ProviderInfo, locale: i18n.LocaleValue = None) -> str:
    """What `/imagine` without options uses here, in one line, in `locale`."""
    names = catalog.model_names(provider)
    size = chosen.size or (catalog.get_model(provider, chosen.model).default_size if chosen.model in names else "")
    parts = [
        model_words(locale, chosen.model),
        size_words(locale, size) if size else "",
        count_words(locale, chosen.count),
    ]
    # Translators: the last part of "model `flux-dev`, size `1024x1024`, count 1, no style".
    unstyled = i18n.text(locale, "no style")
    parts.append(style_words(locale, chosen.style.name) if chosen.style else unstyled)
    return ", ".join(p for p in parts if p)


def count_words(locale: i18n.LocaleValue, count: int) -> str:
    """A count as one part of a list of choices ("count 2"), in `locale`."""
    # Translators: one part of a list of choices, e.g. "model `flux-dev`, size `1024x768`, count 2".
    return i18n.text(locale, "count {count}", count=i18n.number(locale, count))


def style_words(locale: i18n.LocaleValue, style: str) -> str:
    """A style (its name, as the server wrote it) as one part of a list of choices, in `locale`."""
    # Translators: one part of a list of choices, e.g. "model `flux-dev`, count 2, style `film noir`".
    return i18n.text(locale, "style `{style}`", style=style)
