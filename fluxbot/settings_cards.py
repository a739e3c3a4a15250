"""The cards moderators see of a server's settings, in their own language: the settings, the blocklist and the
styles (the usage report and the budget are in `usage_cards.py`)."""

from __future__ import annotations

from collections.abc import Sequence

import discord

from fluxbot.i18n import LANGUAGE_NAMES, N_, LocaleValue, number, plural, text, text_in
from fluxbot.limits import GuildSettings, Limits, Style
from fluxbot.render import clip
from fluxbot.styles import MAX_STYLES, describe

# Translators: a setting that is turned off.
OFF = N_("off")
#: The spoiler modes as the settings card says them.
SPOILERS = {
    "never": N_("never"),
    "always": N_("always"),
    "outside_age_restricted": N_("outside age-restricted channels"),
}


def settings_card(
    settings: GuildSettings, limits: Limits, default_model: str, *, serve_dms: bool, locale: LocaleValue
) -> discord.Embed:
    """This server's settings, as moderators see them (in the moderator's `locale`)."""
    embed = discord.Embed(title=text(locale, "fluxbot settings for this server"), colour=discord.Colour.blurple())
    _add_places(embed, settings, default_model, locale)
    _add_limits(embed, settings, limits, serve_dms=serve_dms, locale=locale)
    _add_moderation(embed, settings, locale)
    language = text(locale, "Discord's server language")
    if settings.locale:  # the language's name in its own words
        language = f"{LANGUAGE_NAMES.get(settings.locale, settings.locale)} (`{settings.locale}`)"
    embed.add_field(name=text(locale, "Language of what everyone sees"), value=language, inline=True)
    footer = text(
        locale,
        "Change with /fluxadmin models · channels · role · limits · budget · dms · blocklist · style · modlog · "
        "strikes · safety · spoilers · language",
    )
    embed.set_footer(text=footer)
    return embed


def _add_places(embed: discord.Embed, settings: GuildSettings, default_model: str, locale: LocaleValue) -> None:
    """Which models, where, and who."""
    models = ", ".join(f"`{m}`" for m in settings.allowed_models) or text(locale, "all models")
    embed.add_field(name=text(locale, "Default model"), value=f"`{default_model}`", inline=True)
    embed.add_field(name=text(locale, "Allowed models"), value=models, inline=False)
    channels = ", ".join(f"<#{c}>" for c in settings.allowed_channels) or text(locale, "every channel")
    embed.add_field(name=text(locale, "Channels"), value=channels, inline=False)
    # Translators: who may use the bot on this server: everyone (no role is required).
    role = f"<@&{settings.required_role}>" if settings.required_role else text(locale, "everyone")
    embed.add_field(name=text(locale, "Who may use it"), value=role, inline=True)


def _add_limits(
    embed: discord.Embed, settings: GuildSettings, limits: Limits, *, serve_dms: bool, locale: LocaleValue
) -> None:
    """How much each member, and the whole server, may make; and direct messages."""
    off = text(locale, OFF)
    embed.add_field(name=text(locale, "Jobs at once per member"), value=number(locale, limits.member_jobs), inline=True)
    cooldown = plural(locale, "{n} second", "{n} seconds", limits.cooldown_seconds) if limits.cooldown_seconds else off
    embed.add_field(name=text(locale, "Cooldown"), value=cooldown, inline=True)
    # Translators: {n} images per member per UTC day.
    quota = plural(locale, "{n} (UTC day)", "{n} (UTC day)", limits.daily_images) if limits.daily_images else off
    embed.add_field(name=text(locale, "Images per member per day"), value=quota, inline=True)
    budget = []
    if settings.budget_daily_images:
        budget.append(plural(locale, "{n} image per UTC day", "{n} images per UTC day", settings.budget_daily_images))
    if settings.budget_monthly_images:
        n = settings.budget_monthly_images
        budget.append(plural(locale, "{n} image per UTC month", "{n} images per UTC month", n))
    embed.add_field(name=text(locale, "Server budget"), value=", ".join(budget) or off, inline=True)
    if not serve_dms:
        dms = text(locale, "off: the bot's operator does not serve DMs (SERVE_DMS)")
    elif settings.dms:
        dms = text(locale, "members may use it in DMs, under these rules")
    else:
        dms = text(locale, "off for this server's members")
    embed.add_field(name=text(locale, "Direct messages"), value=dms, inline=False)


def _add_moderation(embed: discord.Embed, settings: GuildSettings, locale: LocaleValue) -> None:
    """What prompts may contain, the styles, the moderation log, strikes, Kie's ceiling and spoilers."""
    off = text(locale, OFF)
    rules = plural(locale, "{n} rule of this server's own", "{n} rules of this server's own", len(settings.blocklist))
    embed.add_field(name=text(locale, "Blocklist"), value=rules, inline=True)
    styles = ", ".join(f"`{style.name}`" for style in settings.styles) or text(locale, "none (`/fluxadmin style add`)")
    embed.add_field(name=text(locale, "Styles"), value=clip(styles, 1024), inline=True)
    modlog = f"<#{settings.modlog_channel}>" if settings.modlog_channel else off
    embed.add_field(name=text(locale, "Moderation log"), value=modlog, inline=True)
    strikes = off
    if settings.strikes:
        strikes = plural(
            locale,
            "{n} refused prompt within {window} min pauses a member for {pause} min",
            "{n} refused prompts within {window} min pause a member for {pause} min",
            settings.strikes,
            window=number(locale, settings.strike_window_minutes),
            pause=number(locale, settings.pause_minutes),
        )
    embed.add_field(name=text(locale, "Strikes"), value=strikes, inline=False)
    # Translators: no ceiling is set for Kie's safety_tolerance.
    ceiling = text_in(locale, "no safety ceiling", "none")
    if settings.safety_ceiling is not None:
        ceiling = text(
            locale, "at most {ceiling} (0 is the strictest)", ceiling=number(locale, settings.safety_ceiling)
        )
    embed.add_field(name=text(locale, "Kie safety_tolerance"), value=ceiling, inline=True)
    mode = SPOILERS.get(settings.spoilers)
    spoilers = text(locale, mode) if mode is not None else settings.spoilers
    embed.add_field(name=text(locale, "Results as spoilers"), value=spoilers, inline=True)


def blocklist_card(settings: GuildSettings, *, operator_rules: int, locale: LocaleValue) -> discord.Embed:
    """A server's blocklist, as moderators see it (in the moderator's `locale`; the rules as they were written)."""
    embed = discord.Embed(title=text(locale, "fluxbot blocklist for this server"), colour=discord.Colour.blurple())
    rules = "\n".join(f"`{rule}`" for rule in settings.blocklist) or text(locale, "No rules of this server's own.")
    embed.description = rules[:4000]
    footer = [text(locale, "Prompts matching a rule are refused before anything is sent.")]
    if operator_rules:
        footer.insert(0, plural(locale, "The bot's operator adds {n} rule of their own on every server.",
                                "The bot's operator adds {n} rules of their own on every server.",
                                operator_rules))  # fmt: skip
    embed.set_footer(text=" ".join(footer))
    return embed


def styles_card(styles: Sequence[Style], *, locale: LocaleValue = None) -> discord.Embed:
    """A server's style presets, as moderators and members see them (in the reader's `locale`; the styles as the
    moderators wrote them)."""
    embed = discord.Embed(title=text(locale, "fluxbot styles on this server"), colour=discord.Colour.blurple())
    if not styles:
        embed.description = text(locale, "No styles yet. Add one with `/fluxadmin style add`.")
    else:
        lines = [f"**{style.name}**: {describe(style, locale)}" for style in styles]
        embed.description = "\n".join(lines)[:4000]
    # Translators: {count} styles of the {n} a server may have.
    shown = plural(
        locale, "{count} of {n} style.", "{count} of {n} styles.", MAX_STYLES, count=number(locale, len(styles))
    )
    how = text(locale, "Members pick one with /imagine style: or /edit style:; its text joins their prompt.")
    embed.set_footer(text=f"{shown} {how}")
    return embed
