"""Provider clients: one module per remote image API, all behind `providers.base.Provider`.

Adding a provider: a module with a client class that implements `Provider`, its models and extra options in
`catalog.PROVIDERS` (or a `<name>_models` module here that catalog.py imports), its settings in `config.Settings`,
and one line in `build_providers`.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import aiohttp

from fluxbot.providers.base import (
    CallbackRefused,
    ErrorKind,
    Image,
    JobRequest,
    Provider,
    ProviderError,
    Submitted,
    TaskRef,
    TaskState,
    TaskStatus,
)

if TYPE_CHECKING:
    from fluxbot.config import Settings

__all__ = [
    "CallbackRefused",
    "ErrorKind",
    "Image",
    "JobRequest",
    "Provider",
    "ProviderError",
    "Submitted",
    "TaskRef",
    "TaskState",
    "TaskStatus",
    "build_providers",
]


def build_providers(settings: Settings, session: aiohttp.ClientSession) -> dict[str, Provider]:
    """A client for every provider that has a key: the active one takes new jobs, the others finish old ones."""
    # The clients are imported here, not above: catalog.py imports this package's model modules (bfl_models,
    # fal_models), and the clients import config, which imports catalog; importing them with the package would
    # close that cycle.
    from fluxbot.providers.acedata import AceDataFlux
    from fluxbot.providers.bfl import BflFlux
    from fluxbot.providers.fal import FalFlux
    from fluxbot.providers.kie import KieFlux

    clients: dict[str, Provider] = {}
    if settings.acedata_api_token is not None:
        clients["acedata"] = AceDataFlux(session, settings.acedata_api_token, settings.flux_api_base_url)
    if settings.kie_api_token is not None:
        clients["kie"] = KieFlux(
            session, settings.kie_api_token, settings.kie_api_base_url, webhook_key=settings.kie_webhook_hmac_key
        )
    if settings.bfl_api_key is not None:
        clients["bfl"] = BflFlux(
            session, settings.bfl_api_key, settings.bfl_api_base_url, webhook_secret=settings.bfl_webhook_secret
        )
    if settings.fal_key is not None:
        clients["fal"] = FalFlux(
            session,
            settings.fal_key,
            settings.fal_queue_url,
            settings.fal_jwks_url,
            webhooks=settings.callback_base_url is not None,
        )
    return clients
