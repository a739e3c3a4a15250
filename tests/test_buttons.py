"""A button click reaches the handler its buttons were bound to: no cog is looked up, by name or otherwise."""

from __future__ import annotations

import asyncio
from typing import Any

import discord

from fluxbot.buttons import JobAction, bind_handler, jobs_page_view

USER = {"id": "333333333333333333", "username": "alice", "discriminator": "0", "global_name": None, "avatar": None}
BOT = {"id": "111111111111111111", "username": "fluxbot", "discriminator": "0", "avatar": None, "bot": True}
DM = {"id": "222222222222222222", "type": 1, "recipients": [USER]}


class Recorder:
    """A click handler that writes down what it was told."""

    def __init__(self) -> None:
        self.clicks: list[tuple[str, Any]] = []
        self.clicked = asyncio.Event()

    async def on_job_button(self, interaction: discord.Interaction, action: JobAction, job_id: int) -> None:
        """A result button was clicked."""
        self.clicks.append((str(action), job_id))
        self.clicked.set()

    async def on_jobs_page(self, interaction: discord.Interaction, page: int) -> None:
        """A page button of /jobs was clicked."""
        self.clicks.append(("page", page))
        self.clicked.set()


def client_for(handler: Recorder) -> discord.Client:
    """A bare discord.py client (it has no cogs at all) with the buttons bound to `handler`."""
    client = discord.Client(intents=discord.Intents(guilds=True))
    client.add_dynamic_items(*bind_handler(handler))
    return client


def click(client: discord.Client, custom_id: str, components: list[dict[str, Any]]) -> None:
    """Feed the client the INTERACTION_CREATE Discord sends when a member clicks `custom_id` in a DM."""
    message = {
        "id": "444444444444444444",
        "channel_id": DM["id"],
        "author": BOT,
        "content": "",
        "timestamp": "2025-01-01T00:00:00+00:00",
        "edited_timestamp": None,
        "tts": False,
        "mention_everyone": False,
        "mentions": [],
        "mention_roles": [],
        "attachments": [],
        "embeds": [],
        "pinned": False,
        "type": 0,
        "flags": 0,
        "components": components,
    }
    payload: Any = {
        "id": "555555555555555555",
        "application_id": BOT["id"],
        "type": 3,
        "token": "interaction-token",
        "version": 1,
        "data": {"custom_id": custom_id, "component_type": 2},
        "channel_id": DM["id"],
        "channel": DM,
        "user": USER,
        "message": message,
        "app_permissions": "0",
        "locale": "en-US",
        "entitlements": [],
        "authorizing_integration_owners": {"1": USER["id"]},
        "context": 1,
        "attachment_size_limit": 10_485_760,
    }
    client._connection.parse_interaction_create(payload)


def job_buttons(job_id: int) -> list[dict[str, Any]]:
    row = [{"type": 2, "style": 1, "label": a, "custom_id": f"fluxbot:job:{a}:{job_id}"} for a in JobAction]
    return [{"type": 1, "components": row}]


async def test_a_click_reaches_the_bound_handler_without_any_cog_named_results() -> None:
    handler, other = Recorder(), Recorder()
    client, other_client = client_for(handler), client_for(other)
    try:
        assert not hasattr(client, "get_cog"), "a bare client: nothing could be looked up by name"
        click(client, "fluxbot:job:edit:42", job_buttons(42))
        await asyncio.wait_for(handler.clicked.wait(), 5)
        assert handler.clicks == [("edit", 42)]

        handler.clicked.clear()
        shown = jobs_page_view(0, 3, locale=None)
        assert shown is not None
        click(client, "fluxbot:jobs:1:next", shown.to_components())
        await asyncio.wait_for(handler.clicked.wait(), 5)
        assert handler.clicks == [("edit", 42), ("page", 1)], "the page buttons /jobs shows are the bound ones"

        click(other_client, "fluxbot:job:reroll:7", job_buttons(7))
        await asyncio.wait_for(other.clicked.wait(), 5)
        assert other.clicks == [("reroll", 7)]
        assert handler.clicks == [("edit", 42), ("page", 1)], "each client's clicks reach its own handler only"
    finally:
        await client.close()
        await other_client.close()
