"""Member limits, per-server policy and the queue: the rules, and their atomicity on a real SQLite file."""

from __future__ import annotations

import asyncio
from dataclasses import replace
from datetime import UTC, datetime

import pytest

from fluxbot import catalog
from fluxbot.budgets import day_start, next_utc_midnight
from fluxbot.jobs.lifecycle import JobStatus, Outcome, Reply
from fluxbot.limits import (
    GuildSettings,
    Limits,
    Policy,
    Refused,
    SharedServer,
    dm_policy,
    policy_for,
)
from fluxbot.providers.base import JobRequest
from fluxbot.quotas import Usage, refusal
from fluxbot.storage import Store
from fluxbot.storage.base import REPORT_MEMBERS

NOON = datetime(2026, 11, 21, 12, 0, tzinfo=UTC).timestamp()
ACE = catalog.PROVIDERS["acedata"]
REQUEST = JobRequest("generate", "a cat", "flux-dev", "1024x1024", count=2)


def reply(user_id: int, message_id: int | None = 1) -> Reply:
    return Reply(
        user_id=user_id, guild_id=7, channel_id=8, application_id=9, interaction_token="t", message_id=message_id
    )


def policy(guild: GuildSettings, *, channels: list[int] | None = None, roles: list[int] | None = None) -> Policy:
    return policy_for(
        guild,
        provider=ACE,
        defaults=Limits(2, 0, 0),
        default_model="flux-dev",
        channel_ids=channels or [100],
        role_ids=roles or [],
    )


def in_dm(*servers: SharedServer) -> Policy:
    return dm_policy(servers, provider=ACE, defaults=Limits(2, 0, 0), default_model="flux-dev")


def test_places_and_roles() -> None:
    only_art = GuildSettings(allowed_channels=(200, 300))
    with pytest.raises(Refused, match="you can use me in <#200>, <#300>"):
        policy(only_art, channels=[100])
    assert policy(only_art, channels=[555, 300]).limits == Limits(2, 0, 0), "a thread inside an allowed channel"
    artists = GuildSettings(required_role=42)
    with pytest.raises(Refused, match="<@&42> role"):
        policy(artists, roles=[1, 2])
    assert policy(artists, roles=[42]).default_model == "flux-dev"


def test_direct_messages_follow_the_members_servers() -> None:
    # The operator's SERVE_DMS=false comes before any of this: test_the_operator_can_refuse_all_direct_messages.
    open_server = SharedServer("Open", GuildSettings(daily_images=5, allowed_channels=(200,)), role_ids=())
    with pytest.raises(Refused, match="we share none"):
        in_dm()  # no shared server: the operator's defaults would lift every server's stricter rules
    assert in_dm(open_server).limits == Limits(2, 0, 5), "the server's limits; its channel list does not apply"

    closed = SharedServer("Closed Club", GuildSettings(dms=False, member_jobs=1), role_ids=())
    with pytest.raises(Refused, match=r"The moderators of \*\*Closed Club\*\* have turned off fluxbot in direct"):
        in_dm(closed)
    assert in_dm(closed, open_server).limits == Limits(2, 0, 5), "a server that allows DMs is enough"

    artists = GuildSettings(required_role=42, allowed_models=("flux-pro",))
    without_role = SharedServer("Art", artists, role_ids=(1,), required_role_name="Artist")
    with pytest.raises(Refused, match=r"you need the \*\*Artist\*\* role on \*\*Art\*\*"):
        in_dm(closed, without_role)
    with_role = SharedServer("Art", artists, role_ids=(1, 42), required_role_name="Artist")
    assert in_dm(closed, with_role).allowed_models == ("flux-pro",), "the server's models apply in its members' DMs"


def test_models_and_limits_follow_the_server() -> None:
    server = GuildSettings(allowed_models=("flux-pro-1.1", "flux-2-pro"), member_jobs=1, daily_images=10)
    applied = policy(server)
    assert applied.default_model == "flux-pro-1.1", "the default falls back to an allowed model"
    assert applied.limits == Limits(1, 0, 10)
    assert applied.edit_model == "flux-kontext-pro", "no Kontext model allowed: edits keep the usual one"
    assert policy(GuildSettings(allowed_models=("flux-kontext-max",))).edit_model == "flux-kontext-max"
    applied.check_model("flux-2-pro")
    with pytest.raises(Refused, match="`flux-dev` is not enabled on this server"):
        applied.check_model("flux-dev")
    assert GuildSettings.from_json(server.to_json()) == server


def test_a_server_can_only_make_the_operators_limits_stricter() -> None:
    operator = Limits(member_jobs=2, cooldown_seconds=10, daily_images=50)
    looser = GuildSettings(member_jobs=20, cooldown_seconds=0, daily_images=0)
    assert looser.limits(operator) == operator
    stricter = GuildSettings(member_jobs=1, cooldown_seconds=60, daily_images=5)
    assert stricter.limits(operator) == Limits(1, 60, 5)
    assert GuildSettings(daily_images=5).limits(Limits(2, 0, 0)) == Limits(2, 0, 5), "a quota where there was none"
    assert looser.capped(operator) == [
        "jobs at once: 20 is capped at the operator's 2",
        "cooldown: 0 s is raised to the operator's 10 s",
    ], "a quota of 0 means 'no quota of our own', not a looser one"
    assert GuildSettings(daily_images=80).capped(operator) == ["images per day: 80 is capped at the operator's 50"]
    assert stricter.capped(operator) == []


def test_refusals_say_when_to_try_again() -> None:
    limits = Limits(member_jobs=2, cooldown_seconds=30, daily_images=10)
    assert refusal(Usage(1, NOON - 60, 4), limits, images=2, now=NOON) is None
    assert "limit here is 2" in (refusal(Usage(2, None, 0), limits, images=1, now=NOON) or "")
    cooldown = refusal(Usage(0, NOON - 10, 0), limits, images=1, now=NOON) or ""
    assert f"<t:{int(NOON) + 21}:R>" in cooldown
    spent = refusal(Usage(0, None, 10), limits, images=1, now=NOON) or ""
    assert "all 10 of your images" in spent
    assert f"<t:{int(next_utc_midnight(NOON))}:R>" in spent
    assert "you have 3 left today" in (refusal(Usage(0, None, 7), limits, images=4, now=NOON) or "")
    assert day_start(NOON) == datetime(2026, 11, 21, tzinfo=UTC).timestamp()


async def test_simultaneous_commands_never_exceed_the_member_limit(store: Store) -> None:
    limits = Limits(member_jobs=2)
    results = await asyncio.gather(*(store.admit("acedata", REQUEST, reply(1), limits=limits) for _ in range(10)))
    assert sum(job is not None for job in results) == 2
    others = await asyncio.gather(*(store.admit("acedata", REQUEST, reply(2), limits=limits) for _ in range(3)))
    assert sum(job is not None for job in others) == 2, "each member has their own limit"
    usage = await store.usage(1)
    assert usage.in_flight == 2


async def test_several_members_at_the_same_instant_each_stay_within_every_limit(store: Store) -> None:
    limits = Limits(member_jobs=3, cooldown_seconds=0, daily_images=5)  # REQUEST makes 2 images a job
    members = range(1, 7)
    results = await asyncio.gather(
        *(store.admit("acedata", REQUEST, reply(m), limits=limits, now=NOON) for m in members for _ in range(6))
    )
    admitted = [job for job in results if job is not None]
    per_member = {m: sum(job.reply.user_id == m for job in admitted) for m in members}
    assert per_member == dict.fromkeys(members, 2), "the daily quota (5 images) allows two jobs of 2 images each"
    for m in members:
        assert (await store.usage(m, now=NOON)).images_today == 4

    with_cooldown = Limits(member_jobs=10, cooldown_seconds=60)
    later = await asyncio.gather(
        *(
            store.admit("acedata", REQUEST, reply(m + 10), limits=with_cooldown, now=NOON)
            for m in members
            for _ in range(4)
        )
    )
    assert sum(job is not None for job in later) == len(members), "one command per member inside the cooldown"


async def test_cooldown_and_daily_images(store: Store) -> None:
    limits = Limits(member_jobs=100, cooldown_seconds=30, daily_images=5)
    first = await store.admit("acedata", REQUEST, reply(1), limits=limits, now=NOON)
    assert first is not None
    assert await store.admit("acedata", REQUEST, reply(1), limits=limits, now=NOON + 29) is None, "cooldown"
    assert await store.admit("acedata", REQUEST, reply(1), limits=limits, now=NOON + 31) is not None
    assert await store.admit("acedata", REQUEST, reply(1), limits=limits, now=NOON + 62) is None, "4 + 2 > 5"
    await store.finish(first.id, Outcome(JobStatus.FAILED, message="boom"))
    assert await store.admit("acedata", REQUEST, reply(1), limits=limits, now=NOON + 93) is not None, (
        "failures are free"
    )
    tomorrow = next_utc_midnight(NOON) + 1
    assert (await store.usage(1, now=tomorrow)).images_today == 0
    assert await store.admit("acedata", REQUEST, reply(1), limits=limits, now=tomorrow) is not None


async def test_the_queue_starts_jobs_in_order_within_the_cap(store: Store) -> None:
    unlimited = Limits(member_jobs=100)
    admitted = [await store.admit("acedata", REQUEST, reply(n), limits=unlimited) for n in range(5)]
    ids = [job.id for job in admitted if job is not None]
    not_answered = await store.admit("acedata", REQUEST, reply(9, message_id=None), limits=unlimited)
    assert not_answered is not None
    assert await store.reports.queue_positions() == {i: n for n, i in enumerate(ids, start=1)}, (
        "a job without a reply waits"
    )

    first, second, none = [await store.claim(2) for _ in range(3)]
    assert none is None, "two at the provider already"
    assert first is not None
    assert second is not None
    assert [first.id, second.id] == ids[:2]
    assert await store.reports.queue_positions() == {ids[2]: 1, ids[3]: 2, ids[4]: 3}
    await store.finish(second.id, Outcome(JobStatus.SUCCEEDED))
    third = await store.claim(2)
    assert third is not None
    assert third.id == ids[2]
    claims = await asyncio.gather(*(store.claim(3) for _ in range(5)))
    assert sum(c is not None for c in claims) == 1, "simultaneous claims respect the cap"
    remaining = await store.jobs_with_status(JobStatus.QUEUED)
    assert [j.id for j in remaining] == [ids[4], not_answered.id], "a job without a reply is never started"


def test_settings_made_under_another_provider_do_not_break_commands() -> None:
    kie = catalog.PROVIDERS["kie"]
    stale = GuildSettings(default_model="flux-dev", allowed_models=("flux-dev", "flux-pro-1.1"))
    applied = policy_for(
        stale, provider=kie, defaults=Limits(), default_model="flux-kontext-pro", channel_ids=[1], role_ids=[]
    )
    assert applied.default_model == "flux-kontext-pro", "the operator's default replaces a model Kie lacks"
    assert applied.allowed_models == (), "a list naming none of this provider's models allows them all"


async def test_the_usage_report_counts_per_member_and_per_utc_day(store: Store) -> None:
    unlimited = Limits(member_jobs=100)
    day = 86_400
    plan = [(1, NOON - 3 * day), (1, NOON - day), (2, NOON - day + 60), (1, NOON), (2, NOON + 60), (2, NOON + 120)]
    jobs = [await store.admit("acedata", REQUEST, reply(user), limits=unlimited, now=at) for user, at in plan]
    failed = jobs[4]
    assert failed is not None
    await store.finish(failed.id, Outcome(JobStatus.FAILED, message="boom"))
    elsewhere = Reply(user_id=3, guild_id=99, channel_id=8, application_id=9, interaction_token="t", message_id=1)
    await store.admit("acedata", REQUEST, elsewhere, limits=unlimited, now=NOON)

    week = await store.reports.guild_report(7, days=7, now=NOON + 600)
    assert week.days == 7
    assert [(m.user_id, m.images, m.jobs, m.failures) for m in week.members] == [(1, 6, 3, 0), (2, 4, 3, 1)]
    assert week.more_members == 0
    assert [(d.day.isoformat(), d.images, d.jobs, d.failures) for d in week.per_day] == [
        ("2026-11-21", 4, 3, 1),
        ("2026-11-20", 4, 2, 0),
        ("2026-11-18", 2, 1, 0),
    ], "newest first, days without jobs left out, failed jobs cost no images"
    assert week.open_jobs == {"queued": 5}

    today = await store.reports.guild_report(7, days=1, now=NOON + 600)
    assert [(m.user_id, m.images, m.jobs) for m in today.members] == [(2, 2, 2), (1, 2, 1)], "ties: more jobs first"
    assert [d.day.isoformat() for d in today.per_day] == ["2026-11-21"]
    two_days = await store.reports.guild_report(7, days=2, now=NOON + 600)
    assert [d.day.isoformat() for d in two_days.per_day] == ["2026-11-21", "2026-11-20"], "the 18th is outside"


async def test_the_usage_report_names_the_busiest_members_and_counts_the_rest(store: Store) -> None:
    for user in range(1, REPORT_MEMBERS + 3):
        for _ in range(user):
            await store.admit("acedata", REQUEST, reply(user), limits=Limits(member_jobs=100), now=NOON)
    report = await store.reports.guild_report(7, now=NOON)
    assert [m.user_id for m in report.members] == list(range(REPORT_MEMBERS + 2, 2, -1))
    assert report.more_members == 2


def test_a_servers_safety_ceiling_lowers_kies_filter_and_refuses_looser_requests() -> None:
    kie, ace = catalog.PROVIDERS["kie"], catalog.PROVIDERS["acedata"]
    strict = Policy("flux-kontext-pro", (), Limits(), safety_ceiling=1)
    asked_for = JobRequest("generate", "x", "flux-kontext-pro", "1:1", options={"safety_tolerance": 1})
    assert strict.apply_safety(asked_for, kie) == asked_for
    unsaid = JobRequest("generate", "x", "flux-kontext-pro", "1:1", options={"output_format": "png"})
    assert strict.apply_safety(unsaid, kie).options == {"output_format": "png", "safety_tolerance": 1}, (
        "Kie's default (2) is looser than the ceiling: the ceiling is sent"
    )
    with pytest.raises(Refused, match="`safety_tolerance` is at most 1"):
        strict.apply_safety(replace(asked_for, options={"safety_tolerance": 4}), kie)
    assert strict.apply_safety(unsaid, ace) == unsaid, "Ace Data Cloud has no such option"
    loose = Policy("flux-kontext-pro", (), Limits(), safety_ceiling=5)
    assert loose.apply_safety(unsaid, kie) == unsaid, "a ceiling above the default changes nothing unasked"
    assert Policy("flux-kontext-pro", (), Limits()).apply_safety(unsaid, kie) == unsaid
