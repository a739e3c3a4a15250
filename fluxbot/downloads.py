"""Fetching a finished job's images for upload: redirects only to public addresses, within the upload limit,
image bytes only. What cannot be fetched so is shown from its link instead (delivery.py decides). Images already
downloaded (kept because the provider's links expire) are taken as they are, under the same checks."""

from __future__ import annotations

import asyncio
import ipaddress
import logging
import socket
from collections.abc import Mapping, Sequence

import aiohttp
from aiohttp.abc import AbstractResolver
from yarl import URL

from fluxbot.jobs.lifecycle import Job

log = logging.getLogger(__name__)

#: Redirects followed when downloading one image; each one's target must be a public address.
MAX_REDIRECTS = 3
_REDIRECT_STATUSES = frozenset({301, 302, 303, 307, 308})
_SIGNATURES = ((b"\x89PNG\r\n\x1a\n", "png"), (b"\xff\xd8\xff", "jpg"), (b"GIF8", "gif"))


class ImageFetcher:
    """Downloads images over one HTTP session, each within one deadline for all its redirects."""

    def __init__(
        self, session: aiohttp.ClientSession, *, timeout: float = 30.0, resolver: AbstractResolver | None = None
    ) -> None:
        self._session = session
        self._timeout = timeout
        self._resolver = resolver  # judges redirect targets; a ThreadedResolver (getaddrinfo) unless given

    async def fetch_all(
        self, job: Job, urls: Sequence[str], limit: int, *, kept: Mapping[str, bytes] | None = None
    ) -> tuple[tuple[str, bytes], ...] | None:
        """The images at `urls` as (file name, bytes), named `flux-<job>-<n>.<ext>`, taken from `kept` (by URL) when
        it has them; None (logged) when any cannot be fetched within `limit` bytes."""
        known = kept or {}
        try:
            fetches = (self._fetch(job, i, url, limit, known.get(url)) for i, url in enumerate(urls))
            return tuple(await asyncio.gather(*fetches))
        except _DownloadFailed as exc:
            log.warning("job %d: image download failed (%s)", job.id, exc)
            return None

    async def _fetch(self, job: Job, index: int, url: str, limit: int, kept: bytes | None) -> tuple[str, bytes]:
        name = f"image {index + 1}"
        if kept is not None:
            if len(kept) > limit:
                raise _DownloadFailed(f"{name}: over the {limit // 1048576} MB upload limit")
            data, content_type = kept, "kept"
        else:
            try:
                # One deadline for all the hops together, not one per request.
                async with asyncio.timeout(self._timeout):
                    data, content_type = await self._follow(url, name, limit)
            except (TimeoutError, aiohttp.ClientError) as exc:
                raise _DownloadFailed(f"{name}: {type(exc).__name__}") from None
        extension = image_extension(data[:16])
        if extension is None:
            raise _DownloadFailed(f"{name}: not an image ({content_type})")
        return f"flux-{job.id}-{index + 1}.{extension}", data

    async def _follow(self, url: str, name: str, limit: int) -> tuple[bytes, str]:
        """GET `url`, following up to MAX_REDIRECTS redirects to public addresses; the body and its type."""
        # The provider's own link is trusted (it is what the API returned); where it redirects to is not.
        target: str | URL = url
        for hop in range(MAX_REDIRECTS + 1):
            async with self._session.get(target, allow_redirects=False) as resp:
                if resp.status not in _REDIRECT_STATUSES:
                    return await _read_image(resp, name, limit)
                if hop == MAX_REDIRECTS:
                    break
                target = await self._redirect_target(resp, name)
        raise _DownloadFailed(f"{name}: more than {MAX_REDIRECTS} redirects")

    async def _redirect_target(self, resp: aiohttp.ClientResponse, name: str) -> URL:
        location = resp.headers.get(aiohttp.hdrs.LOCATION)
        if not location:
            raise _DownloadFailed(f"{name}: HTTP {resp.status} without a Location")
        try:
            target = resp.url.join(URL(location)).with_fragment(None)
        except ValueError:
            raise _DownloadFailed(f"{name}: a redirect to a malformed address") from None
        if self._resolver is None:
            self._resolver = aiohttp.ThreadedResolver()
        reason = await redirect_refusal(target, self._resolver)
        if reason is not None:
            # The origin only: a signed link's query string is a credential.
            raise _DownloadFailed(f"{name}: redirect to {_origin(target)} refused, {reason}")
        return target


async def _read_image(resp: aiohttp.ClientResponse, name: str, limit: int) -> tuple[bytes, str]:
    if resp.status != 200:
        raise _DownloadFailed(f"{name}: HTTP {resp.status}")
    # Image hosts often say application/octet-stream, so the bytes decide (in _fetch); an HTML or JSON answer
    # (an error page served with 200) is refused before its body is read.
    if not resp.content_type.startswith("image/") and resp.content_type not in _BINARY_TYPES:
        raise _DownloadFailed(f"{name}: not an image ({resp.content_type})")
    data = bytearray()
    async for chunk in resp.content.iter_chunked(64 * 1024):
        data += chunk
        if len(data) > limit:
            raise _DownloadFailed(f"{name}: over the {limit // 1048576} MB upload limit")
    return bytes(data), resp.content_type


async def redirect_refusal(target: URL, resolver: AbstractResolver) -> str | None:
    """Why a download may not follow a redirect to `target`, or None when it may (a public http(s) address).

    A host name is refused when any address it resolves to is not public: the connection may use any of them.
    """
    if target.scheme not in ("http", "https"):
        return f"the scheme {target.scheme or '(none)'!r} is not http or https"
    host = target.raw_host
    if not host:
        return "it names no host"
    try:
        literal = ipaddress.ip_address(host)
    except ValueError:
        pass
    else:
        kind = _not_public(literal)
        return None if kind is None else f"{host} is {kind}"
    try:
        found = await resolver.resolve(host, target.port or 0, family=socket.AF_UNSPEC)
    except OSError as exc:
        return f"{host} does not resolve ({type(exc).__name__})"
    if not found:
        return f"{host} does not resolve"
    for result in found:
        try:
            address = ipaddress.ip_address(result["host"])
        except ValueError:
            return f"{host} resolves to an address that cannot be judged"
        kind = _not_public(address)
        if kind is not None:
            return f"{host} resolves to {address}, {kind}"
    return None


def _not_public(address: ipaddress.IPv4Address | ipaddress.IPv6Address) -> str | None:
    """What kind of non-public address `address` is, or None when it is a public one."""
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        address = address.ipv4_mapped
    kinds = (
        (address.is_unspecified, "an unspecified address"),
        (address.is_loopback, "a loopback address"),
        (address.is_link_local, "a link-local address"),
        (address.is_multicast, "a multicast address"),
        (address.is_reserved, "a reserved address"),
        (address.is_private, "a private address"),
        (not address.is_global, "not a public address"),
    )
    return next((kind for matches, kind in kinds if matches), None)


def _origin(url: URL) -> str:
    return str(url.origin()) if url.absolute and url.host else "an address without a host"


_BINARY_TYPES = frozenset({"application/octet-stream", "binary/octet-stream"})


def image_extension(head: bytes) -> str | None:
    """The file extension for image bytes starting with `head`, or None when they are not an image."""
    if head[:4] == b"RIFF" and head[8:12] == b"WEBP":
        return "webp"
    return next((ext for magic, ext in _SIGNATURES if head.startswith(magic)), None)


class _DownloadFailed(Exception):
    """An image could not be downloaded within the limits."""
