"""A server's image budget per UTC day and per UTC calendar month: the periods, what is left, and when to tell.

Pure functions of a `Budget`, the server's usage so far and the time, so the rules can be tested with any clock.
Budgets count images of jobs that did not fail, made on the server or in a DM under the server's rules.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from fluxbot.errors import Message, Number
from fluxbot.i18n import N_, LocaleValue, discord_time, number, plural

DAY = "day"
MONTH = "month"
PERIODS = (DAY, MONTH)
#: The shares of a budget at which the moderation log gets a notice (once each per period).
NOTICE_PERCENTS = (80, 100)


@dataclass(frozen=True)
class Budget:
    """The server a job counts against, and its budget there (0: no budget for that period)."""

    guild_id: int
    daily: int = 0
    monthly: int = 0
    #: The server's name, for messages read outside it (a DM); None: the member is on the server ("This server").
    server_name: str | None = None

    @property
    def applies(self) -> bool:
        """True when the server has a budget for the day or the month."""
        return bool(self.daily or self.monthly)

    def limit(self, period: str) -> int:
        """The budget for `period` (DAY or MONTH), 0 when off."""
        return self.daily if period == DAY else self.monthly

    def who(self, *, capital: bool = True) -> str:
        """How the messages name the server."""
        if self.server_name is not None:
            return f"**{self.server_name}**"
        return "This server" if capital else "this server"


@dataclass(frozen=True)
class BudgetUse:
    """A server's images so far in the current UTC day and UTC month (failed jobs make none)."""

    today: int = 0
    this_month: int = 0

    def used(self, period: str) -> int:
        """Images so far in `period` (DAY or MONTH)."""
        return self.today if period == DAY else self.this_month


@dataclass(frozen=True)
class Notice:
    """A threshold of a budget the server has reached in this period: what the moderation log is told."""

    period: str
    key: str  # the period itself, e.g. "2026-11-21" or "2026-11": one notice per (server, key, percent)
    percent: int
    used: int
    limit: int
    resets_at: float


def period_start(period: str, now: float) -> float:
    """When the UTC day or month around `now` began."""
    moment = datetime.fromtimestamp(now, tz=UTC).replace(hour=0, minute=0, second=0, microsecond=0)
    if period == MONTH:
        moment = moment.replace(day=1)
    return moment.timestamp()


def period_end(period: str, now: float) -> float:
    """When the UTC day or month around `now` ends (the next one begins): when its budget resets."""
    start = datetime.fromtimestamp(period_start(period, now), tz=UTC)
    if period == DAY:
        return (start + timedelta(days=1)).timestamp()
    year, month = (start.year + 1, 1) if start.month == 12 else (start.year, start.month + 1)
    return start.replace(year=year, month=month).timestamp()


def period_key(period: str, now: float) -> str:
    """The UTC day ("2026-11-21") or month ("2026-11") around `now`."""
    moment = datetime.fromtimestamp(now, tz=UTC)
    return moment.strftime("%Y-%m-%d" if period == DAY else "%Y-%m")


def _server(budget: Budget, *, capital: bool = True) -> Message | str:
    """How a member's message names the server (`Budget.who`), said in the member's language."""
    if budget.server_name is not None:
        return budget.who()
    return Message(N_("This server")) if capital else Message(N_("this server"))


def budget_refusal(budget: Budget, use: BudgetUse, *, images: int, now: float) -> Message | None:
    """Why the server's budget refuses a new job of `images` images, or None when it allows it."""
    tightest: tuple[int, str] | None = None
    for period in (MONTH, DAY):  # a month used up is the news, even when the day is too: it lasts longer
        limit = budget.limit(period)
        if not limit:
            continue
        left = limit - use.used(period)
        if left <= 0:
            return _spent(budget, period, limit, reset=discord_time(period_end(period, now)))
        if tightest is None or left < tightest[0]:
            tightest = (left, period)
    if tightest is not None and images > tightest[0]:
        left, period = tightest
        return _too_many(budget, period, images, left)
    return None


# The refusals below read the same in English for any number; a translation may need forms (plural).
def _spent(budget: Budget, period: str, limit: int, *, reset: str) -> Message:
    values: dict[str, object] = {"server": _server(budget), "limit": Number(limit), "reset": reset}
    if period == DAY:
        return Message.counted(
            "{server} has used all {limit} of its images for today; it resets {reset}.",
            "{server} has used all {limit} of its images for today; it resets {reset}.",
            limit,
            **values,
        )
    return Message.counted(
        "{server} has used all {limit} of its images for this month; it resets {reset}.",
        "{server} has used all {limit} of its images for this month; it resets {reset}.",
        limit,
        **values,
    )


def _too_many(budget: Budget, period: str, images: int, left: int) -> Message:
    values: dict[str, object] = {"images": images, "server": _server(budget, capital=False), "left": left}
    if period == DAY:
        return Message.counted(
            "That would make {images} images, but {server} has {left} left today. Ask for {left} or fewer.",
            "That would make {images} images, but {server} has {left} left today. Ask for {left} or fewer.",
            left,
            **values,
        )
    return Message.counted(
        "That would make {images} images, but {server} has {left} left this month. Ask for {left} or fewer.",
        "That would make {images} images, but {server} has {left} left this month. Ask for {left} or fewer.",
        left,
        **values,
    )


def notices_due(budget: Budget, use: BudgetUse, *, now: float) -> list[Notice]:
    """The thresholds the server has reached in the current day and month, lowest first."""
    due = []
    for period in PERIODS:
        limit = budget.limit(period)
        for percent in NOTICE_PERCENTS if limit else ():
            if use.used(period) * 100 >= percent * limit:
                due.append(
                    Notice(period, period_key(period, now), percent, use.used(period), limit, period_end(period, now))
                )
    return due


def budget_left(budget: Budget, use: BudgetUse, *, now: float, locale: LocaleValue = None) -> str:
    """What is left of each period's budget and when it resets, for members (one line per period), in `locale`
    (the member's)."""
    lines = []
    for period in PERIODS:
        if limit := budget.limit(period):
            values = {
                "left": number(locale, max(0, limit - use.used(period))),
                "reset": discord_time(period_end(period, now)),
            }
            if period == DAY:
                # Translators: {left} images are left of the server's budget of {n}; {reset} is a Discord timestamp
                # shown as a relative time ("in 5 hours").
                line = plural(locale, "{left} of {n} image left today, resets {reset}",
                              "{left} of {n} images left today, resets {reset}", limit, **values)  # fmt: skip
            else:
                # Translators: {left} images are left of the server's budget of {n} this month; {reset} is a Discord
                # timestamp shown as a relative time ("in 5 days").
                line = plural(locale, "{left} of {n} image left this month, resets {reset}",
                              "{left} of {n} images left this month, resets {reset}", limit, **values)  # fmt: skip
            lines.append(line)
    return "\n".join(lines)


def day_start(now: float) -> float:
    """The last UTC midnight before `now`."""
    moment = datetime.fromtimestamp(now, tz=UTC)
    return moment.replace(hour=0, minute=0, second=0, microsecond=0).timestamp()


def next_utc_midnight(now: float) -> float:
    """The next UTC midnight after `now`."""
    return (datetime.fromtimestamp(day_start(now), tz=UTC) + timedelta(days=1)).timestamp()
