"""What only the member sees of their jobs: the Details card and the pages of /jobs, in the member's locale
(`i18n.member_locale`); the prompt is shown as written."""

from __future__ import annotations

from collections.abc import Sequence

import discord

from fluxbot import catalog, errors
from fluxbot.i18n import N_, LocaleValue, discord_time, number, plural, text, text_in
from fluxbot.jobs.lifecycle import Job, JobStatus, TaskPhase
from fluxbot.render import QUEUED_COLOUR, clip, decimal_text, elapsed_text, inference_text, model_label, shown_images

_STATUS_WORDS = {
    # Translators: a job's status in Details and /jobs (it waits in line)
    JobStatus.QUEUED: N_("⏳ queued"),
    # Translators: a job's status in Details and /jobs (it is being sent to the image provider)
    JobStatus.PENDING: N_("📤 sending"),
    # Translators: a job's status in Details and /jobs (the image provider works on it)
    JobStatus.SUBMITTED: N_("🎨 running"),
    # Translators: a job's status in Details and /jobs
    JobStatus.SUCCEEDED: N_("✅ done"),
    # Translators: a job's status in Details and /jobs
    JobStatus.FAILED: N_("❌ failed"),
    # Translators: a job's status in Details and /jobs (it did not finish in time)
    JobStatus.TIMED_OUT: N_("⌛ timed out"),
}
#: How each of a job's tasks ended, as Details lists them.
_TASK_STATES = {
    # Translators: a task's state in a job's Details (the provider is still working on it)
    TaskPhase.RUNNING: N_("running"),
    # Translators: a task's state in a job's Details
    TaskPhase.SUCCEEDED: N_("succeeded"),
    # Translators: a task's state in a job's Details
    TaskPhase.FAILED: N_("failed"),
    # Translators: a task's state in a job's Details
    TaskPhase.TIMED_OUT: N_("timed out"),
}


def status_text(job: Job, locale: LocaleValue) -> str:
    """Where the job stands, in a word and an emoji."""
    return text(locale, _STATUS_WORDS[job.status])


def jump_url(job: Job) -> str | None:
    """A link to the job's reply, or None when it is not known."""
    if job.reply.channel_id is None or job.reply.message_id is None:
        return None
    return f"https://discord.com/channels/{job.reply.guild_id or '@me'}/{job.reply.channel_id}/{job.reply.message_id}"


def tasks_text(job: Job, locale: LocaleValue) -> str:
    """Every task of the job, for Details: its id (or that its submit failed) and how it ended."""
    if len(job.tasks) <= 1:
        # Translators: shown in Details instead of a task id, for a job that never reached the provider
        task = clip(job.task_id, 100) if job.task_id else text_in(locale, "no task", "none")
        return f"`{task}` ({job.provider})"
    # Translators: a task of a job whose submit failed, in Details
    unstarted = text(locale, "not started")
    lines = [f"{t.number}. `{clip(t.task_id, 80)}` {text(locale, _TASK_STATES[t.state])}" if t.task_id
             else f"{t.number}. {unstarted}" for t in job.tasks]  # fmt: skip
    return clip("\n".join(lines) + f"\n({job.provider})")


def _timings(job: Job, locale: LocaleValue) -> str:
    asked = discord_time(job.created_at, "f")
    inference = inference_text(job.inference_seconds, locale) if job.inference_seconds is not None else None
    if job.finished_at is None:
        if inference is None:
            # Translators: when a job was asked for ({when}: a date and time Discord writes)
            return text(locale, "asked {when}", when=asked)
        # Translators: when a job was asked for, and how long the model itself ran ({inference}, e.g. "4.2s")
        return text(locale, "asked {when} ({inference} of inference)", when=asked, inference=inference)
    took = elapsed_text(job.finished_at - job.created_at, locale)
    if inference is None:
        # Translators: when a job was asked for ({when}) and how long it took ({elapsed}, e.g. "3m 05s")
        return text(locale, "asked {when}, finished after {elapsed}", when=asked, elapsed=took)
    # Translators: when a job was asked for, how long it took, and how long the model itself ran (e.g. "4.2s")
    return text(
        locale,
        "asked {when}, finished after {elapsed} ({inference} of inference)",
        when=asked,
        elapsed=took,
        inference=inference,
    )


def details_card(job: Job, *, locale: LocaleValue) -> discord.Embed:
    """Everything about one job, for the Details button, in the member's `locale`."""
    # Translators: the title of a job's Details ({id}: the job's number)
    embed = discord.Embed(title=text(locale, "Job #{id}", id=job.id), colour=QUEUED_COLOUR)
    embed.description = clip(job.prompt, 4000)
    # Translators: a field name in a job's Details: where the job stands
    embed.add_field(name=text(locale, "Status"), value=status_text(job, locale), inline=True)
    # Translators: a field name in a job's Details: who asked for the job
    embed.add_field(name=text(locale, "Asked by"), value=f"<@{job.reply.user_id}>", inline=True)
    embed.add_field(name=text(locale, "Model"), value=model_label(job.model), inline=True)
    embed.add_field(name=text(locale, "Size"), value=f"`{job.size}`", inline=True)
    if job.style:
        # Translators: the style preset of a job ({style} is its name); the style's text was added to the prompt
        name = f"`{clip(job.style, 100)}`"
        style = text(locale, "{style} (its text is part of the prompt)", style=name)
        # Translators: a field name in a job's Details: the server's style preset it used
        embed.add_field(name=text(locale, "Style"), value=style, inline=True)
    embed.add_field(name=text(locale, "Images"), value=number(locale, len(shown_images(job)) or job.count), inline=True)
    seeds = ", ".join(str(i.seed) for i in shown_images(job) if i.seed is not None)
    # Translators: in Details, a job whose provider did not say which seeds it used
    shown_seeds = clip(seeds) if seeds else text(locale, "not reported")
    embed.add_field(name=text(locale, "Seeds"), value=shown_seeds, inline=True)
    # Translators: a field name in Details, for a job with several tasks at the provider
    tasks = text(locale, "Tasks") if len(job.tasks) > 1 else text(locale, "Task")
    embed.add_field(name=tasks, value=tasks_text(job, locale), inline=False)
    # Translators: a field name in Details: when the job was asked for and how long it took
    embed.add_field(name=text(locale, "Timings"), value=_timings(job, locale), inline=False)
    if (cost := cost_text(job, locale)) is not None:
        # Translators: a field name in Details: what the job cost, as its provider counts it
        embed.add_field(name=text(locale, "Cost"), value=cost, inline=True)
    if job.error_message:
        happened = errors.said(job.error_message, locale) or ""
        embed.add_field(name=text(locale, "What happened"), value=clip(happened), inline=False)
    if job.image_url:
        # Translators: in Details of an edit, a link to the image it edited
        source = text(locale, "[source]({url})", url=job.image_url)
        # Translators: a field name in Details of an edit: the image it edited
        embed.add_field(name=text(locale, "Edited image"), value=clip(source), inline=False)
    return embed


def cost_text(job: Job, locale: LocaleValue) -> str | None:
    """What the job cost as its provider reported it (the sum of its tasks', in the provider's own unit), or None
    when the provider reported nothing."""
    costs = [task.cost for task in job.tasks if task.cost is not None]
    if not costs:
        return None
    provider = catalog.PROVIDERS[job.provider].label if job.provider in catalog.PROVIDERS else job.provider
    total = f"{round(sum(costs), 4):g}"
    cost = total if "e" in total else decimal_text(locale, total)
    started = [task for task in job.tasks if task.task_id is not None]
    if len(costs) >= len(started):
        # Translators: a job's cost ({cost}: a number in the provider's own unit, e.g. credits)
        return text(locale, "{cost} (as {provider} counts it)", cost=cost, provider=provider)
    # Translators: a job's cost, and how many of its {n} tasks reported none ({missing})
    return plural(
        locale,
        "{cost} (as {provider} counts it; {missing} of its {n} task reported none)",
        "{cost} (as {provider} counts it; {missing} of its {n} tasks reported none)",
        len(started),
        cost=cost,
        provider=provider,
        missing=number(locale, len(started) - len(costs)),
    )


def jobs_page(
    jobs: Sequence[Job], *, total: int, page: int, pages: int, now: float, locale: LocaleValue
) -> discord.Embed:
    """One page of /jobs, in the member's `locale`: status, prompt, model, age and a link to each reply."""
    # Translators: the title of /jobs
    embed = discord.Embed(title=text(locale, "Your recent jobs"), colour=QUEUED_COLOUR)
    if not jobs:
        # Translators: /jobs for a member who never made a job
        embed.description = text(locale, "You have no jobs yet. Try `/imagine`.")
        return embed
    lines = []
    for job in jobs:
        prompt = clip(job.prompt.replace("\n", " "), 60)
        link = jump_url(job)
        where = ""
        if job.deleted_at:
            # Translators: in /jobs, a job whose result its member deleted
            where = " · " + text(locale, "deleted")
        elif link:
            # Translators: in /jobs, a link to a job's reply
            where = " · " + text(locale, "[reply]({link})", link=link)
        # Translators: in /jobs, how long ago a job was asked for ({elapsed}, e.g. "3m 05s")
        age = text(locale, "{elapsed} ago", elapsed=elapsed_text(now - job.created_at, locale))
        lines.append(f"**#{job.id}** {status_text(job, locale)} · `{job.model}` · {age}{where}\n> {prompt}")
    embed.description = clip("\n".join(lines), 4000)
    # Translators: the footer of /jobs ({n}: how many jobs the member has; `/job <number>` is a command, as typed)
    footer = plural(
        locale,
        "Page {page} of {pages} · {n} job · /job <number> shows a result again",
        "Page {page} of {pages} · {n} jobs · /job <number> shows a result again",
        total,
        page=number(locale, page + 1),
        pages=number(locale, pages),
    )
    embed.set_footer(text=footer)
    return embed
