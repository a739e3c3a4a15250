"""Settings: read once from the environment (and `.env`), validated, secrets kept out of sight."""

from __future__ import annotations

import logging
import os
import re
import socket
import urllib.parse
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path
from typing import TypeVar, overload

from dotenv import dotenv_values

from fluxbot import catalog
from fluxbot.errors import FluxbotError
from fluxbot.limits import Limits
from fluxbot.moderation import InvalidRule, load_rules

log = logging.getLogger(__name__)

LOG_LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR")
IMAGE_DELIVERY_MODES = ("attachment", "url")
#: Far above any real bot's shard count (Discord asks for one shard per 1,000-2,500 servers).
MAX_SHARD_COUNT = 100_000
INSTANCE_NAME_RULE = re.compile(r"[A-Za-z0-9_.-]{1,63}")
T = TypeVar("T")
PRICE_RULE = re.compile(r"[0-9]{1,9}(\.[0-9]{1,9})?")


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


@dataclass(frozen=True)
class Settings:
    """Everything the bot is configured with; the field defaults are the documented defaults `load_settings` uses."""

    discord_token: Secret = field(repr=False)
    acedata_api_token: Secret | None = field(default=None, repr=False)
    flux_api_base_url: str = "https://api.acedata.cloud"
    database_path: Path = Path("data/fluxbot.db")
    #: postgresql://user:password@host:port/db: several processes share it; None: SQLite at database_path.
    database_url: Secret | None = field(default=None, repr=False)
    default_model: str = "flux-dev"
    poll_interval_seconds: float = 3.0
    job_timeout_seconds: float = 600.0
    dev_guild_id: int | None = None
    log_level: str = "INFO"
    callback_base_url: str | None = None
    callback_host: str = "0.0.0.0"  # noqa: S104 - the callback server must be reachable from the provider
    callback_port: int = 8080
    image_delivery: str = "attachment"
    max_jobs_per_member: int = 2
    cooldown_seconds: int = 0
    daily_images_per_member: int = 0
    max_jobs_in_flight: int = 20
    serve_dms: bool = True
    provider: str = "acedata"
    kie_api_token: Secret | None = field(default=None, repr=False)
    kie_api_base_url: str = "https://api.kie.ai"
    kie_webhook_hmac_key: Secret | None = field(default=None, repr=False)
    metrics_host: str = "0.0.0.0"  # noqa: S104 - Prometheus and Docker's health check reach it from outside
    metrics_port: int | None = None
    #: Discord shards: None lets discord.py ask Discord how many (one process then runs them all).
    shard_count: int | None = None
    #: The shards this process runs, sorted; None: every shard of `shard_count`.
    shard_ids: tuple[int, ...] | None = None
    #: This process's name in /metrics (the `instance` label) and in the logs; default: the host name.
    instance_name: str = field(default_factory=host_instance_name)
    #: The operator's blocked words, phrases and patterns (from BLOCKLIST_FILE), on every server.
    blocklist: tuple[str, ...] = ()
    #: (model, price of one image) from IMAGE_PRICES, for the estimated spend in /fluxadmin usage.
    image_prices: tuple[tuple[str, Decimal], ...] = ()

    @property
    def prices(self) -> dict[str, Decimal]:
        """The price of one image per model (models without a price are left out)."""
        return dict(self.image_prices)

    @property
    def provider_info(self) -> catalog.ProviderInfo:
        """The data (models, options) of the provider new jobs go to."""
        return catalog.PROVIDERS[self.provider]

    def limits(self) -> Limits:
        """The operator's default limits for every member."""
        return Limits(self.max_jobs_per_member, self.cooldown_seconds, self.daily_images_per_member)

    def secrets(self) -> list[str]:
        """Every secret value, for log redaction."""
        tokens = (self.discord_token, self.acedata_api_token, self.kie_api_token, self.kie_webhook_hmac_key)
        found = [s.reveal() for s in tokens if s is not None and s.reveal()]
        if self.database_url is not None:
            url = self.database_url.reveal()
            password = urllib.parse.urlsplit(url).password or ""
            found += [p for p in (url, password, urllib.parse.unquote(password)) if p]
        return found


def load_settings(environ: Mapping[str, str] | None = None, env_file: Path | None = Path(".env")) -> Settings:
    """Read settings from `environ` (default: the process environment) over the values in `env_file`."""
    env = _read(environ, env_file)
    provider = env.choice("FLUX_PROVIDER", Settings.provider, tuple(catalog.PROVIDERS))
    models = tuple(m.name for m in catalog.PROVIDERS[provider].models)
    known_provider = not env.errors  # else its key and DEFAULT_MODEL are not judged for a provider nobody chose
    shard_count = env.shard_count("SHARD_COUNT")
    settings = Settings(
        discord_token=env.secret("DISCORD_TOKEN", "the bot token from the Discord developer portal"),
        acedata_api_token=env.secret(
            "ACEDATA_API_TOKEN", "your Ace Data Cloud API token", required=known_provider and provider == "acedata"
        ),
        provider=provider,
        kie_api_token=env.secret("KIE_API_TOKEN", "your Kie.ai API key", required=known_provider and provider == "kie"),
        kie_api_base_url=env.url("KIE_API_BASE_URL", Settings.kie_api_base_url),
        kie_webhook_hmac_key=env.secret(
            "KIE_WEBHOOK_HMAC_KEY", "the webhook HMAC key of your Kie.ai account", required=False
        ),
        flux_api_base_url=env.url("FLUX_API_BASE_URL", Settings.flux_api_base_url),
        database_path=Path(env.text("DATABASE_PATH", str(Settings.database_path))),
        database_url=env.database_url("DATABASE_URL"),
        default_model=env.choice("DEFAULT_MODEL", models[0], models) if known_provider else models[0],
        poll_interval_seconds=env.number("POLL_INTERVAL_SECONDS", Settings.poll_interval_seconds, low=0.05, high=300),
        job_timeout_seconds=env.number("JOB_TIMEOUT_SECONDS", Settings.job_timeout_seconds, low=1, high=86_400),
        dev_guild_id=env.snowflake("DEV_GUILD_ID"),
        log_level=env.choice("LOG_LEVEL", Settings.log_level, LOG_LEVELS, upper=True),
        callback_base_url=env.optional_url("CALLBACK_BASE_URL"),
        callback_host=env.text("CALLBACK_HOST", Settings.callback_host),
        callback_port=env.port("CALLBACK_PORT", Settings.callback_port),
        image_delivery=env.choice("IMAGE_DELIVERY", Settings.image_delivery, IMAGE_DELIVERY_MODES),
        max_jobs_per_member=env.whole("MAX_JOBS_PER_MEMBER", Settings.max_jobs_per_member, low=1, high=100),
        cooldown_seconds=env.whole("COOLDOWN_SECONDS", Settings.cooldown_seconds, low=0, high=86_400),
        daily_images_per_member=env.whole(
            "DAILY_IMAGES_PER_MEMBER", Settings.daily_images_per_member, low=0, high=100_000
        ),
        max_jobs_in_flight=env.whole("MAX_JOBS_IN_FLIGHT", Settings.max_jobs_in_flight, low=1, high=1000),
        serve_dms=env.flag("SERVE_DMS", Settings.serve_dms),
        metrics_host=env.text("METRICS_HOST", Settings.metrics_host),
        metrics_port=env.port("METRICS_PORT", 0) or None,
        shard_count=shard_count,
        shard_ids=env.shard_ids("SHARD_IDS", shard_count, count_variable="SHARD_COUNT"),
        instance_name=env.instance_name("INSTANCE_NAME"),
        blocklist=_operator_rules(env, env.raw("BLOCKLIST_FILE")),
        image_prices=env.prices("IMAGE_PRICES", provider, models) if known_provider else (),
    )
    if settings.database_url is None and not env.errors:
        _prepare_database_folder(settings.database_path)
    if env.errors:
        raise ConfigErrors(env.errors)
    return settings


def _operator_rules(env: _Env, path: str | None) -> tuple[str, ...]:
    """The rules of the operator's blocklist file (a problem with it noted as the line to fix)."""
    if not path:
        return ()
    try:
        text = Path(path).read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        return env.problem(ConfigError("BLOCKLIST_FILE", f"cannot read {path} ({exc.__class__.__name__}: {exc})"), ())
    try:
        return load_rules(text)
    except InvalidRule as exc:
        return env.problem(ConfigError("BLOCKLIST_FILE", f"{path}, {exc}"), ())


def load_database_url(environ: Mapping[str, str] | None = None, env_file: Path | None = Path(".env")) -> Secret | None:
    """DATABASE_URL alone (for tools that need no bot token), read and checked as `load_settings` does."""
    env = _read(environ, env_file)
    url = env.database_url("DATABASE_URL")
    if env.errors:
        raise env.errors[0]
    return url


def load_database_settings(
    environ: Mapping[str, str] | None = None, env_file: Path | None = Path(".env")
) -> tuple[Path, Secret | None]:
    """DATABASE_PATH and DATABASE_URL alone (for the database tools, which need no bot token)."""
    env = _read(environ, env_file)
    path, url = Path(env.text("DATABASE_PATH", str(Settings.database_path))), env.database_url("DATABASE_URL")
    if env.errors:
        raise env.errors[0]
    return path, url


def _read(environ: Mapping[str, str] | None, env_file: Path | None) -> _Env:
    values: dict[str, str] = {}
    if env_file is not None and env_file.is_file():
        values.update({k: v for k, v in dotenv_values(env_file).items() if v is not None})
    values.update(os.environ if environ is None else environ)
    return _Env(values)


def _whole_number(text: str, high: int) -> int | None:
    """`text` as a whole number when it is decimal digits not much above `high`, else None (int() refuses a text of
    thousands of digits, so the length is checked first)."""
    digits = text.lstrip("0") or "0"
    if not text.isdecimal() or len(digits) > len(str(high)):
        return None
    return int(digits)


def _prepare_database_folder(path: Path) -> None:
    try:
        path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)  # a new folder is the owner's only
    except OSError as exc:
        raise ConfigError(
            "DATABASE_PATH", f"a file path in a folder the bot can create ({path.parent}: {exc.strerror})"
        ) from None


@dataclass(frozen=True)
class _Env:
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

    def instance_name(self, name: str) -> str:
        value = self.raw(name)
        if value is None:
            return host_instance_name()
        if not INSTANCE_NAME_RULE.fullmatch(value):
            return self.problem(
                ConfigError(name, f"expects up to 63 letters, digits, '-', '_' or '.', got {value!r}"), "fluxbot"
            )
        return value
