"""The exact semantic difference between two bundles: every class of request decided otherwise.

A decision reads finite things: the action, where each counting signal places the subject, the
subject's type and plan, the channel and partner, the class of the organisation code, and the
instant, which matters only through the time segment it falls in (between two window bounds
nothing a decision reads changes; see :mod:`meridian.policy.compiled`). So the difference
between two bundles can be computed exactly, by deciding one representative of every class
under both, instead of sampling.

The domain, per action
----------------------

* **Jurisdiction classes.** Two jurisdictions are in one class when, under both bundles and for
  every action, the same rules with the same windows and the same partner windows apply to
  them (the compiled :class:`~meridian.policy.compiled.RuleClass`). One representative stands
  for each class (``CN`` always stands for its own class); ``unknown`` is where no signal places
  the subject.
* **Evidence vectors.** For every signal either bundle counts for the action: absent, pointing
  nowhere (a private address, a code of no country), or pointing into each class (an address
  the locator places there, a phone number of there). The organisation code's signal follows
  from its class. Vectors that put the subject under the same jurisdictions in both bundles
  form one group: they cannot be decided differently.
* **Organisation-code classes.** Absent, valid, not a code at all, and failing its check in a
  division that each combination of the two bundles' pilot-division prefixes matches (and in
  one they do not).
* **Facts.** Type, plan (absent reads as ``free``), channel and partner (absent, every one
  either catalogue lists, and one neither lists). A fact no rule of either bundle reads in the
  jurisdictions at hand cannot change a verdict there: it collapses to one representative of
  each way the two catalogues accept it (both, one, neither; a request neither accepts is
  malformed under both and is no difference).
* **Time segments**: the union of both bundles' bounds for those jurisdictions.

Each representative request is decided by each bundle's :class:`~meridian.policy.engine.Engine`
(so the diff says what deciding says); consecutive segments with the same pair of outcomes
merge into one window. Two outcomes are the same when the decision, the deciding rules (with
the jurisdiction each was applied in), the obligations and the alternatives are; a message's
wording is not compared. :func:`domain` lists the elementary classes, which is what a brute
force comparison through ``decide`` walks (``tests/policy/test_diff.py`` does, on random
bundles; ``bench/policy_diff.py`` measures both).
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from functools import cache
from itertools import product
from typing import Any
from zoneinfo import ZoneInfo

import phonenumbers

from ..errors import RequestError
from ..geography.ipgeo import Ip3CountryLocator, IpLocator, default_locator, parse_ip
from ..geography.jurisdictions import ALL_JURISDICTIONS
from ..geography.uscc import ALPHABET, OrgForm, org_form, uscc_check_character
from .compiled import READABLE, CompiledBundle, compile_bundle
from .decision import BundleRef, Decision
from .engine import Engine
from .loader import LoadedBundle
from .request import ACTIONS, Request, parse_request

__all__ = [
    "DiffClass",
    "OrgClass",
    "PolicyDiff",
    "Side",
    "diff_bundles",
    "domain",
    "jurisdiction_classes",
    "org_classes",
    "side_of",
]

#: what stands for a partner neither catalogue lists
UNLISTED_PARTNER = "unlisted-partner"
#: an address that places nobody anywhere (private): the ip signal pointing nowhere
NOWHERE_IP = "10.0.0.1"
_VALID_CODE = "91110000600037341L"
_MALFORMED_CODE = "ACME-0001"
_FAR_PAST = -(10**12)


@dataclass(frozen=True)
class Side:
    """What one bundle says for a request class: the parts of a decision the diff compares.

    ``decision`` is ``allow``, ``deny``, or ``malformed`` when the bundle's catalogue refuses the
    request (then ``message`` says why). ``message`` is not compared.
    """

    decision: str
    reasons: tuple[tuple[str, str], ...] = ()  # (rule id, jurisdiction it was applied in)
    obligations: tuple[str, ...] = ()
    alternatives: tuple[str, ...] = ()  # partner ids offered
    message: str = field(default="", compare=False)

    @property
    def rules(self) -> tuple[str, ...]:
        return tuple(dict.fromkeys(rule for rule, _ in self.reasons))

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "decision": self.decision,
            "rules": [{"rule": r, "jurisdiction": j} for r, j in self.reasons],
            "obligations": list(self.obligations),
            "alternatives": list(self.alternatives),
        }
        if self.decision == "malformed":
            out["message"] = self.message
        return out


def side_of(decision: Decision) -> Side:
    """The compared parts of a decision."""
    return Side(
        decision.decision,
        tuple((r.rule, r.jurisdiction) for r in decision.reasons),
        decision.obligations,
        tuple(p.id for p in decision.alternatives.partners),
    )


@dataclass(frozen=True)
class OrgClass:
    """A class of organisation codes: its name, an example code and its form."""

    name: str
    code: str | None

    @property
    def country(self) -> str | None:
        """The country the code's signal points to (a code in USCC form claims CN)."""
        if self.code is None:
            return None
        return None if org_form(self.code) is OrgForm.MALFORMED else "CN"


@dataclass(frozen=True)
class DiffClass:
    """One class of requests the two bundles decide differently, within one time window.

    ``judged_under`` is where the subject is judged under each bundle (class representatives;
    the members of each class are in :attr:`PolicyDiff.jurisdiction_classes`). ``facts`` gives
    each fact's values in the class, ``("*",)`` for any value (no rule reads it here). ``start``
    and ``end`` bound the window in UTC epoch seconds (``None``: open), shown in ``zone``.
    ``cells`` counts the elementary classes of :func:`domain` it stands for.
    """

    action: str
    judged_under: tuple[tuple[str, ...], tuple[str, ...]]
    org: str
    facts: tuple[tuple[str, tuple[str, ...]], ...]
    start: int | None
    end: int | None
    zone: str
    example: dict[str, Any] = field(compare=False, hash=False)
    old: Side
    new: Side
    cells: int = 0

    @property
    def change(self) -> str:
        """What changes, in one word: the verdict's move, or else the part that moves."""
        old, new = self.old.decision, self.new.decision
        if old != new:
            return f"{old}->{new}"
        if self.old.reasons != self.new.reasons:
            return "rules"
        if self.old.alternatives != self.new.alternatives:
            return "alternatives"
        return "obligations"

    def window(self) -> dict[str, str | None]:
        """The window's bounds in UTC and in local time (``None``: open)."""
        zone = ZoneInfo(self.zone)

        def show(epoch: int | None) -> tuple[str | None, str | None]:
            if epoch is None or epoch < _FIRST_INSTANT:
                # before the first instant a request can name: open, as no request lies there
                return None, None
            at = datetime.fromtimestamp(epoch, UTC)
            try:
                local = at.astimezone(zone).isoformat()
            except (OverflowError, ValueError):
                # a bound at the calendar's edge (0001-01-01, 9999-12-31) that the zone's offset
                # moves out of it: shown in UTC, which is the same instant
                local = at.isoformat()
            return _utc_text(at), local

        start_utc, start_local = show(self.start)
        end_utc, end_local = show(self.end)
        return {
            "from_utc": start_utc,
            "until_utc": end_utc,
            "from_local": start_local,
            "until_local": end_local,
            "zone": self.zone,
        }

    def to_dict(self) -> dict[str, Any]:
        return {
            "action": self.action,
            "change": self.change,
            "judged_under": {"old": list(self.judged_under[0]), "new": list(self.judged_under[1])},
            "org_code": self.org,
            "facts": {name: list(values) for name, values in self.facts},
            "window": self.window(),
            "example": self.example,
            "old": self.old.to_dict(),
            "new": self.new.to_dict(),
            "cells": self.cells,
        }


@dataclass(frozen=True)
class PolicyDiff:
    """Every class of request two bundles decide differently, with counts and a digest.

    ``digest`` is ``sha256:<hex>`` of the canonical JSON (sorted keys, no blanks) of
    :meth:`to_dict` without the digest itself and without the example requests (whose addresses
    come from the IP locator in use): the same two bundles give the same digest on any machine
    whose locator places an example address in the same classes. ``examined`` counts the elementary classes compared, ``differing`` those that
    differ (the sum of the classes' ``cells``).
    """

    old: BundleRef
    new: BundleRef
    classes: tuple[DiffClass, ...]
    jurisdiction_classes: tuple[tuple[str, tuple[str, ...]], ...]
    examined: int
    differing: int
    digest: str = ""
    #: classes no example address is known for: ip evidence pointing into them is not examined
    unplaced: tuple[str, ...] = ()

    @property
    def same(self) -> bool:
        """No request is decided differently."""
        return not self.classes

    def counts(self) -> dict[str, dict[str, int]]:
        """Differing classes by action and by kind of change."""
        by_action: dict[str, int] = {}
        by_change: dict[str, int] = {}
        for c in self.classes:
            by_action[c.action] = by_action.get(c.action, 0) + 1
            by_change[c.change] = by_change.get(c.change, 0) + 1
        return {"by_action": by_action, "by_change": by_change}

    def _body(self, *, examples: bool = True) -> dict[str, Any]:
        classes = [c.to_dict() for c in self.classes]
        if not examples:
            for c in classes:
                del c["example"]
        return {
            "old": self.old.to_dict(),
            "new": self.new.to_dict(),
            "classes": classes,
            "counts": {
                "classes": len(self.classes),
                "examined": self.examined,
                "differing": self.differing,
                **self.counts(),
            },
            "jurisdiction_classes": {rep: list(m) for rep, m in self.jurisdiction_classes},
            "unplaced": list(self.unplaced),
        }

    def to_dict(self) -> dict[str, Any]:
        """The public JSON form (fields may be added, never renamed)."""
        return {**self._body(), "digest": self.digest}


def _digest(body: dict[str, Any]) -> str:
    text = json.dumps(body, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return "sha256:" + hashlib.sha256(text.encode()).hexdigest()


# -- the domain -------------------------------------------------------------------------------


def _compiled(bundle: LoadedBundle | CompiledBundle) -> CompiledBundle:
    return bundle if isinstance(bundle, CompiledBundle) else compile_bundle(bundle)


def _signature(bundle: CompiledBundle, jurisdiction: str) -> tuple[int, ...]:
    classes = bundle.classes
    return tuple(
        (placed.klass if (placed := classes.get((a, jurisdiction))) is not None else -1)
        for a in ACTIONS
    )


def jurisdiction_classes(
    old: CompiledBundle,
    new: CompiledBundle,
    split: Sequence[frozenset[str]] = (),
) -> list[tuple[str, tuple[str, ...]]]:
    """The jurisdictions both bundles treat alike, as (representative, members), ``CN`` first.

    ``split``: sets of jurisdictions a question names (an invariant's); no class straddles one.
    """
    groups: dict[tuple[object, ...], list[str]] = {}
    for code in sorted(ALL_JURISDICTIONS):
        key = (_signature(old, code), _signature(new, code), tuple(code in s for s in split))
        groups.setdefault(key, []).append(code)
    named = set(old.document.jurisdictions) | set(new.document.jurisdictions)
    named |= {code for s in split for code in s if len(s) < 10}
    out = []
    for members in groups.values():
        rep = "CN" if "CN" in members else next((m for m in members if m in named), members[0])
        out.append((rep, tuple(members)))
    out.sort(key=lambda pair: (pair[0] != "CN", pair[0] not in named, pair[0]))
    return out


def org_classes(old: CompiledBundle, new: CompiledBundle) -> list[OrgClass]:
    """The organisation-code classes: absent, valid, not a code, and check failures by division."""
    out = [
        OrgClass("absent", None),
        OrgClass("valid", _VALID_CODE),
        OrgClass("malformed", _MALFORMED_CODE),
    ]
    prefixes = sorted(set(old.pilot_divisions) | set(new.pilot_divisions))
    divisions = [p.ljust(6, "0") for p in prefixes]
    divisions += [f"{n:06d}" for n in (999999, 0, 123456, 555555)]
    seen: set[frozenset[str]] = set()
    for division in divisions:
        matched = frozenset(p for p in prefixes if division.startswith(p))
        if matched in seen:
            continue
        seen.add(matched)
        first17 = "91" + division + "MA0000000"
        check = uscc_check_character(first17)
        wrong = ALPHABET[(ALPHABET.index(check) + 1) % len(ALPHABET)]
        name = (
            "checkfail-" + "+".join(sorted(matched)) if matched else "checkfail-no-pilot-division"
        )
        out.append(OrgClass(name, first17 + wrong))
    return out


def _example_ip(locator: IpLocator, country: str) -> str | None:
    """An address ``locator`` places in ``country``: its own example, else the embedded table's."""
    finder = getattr(locator, "address_in", None)
    if finder is None:
        finder = _embedded().address_in
    found = finder(country)
    if found is None or locator.country(parse_ip(str(found))) != country:
        return None
    return str(found)


@cache
def _embedded() -> Ip3CountryLocator:
    return Ip3CountryLocator()


def _example_phone(country: str) -> str | None:
    number = phonenumbers.example_number(country)
    if number is None:
        return None
    text = phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)
    return str(text) if phonenumbers.region_code_for_number(number) == country else None


@dataclass(frozen=True)
class _Domain:
    old: CompiledBundle
    new: CompiledBundle
    classes: list[tuple[str, tuple[str, ...]]]
    orgs: list[OrgClass]
    plans: tuple[str | None, ...]
    offers: tuple[tuple[str | None, str | None], ...]  # (channel, partner)
    ips: dict[str, str]  # representative -> an address placed there
    phones: dict[str, str]


def _build_domain(
    old: CompiledBundle,
    new: CompiledBundle,
    locator: IpLocator,
    split: Sequence[frozenset[str]] = (),
) -> _Domain:
    classes = jurisdiction_classes(old, new, split)
    ips: dict[str, str] = {}
    phones: dict[str, str] = {}
    for rep, members in classes:
        for member in (rep, *members):
            ip = _example_ip(locator, member)
            if ip is not None:
                ips[rep] = ip
                break
        phone = _example_phone(rep)
        if phone is not None:
            phones[rep] = phone
    plans: tuple[str | None, ...] = (None, *sorted(old.plans | new.plans))
    channels = sorted(old.channels | new.channels)
    partners = sorted(old.partners | new.partners)
    unlisted = UNLISTED_PARTNER
    while unlisted in partners:
        unlisted += "-"
    offers: list[tuple[str | None, str | None]] = [(None, None)]
    for channel in channels:
        if channel == "partner":
            offers += [(channel, p) for p in (*partners, unlisted)]
        else:
            offers.append((channel, None))
    return _Domain(old, new, classes, org_classes(old, new), plans, tuple(offers), ips, phones)


def _signals(domain: _Domain, action: str) -> list[str]:
    names: dict[str, None] = {}
    for bundle in (domain.old, domain.new):
        names.update(dict.fromkeys(s.value for s in bundle.location[action].signals))
    return list(names)


def _vectors(domain: _Domain, action: str) -> list[dict[str, str]]:
    """Every combination of the (country, ip, phone) evidence the action counts under either."""
    used = _signals(domain, action)
    reps = [rep for rep, _ in domain.classes]
    options: list[list[tuple[str, str] | None]] = []
    if "country" in used:
        options.append([None, *(("country", r) for r in reps)])
    if "ip" in used:
        options.append(
            [None, ("ip", NOWHERE_IP), *(("ip", domain.ips[r]) for r in reps if r in domain.ips)]
        )
    if "phone" in used:
        options.append([None, *(("phone", domain.phones[r]) for r in reps if r in domain.phones)])
    return [dict(p for p in combo if p is not None) for combo in product(*options)]


def _utc_text(at: datetime) -> str:
    """``at`` as ``YYYY-MM-DDTHH:MM:SSZ``, the year in four digits (``strftime`` gives ``1`` for
    the year 1 on glibc)."""
    return at.replace(microsecond=0).isoformat().removesuffix("+00:00") + "Z"


#: the first instant a request can name (0001-01-01T00:00:00Z, in UTC epoch seconds)
_FIRST_INSTANT = int(datetime(1, 1, 1, tzinfo=UTC).timestamp())


def _segments(bounds: Sequence[int]) -> list[tuple[int | None, int | None, int]]:
    """(start, end, a representative instant) for the segments ``bounds`` cut time into.

    A bound may lie before the first instant a request can name (a local midnight on 0001-01-01
    east of Greenwich): a segment that ends by then holds no request and is left out, and one
    that straddles it is represented by that first instant.
    """
    if not bounds:
        return [(None, None, 1_577_836_800)]  # 2020-01-01: any instant stands for all time
    out: list[tuple[int | None, int | None, int]] = []
    if bounds[0] > _FIRST_INSTANT:
        out.append((None, bounds[0], max(bounds[0] - 86_400, _FIRST_INSTANT)))
    for i, start in enumerate(bounds):
        end = bounds[i + 1] if i + 1 < len(bounds) else None
        if end is not None and end <= _FIRST_INSTANT:
            continue
        out.append((start, end, max(start, _FIRST_INSTANT)))
    return out


def _action_bounds(domain: _Domain, action: str, jurisdictions: Sequence[str] | None) -> list[int]:
    found: set[int] = set()
    for bundle in (domain.old, domain.new):
        for (a, j), placed in bundle.classes.items():
            if a == action and (jurisdictions is None or j in jurisdictions):
                found.update(placed.bounds)
    return sorted(found)


def _request(
    action: str,
    vector: dict[str, str],
    org: OrgClass,
    kind: str,
    plan: str | None,
    offer: tuple[str | None, str | None],
    epoch: int,
) -> dict[str, Any]:
    subject: dict[str, Any] = {"type": kind, **vector}
    if plan is not None:
        subject["plan"] = plan
    if org.code is not None:
        subject["org_id"] = org.code
    resource = {k: v for k, v in zip(("channel", "partner"), offer, strict=True) if v is not None}
    at = _utc_text(datetime.fromtimestamp(epoch, UTC))
    return {"action": action, "at": at, "subject": subject, "resource": resource}


def domain(
    old: LoadedBundle | CompiledBundle,
    new: LoadedBundle | CompiledBundle,
    *,
    locator: IpLocator | None = None,
) -> Iterator[dict[str, Any]]:
    """Every elementary request class the diff covers, as one wire-form request each.

    The product of the action, every evidence vector, organisation-code class, type, plan,
    offer (channel and partner) and time segment (of all bounds of that action in both
    bundles). This is what a brute-force comparison decides one by one.
    """
    found = _build_domain(_compiled(old), _compiled(new), locator or default_locator())
    for action in ACTIONS:
        segments = _segments(_action_bounds(found, action, None))
        for vector, org, kind, plan, offer, (_, _, epoch) in product(
            _vectors(found, action),
            found.orgs,
            ("individual", "organization"),
            found.plans,
            found.offers,
            segments,
        ):
            yield _request(action, vector, org, kind, plan, offer, epoch)


# -- the diff ---------------------------------------------------------------------------------


def _judge(engine: Engine, request: Request) -> Side:
    try:
        return side_of(engine.decide(request))
    except RequestError as exc:
        return Side("malformed", message=exc.message)


def _accepts(engine: Engine, request: Request) -> bool:
    try:
        engine.check(request)
    except RequestError:
        return False
    return True


def _zone(
    domain: _Domain, action: str, jurisdictions: Sequence[str], start: int | None, end: int | None
) -> str:
    """The zone a window is shown in: that of the jurisdiction whose bound opens or closes it."""
    zoned = []
    for j in jurisdictions:
        for bundle in (domain.new, domain.old):
            info = bundle.document.jurisdictions.get(j)
            if info is None:
                continue
            zoned.append(info.zone)
            placed = bundle.classes.get((action, j))
            if placed is not None and (start in placed.bounds or end in placed.bounds):
                return info.zone
    return zoned[0] if zoned else "UTC"


_KINDS = ("individual", "organization")
_Offer = tuple[str | None, str | None]  # (channel, partner)


def _buckets(
    values: Sequence[Any], place: Any, accepts: Any
) -> list[tuple[list[Any], tuple[bool, bool]]]:
    """``values`` grouped by what a rule can tell apart (``place``) and what each side accepts."""
    found: dict[tuple[object, tuple[bool, bool]], list[Any]] = {}
    for value in values:
        found.setdefault((place(value), accepts(value)), []).append(value)
    return [(members, ok) for (_, ok), members in found.items()]


class _Differ:
    """One diff in the making: the domain, both engines, and the rows found so far."""

    def __init__(self, old: CompiledBundle, new: CompiledBundle, locator: IpLocator) -> None:
        self.found = _build_domain(old, new, locator)
        self.bundles = (old, new)
        self.engines = (Engine(old, locator=locator), Engine(new, locator=locator))
        self.rows: list[DiffClass] = []
        self.examined = 0
        self.differing = 0

    def _accepts(self, request: Request) -> tuple[bool, bool]:
        return _accepts(self.engines[0], request), _accepts(self.engines[1], request)

    def _org_sensitive(self, action: str) -> bool:
        """Whether the organisation code can matter: a counted signal, or a rule reading it."""
        return "org_id" in _signals(self.found, action) or any(
            placed.reads[4]
            for bundle in self.bundles
            for (act, _), placed in bundle.classes.items()
            if act == action
        )

    def action(self, action: str) -> None:
        found = self.found
        elementary = _segments(_action_bounds(found, action, None))
        vectors = _vectors(found, action)
        self.examined += (
            len(vectors)
            * len(found.orgs)
            * len(_KINDS)
            * len(found.plans)
            * len(found.offers)
            * len(elementary)
        )
        sensitive = self._org_sensitive(action)
        for org in found.orgs if sensitive else found.orgs[:1]:
            groups: dict[tuple[tuple[str, ...], tuple[str, ...]], list[dict[str, str]]] = {}
            for vector in vectors:
                probe = parse_request(
                    _request(action, vector, org, _KINDS[0], None, (None, None), 0)
                )
                key = (self.engines[0].locate(probe)[1], self.engines[1].locate(probe)[1])
                groups.setdefault(key, []).append(vector)
            for under, members in groups.items():
                # the plainest vector is the example: fewest signals, a declared country first
                members.sort(key=lambda v: (len(v), "country" not in v))
                weight = len(members) * (1 if sensitive else len(found.orgs))
                self._group(
                    action, under, members[0], org if sensitive else None, weight, elementary
                )

    def _group(
        self,
        action: str,
        under: tuple[tuple[str, ...], tuple[str, ...]],
        vector: dict[str, str],
        org: OrgClass | None,
        weight: int,
        elementary: list[tuple[int | None, int | None, int]],
    ) -> None:
        """The rows of one group of evidence vectors (the same jurisdictions under each side)."""
        found = self.found
        here = tuple(dict.fromkeys((*under[0], *under[1])))
        reads = [False] * len(READABLE)
        for bundle in self.bundles:
            for j in here:
                placed = bundle.classes.get((action, j))
                if placed is not None:
                    reads = [a or b for a, b in zip(reads, placed.reads, strict=True)]
        by_type, by_plan, by_channel, by_partner, _ = reads
        segments = _segments(_action_bounds(found, action, here))
        code = org or found.orgs[0]

        def probe(plan: str | None, offer: _Offer) -> Request:
            return parse_request(_request(action, vector, code, _KINDS[0], plan, offer, 0))

        # A fact no rule here reads collapses to one representative per way the two
        # catalogues accept it; the catalogue checks plans and offers separately.
        plans = _buckets(
            found.plans,
            lambda p: p if by_plan else "*",
            lambda p: self._accepts(probe(p, (None, None))),
        )
        offers = _buckets(
            found.offers,
            lambda o: (o[0] if by_channel else "*", o[1] if by_partner else "*"),
            lambda o: self._accepts(probe(None, o)),
        )
        for kinds in [(k,) for k in _KINDS] if by_type else [_KINDS]:
            for (plan_set, plan_ok), (offer_set, offer_ok) in product(plans, offers):
                if not (plan_ok[0] and offer_ok[0]) and not (plan_ok[1] and offer_ok[1]):
                    continue  # malformed under both: no difference
                facts = (
                    ("type", kinds if by_type else ("*",)),
                    ("plan", _values(plan_set, found.plans)),
                    ("channel", _values([o for o, _ in offer_set], [o for o, _ in found.offers])),
                    ("partner", _values([p for _, p in offer_set], [p for _, p in found.offers])),
                )
                cells = weight * len(kinds) * len(plan_set) * len(offer_set)
                self._segments(
                    action,
                    under,
                    here,
                    vector,
                    org,
                    kinds[0],
                    plan_set[0],
                    offer_set[0],
                    facts,
                    cells,
                    segments,
                    elementary,
                )

    def _segments(
        self,
        action: str,
        under: tuple[tuple[str, ...], tuple[str, ...]],
        here: tuple[str, ...],
        vector: dict[str, str],
        org: OrgClass | None,
        kind: str,
        plan: str | None,
        offer: _Offer,
        facts: tuple[tuple[str, tuple[str, ...]], ...],
        cells: int,
        segments: list[tuple[int | None, int | None, int]],
        elementary: list[tuple[int | None, int | None, int]],
    ) -> None:
        """Decide one class in every segment; consecutive segments with the same pair merge."""
        code = org or self.found.orgs[0]
        open_row: DiffClass | None = None
        for start, end, epoch in segments:
            wire = _request(action, vector, code, kind, plan, offer, epoch)
            request = parse_request(wire)
            old, new = _judge(self.engines[0], request), _judge(self.engines[1], request)
            if old == new:
                open_row = None
                continue
            # the elementary segments inside this one: the group's bounds are some of the
            # action's, so each lies wholly inside or outside
            inside = sum(
                1
                for _, _, at in elementary
                if (start is None or at >= start) and (end is None or at < end)
            )
            self.differing += cells * inside
            if open_row is not None and (open_row.old, open_row.new) == (old, new):
                open_row = replace(open_row, end=end, cells=open_row.cells + cells * inside)
                self.rows[-1] = open_row
                continue
            open_row = DiffClass(
                action=action,
                judged_under=under,
                org="*" if org is None else org.name,
                facts=facts,
                start=start,
                end=end,
                zone=_zone(self.found, action, here, start, end),
                example=wire,
                old=old,
                new=new,
                cells=cells * inside,
            )
            self.rows.append(open_row)


def diff_bundles(
    old: LoadedBundle | CompiledBundle,
    new: LoadedBundle | CompiledBundle,
    *,
    locator: IpLocator | None = None,
) -> PolicyDiff:
    """Every class of request ``old`` and ``new`` decide differently (see the module's text)."""
    old_c, new_c = _compiled(old), _compiled(new)
    differ = _Differ(old_c, new_c, locator or default_locator())
    for action in ACTIONS:
        differ.action(action)
    found = differ.found
    made = PolicyDiff(
        old=old_c.ref,
        new=new_c.ref,
        classes=tuple(sorted(differ.rows, key=_row_order)),
        jurisdiction_classes=tuple(found.classes),
        examined=differ.examined,
        differing=differ.differing,
        unplaced=tuple(rep for rep, _ in found.classes if rep not in found.ips),
    )
    return replace(made, digest=_digest(made._body(examples=False)))


def _values(values: Sequence[str | None], every: Sequence[str | None]) -> tuple[str, ...]:
    """A fact's values in a class, absent as ``none``; ``*`` when they are all there are."""
    if set(values) == set(every):
        return ("*",)
    return tuple(dict.fromkeys("none" if v is None else v for v in values))


def _row_order(row: DiffClass) -> tuple[object, ...]:
    return (
        ACTIONS.index(row.action),
        row.judged_under,
        row.org,
        row.facts,
        _FAR_PAST if row.start is None else row.start,
    )
