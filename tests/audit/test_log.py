"""The live log on SQLite and PostgreSQL: positions, bytes, proofs, checkpoints, concurrent writers."""

from __future__ import annotations

import hashlib
import json
import threading
from datetime import UTC, datetime

import pytest
import rfc8785
from alembic import command
from sqlalchemy import func, select, text

from meridian.audit import SYSTEM, Actor, record
from meridian.audit.merkle import verify_consistency, verify_inclusion
from meridian.audit.note import NoteVerifier
from meridian.audit.records import attach_log
from meridian.audit.verify import verify_export
from meridian.errors import InputError
from meridian.storage import Database, migrate
from meridian.storage.migrate import alembic_config
from meridian.storage.models import LogHead, Record

pytestmark = pytest.mark.storage

AT = datetime(2020, 6, 4, 12, 0, tzinfo=UTC)
#: actions per transaction in the concurrent-writers test: 3,200 transactions race for the log's
#: lock (one action per transaction is what the SIGKILL test in test_crash.py does, over HTTP)
PER_TRANSACTION = 10


def _add(db, n, *, who="w", fail=False):
    with db.write() as session:
        for i in range(n):
            record(
                session,
                actor=Actor("test", who),
                action="test.write",
                subject_kind="counter",
                subject_id=f"{who}-{i}",
                at=AT,
                bundle_digest="sha256:" + "0" * 64,
                details={"writer": who, "i": i},
            )
        if fail:
            raise RuntimeError("roll back")


def _positions(db):
    with db.read() as session:
        return session.scalars(select(Record.seq).order_by(Record.seq)).all()


def test_entries_get_consecutive_positions_and_canonical_bytes(db):
    _add(db, 3)
    _add(db, 2, who="v")
    assert _positions(db) == [0, 1, 2, 3, 4]
    with db.read() as session:
        rows = session.scalars(select(Record).order_by(Record.seq)).all()
        head = session.get(LogHead, 1)
    assert head.size == 5
    for row in rows:
        data = bytes(row.entry)
        obj = json.loads(data)
        assert rfc8785.dumps(obj) == data
        assert bytes(row.leaf) == hashlib.sha256(b"\x00" + data).digest()
        assert obj["subject"] == {"kind": "counter", "id": row.subject_id}
        assert obj["at"] == "2020-06-04T12:00:00Z"
        assert obj["v"] == 1


def test_a_rolled_back_transaction_leaves_no_gap(db):
    _add(db, 2)
    with pytest.raises(RuntimeError):
        _add(db, 5, fail=True)
    _add(db, 1, who="after")
    assert _positions(db) == [0, 1, 2]


def test_floats_and_unicode_keys_take_the_rfc8785_path(db):
    with db.write() as session:
        record(
            session,
            actor=SYSTEM,
            action="test.float",
            subject_kind="x",
            subject_id=None,
            at=AT,
            bundle_digest="sha256:x",
            details={"load": 1.0, "small": 1e-7, "big": 1e21, "é": "ü", "😀": 1},
        )
    with db.read() as session:
        data = bytes(session.scalars(select(Record.entry)).one())
    assert data == rfc8785.dumps(json.loads(data))
    assert b'"load":1,' in data


def test_an_entry_that_is_not_plain_json_fails_the_change(db):
    with pytest.raises(InputError, match="plain JSON"), db.write() as session:
        record(
            session,
            actor=SYSTEM,
            action="test.bad",
            subject_kind="x",
            subject_id=None,
            at=AT,
            bundle_digest="sha256:x",
            details={"when": datetime.now(UTC)},
        )
    assert _positions(db) == []


def test_proofs_and_checkpoints_over_the_stored_log(db, log):
    _add(db, 10)
    first = log.checkpoint()
    assert first.checkpoint.size == 10
    assert log.checkpoint() == first  # nothing new: the same checkpoint
    _add(db, 7, who="later")
    second = log.checkpoint()
    assert second.checkpoint.size == 17
    verifier = NoteVerifier.from_vkey(log.vkey)
    assert verifier.open(second.note) == second.checkpoint
    for index in range(17):
        size, leaf, proof, root = log.inclusion(index)
        assert (size, root) == (17, second.checkpoint.root)
        verify_inclusion(leaf, index, size, proof, root)
    size, proof, old_root, new_root = log.consistency(10)
    assert old_root == first.checkpoint.root
    verify_consistency(10, 17, old_root, new_root, proof)
    assert [s.checkpoint.size for s in log.checkpoints()] == [10, 17]
    assert [i for i, _ in log.entries(0, 17)] == list(range(17))
    with pytest.raises(InputError, match="`17`"):
        log.inclusion(17)
    with pytest.raises(InputError, match="`18`"):
        log.consistency(1, 18)


def test_a_second_process_sees_what_another_wrote(db, log, database_url):
    other = attach_log(Database(database_url))
    try:
        _add(other, 4)
        assert log.sync() == 4
        _add(other, 1)
        assert log.checkpoint().checkpoint.size == 5
    finally:
        other.dispose()


@pytest.mark.slow  # 32 000 appends from 32 threads: about 20 s
def test_thirty_two_writers_a_thousand_actions_each(db, log, tmp_path):
    """32 concurrent writers × 1,000 actions: 32,000 entries, no gap, no duplicate, one each."""
    writers, actions = 32, 1000
    errors: list[BaseException] = []

    def write(w: int) -> None:
        try:
            # PER_TRANSACTION actions per transaction, each one entry.
            for start in range(0, actions, PER_TRANSACTION):
                with db.write() as session:
                    for i in range(start, start + PER_TRANSACTION):
                        record(
                            session,
                            actor=Actor("writer", str(w)),
                            action="test.write",
                            subject_kind="action",
                            subject_id=f"{w}:{i}",
                            at=AT,
                            bundle_digest="sha256:x",
                            details={"writer": w, "i": i},
                        )
        except Exception as exc:  # noqa: BLE001 (reported by the assertion below)
            errors.append(exc)

    threads = [threading.Thread(target=write, args=(w,)) for w in range(writers)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    with db.read() as session:
        count = session.scalar(select(func.count()).select_from(Record))
        seqs = session.scalars(select(Record.seq).order_by(Record.seq)).all()
        subjects = session.scalars(select(Record.subject_id)).all()
        head = session.get(LogHead, 1).size
    assert count == head == writers * actions
    assert seqs == list(range(writers * actions))
    assert sorted(subjects) == sorted(f"{w}:{i}" for w in range(writers) for i in range(actions))
    # The tree over them verifies end to end.
    signed = log.checkpoint()
    from meridian.audit.export import write_export

    path = tmp_path / "log.jsonl"
    write_export(
        path,
        origin=log.origin,
        checkpoints=[s.note for s in log.checkpoints()],
        entries=log.entries(0, signed.checkpoint.size),
        count=signed.checkpoint.size,
    )
    result = verify_export(path, log.vkey)
    assert result.problems == ()
    assert result.entries == writers * actions


def test_migration_turns_existing_records_into_the_log(database_url):
    db = attach_log(Database(database_url))
    try:
        config = alembic_config(db)
        with db.engine.begin() as conn:
            config.attributes["connection"] = conn
            command.upgrade(config, "head")  # PostgreSQL's test databases come migrated
            command.downgrade(config, "0002")
        with db.engine.begin() as conn:
            for seq in (1, 2, 5):  # a gap, as a PostgreSQL sequence can leave
                conn.execute(
                    text(
                        "INSERT INTO records (seq, at, recorded_at, actor, action, subject_kind, "
                        "subject_id, bundle_digest, decision, details) VALUES (:seq, :at, :at, "
                        "'system:meridian', 'test.old', 'x', :sid, 'sha256:x', NULL, :details)"
                    ),
                    {
                        "seq": seq,
                        "at": datetime(2020, 1, seq)
                        if db.dialect == "sqlite"
                        else datetime(2020, 1, seq, tzinfo=UTC),
                        "sid": f"old-{seq}",
                        "details": json.dumps({"n": seq}),
                    },
                )
        migrate(db)
        with db.read() as session:
            rows = session.scalars(select(Record).order_by(Record.seq)).all()
            head = session.get(LogHead, 1).size
        assert [(r.seq, r.subject_id) for r in rows] == [(0, "old-1"), (1, "old-2"), (2, "old-5")]
        assert head == 3
        for r in rows:
            assert json.loads(bytes(r.entry))["details"] == {"n": int(r.subject_id[4:])}
            assert bytes(r.leaf) == hashlib.sha256(b"\x00" + bytes(r.entry)).digest()
        _add(db, 1)
        assert _positions(db) == [0, 1, 2, 3]
    finally:
        db.dispose()


def test_an_action_recorded_in_a_read_transaction_is_refused(db):
    from meridian.errors import ConfigurationError

    with pytest.raises(ConfigurationError, match="read-only"), db.read() as session:
        record(
            session,
            actor=SYSTEM,
            action="test.lost",
            subject_kind="x",
            subject_id=None,
            at=AT,
            bundle_digest="sha256:x",
        )
    assert _positions(db) == []


def test_an_action_recorded_on_a_database_the_log_is_not_attached_to_is_refused(database_url):
    # storage knows nothing of the log: until the log attaches itself, nothing would write
    # what record() adds, so record() refuses rather than lose the entry
    from meridian.errors import ConfigurationError

    bare = Database(database_url)
    try:
        migrate(bare)
        with pytest.raises(ConfigurationError, match="not attached"), bare.write() as session:
            record(
                session,
                actor=SYSTEM,
                action="test.lost",
                subject_kind="x",
                subject_id=None,
                at=AT,
                bundle_digest="sha256:" + "0" * 64,
            )
    finally:
        bare.dispose()
