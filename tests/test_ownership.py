"""Ownership in the job core: leases, taking over another run's jobs, and callbacks for jobs owned elsewhere."""

from __future__ import annotations

from typing import Any, cast

from fluxbot.jobs.lifecycle import CallbackOutcome, JobStatus
from fluxbot.jobs.requests import prepare_imagine
from fluxbot.jobs.service import NO_LIMITS, Jobs
from fluxbot.storage import Signal, Store
from fluxbot.storage.base import SignalHandler
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
    task_id = await client.submit(prepare_imagine(ACE, "cat", "flux-dev", None, 1))
    with earlier_run(store):  # stands for another, live process here
        await store.renew_lease(seconds=600)  # live: on a shared database its jobs are not orphans
        job = await store.admit("acedata", prepare_imagine(ACE, "cat", "flux-dev", None, 1), REPLY, limits=NO_LIMITS)
        assert job is not None
        await store.claim(10)
        await store.mark_submitted(job.id, task_id)

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
    assert await store.live_instances() == [store.instance]
    await jobs.stop_tracker(within=1)
    assert await store.live_instances() == [store.instance], "kept while submits under way may finish"
    await jobs.drain(within=1)
    assert await store.live_instances() == []
