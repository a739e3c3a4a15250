"""FluxBot: the discord.py client that owns the job service, loads the cogs and syncs the commands."""

from __future__ import annotations

import asyncio
import hashlib
import json
import logging
import time
from collections.abc import Callable, Mapping

import aiohttp
import discord
from discord import app_commands
from discord.ext import commands

from fluxbot.config import Settings
from fluxbot.defaults import Chosen, Typed, choose, notes_message
from fluxbot.delivery import Delivery
from fluxbot.downloads import ImageFetcher
from fluxbot.errors import MemberError, Message
from fluxbot.i18n import N_, CommandTranslator, channel_locale, member_locale, text
from fluxbot.jobs.lifecycle import Job, Reply
from fluxbot.jobs.requests import AttachmentInfo
from fluxbot.jobs.service import Jobs
from fluxbot.limits import Policy, PromptBlocked, shows_spoilers
from fluxbot.modlog import Moderation
from fluxbot.policy import MemberPolicies
from fluxbot.providers.base import Action, JobRequest, Provider
from fluxbot.servers import ServerDirectory
from fluxbot.shards import ShardState, shard_states
from fluxbot.startup import invite_url
from fluxbot.storage import Store

log = logging.getLogger(__name__)

EXTENSIONS = ("cogs.images", "cogs.results", "cogs.server", "cogs.member")
SUBMIT_DRAIN_SECONDS = 35.0  # a provider request times out after 30 s
RESTARTING = N_("The bot is restarting right now. Please try again in a moment; nothing of yours was lost.")
#: The answer to a command that failed unexpectedly (say it with `text(member_locale(interaction), GENERIC_ERROR)`).
GENERIC_ERROR = N_(
    "Something went wrong on the bot's side and this command did not run. "
    "Please try again in a moment; if it keeps happening, tell the bot's operator."
)
#: Pauses between looks at whether a job's reply shows its card yet, before a private note follows it (~40 s: a
#: submit may take 30 s before the first card).
NOTE_WAITS = (0.2, 0.3, 0.5, 1.0, 1.0, 2.0, 2.0, 3.0, 5.0, 5.0, 10.0, 10.0)


class FluxBot(commands.AutoShardedBot):
    """The bot: resources are created outside and handed in; the job service is built here.

    It runs the shards SHARD_COUNT and SHARD_IDS give it (unset: every shard Discord asks for). Discord sends a
    server's interactions to the process running its shard, `(guild_id >> 22) % shard_count`, and DMs to shard 0.
    """

    def __init__(
        self,
        *,
        settings: Settings,
        store: Store,
        providers: Mapping[str, Provider],
        session: aiohttp.ClientSession,
        callback_url: str | None = None,
    ) -> None:
        # fluxbot never joins voice: the missing-voice-library warnings would only worry operators.
        discord.VoiceClient.warn_nacl = False
        discord.VoiceClient.warn_dave = False
        super().__init__(
            command_prefix=commands.when_mentioned,
            intents=discord.Intents(guilds=True),
            tree_cls=FluxCommandTree,
            allowed_mentions=discord.AllowedMentions(everyone=False, roles=False, users=True),
            shard_count=settings.shard_count,
            # None is discord.py's own default (every shard), though its option type leaves it out.
            shard_ids=list(settings.shard_ids) if settings.shard_ids is not None else None,  # type: ignore[arg-type]
        )
        self.settings = settings
        self.store = store
        self.jobs = Jobs(
            store,
            providers[settings.provider],
            Delivery(
                self,
                session,
                image_delivery=settings.image_delivery,
                spoilers=self._spoilers,
                kept=lambda job: self.jobs.kept_images(job),
            ),
            poll_interval=settings.poll_interval_seconds,
            job_timeout=settings.job_timeout_seconds,
            max_in_flight=settings.max_jobs_in_flight,
            other_providers=providers,
            callback_url=callback_url,
            retention_days=settings.job_retention_days,
            fetcher=ImageFetcher(session),  # the images of providers whose links expire, downloaded at once
        )
        #: Which rules apply to a member where they asked (the cogs ask it; so does `run_job`).
        self.servers = ServerDirectory(self, shard_ids=settings.shard_ids, shard_count=settings.shard_count)
        self.policies = MemberPolicies(store, settings, self.servers)
        #: Refused prompts: strikes, pauses and the moderation log.
        self.moderation = Moderation(self, store, self.policies)
        #: Set when shutdown starts: from then on commands are answered "restarting".
        self.closing = False
        #: Set once logged in (setup_hook): before that, there is nothing to shut down but the connection.
        self.started = False
        self._notes: set[asyncio.Task[None]] = set()  # private notes waiting for their job's card

    async def setup_hook(self) -> None:
        """Load the cogs, sync the commands, resume unfinished jobs and start tracking."""
        self.started = True
        if self.application_id is not None:
            log.info("invite the bot to a server with %s", invite_url(self.application_id))
        await self.tree.set_translator(CommandTranslator())  # before the sync: it sends the localized names
        for extension in EXTENSIONS:
            await self.load_extension(extension)
        await self.sync_commands()
        await self.jobs.resume()
        self.jobs.start_tracker()
        self.servers.start()

    async def sync_commands(self) -> None:
        """Sync to DEV_GUILD_ID when set (instant); otherwise globally, only when the commands changed."""
        if self.settings.dev_guild_id is not None:
            guild = discord.Object(id=self.settings.dev_guild_id)
            self.tree.copy_global_to(guild=guild)
            synced = await self.tree.sync(guild=guild)
            log.info("synced %d command(s) to the development server %s", len(synced), guild.id)
            return
        digest = await commands_digest(self.tree)
        key = f"commands_hash:{self.application_id}"
        # Several processes start together: the first syncs, the others wait here and then find the hash stored.
        async with self.store.exclusive("command-sync"):
            if await self.store.meta.get(key) == digest:
                log.info("commands unchanged since the last global sync; not syncing")
                return
            synced = await self.tree.sync()
            await self.store.meta.set(key, digest)
        log.info(
            "synced %d command(s) globally (Discord may take up to an hour to show changes everywhere)", len(synced)
        )

    async def reply_for(self, interaction: discord.Interaction) -> Reply:
        """Acknowledge the interaction with a "thinking" reply and say where that reply is."""
        callback = await interaction.response.defer(thinking=True)
        message_id = callback.message_id if callback is not None else None
        if message_id is None:
            message_id = (await interaction.original_response()).id
        # After the acknowledgement: a server's settings not cached yet must not hold up Discord's 3 seconds.
        return self._reply_to(interaction, message_id=message_id, locale=await self.public_locale(interaction))

    async def public_locale(self, interaction: discord.Interaction) -> str:
        """The language of what everyone in the channel reads: the server's choice (`/fluxadmin language`), else
        its language in Discord, else (a DM) the member's."""
        forced = None
        if interaction.guild_id is not None:
            forced = (await self.policies.guild_settings(interaction.guild_id)).locale
        return channel_locale(interaction, forced)

    @staticmethod
    def _reply_to(interaction: discord.Interaction, *, message_id: int | None, locale: str | None) -> Reply:
        return Reply(
            user_id=interaction.user.id,
            guild_id=interaction.guild_id,
            channel_id=interaction.channel_id,
            application_id=interaction.application_id,
            interaction_token=interaction.token,
            message_id=message_id,
            upload_limit=interaction.filesize_limit,
            locale=locale,
            member_locale=member_locale(interaction),
        )

    async def run_member_job(
        self,
        interaction: discord.Interaction,
        action: Action,
        typed: Typed,
        build: Callable[[Policy, Chosen], JobRequest],
    ) -> None:
        """`run_job` for /imagine and /edit: the options left out take the style's, then the member's defaults
        (/settings), then the server's (`defaults.choose`). A style or default not used here is told to the member
        in a private note once the job's reply shows its card."""
        defaults = await self.store.members.defaults(interaction.user.id)
        notes: list[Message] = []

        def chosen(policy: Policy) -> JobRequest:
            choice = choose(action, typed, defaults, policy, self.settings.provider_info)
            notes.extend(choice.notes)
            return build(policy, choice)

        message_id = await self.run_job(interaction, chosen)
        if notes and message_id is not None:
            task = asyncio.create_task(
                tell_after_card(interaction, message_id, notes_message(notes, member_locale(interaction)))
            )
            self._notes.add(task)
            task.add_done_callback(self._notes.discard)

    async def run_job(self, interaction: discord.Interaction, build: Callable[[Policy], JobRequest]) -> int | None:
        """Start the request `build` makes under this member's policy here, as a job whose reply is this interaction's
        response, within the limits; the reply's message id (None when the bot is stopping).

        Raises Refused (place, role, model, member limits) or InvalidRequest before anything is answered; the one
        error handler of commands and components answers them privately.
        """
        if self.closing:  # buttons and prompts do not pass the command tree's check
            await answer_privately(interaction, text(member_locale(interaction), RESTARTING))
            return None
        policy = await self.policies.policy(interaction)
        await self.moderation.check_paused(interaction)
        request = policy.apply_safety(build(policy), self.settings.provider_info)
        policy.check_model(request.model)
        try:
            policy.check_prompt(request.prompt)  # before anything is queued or sent: a refusal costs nothing
        except PromptBlocked as blocked:
            raise await self.moderation.refused(interaction, request.prompt, blocked) from None
        locale = await self.public_locale(interaction)
        job = await self.jobs.enqueue(
            request, self._reply_to(interaction, message_id=None, locale=locale), policy.limits
        )
        try:
            reply = await self.reply_for(interaction)
        except Exception:
            # No reply to show it on: the job must not wait in line (and count against the member) forever.
            await self.jobs.abandon(job)  # its reason: the command could not be acknowledged in time
            raise
        assert reply.message_id is not None
        self.moderation.budgets.job_admitted(policy.limits.budget)  # in the background: the 80 % / 100 % notices
        await self.jobs.attach_reply(job, reply.message_id)
        return reply.message_id

    async def _spoilers(self, job: Job) -> bool:
        """Whether the job's result is shown as spoilers, by its server's choice and its channel."""
        if job.reply.guild_id is None:
            return False
        mode = (await self.policies.guild_settings(job.reply.guild_id)).spoilers
        channel = self.get_channel(job.reply.channel_id) if job.reply.channel_id is not None else None
        # A channel this process does not know (another shard's) counts as not age-restricted: the safe side.
        age_restricted = bool(channel is not None and getattr(channel, "is_nsfw", lambda: False)())
        return shows_spoilers(mode, age_restricted=age_restricted)

    async def health(self) -> dict[str, bool]:
        """The checks /healthz reports: every shard of this process connected, database writable, tracker alive."""
        try:
            await self.store.meta.set("health_checked_at", str(time.time()))
            database = True
        except Exception:
            log.exception("health check: the database is not writable")
            database = False
        # Connected is enough: discord.py answers interactions before on_ready (which waits for guild data).
        shards = self.shard_states()
        gateway = bool(shards) and all(shard.connected for shard in shards)
        # A job's state that waits for the database (after the provider took the job) also makes it unhealthy.
        database = database and self.jobs.writes_healthy()
        return {"gateway": gateway, "database": database, "tracker": self.jobs.tracker_alive()}

    def shard_states(self) -> list[ShardState]:
        """Each shard this process runs: connected or not, and its latency (for /healthz and /metrics)."""
        return shard_states(self)

    def database_round_trips(self) -> int:
        """Statements and queries this process sent to the database so far (for /metrics)."""
        return self.store.round_trips

    async def jobs_by_state(self) -> dict[str, int]:
        """How many jobs are in each state (for /metrics)."""
        return await self.store.reports.count_undelivered()

    async def on_ready(self) -> None:
        """Log who we are once connected."""
        assert self.user is not None
        shards = ", ".join(str(shard.id) for shard in self.shard_states())
        log.info(
            "connected as %s (id %s) in %d server(s), on shard(s) %s of %s, as instance %s",
            self.user, self.user.id, len(self.guilds), shards, self.shard_count, self.settings.instance_name,
        )  # fmt: skip

    async def on_shard_ready(self, shard_id: int) -> None:
        """Log each shard once its servers are loaded (with several processes, each logs only its own)."""
        servers = sum(1 for guild in self.guilds if guild.shard_id == shard_id)
        log.info("shard %d of %s ready with %d server(s)", shard_id, self.shard_count, servers)

    async def close(self) -> None:
        """Stop taking commands, stop tracking, let submits under way finish, then disconnect."""
        if self.closing:
            return
        self.closing = True
        if self.started:
            log.info("shutting down: new commands are refused; waiting for submits under way")
        await self.servers.stop()
        for note in list(self._notes):
            note.cancel()
        await self.jobs.stop_tracker()
        # As long as one submit may take: one cut off would leave a job the provider may bill but the bot lost.
        await self.jobs.drain(within=SUBMIT_DRAIN_SECONDS)
        await super().close()


async def commands_digest(tree: app_commands.CommandTree[discord.Client]) -> str:
    """A hash of what `tree.sync()` sends: with the translator's localizations, so a changed translation (not just
    a changed command) is synced again."""
    translator = tree.translator
    payload = [
        await command.get_translated_payload(tree, translator) if translator else command.to_dict(tree)
        for command in tree.get_commands()
    ]
    return hashlib.sha256(json.dumps(payload, sort_keys=True).encode()).hexdigest()


class FluxCommandTree(app_commands.CommandTree[discord.Client]):
    """The command tree, with the one error handler every app command shares."""

    async def interaction_check(self, interaction: discord.Interaction) -> bool:
        """Refuse new commands while the bot shuts down; they would only be cut off."""
        if getattr(interaction.client, "closing", False):
            if interaction.type is not discord.InteractionType.autocomplete:  # those cannot take a message
                await answer_privately(interaction, text(member_locale(interaction), RESTARTING))
            return False
        return True

    async def on_error(self, interaction: discord.Interaction, error: app_commands.AppCommandError) -> None:
        """A short message for the member, a traceback in the log."""
        await report_command_error(interaction, error)


async def report_command_error(interaction: discord.Interaction, error: app_commands.AppCommandError) -> None:
    """Tell the member the command failed and log why."""
    command = interaction.command.qualified_name if interaction.command else "?"
    if isinstance(error, app_commands.CheckFailure):
        log.info("/%s refused by a check for %s", command, interaction.user.id)
        return  # the check answered the member itself
    original = error.original if isinstance(error, app_commands.CommandInvokeError) else error
    locale = member_locale(interaction)  # only the member sees the answer: their language
    if isinstance(error, app_commands.TransformerError):
        shown = str(error.value)[:50]
        # Translators: {value} is what the member typed for one of the command's options.
        message = text(
            locale, "`{value}` is not a valid value for that option. Please check it and try again.", value=shown
        )
        log.info("/%s: bad option value %r", command, error.value)
    elif isinstance(original, MemberError):
        # What the member asked for cannot be done (here, now): the message says why.
        message = original.said(locale)
        log.info("/%s refused for %s: %s", command, interaction.user.id, original)
    else:
        log.error("/%s failed", command, exc_info=original)
        message = text(locale, GENERIC_ERROR)
    await answer_privately(interaction, message)


def attachment_info(attachment: discord.Attachment) -> AttachmentInfo:
    """What the job rules need to know about a Discord attachment."""
    return AttachmentInfo(
        url=attachment.url,
        filename=attachment.filename,
        content_type=attachment.content_type,
        size=attachment.size,
        width=attachment.width,
        height=attachment.height,
    )


async def tell_after_card(
    interaction: discord.Interaction, message_id: int, note: str, *, waits: tuple[float, ...] = NOTE_WAITS
) -> None:
    """Send `note` privately once the reply `message_id` is no longer "thinking": Discord turns the first followup
    of a deferred reply into that reply itself, public whatever its flags say."""
    for pause in (0.0, *waits):
        await asyncio.sleep(pause)
        try:
            reply = await interaction.followup.fetch_message(message_id)
            if reply.flags.loading:
                continue
            await interaction.followup.send(note, ephemeral=True)
        except discord.HTTPException as exc:
            log.warning("could not send member %s their note: %s %s", interaction.user.id, exc.status, exc.text)
        return
    log.warning("reply %s still showed no card after %.0f s; its note was not sent", message_id, sum(waits))


async def answer_privately(interaction: discord.Interaction, message: str) -> None:
    """Send the member an ephemeral message, as a response or, once the interaction is answered, a followup."""
    try:
        if interaction.response.is_done():
            await interaction.followup.send(message, ephemeral=True)
        else:
            await interaction.response.send_message(message, ephemeral=True)
    except discord.HTTPException:
        log.warning("could not tell member %s: %s", interaction.user.id, message)
