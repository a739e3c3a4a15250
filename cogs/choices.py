"""Autocomplete answers more than one cog offers (not an extension: the cogs import it)."""

from __future__ import annotations

import discord
from discord import app_commands

from fluxbot.bot import FluxBot
from fluxbot.i18n import member_locale
from fluxbot.limits import Refused
from fluxbot.styles import describe, suggestions


async def style_choices(bot: FluxBot, interaction: discord.Interaction, current: str) -> list[app_commands.Choice[str]]:
    """The style presets of the server whose rules apply here (in a DM too) that match what was typed so far: each
    choice shows the style's name and text as the server wrote them, its model and size in the member's language."""
    try:
        policy = await bot.policies.policy(interaction)
    except Refused:
        return []
    locale = member_locale(interaction)
    return [
        app_commands.Choice(name=f"{s.name} · {describe(s, locale)}"[:100], value=s.name)
        for s in suggestions(policy.styles, current)
    ]
