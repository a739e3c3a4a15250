"""Results whose links expire: downloaded the moment their task is seen ready, kept in the database until the job is
delivered, delivered from there (by any process, also after a restart), then deleted (both engines)."""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import cast

import aiohttp
import discord
import pytest

from fluxbot import catalog
from fluxbot.config import Secret
from fluxbot.delivery import Delivery, DeliveryError
from fluxbot.downloads import ImageFetcher
from fluxbot.jobs import requests
from fluxbot.jobs.lifecycle import Job, JobStatus, Outcome
from fluxbot.jobs.service import NO_LIMITS, Jobs
from fluxbot.providers.kie import KieFlux
from fluxbot.storage import Store
from tests.conftest import open_store
from tests.doubles import Clock, RecordingReplier
from tests.fakes.kie_api import FakeKie
from tests.fakes.png import make_png
from tests.test_jobs import REPLY

KIE = catalog.PROVIDERS["kie"]
#: Kie, with links that expire as BFL's do (Kie's own live 14 days).
EXPIRING = replace(KIE, results_expire=True)


@dataclass
class UploadingReplier(RecordingReplier):
    """Records each outcome, the files a real Delivery would upload for it (downloads included), and what the fake
    provider had served and been asked for when the outcome was shown and after its files were made."""

    delivery: Delivery | None = None
    kie: FakeKie | None = None
    uploads_made: list[tuple[tuple[str, bytes], ...] | None] = field(default_factory=list)
    served_before: list[list[str]] = field(default_factory=list)
    asked_during: list[list[str]] = field(default_factory=list)

    async def show_outcome(self, job: Job, *, copies: Sequence[str] = ()) -> str:
        assert self.delivery is not None
        assert self.kie is not None
        self.served_before.append(list(self.kie.file_downloads))
        asked = len(self.kie.file_requests)
        self.uploads_made.append(await self.delivery._download(job))
        self.asked_during.append(self.kie.file_requests[asked:])
        return await super().show_outcome(job, copies=copies)


@pytest.fixture
async def kie() -> AsyncIterator[FakeKie]:
    fake = FakeKie()
    await fake.start()
    yield fake
    await fake.close()


def jobs_on(store: Store, kie: FakeKie, session: aiohttp.ClientSession, clock: Clock, info: catalog.ProviderInfo,
            replier: UploadingReplier) -> Jobs:  # fmt: skip
    client = KieFlux(session, Secret(kie.token), kie.base_url)
    jobs = Jobs(store, client, replier, poll_interval=3, job_timeout=600, clock=clock, infos={"kie": info},
                fetcher=ImageFetcher(session))  # fmt: skip
    replier.delivery, replier.kie = Delivery(cast("discord.Client", None), session, kept=jobs.kept_images), kie
    return jobs


async def until_shown(jobs: Jobs, clock: Clock, replier: RecordingReplier) -> Job:
    for _ in range(5):
        clock.now += 3
        await jobs.round()
        if replier.outcomes:
            break
    [job] = replier.outcomes
    return job


async def test_images_are_downloaded_as_their_task_ends_and_delivered_from_the_database(
    store: Store, kie: FakeKie, session: aiohttp.ClientSession, clock: Clock
) -> None:
    kie.files_once = True  # a second download of a file finds the link expired
    replier = UploadingReplier()
    jobs = jobs_on(store, kie, session, clock, EXPIRING, replier)
    job = await jobs.start(requests.prepare_imagine(EXPIRING, "two kites", "flux-kontext-pro", None, 2), REPLY)

    done = await until_shown(jobs, clock, replier)
    assert done.status is JobStatus.SUCCEEDED
    files = sorted(f"/files/{task}/0.png" for task in kie.tasks)
    assert sorted(replier.served_before[0]) == files, "each image was downloaded before the outcome was shown"
    assert sorted(kie.file_downloads) == files, "once each"
    assert replier.asked_during == [[]], "the delivery asked the provider for nothing"
    [uploaded] = replier.uploads_made
    assert uploaded == ((f"flux-{job.id}-1.png", make_png(24, 16)), (f"flux-{job.id}-2.png", make_png(24, 16))), (
        "the upload comes from the kept bytes: the provider's links had expired by then"
    )
    async with session.get(done.images[0].url) as expired:
        assert expired.status == 404, "the fake's link is gone: a download at delivery time would have failed"
    assert await store.kept.images(job.id) == {}, "deleted once delivered"
    delivered = await store.get_job(job.id)
    assert delivered is not None
    assert delivered.delivered_at is not None


async def test_after_a_restart_the_kept_images_are_delivered(
    store: Store,
    store_location: tuple[str, Path | str],
    kie: FakeKie,
    session: aiohttp.ClientSession,
    clock: Clock,
) -> None:
    kie.files_once = True
    first = UploadingReplier(failures=[DeliveryError("Discord is down", retryable=True)] * 10)
    jobs = jobs_on(store, kie, session, clock, EXPIRING, first)
    job = await jobs.start(requests.prepare_imagine(EXPIRING, "a kite", "flux-kontext-pro", None, 1), REPLY)
    for _ in range(3):
        clock.now += 3
        await jobs.round()
    assert first.outcomes == [], "its delivery failed"
    await jobs.stop_tracker()
    await jobs.drain(within=1.0)  # the bot stops before the retry, giving its lease up
    await store.close()

    again = await open_store(*store_location)
    try:
        replier = UploadingReplier()
        restarted = jobs_on(again, kie, session, clock, EXPIRING, replier)
        await restarted.resume()
        await restarted.settle()
        [shown] = replier.outcomes
        assert shown.id == job.id
        assert replier.asked_during == [[]], "the provider's link had expired: the kept bytes were uploaded"
        assert replier.uploads_made == [((f"flux-{job.id}-1.png", make_png(24, 16)),)]
        assert await again.kept.images(job.id) == {}
    finally:
        await again.close()


async def test_a_provider_whose_links_last_is_downloaded_at_delivery_only(
    store: Store, kie: FakeKie, session: aiohttp.ClientSession, clock: Clock
) -> None:
    replier = UploadingReplier()
    jobs = jobs_on(store, kie, session, clock, KIE, replier)
    await jobs.start(requests.prepare_imagine(KIE, "one kite", "flux-kontext-pro", None, 1), REPLY)
    done = await until_shown(jobs, clock, replier)
    assert replier.uploads_made[0] is not None
    assert replier.served_before == [[]], "nothing is downloaded before the outcome is shown"
    assert len(replier.asked_during[0]) == len(kie.file_downloads) == 1, "once, by the delivery: nothing is kept"
    assert await jobs.kept_images(done) == {}


async def test_kept_images_outlive_the_process_and_go_with_the_delivery(
    store: Store, store_location: tuple[str, Path | str]
) -> None:
    job = await store.admit("kie", requests.prepare_imagine(KIE, "x", "flux-kontext-pro", None, 2), REPLY,
                            limits=NO_LIMITS)  # fmt: skip
    assert job is not None
    kept = {"https://img.test/1.png": make_png(4, 4), "https://img.test/2.png": b"\x00\xffbinary"}
    await store.kept.keep(job.id, kept, now=10.0)
    await store.kept.keep(job.id, {"https://img.test/1.png": make_png(5, 5)}, now=11.0)  # a task seen ready twice
    await store.close()

    again = await open_store(*store_location)
    try:
        assert await again.kept.images(job.id) == {**kept, "https://img.test/1.png": make_png(5, 5)}
        assert await again.kept.images(job.id + 1) == {}
        assert await again.claim(10) is not None
        await again.finish(job.id, Outcome(JobStatus.SUCCEEDED))
        assert await again.mark_delivered(job.id, "interaction")
        assert await again.kept.images(job.id) == {}
    finally:
        await again.close()
