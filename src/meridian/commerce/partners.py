"""The partner registry: who may sell where and when (from the bundle), and how to reach them."""

from __future__ import annotations

from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from ..audit import record
from ..errors import ForbiddenError, NotFoundError, shown
from ..identity.tokens import Caller
from ..runtime import Runtime
from ..storage.models import Partner

__all__ = ["get_partner", "list_partners", "partner_public", "set_contact"]


def partner_public(row: Partner) -> dict[str, Any]:
    return {
        "id": row.id,
        "name": row.name,
        "jurisdictions": list(row.jurisdictions),
        "effective": {
            "from": None if row.effective_from is None else row.effective_from.isoformat(),
            "until": None if row.effective_until is None else row.effective_until.isoformat(),
        },
        "status": row.status,
        "contact": row.contact,
    }


def list_partners(session: Session, *, jurisdiction: str | None = None) -> list[Partner]:
    rows = session.scalars(select(Partner).order_by(Partner.id)).all()
    if jurisdiction:
        rows = [r for r in rows if jurisdiction in r.jurisdictions]
    return list(rows)


def get_partner(session: Session, partner_id: str) -> Partner:
    row = session.get(Partner, partner_id)
    if row is None:
        raise NotFoundError(f"no partner `{shown(partner_id)}`")
    return row


def set_contact(rt: Runtime, *, caller: Caller, partner_id: str, contact: str | None) -> Partner:
    """An operator records how customers reach a partner (the bundle's sources give none)."""
    if caller.role != "operator":
        raise ForbiddenError("only an operator can change a partner's contact")
    at = rt.now()
    with rt.db.write() as session:
        row = get_partner(session, partner_id)
        row.contact = contact
        row.updated_at = at
        record(
            session,
            actor=caller.actor,
            action="partner.contact",
            subject_kind="partner",
            subject_id=row.id,
            at=at,
            bundle_digest=rt.digest,
            details={"contact": contact},
        )
    return row
