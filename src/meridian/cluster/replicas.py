"""Replica leases: which control-plane processes are alive on this database.

A replica :meth:`~Replica.register`\\ s a row in ``replicas`` at start-up with a lease of
``lease`` seconds, and its heartbeat (:meth:`~Replica.run`, every third of the lease) renews it.
A replica whose ``expires_at`` has passed is dead to the others: whatever it held only in its
memory (signalling sockets, live participants) is gone, and another replica may clean up after
it. A lease is never taken back from a live replica by anyone but itself; a replica that finds
at a heartbeat that its own lease had lapsed (a long pause, the database out of reach) says so
in the log and registers again, counting the lapse in :attr:`Replica.lapses`.

Time is the database server's (``now()`` on PostgreSQL), never a process's clock (which a test
or a replay may have set to 2020): replicas on hosts whose clocks differ still agree on whose
lease has run out. On SQLite the one process is the one replica, and the time is this host's.

The read-side functions take a :class:`~sqlalchemy.orm.Session`, so a caller can decide in the
same transaction as what it changes (close the participations of expired replicas, say).
"""

from __future__ import annotations

import asyncio
import logging
import os
import secrets
import socket
import threading
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, cast

from sqlalchemy import CursorResult, delete, select, text, update
from sqlalchemy.orm import Session

from ..storage import Database
from ..storage.models import Replica as ReplicaRow

__all__ = [
    "Replica",
    "ReplicaState",
    "alive_replica_ids",
    "database_now",
    "expired_replica_ids",
    "lease_expired",
    "replica_states",
]

log = logging.getLogger("meridian.cluster")

#: rows of replicas whose lease ended this long ago are deleted by a heartbeat (what they held
#: has been cleaned up long since; the row is no longer evidence of anything)
_FORGET_AFTER = timedelta(days=1)


def database_now(session: Session) -> datetime:
    """The database server's current instant (this host's on SQLite), aware, in UTC."""
    if session.get_bind().dialect.name == "postgresql":
        value: datetime = session.execute(text("SELECT now()")).scalar_one()
        return value.astimezone(UTC)
    return datetime.now(UTC)


@dataclass(frozen=True, slots=True)
class ReplicaState:
    """One replica as its row says: who, where, and until when its lease runs."""

    id: str
    host: str
    pid: int
    started_at: datetime
    heartbeat_at: datetime
    expires_at: datetime

    def alive(self, at: datetime) -> bool:
        """Whether the lease still runs at ``at`` (a database instant)."""
        return self.expires_at > at


def replica_states(session: Session) -> list[ReplicaState]:
    """Every replica with a row, alive or not, oldest first."""
    rows = session.scalars(select(ReplicaRow).order_by(ReplicaRow.started_at, ReplicaRow.id))
    return [
        ReplicaState(r.id, r.host, r.pid, r.started_at, r.heartbeat_at, r.expires_at) for r in rows
    ]


def alive_replica_ids(session: Session) -> set[str]:
    """The replicas whose lease runs now."""
    now = database_now(session)
    return set(session.scalars(select(ReplicaRow.id).where(ReplicaRow.expires_at > now)))


def expired_replica_ids(session: Session) -> set[str]:
    """The replicas with a row whose lease has run out."""
    now = database_now(session)
    return set(session.scalars(select(ReplicaRow.id).where(ReplicaRow.expires_at <= now)))


def lease_expired(session: Session, replica_id: str) -> bool:
    """Whether ``replica_id`` is gone: its lease has run out, or it has no row at all (a replica
    never registered, or forgotten a day after its lease ended). Fails closed: unknown is gone."""
    expires = session.scalar(select(ReplicaRow.expires_at).where(ReplicaRow.id == replica_id))
    return expires is None or expires <= database_now(session)


class Replica:
    """This process as a replica of the control plane: its id, its lease and its heartbeat.

    Built without touching the database; :meth:`register` (at start-up) writes the row.
    """

    def __init__(self, db: Database, *, lease: float = 10.0, replica_id: str | None = None) -> None:
        if lease <= 0:
            raise ValueError("a replica lease must be positive")
        self.db = db
        self.lease = timedelta(seconds=lease)
        self.host = socket.gethostname()[:200] or "localhost"
        self.pid = os.getpid()
        self.id = replica_id or f"rep_{self.host[:60]}_{self.pid}_{secrets.token_hex(4)}"
        #: heartbeats that found this replica's own lease already run out (see the module text)
        self.lapses = 0
        self.registered = False
        # a heartbeat still running in its thread when release() ends the lease must not
        # register the replica again: both take this lock, and release() leaves it stopped
        self._mutex = threading.Lock()
        self._stopped = False

    @property
    def interval(self) -> float:
        """Seconds between heartbeats: a third of the lease, so two may fail before it runs out."""
        return self.lease.total_seconds() / 3

    def register(self) -> None:
        """Write this replica's row with a fresh lease (again, after a lapse)."""
        with self.db.write() as session:
            now = database_now(session)
            row = session.get(ReplicaRow, self.id)
            if row is None:
                session.add(
                    ReplicaRow(
                        id=self.id,
                        host=self.host,
                        pid=self.pid,
                        started_at=now,
                        heartbeat_at=now,
                        expires_at=now + self.lease,
                    )
                )
            else:
                row.heartbeat_at = now
                row.expires_at = now + self.lease
        self.registered = True
        log.info("replica %s registered (lease %.1f s)", self.id, self.lease.total_seconds())

    def heartbeat(self) -> bool:
        """Renew the lease; ``False`` if it had already run out (then it is registered again).
        After :meth:`release`, nothing (a stopped replica stays stopped)."""
        with self._mutex:
            if self._stopped:
                return True
            return self._heartbeat()

    def _heartbeat(self) -> bool:
        with self.db.write() as session:
            now = database_now(session)
            result = session.execute(
                update(ReplicaRow)
                .where(ReplicaRow.id == self.id, ReplicaRow.expires_at > now)
                .values(heartbeat_at=now, expires_at=now + self.lease)
            )
            renewed = cast("CursorResult[Any]", result).rowcount
            session.execute(delete(ReplicaRow).where(ReplicaRow.expires_at < now - _FORGET_AFTER))
        if renewed:
            return True
        self.lapses += 1
        log.warning(
            "replica %s: its lease had run out before this heartbeat (the others may have "
            "cleaned up after it); registering again",
            self.id,
        )
        self.register()
        return False

    def release(self) -> None:
        """End the lease now (a clean stop): the others need not wait for it to run out."""
        with self._mutex:
            self._stopped = True
            if not self.registered:
                return
            with self.db.write() as session:
                now = database_now(session)
                session.execute(
                    update(ReplicaRow)
                    .where(ReplicaRow.id == self.id)
                    .values(heartbeat_at=now, expires_at=now)
                )
            self.registered = False

    async def run(self) -> None:
        """Heartbeat every :attr:`interval` seconds until cancelled; a failed one is logged and
        the next tried on time (the lease covers two missed beats)."""
        while True:
            await asyncio.sleep(self.interval)
            try:
                await asyncio.to_thread(self.heartbeat)
            except Exception:
                log.exception("replica %s: heartbeat failed", self.id)
