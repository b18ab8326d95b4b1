"""The live log: its tree, its signed checkpoints, its proofs — read from the database.

The database holds what the log is: every entry's bytes and leaf hash at its position (written
by :func:`~meridian.audit.records.record` in the transaction of the change it records) and every
checkpoint issued. :class:`AuditLog` keeps the tree over those leaves in memory
(:class:`~meridian.audit.merkle.Tree`) and brings it up to date from the database before it
answers, so entries written by any process — the service, ``meridian policy load``, a second
service — are in the tree, and any root or proof costs O(log n) once it is.

Committed positions always form a prefix of the log (they are handed out in commit order under
one lock), so catching up is reading the leaves at positions ≥ the tree's size.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime

from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError

from ..clock import system_clock
from ..errors import InputError, LogIntegrityError, NotFoundError, ProofError
from ..storage.database import Database
from ..storage.models import Checkpoint as CheckpointRow
from ..storage.models import Record
from .merkle import Tree
from .note import Checkpoint, NoteSigner, NoteVerifier

__all__ = ["AuditLog", "Signed"]

#: leaves read from the database per query while catching up
_BATCH = 50_000
#: the most entries one call of :meth:`AuditLog.entries` reads per query
_PAGE = 1_000


@dataclass(frozen=True, slots=True)
class Signed:
    """A signed checkpoint: the note text as issued, and what it says."""

    note: str
    checkpoint: Checkpoint


class AuditLog:
    """One database's log, with a signer for its checkpoints."""

    def __init__(
        self, db: Database, signer: NoteSigner, *, clock: Callable[[], datetime] = system_clock
    ) -> None:
        self.db = db
        self.signer = signer
        self.origin = signer.name
        self.vkey = signer.verifier_key()
        self._verifier = NoteVerifier.from_vkey(self.vkey)
        self._clock = clock
        self._tree = Tree()
        self._lock = threading.Lock()

    # -- the tree ----------------------------------------------------------------------------

    def sync(self) -> int:
        """Read the leaves written since the last call; the log's size."""
        with self._lock:
            tree = self._tree
            while True:
                with self.db.read() as session:
                    leaves = session.scalars(
                        select(Record.leaf)
                        .where(Record.seq >= tree.size)
                        .order_by(Record.seq)
                        .limit(_BATCH)
                    ).all()
                tree.extend(bytes(leaf) for leaf in leaves)
                if len(leaves) < _BATCH:
                    return tree.size

    @property
    def size(self) -> int:
        """The size of the tree as last read (call :meth:`sync` for the current one)."""
        return self._tree.size

    def root(self, size: int | None = None) -> bytes:
        current = self.sync()
        size = current if size is None else self._check_size(size, current, "size")
        with self._lock:
            return self._tree.root(size)

    def inclusion(
        self, index: int, size: int | None = None
    ) -> tuple[int, bytes, list[bytes], bytes]:
        """``(size, leaf hash, proof, root)`` for entry ``index`` in the tree of ``size``."""
        current = self.sync()
        size = current if size is None else self._check_size(size, current, "size")
        if not 0 <= index < size:
            raise InputError(f"entry `{index}` is outside a log of {size} entries")
        with self._lock:
            return (
                size,
                self._tree.leaf(index),
                self._tree.inclusion_proof(index, size),
                self._tree.root(size),
            )

    def consistency(
        self, first: int, second: int | None = None
    ) -> tuple[int, list[bytes], bytes, bytes]:
        """``(second, proof, first root, second root)`` between two sizes of the log."""
        current = self.sync()
        second = current if second is None else self._check_size(second, current, "second")
        if not 0 <= first <= second:
            raise InputError(f"first size `{first}` must be between 0 and the second, {second}")
        with self._lock:
            return (
                second,
                self._tree.consistency_proof(first, second),
                self._tree.root(first),
                self._tree.root(second),
            )

    @staticmethod
    def _check_size(size: int, current: int, name: str) -> int:
        if not 0 <= size <= current:
            raise InputError(f"{name} `{size}` is outside the log, which has {current} entries")
        return size

    # -- entries -----------------------------------------------------------------------------

    def entries(self, start: int, end: int) -> Iterator[tuple[int, bytes]]:
        """Entries ``start`` to ``end - 1`` as ``(position, bytes)``, read a page at a time."""
        position = start
        while position < end:
            with self.db.read() as session:
                rows = session.execute(
                    select(Record.seq, Record.entry)
                    .where(Record.seq >= position, Record.seq < end)
                    .order_by(Record.seq)
                    .limit(_PAGE)
                ).all()
            if not rows:
                return
            for seq, data in rows:
                yield seq, bytes(data)
            position = rows[-1][0] + 1

    # -- checkpoints -------------------------------------------------------------------------

    def latest(self) -> Signed | None:
        """The last checkpoint issued, or ``None`` before the first."""
        with self.db.read() as session:
            row = session.scalars(
                select(CheckpointRow)
                .order_by(CheckpointRow.size.desc(), CheckpointRow.id.desc())
                .limit(1)
            ).first()
        return None if row is None else self._signed(row)

    def checkpoints(self, *, up_to: int | None = None) -> list[Signed]:
        """Every checkpoint issued (of size ≤ ``up_to`` if given), smallest first."""
        query = select(CheckpointRow).order_by(CheckpointRow.size, CheckpointRow.id)
        if up_to is not None:
            query = query.where(CheckpointRow.size <= up_to)
        with self.db.read() as session:
            rows = session.scalars(query).all()
        return [self._signed(row) for row in rows]

    def recent(self, limit: int) -> tuple[list[Signed], int]:
        """The ``limit`` latest checkpoints, newest first, and how many were issued in all."""
        with self.db.read() as session:
            rows = session.scalars(
                select(CheckpointRow)
                .order_by(CheckpointRow.size.desc(), CheckpointRow.id.desc())
                .limit(limit)
            ).all()
            count = session.scalar(select(func.count()).select_from(CheckpointRow)) or 0
        return [self._signed(row) for row in rows], count

    def checkpoint(self, *, force: bool = False) -> Signed:
        """The latest checkpoint, issuing one first if the log grew since (or if ``force``)."""
        size = self.sync()
        latest = self.latest()
        if latest is not None and latest.checkpoint.size >= size and not force:
            return latest
        with self._lock:
            root = self._tree.root(size)
        time = self._clock().astimezone(UTC).replace(microsecond=0)
        checkpoint = Checkpoint(origin=self.origin, size=size, root=root, time=time)
        note = self.signer.sign(checkpoint)
        try:
            with self.db.write() as session:
                session.add(CheckpointRow(size=size, root=root, issued_at=time, note=note))
        except IntegrityError:
            # Another signer (a thread, a replica) issued one at this size first: one
            # checkpoint per size (a unique index), and every caller is given that one.
            return self.find(size)
        return Signed(note, checkpoint)

    def find(self, size: int) -> Signed:
        """The latest checkpoint issued at exactly ``size`` entries."""
        with self.db.read() as session:
            row = session.scalars(
                select(CheckpointRow)
                .where(CheckpointRow.size == size)
                .order_by(CheckpointRow.id.desc())
                .limit(1)
            ).first()
        if row is None:
            raise NotFoundError(f"no checkpoint was issued at size `{size}`")
        return self._signed(row)

    def _signed(self, row: CheckpointRow) -> Signed:
        # Opened with this log's key: a stored checkpoint that does not verify is an error,
        # never passed on (a service started with another key refuses to start).
        try:
            return Signed(row.note, self._verifier.open(row.note))
        except ProofError as exc:
            raise LogIntegrityError(
                [
                    f"stored checkpoint at size {row.size} does not verify with this log's key "
                    f"`{self.vkey}` (MERIDIAN_LOG_KEY): {exc}"
                ]
            ) from None
