"""Writing the record: the one function every decision and state change goes through.

:func:`record` adds an entry to the transaction the change itself is written in, so the entry
and the change commit together or not at all. The entry becomes part of the Merkle log when that
transaction commits: :func:`assign_positions` (run by :class:`~meridian.storage.database.Database`
just before each commit) takes the next positions from the one ``log_head`` row, which locks it
until the commit ends. Positions are thus handed out in commit order, under one lock, with no gap
(a rolled-back transaction gives its positions back) and no duplicate (the primary key).

Taking the lock last, at commit, and not when :func:`record` is called, keeps a transaction from
holding the log's lock while it waits for another row — two writers locking the same account
and the log in opposite orders would otherwise deadlock on PostgreSQL. On SQLite every write
transaction holds the database's write lock from its start (``BEGIN IMMEDIATE``) anyway.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any, Protocol

from sqlalchemy import insert, update
from sqlalchemy.orm import Session

from ..clock import system_clock
from ..errors import ConfigurationError
from ..storage import Database
from ..storage.models import LogHead, Record
from .entry import entry_bytes, entry_object
from .merkle import leaf_hash

__all__ = [
    "LOG_MARK",
    "SYSTEM",
    "Actor",
    "Recorded",
    "assign_positions",
    "attach_log",
    "discard_pending",
    "record",
    "unwritten",
]

#: the mark :func:`attach_log` leaves on a database (``Database.marks``)
LOG_MARK = "meridian.audit.log"

#: where :func:`record` keeps a transaction's entries until it commits
_PENDING = "meridian.log.pending"


@dataclass(frozen=True, slots=True)
class Actor:
    """Who acted: a token's role and id (``operator:tok_…``), an account, or Meridian itself."""

    role: str
    id: str

    def __str__(self) -> str:
        return f"{self.role}:{self.id}"


SYSTEM = Actor("system", "meridian")


class Recorded(Protocol):
    """What a log entry carries of a decision: its plain-JSON form (``policy.Decision`` is one)."""

    def to_dict(self) -> dict[str, Any]: ...


def attach_log(db: Database) -> Database:
    """Make ``db``'s write transactions write the log entries :func:`record` adds, as they
    commit (and forget them on rollback); a read transaction holding entries is refused.

    :class:`meridian.runtime.Runtime` calls this for its database; so must anything else that
    builds a :class:`~meridian.storage.Database` and records on it.
    """
    db.attach(
        before_commit=assign_positions,
        after_rollback=discard_pending,
        unwritten=unwritten,
        mark=LOG_MARK,
    )
    return db


def record(
    session: Session,
    *,
    actor: Actor,
    action: str,
    subject_kind: str,
    subject_id: str | None,
    at: datetime,
    bundle_digest: str,
    decision: Recorded | None = None,
    details: dict[str, Any] | None = None,
) -> None:
    """Add one entry to the log in ``session``'s transaction (committed with the caller's change).

    The entry's bytes are fixed here; its position is given at commit. An entry that is not
    plain JSON raises :class:`~meridian.errors.InputError`, and the caller's change with it.
    """
    kind = session.info.get(LOG_MARK)
    if kind != "write":
        # an entry added where no commit would write it would be lost without a word
        raise ConfigurationError(
            "an action was recorded in a read-only transaction"
            if kind == "read"
            else "an action was recorded on a database the log is not attached to "
            "(audit.records.attach_log)"
        )
    recorded_at = system_clock()
    who = str(actor)
    data = entry_bytes(
        entry_object(
            at=at,
            recorded_at=recorded_at,
            actor=who,
            action=action,
            subject_kind=subject_kind,
            subject_id=subject_id,
            bundle_digest=bundle_digest,
            decision=None if decision is None else decision.to_dict(),
            details=details or {},
        )
    )
    session.info.setdefault(_PENDING, []).append(
        {
            "at": at,
            "recorded_at": recorded_at,
            "actor": who,
            "action": action,
            "subject_kind": subject_kind,
            "subject_id": subject_id,
            "bundle_digest": bundle_digest,
            "entry": data,
            "leaf": leaf_hash(data),
        }
    )


def assign_positions(session: Session) -> None:
    """Give the transaction's entries their log positions and insert them (before commit).

    One UPDATE of the head takes the lock and the positions; one multi-row INSERT (Core, not
    the ORM: a third of the cost per entry, bench/audit.py) writes the entries.
    """
    rows: list[dict[str, Any]] = session.info.pop(_PENDING, [])
    if not rows:
        return
    size = session.execute(
        update(LogHead)
        .where(LogHead.id == 1)
        .values(size=LogHead.size + len(rows))
        .returning(LogHead.size)
    ).scalar_one_or_none()
    if size is None:
        raise ConfigurationError("the log has no head row: the database schema is not up to date")
    first = size - len(rows)
    for offset, row in enumerate(rows):
        row["seq"] = first + offset
    session.execute(insert(Record), rows)


def unwritten(session: Session) -> bool:
    """Whether ``session`` holds entries that no commit has written."""
    return bool(session.info.get(_PENDING))


def discard_pending(session: Session, *_: object) -> None:
    """Forget entries of a transaction that rolled back."""
    session.info.pop(_PENDING, None)
