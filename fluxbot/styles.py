"""Style presets: what makes a valid style, how many a server keeps, and how one changes a member's prompt.

A style's text joins the member's prompt as "<prompt>, <text>". A text that holds `{prompt}` says itself where the
member's prompt goes instead ("a watercolour of {prompt}, soft light"). The result must fit in PROMPT_MAX_CHARS; a
prompt that becomes too long is refused with how much shorter it must be. Which model and size a style brings, and
when, is decided with the member's defaults in `defaults.py`.
"""

from __future__ import annotations

from collections.abc import Sequence

from fluxbot import catalog, i18n
from fluxbot.catalog import ProviderInfo
from fluxbot.errors import Number
from fluxbot.i18n import N_
from fluxbot.jobs.requests import PROMPT_MAX_CHARS, InvalidRequest, check_prompt
from fluxbot.limits import Refused, Style

__all__ = ["MAX_STYLES", "NAME_MAX_CHARS", "PLACEHOLDER", "TEXT_MAX_CHARS", "Style"]

NAME_MAX_CHARS = 32
TEXT_MAX_CHARS = 500
#: Discord offers at most 25 autocomplete choices: every style of a server can be offered.
MAX_STYLES = 25
#: Where a style's text puts the member's prompt; without it the text follows the prompt.
PLACEHOLDER = "{prompt}"
_NAME_SIGNS = frozenset(" -_")
EMPTY_TEXT = N_("The style's text is empty. Describe the look it adds, e.g. `film noir, high contrast, grainy`.")
NOT_A_MODEL = N_("`{model}` is not a model of this bot's provider. Pick one of {names}.")


def style_name(typed: str) -> str:
    """A style's name as kept: spaces collapsed, lowercase; InvalidRequest unless 1-32 letters, digits, spaces,
    `-` or `_`."""
    name = " ".join(typed.split()).lower()
    if not 1 <= len(name) <= NAME_MAX_CHARS or not all(c.isalnum() or c in _NAME_SIGNS for c in name):
        shown = typed.strip()[:40] or " "
        raise InvalidRequest(
            N_(
                "`{name}` cannot be a style's name. Use 1 to {most} letters, digits, spaces, `-` or `_`, "
                "e.g. `film noir`."
            ),
            name=shown,
            most=NAME_MAX_CHARS,
        )
    return name


def new_style(
    info: ProviderInfo, name: str, text: str, model: str | None, size: str | None, *, default_model: str
) -> Style:
    """A style checked against the provider: its text like a prompt, its model the provider's, its size one that
    model takes (without a model: one the server's `default_model` takes). Raises InvalidRequest."""
    stripped = text.strip()
    if len(stripped) > TEXT_MAX_CHARS:
        raise InvalidRequest(
            N_("The style's text is {length} characters long; the limit is {limit}. Shorten it."),
            length=Number(len(stripped)),
            limit=Number(TEXT_MAX_CHARS),
        )
    try:
        cleaned = check_prompt(stripped)
    except InvalidRequest:  # within the length, only an empty text is refused
        raise InvalidRequest(EMPTY_TEXT) from None
    chosen_model = model.strip() if model and model.strip() else None
    names = catalog.model_names(info)
    if chosen_model is not None and chosen_model not in names:
        known = ", ".join(f"`{n}`" for n in names)
        raise InvalidRequest(NOT_A_MODEL, model=chosen_model[:40], names=known)
    chosen_size = None
    if size and size.strip():
        checked = catalog.get_model(info, chosen_model or default_model)
        try:
            chosen_size = checked.size_rule.normalize(size)
        except catalog.InvalidSize as exc:
            # Translators: {reason} says why a size does not fit (a whole sentence); {model} is the model's name.
            template = N_("{reason} (model `{model}`).")
            if not chosen_model:
                template = N_(
                    "{reason} (model `{model}`). Without a `model`, sizes are checked against this server's "
                    "default model."
                )
            raise InvalidRequest(template, reason=exc.message, model=checked.name) from None
    return Style(style_name(name), cleaned, chosen_model, chosen_size)


def find_style(styles: Sequence[Style], name: str) -> Style | None:
    """The style called `name` (any case, spaces as typed), or None."""
    wanted = " ".join(name.split()).casefold()
    return next((style for style in styles if style.name.casefold() == wanted), None)


def pick_style(styles: Sequence[Style], name: str) -> Style:
    """The style a member named; InvalidRequest listing this server's styles when there is none of that name."""
    style = find_style(styles, name)
    if style is not None:
        return style
    shown = name.strip()[:40]
    if not styles:
        raise InvalidRequest(N_("There are no styles here, so `{style}` is not one. Leave `style` out."), style=shown)
    listed = ", ".join(f"`{s.name}`" for s in styles)
    raise InvalidRequest(
        N_("`{style}` is not a style here. Pick one of {styles}, or leave `style` out."), style=shown, styles=listed
    )


def with_style(styles: Sequence[Style], style: Style) -> tuple[Style, ...]:
    """`styles` with `style` added at the end; Refused when its name is taken or the server has MAX_STYLES."""
    if find_style(styles, style.name) is not None:
        raise Refused(
            N_(
                "There is a style called `{style}` already. Remove it first with `/fluxadmin style remove`, "
                "or pick another name."
            ),
            style=style.name,
        )
    if len(styles) >= MAX_STYLES:
        raise Refused(N_("This server has {most} styles, the most it may have. Remove one first."), most=MAX_STYLES)
    return (*styles, style)


def without_style(styles: Sequence[Style], name: str) -> tuple[Style, ...]:
    """`styles` without the one called `name`; Refused (listing them) when there is none of that name."""
    style = find_style(styles, name)
    if style is None:
        shown = name.strip()[:40]
        if not styles:
            raise Refused(N_("`{style}` is not a style here. This server's styles: none."), style=shown)
        listed = ", ".join(f"`{s.name}`" for s in styles)
        raise Refused(N_("`{style}` is not a style here. This server's styles: {styles}."), style=shown, styles=listed)
    return tuple(s for s in styles if s is not style)


def styled_prompt(prompt: str, style: Style | None) -> str:
    """The prompt that is sent: the member's, checked, with the style's text; InvalidRequest when too long."""
    text = check_prompt(prompt)
    if style is None:
        return text
    if PLACEHOLDER in style.text:
        combined = style.text.replace(PLACEHOLDER, text)
    else:
        # "a cat." or "a cat," and the style read as one list: "a cat, film noir".
        combined = f"{text.rstrip(' ,;.') or text}, {style.text}"
    if len(combined) > PROMPT_MAX_CHARS:
        added = len(combined) - len(text)
        raise InvalidRequest(
            N_(
                "With the style `{style}` (it adds {added} characters) the prompt would be {length} characters "
                "long; the limit is {limit}. Shorten your prompt to {most} characters or fewer, or leave the style out."
            ),
            style=style.name,
            added=Number(added),
            length=Number(len(combined)),
            limit=Number(PROMPT_MAX_CHARS),
            most=Number(max(PROMPT_MAX_CHARS - added, 0)),
        )
    return combined


def suggestions(styles: Sequence[Style], typed: str) -> list[Style]:
    """Styles to offer while a member types `typed`: names that start with it first, then names that contain it."""
    wanted = " ".join(typed.split()).casefold()
    starting = [s for s in styles if s.name.casefold().startswith(wanted)]
    containing = [s for s in styles if wanted in s.name.casefold() and s not in starting]
    return [*starting, *containing][:MAX_STYLES]


def describe(style: Style, locale: i18n.LocaleValue = None) -> str:
    """A style in one line, in `locale`: its text (as the server wrote it), then its model and size when it has
    them."""
    extras = [
        model_words(locale, style.model) if style.model else "",
        size_words(locale, style.size) if style.size else "",
    ]
    extra = ", ".join(e for e in extras if e)
    return f"{style.text}" + (f" ({extra})" if extra else "")


def model_words(locale: i18n.LocaleValue, model: str) -> str:
    """A model as one part of a list of choices (a style's, a member's defaults), in `locale`."""
    # Translators: one part of a list of choices, e.g. "model `flux-dev`, size `1024x768`, count 2".
    return i18n.text(locale, "model `{model}`", model=model)


def size_words(locale: i18n.LocaleValue, size: str) -> str:
    """A size as one part of a list of choices, in `locale`."""
    # Translators: one part of a list of choices, e.g. "model `flux-dev`, size `1024x768`, count 2".
    return i18n.text(locale, "size `{size}`", size=size)
