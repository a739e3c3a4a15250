"""`/fluxadmin language`: the language of what everyone on the server sees (cards, results, channel posts): one the
moderators choose, or the server's language in Discord. Replies only; the catalogs are in `fluxbot/i18n.py`."""

from __future__ import annotations

import discord
from discord import app_commands

from cogs.fluxadmin import AdminCommands, admin
from fluxbot.i18n import LANGUAGE_NAMES, N_, SOURCE, catalog_locale, channel_locale, language_name, member_locale, text
from fluxbot.limits import with_changes

#: The choice that clears the server's language: Discord's server language applies again.
FOLLOW_DISCORD = "discord"
SAVED = N_("✅ Saved. What everyone here sees will be in {language}.")
SAVED_FOLLOWING = N_(
    "✅ Saved. What everyone here sees follows the server's language in Discord's settings: {language} for now."
)


class LanguageCommands(AdminCommands):
    """Which language the bot speaks to everyone on this server."""

    @admin.command(name="language", description="The language of what everyone here sees (cards, results, posts)")
    @app_commands.describe(language="A language, or the one set in Discord's server settings")
    @app_commands.choices(
        language=[
            app_commands.Choice(name="Follow Discord's server language", value=FOLLOW_DISCORD),
            *(app_commands.Choice(name=name, value=locale) for locale, name in LANGUAGE_NAMES.items()),
        ]
    )
    async def language(self, interaction: discord.Interaction, language: app_commands.Choice[str]) -> None:
        """Choose the server's language, or follow Discord's."""
        forced = None if language.value == FOLLOW_DISCORD else language.value
        shown_in = member_locale(interaction)  # the answer is the moderator's alone
        spoken = catalog_locale(channel_locale(interaction, forced)) or SOURCE
        said = text(shown_in, SAVED if forced else SAVED_FOLLOWING, language=language_name(spoken, shown_in))
        await self._change(interaction, lambda settings: with_changes(settings, locale=forced), said=said)
