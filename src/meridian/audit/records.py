"""Writing the record: the one function every decision and state change goes through.

:func:`record` adds an entry to the session the change itself is written in, so the entry and
the change commit together or not at all. The tamper-evident log replaces this module's body and
nothing else: callers pass the same values.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy.orm import Session

from ..clock import system_clock
from ..policy.decision import Decision
from ..storage.models import Record

__all__ = ["SYSTEM", "Actor", "record"]


@dataclass(frozen=True, slots=True)
class Actor:
    """Who acted: a token's role and id (``operator:tok_…``), an account, or Meridian itself."""

    role: str
    id: str

    def __str__(self) -> str:
        return f"{self.role}:{self.id}"


SYSTEM = Actor("system", "meridian")


def record(
    session: Session,
    *,
    actor: Actor,
    action: str,
    subject_kind: str,
    subject_id: str | None,
    at: datetime,
    bundle_digest: str,
    decision: Decision | None = None,
    details: dict[str, Any] | None = None,
) -> Record:
    """Add one entry to the record in ``session`` (committed with the caller's change)."""
    entry = Record(
        at=at,
        recorded_at=system_clock(),
        actor=str(actor),
        action=action,
        subject_kind=subject_kind,
        subject_id=subject_id,
        bundle_digest=bundle_digest,
        decision=None if decision is None else decision.to_dict(),
        details=details or {},
    )
    session.add(entry)
    return entry
