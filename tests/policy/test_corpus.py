"""The decision corpus: requests in wire form and the decisions the domain facts call for.

Each file under ``tests/corpus/`` holds cases on one theme; each case is::

    - name: purchase direct cn at aug 23 local midnight      # the test id
      request: {action: purchase, at: "...", subject: {...}, resource: {...}}
      expect:
        decision: deny                     # allow | deny
        rules: [cn-direct-sales-end]       # deciding rule ids, in order
        obligations: []
        country: CN                        # location.country
        partners: [bizconf, ...]           # alternatives.partners ids
        judged_under: [US, CN]             # optional: location.judged_under
        approximate: [rule-id]             # optional: rules whose reason is approximate (else none)
        message_contains: "..."            # optional: a string or a list, found in the reasons

The expected values are written from DOMAIN.md, not copied from the engine's output.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import yaml

import meridian

CORPUS = Path(__file__).resolve().parent.parent / "corpus"
REQUIRED = {"decision", "rules", "obligations", "country", "partners"}
OPTIONAL = {"judged_under", "approximate", "message_contains"}


def _load_cases() -> list[tuple[str, dict[str, Any]]]:
    cases: list[tuple[str, dict[str, Any]]] = []
    for path in sorted(CORPUS.glob("*.yaml")):
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
        assert isinstance(data, list), f"{path.name}: a corpus file is a list of cases"
        for case in data:
            cases.append((path.stem, case))
    return cases


CASES = _load_cases()


def test_corpus_is_well_formed() -> None:
    themes = {theme for theme, _ in CASES}
    assert themes >= {"registration", "hosting", "channels", "location", "joining"}
    names = [case["name"] for _, case in CASES]
    duplicates = sorted({n for n in names if names.count(n) > 1})
    assert not duplicates, f"duplicate case names: {duplicates}"
    for _, case in CASES:
        assert set(case) == {"name", "request", "expect"}, case["name"]
        expect = case["expect"]
        assert REQUIRED <= set(expect) <= REQUIRED | OPTIONAL, case["name"]
        assert expect["decision"] in ("allow", "deny"), case["name"]
        # YAML would turn an unquoted timestamp into a datetime: the wire form is a string.
        assert isinstance(case["request"]["at"], str), case["name"]
        if expect["obligations"]:
            assert expect["decision"] == "allow", case["name"]


def test_corpus_covers_every_rule_of_the_default_bundle() -> None:
    rules = {r.id for r in meridian.load_bundle().document.rules}
    used = {rule for _, case in CASES for rule in case["expect"]["rules"]}
    assert rules - used == set()


@pytest.mark.parametrize(
    "case", [case for _, case in CASES], ids=[f"{theme}: {case['name']}" for theme, case in CASES]
)
def test_corpus_case(case: dict[str, Any]) -> None:
    expect = case["expect"]
    decision = meridian.decide(case["request"])
    public = decision.to_dict()
    json.dumps(public)  # the public form is JSON

    assert public["decision"] == expect["decision"]
    assert list(decision.rule_ids) == expect["rules"]
    assert public["obligations"] == expect["obligations"]
    assert public["location"]["country"] == expect["country"]
    assert [p["id"] for p in public["alternatives"]["partners"]] == expect["partners"]
    if "judged_under" in expect:
        assert public["location"]["judged_under"] == expect["judged_under"]
    approximate = sorted({r["rule"] for r in public["reasons"] if r.get("approximate")})
    assert approximate == sorted(expect.get("approximate", []))
    wanted = expect.get("message_contains", [])
    messages = "\n".join(r["message"] for r in public["reasons"])
    for fragment in [wanted] if isinstance(wanted, str) else wanted:
        assert fragment in messages
    # Every reason is a rule of the right kind: forbids deny, permits allow.
    effects = {r["effect"] for r in public["reasons"]}
    assert effects <= ({"forbid"} if expect["decision"] == "deny" else {"permit"})
