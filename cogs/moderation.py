"""`/fluxadmin`'s moderation commands: the blocklist, the moderation log, strikes and pardons, Kie's safety
ceiling, spoilers. Replies only; the rules are in `fluxbot/moderation.py` and `fluxbot/modlog.py`."""

from __future__ import annotations

import logging
from collections.abc import Callable

import discord
from discord import app_commands

from cogs.fluxadmin import AdminCommands, admin
from fluxbot.i18n import N_, member_locale, text
from fluxbot.limits import GuildSettings, Refused, with_changes
from fluxbot.moderation import MAX_RULES, parse_rule
from fluxbot.settings_cards import blocklist_card

log = logging.getLogger(__name__)


class ModerationCommands(AdminCommands):
    """What prompts may contain here, and what happens to members whose prompts are refused."""

    @admin.command(name="modlog", description="Choose the channel that gets a message for every refused prompt")
    @app_commands.describe(channel="Where refusals are posted (leave it out to stop posting them)")
    async def modlog(self, interaction: discord.Interaction, channel: discord.TextChannel | None = None) -> None:
        """Set or clear the moderation log channel."""
        await self._change(interaction, lambda settings: with_changes(settings, modlog_channel=channel and channel.id))

    @admin.command(name="strikes", description="Pause members whose prompts are refused too often (0 = never)")
    @app_commands.describe(
        count="Refused prompts that pause a member (0 = off)",
        window_minutes="Within how many minutes they count",
        pause_minutes="How long the pause lasts",
    )
    async def strikes(
        self,
        interaction: discord.Interaction,
        count: app_commands.Range[int, 0, 100],
        window_minutes: app_commands.Range[int, 1, 10_080] = 60,
        pause_minutes: app_commands.Range[int, 1, 43_200] = 60,
    ) -> None:
        """Set the strikes rule."""
        changes = {"strikes": count, "strike_window_minutes": window_minutes, "pause_minutes": pause_minutes}
        await self._change(interaction, lambda settings: with_changes(settings, **changes))

    @admin.command(name="pardon", description="Lift a member's pause on this server and forget their refusals")
    @app_commands.describe(member="Whose pause to lift")
    async def pardon(self, interaction: discord.Interaction, member: discord.Member) -> None:
        """Lift a pause."""
        lifted = await self.bot.store.strikes.pardon(self._guild_id(interaction), member.id)
        log.info("server %s: %s pardoned %s (%s)", interaction.guild_id, interaction.user.id, member.id, lifted)
        locale = member_locale(interaction)
        if lifted:
            answer = text(locale, "{member} may use fluxbot here again; their refused prompts are forgotten.",
                          member=member.mention)  # fmt: skip
        else:
            answer = text(locale, "{member} is not paused here. Their refused prompts are forgotten all the same.",
                          member=member.mention)  # fmt: skip
        await interaction.response.send_message(answer, ephemeral=True, allowed_mentions=discord.AllowedMentions.none())

    @admin.command(name="safety", description="Kie only: the most permissive content filter members may ask for")
    @app_commands.describe(ceiling="0 (strictest) to 6; jobs that ask for nothing get at most this", reset="No ceiling")
    async def safety(
        self,
        interaction: discord.Interaction,
        ceiling: app_commands.Range[int, 0, 6] | None = None,
        reset: bool = False,
    ) -> None:
        """Set or clear the safety_tolerance ceiling."""
        if ceiling is None and not reset:
            answer = text(member_locale(interaction), "Give a `ceiling` from 0 to 6, or `reset:True`.")
            await interaction.response.send_message(answer, ephemeral=True)
            return
        await self._change(
            interaction, lambda settings: with_changes(settings, safety_ceiling=None if reset else ceiling)
        )

    @admin.command(name="spoilers", description="Show results as spoilers: never, always, or outside NSFW channels")
    @app_commands.describe(mode="When finished images are blurred until a member clicks them")
    @app_commands.choices(
        mode=[
            app_commands.Choice(name="never", value="never"),
            app_commands.Choice(name="always", value="always"),
            app_commands.Choice(name="outside age-restricted channels", value="outside_age_restricted"),
        ]
    )
    async def spoilers(self, interaction: discord.Interaction, mode: app_commands.Choice[str]) -> None:
        """Choose when results are spoilers."""
        await self._change(interaction, lambda settings: with_changes(settings, spoilers=mode.value))

    blocklist = app_commands.Group(name="blocklist", description="Words and patterns prompts may not contain",
                                   parent=admin)  # fmt: skip

    @blocklist.command(name="add", description="Refuse prompts with this word, phrase, or re: pattern")
    @app_commands.describe(rule="A word or phrase (whole words, any case or accents), or re: and an RE2 pattern")
    async def blocklist_add(self, interaction: discord.Interaction, rule: str) -> None:
        """Add a rule (the rule as written: never translated)."""
        added = parse_rule(rule)  # InvalidRule says what to type instead

        def add(settings: GuildSettings) -> GuildSettings:
            if added.text in settings.blocklist:
                raise Refused(N_("`{rule}` is on this server's blocklist already."), rule=added.text)
            if len(settings.blocklist) >= MAX_RULES:
                raise Refused.counted("This server has {n} rule, the most it may have. Remove one first.",
                                      "This server has {n} rules, the most it may have. Remove one first.",
                                      MAX_RULES)  # fmt: skip
            return with_changes(settings, blocklist=(*settings.blocklist, added.text))

        done = text(member_locale(interaction), "✅ Added `{rule}`. It applies to the next prompt.", rule=added.text)
        await self._change_blocklist(interaction, add, done)

    @blocklist.command(name="remove", description="Stop refusing prompts for this rule")
    @app_commands.describe(rule="The rule exactly as /fluxadmin blocklist show lists it")
    async def blocklist_remove(self, interaction: discord.Interaction, rule: str) -> None:
        """Remove a rule."""
        written = rule.strip()

        def remove(settings: GuildSettings) -> GuildSettings:
            if written not in settings.blocklist:
                raise Refused(N_("`{rule}` is not on this server's blocklist. See `/fluxadmin blocklist show`."),
                              rule=written[:100])  # fmt: skip
            return with_changes(settings, blocklist=tuple(r for r in settings.blocklist if r != written))

        done = text(member_locale(interaction), "✅ Removed `{rule}`. It applies to the next prompt.", rule=written)
        await self._change_blocklist(interaction, remove, done)

    @blocklist.command(name="show", description="List the rules prompts are checked against here")
    async def blocklist_show(self, interaction: discord.Interaction) -> None:
        """List the server's rules (and how many the operator adds)."""
        settings = await self.bot.policies.guild_settings(self._guild_id(interaction))
        embed = blocklist_card(settings, operator_rules=len(self.bot.settings.blocklist),
                               locale=member_locale(interaction))  # fmt: skip
        await interaction.response.send_message(embed=embed, ephemeral=True)

    async def _change_blocklist(
        self, interaction: discord.Interaction, change: Callable[[GuildSettings], GuildSettings], done: str
    ) -> None:
        settings = await self.bot.policies.change_guild_settings(self._guild_id(interaction), change)
        log.info("server %s blocklist changed by %s: %d rule(s)", interaction.guild_id, interaction.user.id,
                 len(settings.blocklist))  # fmt: skip
        embed = blocklist_card(settings, operator_rules=len(self.bot.settings.blocklist),
                               locale=member_locale(interaction))  # fmt: skip
        embed.description = f"{done}\n\n{embed.description}"
        await interaction.response.send_message(embed=embed, ephemeral=True)
