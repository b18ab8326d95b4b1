"""Properties of the engine over random small bundles and random requests (hypothesis).

The bundles are generated as plain documents, written to YAML and loaded like any other bundle.
A naive reference evaluator, written here over the document alone, says what each decision must
be: for every jurisdiction the subject is judged under, the rules whose action, jurisdiction,
window and condition match; forbid overrides permit; default deny; the request is allowed only if
every jurisdiction allows it. The engine's compiled index must agree with it exactly.

Everything is deterministic: ``derandomize=True`` and no example database.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta, timezone
from functools import cache
from typing import Any
from zoneinfo import ZoneInfo

import pycountry
import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import meridian
from meridian import Engine
from meridian.geography.ipgeo import IpAddress
from meridian.policy.loader import load_bundle_text

# ------------------------------------------------------------------------------------------------
# The world the random bundles live in
# ------------------------------------------------------------------------------------------------

ZONES = {
    "CN": "Asia/Shanghai",
    "HK": "Asia/Hong_Kong",
    "JP": "Asia/Tokyo",
    "US": "America/New_York",
    "DE": "Europe/Berlin",
    "NO": "Europe/Oslo",  # Norway: YAML must keep it a string
}
CODES = tuple(ZONES)
ISO = frozenset(c.alpha_2 for c in pycountry.countries)
#: Groups every generated bundle defines. Only `include` groups may carry windowed rules.
GROUPS: dict[str, dict[str, list[str]]] = {
    "east-asia": {"include": ["CN", "HK", "JP"]},
    "nordics": {"include": ["NO"]},
    "not-mainland": {"all_except": ["CN"]},
}
INCLUDE_GROUPS = ("east-asia", "nordics")
ACTIONS = ("register", "purchase", "renew", "host", "join")
COMMERCE = ("purchase", "renew")
TYPES = ("individual", "organization")
PLANS = ("free", "pro")
CHANNELS = ("direct", "online", "partner")
PARTNERS = ("p-one", "p-two")
USCC = ("absent", "valid", "pilot", "invalid")
#: Window bounds: local dates (midnight) and local times away from any DST change.
BOUNDS: tuple[date | datetime, ...] = (
    date(2020, 5, 1),
    date(2020, 5, 20),
    date(2020, 6, 1),
    date(2020, 8, 23),
    datetime(2020, 3, 8, 12, 0),  # the day the US moves to daylight time
    datetime(2020, 10, 25, 12, 0),  # the day Europe leaves summer time
)

#: A stub locator: these global addresses resolve to these countries (or to nothing).
STUB_IPS: dict[str, str | None] = {
    "11.0.0.1": "CN",
    "11.0.0.2": "HK",
    "11.0.0.3": "JP",
    "11.0.0.4": "US",
    "11.0.0.5": "DE",
    "11.0.0.6": "NO",
    "11.0.0.7": "FR",
    "11.0.0.8": None,
}


class _NoAliases(yaml.SafeDumper):
    """Writes a value shared by two places twice: bundles refuse YAML anchors and aliases."""

    def ignore_aliases(self, data: Any) -> bool:
        return True


def _dump(doc: Any) -> str:
    return yaml.dump(doc, Dumper=_NoAliases, sort_keys=False)


class StubLocator:
    def country(self, ip: IpAddress) -> str | None:
        return STUB_IPS.get(ip.text)


# Independent USCC check (DOMAIN.md section 4), for the reference's `subject.uscc`.
ALPHABET = "0123456789ABCDEFGHJKLMNPQRTUWXY"
WEIGHTS = (1, 3, 9, 27, 19, 26, 16, 17, 20, 29, 25, 13, 8, 24, 10, 30, 28)


def check_char(first17: str) -> str:
    s = sum(ALPHABET.index(c) * w for c, w in zip(first17, WEIGHTS, strict=True))
    return ALPHABET[(31 - s % 31) % 31]


ORG_IDS = (
    None,
    "91110000600037341L",  # valid
    "91350100M0001TGQXM",  # fails its check, Fuzhou pilot division
    "91110000600037341A",  # fails its check, not a pilot division
    "Y1110000MA0000001" + check_char("Y1110000MA0000001"),  # valid, authority Y
    "ACME-0001",  # not a USCC at all
)


def well_formed(code: str) -> bool:
    return len(code) == 18 and all(c in ALPHABET for c in code) and code[2:8].isdigit()


def uscc_status(org_id: str | None, pilot: list[str]) -> str:
    if org_id is None:
        return "absent"
    code = org_id.upper().replace("-", "").replace(" ", "")
    if not well_formed(code):
        return "invalid"
    if check_char(code[:17]) == code[17]:
        return "valid"
    return "pilot" if any(code[2:8].startswith(p) for p in pilot) else "invalid"


def org_country(org_id: str | None) -> str | None:
    if org_id is None:
        return None
    code = org_id.upper().replace("-", "").replace(" ", "")
    return "CN" if well_formed(code) else None


def local_epoch(value: date | datetime, jurisdiction: str) -> int:
    moment = value if isinstance(value, datetime) else datetime(value.year, value.month, value.day)
    return int(moment.replace(tzinfo=ZoneInfo(ZONES[jurisdiction])).timestamp())


# ------------------------------------------------------------------------------------------------
# Strategies
# ------------------------------------------------------------------------------------------------


@st.composite
def windows(draw: st.DrawFn) -> dict[str, Any]:
    kind = draw(st.sampled_from(("none", "from", "until", "both")))
    if kind == "none":
        return {}
    if kind == "both":
        lo, hi = sorted(
            draw(st.lists(st.sampled_from(BOUNDS), min_size=2, max_size=2, unique=True)),
            key=lambda v: v if isinstance(v, datetime) else datetime(v.year, v.month, v.day),
        )
        out: dict[str, Any] = {"from": lo, "until": hi}
    else:
        out = {kind: draw(st.sampled_from(BOUNDS))}
    if draw(st.booleans()):
        out["approximate"] = True
    return out


def leaf_conditions() -> st.SearchStrategy[dict[str, Any]]:
    vocab = {
        "subject.type": TYPES,
        "subject.plan": PLANS,
        "subject.uscc": USCC,
        "resource.channel": (*CHANNELS, "none"),
        "resource.partner": (*PARTNERS, "none"),
    }
    attribute = st.sampled_from(sorted(vocab)).flatmap(
        lambda a: st.builds(
            lambda values: {"attribute": a, "in": values},
            st.lists(st.sampled_from(vocab[a]), min_size=1, max_size=3, unique=True),
        )
    )
    return st.one_of(attribute, st.builds(lambda b: {"partner_authorised": b}, st.booleans()))


def conditions() -> st.SearchStrategy[dict[str, Any]]:
    return st.recursive(
        leaf_conditions(),
        lambda inner: st.one_of(
            st.builds(lambda cs: {"all": cs}, st.lists(inner, min_size=1, max_size=3)),
            st.builds(lambda cs: {"any": cs}, st.lists(inner, min_size=1, max_size=3)),
            st.builds(lambda c: {"not": c}, inner),
        ),
        max_leaves=4,
    )


@st.composite
def jurisdiction_list(draw: st.DrawFn, *, windowed: bool) -> list[str]:
    if windowed:
        pool: tuple[str, ...] = (*CODES, *INCLUDE_GROUPS)
    else:
        pool = (*CODES, *INCLUDE_GROUPS, "not-mainland", "everywhere", "unknown")
    return draw(st.lists(st.sampled_from(pool), min_size=1, max_size=3, unique=True))


@st.composite
def rules(draw: st.DrawFn, index: int, effect: str | None = None) -> dict[str, Any]:
    window = draw(windows())
    rule: dict[str, Any] = {
        "id": f"r{index}",
        "description": f"random rule {index}",
        "message": "rule " + str(index) + " in {jurisdiction}",
        "effect": effect or draw(st.sampled_from(("permit", "permit", "forbid"))),
        "actions": draw(st.lists(st.sampled_from(ACTIONS), min_size=1, max_size=3, unique=True)),
        "jurisdictions": draw(jurisdiction_list(windowed=bool(window.keys() - {"approximate"}))),
    }
    if window:
        rule["effective"] = window
    if draw(st.booleans()):
        rule["when"] = draw(conditions())
    if draw(st.integers(0, 4)) == 0:
        rule["obligations"] = draw(
            st.lists(
                st.sampled_from(("manual_review", "notify", "audit")),
                min_size=1,
                max_size=2,
                unique=True,
            )
        )
    return rule


@st.composite
def bundles(draw: st.DrawFn, *, permits: bool = True) -> dict[str, Any]:
    partners = {}
    for pid in PARTNERS:
        window = draw(windows())
        spec: dict[str, Any] = {
            "name": pid,
            "jurisdictions": draw(
                jurisdiction_list(windowed=bool(window.keys() - {"approximate"}))
            ),
        }
        if window:
            spec["effective"] = window
        if draw(st.integers(0, 4)) == 0:
            spec["status"] = "suspended"
        partners[pid] = spec
    location = {}
    for action in ACTIONS:
        signals = draw(st.permutations(("country", "ip", "org_id")))
        signals = signals[: draw(st.integers(1, 3))]
        location[action] = {
            "signals": list(signals),
            "resolve": draw(st.sampled_from(("strictest", "first"))),
        }
    count = draw(st.integers(0, 8))
    effect = None if permits else "forbid"
    generated = [draw(rules(i, effect)) for i in range(count)]
    if permits and draw(st.booleans()):
        # Half the bundles open everything, so that forbids and conditions have allows to remove.
        generated.insert(
            draw(st.integers(0, count)),
            {
                "id": "open",
                "description": "everything is open",
                "message": "open",
                "effect": "permit",
                "actions": list(ACTIONS),
                "jurisdictions": ["everywhere", "unknown"],
            },
        )
    return {
        "bundle": "random",
        "version": "1",
        "jurisdictions": {code: {"zone": zone} for code, zone in ZONES.items()},
        "groups": GROUPS,
        "channels": {c: {"name": c} for c in CHANNELS},
        "plans": {p: {"name": p, "paid": p != "free", "max_participants": 10} for p in PLANS},
        "partners": partners,
        "location": location,
        "uscc": {"pilot_divisions": draw(st.sampled_from(([], ["350100"], ["35"])))},
        "rules": generated,
    }


def _instants() -> list[int]:
    out = set()
    for code in CODES:
        for bound in BOUNDS:
            e = local_epoch(bound, code)
            out.update((e - 1, e, e + 1))
    return sorted(out)


INSTANTS = _instants()
OFFSETS = (timedelta(0), timedelta(hours=8), timedelta(hours=-4), timedelta(hours=5, minutes=30))


def doc_instants(doc: dict[str, Any]) -> list[int]:
    """Every bound of every window in ``doc``, in every zone, and the seconds either side."""
    found = [
        w[key]
        for spec in (*doc["rules"], *doc["partners"].values())
        for w in [spec.get("effective", {})]
        for key in ("from", "until")
        if key in w
    ]
    out = {local_epoch(b, code) + d for b in found for code in CODES for d in (-1, 0, 1)}
    return sorted(out) or INSTANTS


@st.composite
def requests(
    draw: st.DrawFn, partner_ids: tuple[str, ...] = PARTNERS, instants: list[int] = INSTANTS
) -> dict[str, Any]:
    epoch = draw(
        st.one_of(
            st.sampled_from(instants),
            st.integers(
                int(datetime(2019, 12, 1, tzinfo=UTC).timestamp()),
                int(datetime(2021, 1, 31, tzinfo=UTC).timestamp()),
            ),
        )
    )
    offset = draw(st.sampled_from(OFFSETS))
    at = datetime.fromtimestamp(epoch, UTC).astimezone(timezone(offset))
    subject: dict[str, Any] = {"type": draw(st.sampled_from(TYPES))}
    country = draw(st.sampled_from((None, *CODES, "FR")))
    if country is not None:
        subject["country"] = country
    ip = draw(st.sampled_from((None, *STUB_IPS)))
    if ip is not None:
        subject["ip"] = ip
    plan = draw(st.sampled_from((None, *PLANS)))
    if plan is not None:
        subject["plan"] = plan
    org_id = draw(st.sampled_from(ORG_IDS))
    if org_id is not None:
        subject["org_id"] = org_id
    channel = draw(
        st.sampled_from(
            (None, "direct", "online", "partner") if partner_ids else (None, "direct", "online")
        )
    )
    resource: dict[str, Any] = {}
    if channel is not None:
        resource["channel"] = channel
    if channel == "partner":
        resource["partner"] = draw(st.sampled_from(partner_ids))
    return {
        "action": draw(st.sampled_from(ACTIONS)),
        "at": at.isoformat(),
        "subject": subject,
        "resource": resource,
    }


# ------------------------------------------------------------------------------------------------
# The reference evaluator
# ------------------------------------------------------------------------------------------------


def expand(doc: dict[str, Any], names: list[str]) -> set[str]:
    out: set[str] = set()
    for name in names:
        if name == "everywhere":
            out |= ISO
        elif name in doc["groups"]:
            group = doc["groups"][name]
            out |= set(group["include"]) if "include" in group else ISO - set(group["all_except"])
        else:
            out.add(name)
    return out


def in_window(window: dict[str, Any] | None, jurisdiction: str, epoch: int) -> bool:
    window = window or {}
    if "from" in window and epoch < local_epoch(window["from"], jurisdiction):
        return False
    return not ("until" in window and epoch >= local_epoch(window["until"], jurisdiction))


def partner_authorised(doc: dict[str, Any], partner: str, jurisdiction: str, epoch: int) -> bool:
    spec = doc["partners"].get(partner)
    return (
        spec is not None
        and spec.get("status", "active") == "active"
        and jurisdiction in expand(doc, spec["jurisdictions"])
        and in_window(spec.get("effective"), jurisdiction, epoch)
    )


@dataclass
class RefFacts:
    jurisdiction: str
    epoch: int
    values: dict[str, str]


def holds(doc: dict[str, Any], cond: dict[str, Any], f: RefFacts) -> bool:
    if "attribute" in cond:
        return f.values[cond["attribute"]] in cond["in"]
    if "partner_authorised" in cond:
        ok = partner_authorised(doc, f.values["resource.partner"], f.jurisdiction, f.epoch)
        return ok is cond["partner_authorised"]
    if "all" in cond:
        return all(holds(doc, c, f) for c in cond["all"])
    if "any" in cond:
        return any(holds(doc, c, f) for c in cond["any"])
    return not holds(doc, cond["not"], f)


@dataclass
class RefDecision:
    decision: str
    reasons: list[tuple[str, str]]
    obligations: list[str]
    country: str
    judged_under: list[str]
    partners: list[str]
    approximate: set[str]


def reference(doc: dict[str, Any], wire: dict[str, Any]) -> RefDecision:
    action = wire["action"]
    epoch = int(datetime.fromisoformat(wire["at"]).timestamp())
    subject, resource = wire["subject"], wire.get("resource", {})
    evidence = {
        "country": subject.get("country"),
        "ip": STUB_IPS.get(subject["ip"]) if "ip" in subject else None,
        "org_id": org_country(subject.get("org_id")),
    }
    rule = doc["location"][action]
    named = [evidence[s] for s in rule["signals"] if evidence[s] is not None]
    if not named:
        candidates = ["unknown"]
    elif rule["resolve"] == "first":
        candidates = named[:1]
    else:
        candidates = list(dict.fromkeys(named))
    values = {
        "subject.type": subject["type"],
        "subject.plan": subject.get("plan", "free"),
        "subject.uscc": uscc_status(subject.get("org_id"), doc["uscc"]["pilot_divisions"]),
        "resource.channel": resource.get("channel", "none"),
        "resource.partner": resource.get("partner", "none"),
    }
    outcomes = []
    for j in candidates:
        facts = RefFacts(j, epoch, values)
        live = [
            r
            for r in doc["rules"]
            if action in r["actions"]
            and j in expand(doc, r["jurisdictions"])
            and in_window(r.get("effective"), j, epoch)
            and ("when" not in r or holds(doc, r["when"], facts))
        ]
        forbids = [r for r in live if r["effect"] == "forbid"]
        permits = [r for r in live if r["effect"] == "permit"]
        allowed = not forbids and bool(permits)
        outcomes.append((j, allowed, forbids if forbids else permits if allowed else []))
    denied = [o for o in outcomes if not o[1]]
    deciding = denied or outcomes
    reasons = [(r["id"], j) for j, _, rs in deciding for r in rs]
    obligations = (
        []
        if denied
        else list(
            dict.fromkeys(
                ob for _, _, rs in deciding for r in rs for ob in r.get("obligations", [])
            )
        )
    )
    partners: list[str] = []
    if denied and action in COMMERCE:
        for j, _, _ in denied:
            for pid in doc["partners"]:
                if partner_authorised(doc, pid, j, epoch) and pid not in partners:
                    partners.append(pid)
    approximate = {
        r["id"] for _, _, rs in deciding for r in rs if r.get("effective", {}).get("approximate")
    }
    return RefDecision(
        "deny" if denied else "allow",
        reasons,
        obligations,
        deciding[0][0],
        candidates,
        partners,
        approximate,
    )


def engine_for(doc: dict[str, Any]) -> Engine:
    return Engine(
        load_bundle_text(_dump(doc), "random.yaml"), locator=StubLocator()
    )


def with_rule(doc: dict[str, Any], rule: dict[str, Any]) -> dict[str, Any]:
    return {**doc, "rules": [*doc["rules"], rule]}


def deterministic(max_examples: int) -> settings:
    return settings(
        derandomize=True,
        database=None,
        deadline=None,
        max_examples=max_examples,
        suppress_health_check=[HealthCheck.too_slow],
    )


# ------------------------------------------------------------------------------------------------
# Properties
# ------------------------------------------------------------------------------------------------


IP_OF = {country: ip for ip, country in STUB_IPS.items() if country is not None}


@st.composite
def targeted_requests(draw: st.DrawFn, doc: dict[str, Any]) -> dict[str, Any]:
    """A request aimed at one bound of one windowed rule: its action, a jurisdiction it covers,
    and the second before, at or after the bound in that jurisdiction's zone."""
    request = draw(requests())
    windowed = [r for r in doc["rules"] if r.get("effective", {}).keys() & {"from", "until"}]
    if not windowed:
        return request
    rule = draw(st.sampled_from(windowed))
    code = draw(st.sampled_from(sorted(expand(doc, rule["jurisdictions"]))))
    bound = draw(
        st.sampled_from([v for k, v in rule["effective"].items() if k in ("from", "until")])
    )
    epoch = local_epoch(bound, code) + draw(st.sampled_from((-1, 0, 1)))
    subject = {**request["subject"], "country": code, "ip": IP_OF[code]}
    subject.pop("org_id", None)
    return {
        **request,
        "action": draw(st.sampled_from(rule["actions"])),
        "at": datetime.fromtimestamp(epoch, UTC).isoformat(),
        "subject": subject,
    }


@pytest.mark.slow
@deterministic(200)
@given(doc=bundles(), data=st.data())
def test_engine_agrees_with_the_reference_evaluator(
    doc: dict[str, Any], data: st.DataObject
) -> None:
    engine = engine_for(doc)
    some = st.one_of(requests(instants=doc_instants(doc)), targeted_requests(doc))
    wire = data.draw(st.lists(some, min_size=1, max_size=10))
    for request in wire:
        got = engine.decide(request)
        want = reference(doc, request)
        assert got.decision == want.decision, request
        assert [(r.rule, r.jurisdiction) for r in got.reasons] == want.reasons, request
        assert list(got.obligations) == want.obligations, request
        assert got.location.country == want.country, request
        assert list(got.location.judged_under) == want.judged_under, request
        assert [p.id for p in got.alternatives.partners] == want.partners, request
        assert {r.rule for r in got.reasons if r.approximate} == want.approximate, request
        expected_effect = "forbid" if got.decision == "deny" else "permit"
        assert all(r.effect == expected_effect for r in got.reasons)
        assert got.errors == ()


@pytest.mark.slow
@deterministic(80)
@given(doc=bundles(permits=False), wire=st.lists(requests(), min_size=1, max_size=8))
def test_default_deny_without_permit_rules(doc: dict[str, Any], wire: list[dict[str, Any]]) -> None:
    engine = engine_for(doc)
    for request in wire:
        decision = engine.decide(request)
        assert decision.decision == "deny"
        assert all(r.effect == "forbid" for r in decision.reasons)
        assert decision.obligations == ()


@pytest.mark.slow
@deterministic(100)
@given(doc=bundles(), request=requests(), conditional_permit=st.booleans())
def test_a_matching_unconditional_forbid_wins(
    doc: dict[str, Any], request: dict[str, Any], conditional_permit: bool
) -> None:
    # Make allows common: an unconditional permit for the action everywhere (and where unknown).
    permit = {
        "id": "zz-permit",
        "description": "permit",
        "message": "permitted",
        "effect": "permit",
        "actions": [request["action"]],
        "jurisdictions": ["everywhere", "unknown"],
    }
    if conditional_permit:
        permit["when"] = {"attribute": "subject.type", "in": [request["subject"]["type"]]}
    base = with_rule(doc, permit) if not doc["rules"] or conditional_permit else doc
    before = engine_for(base).decide(request)
    forbid = {
        "id": "zz-forbid",
        "description": "forbid",
        "message": "forbidden",
        "effect": "forbid",
        "actions": [request["action"]],
        "jurisdictions": list(before.location.judged_under),
    }
    after = engine_for(with_rule(base, forbid)).decide(request)
    assert after.decision == "deny"
    listed = {(r.rule, r.jurisdiction) for r in after.reasons}
    assert {("zz-forbid", j) for j in before.location.judged_under} <= listed
    assert after.obligations == ()


# Window bounds, derived by hand (not with zoneinfo): local bound -> the UTC instant.
HAND_BOUNDS: dict[str, list[tuple[date | datetime, datetime]]] = {
    "CN": [
        (date(2020, 5, 1), datetime(2020, 4, 30, 16, tzinfo=UTC)),
        (date(2020, 8, 23), datetime(2020, 8, 22, 16, tzinfo=UTC)),
        (datetime(2020, 6, 4, 20, 0), datetime(2020, 6, 4, 12, tzinfo=UTC)),
    ],
    "JP": [
        (date(2020, 5, 1), datetime(2020, 4, 30, 15, tzinfo=UTC)),
        (date(2020, 12, 18), datetime(2020, 12, 17, 15, tzinfo=UTC)),
    ],
    "US": [
        (date(2020, 1, 15), datetime(2020, 1, 15, 5, tzinfo=UTC)),  # EST, UTC-5
        (datetime(2020, 3, 8, 12, 0), datetime(2020, 3, 8, 16, tzinfo=UTC)),  # EDT from 02:00
        (date(2020, 8, 23), datetime(2020, 8, 23, 4, tzinfo=UTC)),
    ],
    "DE": [
        (date(2020, 6, 1), datetime(2020, 5, 31, 22, tzinfo=UTC)),  # CEST, UTC+2
        (datetime(2020, 10, 25, 12, 0), datetime(2020, 10, 25, 11, tzinfo=UTC)),  # CET from 03:00
    ],
    "NO": [
        (date(2020, 12, 18), datetime(2020, 12, 17, 23, tzinfo=UTC)),
        (date(2020, 5, 17), datetime(2020, 5, 16, 22, tzinfo=UTC)),
    ],
}


@st.composite
def single_window(draw: st.DrawFn) -> tuple[str, Any, Any]:
    code = draw(st.sampled_from(sorted(HAND_BOUNDS)))
    choices = sorted(HAND_BOUNDS[code], key=lambda pair: pair[1])
    kind = draw(st.sampled_from(("from", "until", "both")))
    if kind == "both":
        i, k = sorted(
            draw(st.lists(st.integers(0, len(choices) - 1), min_size=2, max_size=2, unique=True))
        )
        return code, choices[i], choices[k]
    pick = draw(st.sampled_from(choices))
    return (code, pick, None) if kind == "from" else (code, None, pick)


@deterministic(120)
@given(window=single_window(), action=st.sampled_from(ACTIONS), forbid=st.booleans())
def test_a_rule_applies_exactly_within_its_window(
    window: tuple[str, Any, Any], action: str, forbid: bool
) -> None:
    code, lo, hi = window
    rule: dict[str, Any] = {
        "id": "only",
        "description": "the one windowed rule",
        "message": "windowed",
        "effect": "forbid" if forbid else "permit",
        "actions": [action],
        "jurisdictions": [code],
        "effective": {k: v[0] for k, v in (("from", lo), ("until", hi)) if v is not None},
    }
    rules_ = [rule]
    if forbid:  # a forbid shows through an unconditional permit
        rules_.append(
            {
                "id": "open",
                "description": "open",
                "message": "open",
                "effect": "permit",
                "actions": [action],
                "jurisdictions": ["everywhere"],
            }
        )
    doc = {
        "bundle": "window",
        "version": "1",
        "jurisdictions": {c: {"zone": z} for c, z in ZONES.items()},
        "channels": {"direct": {"name": "Direct"}},
        "plans": {"free": {"name": "Free", "paid": False, "max_participants": 10}},
        "location": {a: {"signals": ["country"], "resolve": "first"} for a in ACTIONS},
        "rules": rules_,
    }
    engine = engine_for(doc)
    start = lo[1] if lo else None
    end = hi[1] if hi else None
    probes = {b + timedelta(seconds=d) for b in (start, end) if b is not None for d in (-1, 0, 1)}
    for instant in sorted(probes):
        inside = (start is None or start <= instant) and (end is None or instant < end)
        for shown in (instant, instant.astimezone(ZoneInfo(ZONES[code]))):
            got = engine.decide(
                {
                    "action": action,
                    "at": shown.isoformat(),
                    "subject": {"type": "individual", "country": code},
                }
            )
            applies = "only" in got.rule_ids
            assert applies is inside, (shown.isoformat(), lo, hi)
            assert got.allowed is (inside != forbid)
        # Never outside its jurisdiction.
        elsewhere = "CN" if code != "CN" else "JP"
        other = engine.decide(
            {
                "action": action,
                "at": instant.isoformat(),
                "subject": {"type": "individual", "country": elsewhere},
            }
        )
        assert "only" not in other.rule_ids


NOWHERE_IPS = (
    "10.0.0.1",
    "192.168.1.1",
    "172.16.5.4",
    "127.0.0.1",
    "100.64.0.1",
    "240.0.0.1",
    "0.0.0.0",
    "::1",
    "2001:db8::1",  # documentation (global IPv6 is located: iptocc)
    "fc00::1",  # unique local
    "fe80::1",
)
DEFAULT_PARTNERS = ("bizconf", "suirui-zhumu", "systec-umeet")


@deterministic(200)
@given(
    wire=requests(partner_ids=DEFAULT_PARTNERS),
    ip=st.sampled_from((None, *NOWHERE_IPS)),
    org_id=st.sampled_from((None, "ACME-0001", "12345")),
    plan=st.sampled_from((None, "free", "pro", "business", "enterprise")),
)
def test_unknown_location_is_never_allowed_by_the_default_bundle(
    wire: dict[str, Any], ip: str | None, org_id: str | None, plan: str | None
) -> None:
    subject = {"type": wire["subject"]["type"]}
    for key, value in (("ip", ip), ("org_id", org_id), ("plan", plan)):
        if value is not None:
            subject[key] = value
    decision = meridian.decide({**wire, "subject": subject})
    assert decision.decision == "deny"
    assert decision.location.country == "unknown"
    assert decision.rule_ids == ("location-unknown",)
    assert decision.alternatives.partners == ()


def _frozen_clock(moment: datetime) -> Any:
    return lambda: moment


@cache
def _other_default_engine() -> Engine:
    """A second engine for the built-in bundle, with a clock far from any request's instant."""
    return Engine(clock=_frozen_clock(datetime(1999, 1, 1, tzinfo=UTC)))


@pytest.mark.slow
@deterministic(50)
@given(doc=bundles(), request=requests())
def test_a_decision_is_deterministic_for_a_fixed_instant(
    doc: dict[str, Any], request: dict[str, Any]
) -> None:
    text = _dump(doc)
    one = Engine(
        load_bundle_text(text),
        locator=StubLocator(),
        clock=_frozen_clock(datetime(2000, 1, 1, tzinfo=UTC)),
    )
    two = Engine(
        load_bundle_text(text),
        locator=StubLocator(),
        clock=_frozen_clock(datetime(2030, 1, 1, tzinfo=UTC)),
    )
    first = one.decide(request).to_dict()
    assert one.decide(request).to_dict() == first
    assert two.decide(request).to_dict() == first
    assert one.decide(meridian.parse_request(request)).to_dict() == first


@deterministic(100)
@given(
    wire=requests(partner_ids=DEFAULT_PARTNERS),
    country=st.sampled_from(("CN", "HK", "MO", "TW", "US")),
    plan=st.sampled_from(("free", "pro")),
)
def test_default_bundle_is_deterministic_for_a_fixed_instant(
    wire: dict[str, Any], country: str, plan: str
) -> None:
    request = {
        **wire,
        "subject": {"type": wire["subject"]["type"], "country": country, "plan": plan},
    }
    first = meridian.decide(request).to_dict()
    assert meridian.decide(request).to_dict() == first
    assert _other_default_engine().decide(request).to_dict() == first
