"""The bot's servers on every shard, for the rules of direct messages.

A member's DM follows the rules of the servers they share with the bot. A process that runs every shard has all
of them in its cache. A process that runs only some shards (several processes) has only its shards' servers, so
it also keeps the others' servers as Discord's REST API lists them, refreshed every few minutes.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Sequence

import discord

log = logging.getLogger(__name__)

#: How often the other shards' servers are listed again (a server joined meanwhile is seen at most this late).
REFRESH_SECONDS = 600.0


class ServerDirectory:
    """Every server the bot is in: the client's own (its shards), plus the other shards' when it runs only some."""

    def __init__(self, client: discord.Client, *, shard_ids: Sequence[int] | None, shard_count: int | None) -> None:
        self._client = client
        # DMs arrive on shard 0 only: another process's servers matter to the process that runs it.
        self._every_shard = (
            shard_ids is None or shard_count is None or 0 not in shard_ids or set(shard_ids) >= set(range(shard_count))
        )
        self._own = frozenset(shard_ids or ())
        self._count = shard_count or 1
        self._others: dict[int, discord.Guild] = {}
        self._task: asyncio.Task[None] | None = None

    @property
    def guilds(self) -> Sequence[discord.Guild]:
        """The servers the bot is in, on every shard (those of other processes as Discord last listed them)."""
        own = list(self._client.guilds)
        known = {guild.id for guild in own}
        return own + [guild for guild in self._others.values() if guild.id not in known]

    def start(self) -> None:
        """List the other shards' servers now and every REFRESH_SECONDS (nothing to do when it runs every shard)."""
        if not self._every_shard and self._task is None:
            self._task = asyncio.create_task(self._keep_fresh(), name="fluxbot-servers")

    async def stop(self) -> None:
        """Stop refreshing."""
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None

    async def refresh(self) -> None:
        """List the bot's servers through REST and fetch each one on another process's shards (with its roles)."""
        listed = [guild.id async for guild in self._client.fetch_guilds(limit=None)]
        others: dict[int, discord.Guild] = {}
        for guild_id in listed:
            if (guild_id >> 22) % self._count in self._own:  # Discord's shard formula: this process has it
                continue
            # The listing's guilds are partial; the full one has its roles, which the DM rules name.
            others[guild_id] = await self._client.fetch_guild(guild_id)
        self._others = others
        log.info("%d server(s) on other processes' shards are known for direct messages", len(others))

    async def _keep_fresh(self) -> None:
        while True:
            try:
                await self.refresh()
            except discord.HTTPException as exc:
                log.warning("could not list the servers of other shards (%s %s); trying again later", exc.status, exc)
            await asyncio.sleep(REFRESH_SECONDS)
