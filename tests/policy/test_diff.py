"""The exact semantic diff of two bundles (meridian.policy.diff)."""

from __future__ import annotations

import json
from datetime import date
from functools import cache
from typing import Any

import cedarpy
import pytest
import yaml
from hypothesis import given, settings
from hypothesis import strategies as st

from meridian.errors import RequestError
from meridian.geography.ipgeo import IpAddress, default_locator
from meridian.policy import Engine, LoadedBundle, load_bundle, load_bundle_text, parse_request
from meridian.policy.cedar import cedar_request, export_cedar
from meridian.policy.diff import (
    DiffClass,
    PolicyDiff,
    Side,
    diff_bundles,
    domain,
    org_classes,
    side_of,
)
from meridian.policy.engine import evaluate
from meridian.policy.loader import default_bundle_path

MOVED = ("effective: {from: 2020-08-23}", "effective: {from: 2020-08-30}")
NEW_PARTNER = (
    "  systec-umeet:\n    name: Systec Umeet\n    jurisdictions: [CN]\n",
    "  systec-umeet:\n    name: Systec Umeet\n    jurisdictions: [CN]\n"
    "  newco:\n    name: Newco\n    jurisdictions: [CN]\n    effective: {from: 2020-09-01}\n",
)


def changed(*edits: tuple[str, str]) -> LoadedBundle:
    text = default_bundle_path().read_text(encoding="utf-8")
    for old, new in edits:
        assert old in text
        text = text.replace(old, new)
    return load_bundle_text(text, "changed.yaml")


@cache
def moved_diff() -> PolicyDiff:
    return diff_bundles(load_bundle(), changed(MOVED))


def test_a_bundle_against_itself_has_no_difference() -> None:
    diff = diff_bundles(load_bundle(), load_bundle())
    assert diff.same
    assert diff.classes == ()
    assert diff.examined > 0
    assert diff.differing == 0


def test_moving_the_cn_cutover_by_a_week_is_exactly_a_week_of_direct_sales_in_cn() -> None:
    diff = moved_diff()
    assert not diff.same
    assert {c.action for c in diff.classes} == {"purchase", "renew"}
    for c in diff.classes:
        assert "CN" in c.judged_under[0]
        assert dict(c.facts)["channel"] == ("direct",)
        assert c.change == "deny->allow"
        assert c.old.rules == ("cn-direct-sales-end",)
        assert c.window()["from_utc"] == "2020-08-22T16:00:00Z"
        assert c.window()["until_utc"] == "2020-08-29T16:00:00Z"
        assert c.window()["from_local"] == "2020-08-23T00:00:00+08:00"
        assert c.window()["until_local"] == "2020-08-30T00:00:00+08:00"


def test_the_digest_is_stable_and_covers_the_content() -> None:
    one, two = moved_diff(), diff_bundles(load_bundle(), changed(MOVED))
    assert one.digest == two.digest
    assert one.digest.startswith("sha256:")
    other = diff_bundles(load_bundle(), changed(MOVED, NEW_PARTNER))
    assert other.digest != one.digest
    assert json.loads(json.dumps(one.to_dict()))["digest"] == one.digest


# -- against brute force, on random bundles ---------------------------------------------------

ZONES = {"CN": "Asia/Shanghai", "US": "America/New_York"}
STUB_IPS = {"11.0.0.1": "CN", "11.0.0.2": "US", "11.0.0.3": "FR", "11.0.0.4": "HK"}
PLANS = ("free", "pro")
BOUNDS = (date(2020, 5, 1), date(2020, 8, 23))
ACTION_NAMES = ("register", "purchase", "renew", "host", "join")


class StubLocator:
    """A few global addresses, each in one country; it gives examples as the embedded one does."""

    def country(self, ip: IpAddress) -> str | None:
        return STUB_IPS.get(ip.text)

    def address_in(self, country: str) -> str | None:
        return next((ip for ip, c in STUB_IPS.items() if c == country), None)


def _dump(doc: Any) -> str:
    class NoAliases(yaml.SafeDumper):
        def ignore_aliases(self, data: Any) -> bool:
            return True

    return yaml.dump(doc, Dumper=NoAliases, sort_keys=False)


def leaf() -> st.SearchStrategy[dict[str, Any]]:
    vocab = {
        "subject.type": ("individual", "organization"),
        "subject.plan": PLANS,
        "subject.uscc": ("absent", "valid", "pilot", "invalid"),
        "resource.channel": ("direct", "partner", "none"),
        "resource.partner": ("p1", "p2", "none"),
    }
    attribute = st.sampled_from(sorted(vocab)).flatmap(
        lambda a: st.builds(
            lambda values: {"attribute": a, "in": values},
            st.lists(st.sampled_from(vocab[a]), min_size=1, max_size=2, unique=True),
        )
    )
    return st.one_of(attribute, st.builds(lambda b: {"partner_authorised": b}, st.booleans()))


def condition() -> st.SearchStrategy[dict[str, Any]]:
    return st.recursive(
        leaf(),
        lambda inner: st.one_of(
            st.builds(lambda cs: {"all": cs}, st.lists(inner, min_size=1, max_size=2)),
            st.builds(lambda cs: {"any": cs}, st.lists(inner, min_size=1, max_size=2)),
            st.builds(lambda c: {"not": c}, inner),
        ),
        max_leaves=3,
    )


@st.composite
def window(draw: st.DrawFn) -> dict[str, Any]:
    kind = draw(st.sampled_from(("none", "from", "until", "both")))
    if kind == "none":
        return {}
    if kind == "both":
        return {"from": BOUNDS[0], "until": BOUNDS[1]}
    return {kind: draw(st.sampled_from(BOUNDS))}


@st.composite
def rule(draw: st.DrawFn, index: int) -> dict[str, Any]:
    effective = draw(window())
    pool = ("CN", "US") if effective else ("CN", "US", "everywhere", "unknown", "not-cn")
    out: dict[str, Any] = {
        "id": f"r{index}",
        "description": "random",
        "message": f"rule {index}",
        "effect": draw(st.sampled_from(("permit", "permit", "forbid"))),
        "actions": draw(
            st.lists(st.sampled_from(ACTION_NAMES), min_size=1, max_size=3, unique=True)
        ),
        "jurisdictions": draw(st.lists(st.sampled_from(pool), min_size=1, max_size=2, unique=True)),
    }
    if effective:
        out["effective"] = effective
    if draw(st.booleans()):
        out["when"] = draw(condition())
    if draw(st.integers(0, 5)) == 0:
        out["obligations"] = ["manual_review"]
    return out


@st.composite
def bundle_doc(draw: st.DrawFn) -> dict[str, Any]:
    partners = {}
    for pid in ("p1", "p2"):
        effective = draw(window())
        partners[pid] = {
            "name": pid,
            "jurisdictions": draw(st.sampled_from((["CN"], ["US"], ["CN", "US"]))),
            "status": draw(st.sampled_from(("active", "active", "suspended"))),
            **({"effective": effective} if effective else {}),
        }
    location = {}
    for action in ACTION_NAMES:
        signals = draw(st.sampled_from((["country"], ["ip", "country"], ["country", "org_id"])))
        location[action] = {
            "signals": signals,
            "resolve": draw(st.sampled_from(("strictest", "first"))),
        }
    return {
        "bundle": "random",
        "version": "1",
        "jurisdictions": {code: {"zone": zone} for code, zone in ZONES.items()},
        "groups": {"not-cn": {"all_except": ["CN"]}},
        "channels": {c: {"name": c} for c in ("direct", "partner")},
        "plans": {p: {"name": p, "paid": p != "free", "max_participants": 10} for p in PLANS},
        "partners": partners,
        "location": location,
        "uscc": {"pilot_divisions": draw(st.sampled_from(([], ["350100"], ["35"])))},
        "rules": [draw(rule(i)) for i in range(draw(st.integers(1, 5)))],
    }


@st.composite
def bundle_pairs(draw: st.DrawFn) -> tuple[dict[str, Any], dict[str, Any]]:
    """A bundle and a variant: a rule changed, dropped or added, a partner or date moved."""
    old = draw(bundle_doc())
    if draw(st.booleans()):
        return old, draw(bundle_doc())
    new = json.loads(json.dumps(old, default=str))
    for rule_ in new["rules"]:
        for key, value in rule_.get("effective", {}).items():
            rule_["effective"][key] = date.fromisoformat(value)
    for spec in new["partners"].values():
        for key, value in spec.get("effective", {}).items():
            spec["effective"][key] = date.fromisoformat(value)
    edit = draw(st.sampled_from(("add", "drop", "flip", "partner", "pilot")))
    if edit == "add" or not new["rules"]:
        new["rules"].append(draw(rule(99)))
    elif edit == "drop":
        new["rules"].pop(draw(st.integers(0, len(new["rules"]) - 1)))
    elif edit == "flip":
        target = new["rules"][draw(st.integers(0, len(new["rules"]) - 1))]
        target["effect"] = "forbid" if target["effect"] == "permit" else "permit"
    elif edit == "partner":
        new["partners"]["p9"] = {
            "name": "p9",
            "jurisdictions": ["CN"],
            "effective": {"from": BOUNDS[1]},
        }
    else:
        new["uscc"]["pilot_divisions"] = ["3501"]
    return old, new


def _side(engine: Engine, wire: dict[str, Any]) -> Side:
    try:
        return side_of(engine.decide(wire))
    except RequestError as exc:
        return Side("malformed", message=exc.message)


def _covers(
    row: DiffClass, action: str, under: tuple[Any, Any], org: str, wire: dict[str, Any], epoch: int
) -> bool:
    facts = dict(row.facts)
    subject, resource = wire["subject"], wire["resource"]
    values = {
        "type": subject["type"],
        "plan": subject.get("plan", "none"),
        "channel": resource.get("channel", "none"),
        "partner": resource.get("partner", "none"),
    }
    return (
        row.action == action
        and row.judged_under == under
        and row.org in ("*", org)
        and all(facts[k] == ("*",) or v in facts[k] for k, v in values.items())
        and (row.start is None or row.start <= epoch)
        and (row.end is None or epoch < row.end)
    )


def brute_force_agrees(old_doc: dict[str, Any], new_doc: dict[str, Any]) -> PolicyDiff:
    """Decide every elementary class through ``decide`` under both and compare with the diff."""
    old = load_bundle_text(_dump(old_doc), "old.yaml")
    new = load_bundle_text(_dump(new_doc), "new.yaml")
    return brute_force_agrees_loaded(old, new, StubLocator())


def brute_force_agrees_loaded(
    old: LoadedBundle, new: LoadedBundle, locator: Any = None
) -> PolicyDiff:
    """:func:`brute_force_agrees` for loaded bundles (the default locator when none is given)."""
    locator = locator or default_locator()
    diff = diff_bundles(old, new, locator=locator)
    engines = Engine(old, locator=locator), Engine(new, locator=locator)
    orgs = {o.code: o.name for o in org_classes(engines[0].bundle, engines[1].bundle)}
    differing = examined = 0
    index: dict[tuple[str, Any], list[DiffClass]] = {}
    for row in diff.classes:
        index.setdefault((row.action, row.judged_under), []).append(row)
    for wire in domain(old, new, locator=locator):
        examined += 1
        sides = _side(engines[0], wire), _side(engines[1], wire)
        if sides[0] == sides[1]:
            continue
        differing += 1
        request = parse_request(wire)
        under = engines[0].locate(request)[1], engines[1].locate(request)[1]
        org = orgs[wire["subject"].get("org_id")]
        assert request.epoch is not None
        rows = [
            r for r in diff.classes if _covers(r, wire["action"], under, org, wire, request.epoch)
        ]
        assert len(rows) == 1, (wire, sides, rows)
        assert (rows[0].old, rows[0].new) == sides, wire
    assert diff.examined == examined
    assert diff.differing == differing
    assert sum(c.cells for c in diff.classes) == differing
    for row in diff.classes:  # each example is decided as its class says
        assert (_side(engines[0], row.example), _side(engines[1], row.example)) == (
            row.old,
            row.new,
        )
    return diff


@settings(deadline=None, max_examples=8, derandomize=True, database=None)
@given(pair=bundle_pairs())
def test_the_diff_equals_brute_force_through_decide(
    pair: tuple[dict[str, Any], dict[str, Any]],
) -> None:
    brute_force_agrees(*pair)


@pytest.mark.slow
@settings(deadline=None, max_examples=40, derandomize=True, database=None)
@given(pair=bundle_pairs())
def test_the_diff_equals_brute_force_through_decide_on_many_bundles(
    pair: tuple[dict[str, Any], dict[str, Any]],
) -> None:
    brute_force_agrees(*pair)


def test_the_diff_of_the_built_in_bundle_against_a_change_equals_brute_force() -> None:
    diff = brute_force_agrees_loaded(load_bundle(), changed(MOVED, NEW_PARTNER))
    assert not diff.same


# -- the Cedar export agrees with each side on each example -----------------------------------


_CEDAR: dict[int, tuple[Any, Any]] = {}


def _cedar_agrees(bundle: LoadedBundle, engine: Engine, wire: dict[str, Any]) -> None:
    if id(engine) not in _CEDAR:
        export = export_cedar(engine.bundle)
        _CEDAR[id(engine)] = (
            cedarpy.PolicySet.from_str(export.policies),
            cedarpy.Schema.from_json_str(json.dumps(export.schema)),
        )
    policies, schema = _CEDAR[id(engine)]
    request = parse_request(wire)
    try:
        facts = engine.facts(request)
    except RequestError:
        return  # malformed for this bundle: nothing to decide
    ids = {f"policy{i}": r.id for i, r in enumerate(engine.bundle.document.rules)}
    for fact in facts:
        mine = evaluate(engine.bundle, request.action, fact)
        theirs = cedarpy.is_authorized(cedar_request(request.action, fact), policies, [], schema)
        assert theirs.allowed is mine.allowed, (bundle.source, wire, fact.as_dict())
        assert sorted(ids[p] for p in theirs.diagnostics.reasons) == sorted(
            r.id for r in mine.rules
        ), (bundle.source, wire)


@pytest.mark.parametrize(
    "edits", [(MOVED,), (MOVED, NEW_PARTNER), (NEW_PARTNER,)], ids=["moved", "both", "partner"]
)
def test_cedar_agrees_with_each_side_on_each_example(edits: tuple[tuple[str, str], ...]) -> None:
    old, new = load_bundle(), changed(*edits)
    diff = diff_bundles(old, new)
    assert diff.classes
    engines = Engine(old), Engine(new)
    for row in diff.classes:
        for bundle, engine in zip((old, new), engines, strict=True):
            _cedar_agrees(bundle, engine, row.example)


@pytest.mark.parametrize(
    ("old", "new"),
    [
        ("effective: {from: 2020-08-23}", "effective: {from: 0001-01-01}"),
        ("effective: {from: 2020-08-23}", "effective: {from: 0001-01-02}"),
        ("effective: {from: 2020-08-23}", "effective: {from: 2020-08-23, until: 9999-12-31}"),
    ],
    ids=["from-the-first-day", "from-the-second-day", "until-the-last-day"],
)
def test_a_window_at_the_calendars_edge_is_compared_not_refused(old: str, new: str) -> None:
    # found by schemathesis through PUT /v1/policy: a rule in force from 0001-01-01 made the diff
    # pick a representative instant before the first day (`year 0 is out of range`)
    diff = diff_bundles(load_bundle(), changed((old, new)))
    assert not diff.same
    for c in diff.classes:
        window = c.window()
        assert window["from_utc"] is None or window["from_utc"] >= "0001-01-01T00:00:00Z"
        for side in ("from_local", "until_local"):
            assert window[side] is None or isinstance(window[side], str)
    assert json.loads(json.dumps(diff.to_dict()))["digest"] == diff.digest
