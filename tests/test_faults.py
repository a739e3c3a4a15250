"""Issue 10's faults, each against the fake providers and a real SQLite file: no job slows or loses another."""

from __future__ import annotations

import asyncio
import inspect
import time
from collections.abc import AsyncIterator, Sequence
from typing import Any, cast

import aiohttp
import pytest

from fluxbot.catalog import PROVIDERS
from fluxbot.config import Secret
from fluxbot.jobs.durations import Estimate
from fluxbot.jobs.lifecycle import CallbackOutcome, FailureKind, Job, JobStatus, JobTask
from fluxbot.jobs.requests import InvalidRequest, prepare_imagine
from fluxbot.jobs.service import Jobs
from fluxbot.jobs.tracker import HINT_GAP_SECONDS
from fluxbot.providers.kie import KieFlux
from fluxbot.storage import Store, StoreUnavailable
from tests.conftest import earlier_run
from tests.doubles import Clock, RecordingReplier
from tests.fakes.flux_api import FakeFlux
from tests.fakes.kie_api import FakeKie
from tests.test_jobs import REPLY

ACE, KIE = PROVIDERS["acedata"], PROVIDERS["kie"]


class FlakyStore:
    """The real store, except that the named writes fail ("disk I/O error") while `broken` holds them."""

    def __init__(self, store: Store, *broken: str) -> None:
        self._store = store
        self.broken = set(broken)
        self.attempts: dict[str, int] = {}

    def __getattr__(self, name: str) -> Any:
        real = getattr(self._store, name)
        if not inspect.iscoroutinefunction(real):
            return real

        async def call(*args: Any, **kwargs: Any) -> Any:
            self.attempts[name] = self.attempts.get(name, 0) + 1
            if name in self.broken:
                raise StoreUnavailable("the database could not be written: disk I/O error")
            return await real(*args, **kwargs)

        return call


async def until(condition: Any, what: str, seconds: float = 5.0) -> None:
    deadline = time.monotonic() + seconds
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        await asyncio.sleep(0.01)


def imagine(prompt: str = "cat", count: int = 1) -> Any:
    return prepare_imagine(ACE, prompt, "flux-dev", None, count)


async def test_a_task_id_the_database_refuses_is_stored_once_it_recovers_and_the_job_is_delivered(
    store: Store, client: Any, replier: RecordingReplier, clock: Clock, flux: FakeFlux
) -> None:
    flaky = FlakyStore(store, "mark_submitted")
    jobs = Jobs(cast("Store", flaky), client, replier, poll_interval=3, job_timeout=600, max_in_flight=1, clock=clock)
    jobs.persistence.delays = (0.01,)
    flux.lookups_before_done = 0
    first = asyncio.create_task(jobs.start(imagine("billed"), REPLY))
    await until(lambda: flaky.attempts.get("mark_submitted", 0) >= 3, "the task id write to be retried")
    assert not jobs.writes_healthy(), "/healthz is red while a job's state cannot be written"
    [stored] = await store.jobs_with_status(JobStatus.PENDING)
    assert replier.outcomes == [], "the member is told nothing false while the task exists"
    second = await jobs.enqueue(imagine("waits"), REPLY, limits=jobs_limits())
    await jobs.attach_reply(second, 1002)
    assert (await store.get_job(second.id)).status is JobStatus.QUEUED, "the billed job keeps its slot"  # type: ignore[union-attr]

    flaky.broken.clear()  # the database recovers
    job = await first
    assert job.status is JobStatus.SUBMITTED
    assert job.task_id == next(iter(flux.tasks))
    assert jobs.writes_healthy()
    for _ in range(3):
        clock.now += 3
        await jobs.round()
    done = await store.get_job(stored.id)
    assert done is not None
    assert (done.status, done.delivered_via) == (JobStatus.SUCCEEDED, "interaction")
    assert len([b for b in flux.submits if b["prompt"] == "billed"]) == 1, "never resent: it could bill twice"


def jobs_limits() -> Any:
    from fluxbot.jobs.service import NO_LIMITS

    return NO_LIMITS


class StuckReplier(RecordingReplier):
    """Discord that never answers one job's delivery until released."""

    def __init__(self, stuck_prompt: str) -> None:
        super().__init__()
        self.stuck_prompt = stuck_prompt
        self.release = asyncio.Event()
        self.delivered_at: dict[int, float] = {}

    async def show_outcome(self, job: Job, *, copies: Sequence[str] = ()) -> str:
        if job.prompt == self.stuck_prompt:
            await self.release.wait()
        self.delivered_at[job.id] = time.time()
        return await super().show_outcome(job, copies=copies)


async def test_a_delivery_stuck_for_25_s_delays_no_other_delivery_and_lookups_go_on(
    store: Store, client: Any, flux: FakeFlux
) -> None:
    replier = StuckReplier("stuck")
    jobs = Jobs(store, client, replier, poll_interval=0.2, job_timeout=600)
    flux.hold = True  # tasks end when the test says so

    async def submitted(prompt: str) -> Job:
        job = await jobs.enqueue(imagine(prompt), REPLY, limits=jobs_limits())
        await jobs.attach_reply(job, 1001)
        await until(lambda: any(t.request["prompt"] == prompt for t in flux.tasks.values()), f"{prompt} submitted")
        return job

    jobs.start_tracker()
    try:
        stuck, running, fine = [await submitted(prompt) for prompt in ("stuck", "running", "fine")]
        flux.finish(_task_of(flux, "stuck"))
        await until(lambda: replier.edits.count("outcome") == 0 and _delivering(jobs, stuck.id), "the stuck delivery")
        flux.finish(_task_of(flux, "fine"))
        await until(lambda: fine.id in replier.delivered_at, "the other job's delivery", 10)
        done = await store.get_job(fine.id)
        assert done is not None
        assert done.finished_at is not None
        assert replier.delivered_at[fine.id] - done.finished_at < 1.0, "delayed by less than a second"
        looked = len(flux.lookups)
        await asyncio.sleep(1.0)
        assert len(flux.lookups) > looked, "the running job is still looked up while a delivery is stuck"
        assert stuck.id not in replier.delivered_at
        still = await store.get_job(running.id)
        assert still is not None
        assert still.status is JobStatus.SUBMITTED
    finally:
        replier.release.set()
        await jobs.stop_tracker()
    assert stuck.id in replier.delivered_at, "and the stuck one is delivered once Discord answers"


def _task_of(flux: FakeFlux, prompt: str) -> str:
    return next(t.id for t in flux.tasks.values() if t.request["prompt"] == prompt)


def _delivering(jobs: Jobs, job_id: int) -> bool:
    return jobs.replies.showing(job_id)


def _finished(flux: FakeFlux) -> list[Any]:
    return [task for task in flux.tasks.values() if task.response is not None]


@pytest.fixture
async def kie() -> AsyncIterator[FakeKie]:
    fake = FakeKie()
    await fake.start()
    yield fake
    await fake.close()


async def test_one_task_failing_its_lookups_does_not_slow_the_others(
    store: Store, kie: FakeKie, session: aiohttp.ClientSession, replier: RecordingReplier, clock: Clock
) -> None:
    client = KieFlux(session, Secret(kie.token), kie.base_url, request_timeout=5)
    jobs = Jobs(store, client, replier, poll_interval=3, job_timeout=3600, clock=clock)
    kie.hold = True
    failing = await jobs.start(prepare_imagine(KIE, "broken", "flux-kontext-pro", None, 1), REPLY)
    healthy = await jobs.start(prepare_imagine(KIE, "healthy", "flux-kontext-pro", None, 1), REPLY)
    assert failing.task_id is not None
    assert healthy.task_id is not None
    kie.failing_records.add(failing.task_id)
    for _ in range(100):  # 300 s in rounds of 3 s
        clock.now += 3
        await jobs.round()
    assert kie.lookups.count(healthy.task_id) >= 95, "looked up every round, as if nothing failed"
    assert kie.lookups.count(failing.task_id) <= 12, "the failing one backs off on its own"


async def test_a_flood_of_callbacks_for_one_task_makes_one_lookup_every_few_seconds(
    store: Store, client: Any, replier: RecordingReplier, clock: Clock, flux: FakeFlux
) -> None:
    flaky = FlakyStore(store)  # counts what the callbacks ask of the database
    url = "https://b.test/cb/s"
    jobs = Jobs(cast("Store", flaky), client, replier, poll_interval=3, job_timeout=600, callback_url=url, clock=clock)
    flux.hold = True
    job = await jobs.start(imagine(), REPLY)
    assert job.task_id is not None
    for _ in range(20):  # 1,000 callbacks over 2 s, a round every 0.1 s
        for _ in range(50):
            assert await jobs.hint(job.task_id) is CallbackOutcome.ACCEPTED
        clock.now += 0.1
        await jobs.round()
    assert len(flux.lookups) <= 2, f"{len(flux.lookups)} lookups for one task in {HINT_GAP_SECONDS:g} s of callbacks"
    assert flaky.attempts.get("job_for_task", 0) == 0, "answers stay fast: a running task is answered from memory"


async def test_a_failed_delivered_mark_retries_the_mark_not_the_delivery(
    store: Store, client: Any, replier: RecordingReplier, clock: Clock, flux: FakeFlux
) -> None:
    flaky = FlakyStore(store, "mark_delivered")
    jobs = Jobs(cast("Store", flaky), client, replier, poll_interval=3, job_timeout=600, clock=clock)
    jobs.persistence.delays = (0.01,)
    flux.lookups_before_done = 0
    job = await jobs.start(imagine(), REPLY)
    clock.now += 3
    round_ = asyncio.create_task(jobs.round())
    await until(lambda: flaky.attempts.get("mark_delivered", 0) >= 3, "the mark to be retried")
    flaky.broken.clear()
    await round_
    for _ in range(3):
        clock.now += 10
        await jobs.round()
    assert [j.id for j in replier.outcomes] == [job.id], "the reply was edited once"
    done = await store.get_job(job.id)
    assert done is not None
    assert done.delivered_via == "interaction"


@pytest.mark.parametrize(
    "prompt",
    [
        " \u00ad \u180e ",
        "\u115f\u1160\uffa0",
        "\u200b\u200d\u2060",
        "\x00\x1b\x7f",
        "\u3164\u2800",
        "\ufeff \n\t\u200e",
    ],
)
def test_a_prompt_with_nothing_visible_is_refused_before_any_provider_call(prompt: str) -> None:
    with pytest.raises(InvalidRequest, match="The prompt is empty"):
        imagine(prompt)


def test_control_characters_are_removed_from_prompts_that_are_sent() -> None:
    assert imagine("a\x00 white\x1b[31m cat\x07\nsitting").prompt == "a white[31m cat\nsitting"
    assert imagine("👨\u200d👩\u200d👧 family").prompt == "👨\u200d👩\u200d👧 family", "joiners inside emoji stay"


async def test_results_are_capped_at_the_count_asked_for(
    service: Jobs, flux: FakeFlux, store: Store, clock: Clock
) -> None:
    flux.hold = True
    job = await service.start(imagine(count=2), REPLY)
    [task] = flux.tasks.values()
    task.request["count"] = 6  # the fake answers with as many images as the request asks for
    flux.finish(task.id)
    clock.now += 3
    await service.round()
    done = await store.get_job(job.id)
    assert done is not None
    assert task.response is not None
    assert len(task.response["data"]) == 6
    assert len(done.images) == 2


class LandingLate(RecordingReplier):
    """Discord that takes a progress edit at once but applies it only later, whatever the bot does meanwhile."""

    def __init__(self) -> None:
        super().__init__()
        self.landed: list[str] = []

    async def show_progress(
        self,
        job: Job,
        *,
        now: float,
        position: int | None = None,
        estimate: Estimate | None = None,
        provider_place: int | None = None,
    ) -> None:
        async def land() -> None:
            await asyncio.sleep(0.3)
            self.landed.append("progress")

        await asyncio.shield(asyncio.ensure_future(land()))  # sent: cancelling the caller does not stop it

    async def show_outcome(self, job: Job, *, copies: Sequence[str] = ()) -> str:
        self.landed.append("outcome")
        return await super().show_outcome(job, copies=copies)


async def test_a_progress_edit_never_lands_after_the_outcome(
    store: Store, client: Any, clock: Clock, flux: FakeFlux
) -> None:
    replier = LandingLate()
    jobs = Jobs(store, client, replier, poll_interval=3, job_timeout=600, clock=clock)
    jobs.replies.progress_timeout = 0.05
    flux.lookups_before_done = 0
    await jobs.start(imagine(), REPLY)  # its running card is on its way (0.3 s)
    clock.now += 3
    await jobs.round()  # the job ends and its outcome is shown while the card is still on its way
    await asyncio.sleep(0.5)
    await jobs.settle()
    assert "progress" in replier.landed
    assert replier.landed[-1] == "outcome", f"the reply shows the outcome last: {replier.landed}"


@pytest.fixture
def service(store: Store, client: Any, replier: RecordingReplier, clock: Clock) -> Jobs:
    return Jobs(store, client, replier, poll_interval=3, job_timeout=600, clock=clock)


async def test_polling_follows_how_long_this_models_jobs_take(
    service: Jobs, flux: FakeFlux, store: Store, clock: Clock, replier: RecordingReplier
) -> None:
    service.durations.load("acedata", "flux-dev", [float(s) for s in range(8, 13)] * 4)  # 8 to 12 s before
    flux.hold = True
    job = await service.start(imagine(), REPLY)
    assert job.task_id is not None
    [usual] = replier.estimates
    assert usual is not None, "the running card says when this model's jobs are usually ready"
    assert (usual.early, usual.typical, usual.late) == (8.0, 10.0, 12.0)
    for _ in range(14):  # 7 s in rounds of 0.5 s
        clock.now += 0.5
        await service.round()
    assert flux.lookups == [], "no lookup before the model's jobs usually end"
    clock.now += 2.0  # 9 s: the task ends
    flux.finish(job.task_id)
    for _ in range(4):
        clock.now += 0.5
        await service.round()
    done = await store.get_job(job.id)
    assert done is not None
    assert done.delivered_at is not None, "seen within two seconds of its end"
    assert len(flux.lookups) <= 3


async def test_a_lost_callback_is_noticed_within_a_few_seconds(
    store: Store, client: Any, replier: RecordingReplier, clock: Clock, flux: FakeFlux
) -> None:
    url = "https://bot.test/callbacks/flux/s3cret"
    jobs = Jobs(store, client, replier, poll_interval=3, job_timeout=600, callback_url=url, clock=clock)
    jobs.durations.load("acedata", "flux-dev", [float(s) for s in range(2, 21)])  # 2 to 20 s before
    flux.hold = True
    job = await jobs.start(imagine(), REPLY)
    assert job.task_id is not None
    clock.now += 4.0
    flux.finish(job.task_id)  # and its callback never comes
    ended = clock.now
    while not replier.outcomes and clock.now - ended < 30:
        clock.now += 0.5
        await jobs.round()
    assert replier.outcomes, "delivered"
    assert clock.now - ended <= 5.0, f"delivered {clock.now - ended:.1f} s after its task ended"


async def test_a_mostly_empty_call_that_would_likely_find_nothing_waits_a_round(
    service: Jobs, flux: FakeFlux, clock: Clock
) -> None:
    service.durations.load("acedata", "flux-dev", [float(s) for s in range(30, 41)])  # 30 to 40 s before
    service.dispatcher.max_in_flight = 200
    flux.hold = True
    for _ in range(102):
        await service.start(imagine(), REPLY)
    clock.now += 31.5
    await service.round()
    assert sorted(len(body["ids"]) for body in flux.lookups) == [50, 50], "2 tasks that likely run on wait"
    clock.now += 1.4
    await service.round()
    assert {i for body in flux.lookups for i in body["ids"]} == set(flux.tasks), "they go first in the next round"
    assert max(len(body["ids"]) for body in flux.lookups) == 50


async def test_a_callback_for_a_task_not_in_memory_while_the_database_is_down_is_unavailable(
    store: Store, client: Any, replier: RecordingReplier, clock: Clock
) -> None:
    flaky = FlakyStore(store, "job_for_task")
    url = "https://bot.test/callbacks/flux/s3cret"
    jobs = Jobs(cast("Store", flaky), client, replier, poll_interval=3, job_timeout=600, callback_url=url, clock=clock)
    assert await jobs.hint("task-from-before-a-restart") is CallbackOutcome.UNAVAILABLE
    flaky.broken.clear()
    assert await jobs.hint("task-from-before-a-restart") is CallbackOutcome.UNKNOWN


async def test_a_callback_that_comes_while_its_task_is_being_looked_up_is_not_lost(
    store: Store, client: Any, replier: RecordingReplier, clock: Clock, flux: FakeFlux
) -> None:
    url = "https://bot.test/callbacks/flux/s3cret"
    jobs = Jobs(store, client, replier, poll_interval=3, job_timeout=600, callback_url=url, clock=clock)
    flux.hold = True
    job = await jobs.start(imagine(), REPLY)
    assert job.task_id is not None
    assert await jobs.hint(job.task_id) is CallbackOutcome.ACCEPTED
    flux.lookup_delay = 0.3
    looking = asyncio.create_task(jobs.round())
    await until(lambda: len(flux.lookups) == 1, "the lookup to be under way")  # it read the task as running
    flux.finish(job.task_id)
    assert await jobs.hint(job.task_id) is CallbackOutcome.ACCEPTED  # the callback overtakes the answer
    await looking
    assert replier.outcomes == [], "that answer still said running"
    flux.lookup_delay = 0.0
    clock.now += 3  # without a history the next safety-net look would be 30 s away
    await jobs.round()
    assert [j.id for j in replier.outcomes] == [job.id]


async def test_a_finish_the_database_cannot_record_does_not_stop_the_rounds(
    store: Store, client: Any, replier: RecordingReplier, clock: Clock
) -> None:
    flaky = FlakyStore(store)
    jobs = Jobs(cast("Store", flaky), client, replier, poll_interval=3, job_timeout=600, clock=clock)
    jobs.persistence.delays = (0.01,)
    # A job Kie.ai took before the operator switched to Ace Data Cloud, with no Kie key left: it is closed.
    with earlier_run(store):
        queued = await store.admit("kie", imagine(), REPLY, limits=jobs_limits(), now=clock.now)
        assert queued is not None
        await store.claim(10)
        await store.mark_submitted(queued.id, [JobTask(1, "kie-task-1")], now=clock.now)
    await jobs.resume()
    flaky.broken.add("finish")
    await asyncio.wait_for(jobs.tracker.round(), 1.0)  # that write waits for the database on its own
    await until(lambda: flaky.attempts.get("finish", 0) >= 2, "the write to be retried")
    assert not jobs.writes_healthy()
    flaky.broken.clear()
    await jobs.settle()
    assert [j.error_kind for j in replier.outcomes] == [FailureKind.PROVIDER_SWITCHED]
