"""Writing the record: the one function every decision and state change goes through.

:func:`record` adds an entry to the transaction the change itself is written in, so the entry
and the change commit together or not at all. How it then becomes part of the Merkle log
depends on the database.

**SQLite** (one process): :func:`assign_positions` (run by
:class:`~meridian.storage.database.Database` just before each commit) takes the next positions
from the one ``log_head`` row; every write transaction holds the database's write lock from its
start (``BEGIN IMMEDIATE``), so positions are handed out in commit order with no gap.

**PostgreSQL** (replicas): holding the ``log_head`` row lock from the position's assignment
through the commit made every gated write in every replica queue on one lock, one fsync at a
time (about 200 acknowledged writes/s here, whatever the number of replicas: bench/cluster.py).
Instead, as Trillian and Tessera do, the entry is committed with its change **unsequenced**, in
``log_pending`` (no shared row touched), and a sequencer gives positions in batches:
:func:`integrate` locks ``log_head``, moves the pending entries (in ``id`` order) into
``records`` at the next positions, deletes them from ``log_pending`` and advances the head, all
in one transaction. The sequencer runs

* in the writer itself, right after its commit and before :meth:`Database.write` returns (so
  before the change is acknowledged): each integration takes every entry pending at that moment,
  so concurrent writers share one integration commit instead of one lock-holding commit each,
  and a writer whose entries another integration already took does not wait for the lock;
* on the leader (:mod:`meridian.cluster.leader`), every ``log_sequence_interval`` seconds
  (0.25), for entries whose writer died between its commit and its integration;
* before any reader of the tree reads it (:meth:`AuditLog.sync`), when something is pending.

What the log keeps: no gap and no duplicate (positions are given under the head lock, in one
transaction with the move; the primary key); the committed log is a prefix (``records`` only
ever grows by a contiguous run at its end, atomically); crash safety (a pending entry is durable
with its change; a sequencer killed mid-batch rolls back whole, and the next one takes the same
entries); every acknowledged action in the log (its entry committed before the acknowledgement,
integrated before it too unless the writer's integration failed, and then by the leader within
the interval). The integration delay, stated: 0 for an acknowledged write in the normal case;
at most ``log_sequence_interval`` plus one batch (well under 1 s) when its writer died or lost
the database between commit and integration. Readers, proofs, checkpoints and verification read
``records`` only: a pending entry is never seen as part of the log.

Taking the head's lock only in the sequencer's own transaction, never in a change's, also keeps
a change from holding the log's lock while it waits for another row.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Protocol

from sqlalchemy import delete, insert, select, update
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Session

from ..clock import system_clock
from ..errors import ConfigurationError, MeridianError
from ..storage import Database
from ..storage.models import LogHead, LogPending, Record
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
    "integrate",
    "integrate_batch",
    "pending",
    "record",
    "unwritten",
]

#: the mark :func:`attach_log` leaves on a database (``Database.marks``)
LOG_MARK = "meridian.audit.log"

#: where :func:`record` keeps a transaction's entries until it commits
_PENDING = "meridian.log.pending"
#: the ``log_pending`` ids a committed PostgreSQL transaction left for the sequencer
_QUEUED = "meridian.log.queued"
#: the most entries one integration transaction moves
BATCH = 5_000

log = logging.getLogger("meridian.audit")


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
        after_write=integrate_written,
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
    """Write the transaction's entries as it commits: on SQLite at their log positions, on
    PostgreSQL unsequenced, into ``log_pending`` (see the module's text).

    One UPDATE of the head takes the lock and the positions; one multi-row INSERT (Core, not
    the ORM: a third of the cost per entry, bench/audit.py) writes the entries.
    """
    rows: list[dict[str, Any]] = session.info.pop(_PENDING, [])
    if not rows:
        return
    if session.get_bind().dialect.name == "postgresql":
        ids = session.scalars(insert(LogPending).returning(LogPending.id), rows).all()
        session.info[_QUEUED] = list(ids)
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


def integrate_batch(session: Session, limit: int = BATCH) -> int:
    """Move up to ``limit`` pending entries into the log at the next positions, in ``session``'s
    transaction (which must be a write); how many. The head's row lock, taken first, makes
    sequencers take turns; the move is one transaction, so it happens whole or not at all."""
    size = session.execute(
        select(LogHead.size).where(LogHead.id == 1).with_for_update()
    ).scalar_one_or_none()
    if size is None:
        raise ConfigurationError("the log has no head row: the database schema is not up to date")
    queued = session.execute(
        select(
            LogPending.id,
            LogPending.at,
            LogPending.recorded_at,
            LogPending.actor,
            LogPending.action,
            LogPending.subject_kind,
            LogPending.subject_id,
            LogPending.bundle_digest,
            LogPending.entry,
            LogPending.leaf,
        )
        .order_by(LogPending.id)
        .limit(limit)
    ).all()
    if not queued:
        return 0
    rows = []
    for offset, row in enumerate(queued):
        values = row._asdict()
        del values["id"]
        values["seq"] = size + offset
        rows.append(values)
    session.execute(insert(Record), rows)
    session.execute(delete(LogPending).where(LogPending.id.in_([row.id for row in queued])))
    session.execute(update(LogHead).where(LogHead.id == 1).values(size=size + len(rows)))
    return len(rows)


def pending(db: Database, ids: list[int] | None = None) -> bool:
    """Whether entries wait in ``log_pending`` (of ``ids`` only, if given). ``False`` on SQLite."""
    if db.dialect != "postgresql":
        return False
    query = select(LogPending.id).limit(1)
    if ids:
        query = query.where(LogPending.id.in_(ids))
    with db.read() as session:
        return session.scalar(query) is not None


def integrate(db: Database) -> int:
    """Sequence every entry pending now, a batch per transaction; how many (0 on SQLite)."""
    if db.dialect != "postgresql":
        return 0
    total = 0
    while True:
        with db.write() as session:
            moved = integrate_batch(session)
        total += moved
        if moved < BATCH:
            return total


def integrate_written(db: Database, session: Session) -> None:
    """After a write transaction committed: integrate what it queued, unless another
    integration took it meanwhile. A failure here leaves the entries pending, durable, for the
    leader's sequencer; the change stays committed, so it is logged, not raised."""
    ids: list[int] | None = session.info.pop(_QUEUED, None)
    if not ids:
        return
    try:
        if pending(db, ids):
            integrate(db)
    except (SQLAlchemyError, MeridianError) as exc:
        log.warning("entries %s wait for the sequencer: %s", ids[:5], exc)


def unwritten(session: Session) -> bool:
    """Whether ``session`` holds entries that no commit has written."""
    return bool(session.info.get(_PENDING))


def discard_pending(session: Session, *_: object) -> None:
    """Forget entries of a transaction that rolled back."""
    session.info.pop(_PENDING, None)
