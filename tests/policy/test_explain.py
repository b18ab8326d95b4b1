"""Advice for a refused sign-up: derived from the refusing rules and from what the bundle allows."""

from __future__ import annotations

from dataclasses import FrozenInstanceError
from typing import Any

import pytest

from meridian.policy import Engine, load_bundle, load_bundle_text, parse_request
from meridian.policy.explain import Advice, AdviceKind, join_request, signup_advice

CN_IP = "114.114.114.114"


@pytest.fixture(scope="module")
def engine() -> Engine:
    return Engine(load_bundle())


def _refused(engine: Engine, subject: dict[str, Any], at: str = "2020-05-02T10:00:00+08:00"):
    request = parse_request({"action": "register", "at": at, "subject": subject})
    decision = engine.decide(request)
    assert decision.decision == "deny"
    return request, decision


def test_a_cn_individual_is_told_to_register_the_organisation_then_join_or_buy_through_a_partner(
    engine: Engine,
) -> None:
    request, decision = _refused(engine, {"type": "individual", "country": "CN", "ip": CN_IP})
    join = engine.decide(join_request(request))
    advice = signup_advice(
        decision, request, engine.bundle, join=join, contacts={"bizconf": "sales@bizconf.example"}
    )
    assert [a.kind for a in advice] == [AdviceKind.OTHER_TYPE, AdviceKind.JOIN, AdviceKind.PARTNERS]
    other, joining, partners = advice
    assert other.text == (
        "Sign-ups in mainland China are for organisations: register the organisation you work "
        "for, with its Unified Social Credit Code (the 18 characters on its business licence)."
    )
    assert (other.jurisdiction, other.rule) == ("CN", "cn-register-organisations-only")
    assert "join meetings you are invited to as a participant, without an account" in joining.text
    assert partners.jurisdiction == "CN"
    assert [p.id for p in partners.partners] == ["bizconf", "suirui-zhumu", "systec-umeet"]
    # the registry's contact fills in where the bundle names none
    assert partners.partners[0].contact == "sales@bizconf.example"
    assert "Bizconf Communications (sales@bizconf.example), Suirui Zhumu" in partners.text


def test_an_invalid_code_is_what_to_fix(engine: Engine) -> None:
    request, decision = _refused(
        engine,
        {"type": "organization", "country": "CN", "org_id": "91110000600037341A"},
        at="2020-06-12T10:00:00+08:00",
    )
    advice = signup_advice(decision, request, engine.bundle)
    assert advice[0].kind is AdviceKind.ORG_ID
    assert advice[0].rule == "cn-register-uscc-invalid"
    assert advice[0].text.startswith("Give the organisation's Unified Social Credit Code exactly")
    # without a join decision nothing is said about joining; the partners are still offered
    assert [a.kind for a in advice] == [AdviceKind.ORG_ID, AdviceKind.PARTNERS]


def test_a_request_placed_nowhere_is_told_to_say_where_it_is(engine: Engine) -> None:
    request, decision = _refused(engine, {"type": "individual", "ip": "10.0.0.1"})
    join = engine.decide(join_request(request))
    advice = signup_advice(decision, request, engine.bundle, join=join)
    # the unknown jurisdiction has no partners, and joining is refused there too
    assert [a.kind for a in advice] == [AdviceKind.LOCATE]
    assert advice[0].jurisdiction == "unknown"
    assert "Meridian does not guess" in advice[0].text


def test_a_default_deny_gets_no_advice_and_a_rule_that_tests_nothing_is_named() -> None:
    base = """
bundle: explain
version: "1"
jurisdictions: {DE: {zone: Europe/Berlin}}
channels: {direct: {name: Direct}}
plans: {free: {name: Free, paid: false, max_participants: 10}}
location:
  register: {signals: [country], resolve: first}
  purchase: {signals: [country], resolve: first}
  renew: {signals: [country], resolve: first}
  host: {signals: [country], resolve: first}
  join: {signals: [country], resolve: first}
rules:
"""
    closed = Engine(load_bundle_text(base + "  - {id: join-de, description: d, message: m, effect: permit, actions: [join], jurisdictions: [DE]}\n"))
    request, decision = _refused(closed, {"type": "individual", "country": "DE"})
    assert signup_advice(decision, request, closed.bundle, join=closed.decide(join_request(request))) == ()

    shut = Engine(load_bundle_text(base + "  - {id: de-closed, description: d, message: closed, effect: forbid, actions: [register], jurisdictions: [DE]}\n"))
    request, decision = _refused(shut, {"type": "individual", "country": "DE"})
    (only,) = signup_advice(decision, request, shut.bundle, join=shut.decide(join_request(request)))
    assert only == Advice(AdviceKind.RULE, "The rule `de-closed` refuses this in Germany.", "DE", "de-closed")
    assert only.to_dict() == {
        "kind": "rule",
        "text": "The rule `de-closed` refuses this in Germany.",
        "jurisdiction": "DE",
        "rule": "de-closed",
        "partners": [],
    }
    with pytest.raises(FrozenInstanceError):
        only.text = "changed"  # type: ignore[misc]


def test_the_join_request_keeps_the_evidence_and_the_instant(engine: Engine) -> None:
    request = parse_request(
        {
            "action": "register",
            "at": "2020-05-02T10:00:00+08:00",
            "subject": {"type": "organization", "country": "CN", "ip": CN_IP, "org_id": "91110000600037341L"},
        }
    )
    join = join_request(request)
    assert join.action == "join"
    assert (join.subject.type, join.subject.country, join.subject.ip) == ("organization", "CN", request.subject.ip)
    assert join.subject.org_id is None
    assert (join.at, join.epoch) == (request.at, request.epoch)
