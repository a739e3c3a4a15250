"""How many provider tasks a job needs, and whether the provider and the model have room for them now.

A job of `count` images on a model that makes `images_per_task` per task holds ceil(count / images_per_task)
tasks. `claim` takes a queued job only when they all fit: the provider's `max_active_tasks` (the account's
concurrency) and the model's, counted over every job at the provider, on top of MAX_JOBS_IN_FLIGHT (jobs).
"""

from __future__ import annotations

from collections.abc import Mapping

from fluxbot import catalog
from fluxbot.catalog import ProviderInfo

#: The most tasks one job holds (a job makes at most four images).
MAX_TASKS = 4


def images_per_task(info: ProviderInfo | None, model: str) -> int:
    """Images one task of `model` makes (a model the catalogue does not know: all of a job's in one task)."""
    try:
        found = catalog.get_model(info, model) if info is not None else None
    except KeyError:
        found = None
    return max(1, found.images_per_task) if found is not None else MAX_TASKS


def task_counts(info: ProviderInfo | None, model: str, count: int) -> list[int]:
    """The images each of a job's tasks makes: [4] for four at once, [1, 1, 1, 1] one by one, [2, 1], ..."""
    per_task = images_per_task(info, model)
    counts: list[int] = []
    left = max(1, count)
    while left > 0 and len(counts) < MAX_TASKS:
        counts.append(min(per_task, left))
        left -= per_task
    return counts


def tasks_needed(infos: Mapping[str, ProviderInfo], provider: str, model: str, count: int) -> int:
    """How many tasks a job of `count` images on the provider's `model` holds."""
    return len(task_counts(infos.get(provider), model, count))
