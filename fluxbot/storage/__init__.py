"""The bot's database behind one interface (`Store`); SQLite is the embedded engine."""

from __future__ import annotations

from fluxbot.storage.base import GuildReport, Signal, Store, StoreError, StoreUnavailable
from fluxbot.storage.sqlite import SQLiteStore

__all__ = ["GuildReport", "SQLiteStore", "Signal", "Store", "StoreError", "StoreUnavailable"]
