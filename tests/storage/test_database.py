"""The schema, migrations and transactions, on SQLite and PostgreSQL."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import pytest
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import inspect, select

from meridian.audit.records import attach_log
from meridian.errors import ConfigurationError
from meridian.storage import Database, migrate
from meridian.storage.migrate import current_revision, head_revision
from meridian.storage.models import Base, Notice, Partner

pytestmark = pytest.mark.storage


@pytest.fixture
def db(database_url):
    database = attach_log(Database(database_url))
    yield database
    database.dispose()


def test_migrations_create_the_schema_the_models_describe(db):
    migrate(db)
    assert current_revision(db) == head_revision()
    with db.engine.connect() as conn:
        diff = compare_metadata(MigrationContext.configure(conn), Base.metadata)
    assert diff == []
    migrate(db)  # idempotent
    assert set(inspect(db.engine).get_table_names()) >= {"accounts", "records", "subscriptions"}


def test_instants_come_back_aware_and_in_utc(db):
    migrate(db)
    local = datetime(2020, 8, 23, 0, 0, tzinfo=timezone(timedelta(hours=8)))
    with db.write() as session:
        session.add(
            Partner(id="p", name="P", jurisdictions=["CN"], effective_from=local, effective_until=None, status="active", contact=None, updated_at=local)
        )
    with db.read() as session:
        row = session.get(Partner, "p")
        assert row.effective_from == local
        assert row.effective_from.tzinfo == UTC
        assert row.effective_from.hour == 16


def test_naive_instants_are_refused(db):
    migrate(db)
    row = Partner(id="p", name="P", jurisdictions=[], effective_from=datetime(2020, 1, 1), effective_until=None, status="active", contact=None, updated_at=datetime.now(UTC))
    with db.write() as session:
        session.add(row)
        with pytest.raises(Exception, match="naive datetime"):
            session.flush()
        session.rollback()


def test_a_write_that_raises_leaves_nothing(db):
    migrate(db)
    now = datetime.now(UTC)
    def fail() -> None:
        with db.write() as session:
            session.add(Partner(id="p", name="P", jurisdictions=[], effective_from=None, effective_until=None, status="active", contact=None, updated_at=now))
            session.flush()
            raise RuntimeError("boom")

    with pytest.raises(RuntimeError):
        fail()
    with db.read() as session:
        assert session.scalars(select(Partner)).all() == []


def test_foreign_keys_are_enforced(db):
    migrate(db)
    now = datetime.now(UTC)
    with db.write() as session:
        session.add(Notice(id="n", account_id="acct_missing", kind="k", message="m", subject_id=None, created_at=now, sent_at=None))
        with pytest.raises(Exception, match=r"(?i)foreign key"):
            session.flush()
        session.rollback()


def test_sqlite_runs_in_wal_mode(tmp_path):
    db = Database(f"sqlite:///{tmp_path / 'sub' / 'm.db'}")  # the folder is created
    with db.engine.connect() as conn:
        assert conn.exec_driver_sql("PRAGMA journal_mode").scalar() == "wal"
        assert conn.exec_driver_sql("PRAGMA foreign_keys").scalar() == 1
    db.dispose()


def test_unsupported_database_is_a_configuration_error():
    with pytest.raises(ConfigurationError, match="unsupported database `mysql`"):
        Database("mysql://localhost/x")
    with pytest.raises(ConfigurationError, match="invalid database url"):
        Database("not a url")
