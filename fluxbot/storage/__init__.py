"""The bot's database behind one interface (`Store`): SQLite for one process, PostgreSQL for several."""

from __future__ import annotations

import sqlite3
from typing import TYPE_CHECKING

from fluxbot.config import ConfigError
from fluxbot.storage.base import GuildReport, Signal, SignalHandler, Store, StoreError, StoreUnavailable, run_name
from fluxbot.storage.postgres import PostgresStore
from fluxbot.storage.schema import SchemaTooNew
from fluxbot.storage.sqlite import SQLiteStore

if TYPE_CHECKING:
    from fluxbot.config import Settings

__all__ = [
    "GuildReport",
    "PostgresStore",
    "SQLiteStore",
    "Signal",
    "SignalHandler",
    "Store",
    "StoreError",
    "StoreUnavailable",
    "database_setting",
    "open_store",
]


def database_setting(settings: Settings) -> str:
    """The variable that names the database: DATABASE_URL when set, else DATABASE_PATH."""
    return "DATABASE_PATH" if settings.database_url is None else "DATABASE_URL"


async def open_store(settings: Settings, *, instance: str | None = None) -> Store:
    """Open the database the settings name (PostgreSQL at DATABASE_URL, else SQLite at DATABASE_PATH).

    `instance` names this run as the owner of jobs (default: INSTANCE_NAME, the process id and a random part,
    unique per start). A database that cannot be opened
    is a ConfigError naming the variable, in one line without the password; a newer schema is SchemaTooNew.
    """
    instance = instance or run_name(settings.instance_name)
    if settings.database_url is not None:
        try:
            return await PostgresStore.open(settings.database_url.reveal(), instance=instance)
        except SchemaTooNew:
            raise
        except StoreError as exc:  # its text names the database without the password
            raise ConfigError("DATABASE_URL", f"a PostgreSQL database the bot can use ({exc})") from None
    try:
        return await SQLiteStore.open(settings.database_path, instance=instance)
    except (sqlite3.Error, OSError) as exc:
        expected = f"a SQLite file the bot can open ({settings.database_path}: {exc})"
        raise ConfigError("DATABASE_PATH", expected) from None
