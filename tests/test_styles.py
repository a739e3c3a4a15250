"""Style presets on their own: what a valid style is, how many a server keeps, how one changes a prompt."""

from __future__ import annotations

import json

import pytest

from fluxbot import catalog
from fluxbot.jobs.requests import PROMPT_MAX_CHARS, InvalidRequest
from fluxbot.limits import GuildSettings, Refused, Style
from fluxbot.styles import (
    MAX_STYLES,
    find_style,
    new_style,
    pick_style,
    style_name,
    styled_prompt,
    suggestions,
    with_style,
    without_style,
)

ACE = catalog.PROVIDERS["acedata"]
KIE = catalog.PROVIDERS["kie"]
NOIR = Style("film noir", "black and white, high contrast", "flux-pro-1.1", "1344x768")
WATERCOLOUR = Style("watercolour", "a watercolour of {prompt}, soft paper texture")


def style(name: str = "noir", text: str = "high contrast", model: str | None = None, size: str | None = None) -> Style:
    return new_style(ACE, name, text, model, size, default_model="flux-dev")


def test_a_name_is_kept_in_lowercase_with_its_spaces_collapsed() -> None:
    assert style_name("  Film   NOIR ") == "film noir"
    assert style_name("retro-80s_look") == "retro-80s_look"
    assert style_name("Ölmalerei") == "ölmalerei", "letters of any alphabet"
    assert style_name("x" * 32) == "x" * 32


@pytest.mark.parametrize("name", ["", "   ", "x" * 33, "noir!", "a/b", "<@123>", "emoji 🎨"])
def test_a_name_outside_the_rules_is_refused_with_what_to_type(name: str) -> None:
    with pytest.raises(InvalidRequest, match=r"Use 1 to 32 letters, digits, spaces, `-` or `_`"):
        style_name(name)


def test_a_style_is_checked_against_the_provider() -> None:
    made = style("Noir", "  black and white\x07, high contrast ", "flux-pro-1.1", "1344 x 768")
    assert made == Style("noir", "black and white, high contrast", "flux-pro-1.1", "1344x768"), "cleaned like a prompt"
    assert style(size="16:9", model="flux-pro-1.1-ultra").size == "16:9"
    assert style(size="1024x768").size == "1024x768", "without a model: the server's default model's sizes"

    with pytest.raises(InvalidRequest, match=r"not a model of this bot's provider. Pick one of `flux-dev`"):
        style(model="dall-e")
    with pytest.raises(InvalidRequest, match=r"model `flux-pro-1.1-ultra`"):
        style(model="flux-pro-1.1-ultra", size="1024x768")
    with pytest.raises(InvalidRequest, match=r"Without a `model`, sizes are checked against this server's default"):
        style(size="16:9")
    with pytest.raises(InvalidRequest, match=r"not a model of this bot's provider"):
        new_style(KIE, "noir", "dark", "flux-dev", None, default_model="flux-kontext-pro")


def test_a_style_text_is_one_to_five_hundred_visible_characters() -> None:
    assert len(style(text="x" * 500).text) == 500
    with pytest.raises(InvalidRequest, match=r"501 characters long; the limit is 500"):
        style(text="x" * 501)
    for empty in ("", "   ", "\u200b\u3164"):
        with pytest.raises(InvalidRequest, match=r"The style's text is empty"):
            style(text=empty)


def test_names_are_unique_in_any_case_and_a_server_keeps_at_most_twenty_five() -> None:
    styles = with_style((), NOIR)
    assert styles == (NOIR,)
    with pytest.raises(Refused, match=r"There is a style called `film noir` already. Remove it first"):
        with_style(styles, Style("film noir", "other"))
    assert find_style(styles, "FILM  Noir") == NOIR
    full = tuple(Style(f"style {n}", "text") for n in range(MAX_STYLES))
    with pytest.raises(Refused, match=r"This server has 25 styles, the most it may have. Remove one first."):
        with_style(full, Style("one more", "text"))
    assert without_style((NOIR, WATERCOLOUR), "Film Noir") == (WATERCOLOUR,)
    with pytest.raises(Refused, match=r"`sepia` is not a style here. This server's styles: `film noir`, `watercolour`"):
        without_style((NOIR, WATERCOLOUR), "sepia")


def test_an_unknown_style_a_member_typed_is_refused_with_the_styles_there_are() -> None:
    assert pick_style((NOIR, WATERCOLOUR), "Watercolour") == WATERCOLOUR
    with pytest.raises(InvalidRequest, match=r"`sepia` is not a style here. Pick one of `film noir`, `watercolour`"):
        pick_style((NOIR, WATERCOLOUR), "sepia")
    with pytest.raises(InvalidRequest, match=r"There are no styles here, so `sepia` is not one. Leave `style` out."):
        pick_style((), "sepia")


def test_the_style_joins_the_prompt_or_takes_it_where_it_says() -> None:
    assert styled_prompt("a cat", None) == "a cat"
    assert styled_prompt(" a cat ", NOIR) == "a cat, black and white, high contrast"
    assert styled_prompt("a cat.", NOIR) == "a cat, black and white, high contrast", "no '., '"
    assert styled_prompt("a cat,", NOIR) == "a cat, black and white, high contrast"
    assert styled_prompt("a cat", WATERCOLOUR) == "a watercolour of a cat, soft paper texture"
    with pytest.raises(InvalidRequest, match=r"The prompt is empty"):
        styled_prompt("  ", NOIR)


def test_a_prompt_the_style_makes_too_long_is_refused_with_how_short_it_must_be() -> None:
    added = len(", black and white, high contrast")
    longest = "x" * (PROMPT_MAX_CHARS - added)
    assert len(styled_prompt(longest, NOIR)) == PROMPT_MAX_CHARS
    with pytest.raises(InvalidRequest) as refused:
        styled_prompt(longest + "x", NOIR)
    assert str(refused.value) == (
        f"With the style `film noir` (it adds {added} characters) the prompt would be 1,501 characters long; the "
        f"limit is 1,500. Shorten your prompt to {PROMPT_MAX_CHARS - added:,} characters or fewer, or leave the "
        "style out."
    )


def test_autocomplete_offers_names_that_start_with_the_typed_text_first() -> None:
    styles = (Style("dark noir", "x"), NOIR, WATERCOLOUR)
    assert [s.name for s in suggestions(styles, "")] == ["dark noir", "film noir", "watercolour"]
    assert [s.name for s in suggestions(styles, "NO")] == ["dark noir", "film noir"]
    assert [s.name for s in suggestions(styles, "film")] == ["film noir"]
    many = tuple(Style(f"s{n}", "x") for n in range(30))
    assert len(suggestions(many, "")) == 25, "Discord takes at most 25 choices"


def test_styles_are_kept_in_the_server_settings_and_old_settings_have_none() -> None:
    settings = GuildSettings(styles=(NOIR, WATERCOLOUR))
    stored = json.loads(settings.to_json())
    assert stored["styles"][0] == {
        "name": "film noir", "text": "black and white, high contrast", "model": "flux-pro-1.1", "size": "1344x768"
    }  # fmt: skip
    assert GuildSettings.from_json(settings.to_json()) == settings
    assert GuildSettings.from_json('{"cooldown_seconds": 5}').styles == (), "settings saved before styles existed"
    newer = '{"styles": [{"name": "a", "text": "b", "weight": 2}]}'
    assert GuildSettings.from_json(newer).styles == (Style("a", "b"),), "keys of a newer version are ignored"
