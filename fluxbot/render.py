"""What a job's reply looks like: the queued card, the result gallery and the failure card."""

from __future__ import annotations

import logging
from collections.abc import Sequence

import discord

from fluxbot import catalog
from fluxbot.jobs.durations import Estimate
from fluxbot.jobs.lifecycle import Job, JobStatus
from fluxbot.jobs.requests import MAX_COUNT
from fluxbot.providers.base import Image

log = logging.getLogger(__name__)

QUEUED_COLOUR = discord.Colour.blurple()
DONE_COLOUR = discord.Colour.green()
FAILED_COLOUR = discord.Colour.red()
TIMED_OUT_COLOUR = discord.Colour.orange()


def elapsed_text(seconds: float) -> str:
    """`42s`, `3m 05s` or `1h 02m`."""
    seconds = max(0, int(seconds))
    if seconds < 60:
        return f"{seconds}s"
    minutes, secs = divmod(seconds, 60)
    if minutes < 60:
        return f"{minutes}m {secs:02d}s"
    hours, minutes = divmod(minutes, 60)
    return f"{hours}h {minutes:02d}m"


def clip(text: str, limit: int = 1024) -> str:
    """`text` cut to `limit` characters (Discord's embed field limit by default)."""
    return text if len(text) <= limit else text[: limit - 1] + "…"


def shown_images(job: Job) -> tuple[Image, ...]:
    """The images a result shows: no more than the job asked for (a provider may send more), and at most four."""
    return job.images[: max(1, min(job.count, MAX_COUNT))]


def flagged(job: Job) -> bool:
    """True when the provider flagged an image the result shows (fal's has_nsfw_concepts): it is shown as a
    spoiler, whatever the server's setting."""
    return any(image.flagged for image in shown_images(job))


def _model_label(name: str) -> str:
    return f"{catalog.label_of(name)} (`{name}`)"


def _quote(prompt: str, limit: int = 1000) -> str:
    return "\n".join("> " + line for line in clip(prompt, limit).splitlines() or [""])


def _base(job: Job, title: str, colour: discord.Colour) -> discord.Embed:
    verb = "Edit" if job.action == "edit" else "Imagine"
    embed = discord.Embed(
        title=title, colour=colour, description=f"**{verb}** for <@{job.reply.user_id}>\n{_quote(job.prompt)}"
    )
    embed.add_field(name="Model", value=_model_label(job.model), inline=True)
    embed.add_field(name="Size", value=f"`{job.size}`", inline=True)
    if job.action == "generate":
        embed.add_field(name="Images", value=str(job.count), inline=True)
    return embed


def queued_card(
    job: Job,
    *,
    now: float,
    position: int | None = None,
    estimate: Estimate | None = None,
    provider_place: int | None = None,
) -> list[discord.Embed]:
    """The card a job's reply shows while it waits: in line (with its position) or at the provider (with how long
    this model's jobs usually take, and its place in the provider's own queue: `provider_place`, 0 for next)."""
    title = "🎨 Running — Flux is working on it" if job.status is JobStatus.SUBMITTED else "⏳ Queued"
    embed = _base(job, title, QUEUED_COLOUR)
    if position is not None:
        ahead = "next to start" if position == 1 else f"{position - 1} job(s) ahead"
        embed.add_field(name="Place in line", value=f"#{position} ({ahead})", inline=True)
    if provider_place is not None and job.status is JobStatus.SUBMITTED:
        embed.add_field(
            name="At the provider", value=f"place {provider_place + 1} in the provider's queue", inline=True
        )
    embed.add_field(name="Task", value=task_text(job) if job.task_id else "sending…", inline=True)
    embed.add_field(
        name="Elapsed",
        value=f"{elapsed_text(now - job.created_at)} (started <t:{int(job.created_at)}:R>)",
        inline=True,
    )
    if estimate is not None and job.submitted_at is not None:
        embed.add_field(name="Expected", value=expected_text(now - job.submitted_at, estimate), inline=True)
    embed.set_footer(text=f"Job #{job.id} · this message turns into the result when it is ready")
    return [embed]


def expected_text(running: float, estimate: Estimate) -> str:
    """What a running card promises: when jobs of this model are usually ready, or that this one takes longer."""
    if running > estimate.late:
        return "Taking longer than usual; still waiting for the provider"
    return f"Usually ready in about {elapsed_text(max(estimate.typical, 1.0))}"


def result_card(
    job: Job,
    *,
    attachments: Sequence[str] = (),
    copies: Sequence[str] = (),
    note: str | None = None,
    spoiler: bool = False,
) -> list[discord.Embed]:
    """The finished job: its images as one gallery (embeds sharing a URL) with prompt, model, size, seed.

    With `attachments` (uploaded file names, one per image) the embeds show the uploaded copies, which outlive
    the provider's links; with `copies` (URLs of copies already on Discord) they show those; the originals are
    linked too. With `spoiler` no embed shows an image: the uploads are spoilers, and the links are behind
    spoiler marks.
    """
    images = shown_images(job)
    if not images:
        return failure_card(job)
    shown = [f"attachment://{name}" for name in attachments] if attachments else list(copies)
    shown = shown or [image.url for image in images]
    gallery_url = images[0].url
    first = _base(job, "✅ Done", DONE_COLOUR)
    first.url = gallery_url
    seeds = [str(i.seed) for i in images if i.seed is not None]
    if seeds:
        first.add_field(name="Seed" if len(seeds) == 1 else "Seeds", value=clip(", ".join(seeds)), inline=True)
    took = elapsed_text((job.finished_at or job.created_at) - job.created_at)
    timing = f"{took} in all"
    if job.inference_seconds is not None:
        timing += f", {job.inference_seconds:.1f}s of inference"
    first.add_field(name="Time", value=timing, inline=True)
    first.add_field(name="Task", value=task_text(job), inline=True)
    links = " · ".join(f"[{n}]({image.url})" for n, image in enumerate(images, start=1))
    first.add_field(name="Originals", value=clip(f"||{links}||" if spoiler else links), inline=False)
    if spoiler:
        where = "as blurred images: click one to see it" if attachments else "behind the links above"
        why = "Shown as spoilers on this server"
        if flagged(job):
            why = "The image provider flagged this result as possibly sensitive, so it is shown as spoilers"
        first.add_field(name="Images", value=f"{why}: {where}.", inline=False)
    notes = [text for text in (job.error_message, note) if text]  # a succeeded job's message: images that failed
    if notes:
        first.add_field(name="Note", value=clip("\n".join(notes)), inline=False)
    first.set_footer(text=f"Job #{job.id}")
    if spoiler:
        return [first]
    first.set_image(url=shown[0])
    embeds = [first]
    for url in shown[1:]:
        extra = discord.Embed(url=gallery_url, colour=DONE_COLOUR)
        extra.set_image(url=url)
        embeds.append(extra)
    return embeds


def failure_card(job: Job) -> list[discord.Embed]:
    """The reply of a job that failed or timed out: what happened and what to do."""
    timed_out = job.status is JobStatus.TIMED_OUT
    embed = _base(job, "⌛ Timed out" if timed_out else "❌ Failed", TIMED_OUT_COLOUR if timed_out else FAILED_COLOUR)
    embed.add_field(name="What happened", value=clip(job.error_message or "The job failed."), inline=False)
    if job.task_id:
        embed.add_field(name="Task", value=task_text(job), inline=True)
    embed.set_footer(text=f"Job #{job.id}")
    return [embed]


def task_text(job: Job) -> str:
    """The job's task for a card: its (first) task id, and how many more tasks it holds."""
    more = len(job.tasks) - 1
    return f"`{clip(job.task_id or '?', 100)}`" + (f" and {more} more" if more > 0 else "")


def tasks_text(job: Job) -> str:
    """Every task of the job, for Details: its id (or that its submit failed) and how it ended."""
    if len(job.tasks) <= 1:
        return f"`{clip(job.task_id or 'none', 100)}` ({job.provider})"
    lines = [f"{t.number}. `{clip(t.task_id, 80)}` {t.state.value}" if t.task_id else f"{t.number}. not started"
             for t in job.tasks]  # fmt: skip
    return clip("\n".join(lines) + f"\n({job.provider})")


def final_card(
    job: Job,
    *,
    attachments: Sequence[str] = (),
    copies: Sequence[str] = (),
    note: str | None = None,
    spoiler: bool = False,
) -> list[discord.Embed]:
    """The card for a finished job, whatever its outcome."""
    if job.status is JobStatus.SUCCEEDED:
        return result_card(job, attachments=attachments, copies=copies, note=note, spoiler=spoiler)
    return failure_card(job)


_STATUS_WORDS = {
    JobStatus.QUEUED: "⏳ queued",
    JobStatus.PENDING: "📤 sending",
    JobStatus.SUBMITTED: "🎨 running",
    JobStatus.SUCCEEDED: "✅ done",
    JobStatus.FAILED: "❌ failed",
    JobStatus.TIMED_OUT: "⌛ timed out",
}


def jump_url(job: Job) -> str | None:
    """A link to the job's reply, or None when it is not known."""
    if job.reply.channel_id is None or job.reply.message_id is None:
        return None
    return f"https://discord.com/channels/{job.reply.guild_id or '@me'}/{job.reply.channel_id}/{job.reply.message_id}"


def details_card(job: Job) -> discord.Embed:
    """Everything about one job, for the Details button."""
    embed = discord.Embed(title=f"Job #{job.id}", colour=QUEUED_COLOUR, description=clip(job.prompt, 4000))
    embed.add_field(name="Status", value=_STATUS_WORDS[job.status], inline=True)
    embed.add_field(name="Asked by", value=f"<@{job.reply.user_id}>", inline=True)
    embed.add_field(name="Model", value=_model_label(job.model), inline=True)
    embed.add_field(name="Size", value=f"`{job.size}`", inline=True)
    if job.style:
        embed.add_field(name="Style", value=f"`{clip(job.style, 100)}` (its text is part of the prompt)", inline=True)
    embed.add_field(name="Images", value=str(len(shown_images(job)) or job.count), inline=True)
    seeds = ", ".join(str(i.seed) for i in shown_images(job) if i.seed is not None)
    embed.add_field(name="Seeds", value=clip(seeds) if seeds else "not reported", inline=True)
    embed.add_field(name="Tasks" if len(job.tasks) > 1 else "Task", value=tasks_text(job), inline=False)
    timing = f"asked <t:{int(job.created_at)}:f>"
    if job.finished_at is not None:
        timing += f", finished after {elapsed_text(job.finished_at - job.created_at)}"
    if job.inference_seconds is not None:
        timing += f" ({job.inference_seconds:.1f}s of inference)"
    embed.add_field(name="Timings", value=timing, inline=False)
    if (cost := cost_text(job)) is not None:
        embed.add_field(name="Cost", value=cost, inline=True)
    if job.error_message:
        embed.add_field(name="What happened", value=clip(job.error_message), inline=False)
    if job.image_url:
        embed.add_field(name="Edited image", value=clip(f"[source]({job.image_url})"), inline=False)
    return embed


def cost_text(job: Job) -> str | None:
    """What the job cost as its provider reported it (the sum of its tasks', in the provider's own unit), or None
    when the provider reported nothing."""
    costs = [task.cost for task in job.tasks if task.cost is not None]
    if not costs:
        return None
    provider = catalog.PROVIDERS[job.provider].label if job.provider in catalog.PROVIDERS else job.provider
    started = [task for task in job.tasks if task.task_id is not None]
    missing = (
        f"; {len(started) - len(costs)} of its {len(started)} tasks reported none" if len(costs) < len(started) else ""
    )
    return f"{round(sum(costs), 4):g} (as {provider} counts it{missing})"


def jobs_page(jobs: Sequence[Job], *, total: int, page: int, pages: int, now: float) -> discord.Embed:
    """One page of /jobs: status, prompt, model, age and a link to each reply."""
    embed = discord.Embed(title="Your recent jobs", colour=QUEUED_COLOUR)
    if not jobs:
        embed.description = "You have no jobs yet. Try `/imagine`."
        return embed
    lines = []
    for job in jobs:
        prompt = clip(job.prompt.replace("\n", " "), 60)
        link = jump_url(job)
        where = " · deleted" if job.deleted_at else (f" · [reply]({link})" if link else "")
        age = elapsed_text(now - job.created_at)
        lines.append(f"**#{job.id}** {_STATUS_WORDS[job.status]} · `{job.model}` · {age} ago{where}\n> {prompt}")
    embed.description = clip("\n".join(lines), 4000)
    embed.set_footer(text=f"Page {page + 1} of {pages} · {total} job(s) · /job <number> shows a result again")
    return embed
