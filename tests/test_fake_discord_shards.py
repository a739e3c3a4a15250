"""The fake Discord with several guilds and shards: each connection gets its shards' guilds and interactions."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack
from typing import TypeVar

import aiohttp
import discord
import pytest
import yarl

from tests.fakes.discord_api import FakeDiscord
from tests.fakes.discord_guilds import DISCORD_EPOCH_MS, guild_id_on_shard, shard_of

WAIT = 5.0
C = TypeVar("C", bound=discord.Client)


class ShardClient(discord.Client):
    """A client running one shard that records every interaction."""

    def __init__(self, *, shard_id: int, shard_count: int) -> None:
        intents = discord.Intents(guilds=True)
        super().__init__(intents=intents, shard_id=shard_id, shard_count=shard_count, guild_ready_timeout=0.05)
        self.seen: list[discord.Interaction] = []

    async def on_interaction(self, interaction: discord.Interaction) -> None:
        """Keep it for the test."""
        self.seen.append(interaction)


class AllShards(discord.AutoShardedClient):
    """discord.py's sharded client, without its 5 s pause between IDENTIFYs (the fake does not rate-limit them)."""

    async def before_identify_hook(self, shard_id: int | None, *, initial: bool = False) -> None:
        """Identify at once."""


@pytest.fixture
async def fake() -> AsyncIterator[FakeDiscord]:
    """A fake with two guilds, on shards 0 and 1 of 2, recommending 2 shards; discord.py pointed at it."""
    server = FakeDiscord(guild_id=guild_id_on_shard(0, 2), recommended_shards=2)
    server.add_guild(guild_id_on_shard(1, 2))
    await server.start()
    old_base, old_gateway = discord.http.Route.BASE, discord.gateway.DiscordWebSocket.DEFAULT_GATEWAY
    discord.http.Route.BASE = server.api_base
    discord.gateway.DiscordWebSocket.DEFAULT_GATEWAY = yarl.URL(server.gateway_url)
    try:
        yield server
    finally:
        discord.http.Route.BASE, discord.gateway.DiscordWebSocket.DEFAULT_GATEWAY = old_base, old_gateway
        await server.close()


async def connect(stack: AsyncExitStack, fake: FakeDiscord, client: C) -> C:
    """Run `client` until the test ends."""
    runner = asyncio.create_task(client.start(fake.bot_token))

    async def stop() -> None:
        await client.close()
        await asyncio.wait_for(runner, WAIT)

    stack.push_async_callback(stop)
    return client


def test_guild_ids_land_on_the_chosen_shard_and_look_like_snowflakes() -> None:
    made = [(guild_id_on_shard(k, n), k, n) for n in (1, 2, 3, 5, 16) for k in range(n)]
    for guild_id, shard, count in made:
        assert shard_of(guild_id, count) == shard == (guild_id >> 22) % count
        assert 17 <= len(str(guild_id)) <= 20
        created_ms = (guild_id >> 22) + DISCORD_EPOCH_MS
        assert 1_680_000_000_000 < created_ms < 1_750_000_000_000, "a guild made in 2023-2025"
    assert len({guild_id for guild_id, _, _ in made}) == len(made), "every call makes a new guild"
    with pytest.raises(ValueError, match=r"shard 2 is not one of 0\.\.1"):
        guild_id_on_shard(2, 2)


async def test_each_shard_gets_its_guilds_and_the_interactions_of_its_guilds(fake: FakeDiscord) -> None:
    first, second = fake.guild_id, next(g for g in fake.guilds if g != fake.guild_id)
    async with AsyncExitStack() as stack:
        shard0 = await connect(stack, fake, ShardClient(shard_id=0, shard_count=2))
        shard1 = await connect(stack, fake, ShardClient(shard_id=1, shard_count=2))
        await fake.wait_shards_ready([0, 1], 2, WAIT)
        await asyncio.wait_for(asyncio.gather(shard0.wait_until_ready(), shard1.wait_until_ready()), WAIT)
        assert sorted(fake.identified_shards()) == [(0, 2), (1, 2)]
        assert [g.id for g in shard0.guilds] == [first], "READY and GUILD_CREATE only for the shard's guilds"
        assert [g.id for g in shard1.guilds] == [second]

        in_second = await fake.send_slash_command("imagine", guild_id=second, wait_for_ack=False)
        in_first = await fake.send_slash_command("imagine", guild_id=first, wait_for_ack=False)
        in_dm = await fake.send_slash_command("imagine", guild=False, wait_for_ack=False)
        await fake.wait_for(lambda: len(shard0.seen) == 2 and len(shard1.seen) == 1, WAIT)
        assert [(i.id, i.guild_id) for i in shard1.seen] == [(in_second.id, second)]
        assert [(i.id, i.guild_id) for i in shard0.seen] == [(in_first.id, first), (in_dm.id, None)], "DMs: shard 0"
        assert in_second.payload["channel_id"] == str(fake.guild(second).channel_id)
        assert in_second.payload["member"]["roles"] == []

        joined = await fake.join_guild(guild_id_on_shard(1, 2))
        await fake.wait_for(lambda: shard1.get_guild(joined.id) is not None, WAIT)
        assert shard0.get_guild(joined.id) is None, "GUILD_CREATE goes to the guild's shard only"

        await fake.drop_gateway_connections()
        await fake.wait_for(lambda: len(fake.resumes) == 2 and fake.connected_shards == [(0, 2), (1, 2)], WAIT)
        await fake.send_slash_command("imagine", guild_id=joined.id, wait_for_ack=False)
        await fake.wait_for(lambda: len(shard1.seen) == 2, WAIT)
        assert shard1.seen[-1].guild_id == joined.id, "a resumed session keeps its shard"
        assert len(shard0.seen) == 2


async def test_an_interaction_for_a_shard_nobody_holds_fails_clearly(fake: FakeDiscord) -> None:
    second = next(g for g in fake.guilds if g != fake.guild_id)
    async with AsyncExitStack() as stack:
        await connect(stack, fake, ShardClient(shard_id=0, shard_count=2))
        await fake.wait_shards_ready([0], 2, WAIT)
        with pytest.raises(AssertionError) as refused:
            await fake.send_slash_command("imagine", guild_id=second)
        message = str(refused.value)
        assert f"cannot dispatch INTERACTION_CREATE for guild {second}" in message
        assert "no identified gateway connection holds its shard" in message
        assert "connected shards: 0 of 2" in message
        assert fake.interactions == [], "an interaction nobody received is not recorded as sent"
        with pytest.raises(AssertionError, match="no guild 42"):
            await fake.send_slash_command("imagine", guild_id=42)


async def test_a_sharded_client_without_a_count_uses_the_recommended_one(fake: FakeDiscord) -> None:
    async with AsyncExitStack() as stack:
        client = await connect(stack, fake, AllShards(intents=discord.Intents(guilds=True), guild_ready_timeout=0.05))
        await fake.wait_shards_ready([0, 1], 2, WAIT)
        await asyncio.wait_for(client.wait_until_ready(), WAIT)
        assert client.shard_count == 2
        assert sorted(fake.identified_shards()) == [(0, 2), (1, 2)]
        assert {g.id: g.shard_id for g in client.guilds} == {g: shard_of(g, 2) for g in fake.guilds}


async def test_an_invalid_shard_is_closed_with_4010(fake: FakeDiscord) -> None:
    async with aiohttp.ClientSession() as session, session.ws_connect(fake.gateway_url) as ws:
        hello = await ws.receive_json()
        assert hello["op"] == 10
        await ws.send_json({"op": 2, "d": {"token": fake.bot_token, "intents": 1, "shard": [2, 2]}})
        closed = await ws.receive()
        assert (closed.type, ws.close_code) == (aiohttp.WSMsgType.CLOSE, 4010)
    assert fake.identifies == []
