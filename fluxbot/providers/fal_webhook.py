"""fal.ai's webhook signatures: Ed25519 over the request id, user id, timestamp and body hash, checked against the
keys fal publishes (its JWKS), which are fetched with a timeout and cached.

Checking a callback is synchronous (`Provider.callback_task_id`), fetching keys is not: the keys are fetched when
the client starts (`FalFlux.check_key`), and in the background when a submit asks for a webhook while they are
getting old; a callback that no cached key verifies schedules one refetch in the background (a key rotation) and is
refused, and fal sends it again (10 times over 2 hours), by when the new keys are in.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import hashlib
import logging
import re
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import aiohttp
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from fluxbot.providers.base import CallbackRefused, valid_task_id

log = logging.getLogger(__name__)

REQUEST_ID = "X-Fal-Webhook-Request-Id"
USER_ID = "X-Fal-Webhook-User-Id"
TIMESTAMP = "X-Fal-Webhook-Timestamp"
SIGNATURE = "X-Fal-Webhook-Signature"
SIGNED_HEADERS = (REQUEST_ID, USER_ID, TIMESTAMP, SIGNATURE)
#: How far a callback's timestamp may be from now (fal: 5 minutes).
SIGNATURE_WINDOW_SECONDS = 300
#: Keys older than this are not used (fal: cache them at most 24 hours).
KEYS_MAX_AGE_SECONDS = 24 * 3600
#: Keys older than this are refetched before a submit that asks for a webhook, so they rarely reach the maximum.
KEYS_REFRESH_AGE_SECONDS = 12 * 3600
#: The fewest seconds between two fetches that callbacks cause: a flood of bad signatures cannot flood fal's JWKS.
REFETCH_PAUSE_SECONDS = 60
_TIMESTAMP_FORM = re.compile(r"[0-9]{1,12}", re.ASCII)
_SIGNATURE_FORM = re.compile(r"[0-9a-fA-F]{128}", re.ASCII)


def header(headers: Mapping[str, str], name: str) -> str:
    """A header's value whatever case the mapping keys it by ("" when it is missing)."""
    value = headers.get(name)
    if value is None:
        lowered = name.lower()
        value = next((v for k, v in headers.items() if k.lower() == lowered), None)
    return value.strip() if isinstance(value, str) else ""


def signed_message(request_id: str, user_id: str, timestamp: str, raw: bytes) -> bytes:
    """What fal signs: request id, user id, timestamp and the hex SHA-256 of the raw body, one per line, UTF-8."""
    text = "\n".join((request_id, user_id, timestamp, hashlib.sha256(raw).hexdigest()))
    # surrogateescape gives back the bytes of a header decoded that way, whatever they are.
    return text.encode("utf-8", "surrogateescape")


def public_keys(jwks: Any) -> tuple[Ed25519PublicKey, ...]:
    """The Ed25519 keys of a JWKS document (`keys[].x`, base64url); keys of other kinds or unreadable ones skipped."""
    entries = jwks.get("keys") if isinstance(jwks, dict) else None
    found: list[Ed25519PublicKey] = []
    for entry in entries if isinstance(entries, list) else []:
        if not isinstance(entry, dict) or not isinstance(entry.get("x"), str):
            continue
        if entry.get("kty", "OKP") != "OKP" or entry.get("crv", "Ed25519") != "Ed25519":
            continue
        text = entry["x"].strip()
        try:
            raw = base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
        except (binascii.Error, ValueError):
            continue
        if len(raw) == 32:
            found.append(Ed25519PublicKey.from_public_bytes(raw))
    return tuple(found)


@dataclass
class SigningKeys:
    """fal's published webhook keys: fetched with a timeout, kept up to 24 hours, refetched when none verifies."""

    session: aiohttp.ClientSession
    url: str
    timeout: float = 10.0
    keys: tuple[Ed25519PublicKey, ...] = ()
    #: time.monotonic() of the fetch the keys come from (None: never fetched).
    fetched_at: float | None = None
    fetches: int = 0
    #: time.monotonic() of the last refetch scheduled in the background.
    _last_refetch: float | None = field(default=None, repr=False)
    _lock: asyncio.Lock = field(default_factory=asyncio.Lock, repr=False)
    _pending: asyncio.Task[bool] | None = field(default=None, repr=False)

    def age(self) -> float | None:
        """Seconds since the keys were fetched; None when there are none."""
        return None if self.fetched_at is None or not self.keys else time.monotonic() - self.fetched_at

    def usable(self) -> bool:
        """True when there are keys no older than the 24 hours fal allows."""
        age = self.age()
        return age is not None and age <= KEYS_MAX_AGE_SECONDS

    async def refresh(self) -> bool:
        """Fetch the keys now (one fetch at a time); True when keys were loaded. Failures are logged, never raised."""
        async with self._lock:
            self.fetches += 1
            try:
                async with self.session.get(self.url, timeout=aiohttp.ClientTimeout(total=self.timeout)) as resp:
                    document = await resp.json(content_type=None) if resp.status == 200 else None
                    status = resp.status
            except (aiohttp.ClientError, TimeoutError, ValueError, RuntimeError) as exc:  # RuntimeError: session closed
                log.warning("cannot fetch fal.ai's webhook keys (FAL_JWKS_URL): %s", type(exc).__name__)
                return False
            keys = public_keys(document)
            if not keys:
                log.warning("fal.ai's webhook keys (FAL_JWKS_URL) answered HTTP %s without an Ed25519 key", status)
                return False
            self.keys, self.fetched_at = keys, time.monotonic()
            return True

    def refresh_if_old(self) -> None:
        """Refetch the keys in the background when there are none or they are past the refresh age (called before
        a submit that asks for a webhook, which does not wait for it)."""
        age = self.age()
        if age is None or age > KEYS_REFRESH_AGE_SECONDS:
            self.refetch_soon()

    def refetch_soon(self) -> None:
        """Schedule one refetch in the background, unless one runs or one was scheduled in the last minute."""
        if self._pending is not None and not self._pending.done():
            return
        if self._last_refetch is not None and time.monotonic() - self._last_refetch < REFETCH_PAUSE_SECONDS:
            return
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:
            return  # no loop: called outside the bot (the next check_key or submit fetches them)
        self._last_refetch = time.monotonic()
        self._pending = loop.create_task(self.refresh(), name="fal webhook keys")

    async def settled(self) -> None:
        """Wait for a refetch `refetch_soon` started (for tests and shutdown)."""
        if self._pending is not None:
            await asyncio.shield(self._pending)

    def verifies(self, message: bytes, signature: bytes) -> bool:
        """True when any cached key verifies `signature` over `message`."""
        for key in self.keys:
            try:
                key.verify(signature, message)
            except InvalidSignature:
                continue
            return True
        return False


def check_signature(keys: SigningKeys, raw: bytes, headers: Mapping[str, str], *, now: float | None = None) -> str:
    """The request id a callback is signed for; CallbackRefused unless fal's four steps all pass."""
    values = {name: header(headers, name) for name in SIGNED_HEADERS}
    missing = [name for name, value in values.items() if not value]
    if missing:
        raise CallbackRefused(f"the callback lacks fal.ai's signature header {missing[0]}")
    request_id, user_id, timestamp, signature = (values[name] for name in SIGNED_HEADERS)
    if not valid_task_id(request_id):
        raise CallbackRefused(f"the callback's {REQUEST_ID} is not a request id")
    if not _TIMESTAMP_FORM.fullmatch(timestamp):
        raise CallbackRefused(f"the callback's {TIMESTAMP} is not a number of Unix seconds")
    if abs((time.time() if now is None else now) - int(timestamp)) > SIGNATURE_WINDOW_SECONDS:
        raise CallbackRefused("the callback's signature is more than 5 minutes old (or ahead of this clock)")
    if not _SIGNATURE_FORM.fullmatch(signature):
        raise CallbackRefused(f"the callback's {SIGNATURE} is not the hex of an Ed25519 signature")
    if not keys.usable():
        keys.refetch_soon()
        raise CallbackRefused("fal.ai's webhook keys are not loaded yet; fal sends the callback again later")
    if not keys.verifies(signed_message(request_id, user_id, timestamp, raw), bytes.fromhex(signature)):
        keys.refetch_soon()  # fal may have rotated its keys: the retry of this callback finds the new ones
        raise CallbackRefused("the callback's signature matches none of fal.ai's published keys")
    return request_id
