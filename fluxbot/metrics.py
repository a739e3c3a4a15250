"""Counters and histograms in the Prometheus text format (0.0.4), kept in memory; no extra dependency.

Every series carries an `instance` label (INSTANCE_NAME), so the processes of one bot can be told apart.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

from fluxbot.shards import ShardState

log = logging.getLogger(__name__)

SHARD_CONNECTED_HELP = "Whether each Discord shard of this process is connected (1) or not (0)."
ROUND_TRIPS_HELP = "Statements and queries this process sent to the database."
SHARD_LATENCY_HELP = "Seconds from a shard's heartbeat to Discord's answer (NaN until one was answered)."
LATENCY_BUCKETS = (0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0, 300.0, 600.0)


def _escape(value: str) -> str:
    return value.replace("\\", "\\\\").replace("\n", "\\n").replace('"', '\\"')


def _labels(names: Sequence[str], values: Sequence[str]) -> str:
    pairs = [f'{n}="{_escape(v)}"' for n, v in zip(names, values, strict=True)]
    return "{" + ",".join(pairs) + "}" if pairs else ""


def _number(value: float) -> str:
    if math.isnan(value):
        return "NaN"
    if math.isinf(value):
        return "+Inf" if value > 0 else "-Inf"
    return repr(float(value)) if not float(value).is_integer() else str(int(value))


@dataclass
class Counter:
    """A monotonically increasing count per label set."""

    name: str
    help: str
    labels: tuple[str, ...] = ()
    values: dict[tuple[str, ...], float] = field(default_factory=dict)

    def inc(self, *labels: str, by: float = 1.0) -> None:
        """Add `by` for this label set."""
        self.values[labels] = self.values.get(labels, 0.0) + by

    def render(self, instance: str) -> Iterable[str]:
        """Exposition lines."""
        yield f"# HELP {self.name} {self.help}"
        yield f"# TYPE {self.name} counter"
        for labels, value in sorted(self.values.items()):
            yield f"{self.name}{_labels(('instance', *self.labels), (instance, *labels))} {_number(value)}"


@dataclass
class Histogram:
    """Observations counted into cumulative buckets."""

    name: str
    help: str
    buckets: tuple[float, ...] = LATENCY_BUCKETS
    counts: list[int] = field(init=False)
    total: float = 0.0
    observed: int = 0

    def __post_init__(self) -> None:
        self.counts = [0] * len(self.buckets)

    def observe(self, value: float) -> None:
        """Count one observation."""
        for index, bound in enumerate(self.buckets):
            if value <= bound:
                self.counts[index] += 1
        self.total += value
        self.observed += 1

    def render(self, instance: str) -> Iterable[str]:
        """Exposition lines."""
        yield f"# HELP {self.name} {self.help}"
        yield f"# TYPE {self.name} histogram"
        for bound, count in (*zip(self.buckets, self.counts, strict=True), (math.inf, self.observed)):
            yield f"{self.name}_bucket{_labels(('instance', 'le'), (instance, _number(bound)))} {count}"
        yield f"{self.name}_sum{_labels(('instance',), (instance,))} {_number(self.total)}"
        yield f"{self.name}_count{_labels(('instance',), (instance,))} {self.observed}"


@dataclass
class Metrics:
    """Everything fluxbot counts. One instance per process (`METRICS`)."""

    jobs_submitted: Counter = field(
        default_factory=lambda: Counter(
            "fluxbot_jobs_submitted_total", "Jobs sent to a provider.", ("provider", "model")
        )
    )
    jobs_finished: Counter = field(
        default_factory=lambda: Counter(
            "fluxbot_jobs_finished_total", "Jobs that reached an outcome.", ("provider", "model", "status")
        )
    )
    provider_calls: Counter = field(
        default_factory=lambda: Counter("fluxbot_provider_calls_total", "Calls to provider APIs.", ("provider", "call"))
    )
    provider_errors: Counter = field(
        default_factory=lambda: Counter(
            "fluxbot_provider_errors_total", "Failed provider calls, by error code.", ("provider", "call", "code")
        )
    )
    discord_edit_failures: Counter = field(
        default_factory=lambda: Counter(
            "fluxbot_discord_edit_failures_total", "Reply edits Discord refused or failed.", ("kind", "retryable")
        )
    )
    job_latency: Histogram = field(
        default_factory=lambda: Histogram("fluxbot_job_seconds", "From the command to the delivered reply.")
    )
    delivery_latency: Histogram = field(
        default_factory=lambda: Histogram(
            "fluxbot_delivery_seconds",
            "From the bot learning a job finished (poll or callback) to the reply showing it.",
        )
    )

    def render(
        self, jobs_by_state: dict[str, int], *, instance: str, shards: Sequence[ShardState] = (), round_trips: int = 0
    ) -> str:
        """The whole exposition, with the current number of jobs in each state, this process's shards and its
        database round trips."""
        states = sorted(jobs_by_state.items())
        connected = [(str(shard.id), float(shard.connected)) for shard in shards]
        latency = [(str(shard.id), math.nan if shard.latency is None else shard.latency) for shard in shards]
        lines = [
            *_gauge("fluxbot_jobs", "Jobs open or awaiting delivery, by state.", instance, "state", states),
            *_gauge("fluxbot_shard_connected", SHARD_CONNECTED_HELP, instance, "shard", connected),
            *_gauge("fluxbot_shard_latency_seconds", SHARD_LATENCY_HELP, instance, "shard", latency),
            f"# HELP fluxbot_database_round_trips_total {ROUND_TRIPS_HELP}",
            "# TYPE fluxbot_database_round_trips_total counter",
            f"fluxbot_database_round_trips_total{_labels(('instance',), (instance,))} {round_trips}",
        ]
        for metric in (
            self.jobs_submitted, self.jobs_finished, self.provider_calls, self.provider_errors,
            self.discord_edit_failures, self.job_latency, self.delivery_latency,
        ):  # fmt: skip
            lines += list(metric.render(instance))
        return "\n".join(lines) + "\n"


def _gauge(name: str, text: str, instance: str, label: str, samples: Iterable[tuple[str, float]]) -> Iterable[str]:
    """A gauge's exposition lines (HELP `text`), one sample per value of `label`, in the order given."""
    yield f"# HELP {name} {text}"
    yield f"# TYPE {name} gauge"
    for key, value in samples:
        yield f"{name}{_labels(('instance', label), (instance, key))} {_number(value)}"


METRICS = Metrics()
