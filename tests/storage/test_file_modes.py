"""The SQLite files are private from their first byte: the database, its WAL and its shared memory."""

from __future__ import annotations

import os
import stat

import pytest

from meridian.storage import Database, migrate

pytestmark = pytest.mark.storage


@pytest.fixture
def loose_umask():
    """The usual umask (022), under which a plain ``open`` gives 0644."""
    old = os.umask(0o022)
    yield
    os.umask(old)


def _mode(path) -> int:
    return stat.S_IMODE(os.stat(path).st_mode)


def test_a_new_sqlite_database_and_its_wal_are_0600(tmp_path, loose_umask):
    path = tmp_path / "var" / "meridian.db"
    db = Database(f"sqlite:///{path}")
    try:
        migrate(db)
        with db.engine.connect() as conn:  # a connection holds the WAL and -shm open
            conn.exec_driver_sql("SELECT 1")
            for suffix in ("", "-wal", "-shm"):
                file = path.with_name(path.name + suffix)
                assert file.exists(), suffix
                assert _mode(file) == 0o600, (suffix, oct(_mode(file)))
        assert _mode(path.parent) & 0o077 == 0  # the folder the service made is its own too
    finally:
        db.dispose()


def test_an_existing_database_left_open_to_others_is_closed_to_them(tmp_path, loose_umask):
    path = tmp_path / "meridian.db"
    path.touch(mode=0o644)
    os.chmod(path, 0o644)
    db = Database(f"sqlite:///{path}")
    try:
        migrate(db)
        assert _mode(path) == 0o600
    finally:
        db.dispose()
