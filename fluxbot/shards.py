"""The Discord shards a process runs, as /healthz and /metrics report them."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import cast

import discord


@dataclass(frozen=True)
class ShardState:
    """One shard of this process: whether its gateway connection is open, and its heartbeat latency."""

    id: int
    connected: bool
    #: Seconds from a heartbeat to Discord's answer; None until one was answered (or while disconnected).
    latency: float | None

    def as_json(self) -> dict[str, object]:
        """The shard as /healthz shows it."""
        return {"id": self.id, "connected": self.connected, "latency_seconds": self.latency}


def shard_states(client: discord.AutoShardedClient) -> list[ShardState]:
    """Every shard the client runs (SHARD_IDS, or all of the shard count), connected or not; empty until the
    shard count is known (when unset, discord.py asks Discord for it while connecting)."""
    # discord.py types it int, but it is None until connecting asked Discord for it.
    count = cast("int | None", client.shard_count)
    if count is None:
        return []
    ids = client.shard_ids if client.shard_ids is not None else range(count)
    states = []
    for shard_id in sorted(ids):
        shard = client.get_shard(shard_id)  # None until discord.py started connecting it
        connected = shard is not None and not shard.is_closed() and not client.is_closed()
        latency = shard.latency if shard is not None and connected and math.isfinite(shard.latency) else None
        states.append(ShardState(shard_id, connected, latency))
    return states
