"""Decisions per minute and denials by rule, read from the log over a window of the service's time."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import text

from meridian.audit import Actor, record
from meridian.audit.stats import decision_stats
from meridian.http.journal import DecisionJournal

pytestmark = pytest.mark.storage

NOW = datetime(2020, 8, 24, 2, 30, 45, tzinfo=UTC)
WHO = Actor("operator", "tok_test")


def _decide(runtime, at, **subject):
    wire = {"action": subject.pop("action", "register"), "at": at.isoformat(), "subject": subject}
    if "channel" in subject:
        wire["resource"] = {"channel": subject.pop("channel")}
    return runtime.engine.decide(wire)


def _recorded(runtime, decision):
    """A decision as a gated change records it: one entry, the decision inside."""
    with runtime.db.write() as session:
        record(
            session,
            actor=WHO,
            action="account.register",
            subject_kind="account",
            subject_id=None,
            at=decision.at,
            bundle_digest=decision.bundle.digest,
            decision=decision,
        )


def _advisory(runtime, decisions):
    """Decisions as POST /v1/decisions journals them (the real journal, flushed on stop)."""
    journal = DecisionJournal(runtime)
    journal.start()
    journal.add(WHO, decisions[-1].bundle.digest, decisions)
    journal.stop()


def test_each_decision_counts_in_its_minute_and_each_denial_under_its_rule(runtime):
    individual = _decide(runtime, NOW, type="individual", country="CN")  # after 2020-05-01: deny
    organisation = _decide(
        runtime, NOW - timedelta(minutes=5), type="organization", country="US"
    )
    _recorded(runtime, individual)
    _recorded(runtime, organisation)
    direct = _decide(runtime, NOW, action="purchase", type="organization", country="CN", channel="direct")
    joins = [_decide(runtime, NOW, action="join", type="individual", country="CN") for _ in range(3)]
    _advisory(runtime, [direct, *joins])

    with runtime.db.read() as session:
        stats = decision_stats(session, now=NOW)

    assert (stats.total, stats.allowed, stats.denied) == (6, 4, 2)
    assert stats.start == datetime(2020, 8, 24, 1, 31, tzinfo=UTC)
    assert stats.end == datetime(2020, 8, 24, 2, 31, tzinfo=UTC)
    assert len(stats.minutes) == 60
    last, five_before = stats.minutes[-1], stats.minutes[-6]
    assert (last.allowed, last.denied) == (3, 2)
    assert (five_before.allowed, five_before.denied) == (1, 0)
    assert dict(stats.denials) == {"cn-register-organisations-only": 1, "cn-direct-sales-end": 1}
    assert stats.peak == 5


def test_the_window_is_whole_minutes_up_to_now_and_nothing_outside_it_counts(runtime):
    first_minute = NOW.replace(second=0) - timedelta(minutes=59)
    for at in (
        first_minute,  # the window's first instant: in
        first_minute - timedelta(microseconds=1),  # just before it: out
        NOW + timedelta(minutes=1),  # the next minute (a what-if about the future): out
        datetime(2020, 5, 2, tzinfo=UTC),  # a replayed instant long ago: out
    ):
        _recorded(runtime, _decide(runtime, at, type="organization", country="US"))
    with runtime.db.read() as session:
        stats = decision_stats(session, now=NOW)
    assert stats.total == 1
    assert stats.minutes[0].allowed == 1


def test_a_denial_no_rule_explains_counts_as_the_default_deny(runtime):
    # a `host` from a private address with nothing declared: location-unknown forbids
    unknown = _decide(runtime, NOW, action="host", type="individual", ip="10.1.2.3")
    # a purchase naming no channel: no rule permits it, nothing forbids it
    nothing = _decide(runtime, NOW, action="purchase", type="organization", country="US")
    assert (unknown.rule_ids, nothing.decision, nothing.reasons) == (("location-unknown",), "deny", ())
    _advisory(runtime, [unknown])
    _recorded(runtime, nothing)
    with runtime.db.read() as session:
        stats = decision_stats(session, now=NOW, minutes=5)
    assert dict(stats.denials) == {"location-unknown": 1, None: 1}
    assert len(stats.minutes) == 5


def test_other_entries_in_the_window_are_not_decisions(runtime):
    with runtime.db.write() as session:
        record(
            session,
            actor=WHO,
            action="partner.contact",
            subject_kind="partner",
            subject_id="bizconf",
            at=NOW,
            bundle_digest=runtime.digest,
            details={"contact": "x"},
        )
    with runtime.db.read() as session:
        assert decision_stats(session, now=NOW).total == 0


def test_only_the_latest_entries_are_read_and_a_short_count_says_so(runtime):
    # three decisions in the window; reading only the latest two says the count may be short
    with runtime.db.write() as session:
        for _ in range(3):
            record(
                session,
                actor=WHO,
                action="partner.contact",
                subject_kind="partner",
                subject_id="bizconf",
                at=NOW,
                bundle_digest=runtime.digest,
                details={"contact": "x"},
            )
    with runtime.db.read() as session:
        whole = decision_stats(session, now=NOW)
        tail = decision_stats(session, now=NOW, tail=2)
    assert whole.scanned >= 3  # the three, and whatever start-up recorded before them
    assert not whole.partial
    assert (tail.scanned, tail.partial) == (2, True)


def test_the_tail_is_read_by_position_not_by_a_scan(runtime):
    if runtime.db.engine.dialect.name != "sqlite":
        pytest.skip("the query plan is checked on SQLite")
    with runtime.db.engine.connect() as conn:
        plan = " ".join(
            str(row[-1])
            for row in conn.execute(
                text(
                    "EXPLAIN QUERY PLAN SELECT action, at, entry FROM records "
                    "WHERE seq >= :s AND at >= :a AND at < :b"
                ),
                {"s": 10, "a": "2020-08-24 01:31:00", "b": "2020-08-24 02:31:00"},
            )
        )
    assert "INTEGER PRIMARY KEY" in plan
