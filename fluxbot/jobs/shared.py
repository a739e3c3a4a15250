"""What the job core's parts share, handed to each once (the store, the providers, the clock, the records), and
how they start background work."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Coroutine, Mapping
from dataclasses import dataclass
from typing import Any, TypeVar

from fluxbot.catalog import ProviderInfo
from fluxbot.jobs.durations import Durations
from fluxbot.jobs.persist import Persistence
from fluxbot.providers.base import Provider
from fluxbot.storage import Store

log = logging.getLogger(__name__)
T = TypeVar("T")


@dataclass(frozen=True)
class Shared:
    """The job core's common means (built once by `service.Jobs`)."""

    store: Store
    #: Every provider with a key, by name: jobs finish on the provider that started them.
    providers: Mapping[str, Provider]
    clock: Callable[[], float]
    durations: Durations
    persistence: Persistence
    #: What each provider offers, by name (its models' `images_per_task`, its concurrency, its links' lifetime).
    infos: Mapping[str, ProviderInfo]


def spawn(work: Coroutine[Any, Any, T], name: str, into: set[asyncio.Task[Any]]) -> asyncio.Task[T]:
    """Run `work` in a task kept in `into` until it ends; a failure is logged, never lost with the task."""
    task = asyncio.create_task(work, name=name)
    into.add(task)
    task.add_done_callback(_ended(into))
    return task


def _ended(into: set[asyncio.Task[Any]]) -> Callable[[asyncio.Task[Any]], None]:
    def done(task: asyncio.Task[Any]) -> None:
        into.discard(task)
        if not task.cancelled() and (exc := task.exception()) is not None:
            log.error("%s failed", task.get_name(), exc_info=exc)

    return done
