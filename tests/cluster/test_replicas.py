"""Replica leases (meridian.cluster.replicas), in one process, on SQLite and PostgreSQL."""

from __future__ import annotations

from typing import Any

import pytest
from tests.support import eventually

from meridian.cluster import (
    Replica,
    alive_replica_ids,
    expired_replica_ids,
    lease_expired,
    replica_states,
)
from meridian.storage import Database

pytestmark = pytest.mark.storage


@pytest.fixture
def db(database_url: str) -> Any:
    database = Database(database_url)
    yield database
    database.dispose()


def _alive(db: Database) -> set[str]:
    with db.read() as session:
        return alive_replica_ids(session)


def _expired(db: Database, replica_id: str) -> bool:
    with db.read() as session:
        return lease_expired(session, replica_id)


def test_a_registered_replica_is_alive_until_its_lease_runs_out(db: Database) -> None:
    a = Replica(db, lease=30)
    b = Replica(db, lease=0.5)
    a.register()
    b.register()
    assert _alive(db) == {a.id, b.id}
    assert not _expired(db, a.id)
    # b stops beating: its lease runs out, a's does not
    eventually(lambda: _expired(db, b.id), timeout=10, what="b's lease to run out")
    assert _alive(db) == {a.id}
    with db.read() as session:
        assert expired_replica_ids(session) == {b.id}
        states = {s.id: s for s in replica_states(session)}
    assert (states[a.id].pid, states[a.id].host) == (a.pid, a.host)
    assert states[b.id].expires_at <= states[a.id].expires_at


def test_a_heartbeat_renews_the_lease(db: Database) -> None:
    r = Replica(db, lease=30)
    r.register()
    with db.read() as session:
        (before,) = replica_states(session)
    assert r.heartbeat() is True
    with db.read() as session:
        (after,) = replica_states(session)
    assert after.expires_at >= before.expires_at
    assert after.started_at == before.started_at
    assert r.lapses == 0


def test_a_heartbeat_after_the_lease_ran_out_says_so_and_registers_again(db: Database) -> None:
    r = Replica(db, lease=0.4)
    r.register()
    eventually(lambda: _expired(db, r.id), timeout=10, what="the lease to run out")
    assert r.heartbeat() is False
    assert r.lapses == 1
    assert not _expired(db, r.id)


def test_a_released_replica_is_expired_at_once(db: Database) -> None:
    r = Replica(db, lease=600)
    r.register()
    r.release()
    assert _expired(db, r.id)
    assert _alive(db) == set()


def test_an_unknown_replica_counts_as_expired(db: Database) -> None:
    assert _expired(db, "rep_nobody")


def test_replica_ids_are_distinct_per_process_object(db: Database) -> None:
    assert Replica(db).id != Replica(db).id
    with pytest.raises(ValueError, match="positive"):
        Replica(db, lease=0)


def test_a_served_control_plane_is_a_replica_with_a_lease(live: Any) -> None:
    rt = live.runtime
    assert rt.replica.registered
    assert rt.replica.id in _alive(rt.db)


def test_a_heartbeat_after_release_does_not_bring_the_replica_back(db: Database) -> None:
    # a heartbeat still in its thread when the server stops must not register it again
    r = Replica(db, lease=600)
    r.register()
    r.release()
    assert r.heartbeat() is True
    assert _expired(db, r.id)
    assert r.lapses == 0
