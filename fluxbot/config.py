"""Settings: read once from the environment (and `.env`), validated, secrets kept out of sight."""

from __future__ import annotations

import logging
import os
import urllib.parse
from collections.abc import Mapping
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path

from dotenv import dotenv_values

from fluxbot import catalog
from fluxbot.config_env import ConfigError, ConfigErrors, EnvReader, Secret, host_instance_name
from fluxbot.limits import Limits
from fluxbot.moderation import InvalidRule, load_rules

__all__ = [
    "ConfigError", "ConfigErrors", "Secret", "Settings", "host_instance_name", "load_database_settings",
    "load_database_url", "load_settings",
]  # fmt: skip

log = logging.getLogger(__name__)

LOG_LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR")
IMAGE_DELIVERY_MODES = ("attachment", "url")
#: The addresses of Black Forest Labs' API by BFL_REGION (global routes to any cluster; eu and us stay in theirs).
BFL_REGIONS = {"global": "https://api.bfl.ai", "eu": "https://api.eu.bfl.ai", "us": "https://api.us.bfl.ai"}


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
    bfl_api_key: Secret | None = field(default=None, repr=False)
    #: global, eu or us; `bfl_api_base_url` is that region's address unless BFL_API_BASE_URL overrides it.
    bfl_region: str = "global"
    bfl_api_base_url: str = BFL_REGIONS["global"]
    #: Sent with every webhook as webhook_secret, and checked against a callback's X-BFL-Signature when it has one.
    bfl_webhook_secret: Secret | None = field(default=None, repr=False)
    #: fal.ai: the key (KEY_ID:KEY_SECRET), its queue, and where it publishes the keys its webhooks are signed with.
    fal_key: Secret | None = field(default=None, repr=False)
    fal_queue_url: str = "https://queue.fal.run"
    fal_jwks_url: str = "https://rest.alpha.fal.ai/.well-known/jwks.json"
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
    #: Finished jobs older than this are folded into usage totals and deleted (0: kept forever).
    job_retention_days: int = 90

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
        tokens = (
            self.discord_token, self.acedata_api_token, self.kie_api_token, self.kie_webhook_hmac_key,
            self.bfl_api_key, self.bfl_webhook_secret, self.fal_key,
        )  # fmt: skip
        found = [s.reveal() for s in tokens if s is not None and s.reveal()]
        if self.fal_key is not None and ":" in self.fal_key.reveal():
            found.append(self.fal_key.reveal().partition(":")[2])  # the KEY_SECRET half on its own
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
    bfl_region = env.lower_choice("BFL_REGION", Settings.bfl_region, tuple(BFL_REGIONS))
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
        bfl_api_key=env.secret(
            "BFL_API_KEY", "your Black Forest Labs API key", required=known_provider and provider == "bfl"
        ),
        bfl_region=bfl_region,
        bfl_api_base_url=env.url("BFL_API_BASE_URL", BFL_REGIONS[bfl_region]),
        bfl_webhook_secret=env.secret("BFL_WEBHOOK_SECRET", "a webhook secret of your choice", required=False),
        fal_key=env.fal_key("FAL_KEY", required=known_provider and provider == "fal"),
        fal_queue_url=env.url("FAL_QUEUE_URL", Settings.fal_queue_url),
        fal_jwks_url=env.secure_url("FAL_JWKS_URL", Settings.fal_jwks_url),
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
        job_retention_days=env.retention_days("JOB_RETENTION_DAYS", Settings.job_retention_days),
    )
    if settings.database_url is None and not env.errors:
        _prepare_database_folder(settings.database_path)
    if env.errors:
        raise ConfigErrors(env.errors)
    return settings


def _operator_rules(env: EnvReader, path: str | None) -> tuple[str, ...]:
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


def _read(environ: Mapping[str, str] | None, env_file: Path | None) -> EnvReader:
    values: dict[str, str] = {}
    if env_file is not None and env_file.is_file():
        values.update({k: v for k, v in dotenv_values(env_file).items() if v is not None})
    values.update(os.environ if environ is None else environ)
    return EnvReader(values)


def _prepare_database_folder(path: Path) -> None:
    try:
        path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)  # a new folder is the owner's only
    except OSError as exc:
        raise ConfigError(
            "DATABASE_PATH", f"a file path in a folder the bot can create ({path.parent}: {exc.strerror})"
        ) from None
