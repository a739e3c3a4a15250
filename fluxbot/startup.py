"""What the bot says as it starts: the link that invites it, and whether the provider takes its key."""

from __future__ import annotations

import asyncio
import logging

import discord

from fluxbot.catalog import ProviderInfo
from fluxbot.config import ConfigError
from fluxbot.providers.base import ErrorKind, Provider, ProviderError

log = logging.getLogger(__name__)

#: What the bot needs in a channel: see it, answer and post results (with embeds and files, in threads too), and
#: read the history to show a result again from its first reply (/job) instead of uploading it twice.
PERMISSIONS = discord.Permissions(
    view_channel=True,
    send_messages=True,
    send_messages_in_threads=True,
    embed_links=True,
    attach_files=True,
    read_message_history=True,
)
SCOPES = ("bot", "applications.commands")
KEY_CHECK_SECONDS = 10.0


def invite_url(application_id: int) -> str:
    """The link that adds the bot to a server with the permissions and scopes it needs."""
    return discord.utils.oauth_url(application_id, permissions=PERMISSIONS, scopes=SCOPES)


async def check_provider_key(provider: Provider, info: ProviderInfo) -> None:
    """Ask the provider one cheap authenticated question; ConfigError when it refuses the key or the address.

    A provider that cannot be reached or answer now does not stop the start (it is logged): jobs wait for it.
    """
    try:
        await asyncio.wait_for(provider.check_key(), KEY_CHECK_SECONDS)
    except TimeoutError:
        log.warning("%s did not answer the key check within %.0f s; starting anyway", info.label, KEY_CHECK_SECONDS)
        return
    except ProviderError as exc:
        if exc.kind is ErrorKind.AUTH:
            raise ConfigError(info.key_setting, f"{info.label} refused this key ({_said(exc)})") from None
        if exc.kind is ErrorKind.MISCONFIGURED:
            problem = f"{info.label} answered that the bot is set up wrongly ({_said(exc)}): check this address"
            raise ConfigError(info.url_setting, f"{problem} and that the account may use this API") from None
        if exc.kind is ErrorKind.OUT_OF_CREDIT:
            log.error("%s says the account is out of credit: jobs will fail until it is topped up", info.label)
            return
        log.warning("could not check the %s key now (%s); starting anyway", info.label, exc.kind.value)
        return
    log.info("%s accepted the key", info.label)


def _said(exc: ProviderError) -> str:
    return f"HTTP {exc.http_status}, code {exc.code}" if exc.code else f"HTTP {exc.http_status}"
