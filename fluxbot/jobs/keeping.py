"""Keeping results whose links expire: a task's images are downloaded the moment it is seen ready, before anything
else is done with its job, and kept in the database until the job is delivered.

Some providers' result links live minutes only (BFL: 10 minutes; fal's queue keeps large results for minutes):
a delivery that waited for Discord, a retry or a restart could find them gone. Kept in the database, the images
reach the member from any process, also after a restart; delivery uploads them from there.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence

from fluxbot.delivery import DEFAULT_UPLOAD_LIMIT
from fluxbot.downloads import ImageFetcher
from fluxbot.jobs.lifecycle import Job
from fluxbot.jobs.shared import Shared
from fluxbot.providers.base import Image

log = logging.getLogger(__name__)


class Keeper:
    """Downloads and keeps the images of providers whose links expire (`ProviderInfo.results_expire`)."""

    def __init__(self, shared: Shared, fetcher: ImageFetcher | None) -> None:
        self._shared = shared
        self._fetcher = fetcher

    def keeps(self, job: Job) -> bool:
        """True when the job's images are kept (its provider's links expire)."""
        info = self._shared.infos.get(job.provider)
        return self._fetcher is not None and info is not None and info.results_expire

    async def keep(self, job: Job, images: Sequence[Image]) -> None:
        """Download a finished task's images now and keep them until the job is delivered (nothing when its
        provider's links do not expire). One that cannot be downloaded is logged, and shown from its link."""
        if not images or not self.keeps(job):
            return
        assert self._fetcher is not None
        limit = job.reply.upload_limit or DEFAULT_UPLOAD_LIMIT
        files = await self._fetcher.fetch_all(job, [image.url for image in images], limit)
        if files is None:
            log.warning("job %d: its images could not be kept before the provider's links expire", job.id)
            return
        kept = {image.url: data for image, (_, data) in zip(images, files, strict=True)}
        now = self._shared.clock()
        await self._shared.persistence.write(
            f"job {job.id}: {len(kept)} image(s) kept", lambda: self._shared.store.kept.keep(job.id, kept, now=now)
        )
        log.info("job %d: %d image(s) downloaded and kept before the provider's links expire", job.id, len(kept))

    async def kept(self, job: Job) -> Mapping[str, bytes]:
        """The job's kept images by URL ({} without a read when its provider's links do not expire)."""
        return await self._shared.store.kept.images(job.id) if self.keeps(job) else {}
