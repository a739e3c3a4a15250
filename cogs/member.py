"""What a member sees of the bot's rules and chooses for themselves: `/flux` and `/settings`. Replies only."""

from __future__ import annotations

import time

import discord
from discord import app_commands
from discord.ext import commands

from cogs.choices import style_choices
from fluxbot import catalog
from fluxbot.bot import FluxBot
from fluxbot.budgets import budget_left, next_utc_midnight
from fluxbot.defaults import MemberDefaults, Typed, changed_defaults, choose, describe_chosen, describe_defaults
from fluxbot.limits import Policy, Refused

Choices = list[app_commands.Choice[str]]


class Member(commands.Cog):
    """The member-facing overview and the member's own defaults."""

    def __init__(self, bot: FluxBot) -> None:
        self.bot = bot

    @app_commands.command(name="flux", description="What fluxbot can do here, and how much of your quota is left")
    async def flux(self, interaction: discord.Interaction) -> None:
        """The member's overview."""
        policy = await self.bot.policies.policy(interaction)  # Refused when the member may not use the bot here
        limits = policy.limits
        usage = await self.bot.store.usage(interaction.user.id, budget=limits.budget)
        embed = discord.Embed(title="fluxbot here", colour=discord.Colour.blurple())
        embed.description = (
            "`/imagine` makes images from a prompt, `/edit` changes an image you attach, **Edit with Flux** "
            "(right-click a message → Apps) edits an image in any message, `/jobs` lists your jobs, `/settings` "
            "chooses your defaults."
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
        if limits.budget is not None and limits.budget.applies:
            embed.add_field(name="Server budget", value=budget_left(limits.budget, usage.server, now=time.time()))
        if policy.styles:
            styles = ", ".join(f"`{s.name}`" for s in policy.styles)
            embed.add_field(name="Styles (`style:`)", value=styles[:1024], inline=False)
        self._defaults_fields(embed, await self.bot.store.members.defaults(interaction.user.id), policy)
        await interaction.response.send_message(embed=embed, ephemeral=True)

    @app_commands.command(name="settings", description="Your default model, size, count and style, on every server")
    @app_commands.describe(
        model="The model /imagine uses when you pick none",
        size="The size /imagine uses when you pick none",
        count="How many images /imagine makes when you don't say",
        style="The style preset used when you pick none (servers that have a style of this name)",
        reset="Clear your defaults first (alone: clear them all)",
    )
    async def settings(
        self,
        interaction: discord.Interaction,
        model: str | None = None,
        size: str | None = None,
        count: app_commands.Range[int, 1, 4] | None = None,
        style: str | None = None,
        reset: bool = False,
    ) -> None:
        """Show or change the member's defaults."""
        user_id = interaction.user.id
        current = await self.bot.store.members.defaults(user_id)
        changing = reset or any(value is not None for value in (model, size, count, style))
        chosen = changed_defaults(
            current, self.bot.settings.provider_info, model=model, size=size, count=count, style=style, reset=reset
        )  # InvalidRequest says what is valid
        if chosen != current:
            await self.bot.store.members.save_defaults(user_id, chosen)
        try:
            policy: Policy | None = await self.bot.policies.policy(interaction)
        except Refused:
            policy = None  # the defaults are the member's wherever they are; here they just cannot be used
        embed = discord.Embed(title="Your fluxbot defaults", colour=discord.Colour.blurple())
        embed.description = (
            "They apply on every server, to the options you leave out of `/imagine` and `/edit`. The order: "
            "the option you type, then the style's, then your default, then the server's."
        )
        if changing:
            embed.description = "✅ Saved.\n" + embed.description
        self._defaults_fields(embed, chosen, policy)
        embed.set_footer(text="Change one with /settings model: size: count: style: · clear them with reset:True")
        await interaction.response.send_message(embed=embed, ephemeral=True)

    def _defaults_fields(self, embed: discord.Embed, defaults: MemberDefaults, policy: Policy | None) -> None:
        """The member's defaults, and what `/imagine` without options uses here (with what does not apply)."""
        embed.add_field(name="Your defaults (/settings)", value=describe_defaults(defaults), inline=False)
        if policy is None:
            return
        info = self.bot.settings.provider_info
        here = choose("generate", Typed(), defaults, policy, info)
        lines = [describe_chosen(here, info), *(f"• {note[0].upper()}{note[1:]}." for note in here.notes)]
        embed.add_field(name="Here, /imagine without options uses", value="\n".join(lines)[:1024], inline=False)

    @settings.autocomplete("model")
    async def model_names(self, interaction: discord.Interaction, current: str) -> Choices:
        """The active provider's models."""
        models = [m for m in self.bot.settings.provider_info.models if current.lower() in m.name]
        return [app_commands.Choice(name=f"{m.label} · {m.name}", value=m.name) for m in models[:25]]

    @settings.autocomplete("size")
    async def sizes(self, interaction: discord.Interaction, current: str) -> Choices:
        """Sizes for the model picked so far, else the member's default model."""
        model = getattr(interaction.namespace, "model", None)
        if not model:
            model = (await self.bot.store.members.defaults(interaction.user.id)).model
        offers = catalog.size_suggestions(self.bot.settings.provider_info, model, current)
        return [app_commands.Choice(name=s, value=s) for s in offers]

    @settings.autocomplete("style")
    async def style_names(self, interaction: discord.Interaction, current: str) -> Choices:
        """The styles of the server whose rules apply here."""
        return await style_choices(self.bot, interaction, current)


async def setup(bot: commands.Bot) -> None:
    """Load the cog (discord.py extension entry point)."""
    assert isinstance(bot, FluxBot)
    await bot.add_cog(Member(bot))
