"""fal.ai's Flux models as data: the models members pick, the fal endpoints behind each, and the options each takes.

One member-facing model per family: an edit goes to the family's edit endpoint (Kontext: `…/kontext`, FLUX.2:
`…/edit`), a new image to its text-to-image endpoint. Field names and ranges are those of fal's model pages.
"""

from __future__ import annotations

from dataclasses import dataclass

from fluxbot import catalog
from fluxbot.catalog import Model, Option, ProviderInfo, SizeKind, SizeRule

#: The aspect ratios fal's Kontext and FLUX1.1 [pro] ultra endpoints take.
FAL_RATIOS: tuple[str, ...] = ("21:9", "16:9", "4:3", "3:2", "1:1", "2:3", "3:4", "9:16", "9:21")
#: fal's `image_size` presets by the pixels each stands for (fal's "model arguments" page); other sizes are sent as
#: {"width", "height"}.
IMAGE_SIZE_PRESETS: dict[str, str] = {
    "1024x1024": "square_hd",
    "512x512": "square",
    "768x1024": "portrait_4_3",
    "576x1024": "portrait_16_9",
    "1024x768": "landscape_4_3",
    "1024x576": "landscape_16_9",
}
_PRESET_SIZES = tuple(IMAGE_SIZE_PRESETS)

# fal documents no pixel limits of its own; these are Black Forest Labs' (FLUX.1: 256-1440, FLUX.2: up to 4 MP).
_FLUX1_PIXELS = SizeRule(
    SizeKind.PIXELS,
    min_side=256,
    max_side=1440,
    multiple=32,
    suggestions=(*_PRESET_SIZES, "1344x768", "768x1344", "1216x832", "832x1216", "1440x1440"),
)
_FLUX2_PIXELS = SizeRule(
    SizeKind.PIXELS,
    min_side=256,
    max_side=2048,
    multiple=32,
    suggestions=(*_PRESET_SIZES, "1536x1024", "1024x1536", "1344x768", "768x1344", "2048x2048"),
)
_RATIOS = SizeRule(SizeKind.RATIO, suggestions=FAL_RATIOS)

#: fal's guidance_scale is a number from 1 to 20 (default 3.5); Discord offers these as choices.
GUIDANCE_CHOICES: tuple[str, ...] = (
    "1.5", "2", "2.5", "3", "3.5", "4", "4.5", "5", "6", "7", "8", "10", "12", "15", "20",
)  # fmt: skip
#: The largest seed offered (fal documents an integer; 32 bits is what every Flux host takes).
MAX_SEED = 2**32 - 1
_BOTH = ("generate", "edit")
_STEPS = tuple((action, 1, 50) for action in _BOTH)

FAL_OPTIONS: tuple[Option, ...] = (
    Option("guidance", "How closely the image follows the prompt (default 3.5)", str, choices=GUIDANCE_CHOICES),
    Option("steps", "Inference steps: more is slower, finer (default 28)", int, ranges=_STEPS),
    Option(
        "safety_tolerance",
        "How permissive the content filter is: 1 strict to 6 (FLUX.2: up to 5)",
        int,
        ranges=tuple((a, 1, 6) for a in _BOTH),
    ),
    Option("enable_safety_checker", "Let fal.ai check the result for unsafe content (on by default)", bool),
    Option("output_format", "jpeg (default) or png", str, choices=("jpeg", "png")),
    Option("seed", "The same seed and prompt give the same image", int, ranges=tuple((a, 0, MAX_SEED) for a in _BOTH)),
)  # fmt: skip


@dataclass(frozen=True)
class Endpoint:
    """The fal endpoints behind one member-facing model, and which options of FAL_OPTIONS they take."""

    generate: str
    edit: str | None = None
    options: frozenset[str] = frozenset()
    #: FLUX.1 endpoints take `num_images` (1-4); FLUX.2 ones make one image a request.
    num_images: bool = True
    #: The most permissive `safety_tolerance` ("1" to "6" on FLUX.1, "1" to "5" on FLUX.2).
    max_safety: int = 6


_FLUX1_PRO = frozenset({"seed", "safety_tolerance", "output_format"})
_FLUX2 = frozenset({"seed", "safety_tolerance", "enable_safety_checker", "output_format"})

#: The endpoints behind each model, by the model's name.
FAL_ENDPOINTS: dict[str, Endpoint] = {
    "flux-dev": Endpoint(
        "fal-ai/flux/dev", options=frozenset({"guidance", "steps", "seed", "enable_safety_checker", "output_format"})
    ),
    "flux-pro-1.1": Endpoint("fal-ai/flux-pro/v1.1", options=_FLUX1_PRO),
    "flux-pro-1.1-ultra": Endpoint("fal-ai/flux-pro/v1.1-ultra", options=_FLUX1_PRO),
    "flux-kontext-pro": Endpoint(
        "fal-ai/flux-pro/kontext/text-to-image", "fal-ai/flux-pro/kontext", options=_FLUX1_PRO | {"guidance"}
    ),
    "flux-kontext-max": Endpoint(
        "fal-ai/flux-pro/kontext/max/text-to-image", "fal-ai/flux-pro/kontext/max", options=_FLUX1_PRO | {"guidance"}
    ),
    "flux-2-pro": Endpoint("fal-ai/flux-2-pro", "fal-ai/flux-2-pro/edit", _FLUX2, num_images=False, max_safety=5),
    "flux-2-max": Endpoint("fal-ai/flux-2-max", "fal-ai/flux-2-max/edit", _FLUX2, num_images=False, max_safety=5),
    "flux-2-flex": Endpoint(
        "fal-ai/flux-2-flex", "fal-ai/flux-2-flex/edit", _FLUX2 | {"steps", "guidance"}, num_images=False, max_safety=5
    ),
}

FAL_MODELS: tuple[Model, ...] = (
    Model("flux-dev", "FLUX.1 [dev]", _FLUX1_PIXELS),
    Model("flux-pro-1.1", "FLUX 1.1 [pro]", _FLUX1_PIXELS),
    Model("flux-pro-1.1-ultra", "FLUX 1.1 [pro] Ultra", _RATIOS),
    Model("flux-kontext-pro", "FLUX.1 Kontext [pro]", _RATIOS, can_edit=True),
    Model("flux-kontext-max", "FLUX.1 Kontext [max]", _RATIOS, can_edit=True),
    Model("flux-2-pro", "FLUX.2 [pro]", _FLUX2_PIXELS, can_edit=True, images_per_task=1, edit_field="image_urls"),
    Model("flux-2-max", "FLUX.2 [max]", _FLUX2_PIXELS, can_edit=True, images_per_task=1, edit_field="image_urls"),
    Model("flux-2-flex", "FLUX.2 [flex]", _FLUX2_PIXELS, can_edit=True, images_per_task=1, edit_field="image_urls"),
)

FAL = ProviderInfo(
    "fal",
    "fal.ai",
    FAL_MODELS,
    FAL_OPTIONS,
    max_count=4,
    # Kontext edits without an aspect_ratio, and FLUX.2 edits without an image_size ("auto"), keep the image's own.
    keeps_ratio_on_edit=True,
    key_setting="FAL_KEY",
    url_setting="FAL_QUEUE_URL",
    results_expire=True,
)
# catalog.py imports this module last; it is the one that puts fal.ai among the providers.
catalog.PROVIDERS[FAL.name] = FAL
