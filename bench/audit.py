"""Audit log benchmark: appends with proofs, offline verification, proofs — each against a
baseline measured in the same run.

Usage::

    .venv/bin/python bench/audit.py                    # rich tables
    .venv/bin/python bench/audit.py --json             # one JSON object on stdout
    .venv/bin/python bench/audit.py --quick            # small sizes: a smoke run of a few seconds
    .venv/bin/python bench/audit.py --append-size 20000 --verify-size 100000 --no-postgres

While it runs, a bar on stderr follows its cases, redrawn only between them: no thread runs
beside a timed section. It ends with one line on stderr, ``bench/audit.py: 9 cases in …`` (9 by
default with PostgreSQL reachable).

What is measured
----------------

*Appends* (:mod:`meridian.audit.records`, :class:`meridian.audit.log.AuditLog`): ``N`` entries
(``--append-size``, 100,000) go through :func:`~meridian.audit.record` in write transactions of
``B`` entries (``Database.write``: ``BEGIN IMMEDIATE``, WAL, ``synchronous=FULL`` on SQLite), each
transaction taking its positions from the ``log_head`` row at commit; then one
:meth:`AuditLog.sync` reads every new leaf into the in-memory tree, so every entry has an
inclusion proof. The figure is entries/s over the appends *and* the sync; then the proof of the
last entry is fetched (:meth:`AuditLog.inclusion`) and verified, and its time is shown. ``B`` is
1000, 100 and 1; at ``B = 1`` every entry is its own durable commit (an fsync), so that row uses
``--single-size`` (2,000) entries. The baseline, same run, same database, same facts: the record
as Meridian wrote it before the log — ORM rows through the same ``Database.write`` and
``add_all``, the decision and details in JSON columns, into a plain table with the same indexes,
with no canonical bytes, no leaf hash and no head row (its ``seq`` is a counter in this
process). The log writes its entries with one Core multi-row INSERT per transaction and keeps
the decision only inside the entry, so it can be faster than that baseline. Each database is new (a temporary folder; PostgreSQL: a database
created for the run on ``--postgres-url``'s server and dropped after, skipped if unreachable).
The facts are half decisions (real ``Decision`` values from the engine, stored with
``to_dict()`` by both sides) and half state changes with small ``details``.

*Verification* (:func:`meridian.audit.verify.verify_export`): an export of ``--verify-size``
(1,000,000) entries is written with :func:`~meridian.audit.export.write_export`: synthetic
entries shaped like Meridian's (``action``, ``actor``, ``at``, ``bundle``, ``decision``,
``details``, ``recorded_at``, ``subject``, ``v``; a compact decision on half of them), made
canonical with :func:`meridian.audit.entry.canonical`, with a checkpoint every 100,000 entries
and one at the end, signed by a key made for the run. The figure is entries/s of
``verify_export(path, vkey)`` (which must find no problem). The floor, same run, same file: read
it line by line and SHA-256 each line, nothing else. ``--rounds`` (3) interleaved rounds of each;
the medians are reported.

*Proofs* (:mod:`meridian.audit.merkle`): a :class:`~meridian.audit.merkle.Tree` of
``--tree-size`` (1,000,000) leaves, built with one ``extend`` (timed). Over ``--pairs`` (3,000)
seeded random (index, size) pairs with size in the upper half of the tree, the mean time of
``inclusion_proof`` and of ``verify_inclusion``, and over as many (first, second) pairs of
``consistency_proof`` and ``verify_consistency``; the proof lengths; and the time of
``root(size)`` a verifier also needs (the roots are computed before the proofs are timed).
The peer: ``pymerkle``'s ``InmemoryTree`` of ``--peer-size`` (1,000,000) leaves over the same
data (its roots must equal ours), on the same pairs: ``prove_inclusion`` +
``verify_inclusion``, ``prove_consistency`` + ``verify_consistency``, ``get_root``.

Targets: at least 20,000 entries/s appended with proofs available on SQLite, and at least
200,000 entries/s verified from an export of 1,000,000 entries.
"""

from __future__ import annotations

import argparse
import gc
import hashlib
import json
import os
import random
import socket
import statistics
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, ClassVar

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from sqlalchemy import BigInteger, Integer, MetaData, String, create_engine, text
from sqlalchemy.engine import make_url
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

sys.path.insert(0, str(Path(__file__).resolve().parent))

from meridian.audit import Actor, record
from meridian.audit.entry import canonical, entry_object
from meridian.audit.export import write_export
from meridian.audit.log import AuditLog
from meridian.audit.merkle import (
    RootBuilder,
    Tree,
    leaf_hash,
    verify_consistency,
    verify_inclusion,
)
from meridian.audit.note import Checkpoint, NoteSigner
from meridian.audit.records import attach_log
from meridian.audit.verify import verify_export
from meridian.cli.progress import CaseBar, bench_cases, summary
from meridian.clock import system_clock
from meridian.policy.decision import Decision
from meridian.storage import Database, migrate
from meridian.storage.models import Base

TARGET_APPENDS_PER_S = 20_000
TARGET_VERIFY_PER_S = 200_000
APPEND_SIZE = 100_000
SINGLE_SIZE = 2_000
BATCHES = (1000, 100, 1)
VERIFY_SIZE = 1_000_000
CHECKPOINT_EVERY = 100_000
TREE_SIZE = 1_000_000
PEER_SIZE = 1_000_000
PAIRS = 3_000
ROUNDS = 3
SEED = 20201218
ORIGIN = "bench.meridian.example/log"
POSTGRES_URL = "postgresql+psycopg://postgres@127.0.0.1:5432/test"
BUNDLE = "sha256:956b825cbc22df559c03bbecdf8216af1267d341dcd5dc0649b60abade0614ac"
START = datetime(2021, 3, 1, 10, 0, tzinfo=UTC)

Row = dict[str, Any]


# -- appends ------------------------------------------------------------------------------------


class _Bare(DeclarativeBase):
    metadata = MetaData()
    type_annotation_map: ClassVar[dict[Any, Any]] = Base.type_annotation_map


class PlainRecord(_Bare):
    """The baseline's table: ``records``' columns and indexes, without ``entry`` and ``leaf``."""

    __tablename__ = "bench_plain_records"

    seq: Mapped[int] = mapped_column(
        BigInteger().with_variant(Integer, "sqlite"), primary_key=True, autoincrement=False
    )
    at: Mapped[datetime]
    recorded_at: Mapped[datetime]
    actor: Mapped[str] = mapped_column(String(100))
    action: Mapped[str] = mapped_column(String(50), index=True)
    subject_kind: Mapped[str] = mapped_column(String(30))
    subject_id: Mapped[str | None] = mapped_column(String(100), index=True)
    bundle_digest: Mapped[str] = mapped_column(String(80))
    decision: Mapped[dict[str, Any] | None]
    details: Mapped[dict[str, Any]]


def _decisions() -> list[Decision]:
    """Real decisions of the engine, from the decision benchmark's seeded workload."""
    from _workload import build_workload
    from meridian.policy.engine import Engine

    engine = Engine()
    workload = build_workload(engine.bundle, 200, SEED)
    return [engine.decide(request) for request in workload.parsed]


def append_facts(count: int, decisions: list[Decision]) -> list[Row]:
    """``count`` keyword sets for :func:`record`: half decisions, half state changes."""
    rng = random.Random(SEED)
    facts = []
    for i in range(count):
        actor = Actor("operator", f"tok_{rng.getrandbits(40):010x}")
        at = START + timedelta(seconds=i)
        if i % 2 == 0:
            decision = decisions[i // 2 % len(decisions)]
            facts.append(
                {
                    "actor": actor,
                    "action": f"decision.{decision.action}",
                    "subject_kind": "account",
                    "subject_id": f"acct_{i:010x}",
                    "at": at,
                    "bundle_digest": BUNDLE,
                    "decision": decision,
                    "details": {"channel": "direct", "request": i},
                }
            )
        else:
            facts.append(
                {
                    "actor": actor,
                    "action": "account.regions",
                    "subject_kind": "account",
                    "subject_id": f"acct_{i:010x}",
                    "at": at,
                    "bundle_digest": BUNDLE,
                    "decision": None,
                    "details": {
                        "before": {"chosen": None, "opt_in": None},
                        "chosen": ["DE", "US"],
                        "opt_in": None,
                        "opted_in_now": [],
                        "by": str(actor),
                    },
                }
            )
    return facts


def _plain_row(seq: int, fact: Row) -> PlainRecord:
    decision = fact["decision"]
    return PlainRecord(
        seq=seq,
        at=fact["at"],
        recorded_at=system_clock(),
        actor=str(fact["actor"]),
        action=fact["action"],
        subject_kind=fact["subject_kind"],
        subject_id=fact["subject_id"],
        bundle_digest=fact["bundle_digest"],
        decision=None if decision is None else decision.to_dict(),
        details=fact["details"],
    )


def append_plain(db: Database, facts: list[Row], batch: int) -> float:
    """Seconds to write ``facts`` to the plain table, ``batch`` rows per transaction."""
    gc.collect()
    start = time.perf_counter()
    for low in range(0, len(facts), batch):
        with db.write() as session:
            session.add_all(
                [_plain_row(low + i, f) for i, f in enumerate(facts[low : low + batch])]
            )
    return time.perf_counter() - start


def append_log(db: Database, log: AuditLog, facts: list[Row], batch: int) -> dict[str, float]:
    """Seconds to record ``facts`` (``batch`` per transaction), to sync, and to prove the last."""
    gc.collect()
    start = time.perf_counter()
    for low in range(0, len(facts), batch):
        with db.write() as session:
            for fact in facts[low : low + batch]:
                record(session, **fact)
    appended = time.perf_counter()
    size = log.sync()
    synced = time.perf_counter()
    if size != len(facts):
        raise RuntimeError(f"the log holds {size} entries after {len(facts)} appends")
    proved_size, leaf, proof, root = log.inclusion(size - 1)
    verify_inclusion(leaf, size - 1, proved_size, proof, root)
    proved = time.perf_counter()
    return {
        "append_s": appended - start,
        "sync_s": synced - appended,
        "proof_ms": (proved - synced) * 1000,
        "proof_hashes": len(proof),
    }


@contextmanager
def _sqlite_url() -> Iterator[str]:
    with tempfile.TemporaryDirectory(prefix="meridian-bench-audit-") as tmp:
        yield f"sqlite:///{tmp}/log.db"


def _reachable(url: str) -> bool:
    parsed = make_url(url)
    try:
        with socket.create_connection((parsed.host or "127.0.0.1", parsed.port or 5432), 2):
            return True
    except OSError:
        return False


@contextmanager
def _postgres_url(base: str) -> Iterator[str]:
    """A new database on ``base``'s server for the block, dropped after."""
    admin = create_engine(base, isolation_level="AUTOCOMMIT", pool_size=1)
    name = f"meridian_bench_audit_{os.getpid()}_{random.getrandbits(24):06x}"
    try:
        with admin.connect() as conn:
            conn.execute(text(f'CREATE DATABASE "{name}"'))
        try:
            yield make_url(base).set(database=name).render_as_string(hide_password=False)
        finally:
            with admin.connect() as conn:
                conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    finally:
        admin.dispose()


def measure_appends_on(
    backend: str, database_url: Callable[[], Any], facts: list[Row], single: int, bar: CaseBar
) -> list[Row]:
    rows = []
    for batch in BATCHES:
        subset = facts[:single] if batch == 1 else facts
        bar.start(f"appends, {backend}, batch {batch}")
        with database_url() as url:
            db = attach_log(Database(url))
            try:
                migrate(db)
                _Bare.metadata.create_all(db.engine)
                log = AuditLog(db, NoteSigner(ORIGIN, Ed25519PrivateKey.generate()))
                plain_s = append_plain(db, subset, batch)
                timed = append_log(db, log, subset, batch)
            finally:
                db.dispose()
        count = len(subset)
        log_s = timed["append_s"] + timed["sync_s"]
        rows.append(
            {
                "backend": backend,
                "batch": batch,
                "entries": count,
                "log_per_s": count / log_s,
                "append_only_per_s": count / timed["append_s"],
                "sync_s": timed["sync_s"],
                "last_proof_ms": timed["proof_ms"],
                "last_proof_hashes": timed["proof_hashes"],
                "plain_per_s": count / plain_s,
                "log_vs_plain": (count / log_s) / (count / plain_s),
            }
        )
    return rows


def measure_appends(
    size: int, single: int, postgres: str | None, reachable: bool, bar: CaseBar
) -> dict[str, Any]:
    """Appends on SQLite, and on PostgreSQL at ``postgres`` if it is ``reachable``."""
    facts = append_facts(size, _decisions())
    rows = measure_appends_on("sqlite", _sqlite_url, facts, min(single, size), bar)
    skipped = None
    if postgres is not None:
        if reachable:
            rows += measure_appends_on(
                "postgresql", lambda: _postgres_url(postgres), facts, min(single, size), bar
            )
        else:
            skipped = f"PostgreSQL at {make_url(postgres).host} is unreachable"
    return {"rows": rows, "postgres_skipped": skipped}


# -- verification -------------------------------------------------------------------------------


_ACTIONS = (
    ("decision.register", "account", "register"),
    ("decision.purchase", "subscription", "purchase"),
    ("decision.join", "meeting", "join"),
    ("decision.host", "meeting", "host"),
)
_RULES = (
    ("permit", "join-open", "US"),
    ("permit", "purchase-direct", "DE"),
    ("deny", "cn-partner-only", "CN"),
    ("permit", "register-org", "HK"),
    ("deny", "embargo", "IR"),
)
_CHANGES = (
    ("account.regions", "account"),
    ("token.create", "token"),
    ("meeting.create", "meeting"),
    ("subscription.checkout", "subscription"),
)


def export_entries(count: int) -> Iterator[bytes]:
    """``count`` canonical entries shaped like Meridian's (seeded; ~300–500 bytes each)."""
    rng = random.Random(SEED)
    for i in range(count):
        at = START + timedelta(seconds=i, microseconds=rng.randrange(1_000_000))
        actor = f"operator:tok_{rng.getrandbits(40):010x}"
        if i % 2 == 0:
            action, kind, verb = _ACTIONS[rng.randrange(len(_ACTIONS))]
            effect, rule, country = _RULES[rng.randrange(len(_RULES))]
            decision: dict[str, Any] | None = {
                "action": verb,
                "decision": "allow" if effect == "permit" else "deny",
                "location": {"country": country, "judged_under": [country]},
                "reasons": [{"effect": effect, "jurisdiction": country, "rule": rule}],
            }
            details: dict[str, Any] = {"channel": "direct", "request": i}
        else:
            action, kind = _CHANGES[rng.randrange(len(_CHANGES))]
            decision = None
            details = {
                "before": {"chosen": None, "opt_in": None},
                "chosen": ["DE", "US"],
                "by": actor,
                "plan": rng.choice(("pro", "business", "enterprise")),
            }
        yield canonical(
            entry_object(
                at=at,
                recorded_at=at + timedelta(milliseconds=3),
                actor=actor,
                action=action,
                subject_kind=kind,
                subject_id=f"{kind[:4]}_{rng.getrandbits(48):012x}",
                bundle_digest=BUNDLE,
                decision=decision,
                details=details,
            )
        )


def build_export(path: Path, count: int) -> tuple[str, dict[str, Any]]:
    """Write the export of ``count`` entries to ``path``; the vkey and what was written."""
    signer = NoteSigner(ORIGIN, Ed25519PrivateKey.generate())
    start = time.perf_counter()
    entries = list(export_entries(count))
    made = time.perf_counter()
    builder = RootBuilder()
    notes = []
    when = system_clock()
    for position, entry in enumerate(entries, 1):
        builder.push(leaf_hash(entry))
        if position % CHECKPOINT_EVERY == 0 or position == count:
            checkpoint = Checkpoint(origin=ORIGIN, size=position, root=builder.root(), time=when)
            notes.append(signer.sign(checkpoint))
    write_export(path, origin=ORIGIN, checkpoints=notes, entries=enumerate(entries), count=count)
    written = time.perf_counter()
    sizes = [len(e) for e in entries]
    return signer.verifier_key(), {
        "entries": count,
        "checkpoints": len(notes),
        "file_mb": path.stat().st_size / 1e6,
        "entry_bytes_mean": statistics.fmean(sizes),
        "entry_bytes_min": min(sizes),
        "entry_bytes_max": max(sizes),
        "make_entries_s": made - start,
        "write_s": written - made,
    }


def hash_floor(path: Path) -> float:
    """Seconds to read ``path`` line by line and SHA-256 every line: verification's floor."""
    sha256 = hashlib.sha256
    gc.collect()
    start = time.perf_counter()
    with open(path, "rb") as stream:
        for line in stream:
            sha256(line).digest()
    return time.perf_counter() - start


def measure_verify(size: int, rounds: int, bar: CaseBar) -> dict[str, Any]:
    bar.start(f"verify_export, {size:,} entries")
    with tempfile.TemporaryDirectory(prefix="meridian-bench-audit-") as tmp:
        path = Path(tmp) / "log.jsonl"
        vkey, written = build_export(path, size)
        gc.collect()
        verify_times, floor_times = [], []
        result = None
        for _ in range(rounds):
            floor_times.append(hash_floor(path))
            gc.collect()
            start = time.perf_counter()
            result = verify_export(path, vkey)
            verify_times.append(time.perf_counter() - start)
            if not result.ok:
                raise RuntimeError(f"the bench export does not verify: {result.problems[:3]}")
    assert result is not None
    verify_s = statistics.median(verify_times)
    floor_s = statistics.median(floor_times)
    return {
        **written,
        "rounds": rounds,
        "verified_entries": result.entries,
        "verified_checkpoints": result.checkpoints,
        "verify_s": verify_s,
        "verify_per_s": size / verify_s,
        "verify_times_s": verify_times,
        "floor_s": floor_s,
        "floor_per_s": size / floor_s,
        "floor_times_s": floor_times,
        "verify_vs_floor_time": verify_s / floor_s,
    }


# -- proofs -------------------------------------------------------------------------------------


def _pairs(size: int, count: int, rng: random.Random) -> list[tuple[int, int]]:
    """``count`` pairs (a, b): b in the tree's upper half, 0 <= a < b."""
    pairs = []
    for _ in range(count):
        b = rng.randint(max(1, size // 2), size)
        pairs.append((rng.randrange(b), b))
    return pairs


def _mean_us(fn: Callable[[], Any], calls: int) -> float:
    gc.collect()
    start = time.perf_counter_ns()
    fn()
    return (time.perf_counter_ns() - start) / calls / 1000


def measure_ours(
    leaves: list[bytes], incl: list[tuple[int, int]], cons: list[tuple[int, int]]
) -> Row:
    tree = Tree()
    gc.collect()
    start = time.perf_counter()
    tree.extend(leaves)
    extend_s = time.perf_counter() - start
    n = len(incl)
    sizes = sorted({b for _, b in incl} | {b for _, b in cons} | {a + 1 for a, _ in cons})
    root_us = _mean_us(lambda: [tree.root(s) for s in sizes], len(sizes))
    roots = {s: tree.root(s) for s in sizes}
    leaf_of = {i: tree.leaf(i) for i, _ in incl}

    proofs: list[list[bytes]] = []
    prove_us = _mean_us(lambda: proofs.extend(tree.inclusion_proof(i, s) for i, s in incl), n)

    def check_inclusion() -> None:
        for (i, s), proof in zip(incl, proofs, strict=True):
            verify_inclusion(leaf_of[i], i, s, proof, roots[s])

    verify_us = _mean_us(check_inclusion, n)
    # consistency from first = a + 1 (never 0, which has an empty proof) to second = b
    cproofs: list[list[bytes]] = []
    cprove_us = _mean_us(
        lambda: cproofs.extend(tree.consistency_proof(a + 1, b) for a, b in cons), n
    )

    def check_consistency() -> None:
        for (a, b), proof in zip(cons, cproofs, strict=True):
            verify_consistency(a + 1, b, roots[a + 1], roots[b], proof)

    cverify_us = _mean_us(check_consistency, n)
    full = tree.size
    last = tree.inclusion_proof(full - 1, full)
    lengths = [len(p) for p in proofs]
    clengths = [len(p) for p in cproofs]
    return {
        "size": full,
        "extend_s": extend_s,
        "extend_us_per_leaf": extend_s / full * 1e6,
        "pairs": n,
        "inclusion_prove_us": prove_us,
        "inclusion_verify_us": verify_us,
        "inclusion_us": prove_us + verify_us,
        "consistency_prove_us": cprove_us,
        "consistency_verify_us": cverify_us,
        "consistency_us": cprove_us + cverify_us,
        "root_us": root_us,
        "inclusion_hashes_mean": statistics.fmean(lengths),
        "inclusion_hashes_max": max(lengths),
        "inclusion_bytes_max": max(lengths) * 32,
        "last_entry_hashes": len(last),
        "consistency_hashes_mean": statistics.fmean(clengths),
        "consistency_hashes_max": max(clengths),
        "consistency_bytes_max": max(clengths) * 32,
        "_roots": {s: roots[s] for s in (sizes[0], sizes[-1])},
    }


def measure_pymerkle(
    data: list[bytes], incl: list[tuple[int, int]], cons: list[tuple[int, int]]
) -> Row:
    import pymerkle
    from pymerkle import InmemoryTree

    tree = InmemoryTree(algorithm="sha256")
    gc.collect()
    start = time.perf_counter()
    for item in data:
        tree.append_entry(item)
    build_s = time.perf_counter() - start
    n = len(incl)
    sizes = sorted({b for _, b in incl} | {b for _, b in cons} | {a + 1 for a, _ in cons})
    root_us = _mean_us(lambda: [tree.get_root(s) for s in sizes], len(sizes))
    roots = {s: tree.get_root(s) for s in sizes}
    leaf_of = {i: tree.get_leaf(i + 1) for i, _ in incl}

    proofs: list[Any] = []
    prove_us = _mean_us(lambda: proofs.extend(tree.prove_inclusion(i + 1, s) for i, s in incl), n)

    def check_inclusion() -> None:
        for (i, s), proof in zip(incl, proofs, strict=True):
            pymerkle.verify_inclusion(leaf_of[i], roots[s], proof)

    verify_us = _mean_us(check_inclusion, n)
    cproofs: list[Any] = []
    cprove_us = _mean_us(
        lambda: cproofs.extend(tree.prove_consistency(a + 1, b) for a, b in cons), n
    )

    def check_consistency() -> None:
        for (a, b), proof in zip(cons, cproofs, strict=True):
            pymerkle.verify_consistency(roots[a + 1], roots[b], proof)

    cverify_us = _mean_us(check_consistency, n)
    return {
        "version": pymerkle.__version__,
        "size": tree.get_size(),
        "build_s": build_s,
        "build_us_per_leaf": build_s / len(data) * 1e6,
        "inclusion_prove_us": prove_us,
        "inclusion_verify_us": verify_us,
        "inclusion_us": prove_us + verify_us,
        "consistency_prove_us": cprove_us,
        "consistency_verify_us": cverify_us,
        "consistency_us": cprove_us + cverify_us,
        "root_us": root_us,
        "inclusion_hashes_mean": statistics.fmean(len(p.path) for p in proofs),
        "consistency_hashes_mean": statistics.fmean(len(p.path) for p in cproofs),
        "_roots": {s: bytes(roots[s]) for s in (sizes[0], sizes[-1])},
    }


def proof_cases(size: int, peer_size: int) -> int:
    """How many cases :func:`measure_proofs` runs: our tree, at the peer's size too if it
    differs, and the peer's."""
    return 1 + (peer_size not in (0, size)) + (peer_size != 0)


def measure_proofs(size: int, peer_size: int, pairs: int, bar: CaseBar) -> dict[str, Any]:
    bar.start(f"proofs, meridian Tree of {size:,}")
    data = [i.to_bytes(8, "big") for i in range(max(size, peer_size))]
    leaves = [leaf_hash(d) for d in data[:size]]
    rng = random.Random(SEED)
    incl, cons = _pairs(size, pairs, rng), _pairs(size, pairs, rng)
    ours = measure_ours(leaves, incl, cons)
    del leaves
    if peer_size in (0, size):
        ours_at_peer = ours
    else:
        bar.start(f"proofs, meridian Tree of {peer_size:,}")
        rng = random.Random(SEED)
        pincl, pcons = _pairs(peer_size, pairs, rng), _pairs(peer_size, pairs, rng)
        ours_at_peer = measure_ours([leaf_hash(d) for d in data[:peer_size]], pincl, pcons)
        incl, cons = pincl, pcons
    peer = None
    if peer_size:
        bar.start(f"proofs, pymerkle of {peer_size:,}")
        peer = measure_pymerkle(data[:peer_size], incl, cons)
        if peer.pop("_roots") != ours_at_peer["_roots"]:
            raise RuntimeError("pymerkle's roots differ from ours on the same leaves")
    ours.pop("_roots")
    ours_at_peer.pop("_roots", None)
    ratios = None
    if peer is not None:
        ratios = {
            k: ours_at_peer[k] / peer[k] for k in ("inclusion_us", "consistency_us", "root_us")
        }
        ratios["build"] = ours_at_peer["extend_s"] / peer["build_s"]
    return {
        "ours": ours,
        "ours_at_peer_size": None if ours_at_peer is ours else ours_at_peer,
        "pymerkle": peer,
        "ours_vs_pymerkle": ratios,
    }


# -- report -------------------------------------------------------------------------------------


def planned_cases(args: argparse.Namespace, reachable: bool) -> int:
    """How many cases :func:`run` runs (``reachable``: PostgreSQL answers)."""
    appends = len(BATCHES) * (2 if reachable else 1)
    return appends + 1 + proof_cases(args.tree_size, args.peer_size)


def run(args: argparse.Namespace, reachable: bool, bar: CaseBar) -> dict[str, Any]:
    from api import machine_info

    load_before = os.getloadavg()
    report: dict[str, Any] = {
        "benchmark": "audit",
        "at": datetime.now(UTC).isoformat(timespec="seconds"),
        "machine": machine_info(
            ("meridian", "sqlalchemy", "psycopg", "orjson", "cryptography", "pymerkle")
        ),
        "appends": measure_appends(
            args.append_size, args.single_size, args.postgres_url, reachable, bar
        ),
        "verify": measure_verify(args.verify_size, args.rounds, bar),
        "proofs": measure_proofs(args.tree_size, args.peer_size, args.pairs, bar),
    }
    report["load"] = {"before": load_before, "after": os.getloadavg()}
    sqlite = [r for r in report["appends"]["rows"] if r["backend"] == "sqlite" and r["batch"] > 1]
    best = max(r["log_per_s"] for r in sqlite) if sqlite else None
    at_100 = next((r["log_per_s"] for r in sqlite if r["batch"] == 100), None)
    verify = report["verify"]["verify_per_s"]
    report["targets"] = {
        "appends_per_s_sqlite": {
            "target": TARGET_APPENDS_PER_S,
            "best_batch": best,
            "batch_100": at_100,
            "met": best is not None and best >= TARGET_APPENDS_PER_S,
        },
        "verify_per_s": {
            "target": TARGET_VERIFY_PER_S,
            "entries": args.verify_size,
            "measured": verify,
            "met": verify >= TARGET_VERIFY_PER_S,
        },
    }
    return report


def show(report: dict[str, Any]) -> None:
    from rich.console import Console
    from rich.table import Table

    console = Console()
    m = report["machine"]
    console.print(
        f"audit log benchmark, {report['at']} — {m['cpu']}, {m['cores']} cores, "
        f"Python {m['python']}; load average {report['load']['before'][0]:.1f} before, "
        f"{report['load']['after'][0]:.1f} after"
    )

    table = Table(title="appends through record() and one sync (every entry provable), per s")
    for col in (
        "backend", "batch", "entries", "log", "appends alone", "sync s", "last proof ms",
        "plain", "log ÷ plain",
    ):  # fmt: skip
        table.add_column(col, justify="right")
    for r in report["appends"]["rows"]:
        table.add_row(
            r["backend"],
            str(r["batch"]),
            f"{r['entries']:,}",
            f"{r['log_per_s']:,.0f}",
            f"{r['append_only_per_s']:,.0f}",
            f"{r['sync_s']:.2f}",
            f"{r['last_proof_ms']:.2f}",
            f"{r['plain_per_s']:,.0f}",
            f"{r['log_vs_plain']:.2f}",
        )
    console.print(table)
    if report["appends"]["postgres_skipped"]:
        console.print(f"postgresql skipped: {report['appends']['postgres_skipped']}")

    v = report["verify"]
    table = Table(title=f"verify_export of {v['entries']:,} entries, median of {v['rounds']}")
    for col in ("what", "seconds", "entries/s", "÷ floor (time)"):
        table.add_column(col, justify="right")
    table.add_row("verify_export", f"{v['verify_s']:.2f}", f"{v['verify_per_s']:,.0f}",
                  f"{v['verify_vs_floor_time']:.2f}")  # fmt: skip
    table.add_row("floor: read + SHA-256 per line", f"{v['floor_s']:.2f}",
                  f"{v['floor_per_s']:,.0f}", "1")  # fmt: skip
    console.print(table)
    console.print(
        f"export: {v['file_mb']:.0f} MB, {v['checkpoints']} checkpoints, entries "
        f"{v['entry_bytes_min']}–{v['entry_bytes_max']} bytes (mean {v['entry_bytes_mean']:.0f}); "
        f"made in {v['make_entries_s']:.1f} s, written in {v['write_s']:.1f} s"
    )

    p = report["proofs"]
    ours, peer = p["ours"], p["pymerkle"]
    console.print(
        f"Tree.extend of {ours['size']:,} leaves: {ours['extend_s']:.2f} s "
        f"({ours['extend_us_per_leaf']:.2f} µs a leaf); inclusion proofs "
        f"{ours['inclusion_hashes_mean']:.1f} hashes on average, at most "
        f"{ours['inclusion_hashes_max']} ({ours['inclusion_bytes_max']} bytes); consistency "
        f"{ours['consistency_hashes_mean']:.1f}, at most {ours['consistency_hashes_max']} "
        f"({ours['consistency_bytes_max']} bytes)"
    )
    table = Table(title=f"proofs, mean µs over {ours['pairs']:,} random pairs")
    for col in ("tree", "size", "incl. prove", "incl. verify", "incl. total",
                "cons. prove", "cons. verify", "cons. total", "root"):  # fmt: skip
        table.add_column(col, justify="right")
    rows = [("meridian Tree", ours)]
    if p["ours_at_peer_size"]:
        rows.append(("meridian Tree", p["ours_at_peer_size"]))
    if peer:
        rows.append((f"pymerkle {peer['version']}", peer))
    for name, r in rows:
        table.add_row(
            name, f"{r['size']:,}",
            *(f"{r[k]:.1f}" for k in ("inclusion_prove_us", "inclusion_verify_us", "inclusion_us",
              "consistency_prove_us", "consistency_verify_us", "consistency_us", "root_us")),
        )  # fmt: skip
    console.print(table)
    if peer:
        ratio = p["ours_vs_pymerkle"]
        console.print(
            f"ours ÷ pymerkle at {peer['size']:,}: inclusion {ratio['inclusion_us']:.3f}, "
            f"consistency {ratio['consistency_us']:.3f}, root {ratio['root_us']:.3f}, "
            f"build {ratio['build']:.3f} (pymerkle built in {peer['build_s']:.1f} s)"
        )
    for name, t in report["targets"].items():
        console.print(f"target {name}: {'met' if t['met'] else 'NOT met'} ({t})")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--json", action="store_true", help="one JSON object on stdout")
    parser.add_argument("--quick", action="store_true", help="small sizes (a smoke run)")
    parser.add_argument("--append-size", type=int, help=f"entries appended ({APPEND_SIZE:,})")
    parser.add_argument(
        "--single-size", type=int, help=f"entries appended one per transaction ({SINGLE_SIZE:,})"
    )
    parser.add_argument("--verify-size", type=int, help=f"entries exported ({VERIFY_SIZE:,})")
    parser.add_argument("--tree-size", type=int, help=f"leaves in the tree ({TREE_SIZE:,})")
    parser.add_argument(
        "--peer-size", type=int, help=f"leaves in pymerkle's tree, 0: skip ({PEER_SIZE:,})"
    )
    parser.add_argument("--pairs", type=int, help=f"random proof pairs ({PAIRS:,})")
    parser.add_argument("--rounds", type=int, help=f"verify and floor rounds ({ROUNDS})")
    parser.add_argument("--postgres-url", default=POSTGRES_URL, help="server for the 2nd backend")
    parser.add_argument("--no-postgres", action="store_true", help="SQLite only")
    args = parser.parse_args()
    quick = {
        "append_size": 2_000, "single_size": 50, "verify_size": 20_000, "tree_size": 20_000,
        "peer_size": 5_000, "pairs": 200, "rounds": 1,
    }  # fmt: skip
    full = {
        "append_size": APPEND_SIZE, "single_size": SINGLE_SIZE, "verify_size": VERIFY_SIZE,
        "tree_size": TREE_SIZE, "peer_size": PEER_SIZE, "pairs": PAIRS, "rounds": ROUNDS,
    }  # fmt: skip
    for name, value in (quick if args.quick else full).items():
        if getattr(args, name) is None:
            setattr(args, name, value)
    if args.no_postgres:
        args.postgres_url = None
    reachable = args.postgres_url is not None and _reachable(args.postgres_url)
    with bench_cases("bench/audit.py", planned_cases(args, reachable)) as bar:
        report = run(args, reachable, bar)
    if args.json:
        print(json.dumps(report))
    else:
        show(report)
    summary(bar.summary_line())


if __name__ == "__main__":
    main()
