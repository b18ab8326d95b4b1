"""The export file: a whole log in one JSON Lines file anyone can verify offline.

Every line ends with a newline. The first is the header, then the signed checkpoints, then the
entries in order::

    {"checkpoints":2,"entries":1200,"format":"meridian-log/1","origin":"meridian.example/log"}
    {"checkpoint":"meridian.example/log\\n800\\n…\\ntime 2026-11-28T11:00:00Z\\n\\n— meridian…\\n"}
    {"checkpoint":"meridian.example/log\\n1200\\n…"}
    [0,"9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08",{"action":…}]
    [1,"…",{…}]

The header and checkpoint lines are canonical JSON (:func:`canonical_json`); checkpoints come in
increasing tree size, ties by time. An entry line is ``[<index>,"<leaf hash, 64 lowercase
hex>",<entry>]`` where ``<entry>`` is the entry's bytes exactly as the log stores and hashes them
(canonical JSON, no newline inside). That layout is fixed so a reader slices the entry out of
the line without parsing and re-serialising it — which could change its bytes, and its hash.
The HTTP API streams entries in the same line form (:func:`entry_line`).

Reading here is structural only (:func:`read_export`, :func:`open_export`): hashes, roots and
signatures are :mod:`meridian.audit.verify`'s job, which reads the same lines.
"""

from __future__ import annotations

import contextlib
import io
import json
import os
import re
import tempfile
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

from ..errors import InputError, LogIntegrityError, ProofError, shown
from .merkle import leaf_hash
from .note import peek_checkpoint

__all__ = [
    "FORMAT",
    "Export",
    "ExportEntry",
    "ExportHeader",
    "canonical_json",
    "checkpoint_line",
    "entry_line",
    "header_line",
    "iter_lines",
    "open_export",
    "parse_checkpoint_line",
    "parse_entry_line",
    "parse_header_line",
    "read_export",
    "write_export",
]

FORMAT = "meridian-log/1"
#: how often (in entries) :func:`write_export` reports progress
_PROGRESS_EVERY = 10_000
_ENTRY = re.compile(rb'\[(0|[1-9][0-9]{0,18}),"([0-9a-f]{64})",(.*)\]\n', re.DOTALL)


def canonical_json(value: Any) -> bytes:
    """``value`` as the export's canonical JSON: sorted keys, no spaces, UTF-8, no newline."""
    return json.dumps(
        value, sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False
    ).encode()


@dataclass(frozen=True, slots=True)
class ExportHeader:
    """The first line: which log, how many checkpoint lines and entry lines follow."""

    origin: str
    checkpoints: int
    entries: int


@dataclass(frozen=True, slots=True)
class ExportEntry:
    """One entry line: its index, its leaf hash as written (hex), the entry's bytes."""

    index: int
    leaf_hex: str
    entry: bytes


@dataclass(frozen=True, slots=True)
class Export:
    """An export read back: header, checkpoint notes (not yet verified) and entries.

    From :func:`read_export` ``entries`` is a tuple; inside :func:`open_export` it is an
    iterator over the open file, to be consumed once, before the ``with`` block ends.
    """

    header: ExportHeader
    checkpoints: tuple[str, ...]
    entries: Iterable[ExportEntry]


# -- lines --------------------------------------------------------------------------------------


def header_line(origin: str, checkpoints: int, entries: int) -> bytes:
    """The header line, newline included."""
    header = {"checkpoints": checkpoints, "entries": entries, "format": FORMAT, "origin": origin}
    return canonical_json(header) + b"\n"


def checkpoint_line(note: str) -> bytes:
    """The line carrying one signed checkpoint note, newline included."""
    return canonical_json({"checkpoint": note}) + b"\n"


def entry_line(index: int, entry: bytes) -> bytes:
    """The line for the entry at ``index``: ``[index,"<leaf hash hex>",<entry>]`` and a newline."""
    return b'[%d,"%s",%s]\n' % (index, leaf_hash(entry).hex().encode(), entry)


def _json_line(line: bytes, what: str) -> Any:
    """The JSON value on ``line``, which must be canonical and end in a newline; else ValueError."""
    if not line.endswith(b"\n"):
        raise ValueError(f"{what} does not end with a newline")
    try:
        value = json.loads(line[:-1].decode("utf-8"))
    except ValueError:
        raise ValueError(f"{what} is not JSON") from None
    try:
        again = canonical_json(value)
    except ValueError:
        raise ValueError(f"{what} is not plain JSON") from None
    if again != line[:-1]:
        raise ValueError(f"{what} is not canonical JSON")
    return value


def parse_header_line(line: bytes) -> ExportHeader:
    """The header on ``line``, checked strictly; :class:`ValueError` says what is wrong."""
    value = _json_line(line, "the header")
    if not isinstance(value, dict):
        raise ValueError("the header is not a JSON object")
    expected = {"checkpoints", "entries", "format", "origin"}
    if set(value) != expected:
        raise ValueError(
            f"the header has keys `{shown(','.join(sorted(value)))}`, "
            f"expected `{','.join(sorted(expected))}`"
        )
    if value["format"] != FORMAT:
        raise ValueError(f"the format is `{shown(value['format'])}`, expected `{FORMAT}`")
    for key in ("checkpoints", "entries"):
        count = value[key]
        if isinstance(count, bool) or not isinstance(count, int) or count < 0:
            raise ValueError(f"the header's `{key}` is `{shown(count)}`, not a count")
    if not isinstance(value["origin"], str):
        raise ValueError(f"the header's origin `{shown(value['origin'])}` is not text")
    return ExportHeader(value["origin"], value["checkpoints"], value["entries"])


def parse_checkpoint_line(line: bytes) -> str:
    """The note on a checkpoint line (not verified); :class:`ValueError` says what is wrong."""
    value = _json_line(line, "the checkpoint line")
    if not isinstance(value, dict) or set(value) != {"checkpoint"}:
        raise ValueError('the checkpoint line is not `{"checkpoint":"<note>"}`')
    note = value["checkpoint"]
    if not isinstance(note, str):
        raise ValueError("the checkpoint line's note is not text")
    return note


def parse_entry_line(line: bytes) -> ExportEntry:
    """The parts of an entry line, checked for form only; :class:`ValueError` if malformed."""
    match = _ENTRY.fullmatch(line)
    if match is None:
        raise ValueError('not an entry line `[<index>,"<64 lowercase hex>",<entry>]`')
    index, leaf_hex, entry = match.groups()
    if not entry.startswith(b"{") or not entry.endswith(b"}") or b"\n" in entry:
        raise ValueError("the entry is not a JSON object on one line")
    return ExportEntry(int(index), leaf_hex.decode("ascii"), entry)


def iter_lines(source: Path | bytes) -> Iterator[bytes]:
    """The raw lines of an export (file path or bytes), each with its newline (the last may lack
    it, if the export is truncated). Lines are split at ``\\n`` only, never at ``\\r``."""
    if isinstance(source, bytes | bytearray | memoryview):
        yield from io.BytesIO(bytes(source))
        return
    with open(source, "rb") as stream:
        yield from stream


# -- writing ------------------------------------------------------------------------------------


def write_export(
    path: Path,
    *,
    origin: str,
    checkpoints: Sequence[str],
    entries: Iterable[tuple[int, bytes]],
    count: int,
    progress: Callable[[int], None] | None = None,
) -> None:
    """Write the export of a log to ``path``, atomically.

    ``checkpoints`` are signed notes (sorted here by size then time; exact repeats dropped);
    ``entries`` yields ``(index, entry bytes)`` for indices 0 to ``count - 1`` in order. The file
    is written to a temporary file beside ``path``, synced and renamed over it, so ``path`` holds
    either its old content or the whole new export; on any error (from ``entries`` too) the
    temporary file is removed and ``path`` is untouched. ``progress`` is called with the number
    of entries written every 10,000 entries and once at the end.

    Leaf hashes are computed here from the bytes. An entry at the wrong index, too few or too
    many entries is a :class:`LogIntegrityError` (the log changed under the export, or the caller
    read it wrong); a malformed argument is an :class:`InputError`.
    """
    notes = _ordered(origin, checkpoints)
    if isinstance(count, bool) or not isinstance(count, int) or count < 0:
        raise InputError(f"entry count `{shown(count)}` is not a count")
    directory = path.parent
    fd, temp_name = tempfile.mkstemp(dir=directory, prefix=f".{path.name}.", suffix=".tmp")
    temp = Path(temp_name)
    try:
        with os.fdopen(fd, "wb", buffering=1 << 20) as out:
            out.write(header_line(origin, len(notes), count))
            for note in notes:
                out.write(checkpoint_line(note))
            written = _write_entries(out, entries, count, progress)
            if written != count:
                raise LogIntegrityError(
                    [f"the log gave {written} entries for an export of {count}"]
                )
            out.flush()
            os.fsync(out.fileno())
        os.replace(temp, path)
    except BaseException:
        temp.unlink(missing_ok=True)
        raise
    _sync_directory(directory)


def _ordered(origin: str, checkpoints: Sequence[str]) -> list[str]:
    """The notes in export order, each checked to carry a checkpoint of ``origin``."""
    keyed = []
    for number, note in enumerate(checkpoints):
        try:
            checkpoint = peek_checkpoint(note)
        except ProofError as exc:
            raise InputError(f"checkpoint {number} cannot be exported: {exc}") from None
        if checkpoint.origin != origin:
            raise InputError(
                f"checkpoint {number} is of log `{shown(checkpoint.origin)}`, not `{shown(origin)}`"
            )
        keyed.append((checkpoint.size, checkpoint.time, note))
    keyed.sort(key=lambda item: (item[0], item[1]))
    notes: list[str] = []
    for _, _, note in keyed:
        if note not in notes[-1:]:
            notes.append(note)
    return notes


def _write_entries(
    out: IO[bytes],
    entries: Iterable[tuple[int, bytes]],
    count: int,
    progress: Callable[[int], None] | None,
) -> int:
    written = 0
    for index, entry in entries:
        if index != written:
            raise LogIntegrityError([f"the log gave entry {index} where {written} was expected"])
        if written == count:
            raise LogIntegrityError([f"the log gave more than the {count} entries exported"])
        if b"\n" in entry or not entry.startswith(b"{") or not entry.endswith(b"}"):
            raise InputError(f"entry {index} is not a JSON object on one line")
        out.write(entry_line(index, entry))
        written += 1
        if progress is not None and written % _PROGRESS_EVERY == 0:
            progress(written)
    if progress is not None and written % _PROGRESS_EVERY != 0:
        progress(written)
    return written


def _sync_directory(directory: Path) -> None:
    """Make the rename durable: fsync the directory (where the platform allows it)."""
    try:
        fd = os.open(directory, os.O_RDONLY)
    except OSError:
        return
    try:
        with contextlib.suppress(OSError):
            os.fsync(fd)
    finally:
        os.close(fd)


# -- reading ------------------------------------------------------------------------------------


@contextlib.contextmanager
def open_export(source: Path | bytes) -> Iterator[Export]:
    """The export at ``source`` with its entries read lazily from the open file.

    Form only (see :func:`read_export`); a malformed line is an :class:`InputError` naming it,
    raised when the reading reaches it.
    """
    lines = iter_lines(source)
    try:
        header = _read_header(next(lines, b""))
        notes = []
        for number in range(2, 2 + header.checkpoints):
            line = next(lines, b"")
            try:
                notes.append(parse_checkpoint_line(line))
            except ValueError as exc:
                raise InputError(f"line {number}: {exc}") from None
        yield Export(header, tuple(notes), _read_entries(lines, header))
    finally:
        close = getattr(lines, "close", None)
        if close is not None:
            close()


def read_export(source: Path | bytes) -> Export:
    """The export at ``source``, read whole (entries as a tuple).

    Checks form only: the header, canonical checkpoint lines, entry lines in order with the
    counts the header gives and a final newline. Hashes, roots and signatures are not checked:
    run :func:`meridian.audit.verify.verify_export` before trusting what this returns.
    """
    with open_export(source) as export:
        return Export(export.header, export.checkpoints, tuple(export.entries))


def _read_header(line: bytes) -> ExportHeader:
    if not line:
        raise InputError("line 1: the export is empty")
    try:
        return parse_header_line(line)
    except ValueError as exc:
        raise InputError(f"line 1: {exc}") from None


def _read_entries(lines: Iterator[bytes], header: ExportHeader) -> Iterator[ExportEntry]:
    first = 2 + header.checkpoints
    index = -1
    for index, line in enumerate(lines):
        number = first + index
        if index >= header.entries:
            raise InputError(f"line {number}: more entry lines than the header's {header.entries}")
        try:
            item = parse_entry_line(line)
        except ValueError as exc:
            raise InputError(f"line {number}: {exc}") from None
        if item.index != index:
            raise InputError(f"line {number}: entry index {item.index}, expected {index}")
        yield item
    if index + 1 != header.entries:
        raise InputError(
            f"line {first + index + 1}: the export ends after {index + 1} entries, "
            f"the header says {header.entries}"
        )
