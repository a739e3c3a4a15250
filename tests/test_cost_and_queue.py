"""What the providers report besides images: the cost of each task (summed in Details) and the place in their own
queue (on the running card), through a provider that reports both, as BFL (cost) and fal (queue_position) do."""

from __future__ import annotations

import itertools
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

from fluxbot import catalog, render, render_details
from fluxbot.jobs import requests
from fluxbot.jobs.lifecycle import JobStatus, JobTask, TaskPhase
from fluxbot.jobs.service import Jobs
from fluxbot.providers.base import Image, JobRequest, Submitted, TaskRef, TaskState, TaskStatus
from fluxbot.storage import Store
from tests.doubles import Clock, RecordingReplier
from tests.test_jobs import REPLY
from tests.test_render import job

ACE = catalog.PROVIDERS["acedata"]
ONE_BY_ONE = replace(ACE, models=tuple(replace(model, images_per_task=1) for model in ACE.models))


@dataclass
class QueueingProvider:
    """A provider whose tasks wait in its own queue (places counted down per lookup) and report their cost."""

    name: str = "acedata"
    max_batch: int = 10
    places: dict[str, int] = field(default_factory=dict)
    _ids: Any = field(default_factory=lambda: itertools.count(1))

    async def submit(self, request: JobRequest) -> Submitted:
        task_id = f"queued-{next(self._ids)}"
        self.places[task_id] = 2
        return Submitted(TaskRef(task_id, f"https://queue.test/{task_id}/status"), cost=1.25)

    async def lookup(self, tasks: Sequence[TaskRef]) -> Mapping[str, TaskStatus]:
        statuses = {}
        for task in tasks:
            assert task.poll_url == f"https://queue.test/{task.task_id}/status", "the poll URL is used as given"
            place = self.places[task.task_id]
            self.places[task.task_id] = place - 1
            if place >= 0:
                statuses[task.task_id] = TaskStatus(task.task_id, TaskState.RUNNING, queue_position=place)
            else:
                image = Image(f"https://img.test/{task.task_id}.png")
                statuses[task.task_id] = TaskStatus(task.task_id, TaskState.SUCCEEDED, images=(image,), cost=2.0)
        return statuses

    def callback_task_id(self, raw: bytes, body: Any, headers: Mapping[str, str]) -> str | None:
        return None

    async def check_key(self) -> None:
        return None


async def test_the_running_card_shows_the_place_in_the_providers_queue_and_details_the_cost(
    store: Store, replier: RecordingReplier, clock: Clock
) -> None:
    provider = QueueingProvider()
    jobs = Jobs(store, provider, replier, poll_interval=3, job_timeout=600, clock=clock, infos={"acedata": ONE_BY_ONE})
    jobs.cards.refresh_seconds = 0.0  # a card at every round
    started = await jobs.start(requests.prepare_imagine(ONE_BY_ONE, "two owls", "flux-dev", None, 2), REPLY)
    assert [t.cost for t in started.tasks] == [1.25, 1.25], "the submit's cost is stored with each task"
    for _ in range(6):
        clock.now += 3
        await jobs.round()
        await jobs.settle()
        if replier.outcomes:
            break
    places = [place for place in replier.provider_places if place is not None]
    assert places == [2, 1, 0], "the card follows the place the lookups report (0: next)"
    [done] = replier.outcomes
    assert done.status is JobStatus.SUCCEEDED
    stored = await store.get_job(done.id)
    assert stored is not None
    assert [t.cost for t in stored.tasks] == [2.0, 2.0], "the cost the finished task reported replaces the submit's"
    fields = {f.name: f.value for f in render_details.details_card(stored, locale=None).fields}
    assert fields["Cost"] == "4 (as Ace Data Cloud counts it)"


def test_a_card_says_where_the_job_waits_at_the_provider() -> None:
    running = job(status=JobStatus.SUBMITTED, task_id="t-1")
    [card] = render.queued_card(running, now=1010.0, provider_place=2)
    assert {f.name: f.value for f in card.fields}["At the provider"] == "place 3 in the provider's queue"
    [plain] = render.queued_card(running, now=1010.0)
    assert "At the provider" not in {f.name for f in plain.fields}


def test_details_sum_the_tasks_costs_and_say_when_some_reported_none() -> None:
    tasks = (
        JobTask(1, "a", TaskPhase.SUCCEEDED, cost=1.5),
        JobTask(2, "b", TaskPhase.SUCCEEDED, cost=2.25),
        JobTask(3, "c", TaskPhase.SUCCEEDED),
        JobTask(4, None, TaskPhase.FAILED),
    )
    fields = {f.name: f.value for f in render_details.details_card(job(tasks=tasks), locale=None).fields}
    assert fields["Cost"] == "3.75 (as Ace Data Cloud counts it; 1 of its 3 tasks reported none)"
    assert str(fields["Tasks"]).splitlines() == ["1. `a` succeeded", "2. `b` succeeded", "3. `c` succeeded",
                                            "4. not started", "(acedata)"]  # fmt: skip
    assert "Cost" not in {f.name for f in render_details.details_card(job(), locale=None).fields}, (
        "nothing reported, nothing shown"
    )
