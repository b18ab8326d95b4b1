"""A bundle compiled for deciding: rules indexed by action, jurisdiction and time segment.

Compilation does, once, everything that does not depend on the request:

* every rule's jurisdictions are expanded (groups, ``everywhere``) to codes;
* every effective window is turned into UTC epoch seconds per jurisdiction, from its local zone;
* for each (action, jurisdiction) the window bounds split time into segments, and each segment
  holds the tuple of forbid rules and the tuple of permit rules in force throughout it;
* conditions become closures over :class:`Facts`.

Deciding is then a dictionary look-up, a ``bisect`` and a loop over the few rules in force. This
shape is what the decision benchmark measures (``bench/decisions.py``).
"""

from __future__ import annotations

import string
from bisect import bisect_right
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date, datetime, time
from operator import attrgetter
from typing import NamedTuple
from zoneinfo import ZoneInfo

from ..geography.jurisdictions import ALL_JURISDICTIONS, jurisdiction_name
from ..geography.uscc import OrgForm, uscc_status
from .decision import BundleRef, PartnerRef, Reason
from .loader import BUILTIN_GROUPS, LoadedBundle
from .model import (
    AllOf,
    AnyOf,
    Attribute,
    AttributeIn,
    Bundle,
    Condition,
    Effect,
    LocationRule,
    Not,
    PartnerAuthorised,
    Window,
)
from .request import ACTIONS, epoch_seconds

__all__ = ["CompiledBundle", "CompiledRule", "Facts", "compile_bundle"]


class Facts:
    """The request facts rules read, for one candidate jurisdiction.

    INVARIANT: every attribute a condition may read is always set (absent values are the word
    ``"none"`` or ``"absent"``), so no condition can fail for a missing attribute. The Cedar
    export relies on the same: its schema makes every context attribute required.
    """

    __slots__ = ("channel", "epoch", "jurisdiction", "org_id", "partner", "plan", "type", "uscc")

    def __init__(
        self,
        jurisdiction: str,
        epoch: int,
        type: str,
        plan: str,
        channel: str,
        partner: str,
        uscc: str,
        org_id: str,
    ) -> None:
        self.jurisdiction = jurisdiction
        self.epoch = epoch
        self.type = type
        self.plan = plan
        self.channel = channel
        self.partner = partner
        self.uscc = uscc
        self.org_id = org_id

    def as_dict(self) -> dict[str, str | int]:
        return {name: getattr(self, name) for name in self.__slots__}


Test = Callable[[Facts], bool]


class CompiledRule:
    """A rule ready to evaluate: its test closure and what it says when it decides."""

    __slots__ = (
        "_key",
        "_reasons",
        "approximate",
        "effect",
        "fields",
        "id",
        "message",
        "obligations",
        "test",
    )

    def __init__(
        self,
        id: str,
        effect: Effect,
        message: str,
        test: Test,
        obligations: tuple[str, ...],
        approximate: bool,
    ) -> None:
        self.id = id
        self.effect = effect.value
        self.message = message
        self.test = test
        self.obligations = obligations
        self.approximate = approximate
        self.fields = tuple(
            dict.fromkeys(name for _, name, _, _ in string.Formatter().parse(message) if name)
        )
        others = [f for f in self.fields if f != "jurisdiction"]
        self._key: Callable[[Facts], object] | None = attrgetter(*others) if others else None
        self._reasons: dict[object, Reason] = {}

    def reason(self, facts: Facts) -> Reason:
        """The reason this rule gives for ``facts``; memoised, since most messages repeat."""
        key: object = (
            facts.jurisdiction if self._key is None else (facts.jurisdiction, self._key(facts))
        )
        found = self._reasons.get(key)
        if found is None:
            values = {f: getattr(facts, f) for f in self.fields}
            if "jurisdiction" in values:
                values["jurisdiction"] = (
                    f"{jurisdiction_name(facts.jurisdiction)} ({facts.jurisdiction})"
                )
            found = Reason(
                self.id,
                self.effect,
                self.message.format_map(values),
                facts.jurisdiction,
                self.approximate,
            )
            if len(self._reasons) > 4096:  # bound the memo: org ids vary without limit
                self._reasons.clear()
            self._reasons[key] = found
        return found


class RuleClass(NamedTuple):
    """What the engine's memo needs to know of one (action, jurisdiction).

    Jurisdictions of one ``klass`` have the same rules in force at every instant and the same
    partner windows, so a rule evaluation for one holds for all of them; only the wording of the
    reasons (which names the jurisdiction) differs. ``reads`` says, for each fact in
    :data:`READABLE` order, whether any rule here reads it (in a condition or a message): the
    others cannot change a verdict. ``quotes_org_id``: some message here quotes the code.
    """

    bounds: list[int]
    klass: int
    reads: tuple[bool, bool, bool, bool, bool]
    quotes_org_id: bool


Segments = tuple[list[int], list[tuple[tuple[CompiledRule, ...], tuple[CompiledRule, ...]]]]


class PartnerWindow(NamedTuple):
    """Where and when one partner is authorised; open bounds are ``None``."""

    partner: PartnerRef
    start: int | None
    end: int | None

    def covers(self, epoch: int) -> bool:
        start, end = self.start, self.end
        return (start is None or start <= epoch) and (end is None or epoch < end)


@dataclass(frozen=True)
class CompiledBundle:
    """Everything :class:`~meridian.policy.engine.Engine` needs, derived once from a bundle."""

    loaded: LoadedBundle
    ref: BundleRef
    index: dict[tuple[str, str], Segments]
    partner_windows: dict[tuple[str, str], tuple[PartnerWindow, ...]]  # (partner, jurisdiction)
    jurisdiction_partners: dict[str, tuple[PartnerWindow, ...]]
    location: dict[str, LocationRule]
    plans: frozenset[str]
    channels: frozenset[str]
    partners: frozenset[str]
    pilot_divisions: tuple[str, ...]
    rules: tuple[CompiledRule, ...]
    #: (action, jurisdiction) -> its :class:`RuleClass`
    classes: dict[tuple[str, str], RuleClass] = field(default_factory=dict)

    @property
    def document(self) -> Bundle:
        return self.loaded.document

    def segment(
        self, action: str, jurisdiction: str, epoch: int
    ) -> tuple[tuple[CompiledRule, ...], tuple[CompiledRule, ...]]:
        """The (forbids, permits) in force for ``action`` in ``jurisdiction`` at ``epoch``."""
        entry = self.index.get((action, jurisdiction))
        if entry is None:
            return (), ()
        bounds, segments = entry
        return segments[bisect_right(bounds, epoch)]

    def is_authorised(self, partner: str, jurisdiction: str, epoch: int) -> bool:
        """Whether ``partner`` may sell in ``jurisdiction`` at ``epoch``."""
        for window in self.partner_windows.get((partner, jurisdiction), ()):
            if window.covers(epoch):
                return True
        return False

    def authorised_partners(self, jurisdiction: str, epoch: int) -> tuple[PartnerRef, ...]:
        return tuple(
            w.partner for w in self.jurisdiction_partners.get(jurisdiction, ()) if w.covers(epoch)
        )

    def uscc_status(self, form: OrgForm, code: str | None) -> str:
        """The status of an organisation code under this bundle's pilot divisions."""
        return uscc_status(form, code, self.pilot_divisions).value


def expand_jurisdictions(doc: Bundle, names: tuple[str, ...]) -> list[str]:
    """Codes named directly or through groups, in a stable order; ``unknown`` stays itself."""
    out: dict[str, None] = {}
    for name in names:
        if name in BUILTIN_GROUPS:
            out.update(dict.fromkeys(ALL_JURISDICTIONS))
        elif name in doc.groups:
            group = doc.groups[name]
            if group.all_except is not None:
                excluded = set(group.all_except)
                out.update(dict.fromkeys(c for c in ALL_JURISDICTIONS if c not in excluded))
            else:
                out.update(dict.fromkeys(group.include))
        else:
            out[name] = None
    return list(out)


def _local_epoch(value: date | datetime | None, zone: str | None) -> int | None:
    if value is None:
        return None
    assert zone is not None  # INVARIANT: the loader refuses windows in jurisdictions with no zone
    moment = value if isinstance(value, datetime) else datetime.combine(value, time())
    return epoch_seconds(moment.replace(tzinfo=ZoneInfo(zone)))


def window_epochs(doc: Bundle, window: Window, jurisdiction: str) -> tuple[int | None, int | None]:
    """A window's ``[from, until)`` as UTC epoch seconds, read in ``jurisdiction``'s local zone."""
    info = doc.jurisdictions.get(jurisdiction)
    zone = info.zone if info is not None else None
    return _local_epoch(window.from_, zone), _local_epoch(window.until, zone)


def _compile_condition(cond: Condition, bundle: CompiledBundle) -> Test:
    if isinstance(cond, AttributeIn):
        values = frozenset(cond.in_)
        match cond.attribute:
            case Attribute.SUBJECT_TYPE:
                return lambda f: f.type in values
            case Attribute.SUBJECT_PLAN:
                return lambda f: f.plan in values
            case Attribute.SUBJECT_USCC:
                return lambda f: f.uscc in values
            case Attribute.RESOURCE_CHANNEL:
                return lambda f: f.channel in values
            case Attribute.RESOURCE_PARTNER:
                return lambda f: f.partner in values
    if isinstance(cond, PartnerAuthorised):
        wanted = cond.partner_authorised
        authorised = bundle.is_authorised
        return lambda f: authorised(f.partner, f.jurisdiction, f.epoch) is wanted
    if isinstance(cond, AllOf):
        tests = tuple(_compile_condition(c, bundle) for c in cond.all)
        if len(tests) == 2:
            first, second = tests
            return lambda f: first(f) and second(f)
        return lambda f: all(t(f) for t in tests)
    if isinstance(cond, AnyOf):
        tests = tuple(_compile_condition(c, bundle) for c in cond.any)
        return lambda f: any(t(f) for t in tests)
    if isinstance(cond, Not):
        inner = _compile_condition(cond.not_, bundle)
        return lambda f: not inner(f)
    raise TypeError(f"unknown condition `{cond!r}`")  # pragma: no cover - the model is closed


#: The facts a memo key may hold, in key order, and the attribute each condition names.
READABLE = ("type", "plan", "channel", "partner", "uscc")
_READS: dict[Attribute, str] = {
    Attribute.SUBJECT_TYPE: "type",
    Attribute.SUBJECT_PLAN: "plan",
    Attribute.SUBJECT_USCC: "uscc",
    Attribute.RESOURCE_CHANNEL: "channel",
    Attribute.RESOURCE_PARTNER: "partner",
}


def condition_reads(cond: Condition | None) -> frozenset[str]:
    """The facts a condition reads (besides the jurisdiction and the instant, which all may)."""
    if cond is None:
        return frozenset()
    if isinstance(cond, AttributeIn):
        return frozenset({_READS[cond.attribute]})
    if isinstance(cond, PartnerAuthorised):
        return frozenset({"partner"})
    if isinstance(cond, AllOf | AnyOf):
        parts = cond.all if isinstance(cond, AllOf) else cond.any
        return frozenset().union(*(condition_reads(c) for c in parts))
    if isinstance(cond, Not):
        return condition_reads(cond.not_)
    raise TypeError(f"unknown condition `{cond!r}`")  # pragma: no cover - the model is closed


def _always(_: Facts) -> bool:
    return True


def _segments(
    entries: list[tuple[int | None, int | None, CompiledRule]], extra: frozenset[int]
) -> Segments:
    # INVARIANT: a segment is a span of time in which nothing a decision reads changes: no rule
    # starts or ends, and no partner's authorisation starts or ends (``extra``). The engine's
    # memo of verdicts relies on it.
    bounds = sorted({b for lo, hi, _ in entries for b in (lo, hi) if b is not None} | extra)
    segments = []
    for i in range(len(bounds) + 1):
        probe = bounds[i - 1] if i > 0 else (bounds[0] - 1 if bounds else 0)
        live = [
            r for lo, hi, r in entries if (lo is None or lo <= probe) and (hi is None or probe < hi)
        ]
        forbids = tuple(r for r in live if r.effect == "forbid")
        permits = tuple(r for r in live if r.effect == "permit")
        segments.append((forbids, permits))
    return bounds, segments


def compile_bundle(loaded: LoadedBundle) -> CompiledBundle:
    """Compile a validated bundle for deciding."""
    doc = loaded.document
    jurisdiction_partners: dict[str, list[PartnerWindow]] = {}
    partner_windows: dict[tuple[str, str], list[PartnerWindow]] = {}
    for pid, partner_spec in doc.partners.items():
        ref = PartnerRef(pid, partner_spec.name, partner_spec.contact)
        if partner_spec.status != "active":
            continue
        for jur in expand_jurisdictions(doc, partner_spec.jurisdictions):
            start, end = window_epochs(doc, partner_spec.effective, jur)
            window = PartnerWindow(ref, start, end)
            jurisdiction_partners.setdefault(jur, []).append(window)
            partner_windows.setdefault((pid, jur), []).append(window)
    compiled = CompiledBundle(
        loaded=loaded,
        ref=BundleRef(doc.bundle, doc.version, loaded.digest),
        index={},
        partner_windows={k: tuple(v) for k, v in partner_windows.items()},
        jurisdiction_partners={k: tuple(v) for k, v in jurisdiction_partners.items()},
        location={a.value: r for a, r in doc.location.items()},
        plans=frozenset(doc.plans),
        channels=frozenset(doc.channels),
        partners=frozenset(doc.partners),
        pilot_divisions=doc.uscc.pilot_divisions,
        rules=(),
    )
    per_key: dict[tuple[str, str], list[tuple[int | None, int | None, CompiledRule]]] = {}
    rules = []
    reads: dict[int, frozenset[str]] = {}
    for spec in doc.rules:
        test = _always if spec.when is None else _compile_condition(spec.when, compiled)
        rule = CompiledRule(
            spec.id, spec.effect, spec.message, test, spec.obligations, spec.effective.approximate
        )
        rules.append(rule)
        reads[id(rule)] = condition_reads(spec.when) | frozenset(rule.fields).intersection(READABLE)
        for jur in expand_jurisdictions(doc, spec.jurisdictions):
            lo, hi = window_epochs(doc, spec.effective, jur)
            for action in dict.fromkeys(spec.actions):
                per_key.setdefault((action.value, jur), []).append((lo, hi, rule))
    # Many keys share the same rules (every jurisdiction under `everywhere`): build each distinct
    # segment table once.
    partner_bounds: dict[str, frozenset[int]] = {
        jur: frozenset(b for w in windows for b in (w.start, w.end) if b is not None)
        for jur, windows in compiled.jurisdiction_partners.items()
    }
    # A jurisdiction where partners come and go needs segments for every action, even one no
    # rule names: the alternatives a refusal offers change at those bounds.
    for jur in partner_bounds:
        for name in ACTIONS:
            per_key.setdefault((name, jur), [])
    shared: dict[object, Segments] = {}
    for key, entries in per_key.items():
        extra = partner_bounds.get(key[1], frozenset())
        signature = (tuple((lo, hi, id(r)) for lo, hi, r in entries), extra)
        if signature not in shared:
            shared[signature] = _segments(entries, extra)
        compiled.index[key] = shared[signature]
    ids: dict[object, int] = {}
    for key, segments in compiled.index.items():
        windows = tuple(
            (w.partner, w.start, w.end) for w in compiled.jurisdiction_partners.get(key[1], ())
        )
        klass = ids.setdefault((id(segments), windows), len(ids))
        here = [r for _, _, r in per_key[key]]
        read = frozenset().union(*(reads[id(r)] for r in here))
        compiled.classes[key] = RuleClass(
            segments[0],
            klass,
            tuple(f in read for f in READABLE),  # type: ignore[arg-type]
            any("org_id" in r.fields for r in here),
        )
    object.__setattr__(compiled, "rules", tuple(rules))
    return compiled
