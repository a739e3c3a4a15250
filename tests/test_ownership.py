"""Ownership in the job core: leases, taking over another run's jobs, and callbacks for jobs owned elsewhere."""

from __future__ import annotations

import asyncio
from typing import Any, cast

from fluxbot.jobs.lifecycle import CallbackOutcome, JobStatus, JobTask
from fluxbot.jobs.ownership import RESTARTED_DURING_SUBMIT
from fluxbot.jobs.requests import prepare_imagine
from fluxbot.jobs.service import NO_LIMITS, Jobs
from fluxbot.storage import Signal, Store
from fluxbot.storage.base import SignalHandler
from fluxbot.storage.postgres import PostgresStore
from tests.conftest import earlier_run
from tests.doubles import Clock, RecordingReplier
from tests.fakes.flux_api import FakeFlux
from tests.test_faults import ACE
from tests.test_jobs import REPLY


class SignallingStore:
    """The real store, recording the signals this process sends and keeping the handlers it listens with."""

    def __init__(self, store: Store) -> None:
        self._store = store
        self.sent: list[tuple[Signal, str]] = []
        self.handlers: list[SignalHandler] = []

    def __getattr__(self, name: str) -> Any:
        return getattr(self._store, name)

    async def signal(self, signal: Signal, payload: str = "") -> None:
        self.sent.append((signal, payload))

    def listen(self, handler: SignalHandler) -> None:
        self.handlers.append(handler)


async def test_a_callback_for_a_job_another_process_follows_is_passed_on_not_looked_up(
    store: Store, client: Any, replier: RecordingReplier, clock: Clock, flux: FakeFlux
) -> None:
    flux.hold = True
    signalling = SignallingStore(store)
    jobs = Jobs(cast("Store", signalling), client, replier, poll_interval=3, job_timeout=600, clock=clock)
    task_id = (await client.submit(prepare_imagine(ACE, "cat", "flux-dev", None, 1))).task.task_id
    with earlier_run(store):  # stands for another, live process here
        await store.leases.renew(seconds=600)  # live: on a shared database its jobs are not orphans
        job = await store.admit("acedata", prepare_imagine(ACE, "cat", "flux-dev", None, 1), REPLY, limits=NO_LIMITS)
        assert job is not None
        await store.claim(10)
        await store.mark_submitted(job.id, [JobTask(1, task_id)])

    assert await jobs.hint(task_id) is CallbackOutcome.ACCEPTED
    assert signalling.sent == [(Signal.HINT, f"acedata {task_id}")], "the owner is told"
    await jobs.round()
    assert flux.lookups == [], "only the owner looks it up"


async def test_a_callback_passed_on_by_another_process_makes_the_owner_look_soon(
    store: Store, client: Any, replier: RecordingReplier, clock: Clock, flux: FakeFlux
) -> None:
    signalling = SignallingStore(store)
    jobs = Jobs(cast("Store", signalling), client, replier, poll_interval=30, job_timeout=600, clock=clock,
                callback_url="https://bot.test/cb/s3cret")  # fmt: skip
    flux.lookups_before_done = 0
    job = await jobs.start(prepare_imagine(ACE, "cat", "flux-dev", None, 1), REPLY)
    assert job.task_id is not None
    clock.now += 3
    await jobs.round()
    assert flux.lookups == [], "with callbacks, the first look is far off"

    [handler] = signalling.handlers
    handler(Signal.HINT, f"acedata {job.task_id}")
    clock.now += 3
    await jobs.round()
    assert len(flux.lookups) == 1
    assert [j.status for j in replier.outcomes] == [JobStatus.SUCCEEDED]
    assert signalling.sent == [], "its own job: nobody else to tell"


async def test_a_run_takes_the_lease_and_gives_it_up_when_it_stops(
    store: Store, client: Any, replier: RecordingReplier, clock: Clock
) -> None:
    jobs = Jobs(store, client, replier, poll_interval=3, job_timeout=600, clock=clock)
    await jobs.resume()
    assert await store.leases.live_instances() == [store.instance]
    await jobs.stop_tracker(within=1)
    assert await store.leases.live_instances() == [store.instance], "kept while submits under way may finish"
    await jobs.drain(within=1)
    assert await store.leases.live_instances() == []


async def test_on_postgresql_a_process_takes_over_the_jobs_of_one_whose_lease_ran_out(
    database_url: str, client: Any, flux: FakeFlux
) -> None:
    """Two job services on one database, as two processes: the first stops renewing (it hangs, or died), and
    once its lease ends the second follows its job, delivers it once, and closes its half-submitted one."""
    first_store = await PostgresStore.open(database_url, instance="first", pool_size=3)
    second_store = await PostgresStore.open(database_url, instance="second", pool_size=3)
    first_replies, second_replies = RecordingReplier(), RecordingReplier()
    try:
        first = Jobs(first_store, client, first_replies, poll_interval=3, job_timeout=600, lease_seconds=0.4)
        second = Jobs(second_store, client, second_replies, poll_interval=3, job_timeout=600, lease_seconds=0.4)
        await first.resume()
        await second.resume()
        await second.settle()  # its start-up claim round is over: the job below is the first's to claim
        flux.hold = True
        job = await first.start(prepare_imagine(ACE, "cat", "flux-dev", None, 1), REPLY)
        assert (job.status, job.owner) == (JobStatus.SUBMITTED, "first")
        cut = await first_store.admit("acedata", prepare_imagine(ACE, "dog", "flux-dev", None, 1), REPLY,
                                      limits=NO_LIMITS)  # fmt: skip
        assert cut is not None
        assert await first_store.claim(10) is not None  # its submit "under way" when the first stops

        await first_store.leases.renew(seconds=60)  # whatever this machine's speed: live while checked
        await second.round()
        assert await second_store.get_job(job.id) == job, "a live lease keeps the job the first's"

        await first_store.leases.renew(seconds=0)  # its last renewal, then it renews no more: the lease ends
        await asyncio.sleep(0.2)  # past the second's next look for orphans
        assert job.task_id is not None
        flux.finish(job.task_id)
        await second.round()  # adopts both, looks the followed task up, delivers
        shown = {j.id: j for j in second_replies.outcomes}
        assert sorted((i, j.status) for i, j in shown.items()) == [
            (job.id, JobStatus.SUCCEEDED),
            (cut.id, JobStatus.FAILED),
        ]
        assert shown[cut.id].error_message == RESTARTED_DURING_SUBMIT
        assert first_replies.outcomes == []
        current = await second_store.get_job(job.id)
        assert current is not None
        assert (current.owner, current.delivered_at is not None) == ("second", True)

        await first.round()  # the first wakes up: the job is not its to finish or show any more
        assert first_replies.outcomes == []
        assert len(second_replies.outcomes) == 2
    finally:
        await second_store.close()
        await first_store.close()
