"""What the log's self-checks leave in the database: how far it was verified, what was found.

``log_verified`` (one row) is the position start-up verification reached and the root of the
tree there, so the next start-up rehashes only the entries written since. ``log_problems`` holds
every mismatch a check found, until a check of the whole log finds it whole again; while one is
open the service refuses reports, proofs and entries (:class:`~meridian.errors.LogTamperedError`).

These rows are outside the Merkle log on purpose: a log found broken cannot be trusted to record
that it is broken.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import select, update
from sqlalchemy.exc import IntegrityError

from ..clock import system_clock
from ..errors import LogTamperedError
from ..storage.database import Database
from ..storage.models import LogProblem, LogVerified

__all__ = [
    "Found",
    "Verified",
    "open_problems",
    "record_problems",
    "refusal",
    "resolve_problems",
    "save_verified",
    "verified",
]

#: the most open problems read back to show or to refuse with
_SHOWN = 20


@dataclass(frozen=True, slots=True)
class Found:
    """One mismatch: what kind, at which entry (``None`` when only a range is known), and why."""

    kind: str
    position: int | None
    message: str


@dataclass(frozen=True, slots=True)
class Verified:
    """The stored log was last verified up to ``size`` entries, whose tree has ``root``."""

    size: int
    root: bytes
    at: datetime


def verified(db: Database) -> Verified | None:
    with db.read() as session:
        row = session.get(LogVerified, 1)
    return None if row is None else Verified(row.size, bytes(row.root), row.verified_at)


def save_verified(db: Database, size: int, root: bytes) -> None:
    """Remember that the first ``size`` entries verified (never moving the position back)."""
    now = system_clock()
    try:
        with db.write() as session:
            row = session.get(LogVerified, 1, with_for_update=True)
            if row is None:
                session.add(LogVerified(id=1, size=size, root=root, verified_at=now))
            elif row.size <= size:
                row.size, row.root, row.verified_at = size, root, now
    except IntegrityError:
        pass  # another process wrote the first row at the same moment: either position is true


def open_problems(db: Database) -> list[LogProblem]:
    """The problems found and not yet resolved, first found first (at most a few)."""
    with db.read() as session:
        return list(
            session.scalars(
                select(LogProblem)
                .where(LogProblem.resolved_at.is_(None))
                .order_by(LogProblem.id)
                .limit(_SHOWN)
            )
        )


def record_problems(db: Database, found: list[Found]) -> None:
    """Add each problem not already open (same kind and position)."""
    if not found:
        return
    now = system_clock()
    with db.write() as session:
        known = {
            (row.kind, row.position)
            for row in session.scalars(select(LogProblem).where(LogProblem.resolved_at.is_(None)))
        }
        for item in found:
            if (item.kind, item.position) not in known:
                known.add((item.kind, item.position))
                session.add(
                    LogProblem(
                        found_at=now, position=item.position, kind=item.kind, message=item.message
                    )
                )


def resolve_problems(db: Database) -> int:
    """Mark every open problem resolved (a check of the whole log found it whole); how many."""
    with db.write() as session:
        result = session.execute(
            update(LogProblem)
            .where(LogProblem.resolved_at.is_(None))
            .values(resolved_at=system_clock())
        )
    return int(getattr(result, "rowcount", 0) or 0)


def refusal(messages: list[str]) -> LogTamperedError:
    """The one error reports, proofs and entries are refused with while problems are open."""
    return LogTamperedError(
        [
            f"the log failed its self-check: {message}: reports, proofs and entries are refused "
            "until the stored log is restored"
            for message in messages
        ]
    )
