"""The log checks itself: an entry edited in the database is named and refused, on both databases.

The attack from the issue: an operator with write access to the database edits a stored entry
(say a government request's jurisdiction) and the transparency report changes under the same
signed checkpoint. Here every read that feeds a report, a proof or a page rehashes the entries it
reads, start-up verifies the stored log incrementally from the last verified position, and a
mismatch is recorded and refuses reports and proofs with one error naming the position.
"""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from sqlalchemy import select, update

from meridian.audit import Actor, record
from meridian.audit.log import AuditLog
from meridian.audit.merkle import leaf_hash
from meridian.audit.note import NoteSigner, load_or_create_log_key
from meridian.errors import LogIntegrityError, LogTamperedError
from meridian.reports.compute import report_from_log
from meridian.storage.models import LogProblem, LogVerified, Record

pytestmark = pytest.mark.storage

AT = datetime(2020, 6, 4, 12, 0, tzinfo=UTC)
#: the entry the tests edit
VICTIM = 4


@pytest.fixture
def key(tmp_path):
    return load_or_create_log_key(tmp_path / "log.key", create=True)


def _log(db, key) -> AuditLog:
    """A log as a (re)started process builds it: its tree read afresh from the database."""
    return AuditLog(db, NoteSigner("test.example/log", key))


def _add(db, n: int, *, first: int = 0) -> None:
    with db.write() as session:
        for i in range(first, first + n):
            record(
                session,
                actor=Actor("test", "w"),
                action="legal.received",
                subject_kind="legal_request",
                subject_id=f"lr_{i:04d}",
                at=AT,
                bundle_digest="sha256:" + "0" * 64,
                details={
                    "request": {
                        "jurisdiction": "CN",
                        "legal_type": "subpoena",
                        "action": "disclose",
                    }
                },
            )


def _edit(db, position: int, *, leaf_too: bool = False) -> bytes:
    """Rewrite one stored entry as an attacker would (CN becomes US); its original bytes."""
    with db.write() as session:
        original = bytes(session.scalar(select(Record.entry).where(Record.seq == position)))
        forged = original.replace(b'"CN"', b'"US"')
        assert forged != original
        values = {"entry": forged, **({"leaf": leaf_hash(forged)} if leaf_too else {})}
        session.execute(update(Record).where(Record.seq == position).values(**values))
    return original


def _restore(db, position: int, original: bytes) -> None:
    with db.write() as session:
        session.execute(
            update(Record)
            .where(Record.seq == position)
            .values(entry=original, leaf=leaf_hash(original))
        )


def _open_problems(db) -> list[LogProblem]:
    with db.read() as session:
        return list(session.scalars(select(LogProblem).where(LogProblem.resolved_at.is_(None))))


def _refused(call) -> str:
    with pytest.raises(LogTamperedError) as caught:
        call()
    assert caught.value.http_status == 503
    message = caught.value.message
    assert "\n" not in message
    return message


def test_an_edited_entry_is_refused_by_reports_proofs_and_entries_naming_its_position(db, key):
    _add(db, 10)
    log = _log(db, key)
    log.checkpoint()
    before = report_from_log(log)
    assert dict(before.by_jurisdiction) == {"CN": 10}

    _edit(db, VICTIM)
    message = _refused(lambda: report_from_log(log, fresh=False))
    assert f"entry {VICTIM} " in message
    assert "`legal_request lr_0004`" in message
    # recorded once, in the database, where every process and the console see it
    [problem] = _open_problems(db)
    assert problem.position == VICTIM
    # and from then on every report, proof and read of entries is refused with the same error
    for call in (
        lambda: report_from_log(log, fresh=False),
        lambda: log.inclusion(0),
        lambda: log.consistency(1),
        lambda: list(log.entries(0, 3)),
        lambda: log.checkpoint(),
    ):
        assert f"entry {VICTIM} " in _refused(call)
    # another process (a CLI command) refuses too
    assert f"entry {VICTIM} " in _refused(lambda: _log(db, key).inclusion(0))


def test_an_edited_leaf_is_caught_against_the_tree_already_read(db, key):
    _add(db, 10)
    log = _log(db, key)
    log.checkpoint()
    _edit(db, VICTIM, leaf_too=True)  # entry and leaf agree: only the tree knows better
    message = _refused(lambda: list(log.entries(0, 10)))
    assert f"entry {VICTIM} " in message


def test_start_up_detects_an_edited_entry_and_records_it(db, key):
    _add(db, 10)
    _log(db, key).checkpoint()
    _edit(db, VICTIM)
    check = _log(db, key).self_check()
    assert len(check.problems) == 1
    assert f"entry {VICTIM} " in check.problems[0]
    [problem] = _open_problems(db)
    assert problem.position == VICTIM
    assert problem.kind == "entry_hash"
    assert f"entry {VICTIM} " in _refused(lambda: report_from_log(_log(db, key), fresh=False))


def test_start_up_catches_an_entry_and_leaf_rewritten_together_by_the_signed_root(db, key):
    _add(db, 6)
    _log(db, key).checkpoint()  # size 6
    _add(db, 6, first=6)
    _log(db, key).checkpoint()  # size 12
    _edit(db, 8, leaf_too=True)
    check = _log(db, key).self_check(full=True)
    assert check.problems
    # located between the checkpoints that still hold and the first that does not
    assert "entries 6–11" in check.problems[0]
    assert _open_problems(db)
    _refused(lambda: _log(db, key).inclusion(0))


def test_start_up_verification_resumes_from_the_last_verified_position(db, key):
    _add(db, 40)
    log = _log(db, key)
    log.checkpoint()
    first = _log(db, key).self_check()
    assert (first.start, first.checked, first.problems) == (0, 40, ())
    assert first.rate > 0
    with db.read() as session:
        assert session.get(LogVerified, 1).size == 40
    _add(db, 15, first=40)
    _log(db, key).checkpoint()
    again = _log(db, key).self_check()
    assert (again.start, again.checked, again.problems) == (40, 15, ())
    nothing = _log(db, key).self_check()
    assert (nothing.start, nothing.checked) == (55, 0)


def test_a_restored_entry_clears_the_problem_at_the_next_start_up(db, key):
    _add(db, 10)
    _log(db, key).checkpoint()
    original = _edit(db, VICTIM)
    assert _log(db, key).self_check().problems
    _restore(db, VICTIM, original)
    # an open problem makes the next start-up check the whole log, not just what follows
    check = _log(db, key).self_check()
    assert (check.start, check.checked, check.problems) == (0, 10, ())
    assert _open_problems(db) == []
    log = _log(db, key)
    assert dict(report_from_log(log, fresh=False).by_jurisdiction) == {"CN": 10}
    assert log.inclusion(VICTIM)[0] == 10


def test_a_log_cut_short_is_a_problem(db, key):
    _add(db, 10)
    _log(db, key).checkpoint()
    with db.write() as session:
        session.execute(Record.__table__.delete().where(Record.seq >= 7))
    check = _log(db, key).self_check()
    assert any("entries 7–9" in p for p in check.problems), check.problems
    with pytest.raises(LogIntegrityError):
        _log(db, key).inclusion(0)
