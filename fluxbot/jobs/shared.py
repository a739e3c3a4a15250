"""What the job core's parts share, handed to each once: the store, the providers, the clock and the records."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass

from fluxbot.jobs.durations import Durations
from fluxbot.jobs.persist import Persistence
from fluxbot.providers.base import Provider
from fluxbot.storage import Store


@dataclass(frozen=True)
class Shared:
    """The job core's common means (built once by `service.Jobs`)."""

    store: Store
    #: Every provider with a key, by name: jobs finish on the provider that started them.
    providers: Mapping[str, Provider]
    clock: Callable[[], float]
    durations: Durations
    persistence: Persistence
