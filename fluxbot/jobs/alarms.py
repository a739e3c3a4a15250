"""Operator problems (a refused key, no credit, no access) are logged once as such, not once per job or lookup.

Fifty members' jobs failing on one expired key would otherwise bury the one line that matters in fifty.
"""

from __future__ import annotations

import time
from collections.abc import Callable

from fluxbot.providers.base import ProviderError

#: After this long, a problem still there is logged at ERROR again (someone may have missed the first line).
REPEAT_AFTER = 600.0


class OperatorAlarms:
    """Remembers which operator problems were last reported when."""

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self._clock = clock
        self._reported: dict[tuple[str, str], float] = {}

    def first(self, provider: str, exc: ProviderError) -> bool:
        """True when this problem of this provider is to be logged as an operator problem now."""
        key, now = (provider, exc.kind.value), self._clock()
        last = self._reported.get(key)
        if last is not None and now - last < REPEAT_AFTER:
            return False
        self._reported[key] = now
        return True

    def forget(self) -> None:
        """Forget every problem reported (the next of each is logged as new)."""
        self._reported.clear()


#: The process's alarms (like the metrics: one bot per process).
ALARMS = OperatorAlarms()
