"""Per-server settings for moderators (/fluxadmin) and what the bot offers here (/flux). Replies only."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable

import discord
from discord import app_commands
from discord.ext import commands

from fluxbot import catalog
from fluxbot.bot import FluxBot
from fluxbot.limits import GuildSettings, Refused, next_utc_midnight, with_changes
from fluxbot.moderation import MAX_RULES, parse_rule
from fluxbot.settings_cards import blocklist_card, settings_card, usage_card

log = logging.getLogger(__name__)


NEEDS_MANAGE_SERVER = "Only members with the **Manage Server** permission can change fluxbot's settings here."


class Server(commands.Cog):
    """Moderator settings and the member-facing overview."""

    admin = app_commands.Group(
        name="fluxadmin",
        description="fluxbot settings for this server (Manage Server)",
        default_permissions=discord.Permissions(manage_guild=True),
        guild_only=True,
    )

    def __init__(self, bot: FluxBot) -> None:
        self.bot = bot

    async def interaction_check(self, interaction: discord.Interaction) -> bool:
        """Re-check Manage Server at run time: default permissions can be overridden by the server."""
        command = interaction.command
        # root_parent: /fluxadmin blocklist add is under a subgroup, and needs the permission just the same.
        in_admin = isinstance(command, app_commands.Command) and command.root_parent is self.admin
        if in_admin and not interaction.permissions.manage_guild:
            await interaction.response.send_message(NEEDS_MANAGE_SERVER, ephemeral=True)
            return False
        return True

    @staticmethod
    def _guild_id(interaction: discord.Interaction) -> int:
        assert interaction.guild_id is not None  # the group is guild-only
        return interaction.guild_id

    async def _change(self, interaction: discord.Interaction, change: Callable[[GuildSettings], GuildSettings]) -> None:
        """Apply `change` to this server's settings and show the result (a `Refused` from it is answered instead)."""
        settings = await self.bot.policies.change_guild_settings(self._guild_id(interaction), change)
        log.info("server %s settings changed by %s: %s", interaction.guild_id, interaction.user.id, settings.to_json())
        await self._show(interaction, settings, saved=True)

    async def _show(self, interaction: discord.Interaction, settings: GuildSettings, *, saved: bool = False) -> None:
        policy = self.bot.policies.policy_for_settings(settings)
        embed = settings_card(settings, policy.limits, policy.default_model, serve_dms=self.bot.settings.serve_dms)
        if saved:
            embed.description = "✅ Saved. The change applies to the next command."
            capped = settings.capped(self.bot.settings.limits())
            if capped:
                embed.description += "\nThe bot's operator sets the upper limits: " + "; ".join(capped) + "."
        await interaction.response.send_message(embed=embed, ephemeral=True)

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
        if default is not None and default not in names:
            known = ", ".join(f"`{n}`" for n in names)
            await interaction.response.send_message(
                f"`{default[:40]}` is not a model of this bot's provider. Pick one of {known}.", ephemeral=True
            )
            return
        picked = [n.strip() for n in allowed.split(",") if n.strip()] if allowed is not None else None
        if picked is not None and picked != ["all"]:
            unknown = [n for n in picked if n not in names]
            if unknown or not picked:
                valid = ", ".join(f"`{n}`" for n in names)
                shown = ", ".join(f"`{n[:40]}`" for n in unknown)
                problem = f"{shown} is not a model I know." if unknown else "Name at least one model."
                await interaction.response.send_message(f"{problem} Use `all`, or names from: {valid}.", ephemeral=True)
                return

        def change(settings: GuildSettings) -> GuildSettings:
            allowed_models = settings.allowed_models
            if picked is not None:
                allowed_models = () if picked == ["all"] else tuple(dict.fromkeys(picked))
            new_default = default if default is not None else settings.default_model
            if new_default and allowed_models and new_default not in allowed_models:
                raise Refused(f"The default model `{new_default}` must be one of the allowed models.")
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
        await interaction.response.send_message(
            f"{member.mention} may use fluxbot here again; their refused prompts are forgotten." if lifted else
            f"{member.mention} is not paused here. Their refused prompts are forgotten all the same.",
            ephemeral=True,
            allowed_mentions=discord.AllowedMentions.none(),
        )  # fmt: skip

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
            await interaction.response.send_message("Give a `ceiling` from 0 to 6, or `reset:True`.", ephemeral=True)
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
        report = await self.bot.store.guild_report(guild_id, days=days)
        await interaction.response.send_message(embed=usage_card(report), ephemeral=True)

    @admin.command(name="cancel", description="Cancel a member's jobs that are still waiting in line")
    @app_commands.describe(member="Whose waiting jobs to cancel")
    async def cancel(self, interaction: discord.Interaction, member: discord.Member) -> None:
        """Cancel a member's queued jobs."""
        guild_id = self._guild_id(interaction)
        await interaction.response.defer(ephemeral=True, thinking=True)
        cancelled = await self.bot.jobs.cancel_queued(guild_id, member.id)
        log.info("server %s: %s cancelled %d queued job(s) of %s", guild_id, interaction.user.id, cancelled, member.id)
        await interaction.followup.send(
            f"Cancelled {cancelled} waiting job(s) of {member.mention}." if cancelled else
            f"{member.mention} has no jobs waiting in line.",
            ephemeral=True,
            allowed_mentions=discord.AllowedMentions.none(),
        )  # fmt: skip

    blocklist = app_commands.Group(name="blocklist", description="Words and patterns prompts may not contain",
                                   parent=admin)  # fmt: skip

    @blocklist.command(name="add", description="Refuse prompts with this word, phrase, or re: pattern")
    @app_commands.describe(rule="A word or phrase (whole words, any case or accents), or re: and an RE2 pattern")
    async def blocklist_add(self, interaction: discord.Interaction, rule: str) -> None:
        """Add a rule."""
        added = parse_rule(rule)  # InvalidRule says what to type instead

        def add(settings: GuildSettings) -> GuildSettings:
            if added.text in settings.blocklist:
                raise Refused(f"`{added.text}` is on this server's blocklist already.")
            if len(settings.blocklist) >= MAX_RULES:
                raise Refused(f"This server has {MAX_RULES} rules, the most it may have. Remove one first.")
            return with_changes(settings, blocklist=(*settings.blocklist, added.text))

        await self._change_blocklist(interaction, add, f"Added `{added.text}`.")

    @blocklist.command(name="remove", description="Stop refusing prompts for this rule")
    @app_commands.describe(rule="The rule exactly as /fluxadmin blocklist show lists it")
    async def blocklist_remove(self, interaction: discord.Interaction, rule: str) -> None:
        """Remove a rule."""
        text = rule.strip()

        def remove(settings: GuildSettings) -> GuildSettings:
            if text not in settings.blocklist:
                raise Refused(f"`{text[:100]}` is not on this server's blocklist. See `/fluxadmin blocklist show`.")
            return with_changes(settings, blocklist=tuple(r for r in settings.blocklist if r != text))

        await self._change_blocklist(interaction, remove, f"Removed `{text}`.")

    @blocklist.command(name="show", description="List the rules prompts are checked against here")
    async def blocklist_show(self, interaction: discord.Interaction) -> None:
        """List the server's rules (and how many the operator adds)."""
        settings = await self.bot.policies.guild_settings(self._guild_id(interaction))
        await interaction.response.send_message(
            embed=blocklist_card(settings, operator_rules=len(self.bot.settings.blocklist)), ephemeral=True
        )

    async def _change_blocklist(
        self, interaction: discord.Interaction, change: Callable[[GuildSettings], GuildSettings], done: str
    ) -> None:
        settings = await self.bot.policies.change_guild_settings(self._guild_id(interaction), change)
        log.info("server %s blocklist changed by %s: %d rule(s)", interaction.guild_id, interaction.user.id,
                 len(settings.blocklist))  # fmt: skip
        embed = blocklist_card(settings, operator_rules=len(self.bot.settings.blocklist))
        embed.description = f"✅ {done} It applies to the next prompt.\n\n{embed.description}"
        await interaction.response.send_message(embed=embed, ephemeral=True)

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
    await bot.add_cog(Server(bot))
