"""Test doubles of the job core's neighbours: a clock moved by hand and a Discord that records each reply."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from dataclasses import dataclass, field

from fluxbot.delivery import DeliveryError
from fluxbot.jobs.durations import Estimate
from fluxbot.jobs.lifecycle import Job


@dataclass
class RecordingReplier:
    """Stands in for Discord: records what each reply showed; can be told to fail."""

    progress: list[tuple[int, str | None]] = field(default_factory=list)
    outcomes: list[Job] = field(default_factory=list)
    failures: list[DeliveryError] = field(default_factory=list)
    delay: float = 0.0
    progress_delay: float = 0.0
    edits: list[str] = field(default_factory=list)

    positions: list[int | None] = field(default_factory=list)
    estimates: list[Estimate | None] = field(default_factory=list)
    provider_places: list[int | None] = field(default_factory=list)
    #: The URLs each job's reply carries on Discord (what `uploaded_copies` answers), and what was shown with them.
    uploads: dict[int, list[str]] = field(default_factory=dict)
    copies_shown: list[list[str]] = field(default_factory=list)

    async def show_progress(
        self,
        job: Job,
        *,
        now: float,
        position: int | None = None,
        estimate: Estimate | None = None,
        provider_place: int | None = None,
    ) -> None:
        await asyncio.sleep(self.progress_delay)
        self.progress.append((job.id, job.task_id))
        self.positions.append(position)
        self.estimates.append(estimate)
        self.provider_places.append(provider_place)
        self.edits.append("progress")

    async def show_outcome(self, job: Job, *, copies: Sequence[str] = ()) -> str:
        await asyncio.sleep(self.delay)
        self.edits.append("outcome")
        if self.failures:
            raise self.failures.pop(0)
        self.outcomes.append(job)
        self.copies_shown.append(list(copies))
        return "interaction"

    async def uploaded_copies(self, job: Job) -> list[str]:
        return list(self.uploads.get(job.id, []))


class Clock:
    def __init__(self) -> None:
        self.now = 1_000_000.0

    def __call__(self) -> float:
        return self.now
