"""Checking a transparency report against an export of the log: recompute, then compare bytes."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import date
from pathlib import Path

from ..errors import InputError, LogIntegrityError, ProofError, shown
from .compute import compute_report
from .model import ReportFormat, StatedCheckpoint, TransparencyReport
from .readback import stated_parameters

__all__ = [
    "ExportSource",
    "Mismatch",
    "first_difference",
    "open_verified_export",
    "recompute_report",
    "report_from_export",
]


@dataclass(frozen=True, slots=True)
class Mismatch:
    """Where a report differs from its recomputation: line and column (from 1), and both texts.

    ``expected`` and ``found`` are the two versions of that line, cut to a few dozen characters
    around the column (a JSON report is one long line).
    """

    line: int
    column: int
    expected: str
    found: str

    def __str__(self) -> str:
        return (
            f"differs at line {self.line}, column {self.column}: "
            f"expected `{shown(self.expected, 80)}`, found `{shown(self.found, 80)}`"
        )


_CONTEXT = 30


def _excerpt(line: str | None, column: int) -> str:
    if line is None:
        return "(end of file)"
    start = max(0, column - _CONTEXT)
    end = column + _CONTEXT
    return ("…" if start else "") + line[start:end] + ("…" if end < len(line) else "")


def first_difference(expected: bytes, found: bytes) -> Mismatch | None:
    """The first place ``found`` differs from ``expected``, or ``None`` if they are equal."""
    if expected == found:
        return None
    want = expected.decode("utf-8", "replace").split("\n")
    got = found.decode("utf-8", "replace").split("\n")
    for number in range(max(len(want), len(got))):
        a = want[number] if number < len(want) else None
        b = got[number] if number < len(got) else None
        if a != b:
            column = 0
            if a is not None and b is not None:
                column = next(
                    (i for i, (x, y) in enumerate(zip(a, b, strict=False)) if x != y),
                    min(len(a), len(b)),
                )
            return Mismatch(number + 1, column + 1, _excerpt(a, column), _excerpt(b, column))
    # the same text from different bytes: bytes that are not UTF-8, replaced alike
    return Mismatch(1, 1, "(utf-8 text)", "(bytes that are not utf-8)")


# -- from an export ------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class ExportSource:
    """A verified export: its entries and its signed checkpoints, each opened with the key."""

    entries: tuple[tuple[int, bytes], ...]
    checkpoints: tuple[StatedCheckpoint, ...]
    latest: StatedCheckpoint


def open_verified_export(
    source: Path | bytes, vkey: str, *, progress: Callable[[int], None] | None = None
) -> ExportSource:
    """The export at ``source`` once it verifies against ``vkey`` (every problem, else).

    Raises :class:`LogIntegrityError` listing what :func:`meridian.audit.verify.verify_export`
    found, and :class:`InputError` for a malformed key or an export with no checkpoint.
    ``progress`` is verification's: called with the entries checked so far, every 65,536
    entries and once at the end.
    """
    from ..audit.export import read_export
    from ..audit.note import NoteVerifier
    from ..audit.verify import verify_export

    verifier = NoteVerifier.from_vkey(vkey)
    result = verify_export(source, vkey, progress=progress)
    if not result.ok:
        raise LogIntegrityError(list(result.problems))
    export = read_export(source)
    stated = tuple(StatedCheckpoint.of(verifier.open(note), note) for note in export.checkpoints)
    if result.latest is None or not stated:
        raise InputError("the export holds no signed checkpoint to report at")
    latest = next((s for s in reversed(stated) if s.matches(result.latest)), stated[-1])
    entries = tuple((item.index, item.entry) for item in export.entries)
    return ExportSource(entries=entries, checkpoints=stated, latest=latest)


def report_from_export(
    source: ExportSource, *, start: date | None = None, end: date | None = None
) -> TransparencyReport:
    """The report at the export's latest checkpoint (verify it first: :func:`open_verified_export`)."""
    return compute_report(source.entries, source.latest, start=start, end=end)


def recompute_report(source: ExportSource, data: bytes, fmt: ReportFormat) -> TransparencyReport:
    """The report ``data`` (in ``fmt``) should be, recomputed from a verified export.

    The checkpoint is the one the report states: one of the export's, at the size the report
    states (the one with the stated time if several share that size). A size the export has no
    checkpoint for is a :class:`ProofError`.
    """
    stated = stated_parameters(data, fmt)
    same_size = [c for c in source.checkpoints if c.size == stated.size]
    if not same_size:
        sizes = ", ".join(str(c.size) for c in source.checkpoints)
        raise ProofError(
            f"the report is computed at checkpoint size `{stated.size}`, "
            f"which is not one of the export's checkpoints (sizes {sizes})"
        )
    checkpoint = next((c for c in same_size if c.time_text == stated.time), same_size[-1])
    return compute_report(source.entries, checkpoint, stated.period)
