"""The export file: its exact bytes, its atomic write, and reading it back."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from meridian.audit.export import (
    Export,
    ExportEntry,
    ExportHeader,
    entry_line,
    open_export,
    read_export,
    write_export,
)
from meridian.audit.merkle import RootBuilder, leaf_hash
from meridian.audit.note import Checkpoint, NoteSigner
from meridian.errors import InputError, LogIntegrityError

ORIGIN = "meridian.example/log"
AT = datetime(2026, 11, 28, 12, 0, 0, tzinfo=UTC)
SIGNER = NoteSigner(ORIGIN, Ed25519PrivateKey.generate())


def canonical(value: object) -> bytes:
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()


def make_entries(count: int) -> list[bytes]:
    return [canonical({"action": "test", "n": i, "text": "é" * (i % 5)}) for i in range(count)]


def notes_for(entries: list[bytes], sizes: list[int], at: datetime = AT) -> list[str]:
    builder, notes = RootBuilder(), list[str]()
    for size in range(len(entries) + 1):
        if size:
            builder.push(leaf_hash(entries[size - 1]))
        notes.extend(
            SIGNER.sign(Checkpoint(ORIGIN, size, builder.root(), at + timedelta(seconds=size)))
            for _ in range(sizes.count(size))
        )
    return notes


def test_entry_line_is_index_leaf_hash_and_the_entry_bytes_as_they_are() -> None:
    entry = '{"a":"ü","b":[1,2]}'.encode()
    digest = hashlib.sha256(b"\x00" + entry).hexdigest()
    assert entry_line(7, entry) == b'[7,"' + digest.encode() + b'",' + entry + b"]\n"


def test_the_exact_bytes_of_an_export(tmp_path: Path) -> None:
    entries = make_entries(2)
    notes = notes_for(entries, [1, 2])
    path = tmp_path / "log.jsonl"
    write_export(
        path, origin=ORIGIN, checkpoints=notes, entries=enumerate(entries), count=len(entries)
    )
    h0 = hashlib.sha256(b"\x00" + entries[0]).hexdigest()
    h1 = hashlib.sha256(b"\x00" + entries[1]).hexdigest()
    expected = (
        b'{"checkpoints":2,"entries":2,"format":"meridian-log/1","origin":"meridian.example/log"}\n'
        + b'{"checkpoint":'
        + json.dumps(notes[0], ensure_ascii=False).encode()
        + b"}\n"
        + b'{"checkpoint":'
        + json.dumps(notes[1], ensure_ascii=False).encode()
        + b"}\n"
        + b'[0,"'
        + h0.encode()
        + b'",{"action":"test","n":0,"text":""}]\n'
        + b'[1,"'
        + h1.encode()
        + b'",{"action":"test","n":1,"text":"\xc3\xa9"}]\n'
    )
    data = path.read_bytes()
    assert data == expected
    assert "— ".encode() in data  # the note's em dash is written as UTF-8, not escaped
    assert b"\\u2014" not in data


def test_round_trip(tmp_path: Path) -> None:
    entries = make_entries(25)
    notes = notes_for(entries, [0, 10, 25])
    path = tmp_path / "log.jsonl"
    write_export(path, origin=ORIGIN, checkpoints=notes, entries=enumerate(entries), count=25)
    export = read_export(path)
    assert export.header == ExportHeader(ORIGIN, 3, 25)
    assert export.checkpoints == tuple(notes)
    assert export.entries == tuple(
        ExportEntry(i, leaf_hash(e).hex(), e) for i, e in enumerate(entries)
    )
    assert read_export(path.read_bytes()) == export
    with open_export(path) as lazy:
        assert isinstance(lazy, Export)
        assert not isinstance(lazy.entries, tuple)
        assert tuple(lazy.entries) == export.entries


def test_an_empty_log_exports(tmp_path: Path) -> None:
    path = tmp_path / "log.jsonl"
    write_export(path, origin=ORIGIN, checkpoints=notes_for([], [0]), entries=[], count=0)
    assert read_export(path).entries == ()
    assert path.read_bytes().count(b"\n") == 2


def test_checkpoints_go_in_size_order_then_time_and_repeats_once(tmp_path: Path) -> None:
    entries = make_entries(6)
    small, large = notes_for(entries, [2, 6])
    early = SIGNER.sign(Checkpoint(ORIGIN, 6, leaf_hash(b"x"), AT - timedelta(days=1)))
    path = tmp_path / "log.jsonl"
    write_export(
        path,
        origin=ORIGIN,
        checkpoints=[large, small, large, early, small],
        entries=enumerate(entries),
        count=6,
    )
    assert read_export(path).checkpoints == (small, early, large)


def test_progress_is_reported(tmp_path: Path) -> None:
    seen: list[int] = []
    entries = make_entries(25_000)
    write_export(
        tmp_path / "log.jsonl",
        origin=ORIGIN,
        checkpoints=[],
        entries=enumerate(entries),
        count=len(entries),
        progress=seen.append,
    )
    assert seen == [10_000, 20_000, 25_000]


# -- atomicity ---------------------------------------------------------------------------------


def failing(entries: list[bytes], after: int) -> Iterator[tuple[int, bytes]]:
    for index, entry in enumerate(entries):
        if index == after:
            raise RuntimeError("database went away")
        yield index, entry


@pytest.mark.parametrize("existing", [True, False], ids=["replacing", "new"])
def test_a_failed_write_leaves_the_target_untouched_and_no_temp_file(
    tmp_path: Path, existing: bool
) -> None:
    path = tmp_path / "log.jsonl"
    if existing:
        path.write_bytes(b"the previous export\n")
    entries = make_entries(50_000)  # more than the write buffer: some bytes reach the disk
    with pytest.raises(RuntimeError, match="database went away"):
        write_export(
            path,
            origin=ORIGIN,
            checkpoints=[],
            entries=failing(entries, 40_000),
            count=len(entries),
        )
    assert sorted(p.name for p in tmp_path.iterdir()) == (["log.jsonl"] if existing else [])
    if existing:
        assert path.read_bytes() == b"the previous export\n"


@pytest.mark.parametrize(
    ("produced", "message"),
    [
        ([(0, b"{}"), (2, b"{}")], "entry 2 where 1 was expected"),
        ([(0, b"{}")], "gave 1 entries for an export of 2"),
        ([(0, b"{}"), (1, b"{}"), (2, b"{}")], "more than the 2 entries"),
    ],
    ids=["gap", "too-few", "too-many"],
)
def test_entries_that_do_not_match_the_count_fail_the_write(
    tmp_path: Path, produced: list[tuple[int, bytes]], message: str
) -> None:
    path = tmp_path / "log.jsonl"
    path.write_bytes(b"old\n")
    with pytest.raises(LogIntegrityError, match=message):
        write_export(path, origin=ORIGIN, checkpoints=[], entries=produced, count=2)
    assert [p.name for p in tmp_path.iterdir()] == ["log.jsonl"]
    assert path.read_bytes() == b"old\n"


def test_malformed_arguments_are_input_errors(tmp_path: Path) -> None:
    path = tmp_path / "log.jsonl"
    other = NoteSigner("other.example/log", Ed25519PrivateKey.generate())
    foreign = other.sign(Checkpoint("other.example/log", 0, leaf_hash(b""), AT))
    with pytest.raises(InputError, match=r"is of log `other\.example/log`"):
        write_export(path, origin=ORIGIN, checkpoints=[foreign], entries=[], count=0)
    with pytest.raises(InputError, match="cannot be exported: malformed note"):
        write_export(path, origin=ORIGIN, checkpoints=["not a note"], entries=[], count=0)
    with pytest.raises(InputError, match="not a JSON object on one line"):
        write_export(path, origin=ORIGIN, checkpoints=[], entries=[(0, b'{"a":\n1}')], count=1)
    assert list(tmp_path.iterdir()) == []


# -- reading malformed files -------------------------------------------------------------------


@pytest.fixture
def good(tmp_path: Path) -> bytes:
    entries = make_entries(3)
    path = tmp_path / "log.jsonl"
    write_export(
        path,
        origin=ORIGIN,
        checkpoints=notes_for(entries, [3]),
        entries=enumerate(entries),
        count=3,
    )
    return path.read_bytes()


def lines_of(data: bytes) -> list[bytes]:
    return data.splitlines(keepends=True)


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (lambda ls: [], "line 1: the export is empty"),
        (
            lambda ls: [ls[0].replace(b":3,", b": 3,"), *ls[1:]],
            "line 1: the header is not canonical",
        ),
        (lambda ls: [ls[0].replace(b"/1", b"/2"), *ls[1:]], "line 1: the format is"),
        (lambda ls: [ls[0], b"{}\n", *ls[2:]], "line 2: the checkpoint line is not"),
        (lambda ls: [*ls[:3], ls[4], ls[3], *ls[5:]], "line 4: entry index 2, expected 1"),
        (lambda ls: ls[:-1], "line 5: the export ends after 2 entries, the header says 3"),
        (lambda ls: [*ls, ls[-1]], "line 6: more entry lines than the header's 3"),
        (lambda ls: [*ls[:-1], ls[-1][:-1]], "line 5: not an entry line"),
        (
            lambda ls: [*ls[:-1], ls[-1].replace(b'",{', b'",[')],
            "line 5: the entry is not a JSON object",
        ),
    ],
    ids=["empty", "spaced", "format", "checkpoint", "order", "short", "long", "truncated", "array"],
)
def test_malformed_exports_are_input_errors_with_the_line(
    good: bytes, change: object, message: str
) -> None:
    mutated = b"".join(change(lines_of(good)))  # type: ignore[operator]
    with pytest.raises(InputError) as caught:
        read_export(mutated)
    assert str(caught.value).startswith(message)
