"""The bot's Prometheus metrics (prometheus-client): what it counts as it goes, and what it reads at each scrape.

Counters and histograms live in this process's `Metrics` (its own registry, never prometheus-client's global
one). What the database or the gateway knows (jobs by state, the queue, shards, round trips, health) is read at
scrape time by `Exposition`, one per bot, so a restart or a second process never counts it twice. Every series
carries an `instance` label (INSTANCE_NAME), so the processes of one bot can be told apart.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field

from prometheus_client import CollectorRegistry, Counter, Histogram, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric

from fluxbot.shards import ShardState

#: Command to delivered reply, and finished to delivered: seconds to (at worst) many minutes.
LATENCY_BUCKETS = (0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0, 300.0, 600.0)
#: One provider request: tens of milliseconds to its timeout (35 s).
PROVIDER_BUCKETS = (0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 20.0, 35.0, 60.0)


class Metrics:
    """What fluxbot counts as it goes, in a registry of its own. One per process (`METRICS`)."""

    def __init__(self) -> None:
        self.registry = registry = CollectorRegistry()
        self.jobs_submitted = Counter(
            "fluxbot_jobs_submitted_total", "Jobs sent to a provider.", ("provider", "model"), registry=registry
        )
        self.jobs_finished = Counter(
            "fluxbot_jobs_finished_total",
            "Jobs that reached an outcome, by status (succeeded, failed, timed_out).",
            ("provider", "model", "status"),
            registry=registry,
        )
        self.job_failures = Counter(
            "fluxbot_job_failures_total",
            "Jobs that ended without images, by why (the failure kind a failed or timed-out job was given).",
            ("provider", "model", "kind"),
            registry=registry,
        )
        self.provider_calls = Counter(
            "fluxbot_provider_calls_total", "Calls to provider APIs.", ("provider", "call"), registry=registry
        )
        self.provider_errors = Counter(
            "fluxbot_provider_errors_total",
            "Failed provider calls, by error code.",
            ("provider", "call", "code"),
            registry=registry,
        )
        self.provider_latency = Histogram(
            "fluxbot_provider_request_duration_seconds",
            "Seconds one provider API call took, answered or failed.",
            ("provider", "call"),
            buckets=PROVIDER_BUCKETS,
            registry=registry,
        )
        self.discord_edit_failures = Counter(
            "fluxbot_discord_edit_failures_total",
            "Reply edits Discord refused or failed (kind: progress card or result).",
            ("kind", "retryable"),
            registry=registry,
        )
        self.job_latency = Histogram(
            "fluxbot_job_seconds",
            "From the command to the delivered reply.",
            buckets=LATENCY_BUCKETS,
            registry=registry,
        )
        self.delivery_latency = Histogram(
            "fluxbot_delivery_seconds",
            "From the bot learning a job finished (poll or callback) to the reply showing it.",
            buckets=LATENCY_BUCKETS,
            registry=registry,
        )


@dataclass(frozen=True)
class Readings:
    """What /metrics reads from the running bot at one scrape."""

    #: Jobs open or awaiting delivery, by state; None when the database could not say.
    jobs_by_state: Mapping[str, int] | None
    shards: Sequence[ShardState] = ()
    round_trips: int = 0
    #: The /healthz checks by name, True when passing.
    health: Mapping[str, bool] = field(default_factory=dict)


class Exposition:
    """One bot's /metrics: its process's counters and its readings, every series labelled with its instance."""

    def __init__(self, instance: str, metrics: Metrics | None = None) -> None:
        self._instance = instance
        self._readings = Readings(None)
        self.registry = CollectorRegistry()
        self.registry.register(_Labelled((metrics or METRICS).registry, instance))
        self.registry.register(self)

    def render(self, readings: Readings) -> bytes:
        """The text exposition (prometheus-client's `generate_latest`) with these readings."""
        self._readings = readings
        return generate_latest(self.registry)

    def collect(self) -> Iterable[Metric]:
        """The families read at scrape time (prometheus-client's collector interface)."""
        readings, instance = self._readings, self._instance
        if readings.jobs_by_state is not None:
            jobs = GaugeMetricFamily(
                "fluxbot_jobs", "Jobs open or awaiting delivery, by state.", labels=("instance", "state")
            )
            for state, count in sorted(readings.jobs_by_state.items()):
                jobs.add_metric((instance, state), count)
            queue = GaugeMetricFamily(
                "fluxbot_queue_length",
                "Jobs waiting for a free slot at the provider (the jobs in state queued).",
                labels=["instance"],
            )
            queue.add_metric((instance,), readings.jobs_by_state.get("queued", 0))
            yield from (jobs, queue)
        connected = GaugeMetricFamily(
            "fluxbot_shard_connected",
            "Whether each Discord shard of this process is connected (1) or not (0).",
            labels=("instance", "shard"),
        )
        latency = GaugeMetricFamily(
            "fluxbot_shard_latency_seconds",
            "Seconds from a shard's heartbeat to Discord's answer (NaN until one was answered).",
            labels=("instance", "shard"),
        )
        for shard in readings.shards:
            connected.add_metric((instance, str(shard.id)), float(shard.connected))
            latency.add_metric((instance, str(shard.id)), math.nan if shard.latency is None else shard.latency)
        round_trips = CounterMetricFamily(
            "fluxbot_database_round_trips",
            "Statements and queries this process sent to the database.",
            labels=["instance"],
        )
        round_trips.add_metric((instance,), readings.round_trips)
        health = GaugeMetricFamily(
            "fluxbot_health_check",
            "Each /healthz check (gateway, database writable, tracker): passing (1) or not (0).",
            labels=("check", "instance"),
        )
        for check, passing in sorted(readings.health.items()):
            health.add_metric((check, instance), float(passing))
        yield from (connected, latency, round_trips, health)


class _Labelled:
    """Every family of `source` with the `instance` label added (and without the `_created` series)."""

    def __init__(self, source: CollectorRegistry, instance: str) -> None:
        self._source, self._instance = source, instance

    def collect(self) -> Iterable[Metric]:
        for family in self._source.collect():
            labelled = Metric(family.name, family.documentation, family.type, family.unit)
            labelled.samples = [
                sample._replace(labels={"instance": self._instance, **sample.labels})
                for sample in family.samples
                if sample.name != f"{family.name}_created"  # a process's start time per series: noise here
            ]
            yield labelled


METRICS = Metrics()
