"""PostgreSQL advisory locks by name: what replicas sharing one database take turns at.

A name maps to a fixed 64-bit key (the first 8 bytes of SHA-256 of ``meridian.<name>``), so
every process agrees on it without a table. Two kinds:

* :func:`xact_lock`: held by a transaction until it ends (migrations, start-up seeding);
* :func:`try_session_lock`: held by one connection until it closes or lets go; the leader's
  election (:mod:`meridian.cluster.leader`) keeps one on a dedicated connection, so the lock
  goes when the leader's process dies and its connection with it.

On SQLite (one process, ``BEGIN IMMEDIATE`` already serialises writers) both are no-ops: the
one process is always the holder.
"""

from __future__ import annotations

import hashlib

from sqlalchemy import Connection, text
from sqlalchemy.orm import Session

__all__ = ["lock_key", "release_session_lock", "try_session_lock", "xact_lock"]


def lock_key(name: str) -> int:
    """The advisory-lock key of ``name``: a signed 64-bit integer, the same in every process."""
    digest = hashlib.sha256(f"meridian.{name}".encode()).digest()
    return int.from_bytes(digest[:8], "big", signed=True)


def _postgres(bind: Session | Connection) -> bool:
    dialect = bind.get_bind().dialect if isinstance(bind, Session) else bind.dialect
    return dialect.name == "postgresql"


def xact_lock(bind: Session | Connection, name: str) -> None:
    """Wait for the lock ``name`` and hold it until the current transaction ends."""
    if _postgres(bind):
        bind.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": lock_key(name)})


def try_session_lock(conn: Connection, name: str) -> bool:
    """Take the lock ``name`` for ``conn``'s session if no other session holds it; ``True`` if
    ``conn`` holds it now. Not reentrant in effect: call it once per connection."""
    if not _postgres(conn):
        return True
    held = conn.execute(text("SELECT pg_try_advisory_lock(:key)"), {"key": lock_key(name)})
    return bool(held.scalar_one())


def release_session_lock(conn: Connection, name: str) -> None:
    """Let go of the session lock ``name`` held by ``conn``."""
    if _postgres(conn):
        conn.execute(text("SELECT pg_advisory_unlock(:key)"), {"key": lock_key(name)})
