"""The one leader (meridian.cluster.leader): elected by an advisory lock, taken over when it dies."""

from __future__ import annotations

import time
from typing import Any

import httpx
import pytest
from sqlalchemy import create_engine, select, text
from tests.support import eventually

from meridian.cluster import Leadership
from meridian.storage import Database
from meridian.storage.models import Checkpoint


@pytest.fixture
def db(database_url: str) -> Any:
    database = Database(database_url)
    yield database
    database.dispose()


@pytest.mark.storage
def test_one_leader_at_a_time_and_another_when_its_connection_dies(db: Database) -> None:
    a = Leadership(db, replica_id="a")
    b = Leadership(db, replica_id="b")
    try:
        assert a.look() is True
        if db.dialect == "sqlite":
            # one process: it is the leader whatever it asks
            assert b.look() is True
            return
        assert b.look() is False
        assert (a.is_leader, b.is_leader) == (True, False)
        # the leader's session ends (as when its process dies): the lock goes with it
        assert a._conn is not None
        pid = a._conn.execute(text("SELECT pg_backend_pid()")).scalar_one()
        engine = create_engine(db.url)
        with engine.connect() as conn:
            conn.execute(text("SELECT pg_terminate_backend(:p)"), {"p": pid})
        engine.dispose()
        assert b.look() is True
        # the old leader learns it at its next round trip and steps down
        assert a.confirm() is False
        assert a.look() is False
        assert (a.is_leader, b.is_leader) == (False, True)
        # a clean resignation frees the lock at once
        b.resign()
        assert a.look() is True
    finally:
        a.resign()
        b.resign()


def _account(url: str, token: str, n: int) -> None:
    r = httpx.post(
        f"{url}/v1/accounts",
        json={"type": "individual", "name": f"Writer {n}", "country": "US"},
        headers={"authorization": f"Bearer {token}"},
        timeout=30,
    )
    assert r.status_code == 201, r.text


def _checkpoints(db: Database) -> list[tuple[int, int]]:
    with db.read() as session:
        return [(c.id, c.size) for c in session.scalars(select(Checkpoint).order_by(Checkpoint.id))]


def _log_size(db: Database) -> int:
    with db.read() as session:
        return int(session.execute(text("SELECT size FROM log_head")).scalar_one())


def test_checkpoints_go_on_after_the_leader_is_killed(replicas: Any) -> None:
    group = replicas(3, haproxy=False)
    rt = group.runtime
    token = group.tokens["operator"]
    (leader,) = eventually(group.leaders, timeout=10, what="exactly one leader")
    assert len(group.leaders()) == 1
    names = [r.name for r in group.replicas]
    first = names.index(leader)
    # entries written through every replica; the leader checkpoints them (every 1 s)
    for n in range(6):
        _account(group.replicas[n % 3].url, token, n)
    size = _log_size(rt.db)
    eventually(
        lambda: [s for _, s in _checkpoints(rt.db) if s == size],
        timeout=15,
        what=f"a checkpoint at size {size} from the first leader",
    )

    group.kill(first)
    killed = time.monotonic()
    survivors = [i for i in range(3) if i != first]
    # Another replica leads within MERIDIAN_LEADER_RETRY (0.5 s here) of the kill: its session
    # ends with its process. 10 s is the honest deadline on a loaded 2-core machine.
    (second,) = eventually(group.leaders, timeout=10, what="a new leader among the survivors")
    took_over = time.monotonic() - killed
    assert second != leader
    for n in range(6, 12):
        _account(group.replicas[survivors[n % 2]].url, token, n)
    grown = _log_size(rt.db)
    assert grown > size
    eventually(
        lambda: [s for _, s in _checkpoints(rt.db) if s == grown],
        timeout=15,
        what=f"a checkpoint at size {grown} from the new leader",
    )
    # nothing twice: one checkpoint per size, each larger than the one before
    sizes = [s for _, s in _checkpoints(rt.db)]
    assert sizes == sorted(set(sizes))
    check = rt.log.self_check(full=True)
    assert check.problems == ()
    assert took_over < 10
