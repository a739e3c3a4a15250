"""The /imagine and /edit commands are built from a provider's data: a new provider needs no change in the cog."""

from __future__ import annotations

from typing import Any

import discord
import pytest
from discord import app_commands

from cogs.images import images_cog
from fluxbot import catalog


def parameters(command: app_commands.Command[Any, ..., Any]) -> dict[str, app_commands.Parameter]:
    return {p.name: p for p in command.parameters}


def test_a_third_provider_gets_its_own_options_from_its_data_alone() -> None:
    third = catalog.ProviderInfo(
        "third",
        "Third Images",
        catalog.MODELS[:1] + catalog.KIE_MODELS[:1],
        options=(
            catalog.Option("look", "The look of the image", str, choices=("vivid", "natural")),
            catalog.Option("steps", "Diffusion steps", int, ranges=(("generate", 1, 50), ("edit", 1, 20))),
            catalog.Option("raw", "Skip post-processing", bool),
        ),
        max_count=2,
    )
    cog = images_cog(third)
    commands = {c.name: c for c in cog.__cog_app_commands__}
    assert set(commands) == {"imagine", "edit"}
    imagine, edit = commands["imagine"], commands["edit"]
    assert isinstance(imagine, app_commands.Command)
    assert isinstance(edit, app_commands.Command)

    given = parameters(imagine)
    assert list(given) == ["prompt", "model", "size", "count", "style", "look", "steps", "raw"]
    assert [c.value for c in given["model"].choices] == ["flux-dev", "flux-kontext-pro"]
    assert (given["count"].min_value, given["count"].max_value) == (1, 2), "count follows max_count"
    assert [c.value for c in given["look"].choices] == ["vivid", "natural"]
    assert given["style"].autocomplete, "the bot's own style presets, whatever the provider"
    assert (given["steps"].min_value, given["steps"].max_value, given["steps"].required) == (1, 50, False)
    assert given["raw"].type is discord.AppCommandOptionType.boolean
    assert given["look"].description == "The look of the image"

    changed = parameters(edit)
    assert list(changed) == ["image", "prompt", "model", "size", "style", "look", "steps", "raw"]
    assert [c.value for c in changed["model"].choices] == ["flux-kontext-pro"]
    assert changed["steps"].max_value == 20, "a number option's range is per action"


def test_the_shipped_providers_get_the_commands_they_had() -> None:
    acedata = {c.name: c for c in images_cog(catalog.PROVIDERS["acedata"]).__cog_app_commands__}
    kie = {c.name: c for c in images_cog(catalog.PROVIDERS["kie"]).__cog_app_commands__}
    assert isinstance(acedata["imagine"], app_commands.Command)
    assert isinstance(kie["imagine"], app_commands.Command)
    assert list(parameters(acedata["imagine"])) == ["prompt", "model", "size", "count", "style"]
    options = ["output_format", "prompt_upsampling", "safety_tolerance", "translate"]
    # Issue 14: Kie makes a job's images one task each, so it offers count like every provider.
    assert list(parameters(kie["imagine"])) == ["prompt", "model", "size", "count", "style", *options]
    assert not parameters(acedata["imagine"])["count"].required, "left out, it takes the member's default"


def test_a_provider_option_may_not_take_the_name_of_one_every_provider_has() -> None:
    clashing = catalog.ProviderInfo(
        "clash", "Clash", catalog.MODELS[:1], options=(catalog.Option("style", "The provider's own style", str),)
    )
    with pytest.raises(ValueError, match="may not be called style"):
        images_cog(clashing)
