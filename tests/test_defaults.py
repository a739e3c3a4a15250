"""Members' defaults on their own: what a command uses for the options left out, and every fallback."""

from __future__ import annotations

from dataclasses import replace

import pytest

from fluxbot import catalog
from fluxbot.defaults import (
    Chosen,
    MemberDefaults,
    Typed,
    changed_defaults,
    choose,
    describe_chosen,
    describe_defaults,
    notes_message,
)
from fluxbot.jobs.requests import InvalidRequest
from fluxbot.limits import GuildSettings, Limits, Policy, Style, policy_for

ACE = catalog.PROVIDERS["acedata"]
KIE = catalog.PROVIDERS["kie"]
#: A provider that makes one image a job (Kie did before issue 14): the fallbacks for counts above it.
SINGLE = replace(KIE, max_count=1)
NOIR = Style("noir", "black and white", "flux-pro-1.1", "1344x768")
PLAIN = Style("plain", "simple shapes")
ULTRA = Style("ultra", "vast", "flux-pro-1.1-ultra", "21:9")
KONTEXT = Style("kontext", "crisp", "flux-kontext-max", "16:9")
MINE = MemberDefaults(model="flux-pro", size="768x1024", count=3, style="plain")


def here(provider: catalog.ProviderInfo = ACE, **settings: object) -> Policy:
    chosen = GuildSettings(**settings)  # type: ignore[arg-type]
    default = provider.models[0].name
    return policy_for(chosen, provider=provider, defaults=Limits(), default_model=default, channel_ids=[], role_ids=[])


def test_without_defaults_or_options_the_server_decides() -> None:
    assert choose("generate", Typed(), MemberDefaults(), here(default_model="flux-pro"), ACE) == Chosen(
        "flux-pro", None, 1, None
    )
    assert choose("edit", Typed(), MemberDefaults(), here(), ACE) == Chosen("flux-kontext-pro", None, 1, None)


def test_the_members_defaults_fill_what_was_left_out() -> None:
    chosen = choose("generate", Typed(), MINE, here(styles=(PLAIN, NOIR)), ACE)
    assert chosen == Chosen("flux-pro", "768x1024", 3, PLAIN)
    assert chosen.notes == ()


def test_what_was_typed_wins_over_everything() -> None:
    typed = Typed(model="flux-dev", size="1024x1024", count=1, style="noir")
    assert choose("generate", typed, MINE, here(styles=(PLAIN, NOIR)), ACE) == Chosen("flux-dev", "1024x1024", 1, NOIR)


def test_the_styles_model_and_size_come_before_the_members_defaults() -> None:
    chosen = choose("generate", Typed(style="NOIR"), MINE, here(styles=(PLAIN, NOIR)), ACE)
    assert chosen == Chosen("flux-pro-1.1", "1344x768", 3, NOIR), "the count is the member's: the style has none"
    plain = choose("generate", Typed(style="plain"), MINE, here(styles=(PLAIN, NOIR)), ACE)
    assert (plain.model, plain.size) == ("flux-pro", "768x1024"), "a style without a model or size leaves them"
    typed_model = choose("generate", Typed(model="flux-pro-1.1-ultra", style="ultra"), MINE, here(styles=(ULTRA,)), ACE)
    assert (typed_model.model, typed_model.size, typed_model.notes) == ("flux-pro-1.1-ultra", "21:9", ())


def test_a_default_model_the_server_does_not_enable_falls_back_with_a_note() -> None:
    policy = here(allowed_models=("flux-dev", "flux-pro-1.1"), default_model="flux-dev", styles=(PLAIN,))
    chosen = choose("generate", Typed(), MINE, policy, ACE)
    assert chosen.model == "flux-dev"
    assert chosen.size == "768x1024", "the default size still fits the model used"
    assert chosen.notes == ("Your default model `flux-pro` is not enabled on this server, so `flux-dev` was used.",)


def test_a_default_model_the_provider_lacks_falls_back_with_a_note() -> None:
    chosen = choose("generate", Typed(), MemberDefaults(model="flux-dev"), here(KIE), KIE)
    assert chosen.model == "flux-kontext-pro"
    assert chosen.notes == (
        "Your default model `flux-dev` is not a model of this bot's provider, so `flux-kontext-pro` was used.",
    )


def test_a_style_this_server_lacks_falls_back_to_none_with_a_note() -> None:
    chosen = choose("generate", Typed(), MemberDefaults(style="sepia"), here(styles=(PLAIN,)), ACE)
    assert chosen.style is None
    assert chosen.notes == ("Your default style `sepia` is not a style here, so no style was used.",)


def test_a_style_typed_that_the_server_lacks_is_refused() -> None:
    with pytest.raises(InvalidRequest, match=r"`sepia` is not a style here. Pick one of `plain`"):
        choose("generate", Typed(style="sepia"), MemberDefaults(), here(styles=(PLAIN,)), ACE)


def test_a_default_size_the_model_does_not_take_falls_back_with_a_note() -> None:
    defaults = MemberDefaults(model="flux-pro-1.1-ultra", size="768x1024")
    chosen = choose("generate", Typed(), defaults, here(), ACE)
    assert (chosen.model, chosen.size) == ("flux-pro-1.1-ultra", None)
    assert chosen.notes == ("Your default size `768x1024` does not fit `flux-pro-1.1-ultra`, so `1:1` was used.",), (
        "None: the model's own default, named in the note"
    )
    typed = choose("generate", Typed(model="flux-pro-1.1-ultra"), MemberDefaults(size="1024x768"), here(), ACE)
    assert typed.notes == ("Your default size `1024x768` does not fit `flux-pro-1.1-ultra`, so `1:1` was used.",)


def test_a_default_count_above_the_providers_falls_back_with_a_note() -> None:
    chosen = choose("generate", Typed(), MemberDefaults(count=4), here(SINGLE), SINGLE)
    assert chosen.count == 1
    assert chosen.notes == (
        "Your default count `4` is more than this bot's provider makes in one job (1), so 1 was used.",
    )


def test_a_styles_model_the_server_no_longer_enables_gives_way_to_the_members_default() -> None:
    policy = here(allowed_models=("flux-dev", "flux-pro"), default_model="flux-dev", styles=(NOIR,))
    chosen = choose("generate", Typed(style="noir"), MINE, policy, ACE)
    assert chosen.model == "flux-pro", "the next in the order: the member's default"
    assert chosen.size == "1344x768", "the style's size fits flux-pro too"
    assert chosen.notes == (
        "The style `noir`'s model `flux-pro-1.1` is not enabled on this server, so `flux-pro` was used.",
    )
    closed = here(styles=(ULTRA,), allowed_models=("flux-dev",))
    ratio = choose("generate", Typed(style="ultra"), MemberDefaults(), closed, ACE)
    assert (ratio.model, ratio.size) == ("flux-dev", None)
    assert ratio.notes == (
        "The style `ultra`'s model `flux-pro-1.1-ultra` is not enabled on this server, so `flux-dev` was used.",
        "The style `ultra`'s size `21:9` does not fit `flux-dev`, so `1024x1024` was used.",
    )


def test_an_edit_keeps_the_images_shape_and_takes_only_models_that_can_edit() -> None:
    policy = here(styles=(NOIR, KONTEXT))
    noir = choose("edit", Typed(style="noir"), MINE, policy, ACE)
    assert noir == Chosen("flux-kontext-pro", None, 1, NOIR), "no note: those models simply do not edit"
    kontext = choose("edit", Typed(style="kontext"), MINE, policy, ACE)
    assert (kontext.model, kontext.size, kontext.notes) == ("flux-kontext-max", None, ()), "no style size for edits"
    editor = choose("edit", Typed(), MemberDefaults(model="flux-kontext-max", size="16:9"), policy, ACE)
    assert (editor.model, editor.size) == ("flux-kontext-max", None)
    assert choose("edit", Typed(size="4:3"), MINE, policy, ACE).size == "4:3", "a size typed applies"
    closed = here(allowed_models=("flux-dev", "flux-kontext-pro"), styles=(KONTEXT,))
    refused = choose("edit", Typed(style="kontext"), MemberDefaults(), closed, ACE)
    assert refused.model == "flux-kontext-pro"
    assert refused.notes == (
        "The style `kontext`'s model `flux-kontext-max` is not enabled on this server, so `flux-kontext-pro` was used.",
    )


def test_defaults_are_checked_against_the_provider_when_set() -> None:
    assert changed_defaults(MemberDefaults(), ACE, model="flux-pro", size="768 x 1024", count=3, style="Plain") == MINE
    assert changed_defaults(MINE, ACE, count=2) == MemberDefaults("flux-pro", "768x1024", 2, "plain"), "only the given"
    assert changed_defaults(MINE, ACE, reset=True) == MemberDefaults()
    assert changed_defaults(MINE, ACE, reset=True, count=2) == MemberDefaults(count=2)
    assert changed_defaults(MemberDefaults(), ACE, size="16:9").size == "16:9", "no default model: any model's sizes"
    assert changed_defaults(MemberDefaults(), ACE, style="not here").style == "not here", "other servers may have it"

    with pytest.raises(InvalidRequest, match=r"`dall-e` is not a model of this bot's provider. Pick one of `flux-dev`"):
        changed_defaults(MINE, ACE, model="dall-e")
    with pytest.raises(InvalidRequest, match=r"\(your default model `flux-pro`\)"):
        changed_defaults(MINE, ACE, size="16:9")
    with pytest.raises(InvalidRequest, match=r"is not a size any model here takes"):
        changed_defaults(MemberDefaults(), ACE, size="huge")
    with pytest.raises(InvalidRequest, match=r"`count` must be between 1 and 1 with this bot's provider"):
        changed_defaults(MemberDefaults(), SINGLE, count=2)
    with pytest.raises(InvalidRequest, match=r"cannot be a style's name"):
        changed_defaults(MemberDefaults(), ACE, style="no/slashes")


def test_defaults_are_stored_as_json_and_read_back_leniently() -> None:
    assert MemberDefaults.from_json(MINE.to_json()) == MINE
    assert MemberDefaults(count=2).to_json() == '{"count": 2}', "only what was chosen"
    assert MemberDefaults.from_json('{"model": 5, "count": true, "style": "x", "future": 1}') == MemberDefaults(
        style="x"
    )
    assert MemberDefaults().empty
    assert not MemberDefaults(count=1).empty


def test_the_words_members_read() -> None:
    assert describe_defaults(MINE) == "model `flux-pro`, size `768x1024`, count 3, style `plain`"
    assert describe_defaults(MemberDefaults()).startswith("none chosen")
    shown = describe_chosen(Chosen("flux-dev", None, 1, None), ACE)
    assert shown == "model `flux-dev`, size `1024x1024`, count 1, no style"
    message = notes_message(["Your default style `sepia` is not a style here, so no style was used."])
    assert message == (
        "Some of your choices were not used here:\n"
        "• Your default style `sepia` is not a style here, so no style was used.\n"
        "See or change your defaults with `/settings`."
    )
