"""The `/fluxadmin` group and what its commands share: the server's id, saving a change, showing the settings.

The group's commands live in several modules by concern (`server.py`: models, places and limits;
`moderation.py`: prompts, strikes and spoilers); the `Server` cog in `server.py` brings them together.
"""

from __future__ import annotations

import logging
from collections.abc import Callable

import discord
from discord import app_commands
from discord.ext import commands

from fluxbot.bot import FluxBot
from fluxbot.i18n import N_, member_locale, text
from fluxbot.limits import GuildSettings
from fluxbot.settings_cards import settings_card

log = logging.getLogger(__name__)

NEEDS_MANAGE_SERVER = N_("Only members with the **Manage Server** permission can change fluxbot's settings here.")
SAVED = N_("✅ Saved. The change applies to the next command.")

admin = app_commands.Group(
    name="fluxadmin",
    description="fluxbot settings for this server (Manage Server)",
    default_permissions=discord.Permissions(manage_guild=True),
    guild_only=True,
)


class AdminCommands(commands.Cog):
    """What every `/fluxadmin` command may use; the `Server` cog is made of its subclasses."""

    bot: FluxBot

    @staticmethod
    def _guild_id(interaction: discord.Interaction) -> int:
        assert interaction.guild_id is not None  # the group is guild-only
        return interaction.guild_id

    async def _change(
        self,
        interaction: discord.Interaction,
        change: Callable[[GuildSettings], GuildSettings],
        *,
        said: str | None = None,
    ) -> None:
        """Apply `change` to this server's settings and show the result (a `Refused` from it is answered instead),
        under `said` (default: "Saved")."""
        settings = await self.bot.policies.change_guild_settings(self._guild_id(interaction), change)
        log.info("server %s settings changed by %s: %s", interaction.guild_id, interaction.user.id, settings.to_json())
        await self._show(interaction, settings, saved=True, said=said)

    async def _show(
        self, interaction: discord.Interaction, settings: GuildSettings, *, saved: bool = False, said: str | None = None
    ) -> None:
        """The settings card, in the moderator's language (under `said`, already in it, or "Saved")."""
        locale = member_locale(interaction)  # only the moderator sees it
        policy = self.bot.policies.policy_for_settings(settings)
        embed = settings_card(settings, policy.limits, policy.default_model, serve_dms=self.bot.settings.serve_dms,
                              locale=locale)  # fmt: skip
        if saved:
            embed.description = said or text(locale, SAVED)
            capped = settings.capped(self.bot.settings.limits())
            if capped:
                notes = "; ".join(note.said(locale) for note in capped)
                # Translators: {notes} are the settings the operator's limits cap, separated by semicolons.
                embed.description += "\n" + text(
                    locale, "The bot's operator sets the upper limits: {notes}.", notes=notes
                )
        await interaction.response.send_message(embed=embed, ephemeral=True)
