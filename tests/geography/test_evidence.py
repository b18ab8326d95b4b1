"""Location evidence: what country each signal a subject carries points to.

A phone number's country comes from its calling code (``phonenumbers``); an organisation code in
Unified Social Credit Code form claims a mainland China registration; anything else points
nowhere. HK, MO and TW numbers are not mainland China.
"""

from __future__ import annotations

from typing import Any

import pytest

from meridian import Engine
from meridian.geography.evidence import Evidence, Signal, resolve_signal
from meridian.geography.ipgeo import Ip3CountryLocator, IpAddress
from meridian.policy import load_bundle_text, parse_request


class NoLocator:
    def country(self, ip: IpAddress) -> str | None:
        raise AssertionError("no signal but `ip` may consult the locator")


def subject(**fields: Any) -> Any:
    return parse_request(
        {
            "action": "join",
            "at": "2020-09-01T09:00:00+08:00",
            "subject": {"type": "individual", **fields},
        }
    ).subject


def country_of(signal: Signal, locator: Any = None, **fields: Any) -> str | None:
    found = resolve_signal(signal, subject(**fields), locator or NoLocator())
    assert found is not None
    assert found.signal is signal
    return found.country


@pytest.mark.parametrize(
    ("phone", "country"),
    [
        ("+86 10 6552 9988", "CN"),  # Beijing landline
        ("+8613800138000", "CN"),  # mainland mobile
        ("+852 2123 4567", "HK"),
        ("+853 2888 1234", "MO"),
        ("+886 2 2345 6789", "TW"),
        ("+1 202 456 1111", "US"),
        ("+49 30 123456", "DE"),
    ],
)
def test_a_phone_number_points_to_its_country(phone: str, country: str) -> None:
    assert country_of(Signal.PHONE, phone=phone) == country


@pytest.mark.parametrize(
    "org_id",
    ["91110000600037341L", "91350100M0001TGQXM", "91110000600037341A", "9111 0000 6000 3734 1l"],
    ids=["valid", "pilot", "failing check", "typed loosely"],
)
def test_a_uscc_form_code_points_to_mainland_china(org_id: str) -> None:
    # The form claims a CN registration whether or not the check passes: the CN rules judge it.
    assert country_of(Signal.ORG_ID, org_id=org_id) == "CN"


@pytest.mark.parametrize(
    "org_id", ["ACME-0001", "12345", "HRB 12345 B", "9111000060003734IL", "91AB0000600037341L"]
)
def test_a_malformed_organisation_code_points_nowhere(org_id: str) -> None:
    assert country_of(Signal.ORG_ID, org_id=org_id) is None


def test_the_declared_country_is_taken_as_given() -> None:
    assert country_of(Signal.COUNTRY, country="MO") == "MO"


def test_the_ip_signal_asks_the_locator() -> None:
    ip3 = Ip3CountryLocator()
    assert country_of(Signal.IP, ip3, ip="114.114.114.114") == "CN"
    assert country_of(Signal.IP, ip3, ip="10.0.0.1") is None  # present, but places nobody


@pytest.mark.parametrize("signal", list(Signal))
def test_a_missing_signal_is_no_evidence(signal: Signal) -> None:
    assert resolve_signal(signal, subject(), NoLocator()) is None


def test_evidence_keeps_the_value_it_read() -> None:
    found = resolve_signal(Signal.ORG_ID, subject(org_id="9111 0000 6000 3734 1l"), NoLocator())
    assert found == Evidence(Signal.ORG_ID, "91110000600037341L", "CN")
    assert found.to_dict() == {"signal": "org_id", "value": "91110000600037341L", "country": "CN"}


# A bundle that counts the phone number for hosting, to see the evidence reach the decision.
PHONE_BUNDLE = """
bundle: phone-sample
version: "1"
jurisdictions: {CN: {zone: Asia/Shanghai}}
channels: {direct: {name: Direct}}
plans: {free: {name: Free, paid: false, max_participants: 100}}
location:
  register: {signals: [country], resolve: first}
  purchase: {signals: [country], resolve: first}
  renew: {signals: [country], resolve: first}
  join: {signals: [country], resolve: first}
  host: {signals: [phone, country, ip], resolve: strictest}
rules:
  - id: host-open
    description: hosting is open
    message: hosting is open
    effect: permit
    actions: [host]
    jurisdictions: [everywhere]
  - id: cn-free-hosts
    description: no free hosts in mainland China from 2020-05-20
    message: free accounts in mainland China cannot host
    effect: forbid
    actions: [host]
    jurisdictions: [CN]
    effective: {from: 2020-05-20}
    when: {attribute: subject.plan, in: [free]}
"""


def test_phone_evidence_reaches_the_decision() -> None:
    engine = Engine(load_bundle_text(PHONE_BUNDLE, "phone.yaml"))
    decision = engine.decide(
        {
            "action": "host",
            "at": "2020-06-01T09:00:00+08:00",
            "subject": {
                "type": "individual",
                "country": "HK",
                "phone": "+8613800138000",
                "ip": "10.0.0.1",
            },
        }
    )
    assert decision.decision == "deny"
    assert decision.rule_ids == ("cn-free-hosts",)
    assert list(decision.location.judged_under) == ["CN", "HK"]
    evidence = [e.to_dict() for e in decision.location.evidence]
    assert evidence == [
        {"signal": "phone", "value": "+8613800138000", "country": "CN"},
        {"signal": "country", "value": "HK", "country": "HK"},
        {"signal": "ip", "value": "10.0.0.1", "country": None},
    ]
    hk_phone = engine.decide(
        {
            "action": "host",
            "at": "2020-06-01T09:00:00+08:00",
            "subject": {"type": "individual", "phone": "+852 2123 4567"},
        }
    )
    assert (hk_phone.decision, hk_phone.location.country) == ("allow", "HK")
