"""Black Forest Labs' own API as data: its models with their sizes, what each model's endpoint takes, and the
options members may set (from the API's OpenAPI schema; see shared/bfl-api.md)."""

from __future__ import annotations

from dataclasses import dataclass

from fluxbot.catalog import FLUX1_PIXELS, PROVIDERS, Model, Option, ProviderInfo, SizeKind, SizeRule

#: FLUX.2: the schema says at least 64 a side and nothing more; BFL's own skill notes add steps of 16 and at most
#: 4 megapixels. Both are kept (2048 a side bounds the area), so no size is sent that either source refuses.
FLUX2_PIXELS = SizeRule(
    SizeKind.PIXELS,
    min_side=64,
    max_side=2048,
    multiple=16,
    suggestions=(
        "1024x1024", "1024x768", "768x1024", "1536x1024", "1024x1536", "1344x768", "768x1344",
        "1440x1440", "2048x2048", "512x512",
    ),
)  # fmt: skip
#: FLUX 1.1 [pro] Ultra and Kontext: an aspect ratio "between 21:9 and 9:21".
RATIOS = SizeRule(SizeKind.RATIO)

#: The options every model's endpoint takes.
EVERY_MODEL = frozenset({"seed", "safety_tolerance", "output_format"})
OUTPUT_FORMATS = ("jpeg", "png", "webp")
GUIDANCE_CHOICES = ("1.5", "2", "2.5", "3", "3.5", "4", "4.5", "5", "6", "7", "8", "9", "10")
#: Discord takes whole numbers up to 2**53; BFL's seed is any integer: the usual 32-bit range is offered.
MAX_SEED = 2**32 - 1


@dataclass(frozen=True)
class Endpoint:
    """What one model's endpoint (`POST /v1/<model name>`) takes besides the prompt and the size."""

    #: The member options this model has (others are refused with the models that do have them).
    options: frozenset[str]
    #: The highest safety_tolerance: FLUX.1 0-6, FLUX.2 0-5 (higher values are lowered to it).
    safety_max: int
    #: The (lowest, highest) guidance, for the models that take it.
    guidance: tuple[float, float] | None = None


_FLUX1 = 6
_FLUX2 = 5
ENDPOINTS: dict[str, Endpoint] = {
    "flux-2-pro": Endpoint(EVERY_MODEL, _FLUX2),
    "flux-2-max": Endpoint(EVERY_MODEL, _FLUX2),
    "flux-2-flex": Endpoint(EVERY_MODEL | {"steps", "guidance", "prompt_upsampling"}, _FLUX2, guidance=(1.5, 10.0)),
    "flux-2-klein-4b": Endpoint(EVERY_MODEL, _FLUX2),
    "flux-2-klein-9b": Endpoint(EVERY_MODEL, _FLUX2),
    "flux-pro-1.1": Endpoint(EVERY_MODEL | {"prompt_upsampling"}, _FLUX1),
    "flux-pro-1.1-ultra": Endpoint(EVERY_MODEL | {"prompt_upsampling", "raw"}, _FLUX1),
    "flux-dev": Endpoint(EVERY_MODEL | {"steps", "guidance", "prompt_upsampling"}, _FLUX1, guidance=(1.5, 5.0)),
    "flux-kontext-pro": Endpoint(EVERY_MODEL | {"prompt_upsampling"}, _FLUX1),
    "flux-kontext-max": Endpoint(EVERY_MODEL | {"prompt_upsampling"}, _FLUX1),
}


def _model(name: str, label: str, rule: SizeRule, *, can_edit: bool, max_active_tasks: int | None = None) -> Model:
    # Every BFL endpoint makes one image a task and takes an edit's image (URL) as input_image.
    return Model(
        name, label, rule, can_edit=can_edit, images_per_task=1, max_active_tasks=max_active_tasks,
        edit_field="input_image",
    )  # fmt: skip


#: The first is the default model: FLUX.2 [pro], which BFL recommends for most generation and editing.
#: Left out: the `-preview` endpoints (flux-2-pro-preview, flux-2-klein-9b-preview), where BFL's changes "land
#: first" and which it advises against for stable use, and the finetune, fill and expand endpoints (base64 input).
BFL_MODELS: tuple[Model, ...] = (
    _model("flux-2-pro", "FLUX.2 [pro]", FLUX2_PIXELS, can_edit=True),
    _model("flux-2-max", "FLUX.2 [max]", FLUX2_PIXELS, can_edit=True),
    _model("flux-2-flex", "FLUX.2 [flex]", FLUX2_PIXELS, can_edit=True),
    _model("flux-2-klein-4b", "FLUX.2 [klein] 4B", FLUX2_PIXELS, can_edit=True),
    _model("flux-2-klein-9b", "FLUX.2 [klein] 9B", FLUX2_PIXELS, can_edit=True),
    _model("flux-pro-1.1", "FLUX 1.1 [pro]", FLUX1_PIXELS, can_edit=False),
    _model("flux-pro-1.1-ultra", "FLUX 1.1 [pro] Ultra", RATIOS, can_edit=False),
    _model("flux-dev", "FLUX.1 [dev]", FLUX1_PIXELS, can_edit=False),
    _model("flux-kontext-pro", "FLUX.1 Kontext [pro]", RATIOS, can_edit=True),
    # BFL runs at most 6 Kontext [max] tasks of an account at once (24 of all models).
    _model("flux-kontext-max", "FLUX.1 Kontext [max]", RATIOS, can_edit=True, max_active_tasks=6),
)


def _both(low: int, high: int) -> tuple[tuple[str, int, int], ...]:
    return (("generate", low, high), ("edit", low, high))


BFL_OPTIONS: tuple[Option, ...] = (
    Option("raw", "Less processed, more natural-looking images (flux-pro-1.1-ultra only)", bool),
    Option("steps", "Diffusion steps, 1 to 50 (flux-dev and flux-2-flex only)", int, ranges=_both(1, 50)),
    Option(
        "guidance",
        "How closely to follow the prompt: 1.5 to 5, flux-2-flex to 10 (flux-dev and flux-2-flex only)",
        str,
        choices=GUIDANCE_CHOICES,
    ),
    Option(
        "safety_tolerance",
        "How permissive the content filter is: 0 strict (default 2) to 6; FLUX.2 models go to 5",
        int,
        ranges=_both(0, _FLUX1),
    ),
    Option("output_format", "jpeg, png or webp (default: png for Kontext, else jpeg)", str, choices=OUTPUT_FORMATS),
    Option("prompt_upsampling", "Let the model elaborate the prompt (not FLUX.2 pro, max or klein)", bool),
    Option("seed", "A number that makes the same prompt give the same image again", int, ranges=_both(0, MAX_SEED)),
)

BFL: ProviderInfo = ProviderInfo(
    "bfl",
    "Black Forest Labs",
    BFL_MODELS,
    BFL_OPTIONS,
    max_count=4,
    # Without a size, an edit is sent without aspect_ratio / width and height: the API keeps the input's.
    keeps_ratio_on_edit=True,
    key_setting="BFL_API_KEY",
    url_setting="BFL_REGION",
    max_active_tasks=24,
    results_expire=True,  # result URLs work for 10 minutes
)

PROVIDERS[BFL.name] = BFL  # the catalogue's entry (catalog.py imports this module at its end)
