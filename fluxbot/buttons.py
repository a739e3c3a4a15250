"""The buttons under results and job lists: custom ids that carry a job id (or a page), nothing else.

A click is matched by its custom id alone to the `DynamicItem` classes that `bind_handler` makes for the click
handler (the Results cog, `cogs/results.py`, registers them when it loads), so the buttons keep working after a
restart and after the interaction token expired. Everything else is looked up in SQLite by that handler.

A button's label is for whoever sees the message: under a job's reply the job's public locale (`job.reply.locale`),
on /jobs the member's. A click is matched by custom id only, so labels may be in any language.
"""

from __future__ import annotations

import re
from enum import StrEnum
from typing import Any, Protocol

import discord

from fluxbot.i18n import N_, LocaleValue, text
from fluxbot.jobs.lifecycle import Job, JobStatus


class JobAction(StrEnum):
    """What a result button does."""

    REROLL = "reroll"
    EDIT = "edit"
    DETAILS = "details"
    DELETE = "delete"


_LOOKS: dict[JobAction, tuple[str, str, discord.ButtonStyle]] = {
    # Translators: a button under a result: make the same job again (new images from the same prompt)
    JobAction.REROLL: (N_("Re-roll"), "🎲", discord.ButtonStyle.primary),
    # Translators: a button under a result: change one of its images with a prompt
    JobAction.EDIT: (N_("Edit"), "✏️", discord.ButtonStyle.secondary),
    # Translators: a button under a result: everything about the job, shown to the clicker only
    JobAction.DETAILS: (N_("Details"), "ℹ️", discord.ButtonStyle.secondary),
    # Translators: a button under a result: remove the result's message
    JobAction.DELETE: (N_("Delete"), "🗑️", discord.ButtonStyle.danger),
}
#: The page buttons of /jobs, by their custom id's label.
_PAGES = {
    # Translators: a button of /jobs: the page of more recent jobs
    "prev": N_("◀ Newer"),
    # Translators: a button of /jobs: the page of older jobs
    "next": N_("Older ▶"),
}


class ClickHandler(Protocol):
    """Answers button clicks."""

    async def on_job_button(self, interaction: discord.Interaction, action: JobAction, job_id: int) -> None:
        """A result button was clicked."""
        ...

    async def on_jobs_page(self, interaction: discord.Interaction, page: int) -> None:
        """A page button of /jobs was clicked."""
        ...


JOB_TEMPLATE = r"fluxbot:job:(?P<action>reroll|edit|details|delete):(?P<job_id>[0-9]{1,19})"
PAGE_TEMPLATE = r"fluxbot:jobs:(?P<page>[0-9]{1,6}):(?P<label>prev|next)"

Buttons = tuple[type[discord.ui.DynamicItem[discord.ui.Button[Any]]], ...]


def _job_button(action: JobAction, job_id: int, locale: LocaleValue) -> discord.ui.Button[Any]:
    label, emoji, style = _LOOKS[action]
    return discord.ui.Button(
        label=text(locale, label), emoji=emoji, style=style, custom_id=f"fluxbot:job:{action}:{job_id}"
    )


def _page_button(page: int, label: str, locale: LocaleValue, *, disabled: bool = False) -> discord.ui.Button[Any]:
    return discord.ui.Button(
        label=text(locale, _PAGES[label]),
        style=discord.ButtonStyle.secondary,
        custom_id=f"fluxbot:jobs:{page}:{label}",
        disabled=disabled,
    )


def bind_handler(handler: ClickHandler) -> Buttons:
    """The persistent buttons, answering clicks by calling `handler`; register them with `add_dynamic_items`.

    Each call makes classes of its own, bound to its handler: discord.py rebuilds a clicked button from its custom
    id with the class registered for its template, so a click reaches exactly the handler that registered it.
    """

    class JobButton(discord.ui.DynamicItem[discord.ui.Button[Any]], template=JOB_TEMPLATE):
        """One of the four buttons under a finished job."""

        def __init__(self, action: JobAction, job_id: int) -> None:
            # Rebuilt from a click: the message keeps the label it was sent with, whatever this one says.
            super().__init__(_job_button(action, job_id, None))
            self.action = action
            self.job_id = job_id

        @classmethod
        async def from_custom_id(
            cls, interaction: discord.Interaction, item: discord.ui.Item[Any], match: re.Match[str], /
        ) -> JobButton:
            """Rebuild the button from a click."""
            return cls(JobAction(match["action"]), int(match["job_id"]))

        async def callback(self, interaction: discord.Interaction) -> None:
            """Hand the click to the handler."""
            await handler.on_job_button(interaction, self.action, self.job_id)

    class JobsPageButton(discord.ui.DynamicItem[discord.ui.Button[Any]], template=PAGE_TEMPLATE):
        """Previous / next page of /jobs."""

        def __init__(self, page: int, label: str) -> None:
            super().__init__(_page_button(page, label, None))
            self.page = page

        @classmethod
        async def from_custom_id(
            cls, interaction: discord.Interaction, item: discord.ui.Item[Any], match: re.Match[str], /
        ) -> JobsPageButton:
            """Rebuild the button from a click."""
            return cls(int(match["page"]), match["label"])

        async def callback(self, interaction: discord.Interaction) -> None:
            """Hand the click to the handler."""
            await handler.on_jobs_page(interaction, self.page)

    return JobButton, JobsPageButton


def _sealed(view: discord.ui.View) -> discord.ui.View:
    # Clicks are dispatched by custom id to the bound classes; a stopped view is not also kept in discord.py's
    # in-memory store (where its plain buttons would answer nothing).
    view.stop()
    return view


def result_view(job: Job) -> discord.ui.View | None:
    """The buttons under a finished job, labelled in its public locale: all four on a result; re-roll, details and
    delete on a failure."""
    if not job.status.finished:
        return None
    actions = (
        list(JobAction)
        if job.status is JobStatus.SUCCEEDED
        else [JobAction.REROLL, JobAction.DETAILS, JobAction.DELETE]
    )
    view = discord.ui.View(timeout=None)
    for action in actions:
        view.add_item(_job_button(action, job.id, job.reply.locale))
    return _sealed(view)


def jobs_page_view(page: int, pages: int, *, locale: LocaleValue) -> discord.ui.View | None:
    """Page buttons for /jobs in the member's `locale`, or None when everything fits on one page."""
    if pages <= 1:
        return None
    view = discord.ui.View(timeout=None)
    view.add_item(_page_button(max(page - 1, 0), "prev", locale, disabled=page <= 0))
    view.add_item(_page_button(page + 1, "next", locale, disabled=page >= pages - 1))
    return _sealed(view)
