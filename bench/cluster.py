"""Cluster benchmark: control-plane replicas on one PostgreSQL database, as real processes.

Usage::

    .venv/bin/python bench/cluster.py                 # rich table, then one summary line
    .venv/bin/python bench/cluster.py --json          # one JSON object on stdout
    .venv/bin/python bench/cluster.py --quick         # 2 s a case: a smoke run

What is measured (each case on a new database created on ``--postgres-url``'s server, dropped
after; skipped with a line when no server answers):

*Gated writes* with 1, 2 and 3 replicas (``meridian serve`` processes sharing the database and
keys): ``--writers`` (32) threads, each with its own keep-alive connection to replica
``i mod K``, create accounts (``POST /v1/accounts`` as an operator: one change and its log entry
in one transaction, acknowledged after commit) for ``--seconds`` (8) after a 1 s warm-up. The
figure is acknowledged writes/s; the ratio is against one replica, same run. After each case
the log must be gapless (positions 0..n-1) and hold every acknowledged account exactly once.

*Integration delay*: for one write in ten, the time from its acknowledgement until its entry
has a position in ``records`` (polled every 2 ms on a connection of the bench's own): p50 and
p99. ``0`` means the entry had its position before the acknowledgement.

*Advisory decisions*: ``POST /v1/decisions:batch`` (100 requests a call) against
``meridian serve --workers 1`` and ``--workers 2`` on the same port, from ``--clients`` (8)
threads for ``--seconds``; decisions/s and the ratio 2 workers : 1. The clients share the two
cores with the workers (the machine has two, shared with other work), so this says what the
machine allowed, not what two free cores give.
"""

from __future__ import annotations

import argparse
import json
import os
import secrets
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import httpx
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url

PG_URL = os.environ.get(
    "MERIDIAN_TEST_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test"
)
CONTRACT = {
    "action": "purchase",
    "at": "2020-08-23T09:00:00+08:00",
    "subject": {"type": "organization", "country": "CN", "ip": "114.114.114.114"},
    "resource": {"channel": "direct"},
}


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def _reachable(url: str) -> bool:
    u = make_url(url)
    try:
        with socket.create_connection((u.host or "127.0.0.1", u.port or 5432), timeout=2):
            return True
    except OSError:
        return False


class Database:
    """A database made for one case on the server of ``base``, dropped at the end."""

    def __init__(self, base: str) -> None:
        self.base = make_url(base)
        self.admin = create_engine(
            self.base.set(database="postgres"), isolation_level="AUTOCOMMIT", pool_size=1
        )
        self.name = f"meridian_bench_{os.getpid()}_{secrets.token_hex(3)}"
        with self.admin.connect() as conn:
            conn.execute(text(f'CREATE DATABASE "{self.name}"'))
        self.url = self.base.set(database=self.name).render_as_string(hide_password=False)

    def drop(self) -> None:
        with self.admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{self.name}" WITH (FORCE)'))
        self.admin.dispose()


class Service:
    """Replicas of the control plane on one database: ``meridian serve`` processes."""

    def __init__(self, url: str, directory: Path) -> None:
        from meridian.audit.note import load_or_create_log_key
        from meridian.keyfiles import load_or_create_secret
        from meridian.keys.grants import load_or_create_signing_key
        from meridian.runtime import Runtime
        from meridian.settings import Settings

        self.directory = directory
        keys = {name: directory / f"{name}.key" for name in ("log", "grant", "session")}
        load_or_create_log_key(keys["log"], create=True)
        load_or_create_signing_key(keys["grant"], create=True)
        load_or_create_secret(keys["session"], create=True, what="session key", setting="-")
        self.env = {
            **os.environ,
            "MERIDIAN_DATABASE_URL": url,
            "MERIDIAN_NODES": "none",
            "MERIDIAN_RENEW_INTERVAL": "0",
            "MERIDIAN_LOG_KEY": str(keys["log"]),
            "MERIDIAN_GRANT_KEY": str(keys["grant"]),
            "MERIDIAN_SESSION_KEY": str(keys["session"]),
            "MERIDIAN_RATE_SIGNUP_AUTHENTICATED": "100000000/minute",
            "MERIDIAN_RATE_DECISIONS": "1000000000/minute",
        }
        self.runtime = Runtime(Settings(database_url=url, renew_interval=0, log_key=keys["log"]))
        self.runtime.start()
        self.procs: list[subprocess.Popen[bytes]] = []
        self.token = self._operator()

    def _operator(self) -> str:
        from meridian.audit import SYSTEM
        from meridian.identity.people import add_operator

        rt = self.runtime
        with rt.db.write() as session:
            _, _, secret = add_operator(
                session, name="bench", at=rt.now(), actor=SYSTEM, digest=rt.digest
            )
        return secret

    def serve(self, *extra: str) -> str:
        """Start one ``meridian serve`` (with ``extra`` options); its URL once it is ready."""
        port = _free_port()
        log = (self.directory / f"serve-{port}.log").open("wb")
        proc = subprocess.Popen(
            [sys.executable, "-m", "meridian", "serve", "--port", str(port), *extra],
            env=self.env,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        self.procs.append(proc)
        url = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            if proc.poll() is not None:
                raise RuntimeError(f"meridian serve exited {proc.returncode}: see {log.name}")
            try:
                if httpx.get(f"{url}/readyz", timeout=2).status_code == 200:
                    return url
            except httpx.HTTPError:
                pass
            time.sleep(0.2)
        raise RuntimeError(f"meridian serve not ready in 120 s: see {log.name}")

    def close(self) -> None:
        for proc in self.procs:
            if proc.poll() is None:
                os.killpg(proc.pid, signal.SIGTERM)
        for proc in self.procs:
            try:
                proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait()
        self.runtime.close()


def _percentile(values: list[float], q: float) -> float:
    if not values:
        return 0.0
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def gated_writes(base: str, replicas: int, args: argparse.Namespace) -> dict[str, Any]:
    """Acknowledged gated writes/s with ``replicas`` replicas, and the integration delay."""
    db = Database(base)
    service: Service | None = None
    try:
        with tempfile.TemporaryDirectory() as folder:
            service = Service(db.url, Path(folder))
            urls = [service.serve() for _ in range(replicas)]
            stop = threading.Event()
            counting = threading.Event()
            done: list[list[str]] = [[] for _ in range(args.writers)]
            delays: list[float] = []
            errors: list[str] = []
            probe = create_engine(db.url, pool_size=2)

            def writer(i: int) -> None:
                headers = {"authorization": f"Bearer {service.token}"}  # type: ignore[union-attr]
                n = 0
                with httpx.Client(base_url=urls[i % replicas], headers=headers, timeout=60) as c:
                    while not stop.is_set():
                        body = {"type": "individual", "name": f"w{i}-{n}", "country": "US"}
                        r = c.post("/v1/accounts", json=body)
                        acked = time.perf_counter()
                        if r.status_code != 201:
                            errors.append(f"{r.status_code} {r.text[:200]}")
                            return
                        account = r.json()["account"]["id"]
                        done[i].append(account)
                        n += 1
                        if counting.is_set() and n % 10 == 0:
                            delays.append(_integration_delay(probe, account, acked))

            threads = [threading.Thread(target=writer, args=(i,)) for i in range(args.writers)]
            for t in threads:
                t.start()
            time.sleep(1.0)  # warm-up
            before = sum(len(d) for d in done)
            counting.set()
            start = time.perf_counter()
            time.sleep(args.seconds)
            after = sum(len(d) for d in done)
            elapsed = time.perf_counter() - start
            stop.set()
            for t in threads:
                t.join()
            if errors:
                raise RuntimeError(f"a write failed: {errors[0]}")
            written = [a for d in done for a in d]
            _check_log(probe, written)
            probe.dispose()
            return {
                "replicas": replicas,
                "writers": args.writers,
                "writes_per_s": (after - before) / elapsed,
                "delay_p50_ms": _percentile(delays, 0.5) * 1000,
                "delay_p99_ms": _percentile(delays, 0.99) * 1000,
                "delay_samples": len(delays),
                "acknowledged": len(written),
            }
    finally:
        if service is not None:
            service.close()
        db.drop()


def _integration_delay(engine: Any, account: str, acked: float) -> float:
    """Seconds from ``acked`` until ``account``'s creation has a position in the log."""
    query = text(
        "SELECT seq FROM records WHERE subject_id = :a AND action = 'account.create' LIMIT 1"
    )
    first = True
    while True:
        with engine.connect() as conn:
            if conn.execute(query, {"a": account}).first() is not None:
                # found by the first look: it had its position before the acknowledgement
                return 0.0 if first else max(0.0, time.perf_counter() - acked)
        first = False
        if time.perf_counter() - acked > 30:
            raise RuntimeError(f"the creation of {account} had no position after 30 s")
        time.sleep(0.002)


def _check_log(engine: Any, written: list[str]) -> None:
    """The log is gapless and holds each acknowledged account's creation exactly once."""
    deadline = time.monotonic() + 30
    with engine.connect() as conn:
        while True:
            size, count, low, high = conn.execute(
                text(
                    "SELECT (SELECT size FROM log_head), count(*), min(seq), max(seq) FROM records"
                )
            ).one()
            created = dict(
                conn.execute(
                    text(
                        "SELECT subject_id, count(*) FROM records "
                        "WHERE action = 'account.create' GROUP BY subject_id"
                    )
                ).all()
            )
            if all(created.get(a) == 1 for a in written) or time.monotonic() > deadline:
                break
            time.sleep(0.1)
            conn.rollback()
    if not (count == size and low == 0 and high == size - 1):
        raise RuntimeError(
            f"the log has gaps: {count} entries, positions {low}..{high}, head {size}"
        )
    missing = [a for a in written if created.get(a) != 1]
    if missing:
        raise RuntimeError(f"{len(missing)} acknowledged writes are not in the log once")


def decisions(base: str, workers: int, args: argparse.Namespace) -> dict[str, Any]:
    """Advisory decisions/s through ``POST /v1/decisions:batch`` with ``workers`` workers."""
    db = Database(base)
    service: Service | None = None
    try:
        with tempfile.TemporaryDirectory() as folder:
            service = Service(db.url, Path(folder))
            url = service.serve("--workers", str(workers))
            body = json.dumps({"requests": [CONTRACT] * args.batch}).encode()
            stop = threading.Event()
            counting = threading.Event()
            counts = [0] * args.clients
            headers = {
                "authorization": f"Bearer {service.token}",
                "content-type": "application/json",
            }

            def client(i: int) -> None:
                with httpx.Client(base_url=url, headers=headers, timeout=60) as c:
                    while not stop.is_set():
                        r = c.post("/v1/decisions:batch", content=body)
                        if r.status_code != 200:
                            raise RuntimeError(f"{r.status_code} {r.text[:200]}")
                        if counting.is_set():
                            counts[i] += args.batch

            threads = [threading.Thread(target=client, args=(i,)) for i in range(args.clients)]
            for t in threads:
                t.start()
            time.sleep(1.0)
            counting.set()
            start = time.perf_counter()
            time.sleep(args.seconds)
            total = sum(counts)
            elapsed = time.perf_counter() - start
            stop.set()
            for t in threads:
                t.join()
            return {"workers": workers, "decisions_per_s": total / elapsed}
    finally:
        if service is not None:
            service.close()
        db.drop()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--json", action="store_true", help="one JSON object on stdout")
    parser.add_argument("--quick", action="store_true", help="2 s a case (a smoke run)")
    parser.add_argument("--seconds", type=float, default=8.0, help="measured seconds a case (8)")
    parser.add_argument("--writers", type=int, default=32, help="concurrent writers (32)")
    parser.add_argument("--clients", type=int, default=8, help="decision clients (8)")
    parser.add_argument("--batch", type=int, default=100, help="requests per batch call (100)")
    parser.add_argument("--postgres-url", default=PG_URL)
    parser.add_argument("--only", choices=["writes", "decisions"], help="one part only")
    args = parser.parse_args()
    if args.quick:
        args.seconds = 2.0
    started = time.monotonic()
    if not _reachable(args.postgres_url):
        print(f"bench/cluster.py: skipped: no PostgreSQL at {args.postgres_url}", file=sys.stderr)
        return
    result: dict[str, Any] = {"date": time.strftime("%Y-%m-%dT%H:%MZ", time.gmtime())}
    if args.only in (None, "writes"):
        result["writes"] = [gated_writes(args.postgres_url, k, args) for k in (1, 2, 3)]
    if args.only in (None, "decisions"):
        result["decisions"] = [decisions(args.postgres_url, w, args) for w in (1, 2)]
    if args.json:
        print(json.dumps(result, indent=2))
    else:
        from rich.console import Console
        from rich.table import Table

        console = Console()
        if "writes" in result:
            base = result["writes"][0]["writes_per_s"]
            table = Table(title=f"gated writes, {args.writers} writers ({result['date']})")
            for col in ("replicas", "writes/s", "ratio to 1", "delay p50 ms", "delay p99 ms"):
                table.add_column(col, justify="right")
            for row in result["writes"]:
                table.add_row(
                    str(row["replicas"]),
                    f"{row['writes_per_s']:,.0f}",
                    f"{row['writes_per_s'] / base:.2f}",
                    f"{row['delay_p50_ms']:.1f}",
                    f"{row['delay_p99_ms']:.1f}",
                )
            console.print(table)
        if "decisions" in result:
            one = result["decisions"][0]
            table = Table(title=f"POST /v1/decisions:batch ×{args.batch}, {args.clients} clients")
            for col in ("workers", "decisions/s", "ratio to 1"):
                table.add_column(col, justify="right")
            for row in result["decisions"]:
                table.add_row(
                    str(row["workers"]),
                    f"{row['decisions_per_s']:,.0f}",
                    f"{row['decisions_per_s'] / one['decisions_per_s']:.2f}",
                )
            console.print(table)
    print(f"bench/cluster.py: done in {time.monotonic() - started:.0f} s", file=sys.stderr)


if __name__ == "__main__":
    main()
