"""The Cedar export, checked against Cedar itself (cedarpy).

The differential tests put seeded random requests through Meridian's location resolution, then
hand each resulting :class:`Facts` to both Meridian's ``evaluate`` and Cedar's ``is_authorized``,
and require the same decision and the same deciding rules.
"""

from __future__ import annotations

import json
import random
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta, timezone
from functools import cache
from typing import Any

import cedarpy
import pytest

from meridian.geography.jurisdictions import ALL_JURISDICTIONS, UNKNOWN
from meridian.policy import (
    CompiledBundle,
    Engine,
    Request,
    compile_bundle,
    load_bundle,
    load_bundle_text,
    parse_request,
)
from meridian.policy.cedar import CedarExport, cedar_request, cedar_string, export_cedar
from meridian.policy.compiled import Facts, expand_jurisdictions, window_epochs
from meridian.policy.engine import evaluate

# -- fixtures ---------------------------------------------------------------------------------


@cache
def _default() -> CompiledBundle:
    return compile_bundle(load_bundle())


@dataclass(frozen=True)
class CedarSide:
    """A bundle's export with its policy set and schema parsed once."""

    export: CedarExport
    policies: Any  # cedarpy.PolicySet
    schema: Any  # cedarpy.Schema


def _cedar_side(bundle: CompiledBundle) -> CedarSide:
    export = export_cedar(bundle)
    return CedarSide(
        export,
        cedarpy.PolicySet.from_str(export.policies),
        cedarpy.Schema.from_json_str(json.dumps(export.schema)),
    )


def _facts(jurisdiction: str = "US", **overrides: Any) -> Facts:
    values: dict[str, Any] = {
        "epoch": 1_600_000_000,
        "type": "individual",
        "plan": "pro",
        "channel": "none",
        "partner": "none",
        "uscc": "absent",
        "org_id": "",
    }
    values.update(overrides)
    return Facts(jurisdiction, **values)


# -- the export itself ------------------------------------------------------------------------


def test_default_export_validates_against_its_schema() -> None:
    export = export_cedar(_default())
    result = cedarpy.validate_policies(export.policies, export.schema)
    assert result.validation_passed, [str(e) for e in result.errors]
    assert result.errors == []


def test_every_policy_carries_the_id_of_its_rule_in_bundle_order() -> None:
    bundle = _default()
    est = json.loads(cedarpy.policies_to_json_str(export_cedar(bundle).policies))
    policies = list(est["staticPolicies"].values())
    got = [(p["annotations"]["id"], p["effect"]) for p in policies]
    want = [(r.id, r.effect.value) for r in bundle.document.rules]
    assert got == want


def test_export_does_not_need_cedarpy() -> None:
    # The export is a runtime feature; cedarpy is only a dev/bench dependency.
    import subprocess
    import sys

    code = (
        "import sys; sys.modules['cedarpy'] = None\n"
        "from meridian.policy import compile_bundle, load_bundle\n"
        "from meridian.policy.cedar import export_cedar\n"
        "print(len(export_cedar(compile_bundle(load_bundle())).policies))\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=False)
    assert done.returncode == 0, done.stderr
    assert int(done.stdout) > 1000


@pytest.mark.parametrize(
    "text",
    [
        "plain",
        'quote " and back\\slash',
        "tab\there\nnewline\r\x00nul",
        "中国 — ü ☃ 😀",
        "\\u{41}",
        "",
    ],
)
def test_cedar_string_round_trips_through_cedar(text: str) -> None:
    policy = (
        f"permit (principal, action, resource) when {{ context.plan == {cedar_string(text)} }};"
    )
    request = cedar_request("join", _facts(plan=text))
    assert cedarpy.is_authorized(request, policy, []).allowed
    other = cedar_request("join", _facts(plan=text + "x"))
    assert not cedarpy.is_authorized(other, policy, []).allowed


def test_a_request_missing_a_context_attribute_is_refused_with_the_schema() -> None:
    side = _cedar_side(_default())
    request = cedar_request("join", _facts())
    assert cedarpy.is_authorized(request, side.policies, [], side.schema).allowed
    request["context"].pop("org_id")
    result = cedarpy.is_authorized(request, side.policies, [], side.schema)
    assert not result.allowed
    assert any("org_id" in e for e in result.diagnostics.errors)


# -- the fail-open trap -----------------------------------------------------------------------

_TRAP = """
@id("allow-everything") permit (principal, action, resource);
@id("forbid-on-missing") forbid (principal, action, resource) when { context.missing == "x" };
"""


def test_cedar_skips_an_erroring_forbid_without_validation() -> None:
    request = cedar_request("join", _facts())
    result = cedarpy.is_authorized(request, _TRAP, [])
    assert result.allowed  # the forbid errored, so Cedar ignored it: fail open
    assert result.diagnostics.id_annotations_by_reason == {"policy0": "allow-everything"}
    assert any("missing" in e for e in result.diagnostics.errors)
    # A schema on the request alone does not help: it checks the request, not the policies.
    with_schema = cedarpy.is_authorized(request, _TRAP, [], export_cedar(_default()).schema)
    assert with_schema.allowed


def test_validation_against_the_schema_rejects_the_erroring_forbid() -> None:
    result = cedarpy.validate_policies(_TRAP, export_cedar(_default()).schema)
    assert not result.validation_passed
    assert set(result.id_annotations_by_policy_id.values()) == {"forbid-on-missing"}
    assert all(e.policy_id == "policy1" for e in result.errors)


def _raise(_: Facts) -> bool:
    raise KeyError("boom")


@pytest.mark.parametrize(
    ("rule_id", "action", "facts"),
    [
        # a forbid that would not match: host is otherwise allowed to a paid plan in CN
        ("cn-free-users-join-only", "host", _facts("CN", plan="pro")),
        # the only permit for join: an erroring permit must not allow either
        ("join-open", "join", _facts("US")),
    ],
)
def test_meridian_denies_when_a_rule_raises(rule_id: str, action: str, facts: Facts) -> None:
    assert evaluate(_default(), action, facts).allowed  # as built, the request is allowed
    bundle = compile_bundle(load_bundle())  # a fresh compile: do not break the shared one
    (rule,) = [r for r in bundle.rules if r.id == rule_id]
    rule.test = _raise
    outcome = evaluate(bundle, action, facts)
    assert not outcome.allowed
    assert [r.id for r in outcome.rules] == [rule_id]
    assert len(outcome.errors) == 1
    assert rule_id in outcome.errors[0]
    assert "boom" in outcome.errors[0]


# -- the differential -------------------------------------------------------------------------

_IPS = (
    "114.114.114.114",  # CN
    "203.198.7.66",  # HK
    "202.175.3.3",  # MO
    "168.95.1.1",  # TW
    "8.8.8.8",  # US
    "85.214.132.117",  # DE
    "10.0.0.1",  # private: unknown
)
_COUNTRIES = ("CN", "HK", "MO", "TW", "US", "DE", "JP")
_ORG_IDS = (
    "91110000600037341L",  # valid
    "91350100M0001TGQXM",  # fails its check, pilot division 350100
    "91110000600037341X",  # fails its check
    "NOT-A-CODE-12",  # malformed
)
_PHONES = ("+8613800138000", "+81312345678", "+14155552671", "+85223456789")
_START = int(datetime(2019, 1, 1, tzinfo=UTC).timestamp())
_END = int(datetime(2023, 1, 1, tzinfo=UTC).timestamp())


def _boundaries(bundle: CompiledBundle) -> list[int]:
    """Every instant a rule or a partner window starts or ends, in any jurisdiction."""
    doc = bundle.document
    found: set[int] = set()
    for spec in doc.rules:
        if spec.effective.from_ is None and spec.effective.until is None:
            continue
        for jur in expand_jurisdictions(doc, spec.jurisdictions):
            found.update(b for b in window_epochs(doc, spec.effective, jur) if b is not None)
    for windows in bundle.partner_windows.values():
        found.update(b for w in windows for b in (w.start, w.end) if b is not None)
    return sorted(found)


def _at(rng: random.Random, boundaries: Sequence[int]) -> str:
    if boundaries and rng.random() < 0.6:
        epoch = rng.choice(boundaries) + rng.randint(-3, 3)
    else:
        epoch = rng.randrange(_START, _END)
    offset = timezone(timedelta(minutes=rng.choice((0, 480, -300, 330, 60, -600))))
    moment = datetime.fromtimestamp(epoch, offset)
    if rng.random() < 0.3:
        moment += timedelta(microseconds=rng.randrange(1, 1_000_000))
    return moment.isoformat()


def _maybe(rng: random.Random, values: Sequence[str], none: float = 0.2) -> str | None:
    return None if rng.random() < none else rng.choice(values)


def _wire(rng: random.Random, bundle: CompiledBundle, boundaries: Sequence[int]) -> dict[str, Any]:
    """One random request in wire form, valid for ``bundle``."""
    doc = bundle.document
    countries = (*_COUNTRIES, *_COUNTRIES, rng.choice(list(ALL_JURISDICTIONS)))
    subject: dict[str, Any] = {"type": rng.choice(("individual", "organization"))}
    for key, value in (
        ("country", _maybe(rng, countries, 0.3)),
        ("ip", _maybe(rng, _IPS, 0.2)),
        ("plan", _maybe(rng, sorted(doc.plans), 0.15)),
        ("org_id", _maybe(rng, _ORG_IDS, 0.3)),
        ("phone", _maybe(rng, _PHONES, 0.7)),
    ):
        if value is not None:
            subject[key] = value
    resource: dict[str, Any] = {}
    channel = _maybe(rng, sorted(doc.channels), 0.15)
    if channel is not None:
        resource["channel"] = channel
        if channel == "partner":
            resource["partner"] = rng.choice(sorted(doc.partners))
    action = rng.choice(("register", "purchase", "renew", "host", "join"))
    return {"action": action, "at": _at(rng, boundaries), "subject": subject, "resource": resource}


@dataclass(frozen=True)
class Case:
    """One random request and the facts Meridian's location resolution gives for it."""

    request: Request
    facts: list[Facts]


def _cases(bundle: CompiledBundle, count: int, seed: int) -> list[Case]:
    rng = random.Random(seed)
    engine = Engine(bundle)
    boundaries = _boundaries(bundle)
    cases = []
    for _ in range(count):
        request = parse_request(_wire(rng, bundle, boundaries))
        cases.append(Case(request, engine.facts(request)))
    return cases


@dataclass
class Tally:
    """What the run reached, and every disagreement between the engines."""

    decisions: Counter[str] = field(default_factory=Counter)
    jurisdictions: Counter[str] = field(default_factory=Counter)
    deciding: Counter[str] = field(default_factory=Counter)
    facts: int = 0
    several: int = 0  # requests judged under more than one jurisdiction
    mismatches: list[str] = field(default_factory=list)


Verdict = tuple[bool, frozenset[str]]  # (allowed, deciding rule ids) for one Facts


def _cedar_verdicts(side: CedarSide, cases: list[Case], tally: Tally) -> list[list[Verdict]]:
    """Cedar's verdict for each Facts of each case, asked in batches of about 1,000."""
    flat = [(str(c.request.action), f) for c in cases for f in c.facts]
    verdicts: list[Verdict] = []
    for start in range(0, len(flat), 1000):
        chunk = flat[start : start + 1000]
        requests = [cedar_request(action, f) for action, f in chunk]
        results = cedarpy.is_authorized_batch(requests, side.policies, [], side.schema)
        for (action, f), result in zip(chunk, results, strict=True):
            diagnostics = result.diagnostics
            if diagnostics.errors:
                tally.mismatches.append(f"cedar: {action} {f.as_dict()}: {diagnostics.errors}")
            names = diagnostics.id_annotations_by_reason
            verdicts.append((result.allowed, frozenset(names[p] for p in diagnostics.reasons)))
    each = iter(verdicts)
    return [[next(each) for _ in case.facts] for case in cases]


def _compare_facts(
    bundle: CompiledBundle, action: str, facts: Facts, cedar: Verdict, tally: Tally
) -> None:
    """Meridian's ``evaluate`` against Cedar for one Facts."""
    outcome = evaluate(bundle, action, facts)
    ours = (outcome.allowed, frozenset(r.id for r in outcome.rules))
    if outcome.errors or ours != cedar:
        tally.mismatches.append(
            f"{action} {facts.as_dict()}: meridian {ours} {outcome.errors}; cedar {cedar}"
        )
    tally.facts += 1
    tally.decisions["allow" if outcome.allowed else "deny"] += 1
    tally.jurisdictions[facts.jurisdiction] += 1
    tally.deciding.update(ours[1])


def _compare_decision(engine: Engine, case: Case, cedar: list[Verdict], tally: Tally) -> None:
    """``Engine.decide`` (memo included) against Cedar's verdicts combined as Meridian combines
    jurisdictions: allowed only if every one allows; the reasons of those that refuse, else all.
    """
    denied = [(f, v) for f, v in zip(case.facts, cedar, strict=True) if not v[0]]
    deciding = denied or list(zip(case.facts, cedar, strict=True))
    want = (not denied, {(rule, f.jurisdiction) for f, v in deciding for rule in v[1]})
    decision = engine.decide(case.request)
    got = (decision.allowed, {(r.rule, r.jurisdiction) for r in decision.reasons})
    if decision.errors or got != want:
        tally.mismatches.append(f"decide {case.request}: meridian {got}; cedar {want}")


def _differential(
    bundle: CompiledBundle, cases: list[Case], side: CedarSide | None = None
) -> Tally:
    """Both engines on every case, per Facts and per whole decision."""
    side = side if side is not None else _cedar_side(bundle)
    engine = Engine(bundle)
    tally = Tally()
    for case, cedar in zip(cases, _cedar_verdicts(side, cases, tally), strict=True):
        action = str(case.request.action)
        for facts, verdict in zip(case.facts, cedar, strict=True):
            _compare_facts(bundle, action, facts, verdict, tally)
        _compare_decision(engine, case, cedar, tally)
        tally.several += len(case.facts) > 1
    return tally


def _check(tally: Tally, bundle: CompiledBundle) -> list[str]:
    """Assert agreement and reach; return the rules that never decided."""
    assert not tally.mismatches, (
        f"{len(tally.mismatches)} disagreements, first ones:\n" + "\n".join(tally.mismatches[:10])
    )
    # The run must reach what it claims to test: both decisions, unknown location, conflicts.
    assert tally.decisions["allow"] > 100
    assert tally.decisions["deny"] > 100
    assert tally.jurisdictions[UNKNOWN] > 10
    assert tally.several > 100
    return [r.id for r in bundle.document.rules if tally.deciding[r.id] == 0]


def test_differential_default_bundle() -> None:
    bundle = _default()
    cases = _cases(bundle, 10_000, seed=20200823)
    tally = _differential(bundle, cases)
    never = _check(tally, bundle)
    assert tally.facts > 10_000
    assert never == [], f"rules that never decided: {never}"


_SECOND_BUNDLE = """
bundle: differential-two
version: "1"
jurisdictions:
  CN: {zone: Asia/Shanghai}
  HK: {zone: Asia/Hong_Kong}
  MO: {zone: Asia/Macau}
  US: {zone: America/New_York}
  DE: {zone: Europe/Berlin}
  FR: {zone: Europe/Paris}
  JP: {zone: Asia/Tokyo}
groups:
  not-cn-or-us: {all_except: [CN, US]}
  core: {include: [CN, HK, JP]}
  eu-two: {include: [DE, FR]}
  nobody: {include: []}
channels:
  direct: {name: Direct}
  online: {name: Online}
  partner: {name: Partner}
plans:
  free: {name: Free, paid: false, max_participants: 10}
  pro: {name: Pro, paid: true, max_participants: 100}
  team-plus: {name: "Team \\"Plus\\"", paid: true, max_participants: 300}
partners:
  alpha:
    name: Alpha
    jurisdictions: [CN, HK]
    effective: {from: 2020-03-01, until: "2021-01-01T12:30:00"}
  beta:
    name: Beta
    jurisdictions: [core, DE]
    effective: {from: "2020-06-15T08:00:00"}
  gamma: {name: Gamma, jurisdictions: [everywhere]}
  delta: {name: Delta, jurisdictions: [US], status: suspended}
location:
  register: {signals: [org_id, country, ip], resolve: strictest}
  purchase: {signals: [ip, country], resolve: first}
  renew: {signals: [country, ip, phone], resolve: strictest}
  host: {signals: [phone, ip, country], resolve: strictest}
  join: {signals: [country], resolve: first}
uscc: {pilot_divisions: ["3501", "11"]}
rules:
  - id: join-anywhere
    description: joining is open, even from nowhere known
    message: ok
    effect: permit
    actions: [join, join]
    jurisdictions: [everywhere, unknown]
  - id: unknown-no-commerce
    description: "fail closed: \\"unknown\\" is not a place"
    message: no
    effect: forbid
    actions: [register, purchase, renew, host]
    jurisdictions: [unknown]
  - id: register-orgs-or-paid
    description: organisations, or anyone not on the free plan
    message: ok
    effect: permit
    actions: [register]
    jurisdictions: [everywhere]
    when:
      any:
        - {attribute: subject.type, in: [organization]}
        - {not: {attribute: subject.plan, in: [free]}}
  - id: core-uscc-window
    description: a bounded window on a group with its own zones
    message: no
    effect: forbid
    actions: [register]
    jurisdictions: [core, CN]
    effective: {from: 2020-05-01, until: 2021-05-01}
    when:
      all:
        - {attribute: subject.uscc, in: [invalid, absent]}
        - {attribute: subject.type, in: [organization]}
  - id: cn-pilot
    description: pilot codes pass, from a local time of day
    message: ok
    effect: permit
    actions: [register]
    jurisdictions: [CN]
    effective: {from: "2020-05-01T09:30:00"}
    when: {attribute: subject.uscc, in: [pilot]}
  - id: sales-outside-cn-us
    description: direct and online, or any authorised partner
    message: ok
    effect: permit
    actions: [purchase, renew]
    jurisdictions: [not-cn-or-us, US]
    when:
      any:
        - {attribute: resource.channel, in: [direct, online]}
        - {partner_authorised: true}
  - id: cn-partners-only
    description: partners only in CN
    message: ok
    effect: permit
    actions: [purchase, renew]
    jurisdictions: [CN]
    when:
      all:
        - {attribute: resource.channel, in: [partner]}
        - {partner_authorised: true}
  - id: unauthorised-partner
    description: a partner outside its window
    message: no
    effect: forbid
    actions: [purchase, renew]
    jurisdictions: [everywhere]
    when:
      all:
        - {attribute: resource.channel, in: [partner]}
        - {not: {partner_authorised: true}}
  - id: core-direct-window
    description: no direct or online sales in CN and HK for a while
    message: no
    effect: forbid
    actions: [purchase]
    jurisdictions: [CN, HK]
    effective: {from: 2020-08-23, until: 2020-12-01}
    when: {not: {attribute: resource.channel, in: [partner, none]}}
  - id: renew-without-partner
    description: renewals with no partner involved in the core group
    message: ok
    effect: permit
    actions: [renew]
    jurisdictions: [core]
    when:
      all:
        - {partner_authorised: false}
        - {attribute: resource.partner, in: [none]}
        - any:
            - {attribute: resource.channel, in: [none]}
            - {attribute: subject.plan, in: [team-plus]}
  - id: eu-free-host-until
    description: free plans cannot host in the EU pair and JP until July 2020
    message: no
    effect: forbid
    actions: [host]
    jurisdictions: [eu-two, JP]
    effective: {until: 2020-07-01}
    when: {attribute: subject.plan, in: [free]}
  - id: us-dst-edges
    description: a window from a local time that does not exist to one that happens twice
    message: no
    effect: forbid
    actions: [host]
    jurisdictions: [US]
    effective: {from: "2020-03-08T02:30:00", until: "2020-11-01T01:30:00"}
    when: {attribute: subject.plan, in: [team-plus]}
  - id: host-everyone
    description: an empty all is true
    message: ok
    effect: permit
    actions: [host]
    jurisdictions: [everywhere]
    when: {all: []}
  - id: host-never
    description: an empty any is false
    message: ok
    effect: permit
    actions: [host, join]
    jurisdictions: [everywhere]
    when: {any: []}
  - id: nobody-forbid
    description: an empty group matches no jurisdiction
    message: no
    effect: forbid
    actions: [host, join]
    jurisdictions: [nobody]
  - id: macao-window-forbid
    description: a windowed rule on a single listed jurisdiction
    message: no
    effect: forbid
    actions: [join, host, register]
    jurisdictions: [MO]
    effective: {from: 2020-02-29, until: "2020-10-10T10:10:10"}
    when: {not: {attribute: subject.type, in: [individual]}}
"""

# Rules that can never decide by construction.
_SECOND_INERT = ["host-never", "nobody-forbid"]


def test_second_bundle_export_validates() -> None:
    bundle = compile_bundle(load_bundle_text(_SECOND_BUNDLE))
    export = export_cedar(bundle)
    result = cedarpy.validate_policies(export.policies, export.schema)
    assert result.validation_passed, [str(e) for e in result.errors]
    est = json.loads(cedarpy.policies_to_json_str(export.policies))
    ids = [p["annotations"]["id"] for p in est["staticPolicies"].values()]
    assert ids == [r.id for r in bundle.document.rules]


def test_differential_second_bundle() -> None:
    bundle = compile_bundle(load_bundle_text(_SECOND_BUNDLE))
    assert bundle.partner_windows[("alpha", "CN")][0].end is not None  # the window is bounded
    cases = _cases(bundle, 2_000, seed=31)
    tally = _differential(bundle, cases)
    never = _check(tally, bundle)
    assert never == _SECOND_INERT, f"rules that never decided: {never}"


@pytest.mark.parametrize(
    ("old", "new"),
    [
        ("context.at >= ", "context.at > "),  # every start one second late
        ("context.at < ", "context.at <= "),  # every end one second late
        ('context.jurisdiction != "unknown"', 'context.jurisdiction != "JP"'),  # wrong complement
        ("!(", "("),  # negations lost
    ],
)
def test_the_differential_catches_a_wrong_export(old: str, new: str) -> None:
    # The sampling around boundaries must be fine enough to see a one-second slip.
    bundle = compile_bundle(load_bundle_text(_SECOND_BUNDLE))
    export = export_cedar(bundle)
    assert old in export.policies
    broken = export.policies.replace(old, new)
    side = CedarSide(
        export,
        cedarpy.PolicySet.from_str(broken),
        cedarpy.Schema.from_json_str(json.dumps(export.schema)),
    )
    tally = _differential(bundle, _cases(bundle, 1_000, seed=7), side)
    assert tally.mismatches
