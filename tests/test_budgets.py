"""Server budgets: the arithmetic at UTC day and month boundaries, the refusals, the notices, IMAGE_PRICES, the
cards; and on both engines, admission at the budget, DM jobs, and notices claimed once (PostgreSQL: across
processes admitting at the same instant)."""

from __future__ import annotations

import asyncio
import subprocess
import sys
from collections.abc import AsyncIterator
from dataclasses import replace
from datetime import UTC, date, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

import discord
import pytest

from fluxbot import catalog
from fluxbot.budgets import DAY, MONTH, Budget, BudgetUse, budget_refusal, notices_due, period_end, period_key
from fluxbot.budgets import period_start as start
from fluxbot.config import ConfigError, load_settings
from fluxbot.jobs.lifecycle import JobStatus, Outcome, Reply
from fluxbot.limits import GuildSettings, Limits, SharedServer, dm_policy, policy_for
from fluxbot.modlog import BudgetNotices
from fluxbot.providers.base import JobRequest
from fluxbot.quotas import Usage, refusal
from fluxbot.settings_cards import settings_card
from fluxbot.storage import PostgresStore, Store
from fluxbot.storage.base import DayUsage, GuildReport, MemberUsage
from fluxbot.usage_cards import budget_card, money, usage_card
from tests.botprocess import ROOT, clean_environ


def utc(*parts: int) -> float:
    return datetime(*parts, tzinfo=UTC).timestamp()  # type: ignore[arg-type, misc]


NOON = utc(2026, 11, 21, 12)
GUILD = 7
ACE = catalog.PROVIDERS["acedata"]
TWO = JobRequest("generate", "a lighthouse", "flux-dev", "1024x1024", count=2)


def reply(user_id: int, guild_id: int | None = GUILD) -> Reply:
    return Reply(user_id=user_id, guild_id=guild_id, channel_id=8, application_id=9, interaction_token="t",
                 message_id=1)  # fmt: skip


def budget(daily: int = 0, monthly: int = 0, *, guild: int = GUILD) -> Limits:
    """Limits that let members do anything, under the server's budget."""
    return Limits(member_jobs=1000, budget=Budget(guild, daily, monthly))


# -- the arithmetic, with the clock given -----------------------------------------------------------------------


def test_periods_are_utc_days_and_calendar_months_and_reset_at_their_boundaries() -> None:
    last_second = utc(2026, 12, 31, 23, 59, 59)
    assert (start(DAY, last_second), period_end(DAY, last_second)) == (utc(2026, 12, 31), utc(2027, 1, 1))
    assert (start(MONTH, last_second), period_end(MONTH, last_second)) == (utc(2026, 12, 1), utc(2027, 1, 1))
    assert (period_key(DAY, last_second), period_key(MONTH, last_second)) == ("2026-12-31", "2026-12")
    midnight = utc(2026, 11, 1)
    assert start(DAY, midnight) == start(MONTH, midnight) == midnight, "a period starts at its first second"
    assert period_end(MONTH, midnight - 1) == midnight
    assert period_end(MONTH, utc(2028, 2, 29, 12)) == utc(2028, 3, 1), "a leap February"
    assert period_end(MONTH, utc(2026, 2, 10)) == utc(2026, 3, 1)


def test_a_used_up_budget_says_which_and_when_it_resets() -> None:
    day_and_month = Budget(GUILD, daily=10, monthly=100)
    tomorrow, december = int(utc(2026, 11, 22)), int(utc(2026, 12, 1))
    assert budget_refusal(day_and_month, BudgetUse(9, 50), images=1, now=NOON) is None
    assert budget_refusal(day_and_month, BudgetUse(10, 50), images=1, now=NOON) == (
        f"This server has used all 10 of its images for today; it resets <t:{tomorrow}:R>."
    )
    assert budget_refusal(day_and_month, BudgetUse(3, 100), images=1, now=NOON) == (
        f"This server has used all 100 of its images for this month; it resets <t:{december}:R>."
    )
    assert "for this month" in (budget_refusal(day_and_month, BudgetUse(10, 100), images=1, now=NOON) or ""), (
        "with both used up, the month is what lasts"
    )
    assert budget_refusal(Budget(GUILD, daily=5), BudgetUse(5, 999), images=1, now=utc(2026, 11, 21, 23, 59)) == (
        f"This server has used all 5 of its images for today; it resets <t:{tomorrow}:R>."
    )
    assert budget_refusal(Budget(GUILD, daily=5), BudgetUse(0, 999), images=4, now=NOON) is None, "no month budget"


def test_a_count_that_would_overshoot_is_refused_with_what_is_left() -> None:
    day_and_month = Budget(GUILD, daily=10, monthly=20)
    assert budget_refusal(day_and_month, BudgetUse(8, 8), images=4, now=NOON) == (
        "That would make 4 images, but this server has 2 left today. Ask for 2 or fewer."
    )
    assert budget_refusal(day_and_month, BudgetUse(3, 18), images=3, now=NOON) == (
        "That would make 3 images, but this server has 2 left this month. Ask for 2 or fewer."
    )
    assert budget_refusal(day_and_month, BudgetUse(8, 8), images=2, now=NOON) is None, "exactly the rest fits"
    in_a_dm = Budget(GUILD, daily=5, server_name="Art Club")
    assert budget_refusal(in_a_dm, BudgetUse(5, 5), images=1, now=NOON) == (
        f"**Art Club** has used all 5 of its images for today; it resets <t:{int(utc(2026, 11, 22))}:R>."
    )
    assert "but **Art Club** has 1 left today" in (budget_refusal(in_a_dm, BudgetUse(4, 4), images=2, now=NOON) or "")


def test_refusal_keeps_the_member_messages_and_adds_the_servers() -> None:
    limits = Limits(member_jobs=2, daily_images=3, budget=Budget(GUILD, daily=10))
    assert refusal(Usage(0, None, 0, BudgetUse(9, 9)), limits, images=1, now=NOON) is None
    assert "This server has used all 10" in (refusal(Usage(0, None, 0, BudgetUse(10, 10)), limits, images=1, now=NOON)
                                             or "")  # fmt: skip
    assert "all 3 of your images for today" in (
        refusal(Usage(0, None, 3, BudgetUse(10, 10)), limits, images=1, now=NOON) or ""
    ), "the member's own quota first, as before"
    assert "limit here is 2" in (refusal(Usage(2, None, 0, BudgetUse(10, 10)), limits, images=1, now=NOON) or "")
    assert refusal(Usage(0, None, 0, BudgetUse(10, 10)), replace(limits, budget=None), images=1, now=NOON) is None


def test_notices_are_due_at_80_and_100_percent_of_each_period() -> None:
    both = Budget(GUILD, daily=10, monthly=50)
    assert notices_due(both, BudgetUse(7, 39), now=NOON) == []
    [eighty] = notices_due(both, BudgetUse(8, 39), now=NOON)
    assert (eighty.period, eighty.key, eighty.percent, eighty.used, eighty.limit) == (DAY, "2026-11-21", 80, 8, 10)
    assert eighty.resets_at == utc(2026, 11, 22)
    due = notices_due(both, BudgetUse(10, 40), now=NOON)
    assert [(n.key, n.percent) for n in due] == [("2026-11-21", 80), ("2026-11-21", 100), ("2026-11", 80)]
    assert notices_due(Budget(GUILD), BudgetUse(100, 100), now=NOON) == [], "no budget, no notices"


def test_a_servers_budget_goes_with_its_policy_here_and_in_dms() -> None:
    settings = GuildSettings(budget_daily_images=10, budget_monthly_images=200)
    here = policy_for(settings, provider=ACE, defaults=Limits(), default_model="flux-dev", channel_ids=[1],
                      role_ids=[], guild_id=GUILD)  # fmt: skip
    assert here.limits.budget == Budget(GUILD, 10, 200)
    assert here.budget_guild == GUILD
    closed = SharedServer("Closed", GuildSettings(dms=False), (), guild_id=5)
    art = SharedServer("Art Club", settings, (), guild_id=GUILD)
    dm = dm_policy([closed, art], provider=ACE, defaults=Limits(), default_model="flux-dev")
    assert dm.limits.budget == Budget(GUILD, 10, 200, "Art Club"), "the server whose rules the DM runs under"
    assert dm.budget_guild == GUILD
    unbudgeted = dm_policy([SharedServer("Quiet", GuildSettings(), (), guild_id=9)], provider=ACE,
                           defaults=Limits(), default_model="flux-dev")  # fmt: skip
    assert unbudgeted.budget_guild == 9, (
        "without a budget the job still says whose it is (a budget set later counts it)"
    )
    old = GuildSettings.from_json('{"daily_images": 3}')
    assert (old.budget_daily_images, old.budget_monthly_images) == (0, 0), "settings saved before budgets: off"
    assert GuildSettings.from_json(settings.to_json()) == settings


# -- IMAGE_PRICES -------------------------------------------------------------------------------------------------


def prices(value: str, **env: str) -> dict[str, Decimal]:
    base = {"DISCORD_TOKEN": "d", "ACEDATA_API_TOKEN": "a", "KIE_API_TOKEN": "k", "DATABASE_PATH": "/tmp/x.db"}
    return load_settings({**base, **env, "IMAGE_PRICES": value}, env_file=None).prices


def test_image_prices_are_read_per_model() -> None:
    assert prices("flux-dev=0.012, flux-pro = 0.04,") == {"flux-dev": Decimal("0.012"), "flux-pro": Decimal("0.04")}
    assert prices("") == {}
    assert prices("flux-kontext-pro=1", FLUX_PROVIDER="kie") == {"flux-kontext-pro": Decimal(1)}


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ("flux-dev", "IMAGE_PRICES: expects model=price entries separated by commas, such as "
                     "flux-dev=0.012,flux-pro=0.04; got 'flux-dev'"),
        ("=0.5", "IMAGE_PRICES: expects model=price entries separated by commas"),
        ("flux-dev=0.01,flux-9=0.1", "IMAGE_PRICES: 'flux-9=0.1': acedata has no model 'flux-9' (its models: "
                                     "flux-dev, flux-pro, "),
        ("flux-dev=cheap", "IMAGE_PRICES: 'flux-dev=cheap': the price of one image must be a number such as 0.012"),
        ("flux-dev=-1", "IMAGE_PRICES: 'flux-dev=-1': the price of one image must be a number"),
        ("flux-dev=nan", "IMAGE_PRICES: 'flux-dev=nan': the price of one image must be a number"),
        ("flux-dev=1,flux-dev=2", "IMAGE_PRICES: 'flux-dev=2': flux-dev has a price already; give each model one "
                                  "price"),
    ],
)  # fmt: skip
def test_a_bad_price_entry_is_named(value: str, message: str) -> None:
    with pytest.raises(ConfigError) as info:
        prices(value)
    assert str(info.value).startswith(message)
    assert info.value.variable == "IMAGE_PRICES"
    assert "\n" not in str(info.value)


def test_a_price_for_a_model_the_provider_lacks_is_an_error_at_start(tmp_path: Path) -> None:
    env = {**clean_environ(), "DISCORD_TOKEN": "abc", "KIE_API_TOKEN": "k", "FLUX_PROVIDER": "kie",
           "IMAGE_PRICES": "flux-dev=0.012"}  # fmt: skip
    done = subprocess.run([sys.executable, str(ROOT / "bot.py")], cwd=tmp_path, env=env, capture_output=True,
                          text=True, timeout=60)  # fmt: skip
    assert done.returncode == 2
    assert done.stderr.strip().splitlines() == [
        "fluxbot: configuration error: IMAGE_PRICES: 'flux-dev=0.012': kie has no model 'flux-dev' "
        "(its models: flux-kontext-pro, flux-kontext-max)"
    ]


# -- the cards ----------------------------------------------------------------------------------------------------


def a_report() -> GuildReport:
    members = [MemberUsage(1, 6, 3, 0, {"flux-dev": 4, "flux-2-klein": 2}), MemberUsage(2, 2, 2, 1, {"flux-pro": 2})]
    days = [DayUsage(date(2026, 11, 21), 5, 3, 1, {"flux-dev": 3, "flux-pro": 2}),
            DayUsage(date(2026, 11, 20), 3, 2, 0, {"flux-dev": 1, "flux-2-klein": 2})]  # fmt: skip
    return GuildReport(7, members, 0, days, {"queued": 1})


def test_the_usage_card_shows_the_spend_with_prices_and_images_only_without() -> None:
    report = a_report()
    assert report.per_model == {"flux-dev": 4, "flux-2-klein": 2, "flux-pro": 2}
    plain = usage_card(report, locale=None)
    assert plain.description is not None
    assert "<@1>: 6 images in 3 jobs, 0 failed\n" in plain.description, "as before: images only"
    assert "≈" not in plain.description
    assert "Per model" not in plain.description
    assert [f.name for f in plain.fields] == ["Jobs open now"]

    priced = usage_card(report, locale=None, prices={"flux-dev": Decimal("0.012"), "flux-pro": Decimal("0.04")})
    assert priced.description is not None
    lines = priced.description.splitlines()
    assert "<@1>: 6 images in 3 jobs, 0 failed · ≈ 0.048 + 2 images with no price" in lines
    assert "<@2>: 2 images in 2 jobs, 1 failed · ≈ 0.08" in lines
    assert "Nov 21, 2026: 5 images in 3 jobs, 1 failed · ≈ 0.116" in lines
    assert "Nov 20, 2026: 3 images in 2 jobs, 0 failed · ≈ 0.012 + 2 images with no price" in lines
    assert lines[-3:] == ["`flux-dev`: 4 images × 0.012 = 0.048", "`flux-2-klein`: 2 images, no price",
                          "`flux-pro`: 2 images × 0.04 = 0.08"]  # fmt: skip
    assert {f.name: f.value for f in priced.fields}["Estimated spend"] == "≈ 0.128 + 2 images with no price"

    with_budget = usage_card(report, locale=None, budget=Budget(GUILD, daily=10), used=BudgetUse(8, 30), now=NOON)
    assert {f.name: f.value for f in with_budget.fields}["Server budget"] == (
        f"Today (UTC): 8 of 10 images used (80 %), 2 left; resets <t:{int(utc(2026, 11, 22))}:R>"
    )
    assert [money(Decimal(v), None) for v in ("12.000", "0.480", "0.123456", "0")] == ["12", "0.48", "0.1235", "0"]


def test_the_budget_card_and_the_settings_card_show_the_budget() -> None:
    settings = GuildSettings(budget_daily_images=10, modlog_channel=55)
    card = budget_card(settings, settings.budget(GUILD), BudgetUse(10, 31), now=NOON, locale=None)
    shown = {f.name: f.value for f in card.fields}
    assert shown["Per UTC day"] == f"10 of 10 images used (100 %), 0 left; resets <t:{int(utc(2026, 11, 22))}:R>"
    assert shown["Per UTC month"] == "off (31 images so far)"
    assert shown["Notices"] == "<#55> gets a notice at 80 % and at 100 % of a budget"
    unlogged = budget_card(GuildSettings(), Budget(GUILD), BudgetUse(), now=NOON, locale=None)
    assert "/fluxadmin modlog" in str({f.name: f.value for f in unlogged.fields}["Notices"])
    settings = replace(settings, budget_monthly_images=250)
    summary = {
        f.name: f.value for f in settings_card(settings, Limits(), "flux-dev", serve_dms=True, locale=None).fields
    }
    assert summary["Server budget"] == "10 images per UTC day, 250 images per UTC month"
    plain = {
        f.name: f.value
        for f in settings_card(GuildSettings(), Limits(), "flux-dev", serve_dms=True, locale=None).fields
    }
    assert plain["Server budget"] == "off"


# -- both engines -------------------------------------------------------------------------------------------------


async def test_admission_stops_at_the_day_and_the_month_budget_and_failures_are_free(store: Store) -> None:
    limits = budget(daily=5, monthly=8)
    assert await store.admit("acedata", TWO, reply(1), limits=limits, now=NOON) is not None
    second = await store.admit("acedata", TWO, reply(2), limits=limits, now=NOON + 1)
    assert second is not None
    assert await store.admit("acedata", TWO, reply(3), limits=limits, now=NOON + 2) is None, "4 + 2 > 5"
    usage = await store.usage(3, budget=limits.budget, now=NOON + 2)
    assert usage.server == BudgetUse(4, 4)
    assert refusal(usage, limits, images=2, now=NOON + 2) == (
        "That would make 2 images, but this server has 1 left today. Ask for 1 or fewer."
    )
    one = replace(TWO, count=1)
    assert await store.admit("acedata", one, reply(3), limits=limits, now=NOON + 3) is not None, "exactly the rest"
    assert await store.admit("acedata", one, reply(4), limits=limits, now=NOON + 4) is None
    used = await store.budgets.used(GUILD, now=NOON + 4)
    assert used == BudgetUse(5, 5)
    assert refusal(await store.usage(4, budget=limits.budget, now=NOON + 4), limits, images=1, now=NOON + 4) == (
        f"This server has used all 5 of its images for today; it resets <t:{int(utc(2026, 11, 22))}:R>."
    )
    assert await store.finish(second.id, Outcome(JobStatus.FAILED, message="boom"))
    assert await store.admit("acedata", TWO, reply(4), limits=limits, now=NOON + 5) is not None, "a failure is free"

    tomorrow = utc(2026, 11, 22, 0, 0, 1)
    assert (await store.budgets.used(GUILD, now=tomorrow)) == BudgetUse(0, 5)
    assert await store.admit("acedata", TWO, reply(5), limits=limits, now=tomorrow) is not None, "a new day: 7 of 8"
    assert await store.admit("acedata", TWO, reply(6), limits=limits, now=tomorrow + 1) is None, "7 + 2 > 8"
    month = refusal(await store.usage(6, budget=limits.budget, now=tomorrow), limits, images=2, now=tomorrow)
    assert month == "That would make 2 images, but this server has 1 left this month. Ask for 1 or fewer."
    december = utc(2026, 12, 1)
    assert await store.admit("acedata", TWO, reply(6), limits=limits, now=december) is not None, "a new month"
    assert await store.admit("acedata", TWO, reply(7, guild_id=99), limits=budget(daily=5, guild=99),
                             now=tomorrow) is not None, "another server has its own budget"  # fmt: skip
    assert await store.admit("acedata", TWO, reply(8), limits=Limits(member_jobs=10), now=tomorrow + 2) is not None, (
        "without a budget in its limits (operator tools), nothing is refused"
    )


async def test_a_dm_job_counts_against_the_server_whose_rules_it_ran_under(store: Store) -> None:
    limits = budget(daily=4)
    in_dm = await store.admit("acedata", TWO, reply(1, guild_id=None), limits=limits, now=NOON)
    assert in_dm is not None
    assert in_dm.reply.guild_id is None, "the reply is still in the DM"
    assert await store.admit("acedata", TWO, reply(2), limits=limits, now=NOON + 1) is not None
    assert await store.admit("acedata", TWO, reply(3), limits=limits, now=NOON + 2) is None, "2 in the DM + 2 here"
    assert await store.budgets.used(GUILD, now=NOON) == BudgetUse(4, 4)
    report = await store.reports.guild_report(GUILD, now=NOON + 3)
    assert [(m.user_id, m.images, m.models) for m in report.members] == [(1, 2, {"flux-dev": 2}),
                                                                          (2, 2, {"flux-dev": 2})]  # fmt: skip
    assert report.per_model == {"flux-dev": 4}
    assert report.open_jobs == {"queued": 2}, "the DM's job is this server's too"
    unbudgeted = await store.admit("acedata", TWO, reply(4, guild_id=None), limits=budget(guild=5), now=NOON)
    assert unbudgeted is not None
    assert await store.budgets.used(5, now=NOON) == BudgetUse(2, 2), "a job records its server even without a budget"


async def test_the_usage_report_counts_images_per_model(store: Store) -> None:
    unlimited = budget()
    for user, model, count in [(1, "flux-dev", 2), (1, "flux-pro", 1), (2, "flux-dev", 3), (2, "flux-pro", 4)]:
        job = await store.admit("acedata", replace(TWO, model=model, count=count), reply(user), limits=unlimited,
                                now=NOON)  # fmt: skip
        assert job is not None
        if count == 4:
            await store.finish(job.id, Outcome(JobStatus.FAILED, message="boom"))
    report = await store.reports.guild_report(GUILD, days=2, now=NOON)
    assert [(m.user_id, m.models) for m in report.members] == [(1, {"flux-dev": 2, "flux-pro": 1}),
                                                               (2, {"flux-dev": 3})]  # fmt: skip
    assert [(d.day, d.models) for d in report.per_day] == [(date(2026, 11, 21), {"flux-dev": 5, "flux-pro": 1})]


async def test_each_notice_is_claimed_once(store: Store) -> None:
    claims = await asyncio.gather(*(store.budgets.claim_notice(GUILD, "2026-11", 80, now=NOON) for _ in range(8)))
    assert sorted(claims) == [False] * 7 + [True]
    assert not await store.budgets.claim_notice(GUILD, "2026-11", 80, now=NOON + 60)
    assert await store.budgets.claim_notice(GUILD, "2026-11", 100, now=NOON)
    assert await store.budgets.claim_notice(GUILD, "2026-11-21", 80, now=NOON)
    assert await store.budgets.claim_notice(99, "2026-11", 80, now=NOON), "each server its own"


class Channel:
    def __init__(self, posts: list[dict[str, Any]]) -> None:
        self.posts = posts

    async def send(self, **message: Any) -> None:
        self.posts.append(message["embed"].to_dict())


class Client:
    """What the notices need of a discord.Client: a channel to post in."""

    def __init__(self, guilds: dict[int, discord.Guild] | None = None) -> None:
        self.posts: list[dict[str, Any]] = []
        #: The servers in its cache (a server on another process's shard is not).
        self.guilds = guilds or {}

    def get_partial_messageable(self, channel_id: int) -> Channel:
        assert channel_id == 55
        return Channel(self.posts)

    def get_guild(self, guild_id: int) -> discord.Guild | None:
        return self.guilds.get(guild_id)


class Policies:
    def __init__(self, settings: GuildSettings) -> None:
        self.settings = settings

    async def guild_settings(self, guild_id: int) -> GuildSettings:
        return self.settings


async def test_the_moderation_log_gets_80_and_100_percent_once_each_period(store: Store) -> None:
    client, clock = Client(), [NOON]
    policies = Policies(GuildSettings(budget_daily_images=5, modlog_channel=55))
    notices = BudgetNotices(client, store, policies, clock=lambda: clock[0])  # type: ignore[arg-type]
    other_process = BudgetNotices(client, store, policies, clock=lambda: clock[0])  # type: ignore[arg-type]
    five = Budget(GUILD, daily=5)
    limits = Limits(member_jobs=1000, budget=five)
    titles = []
    for n in range(6):
        await store.admit("acedata", replace(TWO, count=1), reply(n), limits=limits, now=clock[0])
        await asyncio.gather(notices.check(five), other_process.check(five))
        titles.append([post["title"] for post in client.posts])
    assert titles[2] == [], "3 of 5"
    assert titles[3] == ["Server budget 80 % used today"], "4 of 5, posted by one of the two"
    assert titles[5] == titles[4] == ["Server budget 80 % used today", "Server budget used up today"]
    assert client.posts[1]["description"].startswith("This server has used 5 of its 5 images for today (UTC). New "
                                                     "jobs are refused until it resets <t:")  # fmt: skip

    clock[0] = utc(2026, 11, 22, 9)  # a new day, its five images made before anyone checks
    for n in range(5):
        await store.admit("acedata", replace(TWO, count=1), reply(n), limits=limits, now=clock[0])
    policies.settings = GuildSettings(modlog_channel=None)
    assert await notices.check(five) == [], "no moderation log: nothing claimed"
    policies.settings = GuildSettings(budget_daily_images=5, modlog_channel=55)
    claimed = await notices.check(five)
    assert [n.percent for n in claimed] == [80, 100], "both reached at once: one message, the higher"
    assert [post["title"] for post in client.posts][2:] == ["Server budget used up today"]


# -- PostgreSQL: several processes admitting at once --------------------------------------------------------------


@pytest.fixture
async def processes(database_url: str) -> AsyncIterator[tuple[PostgresStore, PostgresStore]]:
    a = await PostgresStore.open(database_url, instance="process-a", pool_size=6)
    b = await PostgresStore.open(database_url, instance="process-b", pool_size=6)
    yield a, b
    await b.close()
    await a.close()


async def test_two_processes_admitting_at_once_never_exceed_the_servers_budget(
    processes: tuple[PostgresStore, PostgresStore],
) -> None:
    a, b = processes
    rounds = [(101, budget(daily=11, guild=101), 5), (102, budget(monthly=11, guild=102), 5),
              (103, budget(daily=9, monthly=11, guild=103), 4)]  # fmt: skip
    for guild, limits, allowed in rounds:  # 2 images a job: 5 jobs fit in 11, 4 in 9
        # Members of their own, so the member lock serializes nothing: only the server's lock keeps the count.
        results = await asyncio.gather(
            *(
                store.admit("acedata", TWO, reply(1000 * guild + n, guild), limits=limits, now=NOON)
                for n, store in enumerate([a, b] * 12)
            )
        )
        admitted = [job for job in results if job is not None]
        assert len(admitted) == allowed, f"server {guild}: {len(admitted)} jobs admitted"
        assert {job.owner for job in admitted} == {"process-a", "process-b"}
        assert await b.budgets.used(guild, now=NOON) == BudgetUse(2 * allowed, 2 * allowed)
