"""/imagine and /edit: option parsing and replies; the job service does the rest.

The commands are built for the active provider when the extension loads: its models are the choices, and the
options only it has (Kie.ai: output format, prompt upsampling, safety tolerance, translation) are offered only
when it has them.
"""

from __future__ import annotations

import logging

import discord
from discord import app_commands
from discord.ext import commands

from fluxbot import catalog
from fluxbot.bot import FluxBot, attachment_info
from fluxbot.jobs import NO_EXTRAS, PROMPT_MAX_CHARS, Extras, InvalidRequest, prepare_edit, prepare_imagine
from fluxbot.limits import Refused

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
DESCRIBE_EXTRAS = {
    "output_format": "jpeg (default) or png",
    "prompt_upsampling": "Let the model elaborate the prompt (slower)",
    "safety_tolerance": "How permissive the content filter is: 0 strict to 6 (edits: 0 to 2)",
    "translate": "Translate a non-English prompt first (on by default)",
}
Choices = list[app_commands.Choice[str]]
FORMATS = [app_commands.Choice(name="JPEG", value="jpeg"), app_commands.Choice(name="PNG", value="png")]


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
        extras: Extras,
    ) -> None:
        """Check the options and start the job."""
        try:
            policy = await self.bot.policy(interaction)
            request = prepare_imagine(prompt, model or policy.default_model, size, count, extras)
        except (InvalidRequest, Refused) as exc:
            await interaction.response.send_message(str(exc), ephemeral=True)
            return
        await self.bot.run_job(interaction, request, policy)

    async def edit_job(
        self,
        interaction: discord.Interaction,
        image: discord.Attachment,
        prompt: str,
        model: str | None,
        size: str | None,
        extras: Extras,
    ) -> None:
        """Check the options and the attachment and start the edit."""
        try:
            policy = await self.bot.policy(interaction)
            request = prepare_edit(prompt, model or policy.edit_model, size, attachment_info(image), extras)
        except (InvalidRequest, Refused) as exc:
            await interaction.response.send_message(str(exc), ephemeral=True)
            return
        await self.bot.run_job(interaction, request, policy)

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
                policy = await self.bot.policy(interaction)
                model = policy.edit_model if edit else policy.default_model
            except Refused:
                model = catalog.DEFAULT_EDIT_MODEL if edit else self.bot.settings.default_model
        return [app_commands.Choice(name=s, value=s) for s in catalog.size_suggestions(model, current)]


def _with_size_suggestions(cog: type[ImagesBase]) -> type[ImagesBase]:
    """Give both commands of a variant the size autocomplete (defined once, in ImagesBase)."""
    imagine = cog.__cog_app_commands__[0]
    edit = cog.__cog_app_commands__[1]
    assert isinstance(imagine, app_commands.Command)
    assert isinstance(edit, app_commands.Command)
    assert (imagine.name, edit.name) == ("imagine", "edit")
    imagine.autocomplete("size")(ImagesBase.imagine_size)
    edit.autocomplete("size")(ImagesBase.edit_size)
    return cog


def images_cog(info: catalog.ProviderInfo) -> type[ImagesBase]:
    """The Images cog for a provider: its models as choices, its extra options where it has them."""
    models, editors = _choices(info.models), _choices(tuple(m for m in info.models if m.can_edit))

    if not info.options:

        class Images(ImagesBase):
            @app_commands.command(name="imagine", description="Create images from a text prompt with Flux")
            @app_commands.describe(**DESCRIBE_IMAGINE)
            @app_commands.choices(model=models)
            async def imagine(
                self,
                interaction: discord.Interaction,
                prompt: str,
                model: str | None = None,
                size: str | None = None,
                count: app_commands.Range[int, 1, 4] = 1,
            ) -> None:
                """Generate images from a prompt."""
                await self.imagine_job(interaction, prompt, model, size, count, NO_EXTRAS)

            @app_commands.command(name="edit", description="Edit an attached image with a prompt (Flux Kontext)")
            @app_commands.describe(**DESCRIBE_EDIT)
            @app_commands.choices(model=editors)
            async def edit(
                self,
                interaction: discord.Interaction,
                image: discord.Attachment,
                prompt: str,
                model: str | None = None,
                size: str | None = None,
            ) -> None:
                """Edit an attached image."""
                await self.edit_job(interaction, image, prompt, model, size, NO_EXTRAS)

        return _with_size_suggestions(Images)

    # The provider with extra options (Kie.ai) makes one image per job, so this variant has no `count`.
    class ImagesWithOptions(ImagesBase):
        @app_commands.command(name="imagine", description="Create images from a text prompt with Flux")
        @app_commands.describe(**{k: v for k, v in DESCRIBE_IMAGINE.items() if k != "count"}, **DESCRIBE_EXTRAS)
        @app_commands.choices(model=models, output_format=FORMATS)
        async def imagine(
            self,
            interaction: discord.Interaction,
            prompt: str,
            model: str | None = None,
            size: str | None = None,
            output_format: str | None = None,
            prompt_upsampling: bool | None = None,
            safety_tolerance: app_commands.Range[int, 0, 6] | None = None,
            translate: bool | None = None,
        ) -> None:
            """Generate an image from a prompt (one per job with this provider)."""
            extras = Extras(output_format, prompt_upsampling, safety_tolerance, translate)
            await self.imagine_job(interaction, prompt, model, size, 1, extras)

        @app_commands.command(name="edit", description="Edit an attached image with a prompt (Flux Kontext)")
        @app_commands.describe(**DESCRIBE_EDIT, **DESCRIBE_EXTRAS)
        @app_commands.choices(model=editors, output_format=FORMATS)
        async def edit(
            self,
            interaction: discord.Interaction,
            image: discord.Attachment,
            prompt: str,
            model: str | None = None,
            size: str | None = None,
            output_format: str | None = None,
            prompt_upsampling: bool | None = None,
            safety_tolerance: app_commands.Range[int, 0, 2] | None = None,
            translate: bool | None = None,
        ) -> None:
            """Edit an attached image."""
            extras = Extras(output_format, prompt_upsampling, safety_tolerance, translate)
            await self.edit_job(interaction, image, prompt, model, size, extras)

    return _with_size_suggestions(ImagesWithOptions)


async def setup(bot: commands.Bot) -> None:
    """Load the cog for the active provider (discord.py extension entry point)."""
    assert isinstance(bot, FluxBot)
    await bot.add_cog(images_cog(catalog.active())(bot))
