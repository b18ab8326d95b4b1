"""Reading the record as stored, through :class:`AuditLog`: entries, leaves, lines, checkpoints."""

from __future__ import annotations

from dataclasses import FrozenInstanceError
from datetime import UTC, datetime

import pytest
from sqlalchemy import update

from meridian.audit import Actor, record
from meridian.audit.export import entry_line
from meridian.audit.log import CheckpointNotes, EntrySummary, StoredEntry
from meridian.audit.merkle import leaf_hash
from meridian.storage.models import Checkpoint as CheckpointRow

pytestmark = pytest.mark.storage

AT = datetime(2020, 6, 4, 12, 0, tzinfo=UTC)


def _add(db, action, subject, **details):
    with db.write() as session:
        record(
            session,
            actor=Actor("test", "w"),
            action=action,
            subject_kind="account" if subject else "bundle",
            subject_id=subject,
            at=AT,
            bundle_digest="sha256:" + "0" * 64,
            details=details,
        )


def _world(db):
    _add(db, "account.create", "acct_a", i=0)
    _add(db, "account.suspend", "acct_a", i=1)
    _add(db, "account.create", "acct_b", i=2)
    _add(db, "bundle.load", None, i=3)


def test_recent_entries_are_the_latest_newest_first(db, log):
    _world(db)
    recent = log.recent_entries(3)
    assert [e.seq for e in recent] == [3, 2, 1]
    assert recent[0] == EntrySummary(3, recent[0].at, "bundle.load", "test:w", "bundle", None)
    assert recent[0].subject == "bundle"
    assert recent[1].subject == "account acct_b"
    with pytest.raises(FrozenInstanceError):
        recent[0].seq = 9  # type: ignore[misc]


def test_records_filter_and_count_oldest_first(db, log):
    _world(db)
    rows, count = log.records(action="account.create")
    assert count == 2
    assert [(r.seq, r.subject_id) for r in rows] == [(0, "acct_a"), (2, "acct_b")]
    rows, count = log.records(after=0, subject="acct_a")
    assert (count, [r.action for r in rows]) == (1, ["account.suspend"])
    rows, count = log.records(limit=1)
    assert (len(rows), count) == (1, 4)
    first = rows[0]
    assert isinstance(first, StoredEntry)
    assert first.details == {"i": 0}
    assert first.decision is None
    assert first.to_dict() == {
        "seq": 0,
        "at": first.at.isoformat(),
        "recorded_at": first.recorded_at.isoformat(),
        "actor": "test:w",
        "action": "account.create",
        "subject_kind": "account",
        "subject_id": "acct_a",
        "bundle_digest": "sha256:" + "0" * 64,
        "decision": None,
        "details": {"i": 0},
    }


def test_entries_about_some_subjects_in_log_order(db, log):
    _world(db)
    assert [(e.seq, e.action) for e in log.entries_about({"acct_b", "acct_a"})] == [
        (0, "account.create"),
        (1, "account.suspend"),
        (2, "account.create"),
    ]
    assert log.entries_about(set()) == ()
    assert log.entries_about({"acct_nobody"}) == ()


def test_stored_leaves_and_lines_are_what_was_written_even_once_changed(db, log):
    _world(db)
    entries = [data for _, data in log.entries(0, 4)]
    assert log.stored_leaf(1) == leaf_hash(entries[1])
    assert log.stored_leaf(99) is None
    assert list(log.stored_lines(4)) == [entry_line(i, e) for i, e in enumerate(entries)]
    assert len(list(log.stored_lines(2))) == 2
    # an entry changed after it was written is shown as it now is, beside the leaf stored for it
    from meridian.storage.models import Record

    changed = entries[1].replace(b'"i":1', b'"i":7')
    with db.write() as session:
        session.execute(update(Record).where(Record.seq == 1).values(entry=changed))
    line = list(log.stored_lines(4))[1]
    assert changed in line
    assert leaf_hash(entries[1]).hex().encode() in line
    assert log.stored_leaf(1) == leaf_hash(entries[1])


def test_stored_checkpoints_notes_and_sizes(db, log):
    assert log.stored_checkpoints() == ((), 0)
    assert log.checkpoint_notes() == CheckpointNotes((), 0)
    assert log.checkpoint_sizes() == ()
    _add(db, "a.b", "x")
    first = log.checkpoint()
    _add(db, "a.b", "y")
    _add(db, "a.b", "z")
    second = log.checkpoint()
    page, count = log.stored_checkpoints(limit=1)
    assert count == 2
    (newest,) = page
    assert (newest.size, newest.root, newest.note, newest.problem) == (3, second.checkpoint.root, second.note, None)
    assert newest.time == second.checkpoint.time
    page, _ = log.stored_checkpoints(offset=1, limit=5)
    assert [c.size for c in page] == [1]
    assert log.checkpoint_notes() == CheckpointNotes((first.note, second.note), 3)
    assert log.checkpoint_sizes() == (3, 1)
    assert log.checkpoint_sizes(1) == (3,)
    # a stored note that does not verify is listed with why, never raised
    forged = first.note.replace("test.example/log", "test.example/other")
    with db.write() as session:
        session.execute(update(CheckpointRow).where(CheckpointRow.size == 1).values(note=forged))
    page, _ = log.stored_checkpoints()
    bad = page[1]
    assert (bad.size, bad.root, bad.time, bad.note) == (1, first.checkpoint.root, None, forged)
    assert bad.problem
