"""Shows a job on Discord: edits the job's reply into its progress card or its final result."""

from __future__ import annotations

import logging
from collections.abc import Awaitable

import aiohttp
import discord

from fluxbot import render
from fluxbot.store import Job

log = logging.getLogger(__name__)

#: Discord's JSON error code for an interaction token that has expired (15 minutes after the command).
INVALID_WEBHOOK_TOKEN = 50027


class DeliveryError(Exception):
    """The reply could not be edited; `retryable` says whether trying again later may work."""

    def __init__(self, reason: str, *, retryable: bool) -> None:
        super().__init__(reason)
        self.retryable = retryable


class Delivery:
    """Edits job replies through the interaction's webhook, or with the bot token once that has expired."""

    def __init__(self, client: discord.Client) -> None:
        self._client = client

    async def show_progress(self, job: Job, *, now: float) -> None:
        """Edit the reply into the queued card with the current elapsed time."""
        await self._edit(job, render.queued_card(job, now=now))

    async def show_outcome(self, job: Job) -> str:
        """Edit the reply into the job's result or error; returns how it was delivered."""
        return await self._edit(job, render.final_card(job))

    async def _edit(self, job: Job, embeds: list[discord.Embed]) -> str:
        if job.message_id is None:
            raise DeliveryError(f"job {job.id} has no reply message id", retryable=False)
        webhook = discord.Webhook.partial(job.application_id, job.interaction_token, client=self._client)
        try:
            await _guard(webhook.edit_message(job.message_id, content=None, embeds=embeds))
            return "interaction"
        except _TokenExpired:
            if job.channel_id is None:
                raise DeliveryError("interaction token expired and no channel is known", retryable=False) from None
        # The interaction token lives 15 minutes; the reply is the bot's own message, so the bot token can edit it.
        log.info("job %d: interaction token expired; editing the reply with the bot token", job.id)
        message = self._client.get_partial_messageable(job.channel_id).get_partial_message(job.message_id)
        try:
            await _guard(message.edit(content=None, embeds=embeds))
        except _TokenExpired:
            raise DeliveryError("Discord refused the bot token", retryable=False) from None
        return "channel"


class _TokenExpired(Exception):
    pass


async def _guard(edit: Awaitable[object]) -> None:
    """Await a discord.py edit, turning its failures into DeliveryError (or _TokenExpired)."""
    try:
        await edit
    except discord.NotFound as exc:
        raise DeliveryError(f"reply gone (Discord code {exc.code})", retryable=False) from None
    except discord.HTTPException as exc:
        if exc.code == INVALID_WEBHOOK_TOKEN:
            raise _TokenExpired from None
        retryable = exc.status >= 500 or exc.status == 429
        raise DeliveryError(f"Discord answered {exc.status} (code {exc.code})", retryable=retryable) from None
    except (TimeoutError, aiohttp.ClientError, OSError) as exc:
        raise DeliveryError(f"could not reach Discord: {type(exc).__name__}", retryable=True) from None
