"""The request schemas of BFL's generation endpoints (from its OpenAPI schema), checked the way its API framework
answers: a list of `{"type", "loc", "msg", "input"}` problems for a 422. Prices in credits (its pricing page)."""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

#: A field's check: the problem (type, msg) with its value, or None when the value is fine.
Check = Callable[[Any], tuple[str, str] | None]


def _int(low: int | None = None, high: int | None = None, multiple: int | None = None, *, null: bool = True) -> Check:
    def check(value: Any) -> tuple[str, str] | None:
        if value is None and null:
            return None
        if not isinstance(value, int) or isinstance(value, bool):
            return "int_type", "Input should be a valid integer"
        if low is not None and value < low:
            return "greater_than_equal", f"Input should be greater than or equal to {low}"
        if high is not None and value > high:
            return "less_than_equal", f"Input should be less than or equal to {high}"
        if multiple is not None and value % multiple:
            return "multiple_of", f"Input should be a multiple of {multiple}"
        return None

    return check


def _number(low: float, high: float) -> Check:
    def check(value: Any) -> tuple[str, str] | None:
        if value is None:
            return None
        if not isinstance(value, int | float) or isinstance(value, bool) or not math.isfinite(value):
            return "float_type", "Input should be a valid number"
        if value < low:
            return "greater_than_equal", f"Input should be greater than or equal to {low}"
        if value > high:
            return "less_than_equal", f"Input should be less than or equal to {high}"
        return None

    return check


def _bool(value: Any) -> tuple[str, str] | None:
    return None if value is None or isinstance(value, bool) else ("bool_type", "Input should be a valid boolean")


def _text(most: int | None = None) -> Check:
    def check(value: Any) -> tuple[str, str] | None:
        if value is None:
            return None
        if not isinstance(value, str):
            return "string_type", "Input should be a valid string"
        if most is not None and not 1 <= len(value) <= most:
            return "string_too_long", f"String should have at most {most} characters"
        return None

    return check


def _format(value: Any) -> tuple[str, str] | None:
    ok = value is None or value in ("jpeg", "png", "webp")
    return None if ok else ("enum", "Input should be 'jpeg', 'png' or 'webp'")


def _ratio(value: Any) -> tuple[str, str] | None:
    if value is None:
        return None
    width, colon, height = str(value).partition(":")
    if not (isinstance(value, str) and colon and width.isdecimal() and height.isdecimal() and int(height) > 0):
        return "value_error", "Value error, aspect ratio must be W:H, such as 16:9"
    if not 9 / 21 <= int(width) / int(height) <= 21 / 9:
        return "value_error", "Value error, aspect ratio must be between 21:9 and 9:21"
    return None


_COMMON: dict[str, Check] = {
    "prompt": _text(), "seed": _int(), "output_format": _format, "webhook_url": _text(2083),
    "webhook_secret": _text(),
}  # fmt: skip
_FLUX1_SAFETY = {"safety_tolerance": _int(0, 6, null=False)}
_FLUX2_SAFETY = {"safety_tolerance": _int(0, 5, null=False)}
_PRO = {
    **_COMMON, **_FLUX1_SAFETY, "width": _int(256, 1440, 32, null=False), "height": _int(256, 1440, 32, null=False),
    "prompt_upsampling": _bool, "image_prompt": _text(),
}  # fmt: skip
# FLUX.2: the schema says width/height >= 64; steps of 16 are from BFL's skill notes (the area limit is below).
_FLUX2_SIZE = {"width": _int(64, None, 16), "height": _int(64, None, 16)}


def _inputs(count: int) -> dict[str, Check]:
    return {"input_image": _text(), **{f"input_image_{n}": _text() for n in range(2, count + 1)}}


_ULTRA = {
    **_COMMON, **_FLUX1_SAFETY, "aspect_ratio": _ratio, "raw": _bool, "prompt_upsampling": _bool,
    "image_prompt": _text(), "image_prompt_strength": _number(0, 1),
}  # fmt: skip
_FLUX2 = {**_COMMON, **_FLUX2_SAFETY, **_FLUX2_SIZE, **_inputs(8)}
_KONTEXT = {**_COMMON, **_FLUX1_SAFETY, **_inputs(4), "aspect_ratio": _ratio, "prompt_upsampling": _bool}
SCHEMAS: dict[str, dict[str, Check]] = {
    "flux-pro-1.1": _PRO,
    "flux-dev": {**_PRO, "steps": _int(1, 50), "guidance": _number(1.5, 5)},
    "flux-pro-1.1-ultra": _ULTRA,
    "flux-kontext-pro": _KONTEXT,
    "flux-kontext-max": _KONTEXT,
    "flux-2-pro": _FLUX2,
    "flux-2-pro-preview": _FLUX2,
    "flux-2-max": _FLUX2,
    "flux-2-flex": {**_FLUX2, "steps": _int(1, 50), "guidance": _number(1.5, 10), "prompt_upsampling": _bool},
    "flux-2-klein-4b": {**_COMMON, **_FLUX2_SAFETY, **_FLUX2_SIZE, **_inputs(4)},
    "flux-2-klein-9b": {**_COMMON, **_FLUX2_SAFETY, **_FLUX2_SIZE, **_inputs(4)},
}
#: Models whose schema requires a prompt (Kontext and FLUX.2).
PROMPT_REQUIRED = frozenset(name for name in SCHEMAS if name.startswith(("flux-kontext", "flux-2")))
#: Credits of one image: FLUX.1 a flat price (flux-dev's is not published: 2.5 here); FLUX.2 (first megapixel,
#: each further one, input images counted as a megapixel each), from BFL's skill notes.
FLAT_PRICES = {"flux-pro-1.1": 4.0, "flux-pro-1.1-ultra": 6.0, "flux-dev": 2.5, "flux-kontext-pro": 4.0,
               "flux-kontext-max": 8.0}  # fmt: skip
MEGAPIXEL_PRICES = {"flux-2-klein-4b": (1.4, 0.1), "flux-2-klein-9b": (1.5, 0.2), "flux-2-pro": (3.0, 1.5),
                    "flux-2-pro-preview": (3.0, 1.5), "flux-2-max": (7.0, 3.0), "flux-2-flex": (5.0, 5.0)}  # fmt: skip


def check_body(model: str, body: dict[str, Any]) -> list[dict[str, Any]] | None:
    """The 422 problems of a submit to `model` (empty when it is fine); None when there is no such endpoint."""
    schema = SCHEMAS.get(model)
    if schema is None:
        return None
    problems = [
        {"type": "extra_forbidden", "loc": ["body", name], "msg": "Extra inputs are not permitted", "input": value}
        for name, value in body.items()
        if name not in schema
    ]
    if model in PROMPT_REQUIRED and "prompt" not in body:
        problems.append({"type": "missing", "loc": ["body", "prompt"], "msg": "Field required", "input": body})
    for name, value in body.items():
        found = schema[name](value) if name in schema else None
        if found is not None:
            problems.append({"type": found[0], "loc": ["body", name], "msg": found[1], "input": value})
    width, height = body.get("width"), body.get("height")
    area = width * height if isinstance(width, int) and isinstance(height, int) else 0
    if model in MEGAPIXEL_PRICES and area > 2048 * 2048:  # "up to 4 MP" (skill notes)
        message = "Value error, width x height must be at most 4 megapixels"
        problems.append({"type": "value_error", "loc": ["body", "width"], "msg": message, "input": width})
    return problems


def price_of(model: str, body: dict[str, Any]) -> float:
    """What one task of `model` with this body costs, in credits."""
    if model in FLAT_PRICES:
        return FLAT_PRICES[model]
    first, more = MEGAPIXEL_PRICES[model]
    width, height = body.get("width") or 1024, body.get("height") or 1024
    output = max(1, math.ceil(width * height / 1_048_576))
    inputs = sum(1 for name in body if name.startswith("input_image"))
    return round(first + (output - 1) * more + inputs * more, 2)
