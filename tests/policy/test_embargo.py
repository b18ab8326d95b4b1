"""The second built-in example bundle: a comprehensive embargo (bundles/embargo.yaml)."""

from __future__ import annotations

import json
from functools import cache
from pathlib import Path
from typing import Any

import cedarpy
import pytest
import yaml
from typer.testing import CliRunner

from meridian.cli.app import app
from meridian.errors import RequestError
from meridian.policy import Engine, load_bundle, parse_request
from meridian.policy.cedar import cedar_request, export_cedar
from meridian.policy.diff import diff_bundles
from meridian.policy.engine import evaluate
from meridian.policy.invariants import check_invariants, default_invariants_path, load_invariants
from meridian.policy.loader import builtin_bundle_path

CORPUS = Path(__file__).resolve().parent.parent / "corpus" / "embargo"
CASES = [
    case
    for path in sorted(CORPUS.glob("*.yaml"))
    for case in yaml.safe_load(path.read_text(encoding="utf-8"))
]
EMBARGOED = ("CU", "IR", "KP", "SY")


@cache
def engine() -> Engine:
    return Engine(load_bundle("builtin:embargo"))


def test_the_embargo_bundle_loads_by_its_built_in_name() -> None:
    bundle = load_bundle("builtin:embargo")
    assert bundle.document.bundle == "meridian-embargo"
    assert set(bundle.document.groups["embargoed"].include) == set(EMBARGOED)


def test_every_embargo_rule_cites_its_legal_source() -> None:
    for rule in load_bundle("builtin:embargo").document.rules:
        if rule.id.startswith("embargo-"):
            assert "15 CFR 746." in rule.description, rule.id
            assert "15 CFR 746." in rule.message, rule.id


def test_its_invariants_hold() -> None:
    path = default_invariants_path(builtin_bundle_path("embargo"))
    report = check_invariants(load_bundle("builtin:embargo"), load_invariants(path))
    assert report.ok, [r.to_dict() for r in report.broken]
    assert len(report.results) >= 4


def test_the_check_command_finds_its_invariants_by_the_built_in_name() -> None:
    result = CliRunner().invoke(app, ["policy", "check", "builtin:embargo"])
    assert result.exit_code == 0, result.output
    assert "embargoed-refused-every-action" in result.stdout


@pytest.mark.parametrize("country", EMBARGOED)
@pytest.mark.parametrize("action", ["register", "purchase", "renew", "host", "join"])
def test_every_action_is_refused_in_each_embargoed_jurisdiction(action: str, country: str) -> None:
    request: dict[str, Any] = {
        "action": action,
        "at": "2026-12-03T12:00:00Z",
        "subject": {"type": "organization", "country": country, "plan": "pro"},
    }
    if action in ("purchase", "renew"):
        request["resource"] = {"channel": "direct"}
    decision = engine().decide(request)
    assert decision.decision == "deny"
    assert len(decision.reasons) == 1
    assert decision.reasons[0].rule.startswith("embargo-")
    assert "CFR" in decision.reasons[0].message


def test_the_corpus_covers_every_rule() -> None:
    rules = {r.id for r in load_bundle("builtin:embargo").document.rules}
    assert rules - {rule for case in CASES for rule in case["expect"]["rules"]} == set()


@pytest.mark.parametrize("case", CASES, ids=[c["name"] for c in CASES])
def test_corpus_case(case: dict[str, Any]) -> None:
    expect = case["expect"]
    decision = engine().decide(case["request"])
    public = decision.to_dict()
    assert public["decision"] == expect["decision"]
    assert list(decision.rule_ids) == expect["rules"]
    assert public["obligations"] == expect["obligations"]
    assert public["location"]["country"] == expect["country"]
    assert [p["id"] for p in public["alternatives"]["partners"]] == expect["partners"]
    if "judged_under" in expect:
        assert public["location"]["judged_under"] == expect["judged_under"]
    wanted = expect.get("message_contains", [])
    messages = "\n".join(r["message"] for r in public["reasons"])
    for fragment in [wanted] if isinstance(wanted, str) else wanted:
        assert fragment in messages


# -- against Cedar ----------------------------------------------------------------------------


def test_the_cedar_export_validates_against_its_schema() -> None:
    export = export_cedar(engine().bundle)
    result = cedarpy.validate_policies(export.policies, export.schema)
    assert result.validation_passed, [str(e) for e in result.errors]


_SIDES: dict[int, tuple[Any, Any]] = {}


def _cedar_agrees(eng: Engine, wire: dict[str, Any]) -> None:
    if id(eng) not in _SIDES:
        export = export_cedar(eng.bundle)
        _SIDES[id(eng)] = (
            cedarpy.PolicySet.from_str(export.policies),
            cedarpy.Schema.from_json_str(json.dumps(export.schema)),
        )
    policies, schema = _SIDES[id(eng)]
    ids = {f"policy{i}": r.id for i, r in enumerate(eng.bundle.document.rules)}
    request = parse_request(wire)
    try:
        facts = eng.facts(request)
    except RequestError:
        return
    for fact in facts:
        mine = evaluate(eng.bundle, request.action, fact)
        theirs = cedarpy.is_authorized(cedar_request(request.action, fact), policies, [], schema)
        assert theirs.allowed is mine.allowed, (wire, fact.as_dict())
        assert sorted(ids[p] for p in theirs.diagnostics.reasons) == sorted(
            r.id for r in mine.rules
        )


def test_cedar_agrees_on_the_corpus_and_on_every_example_of_its_diff_against_the_default() -> None:
    default = Engine(load_bundle())
    for case in CASES:
        _cedar_agrees(engine(), case["request"])
    diff = diff_bundles(load_bundle(), load_bundle("builtin:embargo"))
    assert {"CU", "IR", "KP", "SY"} <= {j for c in diff.classes for j in c.judged_under[1]}
    for row in diff.classes:
        _cedar_agrees(default, row.example)
        _cedar_agrees(engine(), row.example)
