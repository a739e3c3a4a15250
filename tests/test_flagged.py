"""Images the provider flagged (fal's has_nsfw_concepts) are shown as spoilers, whatever the server chose."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from typing import Any, cast

import aiohttp
import discord
import pytest

from fluxbot import render
from fluxbot.delivery import Delivery, _Message
from fluxbot.jobs.lifecycle import Job, JobStatus
from fluxbot.providers.base import Image
from tests.test_delivery import ImageHost
from tests.test_render import job


class Recorded(Delivery):
    """The real Delivery, whose last step (the edit on Discord) only records the message."""

    def __init__(self, session: aiohttp.ClientSession, **options: Any) -> None:
        super().__init__(cast("discord.Client", None), session, **options)
        self.messages: list[_Message] = []

    async def _deliver(self, job: Job, made: Callable[[Job], _Message]) -> str:
        self.messages.append(made(job))
        return "interaction"


@pytest.fixture
async def images() -> AsyncIterator[ImageHost]:
    host = ImageHost()
    await host.start()
    yield host
    await host.close()


def result(host: ImageHost, *, flagged: bool) -> Job:
    pictures = (Image(f"{host.base}/image.png?n=1", 1, flagged=flagged), Image(f"{host.base}/image.png?n=2", 2))
    return job(status=JobStatus.SUCCEEDED, images=pictures, count=2, finished_at=1040.0)


async def test_a_flagged_image_makes_the_result_spoilers_on_a_server_that_chose_none(images: ImageHost) -> None:
    async with aiohttp.ClientSession() as session:
        delivery = Recorded(session)  # the server's choice: never spoilers
        await delivery.show_outcome(result(images, flagged=True))
        await delivery.show_outcome(result(images, flagged=False))
    flagged, plain = delivery.messages
    assert [name for name, _ in flagged.files] == ["SPOILER_flux-7-1.png", "SPOILER_flux-7-2.png"]
    assert [embed.image.url for embed in flagged.embeds] == [None], "no embed shows an image"
    fields = {f.name: str(f.value) for f in flagged.embeds[0].fields}
    assert fields["Images"].startswith("The image provider flagged this result as possibly sensitive")
    assert fields["Originals"].startswith("||"), "the links are behind spoiler marks too"
    assert [name for name, _ in plain.files] == ["flux-7-1.png", "flux-7-2.png"], "unflagged: as the server chose"
    assert render.flagged(result(images, flagged=True))
    assert not render.flagged(result(images, flagged=False))
