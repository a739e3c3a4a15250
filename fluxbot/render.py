"""What a job's reply looks like: the queued card, the result gallery and the failure card.

Everyone in the channel reads a job's reply, so it is said in the job's public locale (`job.reply.locale`: the
server's language when the job was asked for; None is English), and so are the notes and the failure message on
it (`errors.said`: the job core stores them as templates with values). A prompt is only ever shown as written.
What only the member sees (Details, /jobs) is in `render_details`.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence

import discord
from babel import numbers

from fluxbot import catalog, errors
from fluxbot.i18n import N_, LocaleValue, babel_locale, discord_time, number, plural, text
from fluxbot.jobs.durations import Estimate
from fluxbot.jobs.lifecycle import Job, JobStatus
from fluxbot.jobs.requests import MAX_COUNT
from fluxbot.providers.base import Image

log = logging.getLogger(__name__)

QUEUED_COLOUR = discord.Colour.blurple()
DONE_COLOUR = discord.Colour.green()
FAILED_COLOUR = discord.Colour.red()
TIMED_OUT_COLOUR = discord.Colour.orange()

# Translators: the title of a job's card while it waits in line
QUEUED = N_("⏳ Queued")
# Translators: the title of a job's card while the image provider works on it
RUNNING = N_("🎨 Running — Flux is working on it")
# Translators: the title of a finished job's result
DONE = N_("✅ Done")
# Translators: the title of a failed job's card
FAILED = N_("❌ Failed")
# Translators: the title of the card of a job that did not finish in time
TIMED_OUT = N_("⌛ Timed out")

#: Why a result is shown as spoilers, and how, by (the provider flagged it, the images are uploaded files).
_SPOILERS = {
    # Translators: on a result with blurred images (Discord shows a spoiler image blurred until it is clicked)
    (False, True): N_("Shown as spoilers on this server: as blurred images: click one to see it."),
    # Translators: on a result whose images are links behind spoiler marks (the "Originals" field above)
    (False, False): N_("Shown as spoilers on this server: behind the links above."),
    # Translators: on a result with blurred images the image provider flagged
    (True, True): N_(
        "The image provider flagged this result as possibly sensitive, so it is shown as spoilers: "
        "as blurred images: click one to see it."
    ),
    # Translators: on a result whose images the provider flagged, behind spoiler marks in the links above
    (True, False): N_(
        "The image provider flagged this result as possibly sensitive, so it is shown as spoilers: "
        "behind the links above."
    ),
}


def elapsed_text(seconds: float, locale: LocaleValue) -> str:
    """`42s`, `3m 05s` or `1h 02m` (in English; each locale writes its own units)."""
    seconds = max(0, int(seconds))
    if seconds < 60:
        # Translators: a duration under a minute, e.g. "42s" (also the inference time, e.g. "4.2s")
        return text(locale, "{seconds}s", seconds=seconds)
    minutes, secs = divmod(seconds, 60)
    if minutes < 60:
        # Translators: a duration under an hour, e.g. "3m 05s" ({seconds} is always two digits)
        return text(locale, "{minutes}m {seconds}s", minutes=minutes, seconds=_two_digits(secs))
    hours, minutes = divmod(minutes, 60)
    # Translators: a duration of an hour or more, e.g. "1h 02m" ({minutes} is always two digits)
    return text(locale, "{hours}h {minutes}m", hours=number(locale, hours), minutes=_two_digits(minutes))


def _two_digits(value: int) -> str:
    return f"{value:02d}"


def decimal_text(locale: LocaleValue, shown: str) -> str:
    """A number already written the English way without grouping (`4.2`, `0.036`) with the locale's decimal sign;
    the English text stays exactly as it was given."""
    return shown.replace(".", numbers.get_decimal_symbol(babel_locale(locale)))


def inference_text(seconds: float, locale: LocaleValue) -> str:
    """How long the provider's model ran, to a tenth of a second: `4.2s`."""
    tenths = decimal_text(locale, f"{seconds:.1f}")
    return text(locale, "{seconds}s", seconds=tenths)


def clip(value: str, limit: int = 1024) -> str:
    """`value` cut to `limit` characters (Discord's embed field limit by default)."""
    # Not named `text`: extraction would take `text[...]` for a call of `i18n.text`.
    return value if len(value) <= limit else value[: limit - 1] + "…"


def shown_images(job: Job) -> tuple[Image, ...]:
    """The images a result shows: no more than the job asked for (a provider may send more), and at most four."""
    return job.images[: max(1, min(job.count, MAX_COUNT))]


def flagged(job: Job) -> bool:
    """True when the provider flagged an image the result shows (fal's has_nsfw_concepts): it is shown as a
    spoiler, whatever the server's setting."""
    return any(image.flagged for image in shown_images(job))


def model_label(name: str) -> str:
    """A model as a card names it: its label and its id."""
    return f"{catalog.label_of(name)} (`{name}`)"


def _quote(prompt: str, limit: int = 1000) -> str:
    return "\n".join("> " + line for line in clip(prompt, limit).splitlines() or [""])


def _base(job: Job, title: str, colour: discord.Colour) -> discord.Embed:
    locale = job.reply.locale
    user = job.reply.user_id
    if job.action == "edit":
        # Translators: the first line of a job's card, above its prompt ({user} mentions who asked)
        asked = text(locale, "**Edit** for <@{user}>", user=user)
    else:
        # Translators: the first line of a job's card, above its prompt ({user} mentions who asked)
        asked = text(locale, "**Imagine** for <@{user}>", user=user)
    embed = discord.Embed(title=text(locale, title), colour=colour, description=f"{asked}\n{_quote(job.prompt)}")
    # Translators: a field name on a job's card (the Flux model that makes the images)
    embed.add_field(name=text(locale, "Model"), value=model_label(job.model), inline=True)
    # Translators: a field name on a job's card (the images' width x height)
    embed.add_field(name=text(locale, "Size"), value=f"`{job.size}`", inline=True)
    if job.action == "generate":
        # Translators: a field name on a job's card (how many images it makes)
        embed.add_field(name=text(locale, "Images"), value=number(locale, job.count), inline=True)
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
    locale = job.reply.locale
    embed = _base(job, RUNNING if job.status is JobStatus.SUBMITTED else QUEUED, QUEUED_COLOUR)
    if position is not None:
        if position == 1:
            # Translators: a queued job's place in line, when it is the first
            ahead = text(locale, "next to start")
        else:
            # Translators: how many jobs wait in line before this one
            ahead = plural(locale, "{n} job ahead", "{n} jobs ahead", position - 1)
        # Translators: a field name on a queued job's card: its place in the line of jobs waiting for the provider
        embed.add_field(name=text(locale, "Place in line"), value=f"#{number(locale, position)} ({ahead})", inline=True)
    if provider_place is not None and job.status is JobStatus.SUBMITTED:
        # Translators: a running job waits in the image provider's own queue ({place}: 1 is next)
        place = text(locale, "place {place} in the provider's queue", place=number(locale, provider_place + 1))
        # Translators: a field name on a running job's card: its place in the image provider's own queue
        embed.add_field(name=text(locale, "At the provider"), value=place, inline=True)
    # Translators: a job's task at the provider, before the provider gave it an id
    task = task_text(job, locale) if job.task_id else text(locale, "sending…")
    # Translators: a field name on a job's card: its id at the image provider
    embed.add_field(name=text(locale, "Task"), value=task, inline=True)
    started = discord_time(job.created_at)
    # Translators: how long a job has been running; {when} is a relative time Discord writes ("2 minutes ago")
    elapsed = text(
        locale, "{elapsed} (started {when})", elapsed=elapsed_text(now - job.created_at, locale), when=started
    )
    # Translators: a field name on a job's card: how long it has been running
    embed.add_field(name=text(locale, "Elapsed"), value=elapsed, inline=True)
    if estimate is not None and job.submitted_at is not None:
        # Translators: a field name on a running job's card: when it should be ready
        expected = text(locale, "Expected")
        embed.add_field(name=expected, value=expected_text(now - job.submitted_at, estimate, locale), inline=True)
    # Translators: the footer of a job's card while it waits ({id}: the job's number)
    footer = text(locale, "Job #{id} · this message turns into the result when it is ready", id=job.id)
    embed.set_footer(text=footer)
    return [embed]


def expected_text(running: float, estimate: Estimate, locale: LocaleValue) -> str:
    """What a running card promises: when jobs of this model are usually ready, or that this one takes longer."""
    if running > estimate.late:
        # Translators: on a running job's card, when it takes longer than this model's jobs usually do
        return text(locale, "Taking longer than usual; still waiting for the provider")
    # Translators: on a running job's card ({time}: how long this model's jobs usually take, e.g. "25s")
    return text(locale, "Usually ready in about {time}", time=elapsed_text(max(estimate.typical, 1.0), locale))


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
    spoiler marks. A `note` (an `errors.Message`, or plain text) is said in the job's locale.
    """
    images = shown_images(job)
    if not images:
        return failure_card(job)
    locale = job.reply.locale
    shown = [f"attachment://{name}" for name in attachments] if attachments else list(copies)
    shown = shown or [image.url for image in images]
    gallery_url = images[0].url
    first = _base(job, DONE, DONE_COLOUR)
    first.url = gallery_url
    seeds = [str(i.seed) for i in images if i.seed is not None]
    if seeds:
        # Translators: a field name on a result: the seed (or seeds) its images were made with
        name = text(locale, "Seed") if len(seeds) == 1 else text(locale, "Seeds")
        first.add_field(name=name, value=clip(", ".join(seeds)), inline=True)
    took = elapsed_text((job.finished_at or job.created_at) - job.created_at, locale)
    if job.inference_seconds is not None:
        inference = inference_text(job.inference_seconds, locale)
        # Translators: how long a job took, and how long the model itself ran ({inference}, e.g. "4.2s")
        timing = text(locale, "{elapsed} in all, {inference} of inference", elapsed=took, inference=inference)
    else:
        # Translators: how long a job took from the command to its result ({elapsed}, e.g. "3m 05s")
        timing = text(locale, "{elapsed} in all", elapsed=took)
    # Translators: a field name on a result: how long it took
    first.add_field(name=text(locale, "Time"), value=timing, inline=True)
    first.add_field(name=text(locale, "Task"), value=task_text(job, locale), inline=True)
    links = " · ".join(f"[{n}]({image.url})" for n, image in enumerate(images, start=1))
    # Translators: a field name on a result: links to the images as the provider made them
    originals = text(locale, "Originals")
    first.add_field(name=originals, value=clip(f"||{links}||" if spoiler else links), inline=False)
    if spoiler:
        why = _SPOILERS[flagged(job), bool(attachments)]
        first.add_field(name=text(locale, "Images"), value=text(locale, why), inline=False)
    # A succeeded job's message says which images failed; `note` what delivery could not do.
    notes = [said for said in (errors.said(job.error_message, locale), errors.said(note, locale)) if said]
    if notes:
        # Translators: a field name on a result: something to know about it
        first.add_field(name=text(locale, "Note"), value=clip("\n".join(notes)), inline=False)
    # Translators: the footer of a job's card ({id}: the job's number)
    first.set_footer(text=text(locale, "Job #{id}", id=job.id))
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
    locale = job.reply.locale
    timed_out = job.status is JobStatus.TIMED_OUT
    embed = _base(job, TIMED_OUT if timed_out else FAILED, TIMED_OUT_COLOUR if timed_out else FAILED_COLOUR)
    # Translators: on a failed job's card, when nothing more is known
    happened = errors.said(job.error_message, locale) or text(locale, "The job failed.")
    # Translators: a field name on a failed job's card: why it failed, and what to do
    embed.add_field(name=text(locale, "What happened"), value=clip(happened), inline=False)
    if job.task_id:
        embed.add_field(name=text(locale, "Task"), value=task_text(job, locale), inline=True)
    embed.set_footer(text=text(locale, "Job #{id}", id=job.id))
    return [embed]


def task_text(job: Job, locale: LocaleValue) -> str:
    """The job's task for a card: its (first) task id, and how many more tasks it holds."""
    shown = f"`{clip(job.task_id or '?', 100)}`"
    more = len(job.tasks) - 1
    if more <= 0:
        return shown
    # Translators: a job's first task id ({task}), and how many more tasks the job has
    return plural(locale, "{task} and {n} more", "{task} and {n} more", more, task=shown)


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
