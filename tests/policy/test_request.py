"""The decision request contract: what parses, and how bad input is refused.

Every refusal is a :class:`RequestError` whose message is one lowercase line naming the offending
input in backticks (``request: unknown jurisdiction `XX`: expected ...``).
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

import pytest

import meridian
from meridian import InputError, RequestError
from meridian.policy import Action, parse_request, parse_request_json
from meridian.policy.request import OrgForm

AT = "2020-09-01T09:00:00+08:00"


def wire(**subject: Any) -> dict[str, Any]:
    return {"action": "join", "at": AT, "subject": {"type": "individual", **subject}}


def assert_one_line(message: str) -> None:
    assert "\n" not in message
    assert message[0].islower(), message
    assert not message.endswith("."), message


# -- refusals by the parser ------------------------------------------------------------------------

PARSE_ERRORS = {
    "unknown action": ({**wire(), "action": "teleport"}, "teleport"),
    "unknown jurisdiction": (wire(country="XX"), "XX"),
    "subdivision is not a jurisdiction": (wire(country="CN-HK"), "CN-HK"),
    "lower-case country code": (wire(country="cn"), "cn"),
    "bad ip": (wire(ip="999.1.1.1"), "999.1.1.1"),
    "ip with a prefix length": (wire(ip="114.114.114.0/24"), "114.114.114.0/24"),
    "timestamp without zone": ({**wire(), "at": "2020-08-23T09:00:00"}, "2020-08-23T09:00:00"),
    "timestamp that is no date": ({**wire(), "at": "yesterday"}, "yesterday"),
    "impossible month": ({**wire(), "at": "2020-13-01T00:00:00Z"}, "2020-13-01T00:00:00Z"),
    "unknown subject field": (wire(colour="red"), "subject.colour"),
    "unknown top-level field": ({**wire(), "urgency": "high"}, "urgency"),
    "unknown resource field": ({**wire(), "resource": {"chanel": "direct"}}, "resource.chanel"),
    "missing subject": ({"action": "join", "at": AT}, "subject"),
    "unknown subject type": (wire(type="robot"), "robot"),
    "country that is a number": (wire(country=86), "86"),
    "not an object": ([1, 2], "[1, 2]"),
    "phone that is no number": (wire(phone="12"), "12"),
    "phone of no country": (wire(phone="+800 1234 5678"), "+800 1234 5678"),
}


@pytest.mark.parametrize(("data", "offending"), PARSE_ERRORS.values(), ids=PARSE_ERRORS.keys())
def test_bad_input_is_refused_in_one_line(data: Any, offending: str) -> None:
    with pytest.raises(RequestError) as caught:
        parse_request(data)
    message = str(caught.value)
    assert_one_line(message)
    assert f"`{offending}`" in message
    if isinstance(data, dict):  # the same through the front door, which takes a mapping
        with pytest.raises(RequestError):
            meridian.decide(data)


def test_a_request_error_is_an_input_error() -> None:
    with pytest.raises(InputError) as caught:
        parse_request(wire(country="XX"))
    assert caught.value.exit_code == 2
    assert caught.value.http_status == 422


def test_the_unknown_jurisdiction_message() -> None:
    with pytest.raises(
        RequestError,
        match=r"^request: unknown jurisdiction `XX`: expected an ISO 3166-1 alpha-2 code$",
    ):
        parse_request(wire(country="XX"))


def test_the_missing_zone_message_names_the_field_and_the_input() -> None:
    with pytest.raises(RequestError) as caught:
        parse_request({**wire(), "at": "2020-08-23T09:00:00"})
    assert "`at`" in str(caught.value)
    assert "`2020-08-23T09:00:00`" in str(caught.value)


@pytest.mark.parametrize(
    "text",
    ["{", '{"action": "join",', '{"action": join}', ""],
    ids=["open brace", "trailing comma", "bare word", "empty"],
)
def test_malformed_json_is_refused_in_one_line(text: str) -> None:
    with pytest.raises(RequestError) as caught:
        parse_request_json(text)
    message = str(caught.value)
    assert_one_line(message)
    assert message.startswith("request: malformed json")
    assert "line 1 column" in message


def test_malformed_json_quotes_the_offending_text() -> None:
    with pytest.raises(RequestError) as caught:
        parse_request_json('{"action": join}')
    assert "`" in str(caught.value)


def test_json_bytes_that_are_not_utf8_are_a_request_error() -> None:
    with pytest.raises(RequestError):
        parse_request_json(b"\xff{}")


def test_json_that_is_not_an_object() -> None:
    with pytest.raises(RequestError, match=r"expected a JSON object, got `\"join\"`"):
        parse_request_json('"join"')


# -- refusals against the bundle's catalogue (Engine.decide) ---------------------------------------


def purchase(**resource: Any) -> dict[str, Any]:
    return {
        "action": "purchase",
        "at": AT,
        "subject": {"type": "organization", "country": "CN"},
        "resource": resource,
    }


CATALOGUE_ERRORS = {
    "unknown plan": (
        {
            **purchase(channel="direct"),
            "subject": {"type": "individual", "country": "CN", "plan": "platinum"},
        },
        "platinum",
    ),
    "unknown channel": (purchase(channel="telepathy"), "telepathy"),
    # an unknown partner is not malformed: it is a partner nobody authorised, refused by the rules
    # (tests/policy/test_engine.py)
    "partner with direct channel": (purchase(channel="direct", partner="bizconf"), "bizconf"),
    "partner with online channel": (
        purchase(channel="online", partner="systec-umeet"),
        "systec-umeet",
    ),
    "partner without channel": (purchase(partner="bizconf"), "bizconf"),
    "partner channel without partner": (purchase(channel="partner"), "resource.partner"),
}


@pytest.mark.parametrize(
    ("data", "offending"), CATALOGUE_ERRORS.values(), ids=CATALOGUE_ERRORS.keys()
)
def test_values_outside_the_catalogue_are_refused(data: dict[str, Any], offending: str) -> None:
    parse_request(data)  # the contract's shape is fine
    with pytest.raises(RequestError) as caught:
        meridian.decide(data)
    message = str(caught.value)
    assert_one_line(message)
    assert f"`{offending}`" in message


def test_the_unknown_plan_message_lists_the_plans() -> None:
    data = {
        "action": "host",
        "at": AT,
        "subject": {"type": "individual", "country": "CN", "plan": "platinum"},
    }
    with pytest.raises(
        RequestError,
        match=r"unknown plan `platinum`: expected one of business, enterprise, free, pro$",
    ):
        meridian.decide(data)


# -- what parses -----------------------------------------------------------------------------------


def test_a_full_request_parses_into_a_frozen_value() -> None:
    request = parse_request(
        {
            "action": "purchase",
            "at": "2020-08-23T00:00:00.5+08:00",
            "subject": {
                "type": "organization",
                "country": "CN",
                "ip": "114.114.114.114",
                "plan": "pro",
                "org_id": " 9111 0000 6000 3734 1l ",
                "phone": "+86 10 6552 9988",
            },
            "resource": {"channel": "partner", "partner": "bizconf"},
        }
    )
    assert request.action == Action.PURCHASE
    assert request.at == datetime(2020, 8, 22, 16, 0, 0, 500000, tzinfo=UTC)
    assert request.epoch == int(datetime(2020, 8, 22, 16, tzinfo=UTC).timestamp())  # floored
    assert request.subject.org_id == "91110000600037341L"
    assert request.subject.org_form is OrgForm.VALID
    assert request.subject.org_country == "CN"
    assert request.subject.phone_country == "CN"
    assert request.subject.ip is not None
    assert request.subject.ip.is_global
    assert request.resource.partner == "bizconf"
    with pytest.raises(AttributeError):
        request.action = Action.JOIN  # type: ignore[misc]


def test_an_instant_before_the_epoch_floors() -> None:
    request = parse_request({**wire(), "at": "1969-12-31T23:59:59.5Z"})
    assert request.epoch == -1


@pytest.mark.parametrize(
    ("org_id", "form"),
    [
        ("91110000600037341L", OrgForm.VALID),
        ("91350100M0001TGQXM", OrgForm.CHECKFAIL),
        ("91110000600037341A", OrgForm.CHECKFAIL),
        ("ACME-0001", OrgForm.MALFORMED),
        ("9111000060003734IL", OrgForm.MALFORMED),  # I is not in the alphabet
    ],
)
def test_the_organisation_code_form(org_id: str, form: OrgForm) -> None:
    assert parse_request(wire(type="organization", org_id=org_id)).subject.org_form is form


def test_a_request_without_at_uses_the_engine_clock() -> None:
    engine = meridian.Engine(clock=lambda: datetime(2020, 8, 22, 15, 59, 59, tzinfo=UTC))
    before = engine.decide(
        {
            "action": "purchase",
            "subject": {"type": "organization", "country": "CN"},
            "resource": {"channel": "direct"},
        }
    )
    engine.clock = lambda: datetime(2020, 8, 22, 16, 0, 0, tzinfo=UTC)
    after = engine.decide(
        {
            "action": "purchase",
            "subject": {"type": "organization", "country": "CN"},
            "resource": {"channel": "direct"},
        }
    )
    assert (before.decision, after.decision) == ("allow", "deny")
    assert after.to_dict()["at"] == "2020-08-22T16:00:00Z"


def test_json_text_and_mapping_decide_alike() -> None:
    data = {
        "action": "purchase",
        "at": AT,
        "subject": {"type": "organization", "country": "CN"},
        "resource": {"channel": "direct"},
    }
    from_text = meridian.decide(parse_request_json(json.dumps(data)))
    assert from_text.to_dict() == meridian.decide(data).to_dict()


def test_an_instant_out_of_range_in_utc_is_a_request_error() -> None:
    from meridian.errors import RequestError
    from meridian.policy.request import parse_request

    for at in ("0001-01-01T00:00:00+01:00", "9999-12-31T23:59:59-01:00"):
        with pytest.raises(RequestError, match="out of range once converted to UTC"):
            parse_request({"action": "join", "at": at, "subject": {"type": "individual"}})
