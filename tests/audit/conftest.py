"""What the log's tests share: a migrated database with the log attached, and a log over it."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from meridian.audit.log import AuditLog
from meridian.audit.note import NoteSigner, load_or_create_log_key
from meridian.audit.records import attach_log
from meridian.storage import Database, migrate


@pytest.fixture
def db(database_url: str) -> Iterator[Database]:
    """A migrated database (each backend of ``database_url``) that writes log entries."""
    database = attach_log(Database(database_url))
    migrate(database)
    yield database
    database.dispose()


@pytest.fixture
def log(db: Database, tmp_path: Path) -> AuditLog:
    """The log over ``db``, signing its checkpoints with a fresh key."""
    key = load_or_create_log_key(tmp_path / "log.key", create=True)
    return AuditLog(db, NoteSigner("test.example/log", key))
