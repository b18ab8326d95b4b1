"""Migration 0005: every operator token of an older database becomes a person of its own."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from alembic import command
from sqlalchemy import text

from meridian.audit.records import attach_log
from meridian.storage import Database, migrate
from meridian.storage.migrate import alembic_config

pytestmark = pytest.mark.storage


@pytest.fixture
def db(database_url):
    database = attach_log(Database(database_url))
    yield database
    database.dispose()


def test_upgrade_gives_each_operator_token_its_own_person_and_downgrade_undoes_it(db):
    config = alembic_config(db)
    migrate(db)  # (a PostgreSQL test database is cloned from a migrated template)
    with db.engine.begin() as conn:
        config.attributes["connection"] = conn
        command.downgrade(config, "0004")
    made = datetime(2020, 6, 1, 9, tzinfo=UTC).replace(tzinfo=None)
    with db.engine.begin() as conn:
        for token_id, role, name, revoked in (
            ("tok_a", "operator", "Alice", None),
            ("tok_b", "operator", "alice", None),  # the old name rule's one person: now two
            ("tok_c", "operator", "Gone", made),
            ("tok_p", "partner", "bizconf", None),
        ):
            conn.execute(
                text(
                    "INSERT INTO tokens (id, hash, role, name, partner_id, account_id,"
                    " created_at, revoked_at) VALUES (:id, :hash, :role, :name, NULL, NULL,"
                    " :at, :revoked)"
                ),
                {
                    "id": token_id,
                    "hash": token_id * 8,
                    "role": role,
                    "name": name,
                    "at": made,
                    "revoked": revoked,
                },
            )
    migrate(db)
    with db.engine.connect() as conn:
        rows = conn.execute(
            text(
                "SELECT t.id, t.person_id, p.name, p.disabled_at IS NOT NULL, t.demo"
                " FROM tokens t LEFT JOIN people p ON p.id = t.person_id ORDER BY t.id"
            )
        ).all()
    by_token = {r[0]: r[1:] for r in rows}
    assert by_token["tok_p"][0] is None
    people = {by_token[t][0] for t in ("tok_a", "tok_b", "tok_c")}
    assert len(people) == 3
    assert all(p.startswith("psn_") for p in people)
    assert [by_token[t][1:3] for t in ("tok_a", "tok_b", "tok_c")] == [
        ("Alice", False),
        ("alice", False),
        ("Gone", True),  # a revoked token's person is removed with it
    ]
    assert not any(bool(r[4]) for r in rows)
    with db.engine.begin() as conn:
        config.attributes["connection"] = conn
        command.downgrade(config, "0004")
    with db.engine.connect() as conn:
        assert conn.execute(text("SELECT count(*) FROM tokens")).scalar() == 4
