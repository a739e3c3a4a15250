"""What follows a refused prompt: the moderation log (one message per refusal, in the channel a server's
moderators chose) and strikes (enough refusals in a window pause the member on that server); and the notices a
server's budget brings to the same log."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable

import discord

from fluxbot.budgets import DAY, Budget, Notice, notices_due
from fluxbot.errors import Message
from fluxbot.i18n import N_, LocaleValue, channel_locale, discord_time, number, plural, server_locale, text
from fluxbot.limits import PromptBlocked, Refused
from fluxbot.moderation import Rule
from fluxbot.policy import MemberPolicies
from fluxbot.storage import Store

log = logging.getLogger(__name__)

#: Discord's limit for an embed field's value, less the spoiler marks.
_PROMPT_SHOWN = 1000


def refusal_card(
    user_id: int, channel_id: int | None, prompt: str, rule: Rule, *, now: float, locale: LocaleValue
) -> discord.Embed:
    """What the moderators read, in the server's `locale`: who, where, when, which rule; the prompt (never
    translated) behind a spoiler."""
    embed = discord.Embed(title=text(locale, "Prompt refused"), colour=discord.Colour.orange())
    embed.add_field(name=text(locale, "Member"), value=f"<@{user_id}>", inline=True)
    where = f"<#{channel_id}>" if channel_id else text(locale, "a direct message")
    # Translators: where a refused prompt was typed (a channel, or a direct message).
    embed.add_field(name=text(locale, "Where"), value=where, inline=True)
    embed.add_field(name=text(locale, "When"), value=discord_time(now, "f"), inline=True)
    shown = prompt if len(prompt) <= _PROMPT_SHOWN else prompt[: _PROMPT_SHOWN - 1] + "…"
    embed.add_field(name=text(locale, "Prompt"), value=f"||{discord.utils.escape_markdown(shown)}||", inline=False)
    if rule.source == "operator":
        whose = text(locale, "`{rule}` (the bot operator's list)", rule=rule.text)
    else:
        whose = text(locale, "`{rule}` (this server's blocklist)", rule=rule.text)
    # Translators: the blocklist rule a refused prompt broke.
    embed.add_field(name=text(locale, "Rule"), value=whose, inline=False)
    return embed


def budget_card(notice: Notice, *, locale: LocaleValue) -> discord.Embed:
    """What the moderators read, in the server's `locale`, when the server reaches 80 % or 100 % of a budget."""
    full = notice.percent >= 100
    embed = discord.Embed(
        title=_notice_title(notice, locale), colour=discord.Colour.red() if full else discord.Colour.gold()
    )
    values = {"used": number(locale, notice.used)}
    if notice.period == DAY:
        used = plural(
            locale,
            "This server has used {used} of its {n} image for today (UTC).",
            "This server has used {used} of its {n} images for today (UTC).",
            notice.limit,
            **values,
        )
    else:
        used = plural(
            locale,
            "This server has used {used} of its {n} image for this month (UTC).",
            "This server has used {used} of its {n} images for this month (UTC).",
            notice.limit,
            **values,
        )
    reset = discord_time(notice.resets_at)
    if full:
        # Translators: {reset} is a Discord timestamp shown as a relative time ("in 5 hours").
        resets = text(locale, "New jobs are refused until it resets {reset}.", reset=reset)
    else:
        # Translators: {reset} is a Discord timestamp shown as a relative time ("in 5 hours").
        resets = text(locale, "It resets {reset}.", reset=reset)
    commands = text(locale, "`/fluxadmin budget` shows or changes it; `/fluxadmin usage` shows who used it.")
    embed.description = f"{used} {resets} {commands}"
    return embed


def _notice_title(notice: Notice, locale: LocaleValue) -> str:
    percent = number(locale, notice.percent)
    if notice.period == DAY:
        if notice.percent >= 100:
            return text(locale, "Server budget used up today")
        return text(locale, "Server budget {percent} % used today", percent=percent)
    if notice.percent >= 100:
        return text(locale, "Server budget used up this month")
    return text(locale, "Server budget {percent} % used this month", percent=percent)


async def post(client: discord.Client, channel_id: int, embed: discord.Embed) -> None:
    """Post to the moderation log; a channel the bot cannot post in is logged, never raised."""
    try:
        await client.get_partial_messageable(channel_id).send(
            embed=embed, allowed_mentions=discord.AllowedMentions.none()
        )
    except discord.HTTPException as exc:
        log.warning("could not post to the moderation log channel %s: %s %s", channel_id, exc.status, exc.text)


async def report_refusal(
    client: discord.Client,
    modlog_channel: int,
    *,
    user_id: int,
    channel_id: int | None,
    prompt: str,
    rule: Rule,
    locale: LocaleValue,
) -> None:
    """Post the refusal to the moderation log in the server's `locale`; a channel the bot cannot post in is logged,
    never raised."""
    await post(client, modlog_channel, refusal_card(user_id, channel_id, prompt, rule, now=time.time(), locale=locale))


def paused_message(until: float) -> Message:
    """What a paused member reads (said in their language)."""
    return Message(
        # Translators: {until} is a Discord timestamp shown as a date and time, {when} the same as a relative time.
        N_("You are paused on this server until {until} ({when}), after several refused prompts. A moderator can "
           "lift it sooner with `/fluxadmin pardon`."),
        until=discord_time(until, "f"),
        when=discord_time(until),
    )  # fmt: skip


#: A refusal followed by the pause it brought (no words of its own: each part is said in the member's language).
_REFUSED_AND_PAUSED = "{refusal}\n{pause}"


class Moderation:
    """Pauses paused members, and counts and reports each refused prompt on a server."""

    def __init__(self, client: discord.Client, store: Store, policies: MemberPolicies) -> None:
        self._client = client
        self._store = store
        self._policies = policies
        self._reports: set[asyncio.Task[None]] = set()
        #: The notices of servers' budgets.
        self.budgets = BudgetNotices(client, store, policies)

    async def check_paused(self, interaction: discord.Interaction) -> None:
        """Refused (saying until when) while the member is paused on this server and the server uses strikes.

        Most servers never turn strikes on: their (cached) settings spare every command a database read before
        the 3-second answer. Turning strikes off ends the pauses they brought."""
        if interaction.guild_id is None:
            return
        if not (await self._policies.guild_settings(interaction.guild_id)).strikes:
            return
        until = await self._store.strikes.paused_until(interaction.guild_id, interaction.user.id)
        if until is not None:
            raise Refused(paused_message(until))

    async def refused(self, interaction: discord.Interaction, prompt: str, blocked: PromptBlocked) -> Refused:
        """Count the refusal (a strike), report it to the moderation log, and say what the member is told."""
        if interaction.guild_id is None:
            return blocked  # a DM's refusal belongs to no one server
        settings = await self._policies.guild_settings(interaction.guild_id)
        until = None
        if settings.strikes:  # without strikes a refusal counts towards nothing: no write
            until = await self._store.strikes.record_refusal(
                interaction.guild_id,
                interaction.user.id,
                strikes=settings.strikes,
                window=settings.strike_window_minutes * 60.0,
                pause=settings.pause_minutes * 60.0,
            )
        if settings.modlog_channel is not None:
            report = report_refusal(self._client, settings.modlog_channel, user_id=interaction.user.id,
                                    channel_id=interaction.channel_id, prompt=prompt, rule=blocked.rule,
                                    locale=channel_locale(interaction, settings.locale))  # fmt: skip
            task = asyncio.create_task(report, name="fluxbot-modlog")  # the member is answered first
            self._reports.add(task)
            task.add_done_callback(self._reports.discard)
        if until is None:
            return blocked
        log.info("member %s paused on server %s until %.0f", interaction.user.id, interaction.guild_id, until)
        return Refused(Message(_REFUSED_AND_PAUSED, refusal=blocked.message, pause=paused_message(until)))


class BudgetNotices:
    """After each admitted job, tells the moderation log when its server reaches 80 % or 100 % of a budget: once
    per threshold and period, whichever process admitted the job (the `budget_notices` table decides)."""

    def __init__(
        self, client: discord.Client, store: Store, policies: MemberPolicies, *, clock: Callable[[], float] = time.time
    ) -> None:
        self._client = client
        self._store = store
        self._policies = policies
        self._clock = clock
        #: (server, period, percent) of notices known to be posted (by any process): not asked for again.
        self._posted: set[tuple[int, str, int]] = set()
        self._checks: set[asyncio.Task[None]] = set()

    def job_admitted(self, budget: Budget | None) -> None:
        """Check the job's server in the background: the member's command never waits for it, nor fails by it."""
        if budget is None or not budget.applies:
            return
        task = asyncio.create_task(self._checked(budget), name="fluxbot-budget-notices")
        self._checks.add(task)
        task.add_done_callback(self._checks.discard)

    async def _checked(self, budget: Budget) -> None:
        try:
            await self.check(budget)
        except Exception:
            log.exception("could not check the budget of server %s", budget.guild_id)

    async def check(self, budget: Budget) -> list[Notice]:
        """Post the notice of the highest threshold newly reached (the ones below it are claimed with it, as a
        jump past 80 % straight to 100 % needs one message); returns the notices this call claimed."""
        settings = await self._policies.guild_settings(budget.guild_id)
        channel = settings.modlog_channel
        if channel is None:
            return []  # nobody to tell: the notice stays unclaimed, for a log chosen later in the period
        now = self._clock()
        due = notices_due(budget, await self._store.budgets.used(budget.guild_id, now=now), now=now)
        claimed = []
        for notice in due:
            key = (budget.guild_id, notice.key, notice.percent)
            if key in self._posted:
                continue
            if await self._store.budgets.claim_notice(budget.guild_id, notice.key, notice.percent, now=now):
                claimed.append(notice)
            if len(self._posted) > 10_000:
                self._posted.clear()
            self._posted.add(key)
        for period in {notice.period for notice in claimed}:
            highest = max((n for n in claimed if n.period == period), key=lambda n: n.percent)
            log.info("server %s reached %d %% of its budget %s", budget.guild_id, highest.percent, highest.key)
            # Everyone in the log reads it: the server's language (of a server on another shard, its own choice).
            locale = server_locale(settings.locale, self._client.get_guild(budget.guild_id))
            await post(self._client, channel, budget_card(highest, locale=locale))
        return claimed
