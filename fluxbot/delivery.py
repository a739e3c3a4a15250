"""Shows a job on Discord: edits its reply into the progress card or the result, whatever it takes.

The result goes, in order of preference: into the reply through the interaction token; once that token has
expired (15 minutes), into the reply through the bot token; if the reply cannot be edited, into a new message in
the channel that mentions the member; and as a last resort into a DM. A reply the member deleted is not re-posted.
"""

from __future__ import annotations

import asyncio
import io
import logging
from collections.abc import Awaitable
from dataclasses import dataclass
from typing import TypedDict, TypeVar

import aiohttp
import discord

from fluxbot import render
from fluxbot.store import Job, JobStatus

log = logging.getLogger(__name__)
T = TypeVar("T")

#: Discord's JSON error code for an interaction token that has expired (15 minutes after the command).
INVALID_WEBHOOK_TOKEN = 50027
UNKNOWN_WEBHOOK = 10015
REQUEST_TOO_LARGE = 40005
#: Discord's smallest per-file upload limit, used when an interaction did not say.
DEFAULT_UPLOAD_LIMIT = 10 * 1024 * 1024
_EXTENSIONS = {"image/png": "png", "image/jpeg": "jpg", "image/webp": "webp", "image/gif": "gif"}

LINKS_INSTEAD = (
    "The images could not be copied into Discord, so they are shown from the provider's links. Nothing is lost, "
    "but those links expire after a while: save the images you want to keep."
)


class DeliveryError(Exception):
    """The reply could not be edited; `retryable` says whether trying again later may work."""

    def __init__(self, reason: str, *, retryable: bool) -> None:
        super().__init__(reason)
        self.retryable = retryable


class _PostParts(TypedDict):
    embeds: list[discord.Embed]
    files: list[discord.File]
    allowed_mentions: discord.AllowedMentions


def _post_text(job: Job, *, mention: bool) -> str:
    where = f" in <#{job.channel_id}>" if job.channel_id and not mention else ""
    who = f"<@{job.user_id}> " if mention else ""
    return f"{who}Here is the result of your job #{job.id}{where} (its reply could not be updated)."


@dataclass(frozen=True)
class _Message:
    embeds: list[discord.Embed]
    files: tuple[tuple[str, bytes], ...] = ()
    content: str | None = None

    def post_parts(self) -> _PostParts:
        """What a new message carries besides its text."""
        mentions = discord.AllowedMentions(everyone=False, roles=False, users=True)
        return {"embeds": self.embeds, "files": self.discord_files(), "allowed_mentions": mentions}

    def discord_files(self) -> list[discord.File]:
        # A discord.File is consumed by one request, so each attempt gets fresh ones.
        return [discord.File(io.BytesIO(data), filename=name) for name, data in self.files]


class Delivery:
    """Edits job replies on Discord, uploading the finished images so they outlive the provider's links."""

    def __init__(
        self,
        client: discord.Client,
        session: aiohttp.ClientSession,
        *,
        image_delivery: str = "attachment",
        download_timeout: float = 30.0,
    ) -> None:
        self._client = client
        self._session = session
        self._attach = image_delivery == "attachment"
        self._download_timeout = download_timeout

    async def show_progress(self, job: Job, *, now: float) -> None:
        """Edit the reply into the progress card with the current elapsed time."""
        message = _Message(render.queued_card(job, now=now))
        try:
            await self._edit_reply(job, message)
        except (_Gone, _Refused, _TooLarge) as exc:
            raise DeliveryError(f"progress card not shown: {exc}", retryable=False) from None

    async def show_outcome(self, job: Job) -> str:
        """Show the job's result or error and return how it was delivered."""
        if not (self._attach and job.status is JobStatus.SUCCEEDED):
            return await self._deliver(job, _Message(render.final_card(job)))
        files = await self._download(job)
        if files is None:
            return await self._deliver(job, _Message(render.final_card(job, note=LINKS_INSTEAD)))
        names = [name for name, _ in files]
        try:
            return await self._deliver(job, _Message(render.final_card(job, attachments=names), files=files))
        except _TooLarge:
            log.info("job %d: Discord refused the upload as too large; showing links instead", job.id)
            return await self._deliver(job, _Message(render.final_card(job, note=LINKS_INSTEAD)))

    # -- the ways to reach the member ------------------------------------------------------------

    async def _deliver(self, job: Job, message: _Message) -> str:
        try:
            return await self._edit_reply(job, message)
        except _Gone as exc:
            raise DeliveryError(f"the reply was deleted ({exc}); not posting it again", retryable=False) from None
        except _Refused:
            log.info("job %d: the reply cannot be edited; posting the result instead", job.id)
        if job.channel_id is not None:
            try:
                await _call(self._channel(job).send(_post_text(job, mention=True), **message.post_parts()))
                log.info("job %d: result posted in the channel, mentioning the member", job.id)
                return "channel_post"
            except (_Gone, _Refused, _Expired) as exc:
                log.info("job %d: cannot post in the channel (%s); sending a DM", job.id, exc)
        try:
            user = self._client.get_user(job.user_id)
            if user is None:
                user = await _call(self._client.fetch_user(job.user_id))
            await _call(user.send(_post_text(job, mention=False), **message.post_parts()))
        except (_Gone, _Refused, _Expired) as exc:
            raise DeliveryError(f"no way left to reach the member ({exc})", retryable=False) from None
        log.info("job %d: result sent to the member by DM", job.id)
        return "dm"

    async def _edit_reply(self, job: Job, message: _Message) -> str:
        """Edit the reply itself: with the interaction token, or with the bot token once that expired."""
        if job.message_id is None:
            raise _Gone("no reply message id")
        attachments = message.discord_files()
        if job.interaction_token:
            webhook = discord.Webhook.partial(job.application_id, job.interaction_token, client=self._client)
            try:
                await _call(webhook.edit_message(job.message_id, embeds=message.embeds, attachments=attachments))
                return "interaction"
            except _Expired:
                log.info("job %d: interaction token expired; editing the reply with the bot token", job.id)
        if job.channel_id is None:
            raise _Refused("the interaction token expired and no channel is known")
        reply = self._channel(job).get_partial_message(job.message_id)
        await _call(reply.edit(embeds=message.embeds, attachments=message.discord_files()))
        return "channel"

    def _channel(self, job: Job) -> discord.PartialMessageable:
        assert job.channel_id is not None
        return self._client.get_partial_messageable(job.channel_id, guild_id=job.guild_id)

    # -- images ----------------------------------------------------------------------------------

    async def _download(self, job: Job) -> tuple[tuple[str, bytes], ...] | None:
        """The job's images as (filename, bytes), or None when any cannot be fetched within the limits."""
        limit = job.upload_limit or DEFAULT_UPLOAD_LIMIT
        try:
            return tuple(
                await asyncio.gather(*(self._fetch(job, i, image.url, limit) for i, image in enumerate(job.images)))
            )
        except _DownloadFailed as exc:
            log.warning("job %d: image download failed (%s); showing the provider's links", job.id, exc)
            return None

    async def _fetch(self, job: Job, index: int, url: str, limit: int) -> tuple[str, bytes]:
        timeout = aiohttp.ClientTimeout(total=self._download_timeout)
        try:
            async with self._session.get(url, timeout=timeout) as resp:
                if resp.status != 200:
                    raise _DownloadFailed(f"image {index + 1}: HTTP {resp.status}")
                extension = _EXTENSIONS.get(resp.content_type)
                if extension is None:
                    raise _DownloadFailed(f"image {index + 1}: not an image ({resp.content_type})")
                data = bytearray()
                async for chunk in resp.content.iter_chunked(64 * 1024):
                    data += chunk
                    if len(data) > limit:
                        raise _DownloadFailed(f"image {index + 1}: over the {limit // 1048576} MB upload limit")
        except (TimeoutError, aiohttp.ClientError) as exc:
            raise _DownloadFailed(f"image {index + 1}: {type(exc).__name__}") from None
        return f"flux-{job.id}-{index + 1}.{extension}", bytes(data)


class _Gone(Exception):
    """The message (or channel, or user) no longer exists."""


class _Refused(Exception):
    """Discord refused: no access or no permission."""


class _Expired(Exception):
    """The interaction token has expired."""


class _TooLarge(Exception):
    """The upload is larger than Discord accepts here."""


class _DownloadFailed(Exception):
    """An image could not be downloaded within the limits."""


async def _call(request: Awaitable[T]) -> T:
    """Await a discord.py request, sorting its failures into the cases delivery handles differently."""
    try:
        return await request
    except discord.NotFound as exc:
        if exc.code == UNKNOWN_WEBHOOK:
            raise _Expired(f"code {exc.code}") from None
        raise _Gone(f"code {exc.code}") from None
    except discord.Forbidden as exc:
        raise _Refused(f"code {exc.code}") from None
    except discord.HTTPException as exc:
        if exc.code == INVALID_WEBHOOK_TOKEN:
            raise _Expired(f"code {exc.code}") from None
        if exc.status == 413 or exc.code == REQUEST_TOO_LARGE:
            raise _TooLarge(f"code {exc.code}") from None
        retryable = exc.status >= 500 or exc.status == 429
        raise DeliveryError(f"Discord answered {exc.status} (code {exc.code})", retryable=retryable) from None
    except (TimeoutError, aiohttp.ClientError, OSError) as exc:
        raise DeliveryError(f"could not reach Discord: {type(exc).__name__}", retryable=True) from None
