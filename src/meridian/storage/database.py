"""Connections and transactions, the same way on SQLite and PostgreSQL.

* :meth:`Database.write` is the only way to change state: one transaction, committed on leaving
  the block, rolled back on any error. On SQLite it starts with ``BEGIN IMMEDIATE``, so a writer
  holds the write lock from its first statement and two writers never deadlock upgrading a read
  lock; WAL mode lets readers go on meanwhile, and ``synchronous=FULL`` makes a commit durable
  before it is acknowledged.
* :meth:`Database.read` is a transaction that never writes (``BEGIN`` on SQLite).

INVARIANT: a caller acknowledges a change only after :meth:`Database.write` has returned.
"""

from __future__ import annotations

import contextlib
import os
import secrets
import stat
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, create_engine, event
from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError, OperationalError
from sqlalchemy.orm import Session, sessionmaker

from ..errors import ConfigurationError, StorageUnavailableError, shown

__all__ = ["ORIGIN", "Database"]

#: the key of a write session's ``info`` naming the replica (the :class:`Database`) it is of
ORIGIN = "replica"


def _sqlite_engine(url: str, *, immediate: bool) -> Engine:
    engine = create_engine(
        url,
        connect_args={"timeout": 30, "check_same_thread": False},
        pool_size=8,
        max_overflow=16,
    )

    @event.listens_for(engine, "connect")
    def _connect(dbapi_connection: Any, _record: Any) -> None:
        # Let SQLAlchemy's begin event below issue BEGIN itself (the pysqlite recipe).
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA synchronous=FULL")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute("PRAGMA busy_timeout=30000")
        cursor.close()

    @event.listens_for(engine, "begin")
    def _begin(conn: Any) -> None:
        conn.exec_driver_sql("BEGIN IMMEDIATE" if immediate else "BEGIN")

    return engine


class Database:
    """One database, by URL: ``sqlite:///path`` (the parent folder is created) or PostgreSQL."""

    def __init__(self, url: str) -> None:
        try:
            parsed = make_url(url)
        except ArgumentError:
            raise ConfigurationError(f"invalid database url `{shown(url)}`") from None
        self.url = url
        self.dialect = parsed.get_backend_name()
        if self.dialect == "sqlite":
            path = parsed.database
            if path and path != ":memory:" and not path.startswith("file:"):
                _private_sqlite_file(Path(path))
            self.engine = _sqlite_engine(url, immediate=True)
            self._reader = _sqlite_engine(url, immediate=False)
        elif self.dialect == "postgresql":
            self.engine = create_engine(url, pool_size=8, max_overflow=16, pool_pre_ping=True)
            self._reader = self.engine
        else:
            raise ConfigurationError(
                f"unsupported database `{shown(self.dialect)}`: expected sqlite or postgresql"
            )
        #: this process's name among the replicas sharing the database (orders say who sent them)
        self.replica = "r_" + secrets.token_hex(6)
        self._writes = sessionmaker(
            self.engine, expire_on_commit=False, info={ORIGIN: self.replica}
        )
        self._reads = sessionmaker(self._reader, expire_on_commit=False)
        # what the layer above (the audit log) attaches: see attach()
        self._unwritten: Callable[[Session], bool] | None = None
        self.marks: frozenset[str] = frozenset()

    def attach(
        self,
        *,
        before_commit: Callable[[Session], None],
        after_rollback: Callable[..., None],
        unwritten: Callable[[Session], bool],
        mark: str,
    ) -> None:
        """Run ``before_commit`` as each write transaction commits, ``after_rollback`` when one
        rolls back; a read transaction that ``unwritten`` finds holding work is refused.

        The audit log attaches itself here (:func:`meridian.audit.records.attach_log`) so this
        package need not know it exists; ``mark`` names what attached, once.
        """
        if mark in self.marks:
            return
        event.listen(self._writes, "before_commit", before_commit)
        event.listen(self._writes, "after_rollback", after_rollback)
        self._unwritten = unwritten
        self.marks = self.marks | {mark}
        # each session carries the marks ("write" or "read"), so what attached can tell them apart
        self._writes.configure(info={**dict.fromkeys(self.marks, "write"), ORIGIN: self.replica})
        self._reads.configure(info=dict.fromkeys(self.marks, "read"))

    @contextmanager
    def write(self) -> Iterator[Session]:
        """A write transaction: commit when the block ends, roll back if it raises."""
        try:
            with self._writes.begin() as session:
                yield session
        except OperationalError as exc:
            raise StorageUnavailableError(
                f"the database is unavailable: {_first_line(exc)}"
            ) from None

    @contextmanager
    def read(self) -> Iterator[Session]:
        """A read-only transaction."""
        try:
            # Closing ends the transaction without expiring what was loaded: objects read here
            # stay readable after the block (a rollback would expire them).
            with self._reads() as session:
                yield session
                if self._unwritten is not None and self._unwritten(session):
                    # record() in a read transaction: the entry would be lost, so nothing passes
                    raise ConfigurationError("an action was recorded in a read-only transaction")
        except OperationalError as exc:
            raise StorageUnavailableError(
                f"the database is unavailable: {_first_line(exc)}"
            ) from None

    def dispose(self) -> None:
        """Close every pooled connection."""
        self.engine.dispose()
        if self._reader is not self.engine:
            self._reader.dispose()


def _private_sqlite_file(path: Path) -> None:
    """Create the database file 0600 before SQLite opens it; close an existing one to others.

    SQLite creates the ``-wal`` and ``-shm`` files with the database file's own permissions, so
    a database created here keeps all three private from their first byte. The folder it makes
    is 0700.
    """
    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    try:
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
    except OSError as exc:
        reason = (exc.strerror or type(exc).__name__).lower()
        raise ConfigurationError(f"database file `{path}` cannot be opened: {reason}") from None
    try:
        info = os.fstat(fd)
        if stat.S_IMODE(info.st_mode) & 0o077 and info.st_uid == os.geteuid():
            os.fchmod(fd, 0o600)  # a database made by an earlier version, open to others
    finally:
        os.close(fd)
    for suffix in ("-wal", "-shm"):
        companion = path.with_name(path.name + suffix)
        with contextlib.suppress(OSError):
            if os.stat(companion).st_mode & 0o077:
                os.chmod(companion, 0o600)


def _first_line(exc: BaseException) -> str:
    text = str(getattr(exc, "orig", exc)) or type(exc).__name__
    return text.splitlines()[0].lower()
