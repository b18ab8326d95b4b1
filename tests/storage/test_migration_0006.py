"""Migration 0006: responses stored before it lose their tokens; the purge gets its index."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import pytest
from alembic import command
from sqlalchemy import inspect, text

from meridian.audit.records import attach_log
from meridian.storage import Database
from meridian.storage.migrate import alembic_config

pytestmark = pytest.mark.storage

SECRET = "mrd_user_" + "A" * 43


def _upgrade(db: Database, revision: str) -> None:
    config = alembic_config(db)
    with db.engine.begin() as conn:
        config.attributes["connection"] = conn
        command.upgrade(config, revision)


def _downgrade(db: Database, revision: str) -> None:
    config = alembic_config(db)
    with db.engine.begin() as conn:
        config.attributes["connection"] = conn
        command.downgrade(config, revision)


def test_stored_tokens_are_redacted_by_the_migration(database_url):
    db = attach_log(Database(database_url))
    try:
        _upgrade(db, "0004")
        _downgrade(db, "0004")  # PostgreSQL's test databases come migrated to the head
        now = datetime.now(UTC)
        bodies = {
            "signup": json.dumps({"account": {"id": "acct_1"}, "token": SECRET}).encode(),
            "plain": b'{"account":{"id":"acct_2"},"token":null}',
        }
        with db.engine.begin() as conn:
            for key, body in bodies.items():
                conn.execute(
                    text(
                        "INSERT INTO idempotency_keys (caller, key, method, path, fingerprint,"
                        " state, status_code, body, created_at, lease_until) VALUES (:c, :k,"
                        " 'POST', '/v1/accounts', 'f', 'done', 201, :b, :t, :l)"
                    ),
                    {"c": "anonymous:x", "k": key, "b": body, "t": now, "l": now + timedelta(seconds=60)},
                )
        _upgrade(db, "0006")
        with db.engine.connect() as conn:
            rows = dict(conn.execute(text("SELECT key, body FROM idempotency_keys")).all())
        assert SECRET.encode() not in bytes(rows["signup"])
        assert json.loads(bytes(rows["signup"])) == {"account": {"id": "acct_1"}, "token": None}
        assert bytes(rows["plain"]) == bodies["plain"]  # nothing to redact: byte for byte
        indexes = {i["name"] for i in inspect(db.engine).get_indexes("idempotency_keys")}
        assert "ix_idempotency_keys_created_at" in indexes
    finally:
        db.dispose()
