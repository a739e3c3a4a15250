"""Shows a job on Discord: edits its reply into the progress card or the result, whatever it takes.

The result goes, in order of preference: into the reply through the interaction token; once that token has
expired (15 minutes), into the reply through the bot token; if the reply cannot be edited, into a new message in
the channel that mentions the member; and as a last resort into a DM. A reply the member deleted is not re-posted.
Images the job core kept (a provider whose links expire) are uploaded from those bytes, never downloaded again.
Whatever it shows is in the job's public locale (`job.reply.locale`); its errors are for the logs, in English.
"""

from __future__ import annotations

import io
import logging
import time
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Any, TypedDict, TypeVar

import aiohttp
import discord
from aiohttp.abc import AbstractResolver

from fluxbot import render
from fluxbot.buttons import result_view
from fluxbot.downloads import ImageFetcher
from fluxbot.errors import FluxbotError, Message
from fluxbot.i18n import N_, text
from fluxbot.jobs.durations import Estimate
from fluxbot.jobs.lifecycle import Job, JobStatus
from fluxbot.jobs.requests import url_expired
from fluxbot.storage import StoreUnavailable

log = logging.getLogger(__name__)
T = TypeVar("T")

#: Discord's JSON error code for an interaction token that has expired (15 minutes after the command).
INVALID_WEBHOOK_TOKEN = 50027
UNKNOWN_WEBHOOK = 10015
REQUEST_TOO_LARGE = 40005
#: How long an interaction token is used: Discord's 15 minutes, less a margin.
INTERACTION_TOKEN_LIFETIME = 14.5 * 60
#: Discord's smallest per-file upload limit, used when an interaction did not say.
DEFAULT_UPLOAD_LIMIT = 10 * 1024 * 1024

LINKS_INSTEAD = Message(
    # Translators: a note on a result whose images could not be uploaded to Discord
    N_(
        "The images could not be copied into Discord, so they are shown from the provider's links. Nothing is "
        "lost, but those links expire after a while: save the images you want to keep."
    )
)


class DeliveryError(FluxbotError):
    """The reply could not be edited; `retryable` says whether trying again later may work."""

    def __init__(self, reason: str, *, retryable: bool) -> None:
        super().__init__(reason)
        self.retryable = retryable


class _PostParts(TypedDict, total=False):
    embeds: list[discord.Embed]
    files: list[discord.File]
    allowed_mentions: discord.AllowedMentions
    nonce: str
    view: discord.ui.View


def _post_text(job: Job, *, mention: bool) -> str:
    """The words of a result posted in the channel (`mention`: the member) or sent by DM, in the job's locale."""
    locale = job.reply.locale
    if mention:
        # Translators: a result posted anew in the channel ({user} mentions the member who asked for it)
        return text(
            locale,
            "<@{user}> Here is the result of your job #{id} (its reply could not be updated).",
            user=job.reply.user_id,
            id=job.id,
        )
    if job.reply.channel_id:
        # Translators: a result sent by DM ({channel} links the channel where the job was asked for)
        return text(
            locale,
            "Here is the result of your job #{id} in <#{channel}> (its reply could not be updated).",
            id=job.id,
            channel=job.reply.channel_id,
        )
    # Translators: a result sent by DM ({id}: the job's number)
    return text(locale, "Here is the result of your job #{id} (its reply could not be updated).", id=job.id)


@dataclass(frozen=True)
class _Message:
    embeds: list[discord.Embed]
    files: tuple[tuple[str, bytes], ...] = ()
    view: discord.ui.View | None = None

    def post_parts(self, job: Job) -> _PostParts:
        """What a new message carries besides its text; the nonce makes Discord drop a repeated post."""
        mentions = discord.AllowedMentions(everyone=False, roles=False, users=True)
        parts: _PostParts = {
            "embeds": self.embeds,
            "files": self.discord_files(),
            "allowed_mentions": mentions,
            "nonce": f"fluxbot-job-{job.id}"[:25],
        }
        if self.view is not None:
            parts["view"] = self.view
        return parts

    def discord_files(self) -> list[discord.File]:
        # A discord.File is consumed by one request, so each attempt gets fresh ones.
        return [discord.File(io.BytesIO(data), filename=name) for name, data in self.files]


#: A job's message, made for the job as given (`said`: the job, or the job with the member's locale for a DM).
_Made = Callable[[Job], _Message]


async def _never(job: Job) -> bool:
    return False


async def _none_kept(job: Job) -> Mapping[str, bytes]:
    return {}


class Delivery:
    """Edits job replies on Discord, uploading the finished images so they outlive the provider's links."""

    def __init__(
        self,
        client: discord.Client,
        session: aiohttp.ClientSession,
        *,
        image_delivery: str = "attachment",
        download_timeout: float = 30.0,
        resolver: AbstractResolver | None = None,
        spoilers: Callable[[Job], Awaitable[bool]] | None = None,
        kept: Callable[[Job], Awaitable[Mapping[str, bytes]]] | None = None,
    ) -> None:
        self._client = client
        #: Whether a job's result is shown as spoilers (the server's choice); never, unless given.
        self._spoilers = spoilers or _never
        #: The job's images already downloaded, by URL (`Jobs.kept_images`); none, unless given.
        self._kept = kept or _none_kept
        self._fetcher = ImageFetcher(session, timeout=download_timeout, resolver=resolver)
        self._attach = image_delivery == "attachment"
        self._expired: set[str] = set()  # interaction tokens Discord called expired

    async def show_progress(
        self,
        job: Job,
        *,
        now: float,
        position: int | None = None,
        estimate: Estimate | None = None,
        provider_place: int | None = None,
    ) -> None:
        """Edit the reply into the progress card with the current elapsed time (and place in line, or in the
        provider's own queue)."""
        card = render.queued_card(job, now=now, position=position, estimate=estimate, provider_place=provider_place)
        message = _Message(card)
        try:
            await self._edit_reply(job, message)
        except (_Gone, _Refused, _TooLarge) as exc:
            raise DeliveryError(f"progress card not shown: {exc}", retryable=False) from None

    async def show_outcome(self, job: Job, *, copies: Sequence[str] = ()) -> str:
        """Show the job's result or error and return how it was delivered; `copies` are the URLs of its images
        already on Discord (`uploaded_copies`), shown instead of copying the images again."""
        try:
            return await self._show_outcome(job, copies)
        except (_Gone, _Refused, _Expired, _TooLarge) as exc:
            raise DeliveryError(f"{type(exc).__name__.strip('_').lower()}: {exc}", retryable=False) from None

    async def uploaded_copies(self, job: Job) -> list[str]:
        """The URLs of the images the job's reply carries on Discord now, one per image shown (reading the
        message signs them afresh); [] when the reply or any of its images is gone."""
        if job.deleted_at is not None or job.reply.channel_id is None or job.reply.message_id is None:
            return []
        try:
            message = await _call(self._channel(job).fetch_message(job.reply.message_id))
        except (_Gone, _Refused, _Expired, _TooLarge, DeliveryError) as exc:
            log.info("job %d: its reply's images cannot be reused (%s); copying them again", job.id, exc)
            return []
        uploaded = {a.filename.removeprefix("SPOILER_"): a.url for a in message.attachments}
        copies = []
        for number in range(1, len(render.shown_images(job)) + 1):
            url = next((u for name, u in uploaded.items() if name.startswith(f"flux-{job.id}-{number}.")), None)
            if url is None or url_expired(url, now=time.time()):
                return []
            copies.append(url)
        return copies

    async def _show_outcome(self, job: Job, copies: Sequence[str]) -> str:
        # An image the provider flagged is a spoiler whatever the server chose.
        spoiler = job.status is JobStatus.SUCCEEDED and (render.flagged(job) or await self._spoilers(job))

        def card(**shown: Any) -> _Made:
            # Made for the job as given: its reply's language, or the member's for a DM (`_deliver`).
            return lambda said: _Message(render.final_card(said, spoiler=spoiler, **shown), view=result_view(said))

        if copies and not spoiler and job.status is JobStatus.SUCCEEDED:
            # Shown again: the embeds show the first reply's uploads; nothing is downloaded or uploaded.
            return await self._deliver(job, card(copies=copies))
        if not (self._attach and job.status is JobStatus.SUCCEEDED):
            return await self._deliver(job, card())
        # A spoiler must be a file of its own: Discord's copies are fetched then, the provider's links may be old.
        files = await self._download(job, copies)
        links_only = card(note=LINKS_INSTEAD)
        if files is None:
            return await self._deliver(job, links_only)
        if spoiler:  # Discord blurs a file whose name starts so, until the reader clicks it
            files = tuple((f"SPOILER_{name}", data) for name, data in files)
        uploads = files
        with_files = card(attachments=[name for name, _ in files])
        try:
            return await self._deliver(job, lambda said: replace(with_files(said), files=uploads))
        except _TooLarge:
            log.info("job %d: Discord refused the upload as too large; showing links instead", job.id)
            return await self._deliver(job, links_only)

    # -- the ways to reach the member ------------------------------------------------------------

    async def _deliver(self, job: Job, made: _Made) -> str:
        message = made(job)
        try:
            return await self._edit_reply(job, message)
        except _Gone as exc:
            if job.deleted_at is not None:  # the member removed it with the Delete button
                raise DeliveryError("the member deleted the reply; not posting it again", retryable=False) from None
            log.info("job %d: the reply is gone (%s); posting the result instead", job.id, exc)
        except _Refused as exc:
            log.info("job %d: the reply cannot be edited (%s); posting the result instead", job.id, exc)
        if job.reply.channel_id is not None:
            try:
                await _call(self._channel(job).send(_post_text(job, mention=True), **message.post_parts(job)))
                log.info("job %d: result posted in the channel, mentioning the member", job.id)
                return "channel_post"
            except (_Gone, _Refused, _Expired) as exc:
                log.info("job %d: cannot post in the channel (%s); sending a DM", job.id, exc)
        try:
            user = self._client.get_user(job.reply.user_id)
            if user is None:
                user = await _call(self._client.fetch_user(job.reply.user_id))
            # Only the member reads a DM: in their own language.
            mine = replace(job, reply=replace(job.reply, locale=job.reply.member_locale or job.reply.locale))
            await _call(user.send(_post_text(mine, mention=False), **made(mine).post_parts(job)))
        except (_Gone, _Refused, _Expired) as exc:
            raise DeliveryError(f"no way left to reach the member ({exc})", retryable=False) from None
        log.info("job %d: result sent to the member by DM", job.id)
        return "dm"

    async def _edit_reply(self, job: Job, message: _Message) -> str:
        """Edit the reply itself: with the interaction token, or with the bot token once that expired."""
        if job.reply.message_id is None:
            raise _Gone("no reply message id")
        if self._token_usable(job):
            webhook = discord.Webhook.partial(
                job.reply.application_id, job.reply.interaction_token, client=self._client
            )
            attachments = message.discord_files()
            try:
                edit = webhook.edit_message(
                    job.reply.message_id, embeds=message.embeds, attachments=attachments, view=message.view
                )
                await _call(edit)
                return "interaction"
            except _Expired:
                self._expired.add(job.reply.interaction_token)
                log.info("job %d: interaction token expired; editing the reply with the bot token", job.id)
        if job.reply.channel_id is None:
            raise _Refused("the interaction token expired and no channel is known")
        reply = self._channel(job).get_partial_message(job.reply.message_id)
        await _call(reply.edit(embeds=message.embeds, attachments=message.discord_files(), view=message.view))
        return "channel"

    def _token_usable(self, job: Job) -> bool:
        # Discord keeps an interaction token for 15 minutes; past that every call would only earn a 401.
        fresh = time.time() - job.created_at < INTERACTION_TOKEN_LIFETIME
        return bool(job.reply.interaction_token) and fresh and job.reply.interaction_token not in self._expired

    def _channel(self, job: Job) -> discord.PartialMessageable:
        assert job.reply.channel_id is not None
        return self._client.get_partial_messageable(job.reply.channel_id, guild_id=job.reply.guild_id)

    # -- images ----------------------------------------------------------------------------------

    async def _download(self, job: Job, copies: Sequence[str] = ()) -> tuple[tuple[str, bytes], ...] | None:
        """The job's images (from `copies` when given) as (filename, bytes), or None when any cannot be fetched
        within the limits."""
        # No more than the result shows: the job may hold more images than it asked for.
        urls = list(copies) or [image.url for image in render.shown_images(job)]
        try:
            kept = {} if copies else await self._kept(job)
        except StoreUnavailable as exc:
            raise DeliveryError(f"its kept images could not be read: {exc}", retryable=True) from None
        return await self._fetcher.fetch_all(job, urls, job.reply.upload_limit or DEFAULT_UPLOAD_LIMIT, kept=kept)


class _Gone(Exception):
    """The message (or channel, or user) no longer exists."""


class _Refused(Exception):
    """Discord refused this way for good: no access, no permission, or a request it will not take."""


class _Expired(Exception):
    """The interaction token has expired."""


class _TooLarge(Exception):
    """The upload is larger than Discord accepts here."""


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
        if exc.status >= 500 or exc.status == 429:
            raise DeliveryError(f"Discord answered {exc.status} (code {exc.code})", retryable=True) from None
        # Any other refusal (e.g. 400 invalid form body): this way is closed, the next one may work.
        raise _Refused(f"HTTP {exc.status}, code {exc.code}") from None
    except (TimeoutError, aiohttp.ClientError, OSError) as exc:
        raise DeliveryError(f"could not reach Discord: {type(exc).__name__}", retryable=True) from None
