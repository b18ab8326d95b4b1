"""Offline verification of an export: every single mutation of a real export is caught, and no
clean export raises a false alarm."""

from __future__ import annotations

import base64
import json
import random
import time
from collections import Counter
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from meridian.audit.export import checkpoint_line, entry_line, header_line, write_export
from meridian.audit.merkle import RootBuilder, leaf_hash
from meridian.audit.note import Checkpoint, NoteSigner, NoteVerifier
from meridian.audit.verify import MAX_PROBLEMS, VerifyResult, verify_entries, verify_export
from meridian.errors import InputError, LogIntegrityError

ORIGIN = "meridian.example/log"
AT = datetime(2026, 11, 28, 9, 0, 0, tzinfo=UTC)
WORDS = ["join", "leave", "grant", "deny", "Zürich", "東京", "São Paulo", "key", "relay", "🙂"]


def canonical(value: object) -> bytes:
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()


def make_entries(rng: random.Random, count: int) -> list[bytes]:
    """Entries shaped like the log's: canonical JSON objects of varying size and content."""
    entries = []
    for i in range(count):
        details: dict[str, object] = {
            f"k{j}": rng.choice(WORDS) * rng.randrange(1, 4) for j in range(rng.randrange(6))
        }
        if rng.random() < 0.3:
            details["list"] = [rng.randrange(-(10**6), 10**6) for _ in range(rng.randrange(5))]
        entries.append(
            canonical(
                {
                    "v": 1,
                    "action": f"meeting.{rng.choice(WORDS)}",
                    "actor": f"user:tok_{rng.getrandbits(40):010x}",
                    "at": (AT + timedelta(seconds=i)).strftime("%Y-%m-%dT%H:%M:%SZ"),
                    "bundle": f"sha256:{rng.getrandbits(256):064x}",
                    "decision": None if rng.random() < 0.5 else {"allow": rng.random() < 0.5},
                    "details": details,
                    "subject": {"id": f"mtg_{i}", "kind": "meeting"},
                }
            )
        )
    return entries


def sign_at(signer: NoteSigner, entries: list[bytes], sizes: list[int]) -> list[str]:
    """Genuine checkpoints of ``entries`` at each of ``sizes`` (a repeated size: a later time)."""
    builder, notes = RootBuilder(), list[str]()
    for size in range(len(entries) + 1):
        if size:
            builder.push(leaf_hash(entries[size - 1]))
        for repeat in range(sizes.count(size)):
            at = AT + timedelta(minutes=size, seconds=repeat)
            notes.append(signer.sign(Checkpoint(signer.name, size, builder.root(), at)))
    return notes


def export_bytes(entries: list[bytes], notes: list[str]) -> bytes:
    return (
        header_line(ORIGIN, len(notes), len(entries))
        + b"".join(checkpoint_line(note) for note in notes)
        + b"".join(entry_line(i, entry) for i, entry in enumerate(entries))
    )


class Log:
    """A realistic log, its export and the key it is signed with."""

    def __init__(self, seed: int, count: int, sizes: list[int]) -> None:
        rng = random.Random(seed)
        self.signer = NoteSigner(ORIGIN, Ed25519PrivateKey.generate())
        self.vkey = self.signer.verifier_key()
        self.verifier = NoteVerifier.from_vkey(self.vkey)
        self.entries = make_entries(rng, count)
        self.notes = sign_at(self.signer, self.entries, sizes)
        self.data = export_bytes(self.entries, self.notes)


SIZES = [0, 1, 500, 1024, 1024, 1500, 1999, 2000]


@pytest.fixture(scope="module")
def log(tmp_path_factory: pytest.TempPathFactory) -> Log:
    log = Log(seed=2026, count=2000, sizes=SIZES)
    # The export as write_export writes it is the one the tests mutate.
    path = tmp_path_factory.mktemp("export") / "log.jsonl"
    write_export(
        path,
        origin=ORIGIN,
        checkpoints=log.notes,
        entries=enumerate(log.entries),
        count=len(log.entries),
    )
    assert path.read_bytes() == log.data
    return log


def split_lines(data: bytes) -> list[bytes]:
    """Lines with their newline, split at ``\\n`` only (the last may lack it)."""
    parts = data.split(b"\n")
    lines = [part + b"\n" for part in parts[:-1]]
    return [*lines, parts[-1]] if parts[-1] else lines


# -- a clean export ----------------------------------------------------------------------------


def test_a_genuine_export_verifies(log: Log, tmp_path: Path) -> None:
    builder = RootBuilder()
    for entry in log.entries:
        builder.push(leaf_hash(entry))
    path = tmp_path / "log.jsonl"
    path.write_bytes(log.data)
    for source in (log.data, path):
        result = verify_export(source, log.vkey)
        assert result == VerifyResult(
            entries=2000,
            checkpoints=len(SIZES),
            size=2000,
            root=builder.root(),
            latest=log.verifier.open(log.notes[-1]),
            problems=(),
        )
        assert result.ok
        result.raise_for_problems()


def test_progress_is_reported(log: Log) -> None:
    seen: list[int] = []
    verify_export(log.data, log.vkey, progress=seen.append)
    assert seen == [2000]
    entries = [b'{"n":%d}' % i for i in range(70_000)]
    data = export_bytes(entries, sign_at(log.signer, entries, [70_000]))
    seen.clear()
    assert verify_export(data, log.vkey, progress=seen.append).ok
    assert seen == [65_536, 70_000]


def test_a_bad_vkey_is_an_input_error(log: Log) -> None:
    with pytest.raises(InputError, match="log verifier key"):
        verify_export(log.data, "not a key")


def test_a_key_of_another_name_finds_nothing_it_trusts(log: Log) -> None:
    other = NoteSigner("other.example/log", Ed25519PrivateKey.generate())
    problems = verify_export(log.data, other.verifier_key()).problems
    assert problems[0].startswith("line 1: header origin `meridian.example/log`, expected")
    assert any("unknown key" in p for p in problems)
    assert problems[-2].startswith("no checkpoint signed by `other.example/log` verifies")
    assert problems[-1] == "entries 0–1999 are not covered by a signed checkpoint"


# -- located problems --------------------------------------------------------------------------


def test_a_flipped_byte_in_an_entry_names_that_entry(log: Log) -> None:
    rng = random.Random(11)
    lines = split_lines(log.data)
    first_entry_line = 1 + len(SIZES)
    for _ in range(50):
        index = rng.randrange(2000)
        line = lines[first_entry_line + index]
        start = line.index(b'",{') + 2  # the entry's bytes, between the prefix and the "]\n"
        position = rng.randrange(start, len(line) - 2)
        mutated = bytearray(line)
        mutated[position] ^= rng.choice([x for x in range(1, 256) if x != line[position] ^ 0x0A])
        changed = lines.copy()
        changed[first_entry_line + index] = bytes(mutated)
        problems = verify_export(b"".join(changed), log.vkey).problems
        assert problems[0].startswith(
            f"entry {index}: leaf hash recorded `{leaf_hash(log.entries[index]).hex()}`"
        )
        roots = [p for p in problems if "signed root" in p]
        later = [size for size in SIZES if size > index]
        assert len(roots) == len(later)
        assert all(f"entries 0–{size - 1} give" in p for p, size in zip(roots, later, strict=True))


def test_problems_say_where_and_what_was_expected(log: Log) -> None:
    lines = split_lines(log.data)
    first = 1 + len(SIZES)
    # entry 18 deleted: the next line carries 19 where 18 belongs
    problems = verify_export(b"".join(lines[: first + 18] + lines[first + 19 :]), log.vkey).problems
    line_number = first + 18 + 1
    assert problems[0] == f"line {line_number}: entry index 19, expected 18"
    assert "line 1: the header says 2000 entries, the export has 1999" in problems
    assert problems[-1].startswith("checkpoint 8 (line 9, size 2000): it has 2000 entries")
    root_problem = next(p for p in problems if p.startswith("checkpoint 3 "))
    assert root_problem.startswith("checkpoint 3 (line 4, size 500): signed root `")
    assert "`, entries 0–499 give `" in root_problem
    # two checkpoints out of order
    swapped = [*lines[:3], lines[4], lines[3], *lines[5:]]
    problems = verify_export(b"".join(swapped), log.vkey).problems
    assert problems == (
        "line 5: checkpoint 4: size 500 at 2026-11-28T17:20:00Z after size 1024 at "
        "2026-11-29T02:04:00Z: checkpoints must come in increasing size, then time",
    )
    # truncated at the end
    problems = verify_export(log.data[:-10], log.vkey).problems
    assert problems[0] == (
        f"line {first + 2000}: the export is truncated: its last line has no newline"
    )


def test_entries_beyond_the_last_checkpoint_are_reported(log: Log) -> None:
    data = export_bytes(log.entries, log.notes[:-2])  # last checkpoint at 1500
    assert verify_export(data, log.vkey).problems == (
        "entries 1500–1999 are not covered by a signed checkpoint",
    )


def test_an_entry_that_is_not_a_json_object_is_reported(log: Log) -> None:
    notes = sign_at(log.signer, [b"[1,2]", b"{nope}"], [2])
    problems = verify_export(export_bytes([b"[1,2]", b"{nope}"], notes), log.vkey).problems
    assert problems == (
        "entry 0: not a JSON object: `[1,2]`",
        "entry 1: not a JSON object: `{nope}`",
    )


def test_problems_are_capped_with_a_count(log: Log) -> None:
    garbage = log.data.split(b"\n", 1)[0] + b"\n" + b"nonsense\n" * (MAX_PROBLEMS + 500)
    problems = verify_export(garbage, log.vkey).problems
    assert len(problems) == MAX_PROBLEMS + 1
    assert problems[-1].startswith("… and ")


# -- saved checkpoints -------------------------------------------------------------------------


def test_an_earlier_genuine_checkpoint_is_consistent(log: Log) -> None:
    for note in log.notes:
        assert verify_export(log.data, log.vkey, saved_checkpoint=note).ok


def test_a_checkpoint_of_another_log_is_not_consistent(log: Log) -> None:
    # Signed with the same key, but over different entries: a fork, or a rewritten history.
    forked = make_entries(random.Random(99), 500)
    note = sign_at(log.signer, forked, [500])[0]
    problems = verify_export(log.data, log.vkey, saved_checkpoint=note).problems
    assert len(problems) == 1
    assert problems[0].startswith(
        "saved checkpoint (size 500) is not consistent with the log: signed root `"
    )
    assert "entries 0–499 give" in problems[0]


def test_a_saved_checkpoint_beyond_the_log_is_not_consistent(log: Log) -> None:
    longer = log.entries + make_entries(random.Random(3), 5)
    note = sign_at(log.signer, longer, [2005])[0]
    assert verify_export(log.data, log.vkey, saved_checkpoint=note).problems == (
        "saved checkpoint (size 2005) is not consistent with the log: it has 2005 entries, "
        "the log only 2000",
    )


def test_a_saved_checkpoint_by_another_key_is_refused(log: Log) -> None:
    other = NoteSigner(ORIGIN, Ed25519PrivateKey.generate())
    note = sign_at(other, log.entries, [500])[0]
    problems = verify_export(log.data, log.vkey, saved_checkpoint=note).problems
    assert len(problems) == 1
    assert problems[0].startswith("saved checkpoint: unknown key: ")


def test_raise_for_problems(log: Log) -> None:
    result = verify_export(log.data[:-1], log.vkey)
    with pytest.raises(LogIntegrityError) as caught:
        result.raise_for_problems()
    assert caught.value.problems == result.problems


# -- a live log --------------------------------------------------------------------------------


def test_streamed_entries_verify_against_the_service_checkpoints(log: Log) -> None:
    lines = [entry_line(i, entry) for i, entry in enumerate(log.entries)]
    assert verify_entries(log.notes[-1:], lines, log.vkey).ok
    assert verify_entries(log.notes, iter(lines), log.vkey, saved_checkpoint=log.notes[2]).ok
    lines[700] = lines[700].replace(b'"v":1', b'"v":2')
    problems = verify_entries(log.notes[-1:], lines, log.vkey).problems
    assert problems[0].startswith("entry 700: leaf hash recorded")
    assert problems[1].startswith("checkpoint 1 (size 2000): signed root")


# -- 10,000 mutations --------------------------------------------------------------------------


def mutate(rng: random.Random, data: bytes, lines: list[bytes], log: Log) -> tuple[str, bytes]:
    kind = rng.choice(["flip", "delete", "swap", "truncate", "insert", "checkpoint"])
    if kind == "flip":
        mutated = bytearray(data)
        mutated[rng.randrange(len(data))] ^= rng.randrange(1, 256)
        return kind, bytes(mutated)
    if kind == "truncate":
        return kind, data[: rng.randrange(len(data))]
    changed = lines.copy()
    if kind == "delete":
        del changed[rng.randrange(len(changed))]
    elif kind == "swap":
        i, j = rng.sample(range(len(changed)), 2)
        changed[i], changed[j] = changed[j], changed[i]
    elif kind == "insert":
        if rng.random() < 0.5:
            line = rng.choice(lines)
        else:
            line = rng.randbytes(rng.randrange(1, 120)) + b"\n"
        changed.insert(rng.randrange(len(changed) + 1), line)
    else:
        k = rng.randrange(len(log.notes))
        changed[1 + k] = checkpoint_line(altered_note(rng, log, log.notes[k]))
    return kind, b"".join(changed)


OTHER = NoteSigner(ORIGIN, Ed25519PrivateKey.generate())


def altered_note(rng: random.Random, log: Log, note: str) -> str:
    """The note with its size, root or time changed under the same signature, or re-signed by
    another key under the same name."""
    body, signature = note.split("\n\n")
    origin, size, root, stamp = body.split("\n")
    what = rng.choice(["size", "root", "time", "key"])
    if what == "key":
        return OTHER.sign_text(body.encode() + b"\n")
    if what == "size":
        delta = rng.randrange(1, 600)
        size = str(
            int(size) + delta if rng.random() < 0.5 or int(size) < delta else int(size) - delta
        )
    elif what == "root":
        root = base64.b64encode(rng.randbytes(32)).decode()
    else:
        at = datetime.strptime(stamp, "time %Y-%m-%dT%H:%M:%SZ").replace(tzinfo=UTC)
        stamp = (at + timedelta(seconds=rng.choice([-1, 1]) * rng.randrange(1, 10**6))).strftime(
            "time %Y-%m-%dT%H:%M:%SZ"
        )
    return "\n".join([origin, size, root, stamp]) + "\n\n" + signature


class CachingVerifier(NoteVerifier):
    """The log's verifier, remembering what each distinct note opened to (or failed with).

    Only a speed-up: most mutations leave the checkpoint notes as they were, and an Ed25519
    check is as slow as hashing a hundred entries.
    """

    def __init__(self, verifier: NoteVerifier) -> None:
        super().__init__(verifier.name, verifier.public_key)
        self._cache: dict[str | bytes, Checkpoint | Exception] = {}

    def open(self, note: str | bytes) -> Checkpoint:
        if note not in self._cache:
            try:
                self._cache[note] = super().open(note)
            except Exception as exc:  # noqa: BLE001 - replayed below, whatever it was
                self._cache[note] = exc
        outcome = self._cache[note]
        if isinstance(outcome, Exception):
            raise outcome
        return outcome


@pytest.mark.slow  # ~5 ms a verification of the 2,000-entry export: about a minute in all
def test_every_one_of_10000_random_mutations_is_reported(log: Log) -> None:
    rng = random.Random(20261128)
    lines = split_lines(log.data)
    verifier = CachingVerifier(log.verifier)
    kinds: Counter[str] = Counter()
    unchanged: Counter[str] = Counter()
    started = time.perf_counter()
    for _ in range(10_000):
        kind, mutated = mutate(rng, log.data, lines, log)
        if mutated == log.data:
            unchanged[kind] += 1  # nothing to find (two identical lines swapped, say)
            continue
        kinds[kind] += 1
        problems = verify_export(mutated, verifier).problems
        assert problems, f"{kind} mutation not reported"
        assert all(p and "\n" not in p for p in problems)
    elapsed = time.perf_counter() - started
    assert sum(kinds.values()) + sum(unchanged.values()) == 10_000
    assert sum(unchanged.values()) < 50, unchanged
    assert min(kinds.values()) > 1_400, kinds
    print(
        f"\n10,000 mutations: {dict(kinds)}; skipped as unchanged: {dict(unchanged)}; {elapsed:.1f}s"
    )


def test_1000_clean_exports_raise_no_alarm() -> None:
    rng = random.Random(7)
    signer = NoteSigner(ORIGIN, Ed25519PrivateKey.generate())
    verifier = NoteVerifier.from_vkey(signer.verifier_key())
    for run in range(1_000):
        count = rng.choice([0, 1, 2, 3, rng.randrange(4, 40), rng.randrange(40, 130)])
        sizes = sorted(rng.sample(range(count + 1), rng.randrange(0, min(count + 1, 5))))
        sizes.append(count)
        if rng.random() < 0.2:
            sizes.append(rng.choice(sizes))  # a size signed twice, at two times
        entries = make_entries(rng, count)
        notes = sign_at(signer, entries, sorted(sizes))
        data = export_bytes(entries, notes)
        saved = rng.choice(notes) if rng.random() < 0.5 else None
        result = verify_export(data, verifier, saved_checkpoint=saved)
        assert result.ok, (run, result.problems)
        assert (result.entries, result.checkpoints) == (count, len(notes))
