"""Lawful requests over HTTP: intake and its 422s, operators only, two people, what applying does."""

from __future__ import annotations

import pytest
from tests.support import eventually

from meridian.identity.tokens import Caller
from meridian.meetings.placement import Occupancy
from meridian.meetings.regions import region_table
from meridian.meetings.service import admit

pytestmark = pytest.mark.storage

VALID_USCC = "91110000600037341L"
CN_IP, HK_IP, US_IP = "114.114.114.114", "203.198.7.66", "8.8.8.8"
DOC = {"name": "order.pdf", "sha256": "0f" * 32, "size": 1024}


def body(**fields):
    return {
        "authority": "Beijing Municipal Public Security Bureau",
        "jurisdiction": "CN",
        "legal_type": "court_order",
        "reference": "(2020) Jing 01 No. 604",
        "target": {"kind": "meeting", "id": "mtg_x"},
        "action": "end_meeting",
        "documents": [DOC],
        **fields,
    }


def account(live, country, name):
    fields = {"type": "organization", "name": name, "country": country}
    if country == "CN":
        fields["org_id"] = VALID_USCC
    r = live.client("operator").post("/v1/accounts", json=fields)
    assert r.status_code == 201, r.text
    return r.json()["account"]["id"]


def join(live, meeting_id, ip, account_id=None):
    caller = None if account_id is None else Caller("tok_u", "user", account_id=account_id)
    admission = admit(
        live.runtime,
        meeting_id=meeting_id,
        name="p",
        caller=caller,
        client_ip=ip,
        occupancy=Occupancy(region_table(live.runtime.engine.bundle)),
        uses={},
    )
    return admission.participation.id if admission.participation else None


@pytest.fixture
def june(live):
    """A US-hosted meeting with participants in mainland China, Hong Kong and the US."""
    live.clock.set("2020-06-04T12:00:00Z")
    host = account(live, "US", "US host")
    r = live.client("operator").post("/v1/meetings", json={"host": host, "topic": "June 4th"})
    assert r.status_code == 201, r.text
    mid = r.json()["meeting"]["id"]
    cn_user = account(live, "CN", "Beijing participant")
    ids = {
        "cn": join(live, mid, CN_IP, cn_user),
        "hk": join(live, mid, HK_IP),
        "us": join(live, mid, US_IP),
    }
    return mid, ids, cn_user


def test_a_request_is_recorded_scoped_approved_by_a_second_operator_and_applied(live, june):
    mid, ids, cn_user = june
    ops, ops2 = live.client("operator"), live.client("operator2")
    r = ops.post("/v1/legal-requests", json=body(target={"kind": "meeting", "id": mid}))
    assert r.status_code == 201, r.text
    created = r.json()
    rid = created["id"]
    assert rid.startswith("lr_")
    assert created["state"] == "pending"
    assert created["recorded_by"]["name"] == "operator"
    assert created["recorded_by"]["actor"].startswith("operator:psn_")
    assert created["scope"]["outcome"] == "narrowed"
    meeting, *participants = created["scope"]["effects"]
    assert (meeting["kind"], meeting["country"], meeting["effect"]) == ("meeting", "US", "none")
    assert {e["id"]: (e["country"], e["in_scope"], e["effect"]) for e in participants} == {
        ids["cn"]: ("CN", True, "block"),
        ids["hk"]: ("HK", False, "none"),
        ids["us"]: ("US", False, "none"),
    }
    assert created["documents"] == [DOC]
    assert created["applied"] is None
    assert created["approved_by"] is None
    assert created["received_at"] == "2020-06-04T12:00:00Z"

    r = ops.post(f"/v1/legal-requests/{rid}/approve")
    assert r.status_code == 403
    recorder = created["recorded_by"]["actor"].removeprefix("operator:")
    assert r.json()["error"]["message"] == (
        f"legal request `{rid}` was recorded by this operator, `operator` (`{recorder}`): "
        "a second operator must approve it"
    )
    r = ops2.post(f"/v1/legal-requests/{rid}/approve")
    assert r.status_code == 200, r.text
    approved = r.json()
    assert approved["disconnected"] == []  # nobody is connected to this test server's nodes
    view = approved["request"]
    assert view["state"] == "applied"
    assert view["approved_by"]["name"] == "operator2"
    assert view["applied"]["outcome"] == "narrowed"
    assert view["applied"]["participants"] == [ids["cn"]]
    assert view["applied"]["accounts"] == [cn_user]
    assert view["applied"]["notice"] == "sent"
    assert view["applied"]["not_notifiable"] == []
    assert view["applied"]["not_notifiable_why"] is None
    assert [(b["meeting"], b["jurisdiction"], b["active"]) for b in view["blocks"]] == [
        (mid, "CN", True)
    ]
    assert ops.get(f"/v1/legal-requests/{rid}").json() == view
    listing = ops.get("/v1/legal-requests", params={"state": "applied"}).json()
    assert (listing["count"], listing["data"][0]["id"]) == (1, rid)
    assert ops.get("/v1/legal-requests", params={"state": "pending"}).json()["count"] == 0
    r = ops2.post(f"/v1/legal-requests/{rid}/approve")
    assert r.status_code == 409
    assert r.json()["error"]["message"] == (
        f"legal request `{rid}` is already `applied`: it cannot be approved"
    )
    notices = live.client("operator").get(f"/v1/accounts/{cn_user}/notices").json()
    assert [n["subject_id"] for n in notices["data"]] == [rid]


def test_another_token_of_the_same_person_is_the_same_operator(live, june):
    mid, _, _ = june
    live.token("OPERATOR", role="operator")  # the person named `operator`, another token
    rid = (
        live.client("operator")
        .post("/v1/legal-requests", json=body(target={"kind": "meeting", "id": mid}))
        .json()["id"]
    )
    r = live.client("OPERATOR").post(f"/v1/legal-requests/{rid}/approve")
    assert r.status_code == 403
    assert "was recorded by this operator, `operator`" in r.json()["error"]["message"]


def test_suspension_stops_sign_in_at_once_and_hosting(live):
    live.clock.set("2020-06-04T12:00:00Z")
    cn = account(live, "CN", "Beijing Example Co.")
    live.token("cn-user", role="user", account_id=cn)
    user = live.client("cn-user")
    assert user.get(f"/v1/accounts/{cn}").status_code == 200  # the token is cached now
    rid = (
        live.client("operator")
        .post(
            "/v1/legal-requests",
            json=body(action="suspend_account", target={"kind": "account", "id": cn}),
        )
        .json()["id"]
    )
    r = live.client("operator2").post(f"/v1/legal-requests/{rid}/approve")
    assert r.status_code == 200, r.text
    assert r.json()["request"]["applied"]["accounts"] == [cn]
    r = user.get(f"/v1/accounts/{cn}")
    assert r.status_code == 403
    assert r.json()["error"]["message"] == f"account `{cn}` is suspended"
    r = live.client("operator").post("/v1/meetings", json={"host": cn})
    assert r.status_code == 409
    assert r.json()["error"]["message"] == f"account `{cn}` is `suspended`: it cannot host"


def test_reject_with_a_reason_and_nothing_in_scope_is_rejected_at_once(live, june):
    mid, _, _ = june
    ops = live.client("operator")
    us = account(live, "US", "Example Inc.")
    r = ops.post(
        "/v1/legal-requests",
        json=body(action="suspend_account", target={"kind": "account", "id": us}),
    )
    assert r.status_code == 201
    assert (r.json()["state"], r.json()["rejected_by"]) == ("rejected", "system:meridian")
    assert r.json()["reason"].startswith("nothing in scope: out of jurisdiction: account in US")
    rid = ops.post("/v1/legal-requests", json=body(target={"kind": "meeting", "id": mid})).json()[
        "id"
    ]
    r = ops.post(f"/v1/legal-requests/{rid}/reject", json={})
    assert r.status_code == 422
    r = ops.post(f"/v1/legal-requests/{rid}/reject", json={"reason": "the order is not sealed"})
    assert r.status_code == 200, r.text
    assert (r.json()["state"], r.json()["reason"]) == ("rejected", "the order is not sealed")
    assert live.client("operator2").post(f"/v1/legal-requests/{rid}/approve").status_code == 409


@pytest.mark.parametrize("who", ["bizconf", "user", None])
def test_operators_only(live, june, who):
    mid, _, cn_user = june
    if who == "user":
        live.token("user", role="user", account_id=cn_user)
    c = live.client(who)
    expected = 401 if who is None else 403
    assert (
        c.post("/v1/legal-requests", json=body(target={"kind": "meeting", "id": mid})).status_code
        == expected
    )
    assert c.get("/v1/legal-requests").status_code == expected
    assert c.get("/v1/legal-requests/lr_x").status_code == expected
    assert c.post("/v1/legal-requests/lr_x/approve").status_code == expected
    assert c.post("/v1/legal-requests/lr_x/reject", json={"reason": "r"}).status_code == expected


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (
            {"legal_type": "letter"},
            "unknown legal type `letter`: expected one of subpoena, warrant",
        ),
        ({"jurisdiction": "XX"}, "unknown jurisdiction `XX`: expected an ISO 3166-1 alpha-2 code"),
        ({"jurisdiction": "CN-HK"}, "unknown jurisdiction `CN-HK`"),
        ({"action": "wiretap"}, "unknown action `wiretap`: expected one of suspend_account"),
        ({"target": {"kind": "group", "id": "g"}}, "unknown target kind `group`"),
        ({"target": {"kind": "meeting", "id": "a b"}}, "`a b` is not an id"),
        ({"documents": [{**DOC, "sha256": "xyz"}]}, "`xyz` is not a sha-256 digest"),
        (
            {"documents": [{**DOC, "size": 1.5}]},
            "`body.documents.0.size`: input should be a valid integer",
        ),
        (
            {"documents": [{**DOC, "size": -1}]},
            "`body.documents.0.size`: input should be greater than or equal to 0",
        ),
        (
            {"notice_delay_until": "2020-09-01T00:00:00"},
            "`body.notice_delay_until`: input should have timezone info",
        ),
        ({"warrant_id": "x"}, "`body.warrant_id`: extra inputs are not permitted"),
        ({"authority": ""}, "`body.authority`: string should have at least 1 character"),
        ({"reference": "a\nb"}, "control character U+000A is not allowed"),
        (
            {"action": "suspend_account"},
            "action `suspend_account` cannot take a `meeting` target: expected `account`",
        ),
    ],
    ids=[
        "legal-type",
        "jurisdiction",
        "subdivision",
        "action",
        "target-kind",
        "target-id",
        "sha256",
        "size-float",
        "size-negative",
        "naive-instant",
        "extra-field",
        "empty-authority",
        "control-char",
        "action-target",
    ],
)
def test_bad_input_is_a_one_line_422(live, change, message):
    r = live.client("operator").post("/v1/legal-requests", json=body(**change))
    assert r.status_code == 422, r.text
    error = r.json()["error"]
    assert error["code"] == "invalid"
    assert message in error["message"]
    assert "\n" not in error["message"]
    assert error["message"] == error["message"][:1].lower() + error["message"][1:]


def test_an_unknown_target_is_404_and_a_retry_is_replayed(live, june):
    mid, _, _ = june
    ops = live.client("operator")
    r = ops.post(
        "/v1/legal-requests",
        json=body(target={"kind": "account", "id": "acct_nope"}, action="disclose_non_content"),
    )
    assert r.status_code == 404
    assert r.json()["error"]["message"] == "no account `acct_nope`"
    assert ops.get("/v1/legal-requests/lr_nope").status_code == 404
    keyed = live.client("operator", **{"Idempotency-Key": "order-604"})
    first = keyed.post("/v1/legal-requests", json=body(target={"kind": "meeting", "id": mid}))
    again = keyed.post("/v1/legal-requests", json=body(target={"kind": "meeting", "id": mid}))
    assert first.status_code == again.status_code == 201
    assert again.headers["idempotent-replayed"] == "true"
    assert again.json()["id"] == first.json()["id"]
    assert ops.get("/v1/legal-requests").json()["count"] == 1


def test_a_delayed_notice_goes_out_on_the_services_own_schedule(live_factory, clock):
    live = live_factory(renew_interval=0.2)
    clock.set("2020-06-04T12:00:00Z")
    ops, ops2 = live.client("operator"), live.client("operator2")

    def suspend(account_id: str, until: str) -> str:
        request = body(
            action="suspend_account",
            target={"kind": "account", "id": account_id},
            notice_delay_until=until,
        )
        rid = ops.post("/v1/legal-requests", json=request).json()["id"]
        view = ops2.post(f"/v1/legal-requests/{rid}/approve").json()["request"]
        assert (view["applied"]["notice"], view["notified_at"]) == ("delayed", None)
        return rid

    early, late = account(live, "CN", "Beijing Example Co."), account(live, "CN", "Shanghai Co.")
    early_rid = suspend(early, "2020-06-10T00:00:00Z")
    late_rid = suspend(late, "2020-07-01T00:00:00Z")

    def notified(rid: str) -> str | None:
        return ops.get(f"/v1/legal-requests/{rid}").json()["notified_at"]

    def sent(account_id: str) -> list[str]:
        notices = ops.get(f"/v1/accounts/{account_id}/notices").json()["data"]
        return [n["subject_id"] for n in notices]

    # the job runs on its own: the order that has ended is noticed at the clock's time ...
    clock.set("2020-06-15T00:00:00Z")
    eventually(lambda: notified(early_rid), what="the June order's notice sent")
    assert notified(early_rid) == "2020-06-15T00:00:00Z"
    assert sent(early) == [early_rid]
    # ... and in the same pass it left the order that has not ended alone
    assert (notified(late_rid), sent(late)) == (None, [])
    clock.set("2020-07-01T00:00:00Z")
    eventually(lambda: notified(late_rid), what="the July order's notice sent")
    assert notified(late_rid) == "2020-07-01T00:00:00Z"
    assert sent(late) == [late_rid]
    assert sent(early) == [early_rid]  # sent once


def test_lift_over_http(live, june):
    mid, _, _ = june
    rid = (
        live.client("operator")
        .post("/v1/legal-requests", json=body(target={"kind": "meeting", "id": mid}))
        .json()["id"]
    )
    assert live.client("operator2").post(f"/v1/legal-requests/{rid}/approve").status_code == 200
    r = live.client("operator").post(f"/v1/legal-requests/{rid}/lift", json={"reason": "withdrawn"})
    assert r.status_code == 200, r.text
    assert [b["active"] for b in r.json()["blocks"]] == [False]
    r = live.client("operator").post(f"/v1/legal-requests/{rid}/lift", json={"reason": "again"})
    assert r.status_code == 409
    assert (
        live.client("bizconf")
        .post(f"/v1/legal-requests/{rid}/lift", json={"reason": "x"})
        .status_code
        == 403
    )
