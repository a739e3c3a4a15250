"""The buttons under results and job lists: custom ids that carry a job id (or a page), nothing else.

They are `DynamicItem`s: discord.py matches a click to them by its custom id alone, so they keep working
after a restart and after the interaction token expired. Everything else is looked up in SQLite by the
cog that handles the click (`cogs/results.py`).
"""

from __future__ import annotations

import logging
import re
from enum import StrEnum
from typing import Any, Protocol

import discord
from discord.ext import commands

from fluxbot.store import Job, JobStatus

log = logging.getLogger(__name__)

#: The cog that answers clicks (see `cogs/results.py`).
HANDLER_COG = "Results"


class JobAction(StrEnum):
    """What a result button does."""

    REROLL = "reroll"
    EDIT = "edit"
    DETAILS = "details"
    DELETE = "delete"


_LOOKS: dict[JobAction, tuple[str, str, discord.ButtonStyle]] = {
    JobAction.REROLL: ("Re-roll", "🎲", discord.ButtonStyle.primary),
    JobAction.EDIT: ("Edit", "✏️", discord.ButtonStyle.secondary),
    JobAction.DETAILS: ("Details", "ℹ️", discord.ButtonStyle.secondary),
    JobAction.DELETE: ("Delete", "🗑️", discord.ButtonStyle.danger),
}


class ClickHandler(Protocol):
    """Answers button clicks."""

    async def on_job_button(self, interaction: discord.Interaction, action: JobAction, job_id: int) -> None:
        """A result button was clicked."""
        ...

    async def on_jobs_page(self, interaction: discord.Interaction, page: int) -> None:
        """A page button of /jobs was clicked."""
        ...


def _handler(interaction: discord.Interaction) -> ClickHandler:
    client = interaction.client
    assert isinstance(client, commands.Bot)
    cog: Any = client.get_cog(HANDLER_COG)
    assert cog is not None, "the Results cog is not loaded"
    return cog  # type: ignore[no-any-return]


class JobButton(
    discord.ui.DynamicItem[discord.ui.Button[Any]],
    template=r"fluxbot:job:(?P<action>reroll|edit|details|delete):(?P<job_id>[0-9]{1,19})",
):
    """One of the four buttons under a finished job."""

    def __init__(self, action: JobAction, job_id: int) -> None:
        label, emoji, style = _LOOKS[action]
        super().__init__(
            discord.ui.Button(label=label, emoji=emoji, style=style, custom_id=f"fluxbot:job:{action}:{job_id}")
        )
        self.action = action
        self.job_id = job_id

    @classmethod
    async def from_custom_id(
        cls, interaction: discord.Interaction, item: discord.ui.Item[Any], match: re.Match[str], /
    ) -> JobButton:
        """Rebuild the button from a click."""
        return cls(JobAction(match["action"]), int(match["job_id"]))

    async def callback(self, interaction: discord.Interaction) -> None:
        """Hand the click to the Results cog."""
        await _handler(interaction).on_job_button(interaction, self.action, self.job_id)


class JobsPageButton(
    discord.ui.DynamicItem[discord.ui.Button[Any]], template=r"fluxbot:jobs:(?P<page>[0-9]{1,6}):(?P<label>prev|next)"
):
    """Previous / next page of /jobs."""

    def __init__(self, page: int, label: str, *, disabled: bool = False) -> None:
        text = "◀ Newer" if label == "prev" else "Older ▶"
        super().__init__(
            discord.ui.Button(
                label=text,
                style=discord.ButtonStyle.secondary,
                custom_id=f"fluxbot:jobs:{page}:{label}",
                disabled=disabled,
            )
        )
        self.page = page

    @classmethod
    async def from_custom_id(
        cls, interaction: discord.Interaction, item: discord.ui.Item[Any], match: re.Match[str], /
    ) -> JobsPageButton:
        """Rebuild the button from a click."""
        return cls(int(match["page"]), match["label"])

    async def callback(self, interaction: discord.Interaction) -> None:
        """Hand the click to the Results cog."""
        await _handler(interaction).on_jobs_page(interaction, self.page)


def _sealed(view: discord.ui.View) -> discord.ui.View:
    # The items dispatch by custom id; a stopped view is not also kept in discord.py's in-memory store.
    view.stop()
    return view


def result_view(job: Job) -> discord.ui.View | None:
    """The buttons under a finished job: all four on a result; re-roll, details and delete on a failure."""
    if not job.status.finished:
        return None
    actions = (
        list(JobAction)
        if job.status is JobStatus.SUCCEEDED
        else [JobAction.REROLL, JobAction.DETAILS, JobAction.DELETE]
    )
    view = discord.ui.View(timeout=None)
    for action in actions:
        view.add_item(JobButton(action, job.id))
    return _sealed(view)


def jobs_page_view(page: int, pages: int) -> discord.ui.View | None:
    """Page buttons for /jobs, or None when everything fits on one page."""
    if pages <= 1:
        return None
    view = discord.ui.View(timeout=None)
    view.add_item(JobsPageButton(max(page - 1, 0), "prev", disabled=page <= 0))
    view.add_item(JobsPageButton(page + 1, "next", disabled=page >= pages - 1))
    return _sealed(view)
