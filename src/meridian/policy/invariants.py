"""Invariants: properties of a bundle proved over every request class, with a counterexample.

An invariants file is YAML::

    invariants:
      - id: cn-no-direct-purchase-after-cutover
        description: from 2020-08-23 in CN no purchase through `direct` is permitted
        when: {action: [purchase, renew], judged_under: [CN], channel: [direct], from: 2020-08-23}
        decision: deny
      - id: join-ignores-plan
        description: "`join` never depends on the plan"
        when: {action: [join]}
        independent_of: [plan]
      - id: hk-mo-tw-never-cn
        description: HK, MO and TW are never judged as CN
        when: {located_in: [HK, MO, TW]}
        not_judged_under: [CN]

``when`` selects request classes (every key optional, all must hold): ``action``;
``located_in`` (every counted signal that names a country names one of these, and one does);
``judged_under`` (the subject is judged under one of these); ``type``, ``plan``, ``channel``,
``partner`` (``none`` for absent); ``org_code`` (a class name of
:func:`~meridian.policy.diff.org_classes`: ``absent``, ``valid``, ``malformed``, ``checkfail-…``);
``from`` and ``until`` (a date or local time, in ``zone``, or else in the zone of the first
jurisdiction of ``judged_under`` / ``located_in`` the bundle lists). Jurisdiction lists take
codes and the bundle's groups. Each invariant makes exactly one claim: ``decision`` (every
selected request is decided so), ``independent_of`` (changing only these facts never changes
the outcome: decision, deciding rules, obligations, alternatives) or ``not_judged_under``.

Checking walks the domain of :mod:`meridian.policy.diff` for the one bundle, with the
jurisdictions the invariants name kept apart from the rest and the window bounds they name
added to the time segments, so each class is wholly selected or not. A request the catalogue
refuses as malformed is decided by nobody and selected by no invariant.
"""

from __future__ import annotations

from bisect import bisect_right
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import date, datetime, time
from pathlib import Path
from typing import Any, Literal
from zoneinfo import ZoneInfo

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from ..errors import InputError, NotFoundError, RequestError, format_validation_error, shown
from ..geography.ipgeo import IpLocator, default_locator
from ..geography.jurisdictions import ALL_JURISDICTIONS
from .compiled import CompiledBundle, compile_bundle, expand_jurisdictions
from .decision import BundleRef
from .diff import (
    Side,
    _action_bounds,
    _build_domain,
    _Domain,
    _request,
    _segments,
    _vectors,
    side_of,
)
from .engine import Engine
from .loader import LoadedBundle
from .request import ACTIONS, Action, epoch_seconds, parse_request

__all__ = [
    "InvariantFile",
    "InvariantReport",
    "InvariantResult",
    "InvariantSpec",
    "Selector",
    "broken_invariants",
    "builtin_invariants",
    "check_invariants",
    "default_invariants_path",
    "load_invariants",
    "load_invariants_text",
]

#: the largest invariants file read, in bytes
MAX_INVARIANTS_BYTES = 1 << 18
Fact = Literal["type", "plan", "channel", "partner", "org_code"]


class _Doc(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)


class Selector(_Doc):
    """Which request classes an invariant speaks of (every key optional; all must hold)."""

    action: tuple[Action, ...] = ()
    located_in: tuple[str, ...] = ()
    judged_under: tuple[str, ...] = ()
    type: tuple[Literal["individual", "organization"], ...] = ()
    plan: tuple[str, ...] = ()
    channel: tuple[str, ...] = ()
    partner: tuple[str, ...] = ()
    org_code: tuple[str, ...] = ()
    from_: date | datetime | None = Field(default=None, alias="from")
    until: date | datetime | None = None
    zone: str | None = None


class InvariantSpec(_Doc):
    """One property: a selection and exactly one claim about it."""

    id: str = Field(pattern=r"^[a-z0-9][a-z0-9_-]{0,62}$")
    description: str
    when: Selector = Selector()
    decision: Literal["allow", "deny"] | None = None
    independent_of: tuple[Fact, ...] = ()
    not_judged_under: tuple[str, ...] = ()

    @model_validator(mode="after")
    def _one_claim(self) -> InvariantSpec:
        claims = [self.decision is not None, bool(self.independent_of), bool(self.not_judged_under)]
        if sum(claims) != 1:
            raise ValueError(
                f"invariant `{self.id}` needs exactly one of `decision`, `independent_of`, `not_judged_under`"
            )
        return self


class InvariantFile(_Doc):
    """A whole invariants file."""

    invariants: tuple[InvariantSpec, ...] = Field(min_length=1)


@dataclass(frozen=True)
class InvariantResult:
    """Whether one invariant holds, over how many request classes, and if not, a counterexample.

    ``counterexample`` is a wire-form request; for ``independent_of`` ``other`` is the request
    that differs from it only in those facts and is decided otherwise.
    """

    id: str
    description: str
    holds: bool
    examined: int
    counterexample: dict[str, Any] | None = None
    decided: Side | None = None
    judged_under: tuple[str, ...] = ()
    other: dict[str, Any] | None = None
    other_decided: Side | None = None

    def explain(self) -> str:
        """One line saying what failed (empty when it holds)."""
        if self.holds or self.decided is None:
            return ""
        rules = ", ".join(self.decided.rules) or "no rule"
        line = f"{self.decided.decision} ({rules}), judged under {', '.join(self.judged_under)}"
        if self.other_decided is not None:
            others = ", ".join(self.other_decided.rules) or "no rule"
            line += f"; but {self.other_decided.decision} ({others}) for the other request"
        return line

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "id": self.id,
            "description": self.description,
            "holds": self.holds,
            "examined": self.examined,
        }
        if not self.holds:
            out["counterexample"] = self.counterexample
            out["decided"] = None if self.decided is None else self.decided.to_dict()
            out["judged_under"] = list(self.judged_under)
            out["explanation"] = self.explain()
            if self.other is not None:
                out["other"] = self.other
                out["other_decided"] = (
                    None if self.other_decided is None else self.other_decided.to_dict()
                )
        return out


@dataclass(frozen=True)
class InvariantReport:
    """Every invariant of a file checked against one bundle."""

    bundle: BundleRef
    results: tuple[InvariantResult, ...]

    @property
    def ok(self) -> bool:
        return all(r.holds for r in self.results)

    @property
    def broken(self) -> tuple[InvariantResult, ...]:
        return tuple(r for r in self.results if not r.holds)

    def to_dict(self) -> dict[str, Any]:
        return {
            "bundle": self.bundle.to_dict(),
            "ok": self.ok,
            "results": [r.to_dict() for r in self.results],
        }


# -- reading ----------------------------------------------------------------------------------


def load_invariants_text(text: str, source: str = "<invariants>") -> InvariantFile:
    """Parse an invariants file; raise :class:`InputError` with one line naming the problem."""
    if len(text.encode("utf-8", "surrogatepass")) > MAX_INVARIANTS_BYTES:
        raise InputError(
            f"{source}: an invariants file may be at most {MAX_INVARIANTS_BYTES} bytes"
        )
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f":{mark.line + 1}" if mark is not None else ""
        raise InputError(
            f"{source}{where}: malformed yaml: {getattr(exc, 'problem', None) or 'unreadable'}"
        ) from None
    except RecursionError:  # the parser recurses once a level: a file of `[[[…` exhausts it
        raise InputError(f"{source}: malformed yaml: nested too deep") from None
    if not isinstance(data, dict):
        raise InputError(f"{source}: an invariants file is a mapping with `invariants`")
    try:
        return InvariantFile.model_validate(data)
    except ValidationError as exc:
        raise InputError(format_validation_error(exc, source)) from None


def load_invariants(path: str | Path) -> InvariantFile:
    """Read an invariants file."""
    target = Path(path)
    try:
        with open(target, "rb") as stream:
            raw = stream.read(MAX_INVARIANTS_BYTES + 1)
    except FileNotFoundError:
        raise NotFoundError(f"no invariants file at `{shown(str(target))}`") from None
    except OSError as exc:
        raise InputError(f"cannot read invariants `{shown(str(target))}`: {exc}") from None
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        raise InputError(f"{target}: not utf-8 text") from None
    return load_invariants_text(text, str(target))


def default_invariants_path(bundle_path: Path) -> Path:
    """Where a bundle's invariants live: next to it, ``<name>.invariants.yaml``."""
    return bundle_path.with_name(bundle_path.stem + ".invariants.yaml")


# -- checking ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Compiled:
    """An invariant with its selection resolved against the bundle."""

    spec: InvariantSpec
    actions: tuple[str, ...]
    located_in: frozenset[str] | None
    judged_under: frozenset[str] | None
    not_judged_under: frozenset[str]
    start: int | None
    end: int | None


def _codes(bundle: CompiledBundle, names: tuple[str, ...], inv: str) -> frozenset[str]:
    doc = bundle.document
    for name in names:
        if name in doc.groups or name in ("everywhere", "unknown"):
            continue
        if not (len(name) == 2 and name.isupper()) or name not in ALL_JURISDICTIONS:
            raise InputError(
                f"invariant `{inv}`: unknown jurisdiction or group `{shown(name)}`: expected an ISO 3166-1 alpha-2 code or a group of the bundle"
            )
    return frozenset(expand_jurisdictions(doc, names))


def _instant(
    bundle: CompiledBundle, value: date | datetime | None, sel: Selector, inv: str
) -> int | None:
    if value is None:
        return None
    moment = value if isinstance(value, datetime) else datetime.combine(value, time())
    if moment.tzinfo is not None:
        return epoch_seconds(moment)
    zone = sel.zone
    if zone is None:
        for name in (*sel.judged_under, *sel.located_in):
            info = bundle.document.jurisdictions.get(name)
            if info is not None:
                zone = info.zone
                break
    if zone is None:
        raise InputError(
            f"invariant `{inv}`: `{value}` is local time: give `zone` or a jurisdiction the bundle gives a zone"
        )
    try:
        return epoch_seconds(moment.replace(tzinfo=ZoneInfo(zone)))
    except (ValueError, KeyError):
        raise InputError(f"invariant `{inv}`: unknown time zone `{shown(zone)}`") from None


def _resolve(bundle: CompiledBundle, spec: InvariantSpec) -> _Compiled:
    sel = spec.when
    return _Compiled(
        spec,
        tuple(a.value for a in sel.action) or ACTIONS,
        _codes(bundle, sel.located_in, spec.id) if sel.located_in else None,
        _codes(bundle, sel.judged_under, spec.id) if sel.judged_under else None,
        _codes(bundle, spec.not_judged_under, spec.id),
        _instant(bundle, sel.from_, sel, spec.id),
        _instant(bundle, sel.until, sel, spec.id),
    )


@dataclass(frozen=True)
class _Cell:
    """One elementary request class, decided."""

    side: Side
    judged_under: tuple[str, ...]
    located: tuple[str, ...]  # the countries the counted signals name


@dataclass(frozen=True)
class _Place:
    """Where one evidence vector (and organisation code) puts a subject, for one action."""

    judged_under: tuple[str, ...]
    located: tuple[str, ...]
    reads: tuple[bool, ...]  # READABLE order: type, plan, channel, partner, uscc
    bounds: list[int]


_NO: tuple[str | None, str | None] = (None, None)
_ANY = object()  # a memo key's place for a fact no rule reads


def _value(value: str | None) -> str:
    return "none" if value is None else value


def _preselected(inv: _Compiled, coords: _Coords, start: int | None, end: int | None) -> bool:
    """The selection's tests that need no decision: the facts and the time."""
    sel = inv.spec.when
    _, org, kind, plan, (channel, partner), _ = coords
    for wanted, given in (
        (sel.type, kind),
        (sel.plan, plan),
        (sel.channel, channel),
        (sel.partner, partner),
        (sel.org_code, org),
    ):
        if wanted and _value(given) not in wanted:
            return False
    # segments are cut at the invariant's own bounds, so a segment is wholly inside or outside
    if inv.start is not None and (start is None or start < inv.start):
        return False
    return not (inv.end is not None and (end is None or end > inv.end))


def _selected(inv: _Compiled, cell: _Cell) -> bool:
    """The selection's tests on where the subject is placed and judged."""
    if inv.located_in is not None and (
        not cell.located or not all(c in inv.located_in for c in cell.located)
    ):
        return False
    return inv.judged_under is None or any(j in inv.judged_under for j in cell.judged_under)


_Coords = tuple[
    tuple[tuple[str, str], ...], str, str, str | None, tuple[str | None, str | None], int | None
]


class _Checker:
    def __init__(self, bundle: CompiledBundle, invariants: list[_Compiled], locator: IpLocator):
        split = [s for inv in invariants for s in (inv.located_in, inv.judged_under) if s]
        split += [inv.not_judged_under for inv in invariants if inv.not_judged_under]
        self.bundle = bundle
        self.domain: _Domain = _build_domain(bundle, bundle, locator, split)
        self.engine = Engine(bundle, locator=locator)
        self.extra = sorted(
            {b for inv in invariants for b in (inv.start, inv.end) if b is not None}
        )
        self.orgs = {o.name: o for o in self.domain.orgs}
        self.places: dict[tuple[object, ...], _Place] = {}
        self.accepted: dict[tuple[object, ...], bool] = {}
        self.sides: dict[tuple[object, ...], Side] = {}

    def coordinates(self, action: str) -> Iterator[tuple[_Coords, int | None, int | None, int]]:
        """Every elementary class of ``action``: its coordinates, segment and an instant in it."""
        found = self.domain
        bounds = sorted(set(_action_bounds(found, action, None)) | set(self.extra))
        segments = _segments(bounds)
        for vector in _vectors(found, action):
            signals = tuple(sorted(vector.items()))
            for org in found.orgs:
                for kind in ("individual", "organization"):
                    for plan in found.plans:
                        for offer in found.offers:
                            for start, end, epoch in segments:
                                yield (
                                    (signals, org.name, kind, plan, offer, start),
                                    start,
                                    end,
                                    epoch,
                                )

    def _place(self, action: str, signals: tuple[tuple[str, str], ...], org: str) -> _Place:
        """Where a subject with these signals is judged, and what the rules there read."""
        key = (action, signals, org)
        found = self.places.get(key)
        if found is None:
            code = self.orgs[org]
            probe = parse_request(_request(action, dict(signals), code, "individual", None, _NO, 0))
            evidence, under = self.engine.locate(probe)
            reads = [False] * 5
            bounds: set[int] = set()
            for j in under:
                placed = self.bundle.classes.get((action, j))
                if placed is not None:
                    reads = [x or y for x, y in zip(reads, placed.reads, strict=True)]
                    bounds.update(placed.bounds)
            located = tuple(dict.fromkeys(e.country for e in evidence if e.country is not None))
            found = self.places[key] = _Place(under, located, tuple(reads), sorted(bounds))
        return found

    def _accepts(self, plan: str | None, offer: tuple[str | None, str | None]) -> bool:
        key = (plan, offer)
        found = self.accepted.get(key)
        if found is None:
            probe = parse_request(
                _request("join", {}, self.domain.orgs[0], "individual", plan, offer, 0)
            )
            try:
                self.engine.check(probe)
                found = True
            except RequestError:
                found = False
            self.accepted[key] = found
        return found

    def cell(self, action: str, coords: _Coords, epoch: int) -> _Cell | None:
        """The decided class at ``coords`` (``None``: malformed for this bundle).

        Exact, as the engine's memo is: two classes that differ only in facts no rule where the
        subject is judged reads, or only within one time segment there, are decided alike; the
        one decision stands for both, worded for the class at hand.
        """
        signals, org, kind, plan, offer, _ = coords
        if not self._accepts(plan, offer):
            return None
        place = self._place(action, signals, org)
        by_type, by_plan, by_channel, by_partner, _ = place.reads
        key = (
            action,
            signals,
            org,
            kind if by_type else None,
            plan if by_plan else _ANY,
            offer[0] if by_channel else _ANY,
            offer[1] if by_partner else _ANY,
            bisect_right(place.bounds, epoch),
        )
        side = self.sides.get(key)
        if side is None:
            wire = _request(action, dict(signals), self.orgs[org], kind, plan, offer, epoch)
            side = self.sides[key] = side_of(self.engine.decide(parse_request(wire)))
        return _Cell(side, place.judged_under, place.located)

    def wire(self, action: str, coords: _Coords, epoch: int) -> dict[str, Any]:
        """The example request of the class at ``coords``."""
        signals, org, kind, plan, offer, _ = coords
        return _request(action, dict(signals), self.orgs[org], kind, plan, offer, epoch)


def _check_one(checker: _Checker, inv: _Compiled) -> InvariantResult:
    spec = inv.spec
    examined = 0
    groups: dict[tuple[object, ...], tuple[_Cell, int, _Coords]] = {}
    facts = set(spec.independent_of)
    for action in inv.actions:
        for coords, start, end, epoch in checker.coordinates(action):
            if not _preselected(inv, coords, start, end):
                continue
            cell = checker.cell(action, coords, epoch)
            if cell is None or not _selected(inv, cell):
                continue
            examined += 1
            broken = (spec.decision is not None and cell.side.decision != spec.decision) or (
                bool(inv.not_judged_under)
                and any(j in inv.not_judged_under for j in cell.judged_under)
            )
            if broken:
                return InvariantResult(
                    spec.id,
                    spec.description,
                    False,
                    examined,
                    checker.wire(action, coords, epoch),
                    cell.side,
                    cell.judged_under,
                )
            if facts:
                signals, org, kind, plan, (channel, partner), seg = coords
                key = (
                    action,
                    signals,
                    None if "org_code" in facts else org,
                    None if "type" in facts else kind,
                    None if "plan" in facts else plan,
                    None if "channel" in facts else channel,
                    None if "partner" in facts else partner,
                    seg,
                )
                first, at, seen = groups.setdefault(key, (cell, epoch, coords))
                if first.side != cell.side:
                    return InvariantResult(
                        spec.id,
                        spec.description,
                        False,
                        examined,
                        checker.wire(action, seen, at),
                        first.side,
                        first.judged_under,
                        checker.wire(action, coords, epoch),
                        cell.side,
                    )
    return InvariantResult(spec.id, spec.description, True, examined)


def check_invariants(
    bundle: LoadedBundle | CompiledBundle,
    invariants: InvariantFile,
    *,
    locator: IpLocator | None = None,
) -> InvariantReport:
    """Prove each invariant over every request class of ``bundle``, or give a counterexample.

    Raises :class:`InputError` when an invariant names a jurisdiction or group the bundle does
    not know, or a local time with no zone to read it in.
    """
    compiled = bundle if isinstance(bundle, CompiledBundle) else compile_bundle(bundle)
    resolved = [_resolve(compiled, spec) for spec in invariants.invariants]
    checker = _Checker(compiled, resolved, locator or default_locator())
    return InvariantReport(compiled.ref, tuple(_check_one(checker, inv) for inv in resolved))


def builtin_invariants() -> InvariantFile:
    """The invariants shipped with the built-in bundle (``bundles/default.invariants.yaml``)."""
    from .loader import default_bundle_path

    return load_invariants(default_invariants_path(default_bundle_path()))


def broken_invariants(
    bundle: LoadedBundle | CompiledBundle,
    invariants: InvariantFile | None = None,
    *,
    locator: IpLocator | None = None,
) -> tuple[InvariantResult, ...]:
    """The invariants ``bundle`` breaks, each with its counterexample (empty: all hold).

    What a change workflow asks before approval; ``invariants`` defaults to the built-in ones.
    """
    chosen = invariants if invariants is not None else builtin_invariants()
    return check_invariants(bundle, chosen, locator=locator).broken
