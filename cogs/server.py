"""The `/fluxadmin` cog: a server's models, channels, role, DMs, limits, usage and queue here; its other commands
come from the parts it brings together (`moderation.py`: prompts, strikes, spoilers; `budget.py`: the server's
budget; `styles.py`: style presets; `language.py`: the server's language). Replies only."""

from __future__ import annotations

import logging

import discord
from discord import app_commands
from discord.ext import commands

from cogs.budget import BudgetCommands
from cogs.fluxadmin import NEEDS_MANAGE_SERVER, admin
from cogs.language import LanguageCommands
from cogs.moderation import ModerationCommands
from cogs.styles import StyleCommands
from fluxbot import catalog
from fluxbot.bot import FluxBot
from fluxbot.i18n import N_, member_locale, plural, text
from fluxbot.limits import GuildSettings, Refused, with_changes

log = logging.getLogger(__name__)


class Server(ModerationCommands, BudgetCommands, StyleCommands, LanguageCommands):
    """Moderators' settings: every `/fluxadmin` command."""

    admin = admin

    def __init__(self, bot: FluxBot) -> None:
        self.bot = bot

    async def interaction_check(self, interaction: discord.Interaction) -> bool:
        """Re-check Manage Server at run time: default permissions can be overridden by the server."""
        command = interaction.command
        # root_parent: /fluxadmin blocklist add is under a subgroup, and needs the permission just the same.
        in_admin = isinstance(command, app_commands.Command) and command.root_parent is self.admin
        if in_admin and not interaction.permissions.manage_guild:
            refusal = text(member_locale(interaction), NEEDS_MANAGE_SERVER)
            await interaction.response.send_message(refusal, ephemeral=True)
            return False
        return True

    @admin.command(name="show", description="Show this server's fluxbot settings")
    async def show(self, interaction: discord.Interaction) -> None:
        """Show the settings."""
        await self._show(interaction, await self.bot.policies.guild_settings(self._guild_id(interaction)))

    @admin.command(name="models", description="Choose the default model and which models members may use")
    @app_commands.describe(
        default="The model /imagine uses when a member picks none",
        allowed="Comma-separated model names members may use, or 'all'",
    )
    async def models(
        self, interaction: discord.Interaction, default: str | None = None, allowed: str | None = None
    ) -> None:
        """Set the default and allowed models."""
        names = catalog.model_names(self.bot.settings.provider_info)
        locale = member_locale(interaction)
        valid = ", ".join(f"`{n}`" for n in names)
        if default is not None and default not in names:
            await interaction.response.send_message(
                text(locale, "`{model}` is not a model of this bot's provider. Pick one of {names}.",
                     model=default[:40], names=valid),
                ephemeral=True,
            )  # fmt: skip
            return
        picked = [n.strip() for n in allowed.split(",") if n.strip()] if allowed is not None else None
        if picked is not None and picked != ["all"]:
            unknown = [n for n in picked if n not in names]
            if unknown or not picked:
                shown = ", ".join(f"`{n[:40]}`" for n in unknown)
                problem = (
                    plural(locale, "{models} is not a model I know. Use `all`, or names from: {names}.",
                           "{models} are not models I know. Use `all`, or names from: {names}.", len(unknown),
                           models=shown, names=valid)
                    if unknown
                    else text(locale, "Name at least one model. Use `all`, or names from: {names}.", names=valid)
                )  # fmt: skip
                await interaction.response.send_message(problem, ephemeral=True)
                return

        def change(settings: GuildSettings) -> GuildSettings:
            allowed_models = settings.allowed_models
            if picked is not None:
                allowed_models = () if picked == ["all"] else tuple(dict.fromkeys(picked))
            new_default = default if default is not None else settings.default_model
            if new_default and allowed_models and new_default not in allowed_models:
                raise Refused(N_("The default model `{model}` must be one of the allowed models."), model=new_default)
            return with_changes(settings, default_model=new_default, allowed_models=allowed_models)

        await self._change(interaction, change)

    @models.autocomplete("default")
    async def model_names(self, interaction: discord.Interaction, current: str) -> list[app_commands.Choice[str]]:
        """The active provider's models."""
        names = [n for n in catalog.model_names(self.bot.settings.provider_info) if current.lower() in n]
        return [app_commands.Choice(name=n, value=n) for n in names[:25]]

    @admin.command(name="channels", description="Limit fluxbot to some channels (none listed = every channel)")
    @app_commands.describe(add="Allow this channel", remove="Stop allowing this channel", clear="Allow every channel")
    async def channels(
        self,
        interaction: discord.Interaction,
        add: discord.TextChannel | None = None,
        remove: discord.TextChannel | None = None,
        clear: bool = False,
    ) -> None:
        """Change the allowed channels."""

        def change(settings: GuildSettings) -> GuildSettings:
            channels = [] if clear else list(settings.allowed_channels)
            if add is not None and add.id not in channels:
                channels.append(add.id)
            if remove is not None and remove.id in channels:
                channels.remove(remove.id)
            return with_changes(settings, allowed_channels=tuple(channels))

        await self._change(interaction, change)

    @admin.command(name="role", description="Require a role to use fluxbot (leave empty for everyone)")
    @app_commands.describe(role="Members need this role; leave it out to let everyone use the bot")
    async def role(self, interaction: discord.Interaction, role: discord.Role | None = None) -> None:
        """Set or clear the required role."""
        await self._change(
            interaction, lambda settings: with_changes(settings, required_role=role.id if role else None)
        )

    @admin.command(name="dms", description="Let this server's members use fluxbot in direct messages, or not")
    @app_commands.describe(allowed="True: members may use the bot in DMs under this server's rules; False: not")
    async def dms(self, interaction: discord.Interaction, allowed: bool) -> None:
        """Allow or refuse DMs for this server's members."""
        await self._change(interaction, lambda settings: with_changes(settings, dms=allowed))

    @admin.command(name="limits", description="Change the per-member limits on this server")
    @app_commands.describe(
        member_jobs="Jobs one member may have running or waiting at once",
        cooldown_seconds="Seconds between two commands of one member (0 = off)",
        daily_images="Images one member may make per UTC day (0 = off)",
        reset="Go back to the operator's defaults",
    )
    async def limits(
        self,
        interaction: discord.Interaction,
        member_jobs: app_commands.Range[int, 1, 20] | None = None,
        cooldown_seconds: app_commands.Range[int, 0, 86_400] | None = None,
        daily_images: app_commands.Range[int, 0, 10_000] | None = None,
        reset: bool = False,
    ) -> None:
        """Change the limits."""
        changes = {"member_jobs": member_jobs, "cooldown_seconds": cooldown_seconds, "daily_images": daily_images}

        def change(settings: GuildSettings) -> GuildSettings:
            if reset:
                settings = with_changes(settings, member_jobs=None, cooldown_seconds=None, daily_images=None)
            return with_changes(settings, **{k: v for k, v in changes.items() if v is not None})

        await self._change(interaction, change)

    @admin.command(name="usage", description="Images per member and per day, jobs running or waiting, failures")
    @app_commands.describe(days="How many UTC days to cover, today included (default 7)")
    async def usage(self, interaction: discord.Interaction, days: app_commands.Range[int, 1, 31] = 7) -> None:
        """Usage on this server over the last days."""
        guild_id = self._guild_id(interaction)
        report = await self.bot.store.reports.guild_report(guild_id, days=days)
        embed = await self._usage_card(guild_id, report, locale=member_locale(interaction))
        await interaction.response.send_message(embed=embed, ephemeral=True)

    @admin.command(name="cancel", description="Cancel a member's jobs that are still waiting in line")
    @app_commands.describe(member="Whose waiting jobs to cancel")
    async def cancel(self, interaction: discord.Interaction, member: discord.Member) -> None:
        """Cancel a member's queued jobs."""
        guild_id = self._guild_id(interaction)
        await interaction.response.defer(ephemeral=True, thinking=True)
        cancelled = await self.bot.jobs.cancel_queued(guild_id, member.id)
        log.info("server %s: %s cancelled %d queued job(s) of %s", guild_id, interaction.user.id, cancelled, member.id)
        locale = member_locale(interaction)
        await interaction.followup.send(
            plural(locale, "Cancelled {n} waiting job of {member}.", "Cancelled {n} waiting jobs of {member}.",
                   cancelled, member=member.mention) if cancelled else
            text(locale, "{member} has no jobs waiting in line.", member=member.mention),
            ephemeral=True,
            allowed_mentions=discord.AllowedMentions.none(),
        )  # fmt: skip


async def setup(bot: commands.Bot) -> None:
    """Load the cog (discord.py extension entry point)."""
    assert isinstance(bot, FluxBot)
    await bot.add_cog(Server(bot))
