"""Deciding: location evidence, then the rules in force, combined as Cedar combines them.

For one jurisdiction the combining rule is Cedar's:

* a forbid that matches denies, whatever permits match (forbid overrides permit);
* otherwise a permit that matches allows;
* otherwise deny (default deny).

A rule whose test raises counts as a matching forbid and is reported in ``errors``: an error
never lets a request through.

When the counting signals place a subject in several jurisdictions (``resolve: strictest``) the
request is judged under each, and it is allowed only if every one allows it.

Verdicts are memoised exactly (:meth:`Engine._verdict` says how): the memo changes what a decision
costs, never what it says.
"""

from __future__ import annotations

from bisect import bisect_right
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any, NamedTuple

from ..clock import Clock, system_clock
from ..errors import RequestError, shown
from ..geography.evidence import RESOLVERS, Evidence
from ..geography.ipgeo import IpLocator, default_locator
from ..geography.jurisdictions import UNKNOWN
from .compiled import CompiledBundle, CompiledRule, Facts, RuleClass, compile_bundle
from .decision import NO_ALTERNATIVES, Alternatives, Decision, Location, PartnerRef, Reason
from .loader import LoadedBundle, load_bundle
from .model import Resolve
from .request import OrgForm, Request, Subject, epoch_seconds, parse_request

__all__ = ["Engine", "Outcome", "evaluate"]

_COMMERCE = frozenset({"purchase", "renew"})
_UNKNOWN = (UNKNOWN,)
_MEMO_LIMIT = 1 << 16
_NOWHERE = RuleClass([], -1, (False, False, False, False, False), False)
_QUOTES_ORG_ID = object()  # memo marker: this verdict quotes the organisation code
#: ``tuple.__new__`` builds a named tuple from a ready tuple without running the class's
#: Python-level ``__new__``: about 90 ns against 200 ns on this machine, on every decision
#: (bench/decisions.py is the reason).
_new: Any = tuple.__new__


class Outcome(NamedTuple):
    """What the rules say for one candidate jurisdiction."""

    jurisdiction: str
    allowed: bool
    rules: list[CompiledRule]
    errors: list[str]


def evaluate(bundle: CompiledBundle, action: str, facts: Facts) -> Outcome:
    """Apply the rules in force for ``action`` in ``facts.jurisdiction`` at ``facts.epoch``."""
    forbids, permits = bundle.segment(action, facts.jurisdiction, facts.epoch)
    fired: list[CompiledRule] = []
    errors: list[str] = []
    for rule in forbids:
        try:
            if rule.test(facts):
                fired.append(rule)
        except Exception as exc:  # noqa: BLE001 - any failure of a rule is a forbid, never an allow
            fired.append(rule)
            errors.append(f"rule `{rule.id}` failed to evaluate: {exc!r}")
    permitted: list[CompiledRule] = []
    for rule in permits:
        try:
            if rule.test(facts):
                permitted.append(rule)
        except Exception as exc:  # noqa: BLE001 - an erroring permit counts as a forbid
            fired.append(rule)
            errors.append(f"rule `{rule.id}` failed to evaluate: {exc!r}")
    # The combining rule, as Cedar's:
    if fired:
        return Outcome(facts.jurisdiction, False, fired, errors)  # a forbid overrides any permit
    if permitted:
        return Outcome(facts.jurisdiction, True, permitted, errors)  # a permit and no forbid
    return Outcome(facts.jurisdiction, False, [], errors)  # nothing permits: default deny


class Verdict(NamedTuple):
    """A decision under one jurisdiction, ready to become (part of) a :class:`Decision`."""

    jurisdiction: str
    allowed: bool
    reasons: tuple[Reason, ...]
    obligations: tuple[str, ...]
    alternatives: Alternatives
    errors: tuple[str, ...]


class Core(NamedTuple):
    """What the rules say for one class of jurisdictions, before the reasons are worded."""

    allowed: bool
    rules: tuple[CompiledRule, ...]
    obligations: tuple[str, ...]
    alternatives: Alternatives
    errors: tuple[str, ...]
    values: tuple[str, str, str, str]  # plan, channel, partner and uscc, as the rules read them


class Engine:
    """Decides requests against one compiled bundle.

    ``clock`` supplies "now" for requests without ``at`` (set it to replay a past day);
    ``locator`` turns IP addresses into countries.
    """

    def __init__(
        self,
        bundle: LoadedBundle | CompiledBundle | None = None,
        *,
        locator: IpLocator | None = None,
        clock: Clock = system_clock,
    ) -> None:
        if bundle is None:
            bundle = load_bundle()
        self.bundle = bundle if isinstance(bundle, CompiledBundle) else compile_bundle(bundle)
        self.locator = locator if locator is not None else default_locator()
        self.clock = clock
        self._memo: dict[tuple[object, ...], object] = {}
        self._cores: dict[tuple[object, ...], Core] = {}
        self._classes = self.bundle.classes
        self._ref = self.bundle.ref
        self._plans = self.bundle.plans
        self._channels = self.bundle.channels
        self._signals = {
            action: (tuple(RESOLVERS[s] for s in rule.signals), rule.resolve is Resolve.FIRST)
            for action, rule in self.bundle.location.items()
        }

    def forget(self) -> None:
        """Empty both memos. Decisions stay the same; only their cost changes (benchmarks use it)."""
        self._memo.clear()
        self._cores.clear()

    # -- request checks against the catalogue -------------------------------------------------

    def check(self, request: Request) -> None:
        """Refuse a request whose plan or channel the bundle's catalogue does not know, or whose
        partner does not go with its channel.

        A partner the catalogue does not list is not malformed: it is a partner nobody
        authorised, and the rules refuse it (``partner_authorised`` is false for it) with a reason
        that names it. Runs on every decision, before any memo: a memo hit must never let bad
        input through.
        """
        subject, resource = request.subject, request.resource
        plan, channel, partner = subject.plan, resource.channel, resource.partner
        if (
            (plan is None or plan in self._plans)
            and (channel is None or channel in self._channels)
            and (
                (partner is None and channel != "partner")
                or (channel == "partner" and partner is not None)
            )
        ):
            return
        bundle = self.bundle
        if plan is not None and plan not in bundle.plans:
            raise RequestError(
                f"request: unknown plan `{shown(plan)}`: expected one of {', '.join(sorted(bundle.plans))}"
            )
        if channel is not None and channel not in bundle.channels:
            raise RequestError(
                f"request: unknown channel `{shown(channel)}`: expected one of {', '.join(sorted(bundle.channels))}"
            )
        if partner is None:
            raise RequestError(
                "request: `resource.partner` is required when `resource.channel` is `partner`"
            )
        raise RequestError(
            f"request: `resource.partner` is `{shown(partner)}` but `resource.channel` is `{shown(channel)}`: a partner goes with channel `partner`"
        )

    def _values(self, request: Request) -> tuple[str, str, str, str, str]:
        """Plan, channel, partner, USCC status and code as the rules read them (absent: a word)."""
        subject, resource = request.subject, request.resource
        return (
            subject.plan if subject.plan is not None else "free",
            resource.channel if resource.channel is not None else "none",
            resource.partner if resource.partner is not None else "none",
            self.bundle.uscc_status(subject.org_form, subject.org_id),
            subject.org_id or "",
        )

    # -- location -----------------------------------------------------------------------------

    def locate(self, request: Request) -> tuple[tuple[Evidence, ...], tuple[str, ...]]:
        """The evidence the action counts, and the jurisdictions the subject is judged under."""
        signals, first = self._signals[request.action]
        subject = request.subject
        locator = self.locator
        evidence: list[Evidence] = []
        countries: list[str] = []
        for resolve in signals:
            found = resolve(subject, locator)
            if found is not None:
                evidence.append(found)
                country = found[2]
                if country is not None and country not in countries:
                    countries.append(country)
        if not countries:
            return tuple(evidence), _UNKNOWN
        if first or len(countries) == 1:
            return tuple(evidence), (countries[0],)
        return tuple(evidence), tuple(countries)

    def facts(self, request: Request, *, epoch: int | None = None) -> list[Facts]:
        """The facts the rules read, one :class:`Facts` per jurisdiction the subject is judged under.

        This is the input every engine compared in the Cedar differential test and the decision
        benchmark receives: location resolution is Meridian's, rule evaluation is each engine's.
        """
        if epoch is None:
            epoch = request.epoch if request.epoch is not None else epoch_seconds(self.clock())
        self.check(request)
        plan, channel, partner, uscc, org_id = self._values(request)
        _, candidates = self.locate(request)
        kind = request.subject.type
        return [Facts(j, epoch, kind, plan, channel, partner, uscc, org_id) for j in candidates]

    # -- deciding -----------------------------------------------------------------------------

    def decide(self, request: Request | Mapping[str, Any]) -> Decision:
        """Decide one request (a parsed :class:`Request` or its wire form as a mapping)."""
        if type(request) is not Request:
            request = parse_request(dict(request) if isinstance(request, Mapping) else request)
        epoch = request.epoch
        at = request.at
        if epoch is None or at is None:
            at = self.clock().astimezone(UTC)
            epoch = epoch_seconds(at)
        self.check(request)
        action = request.action
        try:
            evidence, candidates = self.locate(request)
        except Exception as exc:  # noqa: BLE001 - a failed look-up must refuse, never guess
            return self._unlocated(action, at, exc)
        if len(candidates) == 1:
            v = self._verdict(request, action, candidates[0], epoch)
            # Built with tuple.__new__ on ready tuples: see _new.
            return _new(  # type: ignore[no-any-return]
                Decision,
                (
                    "allow" if v.allowed else "deny",
                    action,
                    v.reasons,
                    v.obligations,
                    _new(Location, (v.jurisdiction, evidence, candidates)),
                    v.alternatives,
                    self._ref,
                    at,
                    v.errors,
                ),
            )
        verdicts = [self._verdict(request, action, j, epoch) for j in candidates]
        # Allowed only if allowed under every jurisdiction. The deciding rules are those of the
        # jurisdictions that refused, or of all of them when none did. Reasons never repeat
        # across verdicts: each names its own jurisdiction.
        denied = [v for v in verdicts if not v.allowed]
        deciding = denied or verdicts
        reasons: tuple[Reason, ...] = ()
        errors: tuple[str, ...] = ()
        partners: tuple[PartnerRef, ...] = ()
        obligations: tuple[str, ...] = ()
        for v in deciding:
            reasons += v.reasons
            errors += v.errors
            partners += v.alternatives.partners
            obligations += v.obligations
        return Decision(
            "deny" if denied else "allow",
            action,
            reasons,
            tuple(dict.fromkeys(obligations)) if len(obligations) > 1 else obligations,
            Location(deciding[0].jurisdiction, evidence, candidates),
            Alternatives(tuple(dict.fromkeys(partners))) if partners else NO_ALTERNATIVES,
            self.bundle.ref,
            at,
            errors,
        )

    def _unlocated(self, action: str, at: datetime, exc: Exception) -> Decision:
        """The refusal when location evidence could not be read (a broken GeoIP database, say)."""
        return Decision(
            "deny",
            action,
            (),
            (),
            Location(UNKNOWN, (), _UNKNOWN),
            NO_ALTERNATIVES,
            self._ref,
            at,
            (f"location evidence could not be read: {exc!r}",),
        )

    def _verdict(self, request: Request, action: str, jurisdiction: str, epoch: int) -> Verdict:
        """The verdict for one jurisdiction, from a memo when the same facts were judged before.

        Two memos, both exact. A key holds every input the verdict depends on: the action, the
        segment of time (within which no rule and no partner window changes), and each fact the
        rules here read — type, plan, channel, partner, the organisation code's status — with
        ``None`` for the facts no rule here reads (see :class:`RuleClass`).

        * The verdict memo adds the jurisdiction: a hit is the finished verdict, reasons worded.
        * The core memo adds the jurisdiction's class instead: a hit gives the rules' outcome,
          and only the reasons are worded anew. Most of the world shares one class.

        The organisation code's text is read by no condition, only quoted by some messages: a
        verdict that quotes it is kept under a key that adds the code, behind a marker. A request
        the catalogue refuses never gets here (:meth:`check`), and an outcome with rule errors is
        never kept.
        """
        subject = request.subject
        resource = request.resource
        placed = self._classes.get((action, jurisdiction))
        if placed is None:
            placed = _NOWHERE  # no rule and no partner here: nothing varies with time or facts
        segment = bisect_right(placed.bounds, epoch)
        by_type, by_plan, by_channel, by_partner, by_uscc = placed.reads
        org: object = None
        if by_uscc:
            form = subject.org_form
            org = (
                form
                if form is OrgForm.ABSENT or form is OrgForm.VALID
                else self.bundle.uscc_status(form, subject.org_id)
            )
        key: tuple[object, ...] = (
            action,
            jurisdiction,
            segment,
            subject.type if by_type else None,
            subject.plan if by_plan else None,
            resource.channel if by_channel else None,
            resource.partner if by_partner else None,
            org,
        )
        memo = self._memo
        found = memo.get(key)
        quoted = found is _QUOTES_ORG_ID
        if quoted:
            key = (*key, subject.org_id)
            found = memo.get(key)
        if found is not None:
            return found  # type: ignore[return-value]
        core_key = (action, placed.klass, *key[2:8])
        core = self._cores.get(core_key)
        if core is None:
            core = self._judge(request, action, jurisdiction, epoch)
            if core.errors:
                return self._word(core, jurisdiction, epoch, subject)
            if len(self._cores) >= _MEMO_LIMIT:
                self._cores.clear()
            self._cores[core_key] = core
        verdict = self._word(core, jurisdiction, epoch, subject)
        if len(memo) >= _MEMO_LIMIT:
            memo.clear()
        if not quoted and placed.quotes_org_id and any("org_id" in r.fields for r in core.rules):
            memo[key] = _QUOTES_ORG_ID
            key = (*key, subject.org_id)
        memo[key] = verdict
        return verdict

    def _word(self, core: Core, jurisdiction: str, epoch: int, subject: Subject) -> Verdict:
        """A core outcome as a verdict for ``jurisdiction``: its reasons worded for it."""
        facts = Facts(jurisdiction, epoch, subject.type, *core.values, subject.org_id or "")
        reasons = tuple([rule.reason(facts) for rule in core.rules])
        return Verdict(
            jurisdiction, core.allowed, reasons, core.obligations, core.alternatives, core.errors
        )

    def _judge(self, request: Request, action: str, jurisdiction: str, epoch: int) -> Core:
        """Apply the rules for ``jurisdiction``: the outcome, before any wording."""
        plan, channel, partner, uscc, org_id = self._values(request)
        facts = Facts(
            jurisdiction, epoch, request.subject.type, plan, channel, partner, uscc, org_id
        )
        outcome = evaluate(self.bundle, action, facts)
        alternatives = NO_ALTERNATIVES
        obligations: tuple[str, ...] = ()
        if outcome.allowed:
            obligations = tuple(
                dict.fromkeys(o for rule in outcome.rules for o in rule.obligations)
            )
        elif action in _COMMERCE:
            partners = self.bundle.authorised_partners(jurisdiction, epoch)
            if partners:
                alternatives = Alternatives(partners)
        return Core(
            outcome.allowed,
            tuple(outcome.rules),
            obligations,
            alternatives,
            tuple(outcome.errors),
            (plan, channel, partner, uscc),
        )
