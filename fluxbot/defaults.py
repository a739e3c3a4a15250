"""Members' defaults (`/settings`) and what a command uses for the options a member left out.

The order, for each of model, size and count: the option typed > the style's > the member's default > the
server's default. The style itself is the one typed, else the member's default style. A default that does not apply
here (a model the server does not enable, a style it lacks, a size the model does not take, a count above the
provider's) is skipped with a note for the member; the next in the order applies. `/edit` keeps the image's shape
unless a size is typed (no style's or default size applies), and takes a style's or default model only if it can edit.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from typing import TypeVar

from fluxbot import catalog
from fluxbot.catalog import ProviderInfo
from fluxbot.jobs.requests import MAX_COUNT, InvalidRequest
from fluxbot.limits import Policy, Style
from fluxbot.providers.base import Action
from fluxbot.styles import find_style, pick_style, style_name

T = TypeVar("T")

#: A candidate that does not apply to this action (a model that cannot edit, for /edit): skipped without a note.
_NOT_FOR_THIS = ""


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
    """What the command uses, and a note for each default or style setting that was skipped here."""

    model: str
    #: None: the model's default size (for an edit: the image's shape).
    size: str | None
    count: int
    style: Style | None
    notes: tuple[str, ...] = field(default_factory=tuple)


def most_images(provider: ProviderInfo) -> int:
    """The most images one job may make with this provider."""
    return min(MAX_COUNT, provider.max_count)


def choose(action: Action, typed: Typed, defaults: MemberDefaults, policy: Policy, provider: ProviderInfo) -> Chosen:
    """The model, size, count and style a command uses here. An unknown style typed is an InvalidRequest; a typed
    model or size is taken as it is (the request checks refuse what is invalid)."""
    notes: list[str] = []
    style = _style(typed, defaults, policy, notes)
    model = _model(action, typed, style, defaults, policy, provider, notes)
    size = _size(action, typed, style, defaults, model, provider, notes)
    count = _count(action, typed, defaults, provider, notes)
    return Chosen(model, size, count, style, tuple(notes))


def _style(typed: Typed, defaults: MemberDefaults, policy: Policy, notes: list[str]) -> Style | None:
    if typed.style is not None and typed.style.strip():
        return pick_style(policy.styles, typed.style)
    if defaults.style is None:
        return None
    style = find_style(policy.styles, defaults.style)
    if style is None:
        notes.append(f"your default style `{defaults.style}` is not a style here, so no style was used")
    return style


def _first(
    candidates: Sequence[tuple[T | None, str]],
    problem: Callable[[T], str | None],
    fallback: T,
    shown: Callable[[T], str],
) -> tuple[T, list[str]]:
    """The first candidate (value, what it is) without a problem, else `fallback`; a note for each one skipped."""
    skipped: list[str] = []
    chosen = fallback
    for value, what in candidates:
        if value is None:
            continue
        reason = problem(value)
        if reason is None:
            chosen = value
            break
        if reason != _NOT_FOR_THIS:
            skipped.append(f"{what} `{value}` {reason}")
    return chosen, [f"{note}, so {shown(chosen)} was used" for note in skipped]


def _model(
    action: Action,
    typed: Typed,
    style: Style | None,
    defaults: MemberDefaults,
    policy: Policy,
    provider: ProviderInfo,
    notes: list[str],
) -> str:
    if typed.model is not None and typed.model.strip():
        return typed.model
    names = catalog.model_names(provider)

    def problem(model: str) -> str | None:
        if model not in names:
            return "is not a model of this bot's provider"
        if action == "edit" and not catalog.get_model(provider, model).can_edit:
            return _NOT_FOR_THIS
        if policy.allowed_models and model not in policy.allowed_models:
            return "is not enabled on this server"
        return None

    candidates = [
        (style.model if style else None, f"the style `{style.name if style else ''}`'s model"),
        (defaults.model, "your default model"),
    ]
    fallback = policy.edit_model if action == "edit" else policy.default_model
    model, skipped = _first(candidates, problem, fallback, lambda m: f"`{m}`")
    notes.extend(skipped)
    return model


def _size(
    action: Action,
    typed: Typed,
    style: Style | None,
    defaults: MemberDefaults,
    model: str,
    provider: ProviderInfo,
    notes: list[str],
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
            return f"does not fit `{model}`"
        return None

    candidates = [
        (style.size if style else None, f"the style `{style.name if style else ''}`'s size"),
        (defaults.size, "your default size"),
    ]
    default_size = catalog.get_model(provider, model).default_size
    size, skipped = _first(candidates, problem, "", lambda s: f"`{s or default_size}`")  # "": the model's own
    notes.extend(skipped)
    return size or None


def _count(action: Action, typed: Typed, defaults: MemberDefaults, provider: ProviderInfo, notes: list[str]) -> int:
    if action == "edit":
        return 1
    if typed.count is not None:
        return typed.count
    most = most_images(provider)

    def problem(count: int) -> str | None:
        return None if 1 <= count <= most else f"is more than this bot's provider makes in one job ({most})"

    count, skipped = _first([(defaults.count, "your default count")], problem, 1, str)
    notes.extend(skipped)
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
            raise InvalidRequest(f"`{model[:40]}` is not a model of this bot's provider. Pick one of {known}.")
    new_model = model if model is not None else base.model
    new_size = base.size if size is None else _default_size(provider, new_model, size)
    if count is not None and not 1 <= count <= most_images(provider):
        most = most_images(provider)
        raise InvalidRequest(f"`count` must be between 1 and {most} with this bot's provider; you asked for {count}.")
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
    for candidate in models:
        try:
            return candidate.size_rule.normalize(size)
        except catalog.InvalidSize as exc:
            problem = str(exc)
    if model:
        raise InvalidRequest(f"{problem} (your default model `{model}`)")
    kinds = sorted({m.size_rule.describe() for m in provider.models})
    raise InvalidRequest(f"`{size.strip()[:40]}` is not a size any model here takes. Use " + "; or ".join(kinds) + ".")


def notes_message(notes: Sequence[str]) -> str:
    """The private note telling a member which of their choices did not apply here, and why."""
    lines = "\n".join(f"• {note[0].upper()}{note[1:]}." for note in notes)
    return f"Some of your choices were not used here:\n{lines}\nSee or change your defaults with `/settings`."


def describe_defaults(defaults: MemberDefaults) -> str:
    """A member's defaults in a few words each."""
    if defaults.empty:
        return "none chosen: `/settings` chooses a default model, size, count and style"
    parts = [
        f"model `{defaults.model}`" if defaults.model else "",
        f"size `{defaults.size}`" if defaults.size else "",
        f"count {defaults.count}" if defaults.count else "",
        f"style `{defaults.style}`" if defaults.style else "",
    ]
    return ", ".join(p for p in parts if p)


def describe_chosen(chosen: Chosen, provider: ProviderInfo) -> str:
    """What `/imagine` without options uses here, in one line."""
    names = catalog.model_names(provider)
    size = chosen.size or (catalog.get_model(provider, chosen.model).default_size if chosen.model in names else "")
    parts = [f"model `{chosen.model}`", f"size `{size}`" if size else "", f"count {chosen.count}"]
    parts.append(f"style `{chosen.style.name}`" if chosen.style else "no style")
    return ", ".join(p for p in parts if p)
