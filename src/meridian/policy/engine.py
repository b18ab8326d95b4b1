"""Deciding: location evidence, then the rules in force, combined as Cedar combines them.

For one jurisdiction the combining rule is Cedar's:

* a forbid that matches denies, whatever permits match (forbid overrides permit);
* otherwise a permit that matches allows;
* otherwise deny (default deny).

A rule whose test raises counts as a matching forbid and is reported in ``errors``: an error
never lets a request through.

When the counting signals place a subject in several jurisdictions (``resolve: strictest``) the
request is judged under each, and it is allowed only if every one allows it.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from typing import Any

from ..errors import RequestError
from ..geography.evidence import Evidence, Signal, resolve_signal
from ..geography.ipgeo import IpLocator, default_locator
from ..geography.jurisdictions import UNKNOWN
from .compiled import CompiledBundle, CompiledRule, Facts, compile_bundle
from .decision import NO_ALTERNATIVES, Alternatives, Decision, Location, Reason
from .loader import LoadedBundle, load_bundle
from .model import Resolve
from .request import Request, epoch_seconds, parse_request

__all__ = ["Clock", "Engine", "Outcome", "evaluate", "system_clock"]

Clock = Callable[[], datetime]

_COMMERCE = frozenset({"purchase", "renew"})


def system_clock() -> datetime:
    """The wall clock, in UTC."""
    return datetime.now(UTC)


class Outcome:
    """What the rules say for one candidate jurisdiction."""

    __slots__ = ("allowed", "errors", "jurisdiction", "rules")

    def __init__(self, jurisdiction: str, allowed: bool, rules: list[CompiledRule], errors: list[str]) -> None:
        self.jurisdiction = jurisdiction
        self.allowed = allowed
        self.rules = rules
        self.errors = errors


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
    if fired:
        return Outcome(facts.jurisdiction, False, fired, errors)  # forbid overrides permit
    if permitted:
        return Outcome(facts.jurisdiction, True, permitted, errors)  # some permit, no forbid
    return Outcome(facts.jurisdiction, False, [], errors)  # nothing permits: default deny


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

    # -- request checks against the catalogue -------------------------------------------------

    def _facts_template(self, request: Request) -> tuple[str, str, str, str, str]:
        bundle = self.bundle
        subject, resource = request.subject, request.resource
        plan = subject.plan if subject.plan is not None else "free"
        if plan not in bundle.plans:
            raise RequestError(f"request: unknown plan `{plan}`: expected one of {', '.join(sorted(bundle.plans))}")
        channel = resource.channel
        if channel is None:
            channel = "none"
        elif channel not in bundle.channels:
            raise RequestError(f"request: unknown channel `{channel}`: expected one of {', '.join(sorted(bundle.channels))}")
        partner = resource.partner
        if partner is None:
            if channel == "partner":
                raise RequestError("request: `resource.partner` is required when `resource.channel` is `partner`")
            partner = "none"
        elif partner not in bundle.partners:
            raise RequestError(f"request: unknown partner `{partner}`: expected one of {', '.join(sorted(bundle.partners))}")
        elif channel != "partner":
            raise RequestError(f"request: `resource.partner` is `{partner}` but `resource.channel` is `{channel}`: a partner goes with channel `partner`")
        uscc = bundle.uscc_status(subject.org_form, subject.org_id)
        return plan, channel, partner, uscc, subject.org_id or ""

    # -- location -----------------------------------------------------------------------------

    def locate(self, request: Request) -> tuple[tuple[Evidence, ...], tuple[str, ...]]:
        """The evidence the action counts, and the jurisdictions the subject is judged under."""
        rule = self.bundle.location[request.action]
        evidence: list[Evidence] = []
        for signal in rule.signals:
            found = resolve_signal(signal, request.subject, self.locator)
            if found is not None:
                evidence.append(found)
        countries = [e.country for e in evidence if e.country is not None]
        if not countries:
            return tuple(evidence), (UNKNOWN,)
        if rule.resolve is Resolve.FIRST:
            return tuple(evidence), (countries[0],)
        return tuple(evidence), tuple(dict.fromkeys(countries))

    def facts(self, request: Request, *, epoch: int | None = None) -> list[Facts]:
        """The facts the rules read, one :class:`Facts` per jurisdiction the subject is judged under.

        This is the input every engine compared in the Cedar differential test and the decision
        benchmark receives: location resolution is Meridian's, rule evaluation is each engine's.
        """
        if epoch is None:
            epoch = request.epoch if request.epoch is not None else epoch_seconds(self.clock())
        plan, channel, partner, uscc, org_id = self._facts_template(request)
        _, candidates = self.locate(request)
        kind = request.subject.type
        return [Facts(j, epoch, kind, plan, channel, partner, uscc, org_id) for j in candidates]

    # -- deciding -----------------------------------------------------------------------------

    def decide(self, request: Request | Mapping[str, Any]) -> Decision:
        """Decide one request (a parsed :class:`Request` or its wire form as a mapping)."""
        if not isinstance(request, Request):
            request = parse_request(dict(request))
        if request.epoch is None or request.at is None:
            at = self.clock().astimezone(UTC)
            epoch = epoch_seconds(at)
        else:
            at, epoch = request.at, request.epoch
        plan, channel, partner, uscc, org_id = self._facts_template(request)
        evidence, candidates = self.locate(request)
        action = request.action.value
        bundle = self.bundle
        kind = request.subject.type
        outcomes = [
            evaluate(bundle, action, Facts(j, epoch, kind, plan, channel, partner, uscc, org_id))
            for j in candidates
        ]
        return self._combine(action, at, epoch, evidence, candidates, outcomes, kind, plan, channel, partner, uscc, org_id)

    def _combine(
        self,
        action: str,
        at: datetime,
        epoch: int,
        evidence: tuple[Evidence, ...],
        candidates: tuple[str, ...],
        outcomes: list[Outcome],
        *fields: str,
    ) -> Decision:
        denied = [o for o in outcomes if not o.allowed]
        deciding = denied or outcomes
        reasons: list[Reason] = []
        seen: set[tuple[str, str]] = set()
        obligations: dict[str, None] = {}
        errors: list[str] = []
        for outcome in deciding:
            facts = Facts(outcome.jurisdiction, epoch, *fields)
            for rule in outcome.rules:
                if (rule.id, outcome.jurisdiction) not in seen:
                    seen.add((rule.id, outcome.jurisdiction))
                    reasons.append(rule.reason(facts))
                    if not denied:
                        obligations.update(dict.fromkeys(rule.obligations))
            errors.extend(outcome.errors)
        country = deciding[0].jurisdiction
        alternatives = NO_ALTERNATIVES
        if denied and action in _COMMERCE:
            partners = tuple(
                dict.fromkeys(p for o in denied for p in self.bundle.authorised_partners(o.jurisdiction, epoch))
            )
            if partners:
                alternatives = Alternatives(partners)
        return Decision(
            decision="deny" if denied else "allow",
            action=action,
            reasons=tuple(reasons),
            obligations=tuple(obligations),
            location=Location(country, evidence, candidates),
            alternatives=alternatives,
            bundle=self.bundle.ref,
            at=at,
            errors=tuple(errors),
        )
