"""How many provider tasks a job needs, and whether the provider and the model have room for them now.

A job of `count` images on a model that makes `images_per_task` per task holds ceil(count / images_per_task)
tasks. `claim` takes a queued job only when they all fit: the provider's `max_active_tasks` (the account's
concurrency) and the model's, counted over every job at the provider, on top of MAX_JOBS_IN_FLIGHT (jobs).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

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


@dataclass(frozen=True)
class AtProvider:
    """A job at a provider, for the claim: how many of its tasks run there (a pending job: all it is sending)."""

    provider: str
    model: str
    tasks: int


@dataclass(frozen=True)
class Waiting:
    """The first job in line for one model of a provider, for the claim."""

    id: int
    provider: str
    model: str
    count: int


class Capacity:
    """The tasks providers and models may run at once, and how many tasks a job needs: what `claim` keeps."""

    def __init__(self, infos: Mapping[str, ProviderInfo]) -> None:
        self._infos = infos
        #: False when no provider or model limits its tasks: then a claim counts jobs only (MAX_JOBS_IN_FLIGHT).
        self.limited = any(
            info.max_active_tasks is not None or any(model.max_active_tasks is not None for model in info.models)
            for info in infos.values()
        )

    def tasks(self, provider: str, model: str, count: int) -> int:
        """How many tasks a job of `count` images on the provider's `model` holds."""
        return tasks_needed(self._infos, provider, model, count)

    def next_job(self, waiting: Sequence[Waiting], at_provider: Sequence[AtProvider], *, jobs: int) -> int | None:
        """The id of the job to claim now, or None: the oldest first in line whose tasks all fit, with fewer than
        `jobs` jobs at the providers.

        A job whose tasks do not fit the provider's limit holds up the provider's later jobs (a big job is not
        overtaken for ever by small ones); one that does not fit its model's limit holds up that model's only. A
        job needing more tasks than a limit itself starts when nothing else runs there.
        """
        if len(at_provider) >= jobs:
            return None
        by_provider: Counter[str] = Counter()
        by_model: Counter[tuple[str, str]] = Counter()
        for running in at_provider:
            by_provider[running.provider] += running.tasks
            by_model[(running.provider, running.model)] += running.tasks
        held: set[str] = set()
        for job in sorted(waiting, key=lambda w: w.id):
            if job.provider in held:
                continue
            need = self.tasks(job.provider, job.model, job.count)
            if not _fits(by_model[(job.provider, job.model)], need, self._model_limit(job.provider, job.model)):
                continue
            info = self._infos.get(job.provider)
            if not _fits(by_provider[job.provider], need, info.max_active_tasks if info is not None else None):
                held.add(job.provider)
                continue
            return job.id
        return None

    def _model_limit(self, provider: str, model: str) -> int | None:
        info = self._infos.get(provider)
        try:
            return catalog.get_model(info, model).max_active_tasks if info is not None else None
        except KeyError:
            return None


def _fits(running: int, need: int, limit: int | None) -> bool:
    return limit is None or running == 0 or running + need <= limit
