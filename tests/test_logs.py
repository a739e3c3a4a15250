"""The rate-limited logger: one line per kind and period, with a count of the lines held back."""

from __future__ import annotations

import logging

import pytest

from fluxbot.logs import RateLimitedLog


class Clock:
    """A clock the test moves by hand."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def logger(caplog: pytest.LogCaptureFixture) -> logging.Logger:
    caplog.set_level(logging.INFO, logger="test.ratelimit")
    return logging.getLogger("test.ratelimit")


def lines(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.name == "test.ratelimit"]


def test_a_flood_writes_one_line_a_period_and_counts_the_rest(
    logger: logging.Logger, clock: Clock, caplog: pytest.LogCaptureFixture
) -> None:
    limited = RateLimitedLog(logger, seconds=60, clock=clock)
    assert limited.log("wrong secret", "wrong secret from %s", "10.0.0.1")
    for _ in range(1559):
        clock.now += 0.01
        assert not limited.log("wrong secret", "wrong secret from %s", "10.0.0.2")
    assert lines(caplog) == ["wrong secret from 10.0.0.1"]
    clock.now = 1060.0
    assert limited.log("wrong secret", "wrong secret from %s", "10.0.0.3")
    assert lines(caplog)[-1] == "wrong secret from 10.0.0.3 (and 1,559 more in the last 60 s)"
    assert all(r.levelno == logging.WARNING for r in caplog.records)
    # The count restarts: the next period's first line carries no count.
    clock.now += 61
    limited.log("wrong secret", "wrong secret from %s", "10.0.0.4")
    assert lines(caplog)[-1] == "wrong secret from 10.0.0.4"


def test_kinds_are_limited_apart(logger: logging.Logger, clock: Clock, caplog: pytest.LogCaptureFixture) -> None:
    limited = RateLimitedLog(logger, seconds=60, clock=clock)
    for _ in range(3):
        limited.log("wrong secret", "wrong secret")
        limited.log("refused", "refused")
    assert lines(caplog) == ["wrong secret", "refused"]


def test_a_flood_that_stops_is_still_counted_when_its_period_ends(
    logger: logging.Logger, clock: Clock, caplog: pytest.LogCaptureFixture
) -> None:
    limited = RateLimitedLog(logger, seconds=60, clock=clock)
    for _ in range(5):
        limited.log("refused callbacks", "refused: %s", "bad signature")
    clock.now += 30
    limited.flush()
    assert lines(caplog) == ["refused: bad signature"], "not before the period is over"
    clock.now += 30
    limited.flush()
    assert lines(caplog)[-1] == "4 more refused callbacks in the last 60 s"
    limited.flush()
    clock.now += 1
    assert not limited.log("refused callbacks", "refused: %s", "x"), "the count line opened a new period"
    limited.close()
    assert lines(caplog)[-1] == "1 more refused callbacks in the last 1 s", "closing writes what is held back"
    assert len(lines(caplog)) == 3


def test_the_arguments_are_formatted_by_logging(
    logger: logging.Logger, clock: Clock, caplog: pytest.LogCaptureFixture
) -> None:
    limited = RateLimitedLog(logger, seconds=60, level=logging.INFO, clock=clock)
    limited.log("k", "value %s", "100%")
    limited.log("k", "value %s", "held")
    clock.now += 60
    limited.log("k", "value %s", "50%")
    assert lines(caplog) == ["value 100%", "value 50% (and 1 more in the last 60 s)"]
    assert {r.levelno for r in caplog.records} == {logging.INFO}
