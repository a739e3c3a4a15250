"""`/fluxadmin style`: a server's style presets (a text added to the prompt, optionally a model and a size).
Replies only; the rules are in `fluxbot/styles.py`."""

from __future__ import annotations

import logging
from collections.abc import Callable

import discord
from discord import app_commands

from cogs.fluxadmin import AdminCommands, admin
from fluxbot import catalog, i18n
from fluxbot.limits import GuildSettings, with_changes
from fluxbot.settings_cards import styles_card
from fluxbot.styles import NAME_MAX_CHARS, TEXT_MAX_CHARS, new_style, suggestions, with_style, without_style

log = logging.getLogger(__name__)

Choices = list[app_commands.Choice[str]]


class StyleCommands(AdminCommands):
    """Named looks members pick with `/imagine style:` and `/edit style:`."""

    style = app_commands.Group(name="style", description="Style presets members can pick with /imagine and /edit",
                               parent=admin)  # fmt: skip

    @style.command(name="add", description="Add a style members can pick with /imagine style: and /edit style:")
    @app_commands.describe(
        name=f"1-{NAME_MAX_CHARS} letters, digits, spaces, - or _ (any case; kept in lowercase)",
        text="Added to the prompt as '<prompt>, <text>'; or put {prompt} where the member's prompt goes",
        model="The model the style uses when the member picks none (optional)",
        size="The size it uses when the member picks none (optional; /edit keeps the image's shape)",
    )
    async def style_add(
        self,
        interaction: discord.Interaction,
        name: app_commands.Range[str, 1, NAME_MAX_CHARS],
        text: app_commands.Range[str, 1, TEXT_MAX_CHARS],
        model: str | None = None,
        size: str | None = None,
    ) -> None:
        """Add a style."""
        guild_id = self._guild_id(interaction)
        settings = await self.bot.policies.guild_settings(guild_id)
        default_model = self.bot.policies.policy_for_settings(settings).default_model
        added = new_style(self.bot.settings.provider_info, name, text, model, size, default_model=default_model)
        locale = i18n.member_locale(interaction)  # `text` is the style's text here
        done = i18n.text(locale, "✅ Added `{style}`. It applies to the next command.", style=added.name)
        await self._change_styles(
            interaction, lambda current: with_changes(current, styles=with_style(current.styles, added)), done
        )

    @style_add.autocomplete("model")
    async def style_models(self, interaction: discord.Interaction, current: str) -> Choices:
        """The active provider's models."""
        names = [n for n in catalog.model_names(self.bot.settings.provider_info) if current.lower() in n]
        return [app_commands.Choice(name=n, value=n) for n in names[:25]]

    @style_add.autocomplete("size")
    async def style_sizes(self, interaction: discord.Interaction, current: str) -> Choices:
        """Sizes for the model picked so far (or this server's default model)."""
        model = getattr(interaction.namespace, "model", None)
        if not model and interaction.guild_id is not None:
            settings = await self.bot.policies.guild_settings(interaction.guild_id)
            model = self.bot.policies.policy_for_settings(settings).default_model
        offers = catalog.size_suggestions(self.bot.settings.provider_info, model, current)
        return [app_commands.Choice(name=s, value=s) for s in offers]

    @style.command(name="remove", description="Remove a style (jobs made with it keep their prompt)")
    @app_commands.describe(name="The style's name")
    async def style_remove(self, interaction: discord.Interaction, name: str) -> None:
        """Remove a style."""
        shown = " ".join(name.split()).lower()
        done = i18n.text(
            i18n.member_locale(interaction), "✅ Removed `{style}`. It applies to the next command.", style=shown
        )
        await self._change_styles(
            interaction, lambda current: with_changes(current, styles=without_style(current.styles, name)), done
        )

    @style_remove.autocomplete("name")
    async def style_names(self, interaction: discord.Interaction, current: str) -> Choices:
        """This server's styles."""
        if interaction.guild_id is None:
            return []
        settings = await self.bot.policies.guild_settings(interaction.guild_id)
        return [app_commands.Choice(name=s.name, value=s.name) for s in suggestions(settings.styles, current)]

    @style.command(name="list", description="List this server's styles")
    async def style_list(self, interaction: discord.Interaction) -> None:
        """List the styles."""
        settings = await self.bot.policies.guild_settings(self._guild_id(interaction))
        await interaction.response.send_message(
            embed=styles_card(settings.styles, locale=i18n.member_locale(interaction)), ephemeral=True
        )

    async def _change_styles(
        self, interaction: discord.Interaction, change: Callable[[GuildSettings], GuildSettings], done: str
    ) -> None:
        settings = await self.bot.policies.change_guild_settings(self._guild_id(interaction), change)
        log.info("server %s styles changed by %s: %s", interaction.guild_id, interaction.user.id,
                 ", ".join(s.name for s in settings.styles) or "none")  # fmt: skip
        embed = styles_card(settings.styles, locale=i18n.member_locale(interaction))
        embed.description = f"{done}\n\n{embed.description}"
        await interaction.response.send_message(embed=embed, ephemeral=True)
