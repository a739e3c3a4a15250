"""The bot's database behind one interface (`Store`): SQLite for one process, PostgreSQL for several."""

from __future__ import annotations

from fluxbot.storage.base import GuildReport, Signal, SignalHandler, Store, StoreError, StoreUnavailable
from fluxbot.storage.postgres import PostgresStore
from fluxbot.storage.sqlite import SQLiteStore

__all__ = [
    "GuildReport",
    "PostgresStore",
    "SQLiteStore",
    "Signal",
    "SignalHandler",
    "Store",
    "StoreError",
    "StoreUnavailable",
]
