"""The log's sequencer on PostgreSQL (meridian.audit.records): entries committed with their change,
unsequenced, then given positions in batches — gapless, once each, crash-safe."""

from __future__ import annotations

import threading
import time
from datetime import UTC, datetime
from typing import Any

import httpx
from sqlalchemy import func, select, text
from tests.support import eventually

from meridian.audit import SYSTEM, record
from meridian.runtime import Runtime
from meridian.settings import Settings
from meridian.storage.models import LogPending, Record


def _gapless(rt: Any) -> tuple[int, int]:
    """``(entries, head)``, asserting positions are exactly 0..n-1 and the head says n."""
    with rt.db.read() as session:
        count, low, high = session.execute(
            select(func.count(), func.min(Record.seq), func.max(Record.seq))
        ).one()
        head = session.execute(text("SELECT size FROM log_head")).scalar_one()
    assert (count, low, high) == (head, 0, head - 1)
    return count, head


def _pending(rt: Any) -> int:
    with rt.db.read() as session:
        return int(session.scalar(select(func.count()).select_from(LogPending)) or 0)


def _unsequenced(rt: Any, n: int) -> None:
    """``n`` entries committed with their change but never integrated: a writer that died
    between its commit and its integration (the commit below skips Database.write's hook)."""
    for i in range(n):
        with rt.db._writes.begin() as session:
            record(
                session,
                actor=SYSTEM,
                action="test.orphan",
                subject_kind="test",
                subject_id=f"orphan-{i}",
                at=datetime.now(UTC),
                bundle_digest=rt.digest,
            )


def test_32_writers_across_three_replicas_give_a_gapless_log_that_verifies(replicas: Any) -> None:
    group = replicas(3)
    rt = group.runtime
    before, _ = _gapless(rt)
    headers = {"authorization": f"Bearer {group.tokens['operator']}"}
    made: list[list[str]] = [[] for _ in range(32)]
    failures: list[str] = []

    def writer(i: int) -> None:
        # each writer its own connection through HAProxy: spread over the three replicas
        with httpx.Client(base_url=group.url, headers=headers, timeout=60) as client:
            for n in range(8):
                body = {"type": "individual", "name": f"writer {i}.{n}", "country": "US"}
                r = client.post("/v1/accounts", json=body)
                if r.status_code != 201:
                    failures.append(r.text)
                    return
                made[i].append(r.json()["account"]["id"])

    threads = [threading.Thread(target=writer, args=(i,)) for i in range(32)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert failures == []
    accounts = [a for m in made for a in m]
    assert len(set(accounts)) == 32 * 8
    # every acknowledged write had its position before it was acknowledged: nothing pending
    assert _pending(rt) == 0
    count, _ = _gapless(rt)
    with rt.db.read() as session:
        created = dict(
            session.execute(
                select(Record.subject_id, func.count())
                .where(Record.action == "account.create")
                .group_by(Record.subject_id)
            ).all()
        )
    assert all(created.get(a) == 1 for a in accounts)
    assert count >= before + 32 * 8
    # the replicas served it from more than one process
    with rt.db.read() as session:
        assert session.execute(text("SELECT count(*) FROM replicas")).scalar_one() == 3
    check = rt.log.self_check(full=True)
    assert check.problems == ()
    assert rt.log.checkpoint().checkpoint.size == count


_KILLED_MID_BATCH = """
import sys, time
from meridian.audit.records import attach_log, integrate_batch
from meridian.storage import Database
db = attach_log(Database({url!r}))
with db.write() as session:
    moved = integrate_batch(session)
    print(moved, flush=True)
    time.sleep(600)  # killed here: the batch is moved inside a transaction never committed
"""


def test_a_sequencer_killed_mid_batch_loses_nothing_and_leaves_no_gap(
    processes: Any, cluster_database_url: str, tmp_path: Any
) -> None:
    rt = Runtime(
        Settings(database_url=cluster_database_url, renew_interval=0, log_key=tmp_path / "l.key")
    )
    rt.start()
    try:
        before, head = _gapless(rt)
        _unsequenced(rt, 40)
        assert _pending(rt) == 40
        sequencer = processes.python(_KILLED_MID_BATCH.format(url=cluster_database_url))
        assert sequencer.stdout is not None
        assert sequencer.stdout.readline().strip() == "40"  # the batch moved, not committed
        sequencer.kill()
        sequencer.wait(timeout=30)
        # nothing of the batch landed, nothing was lost
        assert _gapless(rt) == (before, head)
        assert _pending(rt) == 40
        # the next sequencer takes the same entries, once
        assert rt.log.integrate() == 40
        assert _pending(rt) == 0
        count, _ = _gapless(rt)
        assert count == before + 40
        with rt.db.read() as session:
            orphans = session.scalars(
                select(Record.subject_id).where(Record.action == "test.orphan")
            ).all()
        assert sorted(orphans) == sorted(f"orphan-{i}" for i in range(40))
        assert rt.log.self_check(full=True).problems == ()
    finally:
        rt.close()


def test_entries_left_by_a_dead_writer_are_integrated_by_the_leader(replicas: Any) -> None:
    group = replicas(1, haproxy=False)
    rt = group.runtime
    before, _ = _gapless(rt)
    _unsequenced(rt, 5)
    left = time.monotonic()
    # the leader sweeps every MERIDIAN_LOG_SEQUENCE_INTERVAL (0.25 s); 10 s is the honest
    # deadline on a loaded machine
    eventually(lambda: _pending(rt) == 0, timeout=10, what="the leader integrating the orphans")
    assert time.monotonic() - left < 10
    assert _gapless(rt)[0] == before + 5
