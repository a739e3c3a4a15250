"""What members do with results: the buttons, "Edit with Flux", /jobs and /job. Replies only; rules live in jobs/.

Every answer here is ephemeral, so it is in the member's locale (`i18n.member_locale`), modals too; a result shown
again by /job is public: it is in the language of the channel it is shown in (`bot.reply_for`'s `Reply.locale`).
"""

from __future__ import annotations

import contextlib
import logging
import math
import time
from collections.abc import AsyncIterator
from typing import Any

import discord
from discord import app_commands
from discord.ext import commands

from fluxbot import render_details
from fluxbot.bot import GENERIC_ERROR, FluxBot, answer_privately, attachment_info
from fluxbot.buttons import JobAction, bind_handler, jobs_page_view
from fluxbot.errors import MemberError
from fluxbot.i18n import N_, LocaleValue, member_locale, number, text
from fluxbot.jobs.lifecycle import EditImage, Job
from fluxbot.jobs.requests import (
    PROMPT_MAX_CHARS,
    check_reroll,
    edit_request,
    may_delete,
    message_images,
    request_of,
    result_images,
    url_expired,
)
from fluxbot.limits import Refused
from fluxbot.quotas import cooldown_refusal

log = logging.getLogger(__name__)

PAGE_SIZE = 10
#: Edit prompts: of a result's images (resolved from the job and its message at submit), or of a message's.
EDIT_JOB_PREFIX = "fluxbot:edit-job:"
EDIT_SOURCE_PREFIX = "fluxbot:edit-source:"
# Translators: "Apps → Edit with Flux" is where Discord shows the bot's message menu (use the name Discord shows)
PROMPT_GONE = N_(
    "This edit prompt is too old (prompts are kept for a day) or was opened by someone else. "
    "Right-click the message again and pick Apps → Edit with Flux."
)
# Translators: the answer to a button of a job the bot no longer knows
GONE = N_(
    "This job is no longer in the bot's records, so this button cannot do anything. Run `/imagine` to make a new one."
)
# Translators: **Edit with Flux** is the name of the bot's message menu, as Discord shows it
EXPIRED = N_(
    "The image this would edit has expired on Discord, so it cannot be sent to Flux any more. "
    "Post the image again and use **Edit with Flux** on it."
)
# Translators: `/job` and `/jobs` are commands, as typed
NOT_YOURS = N_("Only the member who asked for this job can use `/job` on it. Your own jobs are listed by `/jobs`.")


class EditPrompt(discord.ui.Modal):
    """Asks what to change (and, with several images, which one), in the member's `locale`; its submit is handled
    in `on_interaction`."""

    def __init__(self, custom_id: str, images: int, *, locale: LocaleValue) -> None:
        # Translators: the title of the edit prompt (a form only the member sees)
        super().__init__(title=text(locale, "Edit with Flux"), custom_id=custom_id, timeout=None)
        self.add_item(
            discord.ui.TextInput(
                # Translators: the edit prompt's text box (at most 45 characters)
                label=text(locale, "What should change?"),
                custom_id="prompt",
                style=discord.TextStyle.paragraph,
                # Translators: an example in the edit prompt's text box (at most 100 characters)
                placeholder=text(locale, "e.g. make the cat blue, keep everything else"),
                max_length=PROMPT_MAX_CHARS,
            )
        )
        if images > 1:
            # Translators: the edit prompt's choice of image ({images}: how many there are; at most 45 characters)
            which = text(locale, "Which image? (1-{images})", images=number(locale, images))
            self.add_item(discord.ui.TextInput(label=which, custom_id="image", default="1", min_length=1, max_length=1))
        self.stop()  # the submit is handled from the raw interaction, also after a restart


class Results(commands.Cog):
    """Buttons under results, the message context menu and the job list."""

    def __init__(self, bot: FluxBot) -> None:
        self.bot = bot
        self.edit_menu = app_commands.ContextMenu(name="Edit with Flux", callback=self.edit_with_flux)
        #: The persistent buttons, bound to this cog: their clicks come here, not to a cog looked up by name.
        self.buttons = bind_handler(self)

    async def cog_load(self) -> None:
        """Register the persistent buttons and the context menu."""
        self.bot.add_dynamic_items(*self.buttons)
        self.bot.tree.add_command(self.edit_menu)

    async def cog_unload(self) -> None:
        """Undo `cog_load`."""
        self.bot.remove_dynamic_items(*self.buttons)
        self.bot.tree.remove_command(self.edit_menu.name, type=self.edit_menu.type)

    # -- result buttons ------------------------------------------------------------------------------

    async def on_job_button(self, interaction: discord.Interaction, action: JobAction, job_id: int) -> None:
        """A result button was clicked."""
        async with _member_sees_failures(interaction, f"{action} button of job {job_id}"):
            await self._job_button(interaction, action, job_id)

    async def _job_button(self, interaction: discord.Interaction, action: JobAction, job_id: int) -> None:
        locale = member_locale(interaction)
        job = await self.bot.store.get_job(job_id)
        if job is None:
            await interaction.response.send_message(text(locale, GONE), ephemeral=True)
            return
        if action is JobAction.REROLL:
            if job.image_url and url_expired(job.image_url, now=time.time()):
                await interaction.response.send_message(text(locale, EXPIRED), ephemeral=True)
                return
            check_reroll(self.bot.settings.provider_info, job)
            await self.bot.run_job(interaction, lambda _: request_of(job))
        elif action is JobAction.DETAILS:
            details = render_details.details_card(job, locale=locale)
            await interaction.response.send_message(embed=details, ephemeral=True)
        elif action is JobAction.EDIT:
            images = result_images(job, _uploaded(interaction.message))
            if not images:
                # Translators: the answer to the Edit button of a result with no image left
                none = text(locale, "This result has no image to edit.")
                await interaction.response.send_message(none, ephemeral=True)
                return
            prompt = EditPrompt(f"{EDIT_JOB_PREFIX}{job.id}", len(images), locale=locale)
            await interaction.response.send_modal(prompt)
        else:
            await self._delete(interaction, job)

    async def _delete(self, interaction: discord.Interaction, job: Job) -> None:
        manage = interaction.permissions.manage_messages
        if not may_delete(job, interaction.user.id, manage_messages=manage):
            # Translators: {user} mentions the member who asked for the job
            refusal = text(
                member_locale(interaction),
                "Only <@{user}>, who asked for this, or someone who can manage messages may delete it.",
                user=job.reply.user_id,
            )
            await interaction.response.send_message(
                refusal,
                ephemeral=True,
                allowed_mentions=discord.AllowedMentions.none(),
            )
            return
        await interaction.response.defer()
        await interaction.delete_original_response()
        if interaction.message is not None and interaction.message.id == job.reply.message_id:
            await self.bot.store.mark_reply_deleted(job.id)  # not for a copy shown again by /job
        log.info("job %d: result deleted by %s", job.id, interaction.user.id)

    # -- editing -------------------------------------------------------------------------------------

    async def edit_with_flux(self, interaction: discord.Interaction, message: discord.Message) -> None:
        """Message context menu: edit an image of any message."""
        attachments = [attachment_info(a) for a in message.attachments]
        images = message_images(attachments, _embedded_images(message), now=time.time())
        locale = member_locale(interaction)
        if not images:
            # Translators: **Edit with Flux** is the name of the bot's message menu, as Discord shows it
            none = text(
                locale,
                "That message has no image I can edit. Use **Edit with Flux** on a message with a PNG, JPEG or "
                "WebP image, attached or embedded.",
            )
            await interaction.response.send_message(none, ephemeral=True)
            return
        source_id = await self.bot.store.edit_sources.add(interaction.user.id, images)
        prompt = EditPrompt(f"{EDIT_SOURCE_PREFIX}{source_id}", len(images), locale=locale)
        await interaction.response.send_modal(prompt)

    @commands.Cog.listener()
    async def on_interaction(self, interaction: discord.Interaction) -> None:
        """Modal submits of the edit prompt, by custom id, so a prompt opened before a restart still works."""
        if interaction.type is not discord.InteractionType.modal_submit:
            return
        data: Any = interaction.data or {}
        custom_id = str(data.get("custom_id", ""))
        prefix, _, number = custom_id.rpartition(":")
        if f"{prefix}:" not in (EDIT_JOB_PREFIX, EDIT_SOURCE_PREFIX) or not number.isdigit():
            return
        async with _member_sees_failures(interaction, custom_id):
            if f"{prefix}:" == EDIT_JOB_PREFIX:
                images = await self._result_images(int(number), interaction.message)
                missing = GONE
            else:
                source = await self.bot.store.edit_sources.get(int(number))
                images = source[1] if source and source[0] == interaction.user.id else None
                missing = PROMPT_GONE
            if images is None:
                await interaction.response.send_message(text(member_locale(interaction), missing), ephemeral=True)
                return
            await self._edit_submitted(interaction, images, _modal_values(data))

    async def _result_images(self, job_id: int, message: discord.Message | None) -> list[EditImage] | None:
        job = await self.bot.store.get_job(job_id)
        return result_images(job, _uploaded(message)) if job is not None else None

    async def _edit_submitted(
        self, interaction: discord.Interaction, images: list[EditImage], values: dict[str, str]
    ) -> None:
        locale = member_locale(interaction)
        choice = values.get("image", "1").strip()
        if not choice.isdigit() or not 1 <= int(choice) <= len(images):
            # Translators: {choice} is what the member typed; {images} how many images there are
            wrong = text(
                locale,
                "`{choice}` is not an image number. Pick one from 1 to {images} and try again.",
                choice=choice[:10],
                images=number(locale, len(images)),
            )
            await interaction.response.send_message(wrong, ephemeral=True)
            return
        image = images[int(choice) - 1]
        if url_expired(image.url, now=time.time()):
            await interaction.response.send_message(text(locale, EXPIRED), ephemeral=True)
            return
        prompt = values.get("prompt", "")
        await self.bot.run_job(
            interaction, lambda policy: edit_request(self.bot.settings.provider_info, prompt, image, policy.edit_model)
        )

    # -- /jobs and /job --------------------------------------------------------------------------------

    @app_commands.command(name="jobs", description="Your recent Flux jobs, with links to their results")
    async def jobs(self, interaction: discord.Interaction) -> None:
        """List the member's jobs, newest first."""
        embed, view = await self._jobs_page(interaction.user.id, 0, member_locale(interaction))
        if view is None:
            await interaction.response.send_message(embed=embed, ephemeral=True)
        else:
            await interaction.response.send_message(embed=embed, view=view, ephemeral=True)

    async def on_jobs_page(self, interaction: discord.Interaction, page: int) -> None:
        """Another page of /jobs."""
        async with _member_sees_failures(interaction, f"/jobs page {page}"):
            embed, view = await self._jobs_page(interaction.user.id, page, member_locale(interaction))
            await interaction.response.edit_message(embed=embed, view=view)

    async def _jobs_page(
        self, user_id: int, page: int, locale: LocaleValue
    ) -> tuple[discord.Embed, discord.ui.View | None]:
        jobs, total = await self.bot.store.recent_jobs(user_id, limit=PAGE_SIZE, offset=page * PAGE_SIZE)
        pages = max(1, math.ceil(total / PAGE_SIZE))
        now = discord.utils.utcnow().timestamp()
        embed = render_details.jobs_page(jobs, total=total, page=page, pages=pages, now=now, locale=locale)
        return embed, jobs_page_view(page, pages, locale=locale)

    @app_commands.command(name="job", description="Show one of your finished jobs again, with its buttons")
    @app_commands.describe(number="The job number, as shown in /jobs")
    async def job(self, interaction: discord.Interaction, number: app_commands.Range[int, 1]) -> None:
        """Re-post a finished job's result (like Midjourney's /show)."""
        policy = await self.bot.policies.policy(interaction)  # channels and role apply to re-posts too (Refused)
        now = time.time()
        # Showing a result again reads its first reply, and may copy its images again: a command for the cooldown.
        waiting = cooldown_refusal(await self.bot.store.usage(interaction.user.id, now=now), policy.limits, now=now)
        if waiting is not None:
            raise Refused(waiting)
        locale = member_locale(interaction)
        job = await self.bot.store.get_job(number)
        if job is None or job.reply.user_id != interaction.user.id:
            # Translators: the answer to /job with a number no job has
            missing = text(locale, NOT_YOURS) if job else text(locale, "There is no job #{id}.", id=number)
            await interaction.response.send_message(missing, ephemeral=True)
            return
        if not job.status.finished:
            await interaction.response.send_message(_still_running(job, locale), ephemeral=True)
            return
        await self.bot.store.record_show_again(interaction.user.id, now=now)
        # Shown again in public: in the language of this channel (the new reply's), like everything else here.
        reply = await self.bot.reply_for(interaction)
        if not await self.bot.jobs.show_again(job, reply):
            with contextlib.suppress(discord.HTTPException):
                await interaction.edit_original_response(content=_not_shown_again(job, reply.locale))


def _still_running(job: Job, locale: LocaleValue) -> str:
    link = render_details.jump_url(job)
    if link:
        # Translators: {link} is the address of the job's reply
        return text(
            locale, "Job #{id} is still running; its reply will show the result ({link}).", id=job.id, link=link
        )
    # Translators: the answer to /job for a job that is not finished
    return text(locale, "Job #{id} is still running; its reply will show the result.", id=job.id)


def _not_shown_again(job: Job, locale: LocaleValue) -> str:
    link = render_details.jump_url(job)
    if link:
        # Translators: {link} is the address of the job's first reply
        return text(
            locale,
            "I couldn't show job #{id} again just now. Please try again in a minute; its first reply is here: {link}",
            id=job.id,
            link=link,
        )
    # Translators: the public reply of /job when the result could not be shown again
    return text(locale, "I couldn't show job #{id} again just now. Please try again in a minute.", id=job.id)


def _embedded_images(message: discord.Message) -> list[tuple[str, int | None, int | None]]:
    """Embed images as Discord serves them (proxy URLs: made by Discord, not text a member typed)."""
    found = []
    for embed in message.embeds:
        picture = embed.image if embed.image.proxy_url else embed.thumbnail
        if picture.proxy_url:
            found.append((picture.proxy_url, picture.width, picture.height))
    return found


@contextlib.asynccontextmanager
async def _member_sees_failures(interaction: discord.Interaction, what: str) -> AsyncIterator[None]:
    """Tell the member why a click or prompt was refused, or log an unexpected failure and say so, instead of
    Discord's "interaction failed"."""
    try:
        yield
    except MemberError as exc:
        await answer_privately(interaction, exc.said(member_locale(interaction)))
    except Exception:
        log.exception("%s failed", what)
        await answer_privately(interaction, text(member_locale(interaction), GENERIC_ERROR))


def _uploaded(message: discord.Message | None) -> dict[str, str]:
    return {a.filename: a.url for a in message.attachments} if message is not None else {}


def _modal_values(data: Any) -> dict[str, str]:
    """custom_id → value of every input in a modal submit, whatever the nesting (action rows or labels)."""
    found: dict[str, str] = {}
    stack = [data]
    while stack:
        node = stack.pop()
        if isinstance(node, dict):
            if isinstance(node.get("custom_id"), str) and isinstance(node.get("value"), str):
                found[node["custom_id"]] = node["value"]
            stack.extend(v for k, v in node.items() if k in ("components", "component"))
        elif isinstance(node, list):
            stack.extend(node)
    return found


async def setup(bot: commands.Bot) -> None:
    """Load the cog (discord.py extension entry point)."""
    assert isinstance(bot, FluxBot)
    await bot.add_cog(Results(bot))
