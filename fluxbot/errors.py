"""The base of every error fluxbot raises on purpose, and the family of errors a member is told as they are.

Each boundary has one family under `FluxbotError`: `config.ConfigError` (settings), `storage.StoreError` (the
database), `providers.base.ProviderFault` (the image APIs and their callbacks), `delivery.DeliveryError` (Discord)
and `MemberError` (what a member asked for: `limits.Refused`, `jobs.requests.InvalidRequest`).
"""

from __future__ import annotations


class FluxbotError(Exception):
    """An error fluxbot raises on purpose; its message is safe to log (no secrets)."""


class MemberError(FluxbotError):
    """What a member asked for cannot be done (here, now); the message says why and what to do."""
