"""The cards moderators see: a server's settings, its blocklist, its styles, its budget, and its usage report."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from decimal import Decimal

import discord

from fluxbot.budgets import DAY, MONTH, PERIODS, Budget, BudgetUse, period_end
from fluxbot.i18n import LANGUAGE_NAMES
from fluxbot.limits import GuildSettings, Limits, Style
from fluxbot.render import clip
from fluxbot.storage import GuildReport
from fluxbot.styles import MAX_STYLES, describe

#: Discord's limit for an embed's description.
_DESCRIPTION = 4096


def _limit_text(value: int, unit: str) -> str:
    return f"{value} {unit}" if value else "off"


def _tally(images: int, jobs: int, failures: int) -> str:
    return f"{images} image(s) in {jobs} job(s), {failures} failed"


def money(amount: Decimal) -> str:
    """An amount as the operator wrote the prices: no currency, at most four decimals, no trailing zeros."""
    if int(amount.as_tuple().exponent) < -4:
        amount = amount.quantize(Decimal("0.0001"))
    return format(amount.normalize(), "f")


def spend(models: Mapping[str, int], prices: Mapping[str, Decimal]) -> str:
    """The estimated spend of these images per model: "≈ 0.48", with the images of models without a price."""
    priced = [(images, prices[model]) for model, images in models.items() if model in prices]
    unpriced = sum(images for model, images in models.items() if model not in prices)
    parts = [f"≈ {money(sum((images * price for images, price in priced), Decimal(0)))}"] if priced else []
    if unpriced:
        parts.append(f"{unpriced} image(s) with no price")
    return " + ".join(parts) or "nothing"


def _clipped(lines: list[str]) -> str:
    """The lines, cut (with a note) where an embed's description would end."""
    text = "\n".join(lines)
    if len(text) <= _DESCRIPTION:
        return text
    return text[: _DESCRIPTION - 40].rsplit("\n", 1)[0] + "\n… (fewer days show everything)"


def _report_lines(report: GuildReport, prices: Mapping[str, Decimal]) -> list[str]:
    """Per member and per day; with prices, each with its estimated spend, and per model."""

    def line(name: str, images: int, jobs: int, failures: int, models: Mapping[str, int]) -> str:
        cost = f" · {spend(models, prices)}" if prices and images else ""
        return f"{name}: {_tally(images, jobs, failures)}{cost}"

    lines = ["**Per member**"]
    lines += [line(f"<@{m.user_id}>", m.images, m.jobs, m.failures, m.models) for m in report.members]
    if report.more_members:
        lines.append(f"… and {report.more_members} more member(s)")
    lines.append("**Per day**")
    lines += [line(d.day.isoformat(), d.images, d.jobs, d.failures, d.models) for d in report.per_day]
    if prices:
        lines.append("**Per model**")
        for model, images in report.per_model.items():
            price = prices.get(model)
            each = f" × {money(price)} = {money(images * price)}" if price is not None else ", no price"
            lines.append(f"`{model}`: {images} image(s){each}")
    return lines


def usage_card(
    report: GuildReport,
    *,
    prices: Mapping[str, Decimal] | None = None,
    budget: Budget | None = None,
    used: BudgetUse | None = None,
    now: float = 0.0,
) -> discord.Embed:
    """A server's usage per member and per day (with `prices`, the estimated spend, also per model), its budget
    used (with `budget` and `used`, at `now`), and its open jobs."""
    span = "today" if report.days == 1 else f"the last {report.days} days"
    embed = discord.Embed(title=f"fluxbot usage, {span} (UTC)", colour=discord.Colour.blurple())
    if not report.members:
        embed.description = f"Nobody has used fluxbot here {span}."
    else:
        embed.description = _clipped(_report_lines(report, prices or {}))
        if prices:
            embed.add_field(name="Estimated spend", value=spend(report.per_model, prices), inline=False)
    if budget is not None and used is not None and budget.applies:
        embed.add_field(name="Server budget", value="\n".join(budget_lines(budget, used, now=now)), inline=False)
    open_jobs = ", ".join(f"{count} {status}" for status, count in sorted(report.open_jobs.items())) or "none"
    embed.add_field(name="Jobs open now", value=open_jobs, inline=False)
    return embed


def _used_of(period: str, budget: Budget, used: BudgetUse, *, now: float) -> str:
    """How much of the period's budget is used, and when it resets."""
    limit, images = budget.limit(period), used.used(period)
    if not limit:
        return f"off ({images} image(s) so far)"
    left = max(0, limit - images)
    return (
        f"{images} of {limit} images used ({images * 100 // limit} %), {left} left; "
        f"resets <t:{int(period_end(period, now))}:R>"
    )


def budget_lines(budget: Budget, used: BudgetUse, *, now: float) -> list[str]:
    """For each period with a budget: how much of it is used and when it resets."""
    names = {DAY: "Today (UTC)", MONTH: "This month (UTC)"}
    return [f"{names[p]}: {_used_of(p, budget, used, now=now)}" for p in PERIODS if budget.limit(p)]


def budget_card(settings: GuildSettings, budget: Budget, used: BudgetUse, *, now: float) -> discord.Embed:
    """A server's budget, what is used of it and when each period resets, as moderators see it."""
    embed = discord.Embed(title="fluxbot budget for this server", colour=discord.Colour.blurple())
    for period, name in ((DAY, "Per UTC day"), (MONTH, "Per UTC month")):
        embed.add_field(name=name, value=_used_of(period, budget, used, now=now), inline=False)
    notices = (
        f"<#{settings.modlog_channel}> gets a notice at 80 % and at 100 % of a budget"
        if settings.modlog_channel
        else "choose a channel with /fluxadmin modlog to get a notice at 80 % and at 100 % of a budget"
    )
    embed.add_field(name="Notices", value=notices, inline=False)
    embed.set_footer(
        text="Counted: images of jobs made here or in DMs under this server's rules, on top of each member's quota; "
        "failed jobs do not count. A budget used up refuses new jobs until it resets."
    )
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
    budget = [f"{n} images per UTC {period}" for n, period in
              ((settings.budget_daily_images, DAY), (settings.budget_monthly_images, MONTH)) if n]  # fmt: skip
    embed.add_field(name="Server budget", value=", ".join(budget) or "off", inline=True)
    dms = "members may use it in DMs, under these rules" if settings.dms else "off for this server's members"
    if not serve_dms:
        dms = "off: the bot's operator does not serve DMs (SERVE_DMS)"
    embed.add_field(name="Direct messages", value=dms, inline=False)
    embed.add_field(name="Blocklist", value=f"{len(settings.blocklist)} rule(s) of this server's own", inline=True)
    styles = ", ".join(f"`{style.name}`" for style in settings.styles) or "none (`/fluxadmin style add`)"
    embed.add_field(name="Styles", value=clip(styles, 1024), inline=True)
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
    language = "Discord's server language"
    if settings.locale:
        language = f"{LANGUAGE_NAMES.get(settings.locale, settings.locale)} (`{settings.locale}`)"
    embed.add_field(name="Language of what everyone sees", value=language, inline=True)
    embed.set_footer(
        text="Change with /fluxadmin models · channels · role · limits · budget · dms · blocklist · style · modlog · "
        "strikes · safety · spoilers · language"
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
