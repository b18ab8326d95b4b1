"""The two-person change of the bundle in force, over HTTP on both databases: who may approve,
what approval checks, activation at an instant on the service's clock, once across replicas,
and rollback."""

from __future__ import annotations

import threading

import pytest
from sqlalchemy import func, select
from tests.support import eventually

from meridian.changes.workflow import activate_due
from meridian.identity.people import find_operator
from meridian.storage.models import PolicyBundle, Record

from .test_replay import moved

pytestmark = pytest.mark.storage


def propose(live, text=None, who="operator", **fields):
    r = live.client(who).post(
        "/v1/policy/changes", json={"yaml": text or moved(), "days": 1, **fields}
    )
    assert r.status_code == 201, r.text
    return r.json()


def approve(live, change, who="operator2", diff=None):
    return live.client(who).post(
        f"/v1/policy/changes/{change['id']}/approve", json={"diff": diff or change["diff_digest"]}
    )


def in_force(live):
    return live.client("operator").get("/v1/policy").json()["digest"]


def stored_in_force(live):
    """The bundle in force as the database holds it (a replica's engine follows at its poll)."""
    with live.runtime.db.read() as session:
        return session.scalars(select(PolicyBundle.digest).where(PolicyBundle.active)).one()


def records(live, action):
    with live.runtime.db.read() as session:
        return list(
            session.scalars(select(Record).where(Record.action == action).order_by(Record.seq))
        )


def test_a_proposal_changes_nothing_and_carries_its_diff(live):
    before = in_force(live)
    change = propose(live)
    assert change["state"] == "proposed"
    assert change["base_digest"] == before
    assert in_force(live) == before
    # the exact diff: purchases and renewals through `direct` in CN, for the moved week
    classes = change["diff"]["classes"]
    assert classes
    assert {c["action"] for c in classes} == {"purchase", "renew"}
    assert {c["window"]["from_local"] for c in classes} == {"2020-08-23T00:00:00+08:00"}
    assert {c["window"]["until_local"] for c in classes} == {"2020-08-30T00:00:00+08:00"}
    assert change["diff_digest"] == change["diff"]["digest"]
    # the built-in invariant it breaks is said before anyone approves it, with a counterexample
    (broken,) = change["broken_invariants"]
    assert broken["id"] == "cn-no-direct-purchase-after-cutover"
    assert broken["holds"] is False
    assert broken["counterexample"]["resource"]["channel"] == "direct"
    (entry,) = records(live, "policy.proposed")
    assert entry.details["diff"] == change["diff_digest"]
    assert entry.subject_id == change["id"]


def test_the_proposer_cannot_approve_through_any_token_nor_can_a_partner_or_a_user(live):
    change = propose(live)
    # the proposer, through the token they proposed with and through a second one of theirs
    with live.runtime.db.read() as session:
        person = find_operator(session, "operator")
        assert person is not None
        person_id = person.id
    live.token("operator-laptop", role="operator", person_id=person_id)
    for who in ("operator", "operator-laptop"):
        r = approve(live, change, who=who)
        assert r.status_code == 403, r.text
        assert "a second operator must approve it" in r.json()["error"]["message"]
    refused = records(live, "policy.approval_refused")
    assert len(refused) == 2
    assert {r.actor for r in refused} == {f"operator:{person_id}"}
    assert {r.details["diff"] for r in refused} == {change["diff_digest"]}
    # a partner and a user are not operators at all
    reg = (
        live.client("operator")
        .post("/v1/accounts", json={"type": "organization", "name": "US Co", "country": "US"})
        .json()
    )
    live.token("user", role="user", account_id=reg["account"]["id"])
    for who in ("bizconf", "user"):
        assert approve(live, change, who=who).status_code == 403
    assert (
        live.client("operator").get(f"/v1/policy/changes/{change['id']}").json()["state"]
        == "proposed"
    )
    # a second person can
    r = approve(live, change)
    assert r.status_code == 200, r.text
    assert r.json()["state"] == "active"
    assert in_force(live) == change["bundle"]["digest"]
    for action in ("policy.approved", "policy.activated"):
        (entry,) = records(live, action)
        assert entry.details["diff"] == change["diff_digest"]


def test_approval_names_the_diff_read_and_the_base_still_in_force(live):
    first = propose(live, moved(7))
    second = propose(live, moved(3))
    wrong = approve(live, first, diff="sha256:" + "0" * 64)
    assert wrong.status_code == 409
    assert "read its diff again" in wrong.json()["error"]["message"]
    assert approve(live, first).status_code == 200
    # the second was proposed against the bundle the first replaced: its diff is stale
    stale = approve(live, second)
    assert stale.status_code == 409, stale.text
    assert "the bundle in force changed since" in stale.json()["error"]["message"]
    assert in_force(live) == first["bundle"]["digest"]


def test_an_instant_in_the_past_is_refused_at_proposal_and_at_approval(live):
    live.clock.set("2026-01-15T09:00:00Z")
    r = live.client("operator").post(
        "/v1/policy/changes", json={"yaml": moved(), "activate_at": "2026-01-14T00:00:00Z"}
    )
    assert r.status_code == 422
    assert "before now" in r.json()["error"]["message"]
    change = propose(live, activate_at="2026-01-16T00:00:00Z")
    live.clock.set("2026-01-17T00:00:00Z")
    late = approve(live, change)
    assert late.status_code == 409
    assert "which has passed" in late.json()["error"]["message"]


def test_bad_bundle_text_is_a_one_line_422_and_put_only_proposes(live):
    before = in_force(live)
    for method, path in (("post", "/v1/policy/changes"), ("put", "/v1/policy")):
        r = getattr(live.client("operator"), method)(path, json={"yaml": "bundle: x\nrules: [\n"})
        assert r.status_code == 422, r.text
        assert "\n" not in r.json()["error"]["message"]
    put = live.client("operator").put("/v1/policy", json={"yaml": moved()})
    assert put.status_code == 202
    assert put.json()["state"] == "proposed"
    assert in_force(live) == before
    assert live.client("bizconf").put("/v1/policy", json={"yaml": moved()}).status_code == 403
    doc = live.client().get("/openapi.json").json()["paths"]["/v1/policy"]["put"]
    assert "Propose a bundle" in doc["summary"] + doc.get("description", "")


def test_a_scheduled_change_comes_into_force_at_its_instant_on_the_service_clock(live_factory):
    live = live_factory(policy_poll_interval=0.05)
    live.clock.set("2020-08-16T00:00:00Z")
    before = in_force(live)
    change = propose(live, activate_at="2020-08-20T00:00:00+08:00")
    r = approve(live, change)
    assert r.status_code == 200, r.text
    assert r.json()["state"] == "approved"
    # one poll later, nothing: its instant has not come on the service's clock
    live.clock.set("2020-08-19T15:59:59Z")
    assert activate_due(live.runtime) == []
    assert in_force(live) == before
    live.clock.set("2020-08-19T16:00:00Z")
    eventually(
        lambda: live.runtime.digest == change["bundle"]["digest"], what="the change in force"
    )
    state = live.client("operator").get(f"/v1/policy/changes/{change['id']}").json()
    assert state["state"] == "active"
    assert state["activated_by"] == "system:meridian"
    assert state["activated_at"].startswith("2020-08-19T16:00:00")
    (entry,) = records(live, "policy.activated")
    assert entry.details["diff"] == change["diff_digest"]


def test_two_replicas_activating_at_once_record_it_once(live_factory):
    first, second = live_factory(), live_factory()
    first.clock.set("2020-08-16T00:00:00Z")
    change = propose(first, activate_at="2020-08-17T00:00:00Z")
    assert approve(first, change).status_code == 200
    first.clock.set("2020-08-17T00:00:00Z")
    barrier = threading.Barrier(4)
    done: list[list[str]] = []

    def run(rt):
        barrier.wait(timeout=30)
        done.append(activate_due(rt))

    threads = [
        threading.Thread(target=run, args=(s.runtime,)) for s in (first, second, first, second)
    ]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    assert sorted(len(d) for d in done) == [0, 0, 0, 1]
    assert len(records(first, "policy.activated")) == 1
    with first.runtime.db.read() as session:
        loads = session.scalar(
            select(func.count()).select_from(Record).where(Record.action == "policy.load")
        )
        active = session.scalars(select(PolicyBundle.digest).where(PolicyBundle.active)).all()
    assert loads == 2  # the built-in bundle, then this change
    assert active == [change["bundle"]["digest"]]
    # activating it again by hand: it is in force already
    again = first.client("operator").post(f"/v1/policy/changes/{change['id']}/activate")
    assert again.status_code == 409


def test_rollback_puts_back_the_previous_bundle_and_is_recorded(live):
    before = in_force(live)
    change = propose(live)
    assert approve(live, change).status_code == 200
    ops = live.client("operator")
    assert (
        ops.post(f"/v1/policy/changes/{change['id']}/rollback", json={"reason": ""}).status_code
        == 422
    )
    r = ops.post(f"/v1/policy/changes/{change['id']}/rollback", json={"reason": "wrong week"})
    assert r.status_code == 200, r.text
    assert r.json()["state"] == "rolled_back"
    assert in_force(live) == before
    (entry,) = records(live, "policy.rolled_back")
    assert entry.details["diff"] == change["diff_digest"]
    assert entry.details["restored"] == before
    assert (
        ops.post(
            f"/v1/policy/changes/{change['id']}/rollback", json={"reason": "again"}
        ).status_code
        == 409
    )


def test_activation_racing_a_rollback_leaves_one_consistent_outcome(live_factory):
    first, second = live_factory(), live_factory()
    first.clock.set("2020-08-16T00:00:00Z")
    base = in_force(first)
    one = propose(first, moved(7))
    assert approve(first, one).status_code == 200
    two = propose(first, moved(3), activate_at="2020-08-17T00:00:00Z")
    assert approve(first, two).status_code == 200
    first.clock.set("2020-08-17T00:00:00Z")
    barrier = threading.Barrier(2)
    results: dict[str, object] = {}

    def roll():
        barrier.wait(timeout=30)
        results["rollback"] = (
            second.client("operator")
            .post(f"/v1/policy/changes/{one['id']}/rollback", json={"reason": "race"})
            .status_code
        )

    def due():
        barrier.wait(timeout=30)
        results["due"] = activate_due(first.runtime)

    threads = [threading.Thread(target=roll), threading.Thread(target=due)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    states = {
        c["id"]: c["state"]
        for c in first.client("operator").get("/v1/policy/changes").json()["data"]
    }
    if results["rollback"] == 200:
        # rolled back first: the scheduled change's base is gone, so it is refused, recorded
        assert results["due"] == []
        assert states == {one["id"]: "rolled_back", two["id"]: "refused"}
        assert stored_in_force(first) == base
        assert len(records(first, "policy.activation_refused")) == 1
    else:
        # activated first: the rollback names a change no longer in force
        assert results["rollback"] == 409
        assert results["due"] == [two["id"]]
        assert states == {one["id"]: "superseded", two["id"]: "active"}
        assert stored_in_force(first) == two["bundle"]["digest"]


def test_a_refused_change_cannot_be_approved(live):
    change = propose(live)
    r = live.client("operator2").post(
        f"/v1/policy/changes/{change['id']}/refuse", json={"reason": "no"}
    )
    assert r.status_code == 200
    assert r.json()["state"] == "refused"
    assert approve(live, change).status_code == 409
    (entry,) = records(live, "policy.refused")
    assert entry.details["diff"] == change["diff_digest"]
    assert live.client("operator").get("/v1/policy/changes/chg_nope").status_code == 404
