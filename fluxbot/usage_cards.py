"""The cards of what a server uses, as moderators see them (in their own language): its usage report and its
budget, with the estimated spend when the operator set IMAGE_PRICES."""

from __future__ import annotations

from collections.abc import Mapping
from decimal import Decimal

import discord
from babel import numbers

from fluxbot.budgets import DAY, MONTH, PERIODS, Budget, BudgetUse, period_end
from fluxbot.i18n import LocaleValue, babel_locale, date_text, discord_time, number, plural, text, text_in
from fluxbot.limits import GuildSettings
from fluxbot.storage import GuildReport

#: Discord's limit for an embed's description.
_DESCRIPTION = 4096
#: An amount: at most four decimals, no trailing zeros, the locale's separators.
_AMOUNT = "#,##0.####"


def money(amount: Decimal, locale: LocaleValue) -> str:
    """An amount as the operator wrote the prices (no currency, at most four decimals, no trailing zeros), with the
    locale's separators."""
    if int(amount.as_tuple().exponent) < -4:
        amount = amount.quantize(Decimal("0.0001"))
    return numbers.format_decimal(amount.normalize(), format=_AMOUNT, locale=babel_locale(locale))


def spend(models: Mapping[str, int], prices: Mapping[str, Decimal], locale: LocaleValue) -> str:
    """The estimated spend of these images per model: "≈ 0.48", with the images of models without a price."""
    priced = [(images, prices[model]) for model, images in models.items() if model in prices]
    unpriced = sum(images for model, images in models.items() if model not in prices)
    parts = [f"≈ {money(sum((images * price for images, price in priced), Decimal(0)), locale)}"] if priced else []
    if unpriced:
        parts.append(plural(locale, "{n} image with no price", "{n} images with no price", unpriced))
    # Translators: the estimated spend of images that made nothing.
    return " + ".join(parts) or text(locale, "nothing")


def _images(locale: LocaleValue, images: int) -> str:
    return plural(locale, "{n} image", "{n} images", images)


def _tally(locale: LocaleValue, images: int, jobs: int, failures: int) -> str:
    # Translators: e.g. "6 images in 3 jobs, 1 failed": {images} and {failed} are translated on their own.
    return plural(
        locale,
        "{images} in {n} job, {failed}",
        "{images} in {n} jobs, {failed}",
        jobs,
        images=_images(locale, images),
        # Translators: how many of the jobs failed, e.g. "6 images in 3 jobs, 1 failed".
        failed=plural(locale, "{n} failed", "{n} failed", failures),
    )


def _clipped(lines: list[str], locale: LocaleValue) -> str:
    """The lines, cut (with a note) where an embed's description would end."""
    shown = "\n".join(lines)
    if len(shown) <= _DESCRIPTION:
        return shown
    note = "\n" + text(locale, "… (fewer days show everything)")
    return shown[: _DESCRIPTION - len(note) - 1].rsplit("\n", 1)[0] + note


def _report_lines(report: GuildReport, prices: Mapping[str, Decimal], locale: LocaleValue) -> list[str]:
    """Per member and per day; with prices, each with its estimated spend, and per model."""

    def line(name: str, images: int, jobs: int, failures: int, models: Mapping[str, int]) -> str:
        cost = f" · {spend(models, prices, locale)}" if prices and images else ""
        # Translators: a line of the usage report: who (a member) or when (a day), then what they made.
        return text(locale, "{who}: {tally}", who=name, tally=_tally(locale, images, jobs, failures)) + cost

    lines = [text(locale, "**Per member**")]
    lines += [line(f"<@{m.user_id}>", m.images, m.jobs, m.failures, m.models) for m in report.members]
    if report.more_members:
        lines.append(plural(locale, "… and {n} more member", "… and {n} more members", report.more_members))
    lines.append(text(locale, "**Per day**"))
    lines += [line(date_text(locale, d.day), d.images, d.jobs, d.failures, d.models) for d in report.per_day]
    if prices:
        lines.append(text(locale, "**Per model**"))
        for model, images in report.per_model.items():
            price = prices.get(model)
            if price is None:
                lines.append(text(locale, "`{model}`: {images}, no price", model=model, images=_images(locale, images)))
            else:
                each = {"price": money(price, locale), "total": money(images * price, locale)}
                # Translators: the images of a model, times the price of one, and what they cost.
                line_text = text(locale, "`{model}`: {images} × {price} = {total}", model=model,
                                 images=_images(locale, images), **each)  # fmt: skip
                lines.append(line_text)
    return lines


def _open_jobs(report: GuildReport, locale: LocaleValue) -> str:
    """The jobs not finished yet, by status ("1 queued, 2 submitted")."""
    said = []
    for status, count in sorted(report.open_jobs.items()):
        if status == "queued":
            # Translators: jobs waiting in line (the number of them is {n}).
            said.append(plural(locale, "{n} queued", "{n} queued", count))
        elif status == "pending":
            # Translators: jobs being sent to the image provider right now (the number of them is {n}).
            said.append(plural(locale, "{n} pending", "{n} pending", count))
        elif status == "submitted":
            # Translators: jobs the image provider is working on (the number of them is {n}).
            said.append(plural(locale, "{n} submitted", "{n} submitted", count))
        else:
            said.append(f"{number(locale, count)} {status}")
    # Translators: no jobs are open (waiting or running) now.
    return ", ".join(said) or text_in(locale, "no open jobs", "none")


def usage_card(
    report: GuildReport,
    *,
    locale: LocaleValue,
    prices: Mapping[str, Decimal] | None = None,
    budget: Budget | None = None,
    used: BudgetUse | None = None,
    now: float = 0.0,
) -> discord.Embed:
    """A server's usage per member and per day (with `prices`, the estimated spend, also per model), its budget
    used (with `budget` and `used`, at `now`), and its open jobs; in the moderator's `locale`."""
    if report.days == 1:
        title = text(locale, "fluxbot usage, today (UTC)")
        nobody = text(locale, "Nobody has used fluxbot here today.")
    else:
        title = plural(locale, "fluxbot usage, the last {n} day (UTC)", "fluxbot usage, the last {n} days (UTC)",
                       report.days)  # fmt: skip
        nobody = plural(locale, "Nobody has used fluxbot here the last {n} day.",
                        "Nobody has used fluxbot here the last {n} days.", report.days)  # fmt: skip
    embed = discord.Embed(title=title, colour=discord.Colour.blurple())
    if not report.members:
        embed.description = nobody
    else:
        embed.description = _clipped(_report_lines(report, prices or {}, locale), locale)
        if prices:
            embed.add_field(name=text(locale, "Estimated spend"), value=spend(report.per_model, prices, locale),
                            inline=False)  # fmt: skip
    if budget is not None and used is not None and budget.applies:
        lines = budget_lines(budget, used, now=now, locale=locale)
        embed.add_field(name=text(locale, "Server budget"), value="\n".join(lines), inline=False)
    embed.add_field(name=text(locale, "Jobs open now"), value=_open_jobs(report, locale), inline=False)
    return embed


def _used_of(period: str, budget: Budget, used: BudgetUse, *, now: float, locale: LocaleValue) -> str:
    """How much of the period's budget is used, and when it resets."""
    limit, images = budget.limit(period), used.used(period)
    if not limit:
        # Translators: a budget that is turned off, and the images made so far anyway.
        return plural(locale, "off ({n} image so far)", "off ({n} images so far)", images)
    # Translators: {used} images of the budget of {n} are used; {reset} is a Discord timestamp shown as a relative
    # time ("in 5 hours").
    return plural(
        locale,
        "{used} of {n} image used ({percent} %), {left} left; resets {reset}",
        "{used} of {n} images used ({percent} %), {left} left; resets {reset}",
        limit,
        used=number(locale, images),
        percent=number(locale, images * 100 // limit),
        left=number(locale, max(0, limit - images)),
        reset=discord_time(period_end(period, now)),
    )


def budget_lines(budget: Budget, used: BudgetUse, *, now: float, locale: LocaleValue) -> list[str]:
    """For each period with a budget: how much of it is used and when it resets."""
    lines = []
    for period in PERIODS:
        if budget.limit(period):
            shown = _used_of(period, budget, used, now=now, locale=locale)
            if period == DAY:
                lines.append(text(locale, "Today (UTC): {used}", used=shown))
            else:
                lines.append(text(locale, "This month (UTC): {used}", used=shown))
    return lines


def budget_card(
    settings: GuildSettings, budget: Budget, used: BudgetUse, *, now: float, locale: LocaleValue
) -> discord.Embed:
    """A server's budget, what is used of it and when each period resets, as moderators see it (in `locale`)."""
    embed = discord.Embed(title=text(locale, "fluxbot budget for this server"), colour=discord.Colour.blurple())
    for period, name in ((DAY, text(locale, "Per UTC day")), (MONTH, text(locale, "Per UTC month"))):
        embed.add_field(name=name, value=_used_of(period, budget, used, now=now, locale=locale), inline=False)
    if settings.modlog_channel:
        channel = f"<#{settings.modlog_channel}>"
        notices = text(locale, "{channel} gets a notice at 80 % and at 100 % of a budget", channel=channel)
    else:
        notices = text(
            locale, "choose a channel with /fluxadmin modlog to get a notice at 80 % and at 100 % of a budget"
        )
    embed.add_field(name=text(locale, "Notices"), value=notices, inline=False)
    footer = text(
        locale,
        "Counted: images of jobs made here or in DMs under this server's rules, on top of each member's quota; "
        "failed jobs do not count. A budget used up refuses new jobs until it resets.",
    )
    embed.set_footer(text=footer)
    return embed
