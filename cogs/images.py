"""/imagine and /edit: option parsing and replies; the job service does the rest."""

from __future__ import annotations

import logging

import discord
from discord import app_commands
from discord.ext import commands

from fluxbot import catalog
from fluxbot.bot import FluxBot, attachment_info
from fluxbot.jobs import (
    PROMPT_MAX_CHARS,
    InvalidRequest,
    prepare_edit,
    prepare_imagine,
)
from fluxbot.limits import Refused

log = logging.getLogger(__name__)

MODEL_CHOICES = [app_commands.Choice(name=f"{m.label} · {m.name}", value=m.name) for m in catalog.MODELS]
EDIT_MODEL_CHOICES = [app_commands.Choice(name=f"{m.label} · {m.name}", value=m.name) for m in catalog.edit_models()]


class Images(commands.Cog):
    """Text-to-image and image editing."""

    def __init__(self, bot: FluxBot) -> None:
        self.bot = bot

    @app_commands.command(name="imagine", description="Create images from a text prompt with Flux")
    @app_commands.describe(
        prompt=f"What to draw (up to {PROMPT_MAX_CHARS:,} characters)",
        model="Which Flux model to use",
        size="WIDTHxHEIGHT or an aspect ratio, depending on the model (suggestions follow the model)",
        count="How many images (1-4)",
    )
    @app_commands.choices(model=MODEL_CHOICES)
    async def imagine(
        self,
        interaction: discord.Interaction,
        prompt: str,
        model: str | None = None,
        size: str | None = None,
        count: app_commands.Range[int, 1, 4] = 1,
    ) -> None:
        """Generate images from a prompt."""
        try:
            policy = await self.bot.policy(interaction)
            request = prepare_imagine(prompt, model or policy.default_model, size, count)
        except (InvalidRequest, Refused) as exc:
            await interaction.response.send_message(str(exc), ephemeral=True)
            return
        await self.bot.run_job(interaction, request, policy)

    @imagine.autocomplete("size")
    async def imagine_size(self, interaction: discord.Interaction, current: str) -> list[app_commands.Choice[str]]:
        """Sizes valid for the model picked so far."""
        model = getattr(interaction.namespace, "model", None)
        if not model:
            try:
                model = (await self.bot.policy(interaction)).default_model
            except Refused:
                model = self.bot.settings.default_model
        return _size_choices(model, current)

    @app_commands.command(name="edit", description="Edit an attached image with a prompt (Flux Kontext)")
    @app_commands.describe(
        image="The image to edit (PNG, JPEG or WebP)",
        prompt=f"What to change (up to {PROMPT_MAX_CHARS:,} characters)",
        model="Which Kontext model to use",
        size="Aspect ratio of the result (default: closest to the image)",
    )
    @app_commands.choices(model=EDIT_MODEL_CHOICES)
    async def edit(
        self,
        interaction: discord.Interaction,
        image: discord.Attachment,
        prompt: str,
        model: str | None = None,
        size: str | None = None,
    ) -> None:
        """Edit an attached image."""
        try:
            policy = await self.bot.policy(interaction)
            request = prepare_edit(prompt, model or policy.edit_model, size, attachment_info(image))
        except (InvalidRequest, Refused) as exc:
            await interaction.response.send_message(str(exc), ephemeral=True)
            return
        await self.bot.run_job(interaction, request, policy)

    @edit.autocomplete("size")
    async def edit_size(self, interaction: discord.Interaction, current: str) -> list[app_commands.Choice[str]]:
        """Aspect ratios for the edit."""
        model = getattr(interaction.namespace, "model", None) or catalog.DEFAULT_EDIT_MODEL
        return _size_choices(model, current)


def _size_choices(model: str, current: str) -> list[app_commands.Choice[str]]:
    return [app_commands.Choice(name=s, value=s) for s in catalog.size_suggestions(model, current)]


async def setup(bot: commands.Bot) -> None:
    """Load the cog (discord.py extension entry point)."""
    assert isinstance(bot, FluxBot)
    await bot.add_cog(Images(bot))
