"""Asking the engine before acting: build the request from what is stored and what was sent.

Every service function that changes state asks here first; a deny is recorded by the caller and
raised as :class:`~meridian.errors.DeniedError`, with the decision and its alternatives, where
each partner carries the contact the registry holds for it (:func:`with_contacts`). The decision
stays a frozen value until a door writes it out (``Decision.to_dict``).
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from .errors import DeniedError
from .policy.decision import Alternatives, Decision
from .policy.engine import Engine
from .policy.request import Request, parse_request
from .storage.models import Partner

__all__ = ["ask", "deny_message", "public_decision", "raise_denied", "with_contacts"]


def ask(
    engine: Engine,
    *,
    action: str,
    at: datetime,
    subject: dict[str, Any],
    resource: dict[str, Any] | None = None,
) -> tuple[Request, Decision]:
    """Decide ``action`` for ``subject`` at ``at``; empty values are left out of the request."""
    wire: dict[str, Any] = {
        "action": action,
        "at": at.isoformat(),
        "subject": {k: v for k, v in subject.items() if v is not None},
    }
    if resource:
        wire["resource"] = {k: v for k, v in resource.items() if v is not None}
    request = parse_request(wire)
    return request, engine.decide(request)


def with_contacts(session: Session, decision: Decision) -> Decision:
    """The decision, each alternative partner given the registry's contact when it has none."""
    partners = decision.alternatives.partners
    if not partners:
        return decision
    rows = session.execute(
        select(Partner.id, Partner.contact).where(Partner.id.in_([p.id for p in partners]))
    )
    contacts = {pid: contact for pid, contact in rows}
    reached = tuple(p._replace(contact=p.contact or contacts.get(p.id)) for p in partners)
    return decision._replace(alternatives=Alternatives(reached))


def public_decision(session: Session, decision: Decision) -> dict[str, Any]:
    """The decision's JSON form, each alternative partner given the registry's contact."""
    return with_contacts(session, decision).to_dict()


def deny_message(decision: Decision) -> str:
    """One line for a refusal: the first reason's message, or the default deny."""
    if decision.reasons:
        return decision.reasons[0].message
    if decision.errors:
        return decision.errors[0]
    return f"no rule permits `{decision.action}` here: refused by default"


def raise_denied(session: Session, decision: Decision) -> None:
    raise DeniedError(deny_message(decision), with_contacts(session, decision))
