"""The June 2020 case, replayed (DOMAIN.md §1 and §6).

At a request from mainland China the company ended three meetings about June 4th and suspended
their hosts, in Hong Kong and the US; the fourth meeting was left alone because nobody in it was
in mainland China. On June 11 it promised that such requests would not affect anyone outside
mainland China, and blocking "at the participant level based on geography".

Here the same requests go through Meridian: the mainland participants of the three meetings are
blocked (and no one else), the fourth is rejected with nothing in scope, and the suspensions of
the HK and US hosts are rejected as out of jurisdiction.
"""

from __future__ import annotations

import pytest
from sqlalchemy import select

from meridian.legal import workflow
from meridian.storage.models import Account, LegalBlock, Meeting, Notice, Participation, Record

from .conftest import request

pytestmark = pytest.mark.storage


def test_june_2020_only_mainland_participants_are_affected(world, clock):
    clock.set("2020-06-04T10:00:00Z")
    us_host = world.account("US", "US activist group")
    hk_host = world.account("HK", "Hong Kong activist")
    us_host2 = world.account("US", "US scholar")
    cn_user = world.account("CN", "Beijing participant")
    hk_user = world.account("HK", "Hong Kong participant")
    meetings = {
        "m1": world.meeting(us_host, "June 4th commemoration"),
        "m2": world.meeting(hk_host, "June 4th vigil"),
        "m3": world.meeting(us_host2, "Tiananmen remembered"),
        "m4": world.meeting(hk_host, "no mainland participant"),
    }
    plan = {
        "m1": [("CN", cn_user), ("HK", hk_user), ("US", None)],
        "m2": [("CN", None), ("CN", None), ("HK", None)],
        "m3": [("CN", None), ("US", None), ("MO", None)],
        "m4": [("HK", None), ("US", None), ("TW", None)],
    }
    country_of: dict[str, str] = {}
    for key, joiners in plan.items():
        for country, account in joiners:
            country_of[world.joined(meetings[key], country, account)] = country
    # The requests arrive on June 11 (after the meetings, still live here); recorded by one
    # operator, approved by another.
    clock.set("2020-06-11T02:00:00Z")
    alice, bob = world.operator("alice"), world.operator("bob")
    ends = {
        key: workflow.receive(
            world.rt,
            caller=alice,
            body=request(action="end_meeting", target={"kind": "meeting", "id": mid}),
        )
        for key, mid in meetings.items()
    }
    suspensions = [
        workflow.receive(
            world.rt,
            caller=alice,
            body=request(action="suspend_account", target={"kind": "account", "id": host}),
        )
        for host in (us_host, hk_host, us_host2)
    ]

    # What scoping made of them, before anyone approved anything.
    assert {k: (r.state, r.scope["outcome"]) for k, r in ends.items()} == {
        "m1": ("pending", "narrowed"),
        "m2": ("pending", "narrowed"),
        "m3": ("pending", "narrowed"),
        "m4": ("rejected", "none"),
    }
    assert ends["m4"].rejected_by == "system:meridian"
    assert ends["m4"].reject_reason.startswith("nothing in scope: out of jurisdiction: host in HK")
    for s in suspensions:
        assert (s.state, s.rejected_by) == ("rejected", "system:meridian")
        assert "out of jurisdiction: account in" in s.reject_reason
        assert ", request from CN: it is not suspended" in s.reject_reason

    clock.set("2020-06-11T03:00:00Z")
    for key in ("m1", "m2", "m3"):
        approval = workflow.approve(world.rt, caller=bob, request_id=ends[key].id)
        assert approval.request.applied["outcome"] == "narrowed"
        assert approval.ended is False
        assert {country_of[p] for p in approval.remove} == {"CN"}

    with world.rt.db.read() as session:
        # every meeting still runs, every host is still active
        assert {m.status for m in session.scalars(select(Meeting))} == {"live"}
        assert {a.status for a in session.scalars(select(Account))} == {"active"}
        # one block per meeting with a mainland participant, for CN alone
        blocks = session.scalars(select(LegalBlock)).all()
        assert sorted((b.meeting_id, b.jurisdiction, b.active) for b in blocks) == sorted(
            (meetings[k], "CN", True) for k in ("m1", "m2", "m3")
        )
        # nobody outside mainland China was touched: their participations go on
        for p in session.scalars(select(Participation)):
            if country_of[p.id] != "CN":
                assert p.left_at is None
        # the one notice goes to the one mainland participant with an account
        assert [n.account_id for n in session.scalars(select(Notice))] == [cn_user]
        applied = session.scalars(select(Record).where(Record.action == "legal.applied")).all()
    assert len(applied) == 3
    for entry in applied:
        assert {country_of[p] for p in entry.details["participants"]} == {"CN"}
        assert set(entry.details["accounts"]) <= {cn_user}
        assert entry.details["meetings_ended"] == []

    # From now on a mainland joiner is refused, naming the request; the others still join.
    refused = world.join(meetings["m1"], "CN")
    assert not refused.placement.allowed
    assert ends["m1"].id in refused.placement.reasons[0].message
    for place in ("HK", "US", "MO", "TW"):
        assert world.join(meetings["m1"], place).placement.allowed
    # the fourth meeting never had a block: a mainland joiner may join it
    assert world.join(meetings["m4"], "CN").placement.allowed

    # Each request's steps, in order.
    assert [r.action for r in world.entries(ends["m1"].id)] == [
        "legal.received",
        "legal.scoped",
        "legal.approved",
        "legal.applied",
        "legal.notified",
    ]
    assert [r.action for r in world.entries(ends["m2"].id)] == [
        "legal.received",
        "legal.scoped",
        "legal.approved",
        "legal.applied",  # its participants joined without accounts: no one to notify
    ]
    assert [r.action for r in world.entries(ends["m4"].id)] == [
        "legal.received",
        "legal.scoped",
        "legal.rejected",
    ]
