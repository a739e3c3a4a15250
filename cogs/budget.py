"""`/fluxadmin budget`: a server-wide image budget per UTC day and per UTC month, and what `/fluxadmin usage` adds
to it (the budget used, the estimated spend). Replies only; the rules are in `fluxbot/budgets.py`."""

from __future__ import annotations

import logging
import time

import discord
from discord import app_commands

from cogs.fluxadmin import SAVED, AdminCommands, admin
from fluxbot.i18n import LocaleValue, member_locale, number, text
from fluxbot.limits import GuildSettings, with_changes
from fluxbot.storage import GuildReport
from fluxbot.usage_cards import budget_card, usage_card

log = logging.getLogger(__name__)

MAX_BUDGET = 10_000_000


class BudgetCommands(AdminCommands):
    """How many images the whole server may make, and what they cost."""

    @admin.command(name="budget", description="Images the whole server may make per UTC day and month (0 = off)")
    @app_commands.describe(
        day="Images per UTC day for the whole server, on top of member quotas (0 = no day budget)",
        month="Images per UTC calendar month for the whole server (0 = no month budget)",
        reset="Turn both budgets off",
    )
    async def budget(
        self,
        interaction: discord.Interaction,
        day: app_commands.Range[int, 0, MAX_BUDGET] | None = None,
        month: app_commands.Range[int, 0, MAX_BUDGET] | None = None,
        reset: bool = False,
    ) -> None:
        """Show the budget, or change it and show it."""
        guild_id = self._guild_id(interaction)
        changing = reset or day is not None or month is not None
        if changing:

            def change(settings: GuildSettings) -> GuildSettings:
                if reset:
                    settings = with_changes(settings, budget_daily_images=0, budget_monthly_images=0)
                changes = {"budget_daily_images": day, "budget_monthly_images": month}
                return with_changes(settings, **{k: v for k, v in changes.items() if v is not None})

            settings = await self.bot.policies.change_guild_settings(guild_id, change)
            log.info("server %s budget changed by %s: day %d, month %d", guild_id, interaction.user.id,
                     settings.budget_daily_images, settings.budget_monthly_images)  # fmt: skip
        else:
            settings = await self.bot.policies.guild_settings(guild_id)
        locale = member_locale(interaction)  # only the moderator sees it
        now = time.time()
        used = await self.bot.store.budgets.used(guild_id, now=now)
        embed = budget_card(settings, settings.budget(guild_id), used, now=now, locale=locale)
        if changing:
            embed.description = text(locale, SAVED)
            daily, monthly = settings.budget_daily_images, settings.budget_monthly_images
            if daily and monthly and daily > monthly:
                embed.description += "\n" + text(
                    locale,
                    "Note: the day budget ({day}) is above the month's ({month}): a day never gets all of it.",
                    day=number(locale, daily),
                    month=number(locale, monthly),
                )
        await interaction.response.send_message(embed=embed, ephemeral=True)

    async def _usage_card(self, guild_id: int, report: GuildReport, *, locale: LocaleValue) -> discord.Embed:
        """The usage report in `locale`, with the budget used and, when the operator set IMAGE_PRICES, the estimated
        spend."""
        budget = (await self.bot.policies.guild_settings(guild_id)).budget(guild_id)
        now = time.time()
        used = await self.bot.store.budgets.used(guild_id, now=now) if budget.applies else None
        return usage_card(report, locale=locale, prices=self.bot.settings.prices, budget=budget, used=used, now=now)
