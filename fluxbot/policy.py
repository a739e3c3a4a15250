"""Which rules apply to a member: the server's (or, in a DM, a shared server's), their roles, and the caches behind.

`limits.py` holds the rules as pure functions; this module gathers what they need from Discord and the store.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Sequence
from contextlib import AbstractAsyncContextManager
from dataclasses import replace
from typing import Protocol

import discord

from fluxbot.config import Settings
from fluxbot.i18n import N_
from fluxbot.limits import NO_DMS, GuildSettings, Policy, Refused, SharedServer, dm_policy, policy_for, with_changes
from fluxbot.moderation import Blocklist, blocklist_of
from fluxbot.storage.base import Signal, SignalHandler

log = logging.getLogger(__name__)

#: Another process's settings change arrives at once by signal; should a signal be lost (a dropped connection),
#: cached settings are read again after this long.
SETTINGS_RECHECK_SECONDS = 30.0
MEMBERSHIP_TTL_SECONDS = 60.0  # how long a DM member's servers and roles are trusted before asking again
MEMBERSHIP_CACHE_SIZE = 10_000
MEMBERSHIP_LOOKUP_SECONDS = 2.0
MEMBERSHIP_UNKNOWN = N_(
    "I couldn't check which servers we share just now. Please try again in a minute, or use me in a channel of your "
    "server."
)


class SettingsStore(Protocol):
    """Where the servers' settings are kept (the bot's `Store`)."""

    @property
    def shared(self) -> bool:
        """True when other processes use the same settings."""
        ...

    async def guild_settings(self, guild_id: int) -> GuildSettings:
        """A server's settings (the defaults when it never chose any)."""
        ...

    async def save_guild_settings(self, guild_id: int, settings: GuildSettings) -> None:
        """Replace a server's settings."""
        ...

    async def signal(self, signal: Signal, payload: str = "") -> None:
        """Tell the other processes."""
        ...

    def listen(self, handler: SignalHandler) -> None:
        """Hear what the other processes tell."""
        ...

    def exclusive(self, name: str) -> AbstractAsyncContextManager[None]:
        """A lock across processes."""
        ...


class Servers(Protocol):
    """The servers the bot is in (a `discord.Client` is one)."""

    @property
    def guilds(self) -> Sequence[discord.Guild]:
        """The servers the bot is in."""
        ...


class MemberPolicies:
    """What applies to a member where they asked; keeps the servers' settings and DM members' roles cached."""

    def __init__(
        self, store: SettingsStore, settings: Settings, servers: Servers, *, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self._store = store
        self._settings = settings
        self._servers = servers
        self._clock = clock
        #: server → (when it was read, its settings).
        self._guild_settings: dict[int, tuple[float, GuildSettings]] = {}
        self._settings_locks: dict[int, asyncio.Lock] = {}
        #: (server, user) → (until when it is valid, the member's role ids or None when not a member); for DMs.
        self._memberships: dict[tuple[int, int], tuple[float, tuple[int, ...] | None]] = {}
        store.listen(self._signalled)

    async def policy(self, interaction: discord.Interaction) -> Policy:
        """What applies to this member here; Refused when they may not use the bot here at all."""
        if interaction.guild_id is None:
            return await self._dm_policy(interaction.user.id)
        guild = await self.guild_settings(interaction.guild_id)
        return replace(self._server_policy(interaction, guild), blocklist=self._blocklist(guild.blocklist))

    def _blocklist(self, *server_rules: tuple[str, ...]) -> Blocklist:
        """The operator's rules and the given servers' (compiled once per distinct list)."""
        return blocklist_of(self._settings.blocklist, tuple(rule for rules in server_rules for rule in rules))

    def _server_policy(self, interaction: discord.Interaction, guild: GuildSettings) -> Policy:
        channel = interaction.channel
        parent = getattr(channel, "parent_id", None)
        roles = [role.id for role in getattr(interaction.user, "roles", [])]
        return policy_for(
            guild,
            provider=self._settings.provider_info,
            defaults=self._settings.limits(),
            default_model=self._settings.default_model,
            channel_ids=[c for c in (interaction.channel_id, parent) if c is not None],
            role_ids=roles,
            guild_id=interaction.guild_id,
        )

    async def _dm_policy(self, user_id: int) -> Policy:
        if not self._settings.serve_dms:
            raise Refused(NO_DMS)
        guilds = sorted(self._servers.guilds, key=lambda g: g.id)
        try:
            # All servers at once and within a bound: the command must still be acknowledged within 3 s.
            memberships = await asyncio.wait_for(
                asyncio.gather(*(self._member_roles(guild, user_id) for guild in guilds)), MEMBERSHIP_LOOKUP_SECONDS
            )
        except TimeoutError:
            log.warning("looking up the servers of member %s took over %.1f s", user_id, MEMBERSHIP_LOOKUP_SECONDS)
            raise Refused(MEMBERSHIP_UNKNOWN) from None
        servers = []
        for guild, roles in zip(guilds, memberships, strict=True):
            if roles is None:
                continue
            settings = await self.guild_settings(guild.id)
            role = guild.get_role(settings.required_role) if settings.required_role else None
            servers.append(SharedServer(guild.name, settings, roles, role.name if role else "", guild.id))
        # In a DM, every shared server's blocklist applies: the member is one of each server's community.
        blocklist = self._blocklist(*(server.settings.blocklist for server in servers))
        policy = dm_policy(
            servers,
            provider=self._settings.provider_info,
            defaults=self._settings.limits(),
            default_model=self._settings.default_model,
        )
        return replace(policy, blocklist=blocklist)

    async def _member_roles(self, guild: discord.Guild, user_id: int) -> tuple[int, ...] | None:
        """The member's role ids on `guild`, None when not a member; asked of Discord at most every few minutes."""
        now = self._clock()
        cached = self._memberships.get((guild.id, user_id))
        if cached is not None and cached[0] > now:
            return cached[1]
        # Without the privileged members intent the cache rarely has the member; REST does not need the intent.
        member = guild.get_member(user_id)
        if member is None:
            try:
                member = await guild.fetch_member(user_id)
            except discord.NotFound:
                member = None
            except discord.HTTPException as exc:
                log.warning("could not look up member %s on server %s: %s %s", user_id, guild.id, exc.status, exc.text)
                raise Refused(MEMBERSHIP_UNKNOWN) from None
        roles = tuple(role.id for role in member.roles) if member is not None else None
        if len(self._memberships) > MEMBERSHIP_CACHE_SIZE:
            self._memberships.clear()
        self._memberships[(guild.id, user_id)] = (now + MEMBERSHIP_TTL_SECONDS, roles)
        return roles

    def policy_for_settings(self, settings: GuildSettings) -> Policy:
        """The policy a server's settings give, ignoring place and role (for showing the settings)."""
        return policy_for(
            with_changes(settings, allowed_channels=(), required_role=None),
            provider=self._settings.provider_info,
            defaults=self._settings.limits(),
            default_model=self._settings.default_model,
            channel_ids=[],
            role_ids=[],
        )

    async def guild_settings(self, guild_id: int) -> GuildSettings:
        """A server's settings (cached; a change here or, by signal, on another process, drops the entry)."""
        cached = self._guild_settings.get(guild_id)
        now = self._clock()
        if cached is None or (self._store.shared and now - cached[0] >= SETTINGS_RECHECK_SECONDS):
            cached = self._guild_settings[guild_id] = (now, await self._store.guild_settings(guild_id))
        return cached[1]

    async def change_guild_settings(
        self, guild_id: int, change: Callable[[GuildSettings], GuildSettings]
    ) -> GuildSettings:
        """Apply `change` to a server's settings and save the result; they apply to the next command.

        Read, change and save happen under one lock per server (across processes), so two moderators' edits never
        undo each other. An exception from `change` (a `Refused` with the reason) leaves the settings as they were.
        """
        lock = self._settings_locks.setdefault(guild_id, asyncio.Lock())
        async with lock, self._store.exclusive(f"guild-settings:{guild_id}"):
            changed = change(await self._store.guild_settings(guild_id))
            await self._store.save_guild_settings(guild_id, changed)
            self._guild_settings[guild_id] = (self._clock(), changed)
        await self._store.signal(Signal.SETTINGS, str(guild_id))
        return changed

    def _signalled(self, signal: Signal, payload: str) -> None:
        """Another process changed a server's settings: read them again at the next command."""
        if signal is Signal.SETTINGS and payload.isdigit():
            self._guild_settings.pop(int(payload), None)
