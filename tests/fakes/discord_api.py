"""A fake Discord (REST API v10 + gateway websocket) that the real discord.py library connects to."""

from __future__ import annotations

import asyncio
import base64
import contextlib
import copy
import hashlib
import json
import logging
import math
import mimetypes
import re
import secrets
import time
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any
from urllib.parse import quote

from aiohttp import BodyPartReader, WSMsgType, web

from tests.fakes.discord_guilds import ALL_BUT_ADMIN, DISCORD_EPOCH_MS, FakeGuild, shard_of
from tests.fakes.png import PNG_SIGNATURE, make_png, png_size

log = logging.getLogger(__name__)

API_PREFIX = "/api/v10"
HEARTBEAT_INTERVAL_MS = 41250
APPLICATION_FLAGS = (1 << 19) | (1 << 23)  # GATEWAY_MESSAGE_CONTENT_LIMITED | APPLICATION_COMMAND_BADGE
ATTACHMENT_SIZE_LIMIT = 26214400
FLAG_SUPPRESS_EMBEDS = 1 << 2
FLAG_EPHEMERAL = 1 << 6
FLAG_LOADING = 1 << 7
FLAG_SUPPRESS_NOTIFICATIONS = 1 << 12
FLAG_COMPONENTS_V2 = 1 << 15
SENDABLE_FLAGS = FLAG_SUPPRESS_EMBEDS | FLAG_EPHEMERAL | FLAG_SUPPRESS_NOTIFICATIONS | FLAG_COMPONENTS_V2
SNOWFLAKE_OPTION_TYPES = (6, 7, 8, 9, 11)
CALLBACK_PATH = re.compile(rf"{API_PREFIX}/interactions/(\d+)/[^/]+/callback")
ACK_GRACE = 0.5  # send_* keep waiting this long past the ack deadline, so late callbacks are recorded too
#: The language Discord sends when a test names none: a member (and a server) using Discord in US English.
DEFAULT_LOCALE = "en-US"

DEFAULT_APPLICATION_ID = 1190413227513741362
DEFAULT_BOT_USER_ID = 1190413581240938527
DEFAULT_GUILD_ID = 1101826592467419177
DEFAULT_CHANNEL_ID = 1101826593054617651
DEFAULT_USER_ID = 318468528119873536
GUILD_JOINED_AT = "2024-01-15T12:00:00.000000+00:00"


@dataclass
class RecordedFile:
    """One file part of a multipart request."""

    field: str
    filename: str
    content_type: str
    data: bytes


@dataclass
class RecordedRequest:
    """One HTTP request the fake received (status is filled in once it was answered)."""

    method: str
    path: str
    query: dict[str, str]
    json: Any
    files: list[RecordedFile]
    headers: dict[str, str]
    status: int = 0
    #: time.monotonic() when the fake received it (for latency figures).
    received_at: float = field(default_factory=time.monotonic)


@dataclass
class SentInteraction:
    """An INTERACTION_CREATE the fake dispatched."""

    id: int
    token: str
    payload: dict[str, Any]
    #: time.monotonic() when it was dispatched on the gateway.
    sent_at: float = field(default_factory=time.monotonic)


@dataclass
class _InteractionState:
    """Server-side bookkeeping for one dispatched interaction."""

    sent: SentInteraction
    dispatched_at: float
    source_message_id: int | None = None
    acknowledged: bool = False
    expired: bool = False
    original_message_id: int | None = None
    message_ids: set[int] = field(default_factory=set)
    called_back: asyncio.Event = field(default_factory=asyncio.Event)


@dataclass
class _Connection:
    """One gateway websocket connection."""

    ws: web.WebSocketResponse
    lock: asyncio.Lock = field(default_factory=asyncio.Lock)
    session_id: str | None = None
    seq: int = 0
    ready: bool = False
    #: (shard id, shard count) from IDENTIFY (a client that sends none is shard 0 of 1).
    shard: tuple[int, int] = (0, 1)

    def holds(self, guild_id: int | None) -> bool:
        """Whether Discord sends this connection the guild's events (DMs: shard 0)."""
        shard_id, count = self.shard
        return shard_id == (0 if guild_id is None else shard_of(guild_id, count))


@dataclass
class _FailRule:
    """A canned failure for the next matching requests."""

    method: str
    pattern: re.Pattern[str]
    status: int
    body: dict[str, Any]
    remaining: int


Handler = Callable[[RecordedRequest, re.Match[str]], Awaitable[web.StreamResponse]]


def snowflake_iso(snowflake: int) -> str:
    """Return the ISO-8601 creation time encoded in a snowflake."""
    ms = (snowflake >> 22) + DISCORD_EPOCH_MS
    return datetime.fromtimestamp(ms / 1000, tz=UTC).isoformat()


def _now_iso() -> str:
    """Return the current time in Discord's timestamp format."""
    return datetime.now(tz=UTC).isoformat()


def _json_response(data: Any, *, status: int = 200, headers: dict[str, str] | None = None) -> web.Response:
    """Return JSON with Content-Type exactly application/json (discord.py ignores any charset suffix variant)."""
    body = json.dumps(data).encode()
    return web.Response(body=body, status=status, headers=headers, content_type="application/json")


def _error(status: int, message: str, code: int) -> web.Response:
    """Return a Discord-style JSON error."""
    return _json_response({"message": message, "code": code}, status=status)


def _user_json(user_id: int, username: str, *, bot: bool = False) -> dict[str, Any]:
    """Build a Discord user object."""
    user: dict[str, Any] = {
        "id": str(user_id),
        "username": username,
        "discriminator": "0",
        "global_name": None if bot else username.title(),
        "avatar": None,
        "avatar_decoration_data": None,
        "banner": None,
        "accent_color": None,
        "public_flags": 0,
        "flags": 0,
        "collectibles": None,
        "primary_guild": None,
        "clan": None,
    }
    if bot:
        user["bot"] = True
    return user


def _embeds(embeds: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Normalise embeds the way Discord echoes them back."""
    return [{"type": "rich", **embed} for embed in embeds]


def _guess_content_type(filename: str, data: bytes, declared: str) -> str:
    """Guess an uploaded file's content type like Discord does (extension, then sniffing)."""
    guessed = mimetypes.guess_type(filename)[0]
    if guessed:
        return guessed
    if data.startswith(PNG_SIGNATURE):
        return "image/png"
    if data.startswith(b"\xff\xd8\xff"):
        return "image/jpeg"
    if data[:6] in (b"GIF87a", b"GIF89a"):
        return "image/gif"
    if data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return "image/webp"
    return declared or "application/octet-stream"


def _is_empty_message(payload: dict[str, Any], files: list[RecordedFile]) -> bool:
    """Whether a message payload has nothing Discord would accept as content."""
    keys = ("content", "embeds", "components", "poll", "sticker_ids")
    return not files and not any(payload.get(k) for k in keys)


def _normalize_option(option: dict[str, Any]) -> dict[str, Any]:
    """Copy an interaction option, stringifying snowflake values as Discord does."""
    out = dict(option)
    if out.get("type") in SNOWFLAKE_OPTION_TYPES and "value" in out:
        out["value"] = str(out["value"])
    if "options" in out:
        out["options"] = [_normalize_option(o) for o in out["options"]]
    return out


def _walk_options(options: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Flatten (sub)command option trees."""
    flat: list[dict[str, Any]] = []
    for option in options:
        flat.append(option)
        flat.extend(_walk_options(option.get("options", [])))
    return flat


def _identified_shard(identify: dict[str, Any]) -> tuple[int, int]:
    """The (shard id, shard count) an IDENTIFY asks for; a client that sends none runs shard 0 of 1."""
    shard = identify.get("shard") or [0, 1]
    return int(shard[0]), int(shard[1])


def _matches(predicate: Callable[[RecordedRequest], bool], request: RecordedRequest) -> bool:
    """Apply a request predicate; one that raises on a request simply does not match it."""
    try:
        return bool(predicate(request))
    except Exception as exc:
        log.debug("predicate raised %r on %s %s; treating as no match", exc, request.method, request.path)
        return False


async def _read_request(request: web.Request) -> RecordedRequest:
    """Read and parse an aiohttp request into a RecordedRequest."""
    body: Any = None
    files: list[RecordedFile] = []
    if request.content_type.startswith("multipart/"):
        reader = await request.multipart()
        async for part in reader:
            if not isinstance(part, BodyPartReader):
                continue
            data = bytes(await part.read(decode=False))
            if part.name == "payload_json":
                body = json.loads(data)
            elif part.filename is not None:
                content_type = part.headers.get("Content-Type", "application/octet-stream")
                files.append(RecordedFile(part.name or "", part.filename, content_type, data))
    else:
        raw = await request.read()
        if raw:
            try:
                body = json.loads(raw)
            except ValueError:
                body = raw.decode("utf-8", "replace")
    return RecordedRequest(
        method=request.method,
        path=request.path,
        query=dict(request.query),
        json=body,
        files=files,
        headers={str(k): v for k, v in request.headers.items()},
    )


class FakeDiscord:
    """In-process fake of Discord's REST API and gateway, good enough for real discord.py."""

    def __init__(
        self,
        *,
        application_id: int = DEFAULT_APPLICATION_ID,
        bot_user_id: int = DEFAULT_BOT_USER_ID,
        guild_id: int = DEFAULT_GUILD_ID,
        channel_id: int = DEFAULT_CHANNEL_ID,
        user_id: int = DEFAULT_USER_ID,
        bot_token: str | None = None,
        ack_deadline: float = 3.0,
        recommended_shards: int = 1,
    ) -> None:
        self.application_id = application_id
        self.bot_user_id = bot_user_id
        self.guild_id = guild_id
        self.channel_id = channel_id
        self.user_id = user_id
        self.bot_token = bot_token or self._make_bot_token()
        #: The per-file upload limit sent with interactions and enforced on uploads (413, code 40005).
        self.attachment_size_limit = ATTACHMENT_SIZE_LIMIT
        self.ack_deadline = ack_deadline
        #: The shard count GET /gateway/bot recommends (what discord.py uses when given none).
        self.recommended_shards = recommended_shards
        self.base_url = ""
        self.api_base = ""
        self.gateway_url = ""

        self.requests: list[RecordedRequest] = []
        self.messages: dict[int, dict[str, Any]] = {}
        self.commands: dict[str, list[dict[str, Any]]] = {}
        self.interactions: list[SentInteraction] = []
        self.identifies: list[dict[str, Any]] = []
        self.resumes: list[dict[str, Any]] = []

        self._last_snowflake = 0
        self._runner: web.AppRunner | None = None
        self._connections: list[_Connection] = []
        self._sessions: dict[str, int] = {}
        self._session_shards: dict[str, tuple[int, int]] = {}
        self._states: dict[int, _InteractionState] = {}
        self._states_by_token: dict[str, _InteractionState] = {}
        self._command_ids: dict[tuple[str, str, int], int] = {}
        self._fail_rules: list[_FailRule] = []
        self._files: dict[int, tuple[bytes, str]] = {}
        self._image_sizes: dict[int, tuple[int, int]] = {}
        self._verify_key = secrets.token_hex(32)
        self._users: dict[int, dict[str, Any]] = {
            bot_user_id: _user_json(bot_user_id, "fluxbot", bot=True),
            user_id: _user_json(user_id, "tester"),
        }
        #: Every guild the bot is in, by id; `guild_id` is the default one (and the first).
        self.guilds: dict[int, FakeGuild] = {}
        self._channels: dict[int, dict[str, Any]] = {}
        self.add_guild(guild_id, channel_id=channel_id)
        self._dm_channels: dict[int, int] = {}
        self._routes = self._build_routes()

    # ----------------------------------------------------------------- lifecycle

    async def start(self) -> None:
        """Bind 127.0.0.1 on a random port and start serving."""
        app = web.Application(client_max_size=64 * 1024 * 1024)
        app.router.add_route("*", "/{tail:.*}", self._handle)
        self._runner = web.AppRunner(app, access_log=None, shutdown_timeout=1.0)
        await self._runner.setup()
        await web.TCPSite(self._runner, "127.0.0.1", 0).start()
        port = self._runner.addresses[0][1]
        self.base_url = f"http://127.0.0.1:{port}"
        self.api_base = f"{self.base_url}{API_PREFIX}"
        self.gateway_url = f"ws://127.0.0.1:{port}/gateway"
        log.info("fake discord listening on %s", self.base_url)

    async def close(self) -> None:
        """Close every gateway connection and stop the server."""
        for conn in list(self._connections):
            await conn.ws.close(code=1001, message=b"fake discord shutting down")
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    # ----------------------------------------------------------------- public helpers

    def next_snowflake(self) -> int:
        """Return a current-time snowflake, strictly increasing."""
        ms = int(time.time() * 1000) - DISCORD_EPOCH_MS
        value = max((ms << 22) | (1 << 17), self._last_snowflake + 1)
        self._last_snowflake = value
        return value

    @property
    def connected_clients(self) -> int:
        """Number of gateway connections that are identified (or resumed) and ready."""
        return sum(1 for conn in self._connections if conn.ready)

    @property
    def identify_count(self) -> int:
        """Number of successful IDENTIFYs so far (each is a fresh session)."""
        return len(self.identifies)

    @property
    def intents(self) -> int | None:
        """Intents sent with the most recent IDENTIFY."""
        return self.identifies[-1].get("intents") if self.identifies else None

    @property
    def connected_shards(self) -> list[tuple[int, int]]:
        """(shard id, shard count) of every ready gateway connection, sorted."""
        return sorted(conn.shard for conn in self._connections if conn.ready)

    def identified_shards(self) -> list[tuple[int, int]]:
        """(shard id, shard count) of every successful IDENTIFY so far, in order (none sent: shard 0 of 1)."""
        return [_identified_shard(identify) for identify in self.identifies]

    async def wait_ready(self, timeout: float = 20) -> None:
        """Wait until a client identified and READY + GUILD_CREATE were sent to it."""
        await self.wait_for(lambda: self.connected_clients > 0, timeout, message="no gateway client became ready")

    async def wait_shards_ready(self, shard_ids: Iterable[int], shard_count: int, timeout: float = 20) -> None:
        """Wait until a ready gateway connection holds each of these shards (of `shard_count`)."""
        wanted = {(shard_id, shard_count) for shard_id in shard_ids}
        message = f"shards {sorted(wanted)} did not all connect"
        await self.wait_for(lambda: wanted <= set(self.connected_shards), timeout, message=message)

    def add_guild(self, guild_id: int | None = None, *, channel_id: int | None = None) -> FakeGuild:
        """Put the bot (and the default user) in one more guild, with a text channel; call it before the bot
        connects (or use `join_guild`). `guild_id_on_shard` makes an id on a chosen shard."""
        guild_id = guild_id or self.next_snowflake()
        if guild_id in self.guilds:
            raise AssertionError(f"fake discord already has guild {guild_id}")
        name = "Fluxbot Test Guild" + (f" {len(self.guilds) + 1}" if self.guilds else "")
        guild = FakeGuild(guild_id, channel_id or self.next_snowflake(), self.next_snowflake(), name)
        guild.members.update({self.bot_user_id: [guild.bot_role_id], self.user_id: []})
        self.guilds[guild_id] = guild
        self._channels[guild.channel_id] = guild.text_channel_json()
        return guild

    async def join_guild(self, guild_id: int | None = None) -> FakeGuild:
        """Add a guild while the bot runs: GUILD_CREATE goes to the connection holding its shard, as Discord does."""
        guild = self.add_guild(guild_id)
        await self._dispatch_to_guild("GUILD_CREATE", self._guild_create_json(guild), guild.id)
        return guild

    def guild(self, guild_id: int | None = None) -> FakeGuild:
        """A guild of the fake (default: the default guild)."""
        found = self.guilds.get(guild_id or self.guild_id)
        if found is None:
            raise AssertionError(f"fake discord has no guild {guild_id}; add_guild makes one")
        return found

    async def wait_for(
        self,
        predicate: Callable[[], bool],
        timeout: float = 20,
        *,
        message: str | None = None,
    ) -> None:
        """Poll predicate until it is true; AssertionError on timeout."""
        deadline = time.monotonic() + timeout
        while not predicate():
            if time.monotonic() > deadline:
                detail = message or f"condition {predicate!r} not met"
                raise AssertionError(f"{detail} within {timeout}s\n{self._summary()}")
            await asyncio.sleep(0.01)

    async def wait_for_request(
        self,
        predicate: Callable[[RecordedRequest], bool],
        timeout: float = 20,
    ) -> RecordedRequest:
        """Return the first recorded request matching predicate (predicate errors count as no match)."""
        deadline = time.monotonic() + timeout
        index = 0
        while True:
            while index < len(self.requests):
                request = self.requests[index]
                index += 1
                if _matches(predicate, request):
                    return request
            if time.monotonic() > deadline:
                raise AssertionError(f"no matching request within {timeout}s\n{self._summary()}")
            await asyncio.sleep(0.01)

    async def dispatch(self, event: str, data: dict[str, Any]) -> None:
        """Send a gateway DISPATCH (op 0) to every ready connection."""
        targets = [conn for conn in self._connections if conn.ready]
        if not targets:
            raise AssertionError(f"cannot dispatch {event}: no identified gateway connection")
        await self._write_to(targets, event, data)

    async def _dispatch_to_guild(self, event: str, data: dict[str, Any], guild_id: int | None) -> None:
        """Send a DISPATCH to the ready connections holding the guild's shard (None: a DM, shard 0), as Discord
        routes them; AssertionError when no connection holds it."""
        ready = [conn for conn in self._connections if conn.ready]
        targets = [conn for conn in ready if conn.holds(guild_id)]
        if not targets:
            where = "a DM (shard 0)" if guild_id is None else f"guild {guild_id}"
            held = ", ".join(f"{shard} of {count}" for shard, count in sorted(c.shard for c in ready)) or "none"
            raise AssertionError(
                f"cannot dispatch {event} for {where}: no identified gateway connection holds its shard "
                f"(shard = (guild_id >> 22) % shard count); connected shards: {held}"
            )
        await self._write_to(targets, event, data)

    async def _write_to(self, targets: list[_Connection], event: str, data: dict[str, Any]) -> None:
        for conn in targets:
            try:
                async with conn.lock:
                    await self._write_dispatch(conn, event, data)
            except ConnectionError:
                log.warning("gateway connection went away while dispatching %s", event)

    async def drop_gateway_connections(self, code: int = 4000) -> None:
        """Close every gateway connection from the server side (clients should RESUME)."""
        for conn in list(self._connections):
            conn.ready = False
            await conn.ws.close(code=code, message=b"fake discord dropped the connection")

    def make_attachment(
        self,
        filename: str,
        content_type: str | None,
        size: int,
        *,
        url: str | None = None,
        width: int | None = None,
        height: int | None = None,
        data: bytes | None = None,
    ) -> dict[str, Any]:
        """Build a Discord attachment dict with a fresh id (data, if given, is what its URL serves)."""
        attachment_id = self.next_snowflake()
        default_url = f"{self.base_url}/attachments/{self.channel_id}/{attachment_id}/{quote(filename)}"
        attachment: dict[str, Any] = {
            "id": str(attachment_id),
            "filename": filename,
            "size": size,
            "url": url or default_url,
            "proxy_url": url or default_url,
        }
        if content_type is not None:
            attachment["content_type"] = content_type
        if width is not None and height is not None:
            attachment["width"] = width
            attachment["height"] = height
            self._image_sizes[attachment_id] = (width, height)
        if data is not None:
            self._files[attachment_id] = (data, content_type or _guess_content_type(filename, data, ""))
        return attachment

    def add_message(
        self,
        *,
        content: str = "",
        attachments: list[dict[str, Any]] | None = None,
        embeds: list[dict[str, Any]] | None = None,
        author_id: int | None = None,
    ) -> dict[str, Any]:
        """Create a message in the guild text channel (by the default user unless author_id is given)."""
        message = self._create_message(
            channel_id=self.channel_id,
            author=self._user(author_id or self.user_id),
            payload={"content": content, "embeds": embeds or []},
            files=[],
        )
        message["attachments"] = [dict(a) for a in attachments or []]
        return message

    def callbacks_for(self, interaction: SentInteraction) -> list[RecordedRequest]:
        """Return the POST .../callback requests made for an interaction."""
        path = f"{API_PREFIX}/interactions/{interaction.id}/{interaction.token}/callback"
        return [r for r in self.requests if r.method == "POST" and r.path == path]

    def original_response(self, interaction: SentInteraction) -> dict[str, Any] | None:
        """Return the current original-response message of an interaction, if any."""
        state = self._states[interaction.id]
        if state.original_message_id is None:
            return None
        return self.messages.get(state.original_message_id)

    def fail_next(self, method: str, path_regex: str, status: int, body: dict[str, Any], times: int = 1) -> None:
        """Answer the next `times` requests matching method and path regex with status/body."""
        rule = _FailRule(method.upper(), re.compile(path_regex), status, dict(body), times)
        self._fail_rules.append(rule)

    def expire_token(self, interaction: SentInteraction) -> None:
        """Make every webhook route using this interaction's token answer 401 Invalid Webhook Token."""
        self._states[interaction.id].expired = True

    # ----------------------------------------------------------------- interactions

    async def send_slash_command(
        self,
        name: str,
        options: list[dict[str, Any]] | None = None,
        *,
        attachments: list[dict[str, Any]] | None = None,
        user_id: int | None = None,
        guild: bool = True,
        wait_for_ack: bool = True,
        channel_id: int | None = None,
        permissions: int | None = None,
        guild_id: int | None = None,
        locale: str = DEFAULT_LOCALE,
        guild_locale: str = DEFAULT_LOCALE,
    ) -> SentInteraction:
        """Dispatch a CHAT_INPUT application command interaction (in `channel_id`, with `permissions`), in guild
        `guild_id` (default: the default guild; `guild=False`: a DM) to the connection holding its shard; `locale`
        is the member's client language, `guild_locale` the server's (Discord's names: "de", "pt-BR")."""
        where = self.guild(guild_id) if guild else None
        data = self._command_data(name, 1, guild=where)
        if options:
            data["options"] = [_normalize_option(o) for o in options]
        resolved = self._resolve(data.get("options", []), attachments, guild=where)
        if resolved:
            data["resolved"] = resolved
        return await self._send_interaction(
            2,
            data,
            user_id=user_id,
            guild=where,
            channel_id=channel_id,
            permissions=permissions,
            wait_for_ack=wait_for_ack,
            locale=locale,
            guild_locale=guild_locale,
        )

    async def add_text_channel(self, name: str, *, guild_id: int | None = None) -> int:
        """Create another text channel in the guild (announced with CHANNEL_CREATE, as Discord does)."""
        guild = self.guild(guild_id)
        channel_id = self.next_snowflake()
        self._channels[channel_id] = guild.text_channel_json(channel_id, name)
        await self._dispatch_to_guild("CHANNEL_CREATE", self._channels[channel_id], guild.id)
        return channel_id

    async def add_role(self, name: str, *, guild_id: int | None = None) -> int:
        """Create a role in the guild (announced with GUILD_ROLE_CREATE, as Discord does)."""
        guild = self.guild(guild_id)
        role_id = self.next_snowflake()
        guild.roles[role_id] = name
        role = next(r for r in guild.roles_json(self.bot_user_id) if r["id"] == str(role_id))
        await self._dispatch_to_guild("GUILD_ROLE_CREATE", {"guild_id": str(guild.id), "role": role}, guild.id)
        return role_id

    def set_member(self, user_id: int, roles: list[int] | None, *, guild_id: int | None = None) -> None:
        """Make `user_id` a member of the guild with these roles, or (None) not a member at all."""
        members = self.guild(guild_id).members
        if roles is None:
            members.pop(user_id, None)
        else:
            members[user_id] = list(roles)

    async def send_autocomplete(
        self,
        name: str,
        options: list[dict[str, Any]],
        focused: str,
        *,
        user_id: int | None = None,
        wait_for_ack: bool = True,
        guild_id: int | None = None,
        guild: bool = True,
    ) -> SentInteraction:
        """Dispatch an APPLICATION_COMMAND_AUTOCOMPLETE interaction (type 4) with `focused` marked, in guild
        `guild_id` (default: the default guild; `guild=False`: a DM); the bot answers with callback type 8."""
        where = self.guild(guild_id) if guild else None
        data = self._command_data(name, 1, guild=where)
        data["options"] = [_normalize_option(o) for o in options]
        for option in _walk_options(data["options"]):
            if option.get("name") == focused and option.get("type") not in (1, 2):
                option["focused"] = True
                option.setdefault("value", "")
        return await self._send_interaction(4, data, user_id=user_id, guild=where, wait_for_ack=wait_for_ack)

    async def send_component(
        self,
        message_id: int,
        custom_id: str,
        *,
        component_type: int = 2,
        values: list[str] | None = None,
        user_id: int | None = None,
        permissions: int | None = None,
        wait_for_ack: bool = True,
        locale: str = DEFAULT_LOCALE,
        guild_locale: str = DEFAULT_LOCALE,
    ) -> SentInteraction:
        """Dispatch a MESSAGE_COMPONENT interaction for a component on a known message (`locale`, `guild_locale`:
        the member's and the server's language)."""
        message = self._known_message(message_id)
        data: dict[str, Any] = {"custom_id": custom_id, "component_type": component_type}
        if values is not None or component_type in (3, 5, 6, 7, 8):
            data["values"] = list(values or [])
        return await self._send_interaction(
            3,
            data,
            user_id=user_id,
            guild=self._message_guild(message),
            channel_id=int(message["channel_id"]),
            message=message,
            permissions=permissions,
            wait_for_ack=wait_for_ack,
            locale=locale,
            guild_locale=guild_locale,
        )

    async def send_modal_submit(
        self,
        custom_id: str,
        fields: dict[str, str],
        *,
        message_id: int | None = None,
        user_id: int | None = None,
        wait_for_ack: bool = True,
    ) -> SentInteraction:
        """Dispatch a MODAL_SUBMIT interaction with one text input per field."""
        rows = [{"type": 1, "components": [{"type": 4, "custom_id": k, "value": v}]} for k, v in fields.items()]
        data: dict[str, Any] = {"custom_id": custom_id, "components": rows}
        message = self._known_message(message_id) if message_id is not None else None
        return await self._send_interaction(
            5,
            data,
            user_id=user_id,
            guild=self.guild() if message is None else self._message_guild(message),
            channel_id=int(message["channel_id"]) if message else None,
            message=message,
            wait_for_ack=wait_for_ack,
        )

    async def send_message_command(
        self,
        name: str,
        target_message_id: int,
        *,
        user_id: int | None = None,
        wait_for_ack: bool = True,
        locale: str = DEFAULT_LOCALE,
        guild_locale: str = DEFAULT_LOCALE,
    ) -> SentInteraction:
        """Dispatch a MESSAGE context-menu command interaction targeting a known message (from a member whose client
        speaks `locale`, in a server whose language is `guild_locale`)."""
        message = self._known_message(target_message_id)
        guild = self._message_guild(message)
        data = self._command_data(name, 3, guild=guild)
        data["target_id"] = str(target_message_id)
        data["resolved"] = {"messages": {str(target_message_id): copy.deepcopy(message)}}
        return await self._send_interaction(
            2,
            data,
            user_id=user_id,
            guild=guild,
            channel_id=int(message["channel_id"]),
            wait_for_ack=wait_for_ack,
            locale=locale,
            guild_locale=guild_locale,
        )

    def _message_guild(self, message: dict[str, Any]) -> FakeGuild | None:
        """The guild a message is in (None: a DM)."""
        return self.guild(int(message["guild_id"])) if "guild_id" in message else None

    def _command_data(self, name: str, command_type: int, *, guild: FakeGuild | None) -> dict[str, Any]:
        """Build the id/name/type (and guild_id for guild commands) of application command data."""
        command_id, command_guild = self._find_command(name, command_type, guild)
        data: dict[str, Any] = {"id": str(command_id), "name": name, "type": command_type}
        if command_guild is not None and guild is not None:
            data["guild_id"] = str(command_guild)
        return data

    def _find_command(self, name: str, command_type: int, guild: FakeGuild | None) -> tuple[int, int | None]:
        """Return (command id, guild id or None) of a synced command, or a fresh id if never synced."""
        here = guild or self.guild()
        scopes = [str(here.id), "global", *self.commands]
        for scope in scopes:
            for command in self.commands.get(scope, []):
                if command["name"] == name and command.get("type", 1) == command_type:
                    if guild is not None and scope not in ("global", str(guild.id)):
                        raise AssertionError(f"/{name} is synced to guild {scope} only, not to guild {guild.id}")
                    return int(command["id"]), None if scope == "global" else int(scope)
        return self.next_snowflake(), None

    def _resolve(
        self, options: list[dict[str, Any]], attachments: list[dict[str, Any]] | None, *, guild: FakeGuild | None
    ) -> dict[str, Any]:
        """Build data.resolved for attachments and any user/channel/role options."""
        resolved: dict[str, dict[str, Any]] = {}
        if attachments:
            resolved["attachments"] = {str(a["id"]): a for a in attachments}
        for option in _walk_options(options):
            value = option.get("value")
            if option.get("type") in (6, 9) and value is not None and int(value) in self._users:
                resolved.setdefault("users", {})[str(value)] = self._users[int(value)]
                if guild is not None:
                    member = self._member_json(int(value), guild)
                    member.pop("user")
                    member["permissions"] = str(ALL_BUT_ADMIN)
                    resolved.setdefault("members", {})[str(value)] = member
            elif option.get("type") == 7 and value is not None and int(value) in self._channels:
                channel = {**self._channels[int(value)], "permissions": str(ALL_BUT_ADMIN)}
                resolved.setdefault("channels", {})[str(value)] = channel
            elif option.get("type") in (8, 9) and value is not None:
                roles = (guild or self.guild()).roles_json(self.bot_user_id)
                role = next((r for r in roles if r["id"] == str(value)), None)
                if role is not None:
                    resolved.setdefault("roles", {})[str(value)] = role
        return resolved

    async def _send_interaction(
        self,
        interaction_type: int,
        data: dict[str, Any],
        *,
        user_id: int | None,
        guild: FakeGuild | None,
        channel_id: int | None = None,
        message: dict[str, Any] | None = None,
        permissions: int | None = None,
        wait_for_ack: bool = True,
        locale: str = DEFAULT_LOCALE,
        guild_locale: str = DEFAULT_LOCALE,
    ) -> SentInteraction:
        """Register and dispatch an INTERACTION_CREATE to the connection holding the guild's shard (a DM's: shard
        0); by default return once the bot called back (or gave up)."""
        interaction_id = self.next_snowflake()
        token = "aW50ZXJhY3Rpb246" + secrets.token_urlsafe(96)
        payload = self._interaction_json(
            interaction_id,
            token,
            interaction_type,
            data,
            user_id=user_id or self.user_id,
            guild=guild,
            channel_id=channel_id,
            message=message,
            permissions=permissions,
            locale=locale,
            guild_locale=guild_locale,
        )
        sent = SentInteraction(id=interaction_id, token=token, payload=payload)
        state = _InteractionState(
            sent=sent,
            dispatched_at=time.monotonic(),
            source_message_id=int(message["id"]) if message is not None else None,
        )
        self._states[interaction_id] = state
        self._states_by_token[token] = state
        try:
            await self._dispatch_to_guild("INTERACTION_CREATE", payload, guild.id if guild else None)
        except AssertionError:
            del self._states[interaction_id], self._states_by_token[token]
            raise
        self.interactions.append(sent)
        if wait_for_ack:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(state.called_back.wait(), self.ack_deadline + ACK_GRACE)
        return sent

    def _interaction_json(
        self,
        interaction_id: int,
        token: str,
        interaction_type: int,
        data: dict[str, Any],
        *,
        user_id: int,
        guild: FakeGuild | None,
        channel_id: int | None,
        message: dict[str, Any] | None,
        permissions: int | None,
        locale: str = DEFAULT_LOCALE,
        guild_locale: str = DEFAULT_LOCALE,
    ) -> dict[str, Any]:
        """Build a full INTERACTION_CREATE payload."""
        payload: dict[str, Any] = {
            "id": str(interaction_id),
            "application_id": str(self.application_id),
            "type": interaction_type,
            "data": data,
            "token": token,
            "version": 1,
            "app_permissions": str(ALL_BUT_ADMIN),
            "locale": locale,
            "entitlements": [],
            "entitlement_sku_ids": [],
            "attachment_size_limit": self.attachment_size_limit,
        }
        if guild is not None:
            channel = self._channels[channel_id or guild.channel_id]
            guild.members.setdefault(user_id, [])
            member = self._member_json(user_id, guild)
            member["permissions"] = str(ALL_BUT_ADMIN if permissions is None else permissions)
            payload.update(
                guild_id=str(guild.id),
                guild={"id": str(guild.id), "locale": guild_locale, "features": []},
                guild_locale=guild_locale,
                channel_id=channel["id"],
                channel={**channel, "permissions": member["permissions"]},
                member=member,
                authorizing_integration_owners={"0": str(guild.id)},
                context=0,
            )
        else:
            channel = self._channels[channel_id] if channel_id else self._dm_channel(user_id)
            payload.update(
                channel_id=channel["id"],
                channel=copy.deepcopy(channel),
                user=self._user(user_id),
                authorizing_integration_owners={"0": "0"},
                context=1,
            )
        if message is not None:
            payload["message"] = copy.deepcopy(message)
        return payload

    # ----------------------------------------------------------------- payload builders

    def _make_bot_token(self) -> str:
        """Build a realistic-looking bot token for bot_user_id."""
        user_part = base64.b64encode(str(self.bot_user_id).encode()).decode().rstrip("=")
        return f"{user_part}.{secrets.token_urlsafe(4)}.{secrets.token_urlsafe(28)}"

    def _user(self, user_id: int) -> dict[str, Any]:
        """Return (creating if needed) the user object for an id."""
        if user_id not in self._users:
            self._users[user_id] = _user_json(user_id, f"user{user_id % 100000}")
        return self._users[user_id]

    def _member_json(self, user_id: int, guild: FakeGuild) -> dict[str, Any]:
        """Build a guild member object (with user)."""
        return {
            "user": self._user(user_id),
            "roles": [str(r) for r in guild.members.get(user_id, [])],
            "nick": None,
            "avatar": None,
            "banner": None,
            "premium_since": None,
            "joined_at": GUILD_JOINED_AT,
            "deaf": False,
            "mute": False,
            "pending": False,
            "flags": 0,
            "communication_disabled_until": None,
            "unusual_dm_activity_until": None,
        }

    def _dm_channel(self, user_id: int) -> dict[str, Any]:
        """Return (creating if needed) the DM channel with a user."""
        if user_id not in self._dm_channels:
            channel_id = self.next_snowflake()
            self._dm_channels[user_id] = channel_id
            self._channels[channel_id] = {
                "id": str(channel_id),
                "type": 1,
                "last_message_id": None,
                "flags": 0,
                "recipients": [self._user(user_id)],
            }
        return self._channels[self._dm_channels[user_id]]

    def _guild_json(self, guild: FakeGuild) -> dict[str, Any]:
        """Build the guild object as REST returns it."""
        return guild.guild_json(owner_id=self.user_id, bot_user_id=self.bot_user_id)

    def _guild_create_json(self, guild: FakeGuild) -> dict[str, Any]:
        """Build the full GUILD_CREATE payload."""
        channel = {k: v for k, v in self._channels[guild.channel_id].items() if k != "guild_id"}
        return {
            **self._guild_json(guild),
            "joined_at": GUILD_JOINED_AT,
            "large": False,
            "unavailable": False,
            "lazy": True,
            "member_count": len(guild.members),
            "voice_states": [],
            "members": [self._member_json(self.bot_user_id, guild)],
            "channels": [channel],
            "threads": [],
            "presences": [],
            "stage_instances": [],
            "guild_scheduled_events": [],
            "soundboard_sounds": [],
            "embedded_activities": [],
            "activity_instances": [],
            "version": int(time.time() * 1000),
        }

    def _ready_json(self, session_id: str, identify: dict[str, Any], guilds: list[FakeGuild]) -> dict[str, Any]:
        """Build the READY payload (listing the guilds of the connection's shard)."""
        ready: dict[str, Any] = {
            "v": 10,
            "user_settings": {},
            "user": {**self._users[self.bot_user_id], "verified": True, "mfa_enabled": False, "email": None},
            "guilds": [{"id": str(guild.id), "unavailable": True} for guild in guilds],
            "guild_join_requests": [],
            "relationships": [],
            "private_channels": [],
            "presences": [],
            "session_id": session_id,
            "session_type": "normal",
            "resume_gateway_url": self.gateway_url,
            "auth_session_id_hash": secrets.token_urlsafe(32),
            "application": {"id": str(self.application_id), "flags": APPLICATION_FLAGS},
            "geo_ordered_rtc_regions": ["us-east", "us-central"],
            "_trace": ['["fake-gateway",{"micros":0}]'],
        }
        if "shard" in identify:
            ready["shard"] = identify["shard"]
        return ready

    def _app_info_json(self) -> dict[str, Any]:
        """Build the application object of GET /oauth2/applications/@me."""
        return {
            "id": str(self.application_id),
            "name": "fluxbot",
            "icon": None,
            "description": "",
            "summary": "",
            "type": None,
            "hook": True,
            "is_monetized": False,
            "is_verified": False,
            "is_discoverable": False,
            "bot_public": True,
            "bot_require_code_grant": False,
            "verify_key": self._verify_key,
            "flags": APPLICATION_FLAGS,
            "owner": self._user(self.user_id),
            "team": None,
            "bot": self._users[self.bot_user_id],
            "rpc_origins": [],
            "redirect_uris": [],
            "interactions_endpoint_url": None,
            "role_connections_verification_url": None,
            "tags": [],
            "integration_types_config": {"0": {}},
            "approximate_guild_count": len(self.guilds),
            "approximate_user_install_count": 0,
            "storefront_available": False,
        }

    def _interaction_metadata(self, state: _InteractionState, *, followup: bool) -> dict[str, Any]:
        """Build a message's interaction_metadata for an interaction response."""
        payload = state.sent.payload
        data = payload.get("data", {})
        metadata: dict[str, Any] = {
            "id": str(state.sent.id),
            "type": payload["type"],
            "user": self._interaction_user(payload),
            "authorizing_integration_owners": payload["authorizing_integration_owners"],
        }
        if payload["type"] == 2:
            metadata["name"] = data["name"]
            metadata["command_type"] = data.get("type", 1)
            if data.get("type") == 3:
                metadata["target_message_id"] = data["target_id"]
        if payload["type"] == 3 and state.source_message_id is not None:
            metadata["interacted_message_id"] = str(state.source_message_id)
        if followup and state.original_message_id is not None:
            metadata["original_response_message_id"] = str(state.original_message_id)
        return metadata

    @staticmethod
    def _interaction_user(payload: dict[str, Any]) -> dict[str, Any]:
        """Return the invoking user of an interaction payload."""
        user: dict[str, Any] = payload["member"]["user"] if "member" in payload else payload["user"]
        return user

    # ----------------------------------------------------------------- messages

    def _known_message(self, message_id: int) -> dict[str, Any]:
        """Return a message the fake knows, or fail loudly."""
        if message_id not in self.messages:
            raise AssertionError(f"fake discord knows no message {message_id}")
        return self.messages[message_id]

    def _create_message(
        self,
        *,
        channel_id: int,
        author: dict[str, Any],
        payload: dict[str, Any],
        files: list[RecordedFile],
        message_type: int = 0,
        flags: int = 0,
    ) -> dict[str, Any]:
        """Create and store a message."""
        message_id = self.next_snowflake()
        channel = self._channels[channel_id]
        message: dict[str, Any] = {
            "id": str(message_id),
            "channel_id": str(channel_id),
            "author": author,
            "content": payload.get("content") or "",
            "timestamp": snowflake_iso(message_id),
            "edited_timestamp": None,
            "tts": bool(payload.get("tts", False)),
            "mention_everyone": False,
            "mentions": [],
            "mention_roles": [],
            "attachments": self._attachments(channel_id, payload.get("attachments"), files, []),
            "embeds": _embeds(payload.get("embeds") or []),
            "pinned": False,
            "type": message_type,
            "flags": flags,
            "components": payload.get("components") or [],
        }
        if channel["type"] != 1:
            message["guild_id"] = channel["guild_id"]
        if payload.get("nonce") is not None:
            message["nonce"] = payload["nonce"]
        reference = payload.get("message_reference")
        if reference and reference.get("message_id") is not None:
            message["type"] = 19
            message["message_reference"] = {"type": 0, "channel_id": str(channel_id), **reference}
            referenced = self.messages.get(int(reference["message_id"]))
            message["referenced_message"] = copy.deepcopy(referenced)
        self.messages[message_id] = message
        channel["last_message_id"] = str(message_id)
        return message

    def _interaction_message(
        self,
        state: _InteractionState,
        payload: dict[str, Any],
        files: list[RecordedFile],
        *,
        flags: int,
        followup: bool,
    ) -> dict[str, Any]:
        """Create a message sent as (or after) an interaction response."""
        interaction = state.sent.payload
        data = interaction.get("data", {})
        message_type = 0
        if interaction["type"] == 2:
            message_type = 20 if data.get("type", 1) == 1 else 23
        message = self._create_message(
            channel_id=int(interaction["channel_id"]),
            author=self._users[self.bot_user_id],
            payload=payload,
            files=files,
            message_type=message_type,
            flags=flags,
        )
        message["webhook_id"] = str(self.application_id)
        message["application_id"] = str(self.application_id)
        message["interaction_metadata"] = self._interaction_metadata(state, followup=followup)
        if interaction["type"] == 2:
            user = self._interaction_user(interaction)
            message["interaction"] = {"id": str(state.sent.id), "type": 2, "name": data["name"], "user": user}
        state.message_ids.add(int(message["id"]))
        return message

    def _edit_message(self, message: dict[str, Any], payload: dict[str, Any], files: list[RecordedFile]) -> None:
        """Apply a PATCH-style edit to a stored message."""
        if "content" in payload:
            message["content"] = payload["content"] or ""
        if "embeds" in payload:
            message["embeds"] = _embeds(payload["embeds"] or [])
        if "components" in payload:
            message["components"] = payload["components"] or []
        if "attachments" in payload or files:
            channel_id = int(message["channel_id"])
            message["attachments"] = self._attachments(
                channel_id, payload.get("attachments"), files, message["attachments"]
            )
        flags = int(message["flags"]) & ~FLAG_LOADING
        if payload.get("flags") is not None:
            flags = (flags & FLAG_EPHEMERAL) | (int(payload["flags"]) & SENDABLE_FLAGS & ~FLAG_EPHEMERAL)
        message["flags"] = flags
        message["edited_timestamp"] = _now_iso()

    def _attachments(
        self,
        channel_id: int,
        spec: list[dict[str, Any]] | None,
        files: list[RecordedFile],
        existing: list[dict[str, Any]],
    ) -> list[dict[str, Any]]:
        """Resolve a payload's `attachments` list against existing attachments and uploaded files."""
        uploads: dict[int, RecordedFile] = {}
        for position, upload in enumerate(files):
            match = re.fullmatch(r"files\[(\d+)\]", upload.field)
            uploads[int(match[1]) if match else position] = upload
        if spec is None:
            new = [self._store_upload(channel_id, f, None) for _, f in sorted(uploads.items())]
            return [dict(a) for a in existing] + new
        by_id = {int(a["id"]): a for a in existing}
        result: list[dict[str, Any]] = []
        used: set[int] = set()
        for entry in spec:
            try:
                attachment_id = int(entry["id"])
            except (KeyError, TypeError, ValueError):
                continue
            if attachment_id in by_id:
                kept = dict(by_id[attachment_id])
                if entry.get("description") is not None:
                    kept["description"] = entry["description"]
                result.append(kept)
            elif attachment_id in uploads and attachment_id not in used:
                used.add(attachment_id)
                result.append(self._store_upload(channel_id, uploads[attachment_id], entry))
        for index, upload in sorted(uploads.items()):
            if index not in used:
                result.append(self._store_upload(channel_id, upload, None))
        return result

    def _store_upload(self, channel_id: int, upload: RecordedFile, entry: dict[str, Any] | None) -> dict[str, Any]:
        """Turn an uploaded file into a served attachment object."""
        attachment_id = self.next_snowflake()
        filename = (entry or {}).get("filename") or upload.filename
        content_type = _guess_content_type(filename, upload.data, upload.content_type)
        url = f"{self.base_url}/attachments/{channel_id}/{attachment_id}/{quote(filename)}"
        attachment: dict[str, Any] = {
            "id": str(attachment_id),
            "filename": filename,
            "size": len(upload.data),
            "url": url,
            "proxy_url": url,
            "content_type": content_type,
        }
        if (entry or {}).get("description") is not None:
            attachment["description"] = (entry or {})["description"]
        dimensions = png_size(upload.data)
        if dimensions is not None:
            attachment["width"], attachment["height"] = dimensions
        self._files[attachment_id] = (upload.data, content_type)
        return attachment

    # ----------------------------------------------------------------- HTTP plumbing

    def _build_routes(self) -> list[tuple[str, re.Pattern[str], Handler, bool]]:
        """Return the (method, path pattern under /api/v10, handler, needs bot auth) table."""
        app = r"/applications/(?P<app>\d+)"
        channel_message = r"/channels/(?P<channel>\d+)/messages/(?P<message>\d+)"
        webhook = r"/webhooks/(?P<app>\d+)/(?P<token>[^/]+)"
        webhook_message = webhook + r"/messages/(?P<message>@original|\d+)"
        table: list[tuple[str, str, Handler, bool]] = [
            ("GET", r"/gateway", self._get_gateway, False),
            ("GET", r"/gateway/bot", self._get_gateway_bot, True),
            ("GET", r"/users/@me", self._get_me, True),
            ("GET", r"/users/@me/guilds", self._get_my_guilds, True),
            ("GET", r"/users/(?P<user>\d+)", self._get_user, True),
            ("POST", r"/users/@me/channels", self._create_dm, True),
            ("GET", r"/oauth2/applications/@me", self._get_app_info, True),
            ("GET", r"/applications/@me", self._get_app_info, True),
            ("GET", app + r"/commands", self._get_commands, True),
            ("PUT", app + r"/commands", self._put_commands, True),
            ("GET", app + r"/guilds/(?P<guild>\d+)/commands", self._get_commands, True),
            ("PUT", app + r"/guilds/(?P<guild>\d+)/commands", self._put_commands, True),
            ("GET", r"/guilds/(?P<guild>\d+)", self._get_guild, True),
            ("GET", r"/guilds/(?P<guild>\d+)/members/(?P<user>\d+)", self._get_member, True),
            ("GET", r"/channels/(?P<channel>\d+)", self._get_channel, True),
            ("POST", r"/channels/(?P<channel>\d+)/typing", self._typing, True),
            ("POST", r"/channels/(?P<channel>\d+)/messages", self._post_channel_message, True),
            ("GET", channel_message, self._get_channel_message, True),
            ("PATCH", channel_message, self._patch_channel_message, True),
            ("DELETE", channel_message, self._delete_channel_message, True),
            ("POST", r"/interactions/(?P<id>\d+)/(?P<token>[^/]+)/callback", self._interaction_callback, False),
            ("POST", webhook, self._execute_webhook, False),
            ("GET", webhook_message, self._get_webhook_message, False),
            ("PATCH", webhook_message, self._patch_webhook_message, False),
            ("DELETE", webhook_message, self._delete_webhook_message, False),
        ]
        return [(method, re.compile(pattern), handler, auth) for method, pattern, handler, auth in table]

    async def _handle(self, request: web.Request) -> web.StreamResponse:
        """Entry point for every HTTP request (and the gateway upgrade)."""
        if request.path == "/gateway" and request.headers.get("Upgrade", "").lower() == "websocket":
            return await self._gateway(request)
        record = await _read_request(request)
        try:
            response = await self._respond(record)
        except Exception:
            log.exception("fake discord failed handling %s %s", record.method, record.path)
            response = _error(500, "500: Internal Server Error", 0)
        record.status = response.status
        self.requests.append(record)
        callback = CALLBACK_PATH.fullmatch(record.path)
        if callback is not None and record.method == "POST" and int(callback[1]) in self._states:
            self._states[int(callback[1])].called_back.set()
        log.debug("%s %s -> %s", record.method, record.path, response.status)
        return response

    async def _respond(self, record: RecordedRequest) -> web.StreamResponse:
        """Route a recorded request to its handler (after canned failures and auth)."""
        rule = self._take_fail_rule(record)
        if rule is not None:
            return self._fail_response(rule, record)
        if record.path.startswith("/attachments/") and record.method == "GET":
            return self._serve_attachment(record)
        if any(len(f.data) > self.attachment_size_limit for f in record.files):
            return _error(413, "Request entity too large", 40005)
        if record.path.startswith(API_PREFIX + "/"):
            sub_path = record.path[len(API_PREFIX) :]
            for method, pattern, handler, needs_auth in self._routes:
                match = pattern.fullmatch(sub_path)
                if method != record.method or match is None:
                    continue
                if needs_auth and self._header(record, "Authorization") != f"Bot {self.bot_token}":
                    return _error(401, "401: Unauthorized", 0)
                return await handler(record, match)
        return _error(404, "404: Not Found", 0)

    @staticmethod
    def _header(record: RecordedRequest, name: str) -> str | None:
        """Case-insensitive header lookup."""
        return next((v for k, v in record.headers.items() if k.lower() == name.lower()), None)

    def _take_fail_rule(self, record: RecordedRequest) -> _FailRule | None:
        """Consume and return the first canned failure matching a request."""
        for rule in self._fail_rules:
            if rule.method == record.method and rule.pattern.search(record.path):
                rule.remaining -= 1
                if rule.remaining <= 0:
                    self._fail_rules.remove(rule)
                return rule
        return None

    def _fail_response(self, rule: _FailRule, record: RecordedRequest) -> web.Response:
        """Build the response for a canned failure (429s get proper rate-limit headers)."""
        body = dict(rule.body)
        headers: dict[str, str] = {}
        if rule.status == 429:
            body.setdefault("message", "You are being rate limited.")
            body.setdefault("retry_after", 0.05)
            body.setdefault("global", False)
            retry_after = float(body["retry_after"])
            headers = {
                "Retry-After": str(max(1, math.ceil(retry_after))),
                "X-RateLimit-Limit": "5",
                "X-RateLimit-Remaining": "0",
                "X-RateLimit-Reset": f"{time.time() + retry_after:.3f}",
                "X-RateLimit-Reset-After": f"{retry_after:.3f}",
                "X-RateLimit-Bucket": hashlib.sha256(f"{record.method} {record.path}".encode()).hexdigest()[:32],
                "X-RateLimit-Scope": "global" if body["global"] else "user",
                "Via": "1.1 google",
            }
            if body["global"]:
                headers["X-RateLimit-Global"] = "true"
        return _json_response(body, status=rule.status, headers=headers)

    def _serve_attachment(self, record: RecordedRequest) -> web.Response:
        """Serve uploaded bytes for an attachment, or a generated PNG."""
        match = re.fullmatch(r"/attachments/\d+/(\d+)/[^/]+", record.path)
        if match is None:
            return _error(404, "404: Not Found", 0)
        attachment_id = int(match[1])
        if attachment_id in self._files:
            data, content_type = self._files[attachment_id]
            return web.Response(body=data, headers={"Content-Type": content_type})
        width, height = self._image_sizes.get(attachment_id, (64, 64))
        png = make_png(max(1, min(width, 4096)), max(1, min(height, 4096)))
        return web.Response(body=png, content_type="image/png")

    def _summary(self, limit: int = 25) -> str:
        """Describe the most recent requests for assertion messages."""
        lines = [f"recent requests ({len(self.requests)} total):"]
        for record in self.requests[-limit:]:
            body = json.dumps(record.json)[:200] if record.json is not None else ""
            files = f" files={[f.filename for f in record.files]}" if record.files else ""
            lines.append(f"  {record.method} {record.path} -> {record.status} {body}{files}")
        return "\n".join(lines)

    # ----------------------------------------------------------------- gateway

    async def _gateway(self, request: web.Request) -> web.WebSocketResponse:
        """Serve one gateway websocket connection."""
        ws = web.WebSocketResponse()
        await ws.prepare(request)
        conn = _Connection(ws=ws)
        self._connections.append(conn)
        log.debug("gateway connection opened (%s)", request.query_string)
        try:
            await self._ws_send(
                conn, {"op": 10, "d": {"heartbeat_interval": HEARTBEAT_INTERVAL_MS}, "s": None, "t": None}
            )
            async for frame in ws:
                if frame.type is WSMsgType.TEXT:
                    await self._on_gateway_payload(conn, json.loads(frame.data))
        except ConnectionError:
            log.debug("gateway connection reset")
        finally:
            conn.ready = False
            self._connections.remove(conn)
            log.debug("gateway connection closed (code %s)", ws.close_code)
        return ws

    async def _on_gateway_payload(self, conn: _Connection, payload: dict[str, Any]) -> None:
        """Handle one client->server gateway payload."""
        op = payload.get("op")
        data = payload.get("d")
        if op == 1:
            await self._ws_send(conn, {"op": 11, "d": None, "s": None, "t": None})
        elif op == 2:
            await self._identify(conn, data or {})
        elif op == 6:
            await self._resume(conn, data or {})
        elif op == 8:
            await self._request_members(conn, data or {})
        else:
            log.debug("ignoring gateway op %s", op)

    async def _identify(self, conn: _Connection, data: dict[str, Any]) -> None:
        """Answer IDENTIFY with READY + GUILD_CREATE (or close 4004 on a bad token)."""
        if data.get("token") != self.bot_token:
            await conn.ws.close(code=4004, message=b"Authentication failed.")
            return
        shard_id, shard_count = _identified_shard(data)
        if not 0 <= shard_id < shard_count:
            await conn.ws.close(code=4010, message=b"Invalid shard.")
            return
        self.identifies.append(data)
        conn.session_id = secrets.token_hex(16)
        conn.seq = 0
        conn.shard = (shard_id, shard_count)
        self._session_shards[conn.session_id] = conn.shard
        guilds = [guild for guild in self.guilds.values() if guild.on_shard(shard_id, shard_count)]
        async with conn.lock:
            await self._write_dispatch(conn, "READY", self._ready_json(conn.session_id, data, guilds))
            for guild in guilds:
                await self._write_dispatch(conn, "GUILD_CREATE", self._guild_create_json(guild))
            conn.ready = True

    async def _resume(self, conn: _Connection, data: dict[str, Any]) -> None:
        """Answer RESUME with RESUMED for a known session, otherwise INVALID_SESSION (not resumable)."""
        session_id = data.get("session_id")
        if data.get("token") != self.bot_token or session_id not in self._sessions:
            await self._ws_send(conn, {"op": 9, "d": False, "s": None, "t": None})
            return
        self.resumes.append(data)
        for other in self._connections:
            if other is not conn and other.session_id == session_id:
                other.ready = False
        conn.session_id = session_id
        conn.seq = self._sessions[session_id]
        conn.shard = self._session_shards[session_id]
        async with conn.lock:
            await self._write_dispatch(conn, "RESUMED", {"_trace": ['["fake-gateway",{"micros":0}]']})
            conn.ready = True

    async def _request_members(self, conn: _Connection, data: dict[str, Any]) -> None:
        """Answer REQUEST_GUILD_MEMBERS with a single GUILD_MEMBERS_CHUNK."""
        guild = self.guild(int(data.get("guild_id") or self.guild_id))
        known = list(guild.members)
        wanted = [int(u) for u in data.get("user_ids") or known]
        chunk: dict[str, Any] = {
            "guild_id": str(guild.id),
            "members": [self._member_json(u, guild) for u in wanted if u in known],
            "chunk_index": 0,
            "chunk_count": 1,
            "not_found": [str(u) for u in wanted if u not in known],
        }
        if data.get("presences"):
            chunk["presences"] = []
        if data.get("nonce"):
            chunk["nonce"] = data["nonce"]
        async with conn.lock:
            await self._write_dispatch(conn, "GUILD_MEMBERS_CHUNK", chunk)

    async def _ws_send(self, conn: _Connection, payload: dict[str, Any]) -> None:
        """Send one non-dispatch gateway payload."""
        async with conn.lock:
            await conn.ws.send_str(json.dumps(payload))

    async def _write_dispatch(self, conn: _Connection, event: str, data: dict[str, Any]) -> None:
        """Send a DISPATCH on a connection whose lock the caller holds."""
        conn.seq += 1
        if conn.session_id is not None:
            self._sessions[conn.session_id] = conn.seq
        await conn.ws.send_str(json.dumps({"op": 0, "t": event, "s": conn.seq, "d": data}))

    # ----------------------------------------------------------------- REST: gateway / users / application

    async def _get_gateway(self, record: RecordedRequest, match: re.Match[str]) -> web.StreamResponse:
        """GET /gateway."""
        return _json_response({"url": self.gateway_url})

    async def _get_gateway_bot(self, record: RecordedRequest, match: re.Match[str]) -> web.StreamResponse:
        """GET /gateway/bot."""
        limit = {"total": 1000, "remaining": 999, "reset_after": 14400000, "max_concurrency": 1}
        answer = {"url": self.gateway_url, "shards": self.recommended_shards, "session_start_limit": limit}
        return _json_response(answer)

    async def _get_me(self, record: RecordedRequest, match: re.Match[str]) -> web.StreamResponse:
        """GET /users/@me."""
        me = {**self._users[self.bot_user_id], "verified": True, "mfa_enabled": False, "email": None, "locale": "en-US"}
        return _json_response(me)

    async def _get_my_guilds(self, record: RecordedRequest, match: re.Match[str]) -> web.StreamResponse:
        """GET /users/@me/guilds: the bot's guilds as partial objects, by id, paged with `after` and `limit`."""
        after = int(record.query.get("after", "0"))
        limit = min(200, int(record.query.get("limit", "200")))
        guilds = sorted((g for g in self.guilds.values() if g.id > after), key=lambda g: g.id)[:limit]
        partial: list[dict[str, Any]] = [
            {"id": str(g.id), "name": g.name, "icon": None, "banner": None, "owner": False,
             "permissions": str(ALL_BUT_ADMIN), "features": []}
            for g in guilds
        ]  # fmt: skip
        return _json_response(partial)

    async def _get_user(self, record: RecordedRequest, match: re.Match[str]) -> web.StreamResponse:
        """GET /users/{id}."""
        user = self._users.get(int(match["user"]))
        return _json_response(user) if user else _error(404, "Unknown User", 10013)

    async def _create_dm(self, record: RecordedRequest, match: re.Match[str]) -> web.StreamResponse:
        """POST /users/@me/channels."""
        recipient = (record.json or {}).get("recipient_id")
        if recipient is None:
            return _error(400, "Invalid Form Body", 50035)
        return _json_response(self._dm_channel(int(recipient)))

    async def _get_app_info(self, record: RecordedRequest, match: re.Match[str]) -> web.StreamResponse:
        """GET /oauth2/applications/@me."""
        return _json_response(self._app_info_json())

    def _command_scope(self, match: re.Match[str]) -> str | web.Response:
        """Validate an application-commands route and return its scope key."""
        if int(match["app"]) != self.application_id:
            return _error(403, "Missing Access", 50001)
        guild = match.groupdict().get("guild")
        if guild is not None and int(guild) not in self.guilds:
            return _error(404, "Unknown Guild", 10004)
        return "global" if guild is None else guild

    async def _get_commands(self, record: RecordedRequest, match: re.Match[str]) -> web.StreamResponse:
        """GET application commands (global or guild)."""
        scope = self._command_scope(match)
        if isinstance(scope, web.Response):
            return scope
        return _json_response(self.commands.get(scope, []))

    async def _put_commands(self, record: RecordedRequest, match: re.Match[str]) -> web.StreamResponse:
        """PUT (bulk overwrite) application commands, keeping ids stable per name."""
        scope = self._command_scope(match)
        if isinstance(scope, web.Response):
            return scope
        if not isinstance(record.json, list) or not all(isinstance(c, dict) and c.get("name") for c in record.json):
            return _error(400, "Invalid Form Body", 50035)
        version = str(self.next_snowflake())
        stored = []
        for command in record.json:
            command_type = int(command.get("type", 1))
            key = (scope, command["name"], command_type)
            if key not in self._command_ids:
                self._command_ids[key] = self.next_snowflake()
            out: dict[str, Any] = {
                **copy.deepcopy(command),
                "id": str(self._command_ids[key]),
                "application_id": str(self.application_id),
                "version": version,
                "type": command_type,
                "description": command.get("description", ""),
                "default_member_permissions": command.get("default_member_permissions"),
                "nsfw": command.get("nsfw", False),
                "contexts": command.get("contexts"),
                "integration_types": command.get("integration_types", [0]),
            }
            if command_type == 1:
                out.setdefault("options", [])
            if scope == "global":
                out["dm_permission"] = command.get("dm_permission", True)
            else:
                out["guild_id"] = scope
            stored.append(out)
        self.commands[scope] = stored
        return _json_response(stored)

    async def _get_guild(self, record: RecordedRequest, match: re.Match[str]) -> web.StreamResponse:
        """GET /guilds/{id}."""
        guild = self.guilds.get(int(match["guild"]))
        if guild is None:
            return _error(404, "Unknown Guild", 10004)
        return _json_response(self._guild_json(guild))

    async def _get_member(self, record: RecordedRequest, match: re.Match[str]) -> web.StreamResponse:
        """GET /guilds/{id}/members/{user}."""
        user_id = int(match["user"])
        guild = self.guilds.get(int(match["guild"]))
        if guild is None or user_id not in guild.members:
            return _error(404, "Unknown Member", 10007)
        return _json_response(self._member_json(user_id, guild))

    # ----------------------------------------------------------------- REST: channels

    def _channel_or_error(self, match: re.Match[str]) -> int | web.Response:
        """Return a known channel id from the route, or a 404."""
        channel_id = int(match["channel"])
        return channel_id if channel_id in self._channels else _error(404, "Unknown Channel", 10003)

    def _channel_message_or_error(self, match: re.Match[str]) -> dict[str, Any] | web.Response:
        """Return the message addressed by a channel message route, or a 404."""
        channel_id = self._channel_or_error(match)
        if isinstance(channel_id, web.Response):
            return channel_id
        message = self.messages.get(int(match["message"]))
        if message is None or int(message["channel_id"]) != channel_id:
            return _error(404, "Unknown Message", 10008)
        return message

    async def _get_channel(self, record: RecordedRequest, match: re.Match[str]) -> web.StreamResponse:
        """GET /channels/{id}."""
        channel_id = self._channel_or_error(match)
        if isinstance(channel_id, web.Response):
            return channel_id
        return _json_response(self._channels[channel_id])

    async def _typing(self, record: RecordedRequest, match: re.Match[str]) -> web.StreamResponse:
        """POST /channels/{id}/typing."""
        channel_id = self._channel_or_error(match)
        return channel_id if isinstance(channel_id, web.Response) else web.Response(status=204)

    async def _post_channel_message(self, record: RecordedRequest, match: re.Match[str]) -> web.StreamResponse:
        """POST /channels/{id}/messages as the bot."""
        channel_id = self._channel_or_error(match)
        if isinstance(channel_id, web.Response):
            return channel_id
        payload = record.json or {}
        if _is_empty_message(payload, record.files):
            return _error(400, "Cannot send an empty message", 50006)
        flags = int(payload.get("flags") or 0) & (
            FLAG_SUPPRESS_EMBEDS | FLAG_SUPPRESS_NOTIFICATIONS | FLAG_COMPONENTS_V2
        )
        message = self._create_message(
            channel_id=channel_id,
            author=self._users[self.bot_user_id],
            payload=payload,
            files=record.files,
            flags=flags,
        )
        return _json_response(message)

    async def _get_channel_message(self, record: RecordedRequest, match: re.Match[str]) -> web.StreamResponse:
        """GET /channels/{id}/messages/{id}."""
        message = self._channel_message_or_error(match)
        return message if isinstance(message, web.Response) else _json_response(message)

    async def _patch_channel_message(self, record: RecordedRequest, match: re.Match[str]) -> web.StreamResponse:
        """PATCH /channels/{id}/messages/{id} (only the bot's own messages)."""
        message = self._channel_message_or_error(match)
        if isinstance(message, web.Response):
            return message
        if message["author"]["id"] != str(self.bot_user_id):
            return _error(403, "Cannot edit a message authored by another user", 50005)
        self._edit_message(message, record.json or {}, record.files)
        return _json_response(message)

    async def _delete_channel_message(self, record: RecordedRequest, match: re.Match[str]) -> web.StreamResponse:
        """DELETE /channels/{id}/messages/{id}."""
        message = self._channel_message_or_error(match)
        if isinstance(message, web.Response):
            return message
        del self.messages[int(message["id"])]
        return web.Response(status=204)

    # ----------------------------------------------------------------- REST: interactions / webhooks

    async def _interaction_callback(self, record: RecordedRequest, match: re.Match[str]) -> web.StreamResponse:
        """POST /interactions/{id}/{token}/callback."""
        state = self._states.get(int(match["id"]))
        if state is None or state.sent.token != match["token"] or state.expired:
            return _error(404, "Unknown interaction", 10062)
        if time.monotonic() - state.dispatched_at > self.ack_deadline:
            return _error(404, "Unknown interaction", 10062)
        if state.acknowledged:
            return _error(400, "Interaction has already been acknowledged.", 40060)
        body = record.json if isinstance(record.json, dict) else {}
        callback_type = body.get("type")
        data: dict[str, Any] = body.get("data") or {}
        if callback_type not in (1, 4, 5, 6, 7, 8, 9):
            return _error(400, "Invalid Form Body", 50035)
        if callback_type == 4 and _is_empty_message(data, record.files):
            return _error(400, "Cannot send an empty message", 50006)

        state.acknowledged = True
        message: dict[str, Any] | None = None
        if callback_type == 4:
            flags = int(data.get("flags") or 0) & SENDABLE_FLAGS
            message = self._interaction_message(state, data, record.files, flags=flags, followup=False)
            state.original_message_id = int(message["id"])
        elif callback_type == 5:
            flags = FLAG_LOADING | (int(data.get("flags") or 0) & FLAG_EPHEMERAL)
            message = self._interaction_message(state, {}, [], flags=flags, followup=False)
            state.original_message_id = int(message["id"])
        elif callback_type in (6, 7) and state.source_message_id is not None:
            message = self.messages.get(state.source_message_id)
            state.original_message_id = state.source_message_id
            state.message_ids.add(state.source_message_id)
            if callback_type == 7 and message is not None:
                self._edit_message(message, data, record.files)

        response: dict[str, Any] = {"interaction": {"id": str(state.sent.id), "type": state.sent.payload["type"]}}
        if message is not None:
            response["interaction"].update(
                response_message_id=message["id"],
                response_message_loading=bool(message["flags"] & FLAG_LOADING),
                response_message_ephemeral=bool(message["flags"] & FLAG_EPHEMERAL),
            )
            if callback_type in (4, 5, 7):
                response["resource"] = {"type": callback_type, "message": message}
        return _json_response(response)

    def _webhook_state(self, match: re.Match[str]) -> _InteractionState | web.Response:
        """Resolve an interaction webhook (application id + token) or return the Discord error."""
        state = self._states_by_token.get(match["token"])
        if int(match["app"]) != self.application_id or state is None:
            return _error(404, "Unknown Webhook", 10015)
        if state.expired:
            return _error(401, "Invalid Webhook Token", 50027)
        if not state.acknowledged:
            return _error(404, "Unknown Webhook", 10015)
        return state

    def _webhook_message(self, match: re.Match[str]) -> dict[str, Any] | web.Response:
        """Resolve the message addressed by an interaction webhook message route."""
        state = self._webhook_state(match)
        if isinstance(state, web.Response):
            return state
        ref = match["message"]
        message_id = state.original_message_id if ref == "@original" else int(ref)
        if message_id is None or message_id not in state.message_ids or message_id not in self.messages:
            return _error(404, "Unknown Message", 10008)
        return self.messages[message_id]

    async def _execute_webhook(self, record: RecordedRequest, match: re.Match[str]) -> web.StreamResponse:
        """POST /webhooks/{app}/{token}: an interaction followup message."""
        state = self._webhook_state(match)
        if isinstance(state, web.Response):
            return state
        payload = record.json or {}
        if _is_empty_message(payload, record.files):
            return _error(400, "Cannot send an empty message", 50006)
        flags = int(payload.get("flags") or 0) & SENDABLE_FLAGS
        message = self._interaction_message(state, payload, record.files, flags=flags, followup=True)
        if record.query.get("wait", "").lower() in ("1", "true"):
            return _json_response(message)
        return web.Response(status=204)

    async def _get_webhook_message(self, record: RecordedRequest, match: re.Match[str]) -> web.StreamResponse:
        """GET /webhooks/{app}/{token}/messages/{id|@original}."""
        message = self._webhook_message(match)
        return message if isinstance(message, web.Response) else _json_response(message)

    async def _patch_webhook_message(self, record: RecordedRequest, match: re.Match[str]) -> web.StreamResponse:
        """PATCH /webhooks/{app}/{token}/messages/{id|@original}."""
        message = self._webhook_message(match)
        if isinstance(message, web.Response):
            return message
        self._edit_message(message, record.json or {}, record.files)
        return _json_response(message)

    async def _delete_webhook_message(self, record: RecordedRequest, match: re.Match[str]) -> web.StreamResponse:
        """DELETE /webhooks/{app}/{token}/messages/{id|@original}."""
        message = self._webhook_message(match)
        if isinstance(message, web.Response):
            return message
        del self.messages[int(message["id"])]
        return web.Response(status=204)
