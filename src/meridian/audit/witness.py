"""A witness for any C2SP log (c2sp.org/tlog-witness): check each checkpoint, then cosign it.

A witness keeps, for each log it is configured to trust (by origin and verifier key), the size
and root of the latest checkpoint it cosigned. A log submits a new checkpoint with the size it
believes the witness holds and a consistency proof from that size (``add-checkpoint``); the
witness checks the log's signature, that the old size is the one it holds, and the proof, and
only then records the new size and root and answers with its ``cosignature/v1`` line. It never
cosigns a checkpoint that does not extend what it cosigned before, so two auditors shown
checkpoints cosigned by the same witness were shown one history.

The state is one SQLite file of the witness's own (one row per origin): the check of the old
size and the update of the new one run in one ``BEGIN IMMEDIATE`` transaction, so two
submissions racing cannot roll the recorded size back (the specification's race).

:meth:`Witness.add_checkpoint` returns a :class:`WitnessAnswer`, the HTTP status the
specification gives each outcome and one line saying why; the door (:mod:`meridian.witness`)
only writes it out.
"""

from __future__ import annotations

import base64
import sqlite3
import threading
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path

from ..errors import InputError, ProofError, shown
from .cosignature import Cosigner
from .merkle import EMPTY_ROOT, verify_consistency
from .note import Checkpoint, NoteVerifier, _b64decode

__all__ = ["Witness", "WitnessAnswer", "parse_add_checkpoint"]

#: the most consistency proof lines a request may carry (c2sp.org/tlog-witness)
MAX_PROOF_LINES = 63
#: the largest request body read (a checkpoint with 100 signatures and 63 hashes fits easily)
MAX_BODY = 64 * 1024

_SCHEMA = """
CREATE TABLE IF NOT EXISTS witnessed (
    origin TEXT PRIMARY KEY,
    size INTEGER NOT NULL,
    root BLOB NOT NULL,
    note TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS refused (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    origin TEXT NOT NULL,
    status INTEGER NOT NULL,
    reason TEXT NOT NULL,
    note TEXT NOT NULL,
    at INTEGER NOT NULL
);
"""


@dataclass(frozen=True, slots=True)
class WitnessAnswer:
    """What the witness says to one ``add-checkpoint``: the status, and the body to send.

    ``body`` is the cosignature line on 200, the size held (``"<size>\\n"``, content type
    ``text/x.tlog.size``) on 409, and the one-line reason otherwise.
    """

    status: int
    body: str
    reason: str

    @property
    def content_type(self) -> str:
        return "text/x.tlog.size" if self.status == 409 else "text/plain; charset=utf-8"


@dataclass(frozen=True, slots=True)
class AddCheckpoint:
    """A parsed ``add-checkpoint`` body: the old size, the proof, and the checkpoint note."""

    old: int
    proof: tuple[bytes, ...]
    note: str


def parse_add_checkpoint(body: bytes) -> AddCheckpoint:
    """The request ``old <size>``, proof lines, a blank line, the note; :class:`InputError`."""
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError:
        raise InputError("add-checkpoint body is not UTF-8") from None
    head, blank, note = text.partition("\n\n")
    if not blank:
        raise InputError("add-checkpoint body has no blank line before the checkpoint")
    lines = head.split("\n")
    first = lines[0]
    size_text = first.removeprefix("old ")
    if (
        size_text == first
        or not size_text.isdigit()
        or (size_text != "0" and size_text.startswith("0"))
        or len(size_text) > 19
    ):
        raise InputError(f"add-checkpoint old size line `{shown(first)}` is not `old <size>`")
    proof_lines = lines[1:]
    if len(proof_lines) > MAX_PROOF_LINES:
        raise InputError(f"add-checkpoint carries {len(proof_lines)} proof lines: at most 63")
    proof = []
    for number, line in enumerate(proof_lines, 1):
        raw = _b64decode(line)
        if raw is None or len(raw) != 32:
            raise InputError(f"add-checkpoint proof line {number} `{shown(line)}` is not a hash")
        proof.append(raw)
    return AddCheckpoint(int(size_text), tuple(proof), note)


class Witness:
    """A witness's state and key: cosigns checkpoints of the logs it trusts, one by one."""

    def __init__(
        self,
        state: Path,
        cosigner: Cosigner,
        logs: Iterable[NoteVerifier],
        *,
        clock: Callable[[], float],
    ) -> None:
        self.cosigner = cosigner
        self.logs = {log.name: log for log in logs}
        self._clock = clock
        self._path = state
        self._lock = threading.Lock()
        state.parent.mkdir(parents=True, exist_ok=True)
        with self._connect() as db:
            db.executescript(_SCHEMA)

    def _connect(self) -> sqlite3.Connection:
        db = sqlite3.connect(self._path, timeout=30, isolation_level=None)
        db.execute("PRAGMA journal_mode=WAL")
        return db

    def latest(self, origin: str) -> tuple[int, str] | None:
        """The size and cosigned note of the latest checkpoint cosigned for ``origin``."""
        with self._connect() as db:
            row = db.execute(
                "SELECT size, note FROM witnessed WHERE origin = ?", (origin,)
            ).fetchone()
        return None if row is None else (int(row[0]), str(row[1]))

    def refusals(self, origin: str) -> list[tuple[int, str]]:
        """The refusals recorded for ``origin`` (status, reason), oldest first: what a log that
        showed an inconsistent checkpoint left behind (it may be proof of a fork)."""
        with self._connect() as db:
            rows = db.execute(
                "SELECT status, reason FROM refused WHERE origin = ? ORDER BY id", (origin,)
            ).fetchall()
        return [(int(s), str(r)) for s, r in rows]

    def add_checkpoint(self, body: bytes) -> WitnessAnswer:
        """Check one ``add-checkpoint`` request and cosign it, or say why not (with its status)."""
        if len(body) > MAX_BODY:
            return WitnessAnswer(413, "request too large\n", "request too large")
        try:
            request = parse_add_checkpoint(body)
            checkpoint_text = _note_body(request.note)
        except (InputError, ProofError) as exc:
            return _refuse(400, exc.message)
        origin = checkpoint_text.split(b"\n", 1)[0].decode()
        verifier = self.logs.get(origin)
        if verifier is None:
            return _refuse(404, f"unknown log `{shown(origin)}`: this witness does not follow it")
        try:
            checkpoint = Checkpoint.parse_body(verifier.open_text(request.note))
        except ProofError as exc:
            status = 403 if exc.message.startswith(("unknown key", "bad signature")) else 400
            return _refuse(status, exc.message)
        if request.old > checkpoint.size:
            return _refuse(
                400, f"old size {request.old} is larger than the checkpoint's {checkpoint.size}"
            )
        if checkpoint.size == 0 and checkpoint.root != EMPTY_ROOT:
            return self._record(422, origin, request.note, "an empty tree has the empty root")
        # INVARIANT: the old size is checked and the new one written in one IMMEDIATE
        # transaction (and one process lock), so no two submissions interleave.
        with self._lock, self._connect() as db:
            db.execute("BEGIN IMMEDIATE")
            try:
                row = db.execute(
                    "SELECT size, root FROM witnessed WHERE origin = ?", (origin,)
                ).fetchone()
                held, held_root = (0, EMPTY_ROOT) if row is None else (int(row[0]), bytes(row[1]))
                if request.old != held:
                    db.execute("ROLLBACK")
                    return WitnessAnswer(
                        409, f"{held}\n", f"old size {request.old} is not the {held} cosigned"
                    )
                problem = _inconsistency(request, held_root, checkpoint)
                if problem is not None:
                    db.execute("ROLLBACK")
                    return self._record(422, origin, request.note, problem)
                line = self.cosigner.line(checkpoint_text, int(self._clock()))
                db.execute(
                    "INSERT INTO witnessed (origin, size, root, note) VALUES (?, ?, ?, ?) "
                    "ON CONFLICT (origin) DO UPDATE SET size = excluded.size, "
                    "root = excluded.root, note = excluded.note",
                    (origin, checkpoint.size, checkpoint.root, request.note + line),
                )
                db.execute("COMMIT")
            except BaseException:
                if db.in_transaction:
                    db.execute("ROLLBACK")
                raise
        return WitnessAnswer(200, line, "cosigned")

    def _record(self, status: int, origin: str, note: str, reason: str) -> WitnessAnswer:
        """Refuse, and keep the signed checkpoint refused: it may prove the log forked.

        Each signed checkpoint is kept once: anyone may replay a public checkpoint with a bogus
        proof (or extra signature lines), and that must not grow the state without bound.
        """
        body = note[: note.rfind("\n\n") + 1]
        with self._connect() as db:
            db.execute(
                "INSERT INTO refused (origin, status, reason, note, at) "
                "SELECT ?, ?, ?, ?, ? WHERE NOT EXISTS (SELECT 1 FROM refused "
                "WHERE origin = ? AND substr(note, 1, length(?)) = ?)",
                (origin, status, reason, note, int(self._clock()), origin, body, body),
            )
        return _refuse(status, reason)


def _refuse(status: int, reason: str) -> WitnessAnswer:
    line = reason.splitlines()[0] if reason else "refused"
    return WitnessAnswer(status, line + "\n", line)


def _note_body(note: str) -> bytes:
    """The text of a note before its signatures (for the origin line and the cosigned message)."""
    split = note.rfind("\n\n")
    if split < 0:
        raise InputError("add-checkpoint checkpoint is not a signed note")
    return note[: split + 1].encode()


def _inconsistency(request: AddCheckpoint, held_root: bytes, checkpoint: Checkpoint) -> str | None:
    """Why the proof does not show ``checkpoint`` extends the held tree, or ``None``."""
    old = request.old
    if old == 0:
        return None if not request.proof else "a proof from the empty tree must be empty"
    if old == checkpoint.size:
        if request.proof:
            return "a proof between equal sizes must be empty"
        if checkpoint.root != held_root:
            return (
                f"the checkpoint at size {old} has root `{_b64(checkpoint.root)}`, not the "
                f"`{_b64(held_root)}` cosigned: the log forked"
            )
        return None
    try:
        verify_consistency(old, checkpoint.size, held_root, checkpoint.root, request.proof)
    except ProofError as exc:
        return f"the checkpoint does not extend the one cosigned at size {old}: {exc.message}"
    return None


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode()
