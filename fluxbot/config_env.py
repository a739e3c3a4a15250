"""Reading settings from the environment: each reader checks one variable and notes what is wrong with it, so that
every problem is reported at once; and the kinds of values settings are (secrets that never show themselves)."""

from __future__ import annotations

import re
import socket
import urllib.parse
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from typing import TypeVar, overload

from fluxbot.errors import FluxbotError

#: Far above any real bot's shard count (Discord asks for one shard per 1,000-2,500 servers).
MAX_SHARD_COUNT = 100_000
INSTANCE_NAME_RULE = re.compile(r"[A-Za-z0-9_.-]{1,63}")
#: The shortest retention: the longest month, and the usage report's 31 days, stay whole.
MIN_RETENTION_DAYS = 32
PRICE_RULE = re.compile(r"[0-9]{1,9}(\.[0-9]{1,9})?")
T = TypeVar("T")


class ConfigError(FluxbotError):
    """A setting is missing or malformed; the message names the variable and what it expects."""

    def __init__(self, variable: str, expected: str) -> None:
        super().__init__(f"{variable}: {expected}")
        self.variable = variable


class ConfigErrors(ConfigError):
    """Several settings are missing or malformed: `errors` has each one (the message, the first)."""

    def __init__(self, errors: Sequence[ConfigError]) -> None:
        first = errors[0]
        super().__init__(first.variable, str(first).partition(": ")[2])
        self.errors = tuple(errors)


class Secret:
    """A string that never shows itself in repr, str or f-strings; `reveal()` gives the value."""

    __slots__ = ("_value",)

    def __init__(self, value: str) -> None:
        self._value = value

    def reveal(self) -> str:
        """Return the secret value, for the one place that sends it."""
        return self._value

    def __repr__(self) -> str:
        return "Secret('********')"

    __str__ = __repr__

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Secret) and other._value == self._value

    def __hash__(self) -> int:
        return hash(self._value)


def host_instance_name() -> str:
    """The host name as an instance name: characters outside letters, digits and `-_.` dropped, 63 at most."""
    name = re.sub(r"[^A-Za-z0-9_.-]", "", socket.gethostname())[:63]
    return name or "fluxbot"


def _whole_number(text: str, high: int) -> int | None:
    """`text` as a whole number when it is decimal digits not much above `high`, else None (int() refuses a text of
    thousands of digits, so the length is checked first)."""
    digits = text.lstrip("0") or "0"
    if not text.isdecimal() or len(digits) > len(str(high)):
        return None
    return int(digits)


@dataclass(frozen=True)
class EnvReader:
    """The settings' raw values; each malformed one is noted in `errors` (and a stand-in used), so that every
    problem is reported at once."""

    values: Mapping[str, str]
    errors: list[ConfigError] = field(default_factory=list)

    def problem(self, error: ConfigError, stand_in: T) -> T:
        """Note `error` and go on with `stand_in` (the settings are not used while any error is noted)."""
        self.errors.append(error)
        return stand_in

    def raw(self, name: str) -> str | None:
        value = self.values.get(name)
        if value is None or not value.strip():
            return None
        return value.strip()

    def text(self, name: str, default: str) -> str:
        return self.raw(name) or default

    @overload
    def secret(self, name: str, what: str) -> Secret: ...
    @overload
    def secret(self, name: str, what: str, *, required: bool) -> Secret | None: ...

    def secret(self, name: str, what: str, *, required: bool = True) -> Secret | None:
        value = self.raw(name)
        if value is None and not required:
            return None
        if value is None:
            return self.problem(
                ConfigError(name, f"missing. Set it to {what} (in .env or the environment)"), Secret("")
            )
        if any(ch.isspace() for ch in value):
            return self.problem(ConfigError(name, "must be a single token without spaces"), Secret(""))
        return Secret(value)

    def database_url(self, name: str) -> Secret | None:
        # The value holds a password: no message here repeats it.
        value = self.raw(name)
        if value is None:
            return None
        example = "postgresql://user:password@host:5432/fluxbot"
        scheme = value.partition("://")[0] if "://" in value else None
        if scheme not in ("postgresql", "postgres"):
            got = f"a {scheme}:// URL" if scheme and scheme.isalnum() else "something else"
            return self.problem(ConfigError(name, f"expects a PostgreSQL URL such as {example}, got {got}"), None)
        try:
            parts = urllib.parse.urlsplit(value)
            parts.port  # noqa: B018 - parsing the port is the check
        except ValueError:
            parts = None
        if parts is None or not parts.hostname or not parts.path.strip("/") or any(c.isspace() for c in value):
            expected = (
                f"expects a PostgreSQL URL such as {example} (a host, an optional port number and a database name;"
                " characters such as / @ : # in the password percent-encoded, e.g. %2F)"
            )
            return self.problem(ConfigError(name, expected), None)
        return Secret(value)

    def url(self, name: str, default: str) -> str:
        value = self.text(name, default).rstrip("/")
        if not value.startswith(("http://", "https://")) or len(value) <= len("https://"):
            return self.problem(ConfigError(name, f"expects an http(s) URL such as {default}, got {value!r}"), default)
        return value

    def secure_url(self, name: str, default: str) -> str:
        """An https URL (plain http only on this machine, for tests): what it serves is trusted, so no one on the way
        may change it."""
        value = self.url(name, default)
        host = urllib.parse.urlsplit(value).hostname or ""
        if value.startswith("http://") and host not in ("localhost", "127.0.0.1", "::1"):
            return self.problem(ConfigError(name, f"expects an https URL such as {default}, got {value!r}"), default)
        return value

    def fal_key(self, name: str, *, required: bool) -> Secret | None:
        """fal.ai's key: KEY_ID:KEY_SECRET as fal shows it (an older key without the id is taken as it is)."""
        key = self.secret(name, "your fal.ai API key (fal.ai → Dashboard → API Keys)", required=required)
        if key is None or not key.reveal():
            return key
        key_id, colon, key_secret = key.reveal().partition(":")
        if colon and not (key_id and key_secret and ":" not in key_secret):
            # The message repeats nothing of the value: it is a secret.
            expected = "expects the key as fal.ai shows it, KEY_ID:KEY_SECRET (one colon, text on both sides)"
            return self.problem(ConfigError(name, expected), Secret(""))
        return key

    def optional_url(self, name: str) -> str | None:
        return self.url(name, "https://bot.example.org") if self.raw(name) else None

    def port(self, name: str, default: int) -> int:
        return self.whole(name, default, low=0, high=65535, what="a TCP port number")

    def whole(self, name: str, default: int, *, low: int, high: int, what: str = "a whole number") -> int:
        value = self.raw(name)
        if value is None:
            return default
        number = _whole_number(value, high)
        if number is None or not low <= number <= high:
            return self.problem(ConfigError(name, f"expects {what} from {low} to {high}, got {value!r}"), default)
        return number

    def flag(self, name: str, default: bool) -> bool:
        value = self.raw(name)
        if value is None:
            return default
        if value.lower() not in ("true", "false", "yes", "no", "1", "0"):
            return self.problem(ConfigError(name, f"expects true or false, got {value!r}"), default)
        return value.lower() in ("true", "yes", "1")

    def number(self, name: str, default: float, *, low: float, high: float) -> float:
        value = self.raw(name)
        if value is None:
            return default
        try:
            number = float(value)
        except ValueError:
            return self.problem(ConfigError(name, f"expects a number of seconds, got {value!r}"), default)
        if not low <= number <= high:
            return self.problem(
                ConfigError(name, f"expects a number between {low:g} and {high:g}, got {value}"), default
            )
        return number

    def snowflake(self, name: str) -> int | None:
        value = self.raw(name)
        if value is None:
            return None
        if not value.isdecimal() or not 15 <= len(value) <= 21:
            return self.problem(ConfigError(name, f"expects a Discord server id (a long number), got {value!r}"), None)
        return int(value)

    def choice(self, name: str, default: str, options: tuple[str, ...], *, upper: bool = False) -> str:
        value = self.text(name, default)
        value = value.upper() if upper else value
        if value not in options:
            return self.problem(ConfigError(name, f"expects one of {', '.join(options)}, got {value!r}"), default)
        return value

    def lower_choice(self, name: str, default: str, options: tuple[str, ...]) -> str:
        value = self.text(name, default).lower()
        if value not in options:
            return self.problem(ConfigError(name, f"expects one of {', '.join(options)}, got {value!r}"), default)
        return value

    def shard_count(self, name: str) -> int | None:
        value = self.raw(name)
        if value is None:
            return None
        return self.whole(name, 1, low=1, high=MAX_SHARD_COUNT, what="a whole number of shards")

    def shard_ids(self, name: str, count: int | None, *, count_variable: str) -> tuple[int, ...] | None:
        value = self.raw(name)
        if value is None:
            return None
        if count is None:
            return self.problem(
                ConfigError(name, f"needs {count_variable}, the total number of shards, set as well"), None
            )
        shards: list[int] = []
        for item in (item.strip() for item in value.split(",")):
            shard = _whole_number(item, count) if item.isascii() else None
            if shard is None or shard >= count:
                expected = f"a comma list of shard numbers from 0 to {count - 1} (of {count_variable}={count})"
                return self.problem(ConfigError(name, f"expects {expected}, got {value!r}"), None)
            shards.append(shard)
        if len(set(shards)) != len(shards):
            return self.problem(ConfigError(name, f"expects each shard once, got {value!r}"), None)
        return tuple(sorted(shards))

    def prices(self, name: str, provider: str, models: tuple[str, ...]) -> tuple[tuple[str, Decimal], ...]:
        value = self.raw(name)
        prices: dict[str, Decimal] = {}
        for entry in (e.strip() for e in (value or "").split(",")):
            if not entry:
                continue  # a trailing comma
            model, equals, price = (part.strip() for part in entry.partition("="))
            if not equals or not model:
                expected = "expects model=price entries separated by commas, such as flux-dev=0.012,flux-pro=0.04"
                return self.problem(ConfigError(name, f"{expected}; got {entry!r}"), ())
            if model not in models:
                known = ", ".join(models)
                return self.problem(
                    ConfigError(name, f"{entry!r}: {provider} has no model {model!r} (its models: {known})"), ()
                )
            if not PRICE_RULE.fullmatch(price):
                return self.problem(
                    ConfigError(name, f"{entry!r}: the price of one image must be a number such as 0.012"), ()
                )
            if model in prices:
                return self.problem(
                    ConfigError(name, f"{entry!r}: {model} has a price already; give each model one price"), ()
                )
            prices[model] = Decimal(price)
        return tuple(prices.items())

    def retention_days(self, name: str, default: int) -> int:
        days = self.whole(name, default, low=0, high=36_500, what="a whole number of days")
        if 0 < days < MIN_RETENTION_DAYS:
            # Month budgets and the 31-day usage report read the jobs themselves.
            expected = f"expects 0 (keep every job) or at least {MIN_RETENTION_DAYS} days, got {days}"
            return self.problem(ConfigError(name, expected), default)
        return days

    def instance_name(self, name: str) -> str:
        value = self.raw(name)
        if value is None:
            return host_instance_name()
        if not INSTANCE_NAME_RULE.fullmatch(value):
            return self.problem(
                ConfigError(name, f"expects up to 63 letters, digits, '-', '_' or '.', got {value!r}"), "fluxbot"
            )
        return value
