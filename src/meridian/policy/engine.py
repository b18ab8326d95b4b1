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
from typing import Any, NamedTuple

from ..errors import RequestError
from ..geography.evidence import RESOLVERS, Evidence
from ..geography.ipgeo import IpLocator, default_locator
from ..geography.jurisdictions import UNKNOWN
from .compiled import CompiledBundle, CompiledRule, Facts, compile_bundle
from .decision import NO_ALTERNATIVES, Alternatives, Decision, Location, PartnerRef, Reason
from .loader import LoadedBundle, load_bundle
from .model import Resolve
from .request import OrgForm, Request, epoch_seconds, parse_request

__all__ = ["Clock", "Engine", "Outcome", "evaluate", "system_clock"]

Clock = Callable[[], datetime]

_COMMERCE = frozenset({"purchase", "renew"})
_UNKNOWN = (UNKNOWN,)
_MEMO_LIMIT = 1 << 16
_QUOTES_ORG_ID = object()  # memo marker: this verdict quotes the organisation code


def system_clock() -> datetime:
    """The wall clock, in UTC."""
    return datetime.now(UTC)


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
        except Exception as exc:
            fired.append(rule)
            errors.append(f"rule `{rule.id}` failed to evaluate: {exc!r}")
    permitted: list[CompiledRule] = []
    for rule in permits:
        try:
            if rule.test(facts):
                permitted.append(rule)
        except Exception as exc:
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
        self._quoting = frozenset(r.id for r in self.bundle.rules if "org_id" in r.fields)
        self._signals = {
            action: (tuple(RESOLVERS[s] for s in rule.signals), rule.resolve is Resolve.FIRST)
            for action, rule in self.bundle.location.items()
        }

    # -- request checks against the catalogue -------------------------------------------------

    def _facts_template(self, request: Request) -> tuple[str, str, str, str, str]:
        bundle = self.bundle
        subject, resource = request.subject, request.resource
        plan = subject.plan if subject.plan is not None else "free"
        if plan not in bundle.plans:
            raise RequestError(
                f"request: unknown plan `{plan}`: expected one of {', '.join(sorted(bundle.plans))}"
            )
        channel = resource.channel
        if channel is None:
            channel = "none"
        elif channel not in bundle.channels:
            raise RequestError(
                f"request: unknown channel `{channel}`: expected one of {', '.join(sorted(bundle.channels))}"
            )
        partner = resource.partner
        if partner is None:
            if channel == "partner":
                raise RequestError(
                    "request: `resource.partner` is required when `resource.channel` is `partner`"
                )
            partner = "none"
        elif partner not in bundle.partners:
            raise RequestError(
                f"request: unknown partner `{partner}`: expected one of {', '.join(sorted(bundle.partners))}"
            )
        elif channel != "partner":
            raise RequestError(
                f"request: `resource.partner` is `{partner}` but `resource.channel` is `{channel}`: a partner goes with channel `partner`"
            )
        uscc = bundle.uscc_status(subject.org_form, subject.org_id)
        return plan, channel, partner, uscc, subject.org_id or ""

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
                if found.country is not None and found.country not in countries:
                    countries.append(found.country)
        if not countries:
            return tuple(evidence), _UNKNOWN
        if first:
            return tuple(evidence), (countries[0],)
        return tuple(evidence), tuple(countries)

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
        if type(request) is not Request:
            request = parse_request(dict(request))  # type: ignore[arg-type]
        epoch = request.epoch
        at = request.at
        if epoch is None or at is None:
            at = self.clock().astimezone(UTC)
            epoch = epoch_seconds(at)
        evidence, candidates = self.locate(request)
        action = request.action
        if len(candidates) == 1:
            verdict = self._verdict(request, action, candidates[0], epoch)
            return Decision(
                "allow" if verdict.allowed else "deny",
                action,
                verdict.reasons,
                verdict.obligations,
                Location(verdict.jurisdiction, evidence, candidates),
                verdict.alternatives,
                self.bundle.ref,
                at,
                verdict.errors,
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

    def _verdict(self, request: Request, action: str, jurisdiction: str, epoch: int) -> Verdict:
        """The verdict for one jurisdiction, from the memo when the same facts were judged before.

        The memo is exact: its key holds every input a verdict depends on — the action, the
        jurisdiction, the segment of time (within which no rule and no partner window changes),
        and every fact the rules read. The organisation code's text is not a fact any condition
        reads, only a value some messages quote: when a verdict quotes it, the first key holds a
        marker and the verdict is kept under a second key that adds the code. A request the
        catalogue refuses never reaches the memo, and a verdict with rule errors is never kept.
        """
        subject = request.subject
        resource = request.resource
        form = subject.org_form
        bundle = self.bundle
        key: tuple[object, ...] = (
            action,
            jurisdiction,
            bundle.segment_number(action, jurisdiction, epoch),
            subject.type,
            subject.plan,
            resource.channel,
            resource.partner,
            form
            if form is OrgForm.ABSENT or form is OrgForm.VALID
            else bundle.uscc_status(form, subject.org_id),
        )
        memo = self._memo
        found = memo.get(key)
        if found is _QUOTES_ORG_ID:
            key = (*key, subject.org_id)
            found = memo.get(key)
        if found is not None:
            return found  # type: ignore[return-value]
        verdict = self._judge(request, action, jurisdiction, epoch)
        if not verdict.errors:
            if len(memo) >= _MEMO_LIMIT:
                memo.clear()
            if any(r.rule in self._quoting for r in verdict.reasons) and len(key) == 8:
                memo[key] = _QUOTES_ORG_ID
                key = (*key, subject.org_id)
            memo[key] = verdict
        return verdict

    def _judge(self, request: Request, action: str, jurisdiction: str, epoch: int) -> Verdict:
        plan, channel, partner, uscc, org_id = self._facts_template(request)
        facts = Facts(
            jurisdiction, epoch, request.subject.type, plan, channel, partner, uscc, org_id
        )
        outcome = evaluate(self.bundle, action, facts)
        reasons = tuple(rule.reason(facts) for rule in outcome.rules)
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
        return Verdict(
            jurisdiction, outcome.allowed, reasons, obligations, alternatives, tuple(outcome.errors)
        )
