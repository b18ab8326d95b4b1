"""Start-up verification of the stored log: entries/s, against what start-up did before.

Usage::

    .venv/bin/python bench/selfcheck.py                 # 100,000 entries on SQLite
    .venv/bin/python bench/selfcheck.py --size 20000 --postgres-url postgresql+psycopg://…/test

With ``--postgres-url`` a database is created for the run on that server and dropped after.

A new database gets ``--size`` entries shaped like Meridian's (half carrying a compact decision),
written through :func:`meridian.audit.record` 1,000 a transaction, and one signed checkpoint.
Then, in ``--rounds`` (3) interleaved rounds, each on a fresh :class:`AuditLog` as a restarted
process builds it:

* *baseline*: what start-up did before the self-check — :meth:`AuditLog.sync` reads every stored
  leaf into the tree (and the latest checkpoint is fetched);
* *full*: :meth:`AuditLog.self_check` with ``full=True`` — the same, plus the tree against the
  signed root and every entry read and rehashed against its stored leaf;
* *incremental*: :meth:`AuditLog.self_check` with the verified position persisted and 1,000
  entries written since (what a restart costs after a first check).

Medians are printed, with entries/s of the full check and its ratio to the baseline.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import platform
import statistics
import tempfile
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

from meridian.audit import Actor, record
from meridian.audit.log import AuditLog
from meridian.audit.note import NoteSigner, load_or_create_log_key
from meridian.audit.records import attach_log
from meridian.storage import Database, migrate

AT = datetime(2020, 8, 23, 9, tzinfo=UTC)


def _write(db: Database, n: int, first: int) -> None:
    for start in range(first, first + n, 1000):
        with db.write() as session:
            for i in range(start, min(start + 1000, first + n)):
                record(
                    session,
                    actor=Actor("user", f"tok_{i % 97:04d}"),
                    action="decision.advisory" if i % 2 else "account.create",
                    subject_kind="account",
                    subject_id=f"acct_{i:012d}",
                    at=AT,
                    bundle_digest="sha256:" + "ab" * 32,
                    details={
                        "country": "CN",
                        "ip": "114.114.114.114",
                        "rules": ["cn-direct-sales-end", "sales-open"] if i % 2 else [],
                        "n": i,
                    },
                )


@contextlib.contextmanager
def _database(server: str | None, folder: Path) -> Iterator[str]:
    """A new database: a file in ``folder``, or one created on ``server`` and dropped after."""
    if server is None:
        yield f"sqlite:///{folder / 'bench.db'}"
        return
    from sqlalchemy import create_engine, text
    from sqlalchemy.engine import make_url

    base = make_url(server)
    admin = create_engine(base.set(database="postgres"), isolation_level="AUTOCOMMIT")
    name = f"meridian_bench_selfcheck_{os.getpid()}"
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    try:
        yield base.set(database=name).render_as_string(hide_password=False)
    finally:
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", type=int, default=100_000)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--postgres-url", default=None)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()

    with tempfile.TemporaryDirectory() as tmp, _database(args.postgres_url, Path(tmp)) as url:
        db = attach_log(Database(url))
        migrate(db)
        key = load_or_create_log_key(Path(tmp) / "log.key", create=True)

        def fresh() -> AuditLog:
            return AuditLog(db, NoteSigner("bench.example/log", key))

        _write(db, args.size, 0)
        fresh().checkpoint()
        baseline, full, incremental = [], [], []
        written = args.size
        for _ in range(args.rounds):
            started = time.perf_counter()
            log = fresh()
            log.sync()
            log.latest()
            baseline.append(time.perf_counter() - started)

            started = time.perf_counter()
            check = fresh().self_check(full=True)
            full.append(time.perf_counter() - started)
            if check.problems or check.checked != written:
                raise SystemExit(f"the full check went wrong: {check}")

            _write(db, 1000, written)
            written += 1000
            started = time.perf_counter()
            check = fresh().self_check()
            incremental.append(time.perf_counter() - started)
            if check.problems or check.checked != 1000:
                raise SystemExit(f"the incremental check went wrong: {check}")
        db.dispose()

    b, f, i = (statistics.median(x) for x in (baseline, full, incremental))
    result = {
        "database": "postgresql" if args.postgres_url else "sqlite",
        "entries": args.size,
        "baseline_s": round(b, 4),
        "full_s": round(f, 4),
        "full_entries_per_s": round(args.size / f),
        "full_vs_baseline": round(f / b, 2),
        "incremental_s": round(i, 4),
        "machine": platform.processor() or platform.machine(),
    }
    if args.json:
        print(json.dumps(result))
        return
    print(
        f"{result['database']}, {args.size:,} entries: baseline (sync) {b:.3f} s; "
        f"full self-check {f:.3f} s = {result['full_entries_per_s']:,} entries/s "
        f"({result['full_vs_baseline']}× the baseline); incremental (+1,000) {i:.3f} s"
    )


if __name__ == "__main__":
    main()
