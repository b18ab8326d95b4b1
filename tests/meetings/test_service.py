"""Meetings in the database: admitting through the service functions, and start-up clean-up."""

from __future__ import annotations

import pytest
from sqlalchemy import select

from meridian.identity.accounts import register
from meridian.identity.tokens import Caller
from meridian.meetings.placement import Occupancy
from meridian.meetings.regions import region_table
from meridian.meetings.service import admit, close_stale, create_meeting
from meridian.storage.models import Participation, Record

pytestmark = pytest.mark.storage

OPERATOR = Caller("tok_test", "operator")


def test_admitted_and_refused_joins_are_recorded_and_stale_ones_closed_at_start(runtime, clock):
    clock.set("2021-03-01T10:00:00Z")
    account = register(
        runtime, caller=OPERATOR, type="organization", name="Acme", country="US"
    ).account
    meeting, _, _ = create_meeting(
        runtime,
        caller=OPERATOR,
        host_account_id=account.id,
        topic="t",
        countries={"deny": ["FR"]},
        client_ip=None,
    )
    occupancy = Occupancy(region_table(runtime.engine.bundle))
    uses: dict[str, int] = {}
    ok = admit(
        runtime,
        meeting_id=meeting.id,
        name="a",
        caller=None,
        client_ip="8.8.8.8",
        occupancy=occupancy,
        uses=uses,
    )
    no = admit(
        runtime,
        meeting_id=meeting.id,
        name="b",
        caller=None,
        client_ip="2.0.0.1",
        occupancy=occupancy,
        uses=uses,
    )
    assert (ok.placement.dc, ok.participation is not None) == ("US", True)
    assert (no.placement.decision, no.participation) == ("deny", None)
    assert no.decision["reasons"][0]["rule"] == "meeting-countries"
    assert uses == {"US": 1}
    assert occupancy.used["US"] == 1
    with runtime.db.read() as session:
        joins = session.scalars(select(Record).where(Record.action == "meeting.join")).all()
        assert [j.details["decision"] for j in joins] == ["allow", "deny"]
        assert [j.details["country"] for j in joins] == ["US", "FR"]
    # its own participations a replica never closes as stale
    assert close_stale(runtime, starting=True) == 0
    # another replica starting: the first never held a lease, so it is gone
    from meridian.runtime import Runtime

    after = Runtime(runtime.settings, clock=runtime.clock)
    after.start()
    try:
        assert close_stale(after, starting=True) == 1
        assert close_stale(after) == 0
    finally:
        after.close()
    with runtime.db.read() as session:
        (row,) = session.scalars(select(Participation)).all()
        assert row.left_at is not None
        assert row.country == "US"
        assert row.dc == "US"


def test_a_meetings_key_epoch_only_grows_on_both_databases(runtime, clock):
    from meridian.meetings.access import advance_epoch
    from meridian.meetings.invite import invite_matches
    from meridian.storage.models import Meeting

    clock.set("2021-03-01T10:00:00Z")
    account = register(
        runtime, caller=OPERATOR, type="organization", name="Acme", country="US"
    ).account
    meeting, _, invite = create_meeting(
        runtime,
        caller=OPERATOR,
        host_account_id=account.id,
        topic="t",
        countries=None,
        client_ip=None,
    )
    occupancy = Occupancy(region_table(runtime.engine.bundle))

    def session_epoch() -> int | None:
        return admit(
            runtime,
            meeting_id=meeting.id,
            name="a",
            caller=None,
            client_ip="8.8.8.8",
            occupancy=occupancy,
            uses={},
            new_session=True,
        ).epoch

    first = session_epoch()
    rotated = advance_epoch(runtime, meeting.id)
    second = session_epoch()
    assert (first, rotated, second) == (1, 2, 3)
    with runtime.db.read() as session:
        row = session.get(Meeting, meeting.id)
        assert row is not None
        assert row.epoch == 3
        # only the invite's hash is stored, and it matches the invite
        assert row.invite_hash is not None
        assert invite not in row.invite_hash
        assert invite_matches(row.invite_hash, invite)
        assert not invite_matches(row.invite_hash, invite + "x")
