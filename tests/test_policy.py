"""The member policy on its own: a store of settings and a list of servers are all it needs, no bot."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Sequence
from types import SimpleNamespace
from typing import Any
from unittest.mock import AsyncMock, MagicMock

import discord
import pytest

from fluxbot import policy as policy_module
from fluxbot.budgets import Budget
from fluxbot.config import Settings, load_settings
from fluxbot.limits import GuildSettings, Limits, Refused, with_changes
from fluxbot.policy import MEMBERSHIP_UNKNOWN, MemberPolicies
from fluxbot.storage import Signal
from fluxbot.storage.base import SignalHandler

ALICE = 333333333333333333
ARTIST = 77


class SavedSettings:
    """The `SettingsStore` part of the store, in memory, counting its reads."""

    def __init__(self, saved: dict[int, GuildSettings] | None = None) -> None:
        self.saved = dict(saved or {})
        self.reads = 0
        self.signals: list[tuple[Signal, str]] = []
        self.handlers: list[SignalHandler] = []

    async def guild_settings(self, guild_id: int) -> GuildSettings:
        self.reads += 1
        await asyncio.sleep(0)  # a real store answers later: let other coroutines run meanwhile
        return self.saved.get(guild_id, GuildSettings())

    async def save_guild_settings(self, guild_id: int, settings: GuildSettings) -> None:
        await asyncio.sleep(0)
        self.saved[guild_id] = settings

    shared = False

    async def signal(self, signal: Signal, payload: str = "") -> None:
        self.signals.append((signal, payload))

    def listen(self, handler: SignalHandler) -> None:
        self.handlers.append(handler)

    @contextlib.asynccontextmanager
    async def exclusive(self, name: str) -> AsyncIterator[None]:
        yield


class Servers:
    def __init__(self, *guilds: discord.Guild) -> None:
        self.guilds: Sequence[discord.Guild] = guilds


def server(guild_id: int, name: str, *, fetch: AsyncMock) -> Any:
    guild = MagicMock(spec=discord.Guild)
    guild.id, guild.name = guild_id, name
    guild.get_member.return_value = None  # as without the members intent
    guild.fetch_member = fetch
    guild.get_role.return_value = SimpleNamespace(name="Artist")
    return guild


def operator() -> Settings:
    return load_settings({"DISCORD_TOKEN": "abc", "ACEDATA_API_TOKEN": "t"}, env_file=None)


def in_dm(user_id: int) -> Any:
    return SimpleNamespace(guild_id=None, user=SimpleNamespace(id=user_id))


def member(*roles: int) -> SimpleNamespace:
    return SimpleNamespace(roles=[SimpleNamespace(id=r) for r in roles])


async def test_a_dm_member_is_asked_of_discord_once_a_minute_and_gets_the_shared_servers_rules() -> None:
    clock = [1000.0]
    fetch = AsyncMock(return_value=member(ARTIST))
    store = SavedSettings({10: GuildSettings(required_role=ARTIST, daily_images=3)})
    policies = MemberPolicies(store, operator(), Servers(server(10, "Art Club", fetch=fetch)), clock=lambda: clock[0])

    first = await policies.policy(in_dm(ALICE))
    art_club = Budget(10, 0, 0, "Art Club")
    assert first.limits == Limits(member_jobs=2, cooldown_seconds=0, daily_images=3, budget=art_club)
    assert first.budget_guild == 10, "the DM counts against the budget of the server whose rules it runs under"
    clock[0] += 59
    await policies.policy(in_dm(ALICE))
    assert fetch.await_count == 1, "the member's roles are trusted for a minute"
    assert store.reads == 1, "the server's settings are cached"

    fetch.return_value = member()  # the role was taken away
    clock[0] += 2
    with pytest.raises(Refused, match=r"you need the \*\*Artist\*\* role on \*\*Art Club\*\*"):
        await policies.policy(in_dm(ALICE))
    assert fetch.await_count == 2


async def test_a_membership_lookup_that_hangs_is_refused_within_the_bound(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(policy_module, "MEMBERSHIP_LOOKUP_SECONDS", 0.05)
    never = asyncio.Event()

    async def hang(user_id: int) -> None:
        await never.wait()

    fetch = AsyncMock(side_effect=hang)
    policies = MemberPolicies(SavedSettings(), operator(), Servers(server(10, "Art Club", fetch=fetch)))
    with pytest.raises(Refused) as refused:
        await policies.policy(in_dm(ALICE))
    assert str(refused.value) == MEMBERSHIP_UNKNOWN


async def test_settings_changes_at_once_keep_each_other_and_a_refused_change_leaves_them() -> None:
    store = SavedSettings()
    policies = MemberPolicies(store, operator(), Servers())

    def setting(**changes: Any) -> Any:
        return policies.change_guild_settings(10, lambda s: with_changes(s, **changes))

    await asyncio.gather(setting(daily_images=3), setting(dms=False))
    assert store.saved[10] == GuildSettings(daily_images=3, dms=False)

    def refuse(settings: GuildSettings) -> GuildSettings:
        raise Refused("no")

    with pytest.raises(Refused):
        await policies.change_guild_settings(10, refuse)
    assert await policies.guild_settings(10) == store.saved[10] == GuildSettings(daily_images=3, dms=False)
    shown = policies.policy_for_settings(with_changes(store.saved[10], required_role=ARTIST))
    assert shown.limits.daily_images == 3, "shown without place or role"


async def test_a_change_on_another_process_applies_at_the_next_command() -> None:
    store = SavedSettings({10: GuildSettings(daily_images=3)})
    policies = MemberPolicies(store, operator(), Servers())
    assert (await policies.guild_settings(10)).daily_images == 3
    await policies.change_guild_settings(11, lambda s: with_changes(s, dms=False))
    assert store.signals == [(Signal.SETTINGS, "11")], "the other processes are told"

    store.saved[10] = GuildSettings(daily_images=5)  # saved by another process, which then signals
    assert (await policies.guild_settings(10)).daily_images == 3, "cached until told"
    [handler] = store.handlers
    handler(Signal.HINT, "10")
    assert (await policies.guild_settings(10)).daily_images == 3, "only a settings signal drops the entry"
    handler(Signal.SETTINGS, "10")
    assert (await policies.guild_settings(10)).daily_images == 5
