"""The one leader among the replicas, for the jobs that must run once for the whole service.

Checkpoints, renewals, lawful-request notices, the meeting timer's ends and the record of a
region node going down or up run on the leader only (``meridian.server`` says which). The leader
is the replica whose dedicated connection holds the PostgreSQL session advisory lock
``leader`` (:func:`meridian.storage.locks.try_session_lock`): a session lock lives exactly as
long as its connection, so when the leader's process dies (SIGKILL included) the server ends
its session and the lock is free at once; the others try for it every ``retry`` seconds.

Bounds, stated: after the leader's process dies on a host that stays up, its socket closes, the
lock is free within milliseconds, and another replica leads within ``retry`` seconds (1 s by
default); a job then runs on its next tick. When the leader's whole host vanishes without
closing its socket, the server notices through TCP keepalives on the lock's connection (idle 5
s, then 3 probes 2 s apart: about 11 s) before the lock is free.

Before each run a leader job calls :meth:`Leadership.confirm`, a round trip on the lock's own
connection: a leader that lost its connection (and so its lock) learns it there and steps down
instead of running. Between a lost connection and that round trip two replicas may both
believe they lead for at most one job run, so every leader job is also safe to run twice: a
checkpoint is unique per size, a renewal or a notice is decided in its own transaction.

On SQLite there is one process: it is the leader from the start.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import threading
from collections.abc import Callable
from typing import Any

from sqlalchemy import Connection, Engine, create_engine, text
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.pool import NullPool

from ..storage import Database
from ..storage.locks import release_session_lock, try_session_lock

__all__ = ["Leadership", "every_as_leader"]

log = logging.getLogger("meridian.cluster")

#: the lock's connection: TCP keepalives so the server notices a vanished host in ~11 s
_KEEPALIVES = {
    "keepalives": 1,
    "keepalives_idle": 5,
    "keepalives_interval": 2,
    "keepalives_count": 3,
}


class Leadership:
    """Whether this replica leads, kept by a session advisory lock on a connection of its own."""

    def __init__(self, db: Database, *, replica_id: str, retry: float = 1.0, name: str = "leader"):
        self.db = db
        self.replica_id = replica_id
        self.retry = retry
        self.name = name
        self._sqlite = db.dialect == "sqlite"
        self._engine: Engine | None = None
        self._conn: Connection | None = None
        self._mutex = threading.Lock()
        #: times this replica took the lead (a test reads it; the log says it too)
        self.terms = 0
        if self._sqlite:
            self.terms = 1

    @property
    def is_leader(self) -> bool:
        """Whether this replica held the lock at its last look (see :meth:`confirm`)."""
        return self._sqlite or self._conn is not None

    def try_lead(self) -> bool:
        """Take the lock if it is free; ``True`` if this replica leads now."""
        if self._sqlite:
            return True
        with self._mutex:
            if self._conn is not None:
                return True
            if self._engine is None:
                self._engine = create_engine(
                    self.db.url, poolclass=NullPool, connect_args=dict(_KEEPALIVES)
                )
            conn = self._engine.connect()
            try:
                # autocommit: the session lock must not sit inside a transaction left open
                conn = conn.execution_options(isolation_level="AUTOCOMMIT")
                held = try_session_lock(conn, self.name)
            except SQLAlchemyError:
                conn.close()
                raise
            if not held:
                conn.close()
                return False
            self._conn = conn
            self.terms += 1
        log.warning(
            "replica %s leads the jobs that run once (term %d)", self.replica_id, self.terms
        )
        return True

    def confirm(self) -> bool:
        """A round trip on the lock's connection: ``True`` if this replica still leads; on a
        broken connection it steps down (the lock went with the session)."""
        if self._sqlite:
            return True
        with self._mutex:
            conn = self._conn
            if conn is None:
                return False
            try:
                conn.execute(text("SELECT 1"))
            except SQLAlchemyError:
                self._drop()
                log.warning(
                    "replica %s lost the lead (its lock's connection broke)", self.replica_id
                )
                return False
            return True

    def _drop(self) -> None:
        conn, self._conn = self._conn, None
        if conn is not None:
            with contextlib.suppress(SQLAlchemyError):
                conn.invalidate()
                conn.close()

    def resign(self) -> None:
        """Let the lock go (a clean stop): another replica may lead at once."""
        if self._sqlite:
            return
        with self._mutex:
            conn = self._conn
            if conn is not None:
                with contextlib.suppress(SQLAlchemyError):
                    release_session_lock(conn, self.name)
            self._drop()
            if self._engine is not None:
                self._engine.dispose()
                self._engine = None

    def look(self) -> bool:
        """One look: confirm the lead if held, else try to take it. Errors count as not leading."""
        try:
            return self.confirm() if self._conn is not None else self.try_lead()
        except SQLAlchemyError as exc:
            log.warning("replica %s could not try for the lead: %s", self.replica_id, exc)
            return False

    async def run(self) -> None:
        """Look every :attr:`retry` seconds until cancelled, then resign."""
        try:
            while True:
                await asyncio.to_thread(self.look)
                await asyncio.sleep(self.retry)
        finally:
            await asyncio.to_thread(self.resign)


async def every_as_leader(
    leadership: Leadership, seconds: float, job: Callable[[], Any], name: str
) -> None:
    """Run ``job`` (blocking, in a thread) every ``seconds`` while this replica leads; on a
    replica that does not lead, skip the tick. A failed run is logged, the next one runs."""
    while True:
        await asyncio.sleep(seconds)
        try:
            if await asyncio.to_thread(leadership.confirm):
                await asyncio.to_thread(job)
        except Exception:
            log.exception("background job %s failed", name)
