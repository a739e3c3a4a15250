"""What a member sees of the bot's rules: `/flux`. Replies only."""

from __future__ import annotations

import time

import discord
from discord import app_commands
from discord.ext import commands

from fluxbot import catalog
from fluxbot.bot import FluxBot
from fluxbot.limits import next_utc_midnight


class Member(commands.Cog):
    """The member-facing overview."""

    def __init__(self, bot: FluxBot) -> None:
        self.bot = bot

    @app_commands.command(name="flux", description="What fluxbot can do here, and how much of your quota is left")
    async def flux(self, interaction: discord.Interaction) -> None:
        """The member's overview."""
        policy = await self.bot.policies.policy(interaction)  # Refused when the member may not use the bot here
        usage = await self.bot.store.usage(interaction.user.id)
        limits = policy.limits
        embed = discord.Embed(title="fluxbot here", colour=discord.Colour.blurple())
        embed.description = (
            "`/imagine` makes images from a prompt, `/edit` changes an image you attach, **Edit with Flux** "
            "(right-click a message → Apps) edits an image in any message, `/jobs` lists your jobs."
        )
        models = policy.allowed_models or catalog.model_names(self.bot.settings.provider_info)
        embed.add_field(name="Models", value=", ".join(f"`{m}`" for m in models), inline=False)
        embed.add_field(name="Default model", value=f"`{policy.default_model}`", inline=True)
        embed.add_field(name="Your jobs now", value=f"{usage.in_flight} of {limits.member_jobs}", inline=True)
        if limits.daily_images:
            left = max(0, limits.daily_images - usage.images_today)
            reset = int(next_utc_midnight(time.time()))
            quota = f"{left} of {limits.daily_images} left, resets <t:{reset}:R>"
        else:
            quota = f"no daily limit ({usage.images_today} made today)"
        embed.add_field(name="Images today", value=quota, inline=True)
        if limits.cooldown_seconds:
            embed.add_field(name="Cooldown", value=f"{limits.cooldown_seconds} s between commands", inline=True)
        await interaction.response.send_message(embed=embed, ephemeral=True)


async def setup(bot: commands.Bot) -> None:
    """Load the cog (discord.py extension entry point)."""
    assert isinstance(bot, FluxBot)
    await bot.add_cog(Member(bot))
