"""The cards moderators see: a server's settings, its blocklist, its styles, and its usage report."""

from __future__ import annotations

from collections.abc import Sequence

import discord

from fluxbot.limits import GuildSettings, Limits, Style
from fluxbot.storage import GuildReport
from fluxbot.styles import MAX_STYLES, describe


def _limit_text(value: int, unit: str) -> str:
    return f"{value} {unit}" if value else "off"


def _tally(images: int, jobs: int, failures: int) -> str:
    return f"{images} image(s) in {jobs} job(s), {failures} failed"


def usage_card(report: GuildReport) -> discord.Embed:
    """A server's usage per member and per day, and its open jobs."""
    span = "today" if report.days == 1 else f"the last {report.days} days"
    embed = discord.Embed(title=f"fluxbot usage, {span} (UTC)", colour=discord.Colour.blurple())
    if not report.members:
        embed.description = f"Nobody has used fluxbot here {span}."
    else:
        lines = ["**Per member**"]
        lines += [f"<@{m.user_id}>: {_tally(m.images, m.jobs, m.failures)}" for m in report.members]
        if report.more_members:
            lines.append(f"… and {report.more_members} more member(s)")
        lines.append("**Per day**")
        lines += [f"{d.day.isoformat()}: {_tally(d.images, d.jobs, d.failures)}" for d in report.per_day]
        embed.description = "\n".join(lines)
    open_jobs = ", ".join(f"{count} {status}" for status, count in sorted(report.open_jobs.items())) or "none"
    embed.add_field(name="Jobs open now", value=open_jobs, inline=False)
    return embed


def settings_card(settings: GuildSettings, limits: Limits, default_model: str, *, serve_dms: bool) -> discord.Embed:
    """This server's settings, as moderators see them."""
    embed = discord.Embed(title="fluxbot settings for this server", colour=discord.Colour.blurple())
    models = ", ".join(f"`{m}`" for m in settings.allowed_models) or "all models"
    embed.add_field(name="Default model", value=f"`{default_model}`", inline=True)
    embed.add_field(name="Allowed models", value=models, inline=False)
    channels = ", ".join(f"<#{c}>" for c in settings.allowed_channels) or "every channel"
    embed.add_field(name="Channels", value=channels, inline=False)
    role = f"<@&{settings.required_role}>" if settings.required_role else "everyone"
    embed.add_field(name="Who may use it", value=role, inline=True)
    embed.add_field(name="Jobs at once per member", value=str(limits.member_jobs), inline=True)
    embed.add_field(name="Cooldown", value=_limit_text(limits.cooldown_seconds, "seconds"), inline=True)
    embed.add_field(name="Images per member per day", value=_limit_text(limits.daily_images, "(UTC day)"), inline=True)
    dms = "members may use it in DMs, under these rules" if settings.dms else "off for this server's members"
    if not serve_dms:
        dms = "off: the bot's operator does not serve DMs (SERVE_DMS)"
    embed.add_field(name="Direct messages", value=dms, inline=False)
    embed.add_field(name="Blocklist", value=f"{len(settings.blocklist)} rule(s) of this server's own", inline=True)
    modlog = f"<#{settings.modlog_channel}>" if settings.modlog_channel else "off"
    embed.add_field(name="Moderation log", value=modlog, inline=True)
    strikes = "off"
    if settings.strikes:
        strikes = (f"{settings.strikes} refused prompt(s) within {settings.strike_window_minutes} min pause a "
                   f"member for {settings.pause_minutes} min")  # fmt: skip
    embed.add_field(name="Strikes", value=strikes, inline=False)
    ceiling = "none" if settings.safety_ceiling is None else f"at most {settings.safety_ceiling} (0 is the strictest)"
    embed.add_field(name="Kie safety_tolerance", value=ceiling, inline=True)
    spoilers = {"never": "never", "always": "always", "outside_age_restricted": "outside age-restricted channels"}
    embed.add_field(name="Results as spoilers", value=spoilers.get(settings.spoilers, settings.spoilers), inline=True)
    embed.set_footer(
        text="Change with /fluxadmin models · channels · role · limits · dms · blocklist · modlog · strikes · safety"
    )
    return embed


def blocklist_card(settings: GuildSettings, *, operator_rules: int) -> discord.Embed:
    """A server's blocklist, as moderators see it."""
    embed = discord.Embed(title="fluxbot blocklist for this server", colour=discord.Colour.blurple())
    rules = "\n".join(f"`{rule}`" for rule in settings.blocklist) or "No rules of this server's own."
    embed.description = rules[:4000]
    operator = operator_rules
    embed.set_footer(
        text=(f"The bot's operator adds {operator} rule(s) of their own on every server. " if operator else "")
        + "Prompts matching a rule are refused before anything is sent."
    )
    return embed


def styles_card(styles: Sequence[Style]) -> discord.Embed:
    """A server's style presets, as moderators and members see them."""
    embed = discord.Embed(title="fluxbot styles on this server", colour=discord.Colour.blurple())
    if not styles:
        embed.description = "No styles yet. Add one with `/fluxadmin style add`."
    else:
        lines = [f"**{style.name}**: {describe(style)}" for style in styles]
        embed.description = "\n".join(lines)[:4000]
    embed.set_footer(
        text=f"{len(styles)} of {MAX_STYLES} styles. Members pick one with /imagine style: or /edit style:; "
        "its text joins their prompt."
    )
    return embed
