"""The claim keeps the providers' and the models' concurrency (tasks running at once) as well as MAX_JOBS_IN_FLIGHT.

The catalogue here makes Ace Data's models one image per task, gives the account three tasks at once and
`flux-pro` one, as BFL's 24 and flux-kontext-max's 6 are at a smaller scale.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from dataclasses import replace

import pytest

from fluxbot import catalog
from fluxbot.jobs import requests
from fluxbot.jobs.capacity import AtProvider, Capacity, Waiting, task_counts
from fluxbot.jobs.lifecycle import Job, JobStatus, JobTask, Outcome, Reply, TaskPhase
from fluxbot.jobs.service import NO_LIMITS, Jobs
from fluxbot.providers.acedata import AceDataFlux
from fluxbot.providers.base import JobRequest
from fluxbot.storage import PostgresStore, Store
from tests.doubles import Clock, RecordingReplier
from tests.fakes.flux_api import FakeFlux

ACE = catalog.PROVIDERS["acedata"]
SMALL = replace(
    ACE,
    max_active_tasks=3,
    models=tuple(
        replace(m, images_per_task=1, max_active_tasks=1 if m.name == "flux-pro" else None) for m in ACE.models
    ),
)
INFOS = {"acedata": SMALL}
CAPACITY = Capacity(INFOS)


def reply(user: int) -> Reply:
    return Reply(
        user_id=user, guild_id=7, channel_id=8, application_id=9, interaction_token="tok", message_id=1000 + user
    )


def imagine(count: int, model: str = "flux-dev") -> JobRequest:
    return requests.prepare_imagine(SMALL, "a cat", model, None, count)


# -- the rule itself ------------------------------------------------------------------------------------------


def test_a_job_needs_one_task_per_images_per_task() -> None:
    assert task_counts(ACE, "flux-dev", 4) == [4], "Ace Data makes four in one task"
    assert task_counts(SMALL, "flux-dev", 3) == [1, 1, 1]
    assert task_counts(replace(SMALL, models=(replace(ACE.models[0], images_per_task=2),)), "flux-dev", 3) == [2, 1]
    assert task_counts(SMALL, "not-in-the-catalogue", 3) == [3], "an unknown model: one task, as before"
    assert task_counts(None, "flux-dev", 2) == [2]


def test_the_oldest_job_whose_tasks_fit_is_next() -> None:
    two, one = Waiting(1, "acedata", "flux-dev", 2), Waiting(2, "acedata", "flux-schnell", 1)
    assert CAPACITY.next_job([one, two], [], jobs=20) == 1, "oldest first"
    assert CAPACITY.next_job([two], [AtProvider("acedata", "flux-dev", 1)], jobs=20) == 1, "1 + 2 = 3 fit"
    busy = [AtProvider("acedata", "flux-dev", 2)]
    assert CAPACITY.next_job([two, one], busy, jobs=20) is None, (
        "2 + 2 do not fit, and the smaller job behind it waits too: a big job is not overtaken for ever"
    )
    assert CAPACITY.next_job([two], busy, jobs=1) is None, "MAX_JOBS_IN_FLIGHT still counts jobs"
    assert CAPACITY.next_job([Waiting(3, "acedata", "flux-dev", 4)], [], jobs=20) == 3, (
        "a job bigger than the limit itself starts when nothing else runs"
    )


def test_a_model_at_its_limit_holds_up_its_own_jobs_only() -> None:
    pro, dev = Waiting(1, "acedata", "flux-pro", 1), Waiting(2, "acedata", "flux-dev", 1)
    running_pro = [AtProvider("acedata", "flux-pro", 1)]
    assert CAPACITY.next_job([pro, dev], running_pro, jobs=20) == 2, "flux-pro is full; flux-dev goes ahead"
    assert CAPACITY.next_job([pro], [AtProvider("acedata", "flux-dev", 1)], jobs=20) == 1
    assert not Capacity({"acedata": ACE}).limited, "without limits, a claim counts jobs only"
    assert CAPACITY.limited


# -- in the store, both engines -------------------------------------------------------------------------------


async def queue(store: Store, *requests_: JobRequest) -> list[Job]:
    jobs = [await store.admit("acedata", r, reply(n), limits=NO_LIMITS) for n, r in enumerate(requests_)]
    assert all(job is not None for job in jobs)
    return [job for job in jobs if job is not None]


async def test_a_claim_counts_the_tasks_running_and_being_sent(store: Store) -> None:
    a, b, c = await queue(store, imagine(2), imagine(2), imagine(1))
    first = await store.claim(20, CAPACITY)
    assert first is not None
    assert first.id == a.id
    assert await store.claim(20, CAPACITY) is None, "a's two tasks being sent and b's two do not fit three"
    assert await store.mark_submitted(a.id, [JobTask(1, "a-1"), JobTask(2, "a-2")])
    assert await store.claim(20, CAPACITY) is None, "nor once they run"
    assert await store.end_task(a.id, JobTask(1, "a-1", TaskPhase.SUCCEEDED))
    second = await store.claim(20, CAPACITY)
    assert second is not None
    assert second.id == b.id, "a's task ended: one runs, b's two fit"
    assert await store.claim(20, CAPACITY) is None, "three are at the provider: c waits"
    assert await store.finish(a.id, Outcome(JobStatus.SUCCEEDED))
    third = await store.claim(20, CAPACITY)
    assert third is not None
    assert third.id == c.id
    assert await store.claim(20) is None, "without a capacity, the old claim: nothing left to claim"


async def test_a_claim_leaves_a_full_model_waiting_and_takes_another(store: Store) -> None:
    pro1, pro2, dev = await queue(store, imagine(1, "flux-pro"), imagine(1, "flux-pro"), imagine(1))
    claimed = [await store.claim(20, CAPACITY), await store.claim(20, CAPACITY)]
    assert [job.id if job else None for job in claimed] == [pro1.id, dev.id], "flux-pro's second waits; dev goes"
    assert await store.claim(20, CAPACITY) is None, "flux-pro runs one at a time"
    assert await store.finish(pro1.id, Outcome(JobStatus.SUCCEEDED))
    again = await store.claim(20, CAPACITY)
    assert again is not None
    assert again.id == pro2.id


async def test_claims_from_two_processes_never_run_more_tasks_than_the_account_may(
    stores: tuple[PostgresStore, PostgresStore],
) -> None:
    a, b = stores
    await queue(a, *(imagine(1) for _ in range(10)))
    claims = await asyncio.gather(*(s.claim(20, CAPACITY) for s in [a, b] * 5))
    assert len([job for job in claims if job is not None]) == 3, "three tasks at once, across both processes"


@pytest.fixture
async def stores(database_url: str) -> AsyncIterator[tuple[PostgresStore, PostgresStore]]:
    """Two processes on one PostgreSQL database."""
    a = await PostgresStore.open(database_url, instance="process-a", pool_size=4)
    b = await PostgresStore.open(database_url, instance="process-b", pool_size=4)
    yield a, b
    await a.close()
    await b.close()


# -- the job core keeps it ------------------------------------------------------------------------------------


async def test_the_queue_sends_no_more_tasks_than_the_account_runs_and_fills_as_they_end(
    store: Store, client: AceDataFlux, flux: FakeFlux, replier: RecordingReplier, clock: Clock
) -> None:
    flux.hold = True
    jobs = Jobs(store, client, replier, poll_interval=3, job_timeout=600, clock=clock, infos=INFOS)
    first = await jobs.start(imagine(2), reply(1))
    second = await jobs.start(imagine(2), reply(2))
    assert (first.status, second.status) == (JobStatus.SUBMITTED, JobStatus.QUEUED)
    assert len(flux.submits) == 2, "two tasks run; the next job's two would make four"

    flux.finish(first.tasks[0].task_id or "")
    clock.now += 3
    await jobs.round()
    await jobs.settle()
    assert len(flux.submits) == 4, "the task that ended made room: the next job's two are sent"
    now = await store.get_job(second.id)
    assert now is not None
    assert now.status is JobStatus.SUBMITTED
