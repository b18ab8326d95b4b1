"""What a refused person can do instead, worked out from the rules that refused them.

Advice is derived, never tabled: each refusing rule is read for the facts it tests, and the same
compiled bundle is asked what it still allows the person where they were judged to be. Nothing
here reads the database or the clock: the caller passes the refusal, the request that was refused,
the bundle that refused it, the ``join`` decision for the same evidence (:func:`join_request`
builds that request) and the contacts the partner registry holds.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from ..geography.jurisdictions import UNKNOWN, jurisdiction_name
from .compiled import CompiledBundle, condition_reads
from .decision import Decision, PartnerRef
from .request import Request, Subject

__all__ = ["Advice", "AdviceKind", "join_request", "signup_advice"]

_PLURAL = {"organization": "organisations", "individual": "individuals"}


class AdviceKind(StrEnum):
    """What a piece of advice is about."""

    LOCATE = "locate"  #: the request placed the person nowhere: say and show where they are
    ORG_ID = "org_id"  #: a rule tests the organisation's code: give it as the licence shows it
    OTHER_TYPE = "other_type"  #: a rule tests the applicant's type: the other type may sign up
    RULE = "rule"  #: a rule refuses it outright; nothing to change
    JOIN = "join"  #: joining meetings as a participant stays open
    PARTNERS = "partners"  #: partners authorised in the jurisdiction can register and sell


@dataclass(frozen=True, slots=True)
class Advice:
    """One thing a refused person can do instead, as a sentence and as data."""

    kind: AdviceKind
    text: str
    jurisdiction: str | None = None
    rule: str | None = None
    #: for :attr:`AdviceKind.PARTNERS`, the partners, each with the contact to reach it
    partners: tuple[PartnerRef, ...] = ()

    def to_dict(self) -> dict[str, Any]:
        """The public JSON form (fields may be added over time, never renamed)."""
        return {
            "kind": self.kind.value,
            "text": self.text,
            "jurisdiction": self.jurisdiction,
            "rule": self.rule,
            "partners": [p.to_dict() for p in self.partners],
        }


def join_request(request: Request) -> Request:
    """The ``join`` request for the same person, evidence and instant as ``request``."""
    s = request.subject
    return Request(
        action="join",
        subject=Subject(type=s.type, country=s.country, ip=s.ip),
        at=request.at,
        epoch=request.epoch,
    )


def _rules_read(bundle: CompiledBundle, action: str, jurisdiction: str, epoch: int) -> set[str]:
    """The facts read by the rules in force for ``action`` in ``jurisdiction`` at ``epoch``."""
    specs = {r.id: r for r in bundle.document.rules}
    forbids, permits = bundle.segment(action, jurisdiction, epoch)
    reads: set[str] = set()
    for rule in (*forbids, *permits):
        spec = specs.get(rule.id)
        if spec is not None:
            reads |= condition_reads(spec.when)
    return reads


def _for_reason(
    bundle: CompiledBundle, *, rule: str, where: str, reads: frozenset[str], type: str, epoch: int
) -> Advice:
    if where == UNKNOWN:
        return Advice(
            AdviceKind.LOCATE,
            "Say which country you are in, and sign up from a connection that shows it: "
            "a private or unlisted address places you nowhere, and Meridian does not guess.",
            where,
            rule,
        )
    if "uscc" in reads:
        return Advice(
            AdviceKind.ORG_ID,
            "Give the organisation's Unified Social Credit Code exactly as on its business "
            "licence: 18 characters, digits and capital letters without I, O, S, V or Z, the "
            "last one a check character.",
            where,
            rule,
        )
    if "type" in reads:
        other = "organization" if type == "individual" else "individual"
        text = f"Sign-ups in {jurisdiction_name(where)} are for {_PLURAL[other]}: "
        if other == "organization":
            text += "register the organisation you work for"
            if "uscc" in _rules_read(bundle, "register", where, epoch):
                text += (
                    ", with its Unified Social Credit Code (the 18 characters on its "
                    "business licence)"
                )
            text += "."
        else:
            text += "sign up in your own name."
        return Advice(AdviceKind.OTHER_TYPE, text, where, rule)
    return Advice(
        AdviceKind.RULE,
        f"The rule `{rule}` refuses this in {jurisdiction_name(where)}.",
        where,
        rule,
    )


def signup_advice(
    decision: Decision,
    request: Request,
    bundle: CompiledBundle,
    *,
    join: Decision | None = None,
    contacts: Mapping[str, str | None] | None = None,
) -> tuple[Advice, ...]:
    """What a refused applicant can do instead, in the order a person should read it.

    Each refusing rule is read for what it tests: a rule on the organisation's code means the code
    is what to fix (the most specific fact: such a rule tests the type too); a rule on the
    applicant's type alone means the other type may sign up; a refusal for want of a location
    means the request placed the person nowhere. Then what is still open where they were judged
    to be: joining meetings (when ``join``, the decision for :func:`join_request`, allows it) and
    the partners ``bundle`` authorises there, each with its contact from the bundle or, failing
    that, from ``contacts``. A refusal no rule explains (the default deny) gets no advice.
    """
    epoch = request.epoch if request.epoch is not None else 0
    specs = {r.id: r for r in bundle.document.rules}
    out: list[Advice] = []
    places: list[str] = []
    for reason in decision.reasons:
        if reason.effect != "forbid":
            continue
        spec = specs.get(reason.rule)
        reads = condition_reads(spec.when) if spec is not None else frozenset()
        where = reason.jurisdiction
        advice = _for_reason(
            bundle,
            rule=reason.rule,
            where=where,
            reads=reads,
            type=request.subject.type,
            epoch=epoch,
        )
        if all(a.text != advice.text for a in out):
            out.append(advice)
        if where != UNKNOWN and where not in places:
            places.append(where)
    if not out:
        return ()
    if join is not None and join.allowed:
        out.append(
            Advice(
                AdviceKind.JOIN,
                "You can still join meetings you are invited to as a participant, without an "
                "account.",
            )
        )
    known = contacts or {}
    for where in places:
        partners = tuple(
            p._replace(contact=p.contact or known.get(p.id))
            for p in bundle.authorised_partners(where, epoch)
        )
        if partners:
            names = ", ".join(p.name + (f" ({p.contact})" if p.contact else "") for p in partners)
            out.append(
                Advice(
                    AdviceKind.PARTNERS,
                    f"Partners authorised in {jurisdiction_name(where)} can register an "
                    f"organisation and sell it a plan: {names}.",
                    where,
                    partners=partners,
                )
            )
    return tuple(out)
