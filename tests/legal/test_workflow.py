"""The workflow in the database: two people, nothing without approval, what applying does."""

from __future__ import annotations

import asyncio
from collections.abc import Collection

import pytest
from sqlalchemy import select

from meridian.audit import SYSTEM
from meridian.errors import ConflictError, ForbiddenError, InputError, NotFoundError
from meridian.http.deps import TokenCache
from meridian.identity.tokens import Caller, create_token
from meridian.legal import workflow
from meridian.meetings.service import create_meeting
from meridian.storage.models import (
    Account,
    LegalBlock,
    LegalRequest,
    Meeting,
    Notice,
    Participation,
    Person,
)

from .conftest import request

pytestmark = pytest.mark.storage


def legal_actions(world, request_id):
    return [r.action for r in world.entries(request_id)]


def notices(world):
    with world.rt.db.read() as session:
        return list(session.scalars(select(Notice).order_by(Notice.created_at, Notice.id)))


@pytest.fixture
def us_meeting(world):
    """A US-hosted meeting with participants in CN (with an account), CN (without), HK and US."""
    cn_user = world.account("CN", "Beijing user")
    mid = world.meeting(world.account("US", "US host"))
    ids = {
        "cn": world.joined(mid, "CN", cn_user),
        "cn_guest": world.joined(mid, "CN"),
        "hk": world.joined(mid, "HK"),
        "us": world.joined(mid, "US"),
    }
    return mid, ids, cn_user


def test_the_recorder_can_never_approve_and_nothing_applies_without_approval(world, us_meeting):
    mid, _, _ = us_meeting
    alice = world.operator("Alice")
    alias = world.operator("aLICE")  # another token, the same person by name
    row = workflow.receive(
        world.rt, caller=alice, body=request(target={"kind": "meeting", "id": mid})
    )
    assert row.state == "pending"
    for who in (alice, alias):
        with pytest.raises(ForbiddenError, match="a second operator must approve it"):
            workflow.approve(world.rt, caller=who, request_id=row.id)
    assert legal_actions(world, row.id) == [
        "legal.received",
        "legal.scoped",
        "legal.approval_refused",
        "legal.approval_refused",
    ]
    with world.rt.db.read() as session:
        assert workflow.get_request(session, row.id).state == "pending"
        assert session.scalars(select(LegalBlock)).all() == []
        assert session.get(Meeting, mid).status == "live"
        assert all(p.left_at is None for p in session.scalars(select(Participation)))
    assert notices(world) == []
    # a CN joiner is still admitted: there is no block without an approval
    assert world.join(mid, "CN").placement.allowed


def test_every_step_is_recorded_in_order_and_a_decided_request_is_final(world, us_meeting):
    mid, ids, cn_user = us_meeting
    alice, bob = world.operator("alice"), world.operator("bob")
    row = workflow.receive(
        world.rt, caller=alice, body=request(target={"kind": "meeting", "id": mid})
    )
    approval = workflow.approve(world.rt, caller=bob, request_id=row.id)
    assert approval.request.state == "applied"
    assert legal_actions(world, row.id) == [
        "legal.received",
        "legal.scoped",
        "legal.approved",
        "legal.applied",
        "legal.notified",
    ]
    received, scoped, approved, applied, notified = world.entries(row.id)
    assert received.actor == f"operator:{alice.person_id}"
    assert received.details["recorded_by"] == f"operator:{alice.person_id}"
    assert received.details["request"] == {
        "authority": "Beijing Municipal Public Security Bureau",
        "jurisdiction": "CN",
        "legal_type": "court_order",
        "reference": "(2020) Jing 01 No. 604",
        "target": {"kind": "meeting", "id": mid},
        "action": "end_meeting",
        "notice_delay_until": None,
        "documents": [{"name": "order.pdf", "sha256": "ab" * 32, "size": 48213}],
    }
    assert (scoped.actor, scoped.details["outcome"]) == ("system:meridian", "narrowed")
    assert approved.details == {"by": f"operator:{bob.person_id}"}
    assert applied.details["outcome"] == "narrowed"
    # participations in the order they joined (here at one instant: then by id)
    assert applied.details["participants"] == sorted([ids["cn"], ids["cn_guest"]])
    assert applied.details["accounts"] == [cn_user]
    assert applied.details["meetings_ended"] == []
    assert applied.details["disclosures"] == {"content": 0, "non_content": 0}
    assert (applied.details["notice"], applied.details["notice_delay_until"]) == ("sent", None)
    assert applied.details["not_notifiable"] == [ids["cn_guest"]]
    assert notified.details == {"accounts": [cn_user], "delayed": False}
    assert {r.subject_kind for r in world.entries(row.id)} == {"legal_request"}
    assert all(r.at.isoformat() == "2020-06-04T12:00:00+00:00" for r in world.entries(row.id))
    # the live participants to disconnect are the CN ones only
    assert (approval.meeting_id, set(approval.remove), approval.ended) == (
        mid,
        {ids["cn"], ids["cn_guest"]},
        False,
    )
    (notice,) = notices(world)
    assert notice.account_id == cn_user
    assert f"removed from meeting `{mid}`" in notice.message
    assert row.id in notice.message
    with pytest.raises(ConflictError, match="already `applied`"):
        workflow.approve(world.rt, caller=world.operator("carol"), request_id=row.id)
    with pytest.raises(ConflictError, match="already `applied`"):
        workflow.reject(world.rt, caller=bob, request_id=row.id, reason="too late")


def test_a_rejected_request_cannot_be_approved(world, us_meeting):
    mid, _, _ = us_meeting
    alice, bob = world.operator("alice"), world.operator("bob")
    row = workflow.receive(
        world.rt, caller=alice, body=request(target={"kind": "meeting", "id": mid})
    )
    workflow.reject(world.rt, caller=alice, request_id=row.id, reason="no valid seal on the order")
    with pytest.raises(ConflictError, match="already `rejected`"):
        workflow.approve(world.rt, caller=bob, request_id=row.id)
    rejected = world.entries(row.id)[-1]
    assert rejected.action == "legal.rejected"
    assert rejected.details == {
        "by": f"operator:{alice.person_id}",
        "reason": "no valid seal on the order",
    }
    with world.rt.db.read() as session:
        assert session.scalars(select(LegalBlock)).all() == []


def test_a_block_refuses_cn_joiners_naming_the_request_while_others_join(world, us_meeting):
    mid, _, _ = us_meeting
    row = workflow.receive(
        world.rt,
        caller=world.operator("alice"),
        body=request(target={"kind": "meeting", "id": mid}),
    )
    workflow.approve(world.rt, caller=world.operator("bob"), request_id=row.id)
    refused = world.join(mid, "CN")
    assert not refused.placement.allowed
    assert refused.participation is None
    (reason,) = refused.placement.reasons
    assert reason.rule == "legal-block"
    assert reason.message == (
        f"this meeting is closed to participants in mainland China by lawful request `{row.id}`"
    )
    # recorded as the join's refusal, with the reason
    join = world.entries(mid, "meeting.join")[-1]
    assert join.details["decision"] == "deny"
    assert join.details["reasons"][0]["rule"] == "legal-block"
    for place in ("HK", "MO", "TW", "US"):
        assert world.join(mid, place).placement.allowed, place


def test_suspension_stops_hosting_and_sign_in(world):
    cn = world.account("CN", "Beijing Example Co.")
    with world.rt.db.write() as session:
        _, secret = create_token(
            session,
            role="user",
            name="cn",
            account_id=cn,
            at=world.rt.now(),
            actor=SYSTEM,
            digest=world.rt.digest,
        )
    cache = TokenCache()
    assert cache.get(world.rt, secret).account_id == cn  # cached from now on
    row = workflow.receive(
        world.rt,
        caller=world.operator("alice"),
        body=request(action="suspend_account", target={"kind": "account", "id": cn}),
    )
    workflow.approve(world.rt, caller=world.operator("bob"), request_id=row.id)
    with world.rt.db.read() as session:
        assert session.get(Account, cn).status == "suspended"
    assert world.entries(cn, "account.suspend")[0].details == {"request": row.id}
    cache.clear()  # what the approving process does
    with pytest.raises(ForbiddenError, match=f"account `{cn}` is suspended"):
        cache.get(world.rt, secret)
    with pytest.raises(ConflictError, match=f"account `{cn}` is `suspended`: it cannot host"):
        create_meeting(
            world.rt,
            caller=Caller("tok_setup", "operator"),
            host_account_id=cn,
            topic="t",
            countries=None,
            client_ip=None,
        )


def test_a_us_account_cannot_be_suspended_from_cn(world):
    us = world.account("US", "Example Inc.")
    row = workflow.receive(
        world.rt,
        caller=world.operator("alice"),
        body=request(action="suspend_account", target={"kind": "account", "id": us}),
    )
    assert row.state == "rejected"
    assert row.rejected_by == "system:meridian"
    assert row.reject_reason.startswith("nothing in scope: out of jurisdiction: account in US")
    assert legal_actions(world, row.id) == ["legal.received", "legal.scoped", "legal.rejected"]
    rejected = world.entries(row.id)[-1]
    assert (rejected.actor, rejected.details["by"]) == ("system:meridian", "system:meridian")
    with world.rt.db.read() as session:
        assert session.get(Account, us).status == "active"


def test_delayed_notice_waits_for_the_order_to_end(world, clock, us_meeting):
    mid, _, cn_user = us_meeting
    row = workflow.receive(
        world.rt,
        caller=world.operator("alice"),
        body=request(
            target={"kind": "participants", "id": mid},
            action="block_participants",
            notice_delay_until="2020-09-01T00:00:00+08:00",
        ),
    )
    workflow.approve(world.rt, caller=world.operator("bob"), request_id=row.id)
    applied = world.entries(row.id)[-1]
    assert applied.action == "legal.applied"
    assert (applied.details["notice"], applied.details["notice_delay_until"]) == (
        "delayed",
        "2020-08-31T16:00:00Z",
    )
    assert notices(world) == []
    assert workflow.notify_due(world.rt) == 0
    clock.set("2020-08-31T15:59:59Z")
    assert workflow.notify_due(world.rt) == 0
    assert notices(world) == []
    clock.set("2020-08-31T16:00:00Z")
    assert workflow.notify_due(world.rt) == 1
    assert workflow.notify_due(world.rt) == 0
    (notice,) = notices(world)
    assert (notice.account_id, notice.kind, notice.subject_id) == (cn_user, "legal.request", row.id)
    notified = world.entries(row.id)[-1]
    assert (notified.action, notified.details) == (
        "legal.notified",
        {"accounts": [cn_user], "delayed": True},
    )
    assert notified.at.isoformat() == "2020-08-31T16:00:00+00:00"


def test_the_scope_is_computed_again_at_approval(world, us_meeting):
    mid, _, _ = us_meeting
    row = workflow.receive(
        world.rt,
        caller=world.operator("alice"),
        body=request(target={"kind": "meeting", "id": mid}),
    )
    late = world.joined(mid, "CN")  # joined after the request was received
    approval = workflow.approve(world.rt, caller=world.operator("bob"), request_id=row.id)
    assert late in approval.remove
    assert late in approval.request.applied["participants"]
    assert late not in {e["id"] for e in row.scope["effects"]}


def test_nothing_left_in_scope_at_approval_rejects_the_request(world):
    cn_host = world.paid(world.account("CN", "CN host"))
    mid = world.meeting(cn_host)
    world.joined(mid, "CN")
    row = workflow.receive(
        world.rt,
        caller=world.operator("alice"),
        body=request(target={"kind": "meeting", "id": mid}),
    )
    assert row.scope["outcome"] == "full"
    from meridian.meetings.service import end_meeting

    end_meeting(world.rt, caller=None, meeting_id=mid, actor=SYSTEM)
    with pytest.raises(ConflictError, match="was rejected: at approval, nothing in scope"):
        workflow.approve(world.rt, caller=world.operator("bob"), request_id=row.id)
    assert legal_actions(world, row.id) == ["legal.received", "legal.scoped", "legal.rejected"]
    with world.rt.db.read() as session:
        assert workflow.get_request(session, row.id).state == "rejected"


def test_a_meeting_entirely_in_cn_is_ended_with_everyone_in_it(world):
    cn_host = world.paid(world.account("CN", "CN host"))
    mid = world.meeting(cn_host)
    first, second = world.joined(mid, "CN"), world.joined(mid, "CN")
    row = workflow.receive(
        world.rt,
        caller=world.operator("alice"),
        body=request(target={"kind": "meeting", "id": mid}),
    )
    approval = workflow.approve(world.rt, caller=world.operator("bob"), request_id=row.id)
    assert (approval.ended, approval.remove) == (True, ())
    applied = approval.request.applied
    assert (applied["outcome"], applied["meetings_ended"]) == ("applied", [mid])
    assert applied["participants"] == sorted([first, second])
    assert applied["accounts"] == [cn_host]
    with world.rt.db.read() as session:
        meeting = session.get(Meeting, mid)
        assert (meeting.status, meeting.ended_at.isoformat()) == (
            "ended",
            "2020-06-04T12:00:00+00:00",
        )
        assert all(p.left_at is not None for p in session.scalars(select(Participation)))
        assert session.scalars(select(LegalBlock)).all() == []
    assert world.entries(mid, "meeting.end")[0].details == {"request": row.id}


def test_a_disclosure_lists_the_records_of_people_inside_only(world, us_meeting):
    mid, ids, cn_user = us_meeting
    row = workflow.receive(
        world.rt,
        caller=world.operator("alice"),
        body=request(
            legal_type="warrant", action="disclose_content", target={"kind": "meeting", "id": mid}
        ),
    )
    approval = workflow.approve(world.rt, caller=world.operator("bob"), request_id=row.id)
    applied = approval.request.applied
    assert applied["disclosures"] == {"content": 0, "non_content": 2}
    assert [(d["kind"], d["id"]) for d in applied["disclosed"]] == [
        ("participation", p) for p in sorted([ids["cn"], ids["cn_guest"]])
    ]
    assert "ip" in applied["disclosed"][0]["fields"]
    assert applied["outcome"] == "narrowed"
    assert applied["accounts"] == [cn_user]
    assert approval.remove == ()
    with world.rt.db.read() as session:
        assert session.scalars(select(LegalBlock)).all() == []


def test_only_operators_and_only_known_targets(world):
    partner = Caller("tok_p", "partner", partner_id="bizconf")
    with pytest.raises(ForbiddenError, match="a `partner` token cannot handle lawful requests"):
        workflow.receive(
            world.rt, caller=partner, body=request(target={"kind": "meeting", "id": "mtg_x"})
        )
    alice = world.operator("alice")
    with pytest.raises(NotFoundError, match="no meeting `mtg_nope`"):
        workflow.receive(
            world.rt, caller=alice, body=request(target={"kind": "meeting", "id": "mtg_nope"})
        )
    with pytest.raises(InputError, match="action `suspend_account` cannot take a `meeting` target"):
        workflow.receive(
            world.rt,
            caller=alice,
            body=request(action="suspend_account", target={"kind": "meeting", "id": "m"}),
        )
    with pytest.raises(NotFoundError, match="no legal request `lr_nope`"):
        workflow.approve(world.rt, caller=alice, request_id="lr_nope")


class FakeLive:
    """The live meetings, as a plain object that remembers what it was told."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, ...]] = []

    async def remove(
        self, meeting_id: str, participant_ids: Collection[str], *, reason: str
    ) -> list[str]:
        self.calls.append(("remove", meeting_id, *sorted(participant_ids), reason))
        return sorted(participant_ids)[:1]

    async def end(self, meeting_id: str) -> None:
        self.calls.append(("end", meeting_id))


def test_disconnect_tells_the_live_meetings_or_no_one(world, us_meeting):
    mid, ids, _ = us_meeting
    row = workflow.receive(
        world.rt,
        caller=world.operator("alice"),
        body=request(target={"kind": "meeting", "id": mid}),
    )
    approval = workflow.approve(world.rt, caller=world.operator("bob"), request_id=row.id)
    assert asyncio.run(workflow.disconnect(None, approval)) == []
    live = FakeLive()
    removed = asyncio.run(workflow.disconnect(live, approval))
    assert removed == sorted([ids["cn"], ids["cn_guest"]])[:1]
    ((what, meeting_id, *rest),) = live.calls
    assert (what, meeting_id, rest[:-1]) == ("remove", mid, sorted([ids["cn"], ids["cn_guest"]]))
    assert rest[-1] == (
        f"removed by lawful request `{row.id}`: this meeting is closed to participants in mainland China"
    )


def test_lifting_a_block_lets_the_jurisdiction_join_again(world, us_meeting):
    mid, _, _ = us_meeting
    alice, bob = world.operator("alice"), world.operator("bob")
    row = workflow.receive(
        world.rt, caller=alice, body=request(target={"kind": "meeting", "id": mid})
    )
    workflow.approve(world.rt, caller=bob, request_id=row.id)
    assert not world.join(mid, "CN").placement.allowed
    workflow.lift(world.rt, caller=alice, request_id=row.id, reason="the order was withdrawn")
    assert world.join(mid, "CN").placement.allowed
    lifted = world.entries(row.id)[-1]
    assert lifted.action == "legal.lifted"
    assert lifted.details["reason"] == "the order was withdrawn"
    with world.rt.db.read() as session:
        (block,) = session.scalars(select(LegalBlock)).all()
        assert (block.active, lifted.details["blocks"]) == (False, [block.id])
        assert workflow.get_request(session, row.id).state == "applied"
    with pytest.raises(ConflictError, match="has no block standing"):
        workflow.lift(world.rt, caller=bob, request_id=row.id, reason="again")


def test_a_request_recorded_by_a_token_before_people_existed_is_still_its_persons(
    world, us_meeting
):
    mid, _, _ = us_meeting
    alice = world.operator("alice")
    row = workflow.receive(
        world.rt, caller=alice, body=request(target={"kind": "meeting", "id": mid})
    )
    with world.rt.db.write() as session:  # as a request recorded before migration 0005 reads
        session.get(LegalRequest, row.id).recorded_by = f"operator:{alice.token_id}"
    with pytest.raises(ForbiddenError, match="recorded by this operator, `alice`"):
        workflow.approve(world.rt, caller=world.operator("alice"), request_id=row.id)


def test_two_people_of_one_name_count_as_one_operator(world, us_meeting):
    """Only an upgrade makes two people of one name (from two old tokens): fail closed."""
    mid, _, _ = us_meeting
    alice = world.operator("Alice")
    row = workflow.receive(
        world.rt, caller=alice, body=request(target={"kind": "meeting", "id": mid})
    )
    with world.rt.db.write() as session:
        twin = Person(
            id="psn_twin", role="operator", name="ALICE", email=None, created_at=world.rt.now()
        )
        session.add(twin)
        session.flush()
        token, _ = create_token(
            session,
            role="operator",
            name="ALICE",
            person_id=twin.id,
            at=world.rt.now(),
            actor=SYSTEM,
            digest=world.rt.digest,
        )
    twin_caller = Caller(token.id, "operator", person_id="psn_twin")
    with pytest.raises(ForbiddenError, match="recorded by an operator of the same name, `ALICE`"):
        workflow.approve(world.rt, caller=twin_caller, request_id=row.id)


class FakeTokens:
    """What remembers tokens, as a plain object that counts how often it was told to forget."""

    def __init__(self) -> None:
        self.cleared = 0

    def clear(self) -> None:
        self.cleared += 1


def test_approve_and_apply_forgets_the_tokens_and_disconnects_the_participants(world, us_meeting):
    mid, ids, _ = us_meeting
    row = workflow.receive(
        world.rt,
        caller=world.operator("alice"),
        body=request(target={"kind": "meeting", "id": mid}),
    )
    tokens, live = FakeTokens(), FakeLive()
    applied = asyncio.run(
        workflow.approve_and_apply(
            world.rt, caller=world.operator("bob"), request_id=row.id, tokens=tokens, live=live
        )
    )
    assert applied.approval.request.state == "applied"
    assert tokens.cleared == 1
    cn = sorted([ids["cn"], ids["cn_guest"]])
    ((what, meeting_id, *rest),) = live.calls
    assert (what, meeting_id, rest[:-1]) == ("remove", mid, cn)
    assert applied.disconnected == tuple(cn[:1])  # what the live meetings say they closed
    # a refused approval applies nothing and forgets nothing
    with pytest.raises(ConflictError):
        asyncio.run(
            workflow.approve_and_apply(
                world.rt, caller=world.operator("carol"), request_id=row.id, tokens=tokens, live=live
            )
        )
    assert tokens.cleared == 1
    assert len(live.calls) == 1


def test_approve_and_apply_with_no_region_nodes_still_forgets_the_tokens(world):
    cn = world.account("CN", "Beijing user")
    with world.rt.db.write() as session:
        _, secret = create_token(
            session, role="user", name="cn", account_id=cn, at=world.rt.now(), actor=SYSTEM, digest=world.rt.digest
        )
    cache = TokenCache()
    assert cache.get(world.rt, secret).account_id == cn
    row = workflow.receive(
        world.rt,
        caller=world.operator("alice"),
        body=request(action="suspend_account", target={"kind": "account", "id": cn}),
    )
    applied = asyncio.run(
        workflow.approve_and_apply(world.rt, caller=world.operator("bob"), request_id=row.id, tokens=cache, live=None)
    )
    assert applied.disconnected == ()
    # the cached token is forgotten with the approval, not when the cache next expires
    with pytest.raises(ForbiddenError, match=f"account `{cn}` is suspended"):
        cache.get(world.rt, secret)
