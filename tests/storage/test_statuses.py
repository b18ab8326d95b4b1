"""The stored statuses are named once (storage.models) and the API's schemas say the same values.

The API keeps `Literal[...]` annotations so its OpenAPI schema lists plain strings; these tests
fail when a status is added to one and not the other.
"""

from __future__ import annotations

import typing

from meridian.api.routes import accounts as account_routes
from meridian.api.routes import commerce as commerce_routes
from meridian.http import schemas
from meridian.storage.models import AccountStatus, MeetingStatus, SubscriptionStatus


def _values(annotation: object) -> set[str]:
    return {arg for arg in typing.get_args(annotation) if isinstance(arg, str)}


def test_account_statuses_match_the_api() -> None:
    expected = {s.value for s in AccountStatus}
    assert _values(schemas.AccountPublic.model_fields["status"].annotation) == expected
    assert _values(account_routes.Status) == expected


def test_subscription_statuses_match_the_api() -> None:
    expected = {s.value for s in SubscriptionStatus}
    assert _values(schemas.SubscriptionPublic.model_fields["status"].annotation) == expected
    assert _values(commerce_routes.SubStatus) == expected


def test_meeting_statuses_match_the_api() -> None:
    expected = {s.value for s in MeetingStatus}
    assert _values(schemas.MeetingPublic.model_fields["status"].annotation) == expected


def test_a_status_is_its_stored_string() -> None:
    # StrEnum members compare and serialise as the strings the database and the JSON hold
    assert AccountStatus.ACTIVE == "active"
    assert f"{SubscriptionStatus.TRANSFER_REQUIRED}" == "transfer_required"
    assert MeetingStatus("live") is MeetingStatus.LIVE
