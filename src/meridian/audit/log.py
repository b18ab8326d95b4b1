"""The live log: its tree, its signed checkpoints, its proofs — read from the database.

The database holds what the log is: every entry's bytes and leaf hash at its position (written
by :func:`~meridian.audit.records.record` in the transaction of the change it records) and every
checkpoint issued. :class:`AuditLog` keeps the tree over those leaves in memory
(:class:`~meridian.audit.merkle.Tree`) and brings it up to date from the database before it
answers, so entries written by any process — the service, ``meridian policy load``, a second
service — are in the tree, and any root or proof costs O(log n) once it is.

Committed positions always form a prefix of the log (they are handed out in commit order under
one lock), so catching up is reading the leaves at positions ≥ the tree's size.

The log checks itself (``docs/audit.md``, "The log checks itself"). Every read that feeds a
report, a proof or a page rehashes the entries it reads and compares each with the leaf stored
for it and the leaf the tree holds, and checks the tree against the latest signed checkpoint; a
checkpoint is signed only over entries so checked; start-up (:meth:`AuditLog.self_check`)
rehashes what was written since the position last verified. A mismatch is recorded
(:mod:`meridian.audit.problems`) and, until a check of the whole log finds it whole again,
reports, proofs and entries are refused with :class:`~meridian.errors.LogTamperedError`, which
names the entry.
"""

from __future__ import annotations

import threading
import time as timing
from collections.abc import Callable, Collection, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from ..clock import system_clock
from ..errors import InputError, LogIntegrityError, NotFoundError, ProofError, shown
from ..storage.database import Database
from ..storage.models import Checkpoint as CheckpointRow
from ..storage.models import LogProblem, Record
from .merkle import Tree, leaf_hash
from .note import Checkpoint, NoteSigner, NoteVerifier
from .problems import (
    Found,
    open_problems,
    record_problems,
    refusal,
    resolve_problems,
    save_verified,
    verified,
)
from .records import attach_log
from .thinning import Thinning

__all__ = [
    "AuditLog",
    "CheckpointNotes",
    "EntrySummary",
    "SelfCheck",
    "Signed",
    "StoredCheckpoint",
    "StoredEntry",
]

#: leaves read from the database per query while catching up
_BATCH = 50_000
#: the most entries one call of :meth:`AuditLog.entries` reads per query
_PAGE = 1_000
#: seconds a checked view of the latest checkpoint serves tiles before it is read again
_VIEW_SECONDS = 1.0


@dataclass(frozen=True, slots=True)
class Signed:
    """A signed checkpoint: the note text as issued, and what it says."""

    note: str
    checkpoint: Checkpoint


@dataclass(frozen=True, slots=True)
class StoredCheckpoint:
    """A checkpoint as stored, opened with the log's key: what it says, or why it does not verify.

    ``size`` and ``root`` are the note's when it verifies, the stored columns' when it does not.
    """

    size: int
    root: bytes
    #: the instant the note signs; ``None`` when it does not verify
    time: datetime | None
    note: str
    #: why the note does not verify with the log's key; ``None`` when it does
    problem: str | None


@dataclass(frozen=True, slots=True)
class CheckpointNotes:
    """Every stored checkpoint's note, in the order they were issued, and the largest size signed."""

    notes: tuple[str, ...]
    signed: int


@dataclass(frozen=True, slots=True)
class EntrySummary:
    """One entry named by its columns: position, instant, action, actor and subject."""

    seq: int
    at: datetime
    action: str
    actor: str
    subject_kind: str
    subject_id: str | None

    @property
    def subject(self) -> str:
        """``kind id``, or the kind alone for an entry about no one thing."""
        return f"{self.subject_kind} {self.subject_id or ''}".strip()


@dataclass(frozen=True, slots=True)
class StoredEntry:
    """One entry of the record as stored: its columns, and its decision and details as written."""

    seq: int
    at: datetime
    recorded_at: datetime
    actor: str
    action: str
    subject_kind: str
    subject_id: str | None
    bundle_digest: str
    decision: dict[str, Any] | None
    details: dict[str, Any]

    @classmethod
    def of(cls, row: Record) -> StoredEntry:
        return cls(
            row.seq,
            row.at,
            row.recorded_at,
            row.actor,
            row.action,
            row.subject_kind,
            row.subject_id,
            row.bundle_digest,
            row.decision,
            row.details,
        )

    def to_dict(self) -> dict[str, Any]:
        """The form ``GET /v1/records`` lists."""
        return {
            "seq": self.seq,
            "at": self.at.isoformat(),
            "recorded_at": self.recorded_at.isoformat(),
            "actor": self.actor,
            "action": self.action,
            "subject_kind": self.subject_kind,
            "subject_id": self.subject_id,
            "bundle_digest": self.bundle_digest,
            "decision": self.decision,
            "details": self.details,
        }


@dataclass(frozen=True, slots=True)
class SelfCheck:
    """What one :meth:`AuditLog.self_check` did: entries ``start`` to ``size - 1`` rehashed."""

    start: int
    size: int
    checked: int
    seconds: float
    problems: tuple[str, ...]

    @property
    def rate(self) -> float:
        """Entries rehashed per second."""
        return self.checked / self.seconds if self.seconds > 0 else float(self.checked)


def _short(digest: bytes) -> str:
    return digest.hex()[:16] + "…"


def _span(start: int, stop: int) -> str:
    return f"entry {start}" if stop - start == 1 else f"entries {start}–{stop - 1}"


class AuditLog:
    """One database's log, with a signer for its checkpoints."""

    def __init__(
        self, db: Database, signer: NoteSigner, *, clock: Callable[[], datetime] = system_clock
    ) -> None:
        self.db = attach_log(db)  # the log writes what record() adds on this database
        self.signer = signer
        self.origin = signer.name
        self.vkey = signer.verifier_key()
        self._verifier = NoteVerifier.from_vkey(self.vkey)
        self._clock = clock
        self._tree = Tree()
        self._lock = threading.Lock()
        #: entries below this were checked against their leaves by this process (None: not yet)
        self._checked: int | None = None
        #: (monotonic time, size) of the signed tree tiles were last served from
        self._view: tuple[float, int] | None = None

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
        """``(size, leaf hash, proof, root)`` for entry ``index`` in the tree of ``size``.

        Refused (:class:`~meridian.errors.LogTamperedError`) if the log failed a self-check, or
        if the entry or the tree does not match what was stored and signed.
        """
        current = self.sync()
        self._check_tree()
        if 0 <= index < current:
            self._check_entries(index, index + 1)
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
        self._check_tree()
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

    def signed_hashes(self, height: int, start: int, stop: int) -> tuple[int, bytes]:
        """The size of the latest checkpoint, and the hashes ``start`` to ``stop - 1`` of level
        ``height`` of its tree (only those of complete subtrees within it), joined.

        Hash ``i`` of level ``h`` is ``MTH(D[i * 2**h : (i + 1) * 2**h])``; tiles are made of
        them (:mod:`meridian.audit.tiles`). Refused, like proofs, while the log has failed its
        self-check or the tree does not give the latest signed root.
        """
        size = self._signed_view()
        with self._lock:
            return size, self._tree.hashes(height, start, min(stop, size >> height))

    def _signed_view(self) -> int:
        """The latest checkpoint's size once the tree is checked against it, re-read at most
        every :data:`_VIEW_SECONDS`.

        A cache: for up to that long, tiles may lag a newer checkpoint (one they would also lag
        through the checkpoint's own five-second HTTP cache) and a self-check failure found by
        another process is not seen yet; what is served is still only hashes of a tree that
        was checked against a signed root.
        """
        now = timing.monotonic()
        view = self._view
        if view is not None and now - view[0] < _VIEW_SECONDS:
            return view[1]
        self.sync()
        self.guard()
        latest = self.latest()
        found = self._problems_against(latest)
        if found:
            self._view = None
            record_problems(self.db, found)
            raise refusal([found[0].message])
        size = 0 if latest is None else latest.checkpoint.size
        self._view = (now, size)
        return size

    @staticmethod
    def _check_size(size: int, current: int, name: str) -> int:
        if not 0 <= size <= current:
            raise InputError(f"{name} `{size}` is outside the log, which has {current} entries")
        return size

    # -- entries -----------------------------------------------------------------------------

    def entries(self, start: int, end: int) -> Iterator[tuple[int, bytes]]:
        """Entries ``start`` to ``end - 1`` as ``(position, bytes)``, read a page at a time.

        Each entry is checked as it is read: its bytes must hash to the leaf stored for it and
        to the leaf the tree holds, and the tree must give the latest signed root. The first
        mismatch is recorded and raised (:class:`~meridian.errors.LogTamperedError`) before
        the entry is yielded, so nothing built from the entries (a report, an export, a page)
        ever includes one that changed.
        """
        self.sync()
        self._check_tree()
        position = start
        while position < end:
            rows = self._read_page(position, end)
            if not rows:
                return
            self._check_rows(rows, raise_=True)
            for seq, data, _ in rows:
                yield seq, data
            position = rows[-1][0] + 1

    # -- reading the record as stored --------------------------------------------------------
    #
    # These read the columns and the stored bytes without rehashing them: the record is searched
    # here, and the pages that show what was stored (a verification, an entry's stored leaf) must
    # show a changed entry as it now is, to name it. Reads that feed a report or a proof go
    # through :meth:`entries`, which checks.

    def recent_entries(self, limit: int) -> tuple[EntrySummary, ...]:
        """The latest ``limit`` entries, newest first."""
        with self.db.read() as session:
            rows = session.execute(
                select(
                    Record.seq,
                    Record.at,
                    Record.action,
                    Record.actor,
                    Record.subject_kind,
                    Record.subject_id,
                )
                .order_by(Record.seq.desc())
                .limit(limit)
            ).all()
        return tuple(EntrySummary(*row) for row in rows)

    def records(
        self,
        *,
        after: int = -1,
        action: str | None = None,
        subject: str | None = None,
        limit: int = 100,
    ) -> tuple[tuple[StoredEntry, ...], int]:
        """Entries after position ``after``, oldest first, of ``action`` and about ``subject`` if
        given: the first ``limit``, and how many match in all."""
        where = [Record.seq > after]
        if action:
            where.append(Record.action == action)
        if subject:
            where.append(Record.subject_id == subject)
        with self.db.read() as session:
            count = session.scalar(select(func.count()).select_from(Record).where(*where)) or 0
            rows = session.scalars(
                select(Record).where(*where).order_by(Record.seq).limit(limit)
            ).all()
            return tuple(StoredEntry.of(r) for r in rows), count

    def entries_about(self, subject_ids: Collection[str]) -> tuple[StoredEntry, ...]:
        """Every entry whose subject is one of ``subject_ids``, in log order."""
        if not subject_ids:
            return ()
        with self.db.read() as session:
            rows = session.scalars(
                select(Record)
                .where(Record.subject_id.in_(sorted(subject_ids)))
                .order_by(Record.seq)
            ).all()
            return tuple(StoredEntry.of(r) for r in rows)

    def stored_leaf(self, index: int) -> bytes | None:
        """The leaf hash stored for entry ``index`` when it was written, or ``None``."""
        with self.db.read() as session:
            leaf = session.scalar(select(Record.leaf).where(Record.seq == index))
        return None if leaf is None else bytes(leaf)

    def stored_lines(self, end: int) -> Iterator[bytes]:
        """Entries ``0`` to ``end - 1`` as export entry lines, each with the leaf hash stored for
        it (not one computed now), read a page at a time: what a verifier is given to check."""
        position = 0
        while position < end:
            rows = self._read_page(position, end)
            if not rows:
                return
            for seq, entry, leaf in rows:
                yield b'[%d,"%s",%s]\n' % (seq, leaf.hex().encode(), entry)
            position = rows[-1][0] + 1

    def stored_checkpoints(
        self, *, offset: int = 0, limit: int = 20, thinning: Thinning | None = None
    ) -> tuple[tuple[StoredCheckpoint, ...], int]:
        """A page of the checkpoints stored (those ``thinning`` keeps, if given), newest first,
        each opened with this log's key (one that does not verify says why, and is listed all
        the same); and how many there are (kept)."""
        with self.db.read() as session:
            query = select(CheckpointRow.size, CheckpointRow.root, CheckpointRow.note)
            if thinning is None:
                query = query.limit(limit).offset(offset)
                count = session.scalar(select(func.count()).select_from(CheckpointRow)) or 0
            else:
                ids = self._kept(session, thinning, None)
                count = len(ids)
                query = query.where(CheckpointRow.id.in_(ids[offset : offset + limit]))
            rows = session.execute(
                query.order_by(CheckpointRow.size.desc(), CheckpointRow.id.desc())
            ).all()
        out = []
        for size, root, note in rows:
            try:
                cp = self._verifier.open(note)
            except ProofError as exc:
                out.append(StoredCheckpoint(size, bytes(root), None, note, exc.message))
            else:
                out.append(StoredCheckpoint(cp.size, cp.root, cp.time, note, None))
        return tuple(out), count

    def checkpoint_notes(self) -> CheckpointNotes:
        """Every stored note, in the order issued (size, then instant), and the largest size
        signed, read together."""
        with self.db.read() as session:
            notes = tuple(
                session.scalars(
                    select(CheckpointRow.note).order_by(
                        CheckpointRow.size, CheckpointRow.issued_at, CheckpointRow.id
                    )
                )
            )
            signed = session.scalar(select(func.max(CheckpointRow.size))) or 0
        return CheckpointNotes(notes, signed)

    def checkpoint_sizes(self, limit: int = 50) -> tuple[int, ...]:
        """The sizes at which checkpoints were signed, newest first (the latest ``limit``)."""
        with self.db.read() as session:
            return tuple(
                session.scalars(
                    select(CheckpointRow.size)
                    .distinct()
                    .order_by(CheckpointRow.size.desc())
                    .limit(limit)
                )
            )

    # -- the self-check ----------------------------------------------------------------------

    def problems(self) -> list[LogProblem]:
        """The mismatches found and not resolved (the console shows them); ``[]`` when whole."""
        return open_problems(self.db)

    def guard(self) -> None:
        """Raise :class:`~meridian.errors.LogTamperedError` if a self-check found a mismatch."""
        found = open_problems(self.db)
        if found:
            raise refusal([row.message for row in found])

    def self_check(self, *, full: bool = False) -> SelfCheck:
        """Verify the stored log against its latest checkpoint, from the position last verified.

        The tree is read from the stored leaves; its root must be the one recorded at the last
        verified position and the one the latest checkpoint signed; every entry from the last
        verified position on must hash to its stored leaf. Any mismatch is recorded, and the
        position is not moved. With ``full``, or while a recorded mismatch is open, every entry
        is checked, and a log found whole resolves the open mismatches (once restored).
        """
        started = timing.monotonic()
        size = self.sync()
        was_open = bool(open_problems(self.db))
        last = None if (full or was_open) else verified(self.db)
        found: list[Found] = []
        start = 0
        if last is not None:
            if last.size > size:
                found.append(
                    Found(
                        "truncated",
                        size,
                        f"{_span(size, last.size)} are gone: the log holds {size} entries, "
                        f"{last.size} were verified",
                    )
                )
            elif self._root(last.size) != last.root:
                found.append(self._locate("verified_root", last.size, "verified"))
            else:
                start = last.size
        found += self._tree_problems()
        checked = 0
        position = start
        while position < size:
            rows = self._read_page(position, size)
            if not rows:
                break
            found += self._check_rows(rows, raise_=False)
            checked += len(rows)
            position = rows[-1][0] + 1
        seconds = timing.monotonic() - started
        self._view = None
        if found:
            record_problems(self.db, found)
        else:
            # INVARIANT: only this check moves the persisted position, so the entries written
            # since the last start-up are rehashed by the next one (reads check every entry)
            save_verified(self.db, size, self._root(size))
            self._checked = size
            if was_open:
                resolve_problems(self.db)
        return SelfCheck(start, size, checked, seconds, tuple(f.message for f in found))

    def _root(self, size: int) -> bytes:
        with self._lock:
            return self._tree.root(size)

    def _read_page(self, start: int, end: int) -> list[tuple[int, bytes, bytes]]:
        # Core on the session's connection: a third less overhead a row than the ORM result
        with self.db.read() as session:
            rows = (
                session.connection()
                .execute(
                    select(Record.seq, Record.entry, Record.leaf)
                    .where(Record.seq >= start, Record.seq < end)
                    .order_by(Record.seq)
                    .limit(_PAGE)
                )
                .all()
            )
        return [(seq, bytes(entry), bytes(leaf)) for seq, entry, leaf in rows]

    def _check_rows(self, rows: list[tuple[int, bytes, bytes]], *, raise_: bool) -> list[Found]:
        """Each row's entry against its stored leaf and the tree's leaf; the mismatches.

        With ``raise_`` the first mismatch is recorded and raised instead.
        """
        found: list[Found] = []
        # INVARIANT: ``rows`` hold consecutive positions (committed positions form a prefix)
        first = rows[0][0]
        with self._lock:
            known = self._tree.leaves(first, first + len(rows))
        for seq, entry, stored in rows:
            offset = (seq - first) << 5
            tree_leaf = known[offset : offset + 32] or None
            computed = leaf_hash(entry)
            if computed != stored:
                found.append(
                    Found(
                        "entry_hash",
                        seq,
                        f"entry {seq} {self._describe(seq)}hashes to `{_short(computed)}`, "
                        f"not to the leaf `{_short(stored)}` stored for it: it was changed "
                        "after it was written",
                    )
                )
            elif tree_leaf is not None and tree_leaf != stored:
                found.append(
                    Found(
                        "leaf_changed",
                        seq,
                        f"entry {seq} {self._describe(seq)}and its stored leaf "
                        f"`{_short(stored)}` were changed after they were written: the log "
                        f"read the leaf `{_short(tree_leaf)}` there",
                    )
                )
            if found and raise_:
                record_problems(self.db, found)
                raise refusal([found[0].message])
        return found

    def _describe(self, seq: int) -> str:
        """``(`legal_request lr_…`, `legal.applied`) `` for the entry at ``seq``, as stored."""
        with self.db.read() as session:
            row = session.execute(
                select(Record.subject_kind, Record.subject_id, Record.action).where(
                    Record.seq == seq
                )
            ).first()
        if row is None:
            return ""
        kind, subject, action = row
        name = f"{kind} {subject or ''}".strip()
        return f"(`{shown(name)}`, `{shown(action)}`) "

    def _check_entries(self, start: int, end: int) -> None:
        position = start
        while position < end:
            rows = self._read_page(position, end)
            if not rows:
                return
            self._check_rows(rows, raise_=True)
            position = rows[-1][0] + 1

    def _check_tree(self) -> None:
        """Refuse if a mismatch is open, or the tree does not give the latest signed root."""
        self.guard()
        found = self._tree_problems()
        if found:
            record_problems(self.db, found)
            raise refusal([found[0].message])

    def _tree_problems(self) -> list[Found]:
        """The tree (the stored leaves as read) against the latest checkpoint: [] or one problem."""
        return self._problems_against(self.latest())

    def _problems_against(self, latest: Signed | None) -> list[Found]:
        """The tree against the checkpoint ``latest`` (the latest, as read): [] or one problem."""
        if latest is None:
            return []
        signed = latest.checkpoint
        size = self.size
        if signed.size > size:
            return [
                Found(
                    "truncated",
                    size,
                    f"{_span(size, signed.size)} are gone: the log holds {size} entries, the "
                    f"checkpoint at size {signed.size} signed them",
                )
            ]
        if self._root(signed.size) == signed.root:
            return []
        return [self._locate("root", signed.size, "signed")]

    def _locate(self, kind: str, size: int, what: str) -> Found:
        """The root of the first ``size`` stored leaves is not the one ``what``: narrow it down
        to the entries between the last checkpoint whose root still holds and the first that
        does not (a change at position p changes every root of a larger tree, and no other)."""
        low, high = 0, size
        for signed in self.checkpoints(up_to=size):
            checkpoint = signed.checkpoint
            if self._root(checkpoint.size) == checkpoint.root:
                low = max(low, checkpoint.size)
            else:
                high = min(high, checkpoint.size)
                break
        return Found(
            kind,
            None,
            f"{_span(low, high)} were changed after they were written: the stored leaves do not "
            f"give the root {what} at size {size}",
        )

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

    def thinned(
        self,
        thinning: Thinning,
        *,
        offset: int = 0,
        limit: int | None = None,
        up_to: int | None = None,
    ) -> tuple[list[Signed], int]:
        """A page of the checkpoints ``thinning`` keeps (of size ≤ ``up_to`` if given), newest
        first, and how many it keeps in all."""
        with self.db.read() as session:
            ids = self._kept(session, thinning, up_to)
            page = ids[offset:] if limit is None else ids[offset : offset + limit]
            rows = session.scalars(
                select(CheckpointRow)
                .where(CheckpointRow.id.in_(page))
                .order_by(CheckpointRow.size.desc(), CheckpointRow.id.desc())
            ).all()
        return [self._signed(row) for row in rows], len(ids)

    def _kept(self, session: Session, thinning: Thinning, up_to: int | None) -> list[int]:
        query = select(CheckpointRow.id, CheckpointRow.size, CheckpointRow.issued_at)
        if up_to is not None:
            query = query.where(CheckpointRow.size <= up_to)
        rows = [(int(i), int(s), at) for i, s, at in session.execute(query)]
        return thinning.kept(rows, self._clock())

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

    def scheduled_checkpoint(self) -> Signed | None:
        """:meth:`checkpoint`, unless a self-check found a mismatch (then nothing is signed)."""
        if open_problems(self.db):
            return None
        return self.checkpoint()

    def checkpoint(self, *, force: bool = False) -> Signed:
        """The latest checkpoint, issuing one first if the log grew since (or if ``force``)."""
        size = self.sync()
        latest = self.latest()
        if latest is not None and latest.checkpoint.size >= size and not force:
            self._check_tree()
            return latest
        # Sign only what was checked: the tree against the last signature, and every entry
        # since the position last verified against its leaf.
        self._check_tree()
        start = self._checked
        if start is None:
            last = verified(self.db)
            start = 0 if last is None else last.size
        self._check_entries(min(start, size), size)
        self._checked = size
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
            self._view = None
            return self.find(size)
        self._view = None  # tiles follow the new checkpoint at once in this process
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
