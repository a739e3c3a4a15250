"""How long each model's jobs usually take at the provider: when to look tasks up, and what the card promises."""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass

#: How many of a model's latest durations are kept (and read back at start-up).
HISTORY = 200
#: Fewer durations than this say too little: the defaults apply.
ENOUGH = 5


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

    def add(self, provider: str, model: str, seconds: float) -> None:
        """Record how long one job took at the provider."""
        if seconds >= 0:
            self._seen.setdefault((provider, model), deque(maxlen=HISTORY)).append(seconds)

    def load(self, provider: str, model: str, newest_first: list[float]) -> None:
        """Start from durations read back from the database."""
        for seconds in reversed(newest_first[:HISTORY]):
            self.add(provider, model, seconds)

    def estimate(self, provider: str, model: str) -> Estimate | None:
        """The usual durations, or None while too few jobs of this model have finished."""
        seen = self._seen.get((provider, model))
        if seen is None or len(seen) < ENOUGH:
            return None
        ordered = sorted(seen)
        return Estimate(_quantile(ordered, 0.05), _quantile(ordered, 0.5), _quantile(ordered, 0.95))


def _quantile(ordered: list[float], q: float) -> float:
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]
