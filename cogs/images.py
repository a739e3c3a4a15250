"""/imagine and /edit: option parsing and replies; the job service does the rest.

The commands are built from the active provider's data (`catalog.ProviderInfo`) when the extension loads: its
models are the choices, `count` is offered when it makes several images a job, and the options only it has (Kie.ai:
output format, prompt upsampling, safety tolerance, translation) are offered, with their values, only when it has
them. `style` autocompletes the server's style presets; options left out take the style's, the member's defaults
or the server's (`defaults.choose`, applied by `FluxBot.run_member_job`).
"""

from __future__ import annotations

import inspect
import logging
from collections.abc import Callable, Coroutine
from dataclasses import replace
from typing import Any

import discord
from discord import app_commands
from discord.ext import commands

from cogs.choices import style_choices
from fluxbot import catalog
from fluxbot.bot import FluxBot, attachment_info
from fluxbot.defaults import Chosen, Typed
from fluxbot.jobs.requests import PROMPT_MAX_CHARS, prepare_edit, prepare_imagine
from fluxbot.limits import Policy, Refused
from fluxbot.providers.base import JobRequest, OptionValue
from fluxbot.styles import find_style, styled_prompt

log = logging.getLogger(__name__)

DESCRIBE_IMAGINE = {
    "prompt": f"What to draw (up to {PROMPT_MAX_CHARS:,} characters)",
    "model": "Which Flux model to use",
    "size": "WIDTHxHEIGHT or an aspect ratio, depending on the model (suggestions follow the model)",
    "count": "How many images (1-4)",
    "style": "One of this server's style presets: its look is added to your prompt",
}
DESCRIBE_EDIT = {
    "image": "The image to edit (PNG, JPEG or WebP)",
    "prompt": f"What to change (up to {PROMPT_MAX_CHARS:,} characters)",
    "model": "Which Kontext model to use",
    "size": "Aspect ratio of the result (default: closest to the image)",
    "style": "One of this server's style presets: its look is added to your prompt",
}
#: The options every provider's /imagine and /edit have; a provider's own options may not take these names.
FIXED_OPTIONS = ("image", "prompt", "model", "size", "count", "style")
Choices = list[app_commands.Choice[str]]


def _choices(models: tuple[catalog.Model, ...]) -> Choices:
    return [app_commands.Choice(name=f"{m.label} · {m.name}", value=m.name) for m in models]


class ImagesBase(commands.Cog, name="Images"):
    """What /imagine and /edit do, whichever options the provider has."""

    def __init__(self, bot: FluxBot) -> None:
        self.bot = bot

    async def imagine_job(
        self, interaction: discord.Interaction, prompt: str, typed: Typed, options: dict[str, OptionValue | None]
    ) -> None:
        """Check the options and start the job."""
        info = self.bot.settings.provider_info

        def build(policy: Policy, chosen: Chosen) -> JobRequest:
            text = styled_prompt(prompt, chosen.style)
            request = prepare_imagine(info, text, chosen.model, chosen.size, chosen.count, options)
            return replace(request, style=chosen.style.name if chosen.style else None)

        await self.bot.run_member_job(interaction, "generate", typed, build)

    async def edit_job(
        self,
        interaction: discord.Interaction,
        image: discord.Attachment,
        prompt: str,
        typed: Typed,
        options: dict[str, OptionValue | None],
    ) -> None:
        """Check the options and the attachment and start the edit."""
        info, attachment = self.bot.settings.provider_info, attachment_info(image)

        def build(policy: Policy, chosen: Chosen) -> JobRequest:
            text = styled_prompt(prompt, chosen.style)
            request = prepare_edit(info, text, chosen.model, chosen.size, attachment, options)
            return replace(request, style=chosen.style.name if chosen.style else None)

        await self.bot.run_member_job(interaction, "edit", typed, build)

    async def style_names(self, interaction: discord.Interaction, current: str) -> Choices:
        """The style presets of the server whose rules apply here (in a DM too)."""
        return await style_choices(self.bot, interaction, current)

    async def imagine_size(self, interaction: discord.Interaction, current: str) -> Choices:
        """/imagine's size suggestions."""
        return await self.sizes_for(interaction, current, edit=False)

    async def edit_size(self, interaction: discord.Interaction, current: str) -> Choices:
        """/edit's size suggestions."""
        return await self.sizes_for(interaction, current, edit=True)

    async def sizes_for(self, interaction: discord.Interaction, current: str, *, edit: bool) -> Choices:
        """Sizes valid for the model picked so far (or the one the style picked, or the command would use)."""
        model = getattr(interaction.namespace, "model", None)
        if not model:
            try:
                policy = await self.bot.policies.policy(interaction)
                style = find_style(policy.styles, str(getattr(interaction.namespace, "style", None) or ""))
                model = policy.edit_model if edit else policy.default_model
                if style is not None and style.model and not edit:
                    model = style.model
            except Refused:
                model = catalog.DEFAULT_EDIT_MODEL if edit else self.bot.settings.default_model
        return [
            app_commands.Choice(name=s, value=s)
            for s in catalog.size_suggestions(self.bot.settings.provider_info, model, current)
        ]


def images_cog(info: catalog.ProviderInfo) -> type[ImagesBase]:
    """The Images cog for a provider, built from its data: its models as choices, `count` when it makes several
    images a job, and the options only it has. A new provider needs no change here."""
    clashing = [option.name for option in info.options if option.name in FIXED_OPTIONS]
    if clashing:
        raise ValueError(f"{info.name}: provider options may not be called {', '.join(clashing)}")
    models, editors = _choices(info.models), _choices(tuple(m for m in info.models if m.can_edit))
    imagine_options = [_parameter(option, "generate") for option in info.options]
    edit_options = [_parameter(option, "edit") for option in info.options]
    describe_options = {option.name: option.description for option in info.options}
    option_choices = {
        option.name: [app_commands.Choice(name=value, value=value) for value in option.choices]
        for option in info.options
        if option.choices
    }
    most = min(4, info.max_count)
    count = [] if info.max_count <= 1 else [_param("count", app_commands.Range[int, 1, most] | None, None)]
    style = _param("style", str | None, None)
    describe_imagine = {k: v for k, v in DESCRIBE_IMAGINE.items() if k != "count" or count}

    async def imagine(self: ImagesBase, interaction: discord.Interaction, **values: Any) -> None:
        """Generate images from a prompt."""
        prompt = values.pop("prompt")
        await self.imagine_job(interaction, prompt, _typed(values), values)

    async def edit(self: ImagesBase, interaction: discord.Interaction, **values: Any) -> None:
        """Edit an attached image."""
        image, prompt = values.pop("image"), values.pop("prompt")
        await self.edit_job(interaction, image, prompt, _typed(values), values)

    imagine_command = _command(
        imagine,
        "Create images from a text prompt with Flux",
        [_param("prompt", str), _param("model", str | None, None), _param("size", str | None, None), *count, style],
        imagine_options,
        describe={**describe_imagine, **describe_options},
        choices={"model": models, **option_choices},
    )
    edit_command = _command(
        edit,
        "Edit an attached image with a prompt (Flux Kontext)",
        [
            _param("image", discord.Attachment),
            _param("prompt", str),
            _param("model", str | None, None),
            _param("size", str | None, None),
            style,
        ],
        edit_options,
        describe={**DESCRIBE_EDIT, **describe_options},
        choices={"model": editors, **option_choices},
    )
    imagine_command.autocomplete("size")(ImagesBase.imagine_size)
    edit_command.autocomplete("size")(ImagesBase.edit_size)
    imagine_command.autocomplete("style")(ImagesBase.style_names)
    edit_command.autocomplete("style")(ImagesBase.style_names)
    return type("Images", (ImagesBase,), {"imagine": imagine_command, "edit": edit_command})


def _typed(values: dict[str, Any]) -> Typed:
    """The fixed options a member typed, taken out of `values` (what is left are the provider's own)."""
    model, size, count, style = (values.pop(name, None) for name in ("model", "size", "count", "style"))
    return Typed(model=model, size=size, count=count, style=style)


def _param(name: str, annotation: Any, default: Any = inspect.Parameter.empty) -> inspect.Parameter:
    return inspect.Parameter(name, inspect.Parameter.KEYWORD_ONLY, default=default, annotation=annotation)


def _parameter(option: catalog.Option, action: str) -> inspect.Parameter:
    """A provider option as a command parameter: optional, typed, a number range for this action."""
    limits = option.range_for(action)
    kind: Any = app_commands.Range[int, limits[0], limits[1]] if option.kind is int and limits else option.kind
    return _param(option.name, kind | None, None)


def _command(
    run: Callable[..., Coroutine[Any, Any, None]],
    description: str,
    fixed: list[inspect.Parameter],
    options: list[inspect.Parameter],
    *,
    describe: dict[str, str],
    choices: dict[str, Choices],
) -> app_commands.Command[Any, ..., None]:
    """A slash command whose options are given as data; discord.py reads them from the callback's signature."""
    interaction = inspect.Parameter(
        "interaction", inspect.Parameter.POSITIONAL_OR_KEYWORD, annotation=discord.Interaction
    )
    own = inspect.Parameter("self", inspect.Parameter.POSITIONAL_OR_KEYWORD)
    run.__signature__ = inspect.Signature([own, interaction, *fixed, *options])  # type: ignore[attr-defined]
    run.__qualname__ = f"Images.{run.__name__}"  # a method: discord.py then passes the cog as `self`
    app_commands.describe(**describe)(run)
    app_commands.choices(**choices)(run)
    return app_commands.command(name=run.__name__, description=description)(run)


async def setup(bot: commands.Bot) -> None:
    """Load the cog for the active provider (discord.py extension entry point)."""
    assert isinstance(bot, FluxBot)
    await bot.add_cog(images_cog(bot.settings.provider_info)(bot))
