"""How long each model's jobs usually take at the provider: when to look tasks up, and what the card promises."""

from __future__ import annotations

from bisect import bisect_right
from collections import deque
from dataclasses import dataclass

#: How many of a model's latest durations are kept (and read back at start-up).
HISTORY = 200
#: Fewer durations than this say too little: the defaults apply.
ENOUGH = 3


@dataclass(frozen=True)
class Estimate:
    """A model's usual durations in seconds: most jobs end between `early` and `late`, half by `typical`."""

    early: float
    typical: float
    late: float


class Durations:
    """The latest durations per (provider, model), and the estimates they give."""

    def __init__(self) -> None:
        self._seen: dict[tuple[str, str], deque[float]] = {}
        self._sorted: dict[tuple[str, str], list[float]] = {}  # the same, in order (made again after an add)

    def add(self, provider: str, model: str, seconds: float) -> None:
        """Record how long one job took at the provider."""
        if seconds >= 0:
            self._seen.setdefault((provider, model), deque(maxlen=HISTORY)).append(seconds)
            self._sorted.pop((provider, model), None)

    def load(self, provider: str, model: str, newest_first: list[float]) -> None:
        """Start from durations read back from the database."""
        for seconds in reversed(newest_first[:HISTORY]):
            self.add(provider, model, seconds)

    def estimate(self, provider: str, model: str) -> Estimate | None:
        """The usual durations, or None while too few jobs of this model have finished."""
        ordered = self._ordered(provider, model)
        if ordered is None:
            return None
        return Estimate(_quantile(ordered, 0.05), _quantile(ordered, 0.5), _quantile(ordered, 0.95))

    def chance(self, provider: str, model: str, age: float, later: float) -> float:
        """The chance that a job running for `age` seconds ends by `later` (1.0 past every job seen so far)."""
        ordered = self._ordered(provider, model)
        if ordered is None:
            return 1.0
        done_by_age = _share_done(ordered, age)
        if done_by_age >= 1.0:
            return 1.0
        return (_share_done(ordered, later) - done_by_age) / (1.0 - done_by_age)

    def _ordered(self, provider: str, model: str) -> list[float] | None:
        key = (provider, model)
        seen = self._seen.get(key)
        if seen is None or len(seen) < ENOUGH:
            return None
        if key not in self._sorted:
            self._sorted[key] = sorted(seen)
        return self._sorted[key]


def _share_done(ordered: list[float], seconds: float) -> float:
    """The share of jobs done within `seconds`, drawn straight between the durations seen (a few jobs say little
    about the gaps between them, so no gap counts as a moment in which nothing ever ends)."""
    place = bisect_right(ordered, seconds)
    if place == 0:
        return 0.0
    if place == len(ordered):
        return 1.0
    low, high = ordered[place - 1], ordered[place]
    within = (seconds - low) / (high - low) if high > low else 1.0
    return (place + within) / (len(ordered) + 1)


def _quantile(ordered: list[float], q: float) -> float:
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]
