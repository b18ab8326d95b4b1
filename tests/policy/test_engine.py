"""Engine edge cases: the verdict memo, duplicate actions, windows where no zone exists."""

from __future__ import annotations

import pytest

import meridian
from meridian.errors import BundleError
from meridian.policy import Engine, load_bundle_text

BASE = """
bundle: edge
version: "1"
jurisdictions: {DE: {zone: Europe/Berlin}}
channels: {direct: {name: Direct}, partner: {name: Partner}}
plans: {free: {name: Free, paid: false, max_participants: 10}}
partners:
  p: {name: P, jurisdictions: [DE], effective: {from: 2020-06-01}}
location:
  register: {signals: [country], resolve: first}
  purchase: {signals: [country], resolve: first}
  renew: {signals: [country], resolve: first}
  host: {signals: [country], resolve: first}
  join: {signals: [country], resolve: first}
rules:
"""


def _purchase(at: str) -> dict[str, object]:
    return {"action": "purchase", "at": at, "subject": {"type": "organization", "country": "DE"}, "resource": {"channel": "direct"}}


def test_memo_never_serves_alternatives_from_another_partner_window() -> None:
    engine = Engine(load_bundle_text(BASE + "  - {id: join-anywhere, description: d, message: m, effect: permit, actions: [join], jurisdictions: [DE]}\n"))
    before = engine.decide(_purchase("2020-01-15T12:00:00Z"))
    after = engine.decide(_purchase("2020-07-15T12:00:00Z"))
    assert before.decision == after.decision == "deny"
    assert before.alternatives.partners == ()
    assert [p.id for p in after.alternatives.partners] == ["p"]
    # A fresh engine agrees with the one that memoised the earlier verdict.
    fresh = Engine(engine.bundle).decide(_purchase("2020-07-15T12:00:00Z"))
    assert fresh == after


def test_a_rule_listing_an_action_twice_gives_one_reason() -> None:
    bundle = load_bundle_text(BASE + "  - {id: join-anywhere, description: d, message: m, effect: permit, actions: [join, join], jurisdictions: [DE]}\n")
    decision = Engine(bundle).decide({"action": "join", "at": "2020-01-01T00:00:00Z", "subject": {"type": "individual", "country": "DE"}})
    assert decision.rule_ids == ("join-anywhere",)
    assert len(decision.reasons) == 1


def test_a_window_on_unknown_is_refused_at_load() -> None:
    text = BASE + "  - {id: odd, description: d, message: m, effect: forbid, actions: [join], jurisdictions: [unknown], effective: {from: 2020-01-01}}\n"
    with pytest.raises(BundleError) as caught:
        load_bundle_text(text, "edge.yaml")
    problem = caught.value.problems[0]
    assert "`unknown` has no local time" in problem.message
    assert problem.line == text.splitlines().index(text.splitlines()[-1]) + 1


def test_memo_is_exact_across_many_instants() -> None:
    """Decisions from one long-lived engine equal those of a fresh engine for every request."""
    import random

    from meridian.policy import load_bundle

    rng = random.Random(7)
    shared = Engine(load_bundle())
    for _ in range(300):
        request = {
            "action": rng.choice(["register", "purchase", "renew", "host", "join"]),
            "at": f"2020-{rng.randint(4, 9):02d}-{rng.randint(1, 28):02d}T{rng.randint(0, 23):02d}:{rng.randint(0, 59):02d}:00+08:00",
            "subject": {"type": rng.choice(["individual", "organization"]), "country": rng.choice(["CN", "HK", "US"]), "plan": rng.choice(["free", "pro"])},
        }
        if request["action"] in ("purchase", "renew"):
            request["resource"] = {"channel": rng.choice(["direct", "online"])}
        assert shared.decide(request) == Engine(shared.bundle).decide(request)


def test_memo_quotes_each_organisation_code_in_its_own_message() -> None:
    from meridian.policy import load_bundle

    engine = Engine(load_bundle())
    codes = ["91110000600037341X", "91110000600037341Y", "91350100M0001TGQXM", "91350100M0001TGQXA"]
    for _ in range(2):  # the second round is served from the memo
        for code in codes:
            decision = engine.decide({"action": "register", "at": "2020-06-01T00:00:00Z", "subject": {"type": "organization", "country": "CN", "org_id": code}})
            assert code in decision.reasons[-1].message
    valid = [{"action": "register", "at": "2020-06-01T00:00:00Z", "subject": {"type": "organization", "country": "CN", "org_id": c}} for c in ("91110000600037341L", "91110000600037341L ")]
    assert engine.decide(valid[0]) == engine.decide(valid[1])


def test_a_failing_ip_lookup_refuses_and_says_why() -> None:
    from meridian.geography.ipgeo import IpAddress
    from meridian.policy import load_bundle

    class BrokenLocator:
        def country(self, ip: IpAddress) -> str | None:
            raise OSError("geoip database unreadable")

    engine = Engine(load_bundle(), locator=BrokenLocator())
    decision = engine.decide({"action": "join", "at": "2020-06-01T00:00:00Z", "subject": {"type": "individual", "country": "US", "ip": "8.8.8.8"}})
    assert decision.decision == "deny"
    assert decision.location.country == "unknown"
    assert "geoip database unreadable" in decision.errors[0]


@pytest.mark.parametrize("action", ["purchase", "renew"])
@pytest.mark.parametrize("country", ["CN", "US", "HK"])
def test_a_partner_nobody_authorised_is_denied_with_its_name_and_the_alternatives(
    action: str, country: str
) -> None:
    decision = meridian.decide(
        {
            "action": action,
            "at": "2020-09-01T12:00:00+08:00",
            "subject": {"type": "organization", "country": country},
            "resource": {"channel": "partner", "partner": "acme"},
        }
    )
    assert decision.decision == "deny"
    assert decision.rule_ids == ("partner-not-authorised",)
    assert "`acme` is not an authorised partner" in decision.reasons[0].message
    offered = [p.id for p in decision.alternatives.partners]
    assert offered == (["bizconf", "suirui-zhumu", "systec-umeet"] if country == "CN" else [])
