"""Whatever a client sends, deciding returns a decision or raises RequestError: nothing else."""

from __future__ import annotations

import json

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from meridian import RequestError, default_engine
from meridian.policy import parse_request_json

_scalars = st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=30)
_json = st.recursive(_scalars, lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=10), inner, max_size=4), max_leaves=12)

_fields = {
    "action": st.sampled_from(["register", "purchase", "renew", "host", "join", "fly"]) | _scalars,
    "at": st.sampled_from(["2020-08-23T00:00:00+08:00", "2020-08-23T00:00:00", "yesterday", "2020-13-01T00:00:00Z"]) | _scalars,
    "subject": st.fixed_dictionaries(
        {},
        optional={
            "type": st.sampled_from(["individual", "organization", "robot"]) | _scalars,
            "country": st.sampled_from(["CN", "HK", "XX", "cn", "CN-HK"]) | _scalars,
            "ip": st.sampled_from(["114.114.114.114", "::1", "300.1.1.1", "10.0.0.1"]) | _scalars,
            "plan": st.sampled_from(["free", "pro", "platinum"]) | _scalars,
            "org_id": st.sampled_from(["91110000600037341L", "91350100M0001TGQXM", "x"]) | _scalars,
            "phone": st.sampled_from(["+86 10 6552 9988", "12", "+800 1234 5678"]) | _scalars,
        },
    )
    | _json,
    "resource": st.fixed_dictionaries(
        {},
        optional={
            "channel": st.sampled_from(["direct", "online", "partner", "barter"]) | _scalars,
            "partner": st.sampled_from(["bizconf", "acme"]) | _scalars,
        },
    )
    | _json,
}
_requests = st.fixed_dictionaries({}, optional=_fields) | _json


@pytest.mark.slow
@settings(max_examples=1500, derandomize=True, suppress_health_check=[HealthCheck.too_slow])
@given(_requests)
def test_any_json_gets_a_decision_or_a_one_line_request_error(payload: object) -> None:
    engine = default_engine()
    message = None
    try:
        decision = engine.decide(parse_request_json(json.dumps(payload)))
    except RequestError as exc:
        message = str(exc)
    if message is None:
        assert decision.decision in ("allow", "deny")
        return
    assert "\n" not in message
    assert message.startswith("request: ")
    first = message[len("request: ")]
    assert first.islower() or first == "`"


@settings(max_examples=500, derandomize=True)
@given(st.binary(max_size=60) | st.text(max_size=60))
def test_any_bytes_get_a_decision_or_a_request_error(raw: bytes | str) -> None:
    message = ""
    try:
        parse_request_json(raw)
    except RequestError as exc:
        message = str(exc)
    assert "\n" not in message


_plain_fields = {
    "action": st.sampled_from(["register", "purchase", "renew", "host", "join", "fly", " join"]),
    "at": st.sampled_from(
        [
            "2020-08-23T00:00:00+08:00",
            "2020-08-23T00:00:00Z",
            "2020-08-23T00:00:00.123456Z",
            "2020-08-23T00:00:00.1234567Z",
            "2020-08-23T00:00:60Z",
            "0001-01-01T00:00:00+01:00",
            "9999-12-31T23:59:59-01:00",
            "0999-05-01T00:00:00Z",
            "2020-08-23T00:00:00+24:00",
            "2020-08-23 00:00:00Z",
            "2020-08-23T00:00:00",
        ]
    )
    | st.none(),
    "subject": st.fixed_dictionaries(
        {"type": st.sampled_from(["individual", "organization", "robot"])},
        optional={
            "id": st.text(max_size=3) | st.none(),
            "country": st.sampled_from(["CN", "HK", "XX", "cn", " CN", ""]) | st.none(),
            "ip": st.sampled_from(["114.114.114.114", "::1", "300.1.1.1", "10.0.0.1", " 8.8.8.8"]) | st.none(),
            "plan": st.sampled_from(["free", "pro", "x" * 101, ""]) | st.none(),
            "org_id": st.sampled_from(["91110000600037341L", "9111-0000 600037341l", "x", ""]) | st.none(),
            "phone": st.sampled_from(["+86 10 6552 9988", "12", "+800 1234 5678", ""]) | st.none(),
            "extra": st.just(1),
        },
    ),
    "resource": st.fixed_dictionaries(
        {},
        optional={
            "channel": st.sampled_from(["direct", "partner", "", " online"]) | st.none(),
            "partner": st.sampled_from(["bizconf", "acme"]) | st.none(),
        },
    )
    | st.none(),
}


@pytest.mark.slow
@settings(max_examples=3000, derandomize=True, suppress_health_check=[HealthCheck.too_slow])
@given(st.fixed_dictionaries({}, optional=_plain_fields))
def test_the_plain_request_path_agrees_with_the_validated_one(payload: dict) -> None:
    """`_parse_plain` either gives what the validated path gives, or defers to it (None)."""
    from meridian.policy import request as module

    fast = module._parse_plain(payload)
    if fast is None:
        return
    original = module._parse_plain
    module._parse_plain = lambda _: None  # the validated path alone
    try:
        slow = module.parse_request(payload)
    except RequestError as exc:  # pragma: no cover - the failure this test exists to catch
        raise AssertionError(f"plain path accepted what validation refuses: {exc}") from None
    finally:
        module._parse_plain = original
    assert fast == slow
