"""One exception family per boundary, all under one base; a member's errors are told to them as they are."""

from __future__ import annotations

import pytest

from fluxbot.config import ConfigError
from fluxbot.delivery import DeliveryError
from fluxbot.errors import FluxbotError, MemberError
from fluxbot.jobs.requests import InvalidRequest, check_prompt
from fluxbot.limits import Refused
from fluxbot.providers.base import CallbackRefused, ErrorKind, ProviderError, ProviderFault
from fluxbot.storage import StoreError, StoreUnavailable
from fluxbot.storage.sqlite_engine import DatabaseInUse
from fluxbot.storage.sqlite_schema import SchemaTooNew


@pytest.mark.parametrize(
    ("error", "family"),
    [
        (ConfigError("X", "a number"), ConfigError),
        (StoreUnavailable("locked"), StoreError),
        (DatabaseInUse("db"), StoreError),
        (SchemaTooNew("db", 9, 6), StoreError),
        (ProviderError(ErrorKind.AUTH, "bad key"), ProviderFault),
        (CallbackRefused("bad signature"), ProviderFault),
        (DeliveryError("gone", retryable=False), DeliveryError),
        (Refused("not here"), MemberError),
        (InvalidRequest("bad size"), MemberError),
    ],
)
def test_every_boundary_has_one_family_under_one_base(error: Exception, family: type[Exception]) -> None:
    families = (ConfigError, StoreError, ProviderFault, DeliveryError, MemberError)
    assert [f for f in families if isinstance(error, f)] == [family], "in its boundary's family and no other"
    assert isinstance(error, FluxbotError)


def test_a_members_bad_input_is_a_member_error() -> None:
    with pytest.raises(MemberError, match="The prompt is empty"):
        check_prompt("\u200b")
