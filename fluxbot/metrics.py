"""Counters and histograms in the Prometheus text format (0.0.4), kept in memory; no extra dependency."""

from __future__ import annotations

import logging
import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

log = logging.getLogger(__name__)

LATENCY_BUCKETS = (0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0, 300.0, 600.0)


def _escape(value: str) -> str:
    return value.replace("\\", "\\\\").replace("\n", "\\n").replace('"', '\\"')


def _labels(names: Sequence[str], values: Sequence[str], extra: str = "") -> str:
    pairs = [f'{n}="{_escape(v)}"' for n, v in zip(names, values, strict=True)]
    if extra:
        pairs.append(extra)
    return "{" + ",".join(pairs) + "}" if pairs else ""


def _number(value: float) -> str:
    if math.isinf(value):
        return "+Inf"
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

    def render(self) -> Iterable[str]:
        """Exposition lines."""
        yield f"# HELP {self.name} {self.help}"
        yield f"# TYPE {self.name} counter"
        for labels, value in sorted(self.values.items()):
            yield f"{self.name}{_labels(self.labels, labels)} {_number(value)}"


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

    def render(self) -> Iterable[str]:
        """Exposition lines."""
        yield f"# HELP {self.name} {self.help}"
        yield f"# TYPE {self.name} histogram"
        for bound, count in zip(self.buckets, self.counts, strict=True):
            yield f'{self.name}_bucket{{le="{_number(bound)}"}} {count}'
        yield f'{self.name}_bucket{{le="+Inf"}} {self.observed}'
        yield f"{self.name}_sum {_number(self.total)}"
        yield f"{self.name}_count {self.observed}"


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

    def render(self, jobs_by_state: dict[str, int]) -> str:
        """The whole exposition, with the current number of jobs in each state."""
        lines = ["# HELP fluxbot_jobs Jobs open or awaiting delivery, by state.", "# TYPE fluxbot_jobs gauge"]
        lines += [f'fluxbot_jobs{{state="{_escape(state)}"}} {count}' for state, count in sorted(jobs_by_state.items())]
        for metric in (
            self.jobs_submitted, self.jobs_finished, self.provider_calls, self.provider_errors,
            self.discord_edit_failures, self.job_latency, self.delivery_latency,
        ):  # fmt: skip
            lines += list(metric.render())
        return "\n".join(lines) + "\n"


METRICS = Metrics()
