"""/imagine and /edit: option parsing and replies; the job service does the rest.

The commands are built from the active provider's data (`catalog.ProviderInfo`) when the extension loads: its
models are the choices, `count` is offered when it makes several images a job, and the options only it has (Kie.ai:
output format, prompt upsampling, safety tolerance, translation) are offered, with their values, only when it has
them.
"""

from __future__ import annotations

import inspect
import logging
from collections.abc import Callable, Coroutine
from typing import Any

import discord
from discord import app_commands
from discord.ext import commands

from fluxbot import catalog
from fluxbot.bot import FluxBot, attachment_info
from fluxbot.jobs.requests import PROMPT_MAX_CHARS, prepare_edit, prepare_imagine
from fluxbot.limits import Refused
from fluxbot.providers.base import OptionValue

log = logging.getLogger(__name__)

DESCRIBE_IMAGINE = {
    "prompt": f"What to draw (up to {PROMPT_MAX_CHARS:,} characters)",
    "model": "Which Flux model to use",
    "size": "WIDTHxHEIGHT or an aspect ratio, depending on the model (suggestions follow the model)",
    "count": "How many images (1-4)",
}
DESCRIBE_EDIT = {
    "image": "The image to edit (PNG, JPEG or WebP)",
    "prompt": f"What to change (up to {PROMPT_MAX_CHARS:,} characters)",
    "model": "Which Kontext model to use",
    "size": "Aspect ratio of the result (default: closest to the image)",
}
Choices = list[app_commands.Choice[str]]


def _choices(models: tuple[catalog.Model, ...]) -> Choices:
    return [app_commands.Choice(name=f"{m.label} · {m.name}", value=m.name) for m in models]


class ImagesBase(commands.Cog, name="Images"):
    """What /imagine and /edit do, whichever options the provider has."""

    def __init__(self, bot: FluxBot) -> None:
        self.bot = bot

    async def imagine_job(
        self,
        interaction: discord.Interaction,
        prompt: str,
        model: str | None,
        size: str | None,
        count: int,
        options: dict[str, OptionValue | None],
    ) -> None:
        """Check the options and start the job."""
        await self.bot.run_job(
            interaction,
            lambda policy: prepare_imagine(
                self.bot.settings.provider_info, prompt, model or policy.default_model, size, count, options
            ),
        )

    async def edit_job(
        self,
        interaction: discord.Interaction,
        image: discord.Attachment,
        prompt: str,
        model: str | None,
        size: str | None,
        options: dict[str, OptionValue | None],
    ) -> None:
        """Check the options and the attachment and start the edit."""
        info = attachment_info(image)
        await self.bot.run_job(
            interaction,
            lambda policy: prepare_edit(
                self.bot.settings.provider_info, prompt, model or policy.edit_model, size, info, options
            ),
        )

    async def imagine_size(self, interaction: discord.Interaction, current: str) -> Choices:
        """/imagine's size suggestions."""
        return await self.sizes_for(interaction, current, edit=False)

    async def edit_size(self, interaction: discord.Interaction, current: str) -> Choices:
        """/edit's size suggestions."""
        return await self.sizes_for(interaction, current, edit=True)

    async def sizes_for(self, interaction: discord.Interaction, current: str, *, edit: bool) -> Choices:
        """Sizes valid for the model picked so far (or the one the command would use)."""
        model = getattr(interaction.namespace, "model", None)
        if not model:
            try:
                policy = await self.bot.policies.policy(interaction)
                model = policy.edit_model if edit else policy.default_model
            except Refused:
                model = catalog.DEFAULT_EDIT_MODEL if edit else self.bot.settings.default_model
        return [
            app_commands.Choice(name=s, value=s)
            for s in catalog.size_suggestions(self.bot.settings.provider_info, model, current)
        ]


def images_cog(info: catalog.ProviderInfo) -> type[ImagesBase]:
    """The Images cog for a provider, built from its data: its models as choices, `count` when it makes several
    images a job, and the options only it has. A new provider needs no change here."""
    models, editors = _choices(info.models), _choices(tuple(m for m in info.models if m.can_edit))
    imagine_options = [_parameter(option, "generate") for option in info.options]
    edit_options = [_parameter(option, "edit") for option in info.options]
    describe_options = {option.name: option.description for option in info.options}
    option_choices = {
        option.name: [app_commands.Choice(name=value, value=value) for value in option.choices]
        for option in info.options
        if option.choices
    }
    count = [] if info.max_count <= 1 else [_param("count", app_commands.Range[int, 1, min(4, info.max_count)], 1)]
    describe_imagine = {k: v for k, v in DESCRIBE_IMAGINE.items() if k != "count" or count}

    async def imagine(self: ImagesBase, interaction: discord.Interaction, **values: Any) -> None:
        """Generate images from a prompt."""
        prompt, model, size = values.pop("prompt"), values.pop("model", None), values.pop("size", None)
        await self.imagine_job(interaction, prompt, model, size, values.pop("count", 1) or 1, values)

    async def edit(self: ImagesBase, interaction: discord.Interaction, **values: Any) -> None:
        """Edit an attached image."""
        image, prompt = values.pop("image"), values.pop("prompt")
        await self.edit_job(interaction, image, prompt, values.pop("model", None), values.pop("size", None), values)

    imagine_command = _command(
        imagine,
        "Create images from a text prompt with Flux",
        [_param("prompt", str), _param("model", str | None, None), _param("size", str | None, None), *count],
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
        ],
        edit_options,
        describe={**DESCRIBE_EDIT, **describe_options},
        choices={"model": editors, **option_choices},
    )
    imagine_command.autocomplete("size")(ImagesBase.imagine_size)
    edit_command.autocomplete("size")(ImagesBase.edit_size)
    return type("Images", (ImagesBase,), {"imagine": imagine_command, "edit": edit_command})


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
