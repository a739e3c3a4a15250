"""Result downloads: redirects go to public addresses only, within one deadline; no more images than asked for."""

from __future__ import annotations

import asyncio
import ipaddress
import logging
import socket
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field, replace
from typing import Any, cast

import aiohttp
import discord
import pytest
from aiohttp import web
from aiohttp.abc import AbstractResolver, ResolveResult
from yarl import URL

from fluxbot import render, render_details
from fluxbot.delivery import Delivery
from fluxbot.downloads import MAX_REDIRECTS, redirect_refusal
from fluxbot.jobs.lifecycle import Job, JobStatus
from fluxbot.providers.base import Image
from tests.fakes.png import make_png
from tests.test_render import job

PNG = make_png(8, 8)
#: A public address (example.com's) that nothing in these tests ever connects to.
PUBLIC = "93.184.216.34"
#: Names the test session connects to on loopback, whatever the resolver given to the Delivery says of them.
LOOPBACK_NAMES = ("cdn.example", "intranet.example")


class MapResolver(AbstractResolver):
    """Answers from a table, never from the network; an unknown name does not resolve."""

    def __init__(self, table: dict[str, list[str]]) -> None:
        self.table = table
        self.asked: list[str] = []

    async def resolve(
        self, host: str, port: int = 0, family: socket.AddressFamily = socket.AF_INET
    ) -> list[ResolveResult]:
        self.asked.append(host)
        if host not in self.table:
            raise OSError(f"{host} is not in the table")
        found: list[ResolveResult] = []
        for address in self.table[host]:
            kind = socket.AF_INET6 if ":" in address else socket.AF_INET
            found.append(ResolveResult(hostname=host, host=address, port=port, family=kind, proto=0, flags=0))
        return found

    async def close(self) -> None:
        pass


@dataclass
class ImageHost:
    """A loopback web server that serves images and redirects; `hits` counts requests per path."""

    base: str = ""
    hits: dict[str, int] = field(default_factory=dict)
    runner: web.AppRunner | None = None

    async def start(self, host: str = "127.0.0.1") -> None:
        app = web.Application()
        app.router.add_get("/image.png", self._image)
        app.router.add_get("/big.png", self._big)
        app.router.add_get("/to", self._to)
        app.router.add_get("/hops/{n}", self._hops)
        app.router.add_get("/slow/{n}", self._slow)
        self.runner = web.AppRunner(app, access_log=None, shutdown_timeout=0.5)
        await self.runner.setup()
        await web.TCPSite(self.runner, host, 0).start()
        port = self.runner.addresses[0][1]
        self.base = f"http://{'[' + host + ']' if ':' in host else host}:{port}"

    @property
    def port(self) -> int:
        return URL(self.base).port or 0

    def _count(self, request: web.Request) -> None:
        self.hits[request.path] = self.hits.get(request.path, 0) + 1

    async def _image(self, request: web.Request) -> web.Response:
        self._count(request)
        return web.Response(body=PNG, content_type="image/png")

    async def _big(self, request: web.Request) -> web.Response:
        self._count(request)
        return web.Response(body=PNG + b"\0" * 200_000, content_type="image/png")

    async def _to(self, request: web.Request) -> web.Response:
        self._count(request)
        raise web.HTTPFound(request.query["url"])

    async def _hops(self, request: web.Request) -> web.Response:
        self._count(request)
        left = int(request.match_info["n"])
        raise web.HTTPFound(f"{left - 1}?sig=secret" if left > 1 else "/image.png")  # relative, as hosts do

    async def _slow(self, request: web.Request) -> web.Response:
        self._count(request)
        await asyncio.sleep(0.3)
        left = int(request.match_info["n"])
        raise web.HTTPFound(f"{left - 1}" if left > 1 else "/image.png")

    async def close(self) -> None:
        if self.runner is not None:
            await self.runner.cleanup()


@pytest.fixture
async def images() -> AsyncIterator[ImageHost]:
    host = ImageHost()
    await host.start()
    yield host
    await host.close()


@pytest.fixture
async def target() -> AsyncIterator[ImageHost]:
    """Another loopback server: what a refused redirect points at, so it must never be reached."""
    host = ImageHost()
    await host.start()
    yield host
    await host.close()


class LoopbackOnly(aiohttp.TCPConnector):
    """Refuses any connection beyond loopback (as a download that followed a bad redirect would make)."""

    async def connect(self, req: Any, traces: Any, timeout: Any) -> Any:
        host = req.url.raw_host or ""
        if host not in LOOPBACK_NAMES and not ipaddress.ip_address(host).is_loopback:
            raise AssertionError(f"the download tried to reach {host}")
        return await super().connect(req, traces, timeout)


@pytest.fixture
async def session() -> AsyncIterator[aiohttp.ClientSession]:
    # The bot's own connections reach `cdn.example` and `intranet.example` on loopback, where the test servers
    # listen; whether a redirect may go there is judged by the resolver each test gives the Delivery.
    names = {name: ["127.0.0.1"] for name in LOOPBACK_NAMES}
    async with aiohttp.ClientSession(connector=LoopbackOnly(resolver=MapResolver(names))) as s:
        yield s


def delivery(session: aiohttp.ClientSession, *, timeout: float = 5.0, **options: Any) -> Delivery:
    """A Delivery that only downloads: it never reaches Discord, so it needs no client."""
    return Delivery(cast("discord.Client", None), session, download_timeout=timeout, **options)


def finished(*urls: str, count: int = 1, **changes: Any) -> Job:
    pictures = tuple(Image(url=u, seed=i) for i, u in enumerate(urls))
    return job(status=JobStatus.SUCCEEDED, images=pictures, count=count, finished_at=1040.0, **changes)


def download_log(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [r.getMessage() for r in caplog.records if "image download failed" in r.getMessage()]


# -- redirects that are refused -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("where", "reason"),
    [
        (lambda t: f"{t.base}/image.png?sig=secret", "127.0.0.1 is a loopback address"),
        (lambda t: f"http://127.0.0.2:{t.port}/image.png", "127.0.0.2 is a loopback address"),
        (lambda t: "http://10.0.0.1/image.png?sig=secret", "10.0.0.1 is a private address"),
        (lambda t: f"http://[::1]:{t.port}/image.png", "::1 is a loopback address"),
        (lambda t: "http://169.254.169.254/latest/meta-data", "169.254.169.254 is a link-local address"),
    ],
    ids=["loopback-other-port", "loopback-other-address", "private", "ipv6-loopback", "cloud-metadata"],
)
async def test_a_redirect_to_a_non_public_address_is_a_failed_download(
    images: ImageHost,
    target: ImageHost,
    session: aiohttp.ClientSession,
    caplog: pytest.LogCaptureFixture,
    where: Callable[[ImageHost], str],
    reason: str,
) -> None:
    caplog.set_level(logging.INFO, logger="fluxbot.delivery")
    redirect = f"{images.base}/to?url={where(target)}"

    assert await delivery(session)._download(finished(redirect)) is None

    assert images.hits == {"/to": 1}, "the provider's own link is fetched"
    assert target.hits == {}, "the redirect is not followed"
    [line] = download_log(caplog)
    assert f"image 1: redirect to {URL(where(target)).origin()} refused, {reason}" in line
    assert "secret" not in line, "the query string stays out of the log"
    assert "?" not in line


async def test_a_redirect_to_a_name_that_resolves_to_a_private_address_is_refused(
    images: ImageHost, session: aiohttp.ClientSession, caplog: pytest.LogCaptureFixture
) -> None:
    # One public address is not enough: the connection could use any of them.
    resolver = MapResolver({"intranet.example": [PUBLIC, "10.1.2.3"]})
    redirect = f"{images.base}/to?url=http://intranet.example:{images.port}/image.png?sig=secret"

    assert await delivery(session, resolver=resolver)._download(finished(redirect)) is None

    assert resolver.asked == ["intranet.example"]
    assert images.hits == {"/to": 1}, "the name's server (this one, on loopback) is never asked for the image"
    [line] = download_log(caplog)
    assert f"redirect to http://intranet.example:{images.port} refused" in line
    assert "intranet.example resolves to 10.1.2.3, a private address" in line
    assert "secret" not in line


# -- redirects that are followed, within the limits ---------------------------------------------------------


async def test_a_redirect_to_a_public_address_is_followed(images: ImageHost, session: aiohttp.ClientSession) -> None:
    resolver = MapResolver({"cdn.example": [PUBLIC, "2606:2800:220:1::1"]})
    redirect = f"{images.base}/to?url=http://cdn.example:{images.port}/hops/{MAX_REDIRECTS - 1}"

    files = await delivery(session, resolver=resolver)._download(finished(redirect))

    assert files == (("flux-7-1.png", PNG),)
    assert images.hits == {"/to": 1, "/hops/2": 1, "/hops/1": 1, "/image.png": 1}
    assert resolver.asked == ["cdn.example"] * MAX_REDIRECTS, "every hop is judged"


async def test_more_redirects_than_allowed_fail(
    images: ImageHost, session: aiohttp.ClientSession, caplog: pytest.LogCaptureFixture
) -> None:
    resolver = MapResolver({"cdn.example": [PUBLIC]})
    first = f"http://cdn.example:{images.port}/hops/{MAX_REDIRECTS + 1}"

    assert await delivery(session, resolver=resolver)._download(finished(first)) is None

    assert "image 1: more than 3 redirects" in download_log(caplog)[0]
    assert "/image.png" not in images.hits


async def test_the_byte_limit_holds_after_a_redirect(
    images: ImageHost, session: aiohttp.ClientSession, caplog: pytest.LogCaptureFixture
) -> None:
    resolver = MapResolver({"cdn.example": [PUBLIC]})
    redirect = f"{images.base}/to?url=http://cdn.example:{images.port}/big.png"

    small = finished(redirect, reply=replace(job().reply, upload_limit=100_000))
    assert await delivery(session, resolver=resolver)._download(small) is None

    assert "image 1: over the" in download_log(caplog)[0]
    assert images.hits["/big.png"] == 1


async def test_the_timeout_covers_all_the_hops_together(
    images: ImageHost, session: aiohttp.ClientSession, caplog: pytest.LogCaptureFixture
) -> None:
    # Each hop answers within the timeout (0.3 s of 0.5 s); the three together do not.
    resolver = MapResolver({"cdn.example": [PUBLIC]})
    quick = delivery(session, timeout=0.5, resolver=resolver)

    assert await quick._download(finished(f"http://cdn.example:{images.port}/slow/3")) is None

    assert "image 1: TimeoutError" in download_log(caplog)[0]
    assert "/image.png" not in images.hits


# -- the decision itself ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "url",
    [
        "http://cdn.example/a.png",
        "https://cdn.example:8443/a.png?sig=1",
        f"https://{PUBLIC}/a",
        "http://[2606:4700::1]/",
    ],
)
async def test_public_http_targets_are_allowed(url: str) -> None:
    assert await redirect_refusal(URL(url), MapResolver({"cdn.example": [PUBLIC, "2606:4700::1111"]})) is None


@pytest.mark.parametrize(
    ("url", "reason"),
    [
        ("http://0.0.0.0/", "0.0.0.0 is an unspecified address"),
        ("http://[::]/", ":: is an unspecified address"),
        ("http://192.168.1.1/", "a private address"),
        ("http://172.16.0.1/", "a private address"),
        ("http://[fc00::1]/", "a private address"),
        ("http://100.64.0.1/", "not a public address"),
        ("http://[fe80::1]/", "a link-local address"),
        ("http://224.0.0.1/", "a multicast address"),
        ("http://[ff02::1]/", "a multicast address"),
        ("http://240.0.0.1/", "a reserved address"),
        ("http://[::ffff:127.0.0.1]/", "a loopback address"),
        ("http://mixed.example/", "mixed.example resolves to 127.0.0.1, a loopback address"),
        ("http://six.example/", "six.example resolves to fd00::5, a private address"),
        ("http://unknown.example/", "unknown.example does not resolve"),
        ("http://empty.example/", "empty.example does not resolve"),
        ("file:///etc/passwd", "the scheme 'file' is not http or https"),
        ("ftp://cdn.example/a.png", "the scheme 'ftp' is not http or https"),
    ],
)
async def test_everything_else_is_refused_with_a_reason(url: str, reason: str) -> None:
    table = {"mixed.example": [PUBLIC, "127.0.0.1"], "six.example": ["fd00::5"], "empty.example": []}
    refusal = await redirect_refusal(URL(url), MapResolver(table))
    assert refusal is not None
    assert reason in refusal


async def test_the_default_resolver_refuses_localhost() -> None:
    refusal = await redirect_refusal(URL("http://localhost:8080/"), aiohttp.ThreadedResolver())
    assert refusal is not None
    assert "localhost resolves to" in refusal
    assert "a loopback address" in refusal


# -- no more images than the job asked for ------------------------------------------------------------------


async def test_a_job_given_more_images_than_it_asked_for_shows_and_uploads_only_those(
    images: ImageHost, session: aiohttp.ClientSession
) -> None:
    six = finished(*(f"{images.base}/image.png?n={n}" for n in range(6)), count=2)

    files = await delivery(session)._download(six)
    assert files is not None
    assert [name for name, _ in files] == ["flux-7-1.png", "flux-7-2.png"]
    assert images.hits == {"/image.png": 2}

    for card in (render.final_card(six), render.final_card(six, attachments=[name for name, _ in files])):
        assert len(card) == 2
        assert sum(1 for embed in card if embed.image.url) == 2
        links = {f.name: f.value for f in card[0].fields}["Originals"]
        assert links == f"[1]({images.base}/image.png?n=0) · [2]({images.base}/image.png?n=1)"
    assert {f.name: f.value for f in render_details.details_card(six, locale=None).fields}["Images"] == "2"


@pytest.mark.parametrize(("count", "shown"), [(1, 1), (4, 4), (9, 4)])
def test_never_more_than_four_are_shown(count: int, shown: int) -> None:
    ten = finished(*(f"https://cdn.example/{n}.png" for n in range(10)), count=count)
    assert len(render.final_card(ten)) == shown
    assert len(render.shown_images(ten)) == shown
