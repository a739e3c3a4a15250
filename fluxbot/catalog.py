"""The Flux models as data: what each is called, whether it can edit, and which sizes it accepts."""

from __future__ import annotations

import contextlib
import re
from dataclasses import dataclass
from enum import StrEnum
from math import gcd
from math import log as ln

from fluxbot.errors import MemberError, Message
from fluxbot.i18n import N_

#: The aspect ratios the provider documents.
ASPECT_RATIOS: tuple[str, ...] = (
    "1:1",
    "16:9",
    "21:9",
    "3:2",
    "2:3",
    "4:5",
    "5:4",
    "3:4",
    "4:3",
    "9:16",
    "9:21",
)

# Translators: {size} is what the member typed; {sizes} says which sizes the model takes ("an aspect ratio: …").
NOT_A_SIZE = N_("`{size}` is not a size this model takes. Use {sizes}.")
_PIXELS = re.compile(r"^\s*(\d{1,5})\s*[x×X*]\s*(\d{1,5})\s*$")
_RATIO = re.compile(r"^\s*(\d{1,2})\s*:\s*(\d{1,2})\s*$")


class InvalidSize(MemberError, ValueError):
    """A size the model does not accept; the message (a template with values) says what it does accept."""


#: A size refusal (`InvalidSize`'s message, the `reason`) and the model it is about.
# Translators: {reason} says why a size does not fit (a whole sentence); {model} is the model's name.
MODEL_SIZE = N_("{reason} (model `{model}`)")


class SizeKind(StrEnum):
    """How a model takes its size: pixel dimensions or an aspect ratio."""

    PIXELS = "pixels"
    RATIO = "ratio"


@dataclass(frozen=True)
class SizeRule:
    """The sizes one model accepts."""

    kind: SizeKind
    min_side: int = 0
    max_side: int | None = None
    multiple: int = 1
    suggestions: tuple[str, ...] = ASPECT_RATIOS

    def describe(self) -> Message:
        """Say in one sentence which sizes are valid (the end of "Use …")."""
        if self.kind is SizeKind.RATIO:
            # Translators: the end of "Use …."; {ratios} is a list such as "1:1, 16:9, 9:16".
            return Message(N_("an aspect ratio: {ratios}"), ratios=", ".join(self.suggestions))
        if self.max_side:
            return Message(
                # Translators: the end of "Use …."; WIDTHxHEIGHT is how a size is typed (e.g. 1024x768).
                N_("WIDTHxHEIGHT, each side {low} to {high} and a multiple of {step} (e.g. 1024x768)"),
                low=self.min_side,
                high=self.max_side,
                step=self.multiple,
            )
        return Message(
            # Translators: the end of "Use …."; WIDTHxHEIGHT is how a size is typed (e.g. 1024x768).
            N_("WIDTHxHEIGHT, each side {low} or more and a multiple of {step} (e.g. 1024x768)"),
            low=self.min_side,
            step=self.multiple,
        )

    def normalize(self, size: str) -> str:
        """Return `size` in the provider's spelling, or raise InvalidSize saying what is valid."""
        pixels = _PIXELS.match(size)
        ratio = _RATIO.match(size)
        shown = size.strip()[:40]
        if self.kind is SizeKind.RATIO:
            if ratio and f"{ratio[1]}:{ratio[2]}" in self.suggestions:
                return f"{ratio[1]}:{ratio[2]}"
            raise InvalidSize(NOT_A_SIZE, size=shown, sizes=self.describe())
        if not pixels:
            raise InvalidSize(NOT_A_SIZE, size=shown, sizes=self.describe())
        width, height = int(pixels[1]), int(pixels[2])
        for side in (width, height):
            if side % self.multiple:
                raise InvalidSize(
                    N_("`{size}`: {side} is not a multiple of {step}. Use {sizes}."),
                    size=f"{width}x{height}",
                    side=side,
                    step=self.multiple,
                    sizes=self.describe(),
                )
            if side < self.min_side or (self.max_side is not None and side > self.max_side):
                raise InvalidSize(
                    N_("`{size}`: {side} is out of range. Use {sizes}."),
                    size=f"{width}x{height}",
                    side=side,
                    sizes=self.describe(),
                )
        return f"{width}x{height}"


#: FLUX.1 [dev] and [pro], FLUX 1.1 [pro]: 256 to 1440 pixels a side, in steps of 32 (every provider's bounds).
FLUX1_PIXELS = SizeRule(
    SizeKind.PIXELS,
    min_side=256,
    max_side=1440,
    multiple=32,
    suggestions=(
        "1024x1024", "1024x768", "768x1024", "1344x768", "768x1344", "1152x896", "896x1152",
        "1216x832", "832x1216", "1440x1440", "512x512",
    ),
)  # fmt: skip
_FLUX2 = SizeRule(
    SizeKind.PIXELS,
    min_side=64,
    multiple=32,
    suggestions=(
        "1024x1024", "1024x768", "768x1024", "1536x1024", "1024x1536", "1344x768", "768x1344",
        "2048x2048", "512x512",
    ),
)  # fmt: skip
_RATIO_ONLY = SizeRule(SizeKind.RATIO)


@dataclass(frozen=True)
class Model:
    """One Flux model as the provider names it."""

    name: str
    label: str
    size_rule: SizeRule
    can_edit: bool = False
    #: Images one provider task makes: a job of more is split into several tasks (at most four).
    images_per_task: int = 4
    #: How many of this model's tasks the provider runs at once for the account (None: no limit of its own).
    max_active_tasks: int | None = None
    #: The request field an edit's image is sent in.
    edit_field: str = "image_url"

    @property
    def default_size(self) -> str:
        """The size used when the member gives none."""
        return "1:1" if self.size_rule.kind is SizeKind.RATIO else "1024x1024"


MODELS: tuple[Model, ...] = (
    Model("flux-dev", "FLUX.1 [dev]", FLUX1_PIXELS),
    Model("flux-pro", "FLUX.1 [pro]", FLUX1_PIXELS),
    Model("flux-pro-1.1", "FLUX 1.1 [pro]", FLUX1_PIXELS),
    Model("flux-pro-1.1-ultra", "FLUX 1.1 [pro] Ultra", _RATIO_ONLY),
    Model("flux-kontext-pro", "FLUX.1 Kontext [pro]", _RATIO_ONLY, can_edit=True),
    Model("flux-kontext-max", "FLUX.1 Kontext [max]", _RATIO_ONLY, can_edit=True),
    Model("flux-2-flex", "FLUX.2 [flex]", _FLUX2),
    Model("flux-2-pro", "FLUX.2 [pro]", _FLUX2),
    Model("flux-2-max", "FLUX.2 [max]", _FLUX2),
    Model("flux-2-klein", "FLUX.2 [klein]", _FLUX2),
)
#: Kie.ai's Flux Kontext API takes fewer aspect ratios.
KIE_RATIOS: tuple[str, ...] = ("21:9", "16:9", "4:3", "1:1", "3:4", "9:16")
_KIE_RATIO = SizeRule(SizeKind.RATIO, suggestions=KIE_RATIOS)
KIE_MODELS: tuple[Model, ...] = (
    Model("flux-kontext-pro", "FLUX.1 Kontext [pro]", _KIE_RATIO, can_edit=True, images_per_task=1),
    Model("flux-kontext-max", "FLUX.1 Kontext [max]", _KIE_RATIO, can_edit=True, images_per_task=1),
)


@dataclass(frozen=True)
class Option:
    """An option only some providers have, as data: /imagine and /edit offer it, the job service checks it."""

    name: str
    description: str
    kind: type[str] | type[bool] | type[int]
    #: The values a text option takes (offered as choices).
    choices: tuple[str, ...] = ()
    #: The lowest and highest value of a number option, per action: (("generate", 0, 6), ("edit", 0, 2)).
    ranges: tuple[tuple[str, int, int], ...] = ()

    def range_for(self, action: str) -> tuple[int, int] | None:
        """The (lowest, highest) value for `action`, or None when any number goes."""
        return next(((low, high) for name, low, high in self.ranges if name == action), None)


KIE_OPTIONS: tuple[Option, ...] = (
    Option("output_format", "jpeg (default) or png", str, choices=("jpeg", "png")),
    Option("prompt_upsampling", "Let the model elaborate the prompt (slower)", bool),
    Option(
        "safety_tolerance",
        "How permissive the content filter is: 0 strict to 6 (edits: 0 to 2)",
        int,
        ranges=(("generate", 0, 6), ("edit", 0, 2)),
    ),
    Option("translate", "Translate a non-English prompt first (on by default)", bool),
)


@dataclass(frozen=True)
class ProviderInfo:
    """What one provider offers: its models (with their size rules) and its extra options."""

    name: str
    label: str
    models: tuple[Model, ...]
    options: tuple[Option, ...] = ()
    #: Images one job can make (a job may hold several tasks: see `Model.images_per_task`).
    max_count: int = 4
    #: Whether an edit without a size keeps the input's aspect ratio (the size is then not sent).
    keeps_ratio_on_edit: bool = False
    #: The settings that hold its key and its address (named in start-up errors).
    key_setting: str = ""
    url_setting: str = ""
    #: How many tasks the account may have running at once (None: no limit); the queue never exceeds it.
    max_active_tasks: int | None = None
    #: The provider's result links expire soon: a task's images are downloaded the moment it is seen ready.
    results_expire: bool = False


PROVIDERS: dict[str, ProviderInfo] = {
    "acedata": ProviderInfo(
        "acedata", "Ace Data Cloud", MODELS, key_setting="ACEDATA_API_TOKEN", url_setting="FLUX_API_BASE_URL"
    ),
    "kie": ProviderInfo(
        "kie",
        "Kie.ai",
        KIE_MODELS,
        KIE_OPTIONS,
        keeps_ratio_on_edit=True,
        key_setting="KIE_API_TOKEN",
        url_setting="KIE_API_BASE_URL",
    ),
}
#: The size of an edit that keeps the input image's aspect ratio (providers with `keeps_ratio_on_edit`).
KEEP_RATIO = "auto"

#: The model /edit uses when the member picks none.
DEFAULT_EDIT_MODEL = "flux-kontext-pro"


def model_names(info: ProviderInfo) -> tuple[str, ...]:
    """Every model the provider offers."""
    return tuple(m.name for m in info.models)


def edit_models(info: ProviderInfo) -> tuple[Model, ...]:
    """The provider's models that can edit an image."""
    return tuple(m for m in info.models if m.can_edit)


def get_model(info: ProviderInfo, name: str) -> Model:
    """The provider's model called `name`; KeyError when there is none."""
    for model in info.models:
        if model.name == name:
            return model
    raise KeyError(name)


def label_of(name: str) -> str:
    """A model's readable name, from any provider's catalogue (old jobs may name another provider's models)."""
    every = {m.name: m.label for info in PROVIDERS.values() for m in info.models}
    return every.get(name, name)


def size_suggestions(info: ProviderInfo, model_name: str | None, typed: str, *, limit: int = 25) -> list[str]:
    """Sizes to offer while a member types `typed` for the given model (the first model's when None)."""
    known = {m.name: m for m in info.models}
    model = known.get(model_name or "") or info.models[0]
    rule = model.size_rule
    typed = typed.strip().lower().replace(" ", "")
    offers = [s for s in rule.suggestions if s.startswith(typed)] if typed else list(rule.suggestions)
    if typed and typed not in offers:
        with contextlib.suppress(InvalidSize):
            offers.insert(0, rule.normalize(typed))
    return offers[:limit]


def closest_ratio(width: int, height: int, ratios: tuple[str, ...] = ASPECT_RATIOS) -> str:
    """The aspect ratio of `ratios` nearest to `width` x `height`."""
    if width <= 0 or height <= 0:
        return "1:1"
    target = width / height
    g = gcd(width, height)
    exact = f"{width // g}:{height // g}"
    if exact in ratios:
        return exact

    def distance(ratio: str) -> float:
        w, h = (int(p) for p in ratio.split(":"))
        return abs(ln(w / h / target))

    return min(ratios, key=distance)


def fit_ratio(ratio: str, model: Model) -> str:
    """`ratio` if `model` takes it, else the nearest ratio it does take."""
    if model.size_rule.kind is not SizeKind.RATIO or ratio in model.size_rule.suggestions:
        return ratio
    width, _, height = ratio.partition(":")
    if not (width.isdigit() and height.isdigit()):
        return model.default_size
    return closest_ratio(int(width), int(height), model.size_rule.suggestions)


# The models of Black Forest Labs and fal.ai live in their own modules, which build on the types above and add
# themselves to PROVIDERS: imported last, so that whichever module is imported first, the other finds every name it
# needs defined.
from fluxbot.providers import bfl_models, fal_models  # noqa: E402, F401
