"""Verifying a log offline: is this export what the log's signed checkpoints commit to?

:func:`verify_export` reads an export (:mod:`meridian.audit.export`) with nothing but the log's
verifier key and checks everything it can, collecting every problem rather than stopping at the
first, each as one line that says where (line, entry index, checkpoint) and what was expected
against what was found:

* the header is canonical, of this format, of the key's log, and its counts are the file's;
* each checkpoint line is canonical and carries a note this key signed, for this log; the
  checkpoints come in increasing size (then time), and each one's root is the Merkle root of
  the first ``size`` entries;
* each entry line is exactly ``[<i>,"<leaf hash hex>",<entry>]`` with ``i`` its position, a leaf
  hash that is the entry's, and an entry that is a JSON object;
* the last checkpoint covers every entry, and the file ends with a newline;
* a checkpoint saved earlier (``saved_checkpoint``) is signed by the key and its root is the root
  of the export's first ``size`` entries: the log was only appended to since.

:func:`verify_entries` runs the same checks on entry lines and checkpoint notes fetched from a
live service (``GET /v1/log/entries``), and :func:`verify_lines` on any iterable of export lines.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import itertools
import json
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

import orjson

from ..errors import LogIntegrityError, ProofError, shown
from .export import (
    ExportHeader,
    iter_lines,
    parse_checkpoint_line,
    parse_entry_line,
    parse_header_line,
)
from .merkle import EMPTY_ROOT, RootBuilder, leaf_hash
from .note import Checkpoint, NoteVerifier

__all__ = ["VerifyResult", "verify_entries", "verify_export", "verify_lines"]

#: problems kept in full; past this many only a count is kept (a garbage file has one per line)
MAX_PROBLEMS = 1000
#: how often (in entries) ``progress`` is called
_PROGRESS_EVERY = 65_536


@dataclass(frozen=True, slots=True)
class VerifyResult:
    """What verifying found.

    ``entries`` and ``checkpoints`` count the lines of each kind read; ``size`` and ``root`` are
    the Merkle tree of the entries as read (``size == entries``); ``latest`` is the last
    checkpoint whose signature verified (None if none did); ``problems`` is empty exactly when
    the log verifies.
    """

    entries: int
    checkpoints: int
    size: int
    root: bytes
    latest: Checkpoint | None
    problems: tuple[str, ...]

    @property
    def ok(self) -> bool:
        return not self.problems

    def raise_for_problems(self) -> None:
        """Raise :class:`LogIntegrityError` listing the problems, if there are any."""
        if self.problems:
            raise LogIntegrityError(list(self.problems))


def verify_export(
    source: Path | bytes,
    vkey: str | NoteVerifier,
    *,
    saved_checkpoint: str | None = None,
    cosigned_checkpoint: str | None = None,
    progress: Callable[[int], None] | None = None,
) -> VerifyResult:
    """Verify the export file at ``source`` (a path, or its bytes) against the key ``vkey``.

    A malformed ``vkey`` is an :class:`~meridian.errors.InputError`; everything wrong with the
    export is a problem in the result (see :class:`VerifyResult`). ``progress`` is called with
    the number of entries checked every 65,536 entries and once at the end.
    ``cosigned_checkpoint`` (the note a log served with its witnesses' cosignatures) is held to
    what a saved checkpoint is: signed by the key, and consistent with the entries.
    """
    return verify_lines(
        iter_lines(source),
        vkey,
        saved_checkpoint=saved_checkpoint,
        cosigned_checkpoint=cosigned_checkpoint,
        progress=progress,
    )


def verify_lines(
    lines: Iterable[bytes],
    vkey: str | NoteVerifier,
    *,
    saved_checkpoint: str | None = None,
    cosigned_checkpoint: str | None = None,
    progress: Callable[[int], None] | None = None,
) -> VerifyResult:
    """Verify an export given as its raw lines (each with its newline, split at ``\\n``)."""
    run = _Run(_verifier(vkey), "line")
    stream = iter(lines)
    first = next(stream, None)
    if first is None:
        run.problem("the export is empty")
        return run.result()
    header = run.header(first)
    number = 1
    line = None
    for line in stream:
        number += 1
        if not line.startswith(b"{"):
            break
        run.checkpoint_line(line, number)
        line = None
    if saved_checkpoint is not None:
        run.saved(saved_checkpoint)
    if cosigned_checkpoint is not None:
        run.saved(cosigned_checkpoint, "cosigned checkpoint")
    entries = stream if line is None else itertools.chain((line,), stream)
    run.entries(entries, number if line is not None else number + 1, progress)
    if header is not None:
        run.counts(header.checkpoints, header.entries)
    run.finish()
    return run.result()


def verify_entries(
    checkpoints: Sequence[str],
    entry_lines: Iterable[bytes],
    vkey: str | NoteVerifier,
    *,
    saved_checkpoint: str | None = None,
    progress: Callable[[int], None] | None = None,
) -> VerifyResult:
    """Verify a live log: its checkpoint notes and its entries as streamed entry lines.

    The entry lines are those of an export (:func:`~meridian.audit.export.entry_line`) from
    index 0; problems name them ``entry line <n>``, counted from 1.
    """
    run = _Run(_verifier(vkey), "entry line")
    for note in checkpoints:
        run.checkpoint_note(note)
    if saved_checkpoint is not None:
        run.saved(saved_checkpoint)
    run.entries(entry_lines, 1, progress)
    run.finish()
    return run.result()


def _verifier(vkey: str | NoteVerifier) -> NoteVerifier:
    return vkey if isinstance(vkey, NoteVerifier) else NoteVerifier.from_vkey(vkey)


def _b64(digest: bytes) -> str:
    return base64.b64encode(digest).decode("ascii")


def _span(size: int) -> str:
    return "an empty log" if size == 0 else f"entries 0–{size - 1}"


class _Run:
    """One verification's state: what was found so far, and the tree of the entries read."""

    def __init__(self, verifier: NoteVerifier, line_word: str) -> None:
        self.verifier = verifier
        self.line_word = line_word
        self.problems: list[str] = []
        self.dropped = 0
        self.checkpoints = 0
        self.latest: Checkpoint | None = None
        self._last_key: tuple[int, datetime] | None = None
        self._seen: dict[bytes, int] = {}
        # size -> what must have that root: (how to name it, the root it claims)
        self.targets: dict[int, list[tuple[str, bytes, bool]]] = {}
        self.builder = RootBuilder()
        self.size = 0

    def problem(self, text: str) -> None:
        if len(self.problems) < MAX_PROBLEMS:
            self.problems.append(text)
        else:
            self.dropped += 1

    # -- header and checkpoints ---------------------------------------------------------------

    def header(self, line: bytes) -> ExportHeader | None:
        try:
            header = parse_header_line(line)
        except ValueError as exc:
            self.problem(f"{self.line_word} 1: {exc}")
            return None
        if header.origin != self.verifier.name:
            self.problem(
                f"{self.line_word} 1: header origin `{shown(header.origin)}`, expected "
                f"`{shown(self.verifier.name)}` (the log key's name)"
            )
        return header

    def checkpoint_line(self, line: bytes, number: int) -> None:
        self.checkpoints += 1
        label = f"{self.line_word} {number}: checkpoint {self.checkpoints}"
        name = f"checkpoint {self.checkpoints} ({self.line_word} {number}, size {{}})"
        earlier = self._seen.setdefault(line, number)
        if earlier != number:
            self.problem(f"{label}: repeats {self.line_word} {earlier}")
        try:
            note = parse_checkpoint_line(line)
        except ValueError as exc:
            self.problem(f"{label}: {exc}")
            return
        self._open(note, label, name)

    def checkpoint_note(self, note: str) -> None:
        self.checkpoints += 1
        label = f"checkpoint {self.checkpoints}"
        self._open(note, label, label + " (size {})")

    def _open(self, note: str, label: str, name: str) -> None:
        """Open one checkpoint note; ``name`` names it in root problems, ``{}`` for its size."""
        try:
            checkpoint = self.verifier.open(note)
        except ProofError as exc:
            self.problem(f"{label}: {exc}")
            return
        key = (checkpoint.size, checkpoint.time)
        if self._last_key is not None and key < self._last_key:
            last_size, last_time = self._last_key
            self.problem(
                f"{label}: size {checkpoint.size} at {checkpoint.time:%Y-%m-%dT%H:%M:%SZ} "
                f"after size {last_size} at {last_time:%Y-%m-%dT%H:%M:%SZ}: checkpoints must "
                "come in increasing size, then time"
            )
        else:
            self._last_key = key
        if self.latest is None or key > (self.latest.size, self.latest.time):
            self.latest = checkpoint
        claim = (name.format(checkpoint.size), checkpoint.root, False)
        self.targets.setdefault(checkpoint.size, []).append(claim)

    def saved(self, note: str, label: str = "saved checkpoint") -> None:
        try:
            checkpoint = self.verifier.open(note)
        except ProofError as exc:
            self.problem(f"{label}: {exc}")
            return
        name = f"{label} (size {checkpoint.size})"
        self.targets.setdefault(checkpoint.size, []).append((name, checkpoint.root, True))

    # -- entries ------------------------------------------------------------------------------

    def entries(
        self, lines: Iterable[bytes], first: int, progress: Callable[[int], None] | None
    ) -> None:
        """Check entry lines, push their leaves, compare roots where checkpoints are.

        Performance: this loop is the verifier's cost. Each entry costs one slice test of the
        line's fixed prefix and suffix, one SHA-256 of the entry, a hex compare, one
        ``orjson.loads`` to check the entry is a JSON object, and a push into the streaming root
        (one node hash on average). Measured on the project machine (2 vCPU EPYC, CPython 3.11)
        with a synthetic export of 1,000,000 entries (484-byte lines, 484 MB file): 2.7 s,
        370,000 entries/s on an idle machine (385,000/s of CPU time when it was shared).
        Of the ~2.7 µs an entry, ``orjson.loads`` takes 0.63 µs, a check of the braces alone
        0.25 µs and ``json.loads`` 2.5 µs: a real JSON parse with orjson keeps well above the
        200,000 entries/s target, so the entry is parsed; ``json.loads`` would not (it is kept
        only as the fallback for what orjson refuses, such as an integer beyond 64 bits).
        """
        sha256 = hashlib.sha256
        hexlify = binascii.hexlify
        loads = orjson.loads
        push = self.builder.push
        stops = sorted(size for size in self.targets if size > 0)
        if 0 in self.targets:
            self._check_root(0)
        stop_at = iter(stops)
        next_root = next(stop_at, -1)
        next_progress = _PROGRESS_EVERY if progress is not None else -1
        stop = _next_stop(next_root, next_progress)
        expected = 0  # the index the next line should carry
        position = 0  # entries pushed so far
        number = first - 1
        for line in lines:
            number += 1
            head = b'[%d,"' % expected
            n = len(head)
            if line[:n] == head and line[n + 64 : n + 66] == b'",' and line[-2:] == b"]\n":
                entry = line[n + 66 : -2]
                digest = sha256(b"\x00" + entry).digest()
                if hexlify(digest) != line[n : n + 64]:
                    self._leaf_mismatch(expected, line[n : n + 64], digest)
                try:
                    is_object = type(loads(entry)) is dict
                except orjson.JSONDecodeError:
                    is_object = _is_object(entry)
                if not is_object:
                    self._not_object(expected, entry)
            else:
                digest, expected = self._odd_line(line, number, expected)
            push(digest)
            expected += 1
            position += 1
            if position == stop:
                if position == next_root:
                    self._check_root(position)
                    next_root = next(stop_at, -1)
                if position == next_progress and progress is not None:
                    progress(position)
                    next_progress += _PROGRESS_EVERY
                stop = _next_stop(next_root, next_progress)
        self.size = position
        if progress is not None and (position == 0 or position % _PROGRESS_EVERY):
            progress(position)

    def _odd_line(self, line: bytes, number: int, expected: int) -> tuple[bytes, int]:
        """Diagnose a line the fast path refused; the leaf to push and the index it stands for."""
        where = f"{self.line_word} {number}"
        if not line.endswith(b"\n"):
            self.problem(f"{where}: the export is truncated: its last line has no newline")
            return leaf_hash(line), expected
        try:
            item = parse_entry_line(line)
        except ValueError as exc:
            found = line[:-1].decode("utf-8", "replace")
            self.problem(f"{where}: entry {expected}: {exc}: found `{shown(found)}`")
            return leaf_hash(line), expected
        if item.index != expected:
            self.problem(f"{where}: entry index {item.index}, expected {expected}")
        digest = leaf_hash(item.entry)
        if item.leaf_hex != digest.hex():
            self._leaf_mismatch(item.index, item.leaf_hex.encode(), digest)
        if not _is_object(item.entry):
            self._not_object(item.index, item.entry)
        # Carry on from the index the line gives: a missing or repeated line is one problem,
        # not one for every line after it.
        return digest, item.index

    def _leaf_mismatch(self, index: int, recorded: bytes, digest: bytes) -> None:
        shown_recorded = shown(recorded.decode("ascii", "replace"), limit=70)
        self.problem(
            f"entry {index}: leaf hash recorded `{shown_recorded}`, entry hashes to "
            f"`{digest.hex()}`"
        )

    def _not_object(self, index: int, entry: bytes) -> None:
        self.problem(
            f"entry {index}: not a JSON object: `{shown(entry.decode('utf-8', 'replace'))}`"
        )

    def _check_root(self, size: int) -> None:
        computed = self.builder.root() if size else EMPTY_ROOT
        for name, root, saved in self.targets[size]:
            if root == computed:
                continue
            claim = f"signed root `{_b64(root)}`, {_span(size)} give `{_b64(computed)}`"
            if saved:
                self.problem(f"{name} is not consistent with the log: {claim}")
            else:
                self.problem(f"{name}: {claim}")

    # -- the whole ----------------------------------------------------------------------------

    def counts(self, checkpoints: int, entries: int) -> None:
        if checkpoints != self.checkpoints:
            self.problem(
                f"{self.line_word} 1: the header says {checkpoints} checkpoints, "
                f"the export has {self.checkpoints}"
            )
        if entries != self.size:
            self.problem(
                f"{self.line_word} 1: the header says {entries} entries, the export has {self.size}"
            )

    def finish(self) -> None:
        for size, claims in sorted(self.targets.items()):
            if size <= self.size:
                continue
            for name, _, saved in claims:
                have = f"it has {size} entries, the log only {self.size}"
                if saved:
                    self.problem(f"{name} is not consistent with the log: {have}")
                else:
                    self.problem(f"{name}: {have}")
        if self.latest is None:
            self.problem(
                f"no checkpoint signed by `{shown(self.verifier.name)}` verifies: "
                "nothing in the log is vouched for"
            )
        covered = 0 if self.latest is None else self.latest.size
        if covered < self.size:
            self.problem(
                f"entries {covered}–{self.size - 1} are not covered by a signed checkpoint"
            )

    def result(self) -> VerifyResult:
        problems = list(self.problems)
        if self.dropped:
            problems.append(f"… and {self.dropped} more problems")
        return VerifyResult(
            entries=self.size,
            checkpoints=self.checkpoints,
            size=self.size,
            root=self.builder.root(),
            latest=self.latest,
            problems=tuple(problems),
        )


def _is_object(entry: bytes) -> bool:
    """True if ``entry`` is one JSON object (orjson first; ``json`` for what orjson cannot hold,
    such as an integer beyond 64 bits; never NaN or Infinity, which are not JSON)."""
    try:
        return type(orjson.loads(entry)) is dict
    except orjson.JSONDecodeError:
        pass
    try:
        value = json.loads(entry.decode("utf-8"), parse_constant=_no_constant)
    except ValueError:
        return False
    return type(value) is dict


def _no_constant(name: str) -> None:
    raise ValueError(f"{name} is not JSON")


def _next_stop(next_root: int, next_progress: int) -> int:
    """The next entry count at which the loop must look up from hashing (-1: never)."""
    candidates = [stop for stop in (next_root, next_progress) if stop > 0]
    return min(candidates) if candidates else -1
