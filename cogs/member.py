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
from fluxbot.errors import said
from fluxbot.i18n import discord_time, member_locale, number, plural, text
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
        limits, locale = policy.limits, member_locale(interaction)
        usage = await self.bot.store.usage(interaction.user.id, budget=limits.budget)
        # Translators: the title of /flux's card: what the bot does and allows on this server.
        embed = discord.Embed(title=text(locale, "fluxbot here"), colour=discord.Colour.blurple())
        embed.description = text(
            locale,
            "`/imagine` makes images from a prompt, `/edit` changes an image you attach, **Edit with Flux** "
            "(right-click a message → Apps) edits an image in any message, `/jobs` lists your jobs, `/settings` "
            "chooses your defaults.",
        )
        models = policy.allowed_models or catalog.model_names(self.bot.settings.provider_info)
        embed.add_field(name=text(locale, "Models"), value=", ".join(f"`{m}`" for m in models), inline=False)
        embed.add_field(name=text(locale, "Default model"), value=f"`{policy.default_model}`", inline=True)
        # Translators: how many of the member's jobs are running or waiting, of how many they may have at once.
        jobs = text(
            locale, "{jobs} of {limit}", jobs=number(locale, usage.in_flight), limit=number(locale, limits.member_jobs)
        )
        embed.add_field(name=text(locale, "Your jobs now"), value=jobs, inline=True)
        embed.add_field(
            name=text(locale, "Images today"), value=self._quota(locale, policy, usage.images_today), inline=True
        )
        if limits.cooldown_seconds:
            # Translators: {n} seconds a member waits between two commands ("s": seconds).
            cooldown = plural(locale, "{n} s between commands", "{n} s between commands", limits.cooldown_seconds)
            embed.add_field(name=text(locale, "Cooldown"), value=cooldown, inline=True)
        if limits.budget is not None and limits.budget.applies:
            left = budget_left(limits.budget, usage.server, now=time.time(), locale=locale)
            embed.add_field(name=text(locale, "Server budget"), value=left)
        if policy.styles:
            styles = ", ".join(f"`{s.name}`" for s in policy.styles)
            # Translators: the title of the list of this server's styles; `style:` is the option that picks one.
            embed.add_field(name=text(locale, "Styles (`style:`)"), value=styles[:1024], inline=False)
        self._defaults_fields(embed, await self.bot.store.members.defaults(interaction.user.id), policy, locale)
        await interaction.response.send_message(embed=embed, ephemeral=True)

    @staticmethod
    def _quota(locale: str, policy: Policy, made: int) -> str:
        """How many images the member may still make today, or that there is no daily limit."""
        quota = policy.limits.daily_images
        if not quota:
            return plural(locale, "no daily limit ({n} made today)", "no daily limit ({n} made today)", made)
        reset = discord_time(next_utc_midnight(time.time()))
        left = max(0, quota - made)
        # Translators: {reset} is a time Discord shows in the member's language ("in 5 hours").
        return plural(
            locale,
            "{n} of {limit} left, resets {reset}",
            "{n} of {limit} left, resets {reset}",
            left,
            limit=number(locale, quota),
            reset=reset,
        )

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
        user_id, locale = interaction.user.id, member_locale(interaction)
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
        embed = discord.Embed(title=text(locale, "Your fluxbot defaults"), colour=discord.Colour.blurple())
        embed.description = text(
            locale,
            "They apply on every server, to the options you leave out of `/imagine` and `/edit`. The order: "
            "the option you type, then the style's, then your default, then the server's.",
        )
        if changing:
            embed.description = text(locale, "✅ Saved.") + "\n" + embed.description
        self._defaults_fields(embed, chosen, policy, locale)
        # Translators: model:, size:, count:, style: and reset:True are the options of /settings, as typed.
        footer = text(locale, "Change one with /settings model: size: count: style: · clear them with reset:True")
        embed.set_footer(text=footer)
        await interaction.response.send_message(embed=embed, ephemeral=True)

    def _defaults_fields(
        self, embed: discord.Embed, defaults: MemberDefaults, policy: Policy | None, locale: str
    ) -> None:
        """The member's defaults, and what `/imagine` without options uses here (with what does not apply)."""
        mine = describe_defaults(defaults, locale)
        embed.add_field(name=text(locale, "Your defaults (/settings)"), value=mine, inline=False)
        if policy is None:
            return
        info = self.bot.settings.provider_info
        here = choose("generate", Typed(), defaults, policy, info)
        lines = [describe_chosen(here, info, locale), *(f"• {said(note, locale)}" for note in here.notes)]
        uses = text(locale, "Here, /imagine without options uses")
        embed.add_field(name=uses, value="\n".join(lines)[:1024], inline=False)

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
