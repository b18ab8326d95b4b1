"""Invariants: `meridian policy check BUNDLE --invariants FILE` (meridian.policy.invariants)."""

from __future__ import annotations

import itertools
import json
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from tests.policy.test_diff import (
    BOUNDS,
    MOVED,
    STUB_IPS,
    ZONES,
    StubLocator,
    _dump,
    bundle_doc,
    changed,
)
from typer.testing import CliRunner

from meridian.cli.app import app
from meridian.errors import InputError, RequestError
from meridian.policy import Engine, load_bundle, load_bundle_text
from meridian.policy.diff import side_of
from meridian.policy.invariants import (
    InvariantFile,
    check_invariants,
    default_invariants_path,
    load_invariants,
    load_invariants_text,
)
from meridian.policy.loader import default_bundle_path

runner = CliRunner()
DEFAULT_INVARIANTS = default_invariants_path(default_bundle_path())


def test_the_built_in_bundle_ships_invariants_and_they_all_hold() -> None:
    assert DEFAULT_INVARIANTS.is_file()
    report = check_invariants(load_bundle(), load_invariants(DEFAULT_INVARIANTS))
    assert report.ok, [r.to_dict() for r in report.broken]
    ids = {r.id for r in report.results}
    assert {"cn-no-direct-purchase-after-cutover", "join-ignores-plan", "hk-mo-tw-never-cn"} <= ids
    assert all(r.examined > 0 for r in report.results)


def test_the_check_command_proves_the_built_in_invariants() -> None:
    result = runner.invoke(app, ["policy", "check", str(default_bundle_path())])
    assert result.exit_code == 0, result.output
    assert "hk-mo-tw-never-cn" in result.stdout
    assert "invariants hold" in result.stdout


def test_moving_the_cutover_later_breaks_an_invariant_with_a_counterexample() -> None:
    moved = changed(MOVED)
    report = check_invariants(moved, load_invariants(DEFAULT_INVARIANTS))
    (broken,) = report.broken
    assert broken.id == "cn-no-direct-purchase-after-cutover"
    example = broken.counterexample
    assert example is not None
    assert example["resource"] == {"channel": "direct"}
    decision = Engine(moved).decide(example)
    assert decision.decision == "allow"
    assert "CN" in decision.location.judged_under
    assert "2020-08-22T16:00:00Z" <= example["at"] < "2020-08-29T16:00:00Z"
    assert broken.decided is not None
    assert broken.decided.decision == "allow"


def test_a_join_that_depends_on_the_plan_gives_two_requests_decided_otherwise(
    tmp_path: Path,
) -> None:
    text = default_bundle_path().read_text(encoding="utf-8")
    text += (
        "\n  - id: free-cannot-join-in-us\n    description: a test rule\n    message: no\n"
        "    effect: forbid\n    actions: [join]\n    jurisdictions: [US]\n"
        "    when: {attribute: subject.plan, in: [free]}\n"
    )
    bundle = tmp_path / "plan.yaml"
    bundle.write_text(text, encoding="utf-8")
    result = runner.invoke(
        app, ["policy", "check", str(bundle), "--invariants", str(DEFAULT_INVARIANTS), "--json"]
    )
    assert result.exit_code == 1, result.output
    report = json.loads(result.stdout)
    broken = {r["id"]: r for r in report["results"] if not r["holds"]}
    # it also stops a free US user joining, which another invariant says must stay open
    assert set(broken) == {"join-ignores-plan", "join-always-open-where-known"}
    broken = broken["join-ignores-plan"]
    one, other = broken["counterexample"], broken["other"]
    strip = {"plan"}
    assert {k: v for k, v in one["subject"].items() if k not in strip} == {
        k: v for k, v in other["subject"].items() if k not in strip
    }
    assert one["subject"].get("plan") != other["subject"].get("plan")
    engine = Engine(load_bundle(bundle))
    assert side_of(engine.decide(one)) != side_of(engine.decide(other))


@pytest.mark.parametrize(
    ("text", "fragment"),
    [
        ("invariants: [", "malformed yaml"),
        ("- a list", "a mapping with `invariants`"),
        ("invariants: []", "invariants"),
        (
            "invariants: [{id: x, description: d, decision: deny, not_judged_under: [CN]}]",
            "exactly one of",
        ),
        ("invariants: [{id: x, description: d}]", "exactly one of"),
        ("invariants: [{id: x, description: d, decision: maybe}]", "`maybe`"),
        ("invariants: [{id: x, description: d, decision: deny, colour: red}]", "colour"),
        ("invariants: [{id: x, description: d, when: {acton: [join]}, decision: deny}]", "acton"),
        (
            "invariants: [{id: x, description: d, when: {action: [fly]}, decision: deny}]",
            "`fly`",
        ),
        ("invariants: " + "[" * 100_000, "nested too deep"),
        ("invariants: " + "{a: " * 50_000, "nested too deep"),
    ],
)
def test_a_bad_invariants_file_is_one_line_naming_the_problem(text: str, fragment: str) -> None:
    with pytest.raises(InputError) as caught:
        load_invariants_text(text, "bad.yaml")
    message = caught.value.message
    assert "\n" not in message
    assert message.startswith("bad.yaml")
    assert fragment in message


@pytest.mark.parametrize(
    ("when", "fragment"),
    [
        ("{judged_under: [XX]}", "unknown jurisdiction or group `XX`"),
        ("{judged_under: [nowhere-land]}", "`nowhere-land`"),
        ("{located_in: [FR], from: 2020-01-01}", "give `zone`"),
    ],
)
def test_an_invariant_the_bundle_cannot_read_is_one_line_and_exit_2(
    tmp_path: Path, when: str, fragment: str
) -> None:
    path = tmp_path / "bad.invariants.yaml"
    path.write_text(
        f"invariants: [{{id: x, description: d, when: {when}, decision: deny}}]\n",
        encoding="utf-8",
    )
    result = runner.invoke(
        app, ["policy", "check", str(default_bundle_path()), "--invariants", str(path)]
    )
    assert result.exit_code == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1
    assert lines[0].startswith("error: ")
    assert fragment in lines[0]


def test_a_missing_invariants_file_is_named() -> None:
    result = runner.invoke(
        app, ["policy", "check", str(default_bundle_path()), "--invariants", "/nonexistent.yaml"]
    )
    assert result.exit_code == 1
    assert "no invariants file at `/nonexistent.yaml`" in result.stderr


# -- against brute force, on random bundles and random invariants -----------------------------

ORG_CODES = (None, "91110000600037341L", "91350100M0001TGQXM", "ACME-0001")
OFFERS = ((None, None), ("direct", None), ("partner", "p1"), ("partner", "p2"), ("partner", "zz"))
FACTS = ("type", "plan", "channel", "partner")


@st.composite
def invariant(draw: st.DrawFn) -> dict[str, Any]:
    when: dict[str, Any] = {"action": [draw(st.sampled_from(("register", "purchase", "join")))]}
    if draw(st.booleans()):
        when["judged_under"] = [draw(st.sampled_from(("CN", "US", "not-cn", "unknown")))]
    if draw(st.booleans()):
        when["located_in"] = draw(st.sampled_from((["CN"], ["US", "FR"], ["HK"])))
    if draw(st.booleans()):
        when["channel"] = [draw(st.sampled_from(("direct", "partner", "none")))]
    if draw(st.booleans()):
        when["from"] = draw(st.sampled_from((*BOUNDS, date(2020, 7, 1))))
        when["zone"] = draw(st.sampled_from(tuple(ZONES.values())))
    claim = draw(st.sampled_from(("decision", "independent_of", "not_judged_under")))
    out: dict[str, Any] = {"id": "random", "description": "random", "when": when}
    if claim == "decision":
        out["decision"] = draw(st.sampled_from(("allow", "deny")))
    elif claim == "independent_of":
        out["independent_of"] = [draw(st.sampled_from(FACTS))]
    else:
        out["not_judged_under"] = [draw(st.sampled_from(("CN", "US")))]
    return out


def _expand(doc: dict[str, Any], names: list[str]) -> set[str] | None:
    out: set[str] = set()
    for name in names:
        if name == "not-cn":
            out |= {"US", "FR", "HK", "JP"}  # the codes the brute force uses, CN left out
        else:
            out.add(name)
    return out


def _epoch(value: date, zone: str) -> int:
    return int(datetime(value.year, value.month, value.day, tzinfo=ZoneInfo(zone)).timestamp())


def brute_force_holds(doc: dict[str, Any], inv: dict[str, Any]) -> bool:
    """Decide concrete requests one by one through ``decide``: every signal value the stub knows,
    and each second around every bound the bundle or the invariant names."""
    engine = Engine(load_bundle_text(_dump(doc), "random.yaml"), locator=StubLocator())
    when = inv["when"]
    bounds = {_epoch(b, z) for b in BOUNDS for z in ZONES.values()}
    bounds.add(_epoch(date(2020, 7, 1), when.get("zone", "UTC")))
    instants = sorted({b + d for b in bounds for d in (-1, 0, 1)} | {0, 2_000_000_000})
    start = _epoch(when["from"], when["zone"]) if "from" in when else None
    judged = _expand(doc, when["judged_under"]) if "judged_under" in when else None
    located = set(when.get("located_in", ())) or None
    groups: dict[tuple[object, ...], Any] = {}
    for country, ip, org, kind, plan, offer, at in itertools.product(
        (None, "CN", "US", "FR", "HK"),
        (None, *STUB_IPS, "10.0.0.1"),
        ORG_CODES,
        ("individual", "organization"),
        (None, "free", "pro"),
        OFFERS,
        instants,
    ):
        if start is not None and at < start:
            continue
        channel = offer[0] or "none"
        if "channel" in when and channel not in when["channel"]:
            continue
        subject: dict[str, Any] = {"type": kind}
        for key, value in (("country", country), ("ip", ip), ("org_id", org), ("plan", plan)):
            if value is not None:
                subject[key] = value
        resource = {k: v for k, v in zip(("channel", "partner"), offer, strict=True) if v}
        wire = {
            "action": when["action"][0],
            "at": datetime.fromtimestamp(at, UTC).isoformat(),
            "subject": subject,
            "resource": resource,
        }
        try:
            decision = engine.decide(wire)
        except RequestError:
            continue
        under = decision.location.judged_under
        if judged is not None and not judged & set(under):
            continue
        named = {e.country for e in decision.location.evidence if e.country is not None}
        if located is not None and (not named or not named <= located):
            continue
        if "decision" in inv and decision.decision != inv["decision"]:
            return False
        if "not_judged_under" in inv and set(inv["not_judged_under"]) & set(under):
            return False
        if "independent_of" in inv:
            (fact,) = inv["independent_of"]
            coords = {"type": kind, "plan": plan, "channel": offer[0], "partner": offer[1]}
            coords[fact] = None
            key = (country, ip, org, tuple(coords.items()), at)
            first = groups.setdefault(key, side_of(decision))
            if first != side_of(decision):
                return False
    return True


@settings(deadline=None, max_examples=12, derandomize=True, database=None)
@given(doc=bundle_doc(), inv=invariant())
def test_the_checker_agrees_with_brute_force_through_decide(
    doc: dict[str, Any], inv: dict[str, Any]
) -> None:
    bundle = load_bundle_text(_dump(doc), "random.yaml")
    report = check_invariants(
        bundle, InvariantFile.model_validate({"invariants": [inv]}), locator=StubLocator()
    )
    (result,) = report.results
    assert result.holds is brute_force_holds(doc, inv), (inv, result.to_dict())
    if not result.holds:  # the counterexample really is one
        assert result.counterexample is not None
        engine = Engine(bundle, locator=StubLocator())
        decision = engine.decide(result.counterexample)
        if "decision" in inv:
            assert decision.decision != inv["decision"]
        elif "not_judged_under" in inv:
            assert set(inv["not_judged_under"]) & set(decision.location.judged_under)
        else:
            assert result.other is not None
            assert side_of(decision) != side_of(engine.decide(result.other))
