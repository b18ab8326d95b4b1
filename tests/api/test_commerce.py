"""Checkout, renewal, the move to a partner and transition reports, over HTTP, replaying 2020."""

from __future__ import annotations

import pytest

pytestmark = pytest.mark.storage

VALID_USCC = "91110000600037341L"
OTHER_USCC = "91330100MA27XL0R42"
CUTOVER = "2020-08-23T00:00:00+08:00"


def sign_up(live, *, country="CN", org_id=VALID_USCC, who=None, name="Org"):
    body = {"type": "organization", "name": name, "country": country}
    if org_id and country == "CN":
        body["org_id"] = org_id
    r = live.client(who).post("/v1/accounts", json=body)
    assert r.status_code == 201, r.text
    return r.json()


def as_user(live, registration):
    live.tokens[registration["account"]["id"]] = registration["token"]
    return live.client(registration["account"]["id"])


def test_cn_direct_checkout_after_the_cutover_is_refused_with_partners_and_contacts(live):
    live.clock.set("2020-09-01T10:00:00+08:00")
    reg = sign_up(live)
    ops = live.client("operator")
    assert ops.patch("/v1/partners/bizconf", json={"contact": "sales@bizconf.example"}).status_code == 200
    r = as_user(live, reg).post(
        "/v1/checkout", json={"account": reg["account"]["id"], "plan": "pro", "channel": "direct"}
    )
    assert r.status_code == 403
    err = r.json()["error"]
    assert err["code"] == "denied"
    assert "direct sales in mainland China ended on 2020-08-23" in err["message"]
    partners = err["decision"]["alternatives"]["partners"]
    assert [p["id"] for p in partners] == ["bizconf", "suirui-zhumu", "systec-umeet"]
    assert partners[0]["contact"] == "sales@bizconf.example"
    assert ops.get("/v1/subscriptions").json()["count"] == 0


def test_the_same_purchase_through_bizconf_is_accepted(live):
    live.clock.set("2020-09-01T10:00:00+08:00")
    reg = sign_up(live, who="bizconf")
    r = live.client("bizconf").post(
        "/v1/checkout",
        json={"account": reg["account"]["id"], "plan": "pro", "channel": "partner", "partner": "bizconf"},
    )
    assert r.status_code == 201, r.text
    sub = r.json()["subscription"]
    assert (sub["channel"], sub["partner_id"], sub["status"]) == ("partner", "bizconf", "active")
    assert sub["period_end"].startswith("2020-10-01")
    assert r.json()["decision"]["reasons"][0]["rule"] == "sales-through-authorised-partner"
    assert sub["bundle_digest"] == live.runtime.digest


def test_us_direct_checkout_is_accepted_and_entitles_hosting(live):
    live.clock.set("2020-09-01T10:00:00-04:00")
    reg = sign_up(live, country="US")
    user = as_user(live, reg)
    r = user.post("/v1/checkout", json={"account": reg["account"]["id"], "plan": "business", "channel": "direct", "term": "year"})
    assert r.status_code == 201, r.text
    assert r.json()["subscription"]["period_end"].startswith("2021-09-01")
    ent = user.get(f"/v1/accounts/{reg['account']['id']}/entitlements").json()
    assert (ent["plan"], ent["may_host"], ent["max_participants"]) == ("business", True, 300)
    again = user.post("/v1/checkout", json={"account": reg["account"]["id"], "plan": "pro", "channel": "direct"})
    assert again.status_code == 409


def test_free_cn_account_loses_hosting_on_2020_05_20(live):
    live.clock.set("2020-05-19T12:00:00+08:00")
    reg = sign_up(live)
    user = as_user(live, reg)
    path = f"/v1/accounts/{reg['account']['id']}/entitlements"
    before = user.get(path).json()
    assert (before["plan"], before["may_host"], before["meeting_minutes"]) == ("free", True, 40)
    live.clock.set("2020-05-20T00:00:00+08:00")
    after = user.get(path).json()
    assert after["may_host"] is False
    assert after["host_decision"]["reasons"][0]["rule"] == "cn-free-users-join-only"


@pytest.mark.parametrize(
    ("body", "status", "code"),
    [
        ({"plan": "free", "channel": "direct"}, 422, "invalid"),
        ({"plan": "platinum", "channel": "direct"}, 422, "invalid"),
        ({"plan": "pro", "channel": "telepathy"}, 422, "invalid"),
        ({"plan": "pro", "channel": "partner", "partner": "bizconf"}, 403, "forbidden"),
        ({"plan": "pro", "channel": "direct", "term": "decade"}, 422, "invalid"),
    ],
    ids=["free-plan", "unknown-plan", "unknown-channel", "user-via-partner", "bad-term"],
)
def test_bad_checkouts_are_refused_without_a_trace_of_a_subscription(live, body, status, code):
    live.clock.set("2021-01-05T10:00:00-05:00")
    reg = sign_up(live, country="US")
    r = as_user(live, reg).post("/v1/checkout", json={"account": reg["account"]["id"], **body})
    assert r.status_code == status, r.text
    assert r.json()["error"]["code"] == code
    assert live.client("operator").get("/v1/subscriptions").json()["count"] == 0


def test_pending_review_account_cannot_buy(live):
    live.clock.set("2020-09-01T10:00:00+08:00")
    reg = sign_up(live, org_id="91350100M0001TGQXM", who="bizconf")
    assert reg["account"]["status"] == "pending_review"
    r = live.client("bizconf").post(
        "/v1/checkout",
        json={"account": reg["account"]["id"], "plan": "pro", "channel": "partner", "partner": "bizconf"},
    )
    assert r.status_code == 409


def test_partner_sells_only_through_its_own_channel(live):
    live.clock.set("2020-09-01T10:00:00+08:00")
    reg = sign_up(live, who="bizconf")
    account = reg["account"]["id"]
    bz = live.client("bizconf")
    direct = bz.post("/v1/checkout", json={"account": account, "plan": "pro", "channel": "direct"})
    assert direct.status_code == 403
    other = bz.post(
        "/v1/checkout",
        json={"account": account, "plan": "pro", "channel": "partner", "partner": "suirui-zhumu"},
    )
    assert other.status_code == 403


def _direct_cn_customer_before_cutover(live):
    """A CN organisation that bought a direct annual plan on 2020-07-15."""
    live.clock.set("2020-07-15T10:00:00+08:00")
    reg = sign_up(live, org_id=OTHER_USCC)
    user = as_user(live, reg)
    r = user.post(
        "/v1/checkout",
        json={"account": reg["account"]["id"], "plan": "business", "channel": "direct", "term": "year"},
    )
    assert r.status_code == 201, r.text
    return reg, user, r.json()["subscription"]


def test_transition_report_lists_the_direct_subscription_and_apply_is_idempotent(live):
    reg, user, sub = _direct_cn_customer_before_cutover(live)
    free = sign_up(live, name="Free Co")  # a free host: loses hosting on 05-20, not on 08-23
    ops = live.client("operator")
    live.clock.set("2020-08-01T10:00:00+08:00")
    report = ops.get("/v1/transitions", params={"jurisdiction": "CN", "at": "2020-08-23"}).json()
    assert report["at"] == "2020-08-23T00:00:00+08:00"
    assert report["counts"] == {"subscription_transfer": 1, "open_checkout": 0, "hosting_lost": 0}
    item = report["items"][0]
    assert (item["account"], item["subscription"], item["rules"]) == (
        reg["account"]["id"],
        sub["id"],
        ["cn-direct-sales-end"],
    )
    assert item["paid_until"].startswith("2021-07-15")
    assert report["applied"] is False
    may = ops.get("/v1/transitions", params={"jurisdiction": "CN", "at": "2020-05-20"}).json()
    # on 2020-05-20 neither had a paid plan yet (the direct one starts on 07-15): both lose hosting
    assert sorted(i["account"] for i in may["items"] if i["kind"] == "hosting_lost") == sorted(
        [reg["account"]["id"], free["account"]["id"]]
    )
    # nothing changed by the dry runs
    assert user.get(f"/v1/subscriptions/{sub['id']}").json()["status"] == "active"


def test_renewal_after_the_cutover_requires_transfer_and_keeps_paid_time_then_bizconf_takes_over(live):
    reg, user, sub = _direct_cn_customer_before_cutover(live)
    ops = live.client("operator")
    # the year is up on 2021-07-15: the renewal is judged then, after the cutover
    live.clock.set("2021-07-16T00:00:00Z")
    # its sign-up token expired after 90 days: a year on, the customer signs in with a new one
    assert user.get(f"/v1/subscriptions/{sub['id']}").status_code == 401
    live.token("cn customer, a year on", role="user", account_id=reg["account"]["id"])
    user = live.client("cn customer, a year on")
    summary = ops.post("/v1/renewals", json={}).json()
    assert summary["transfer_required"] == 1
    moved = user.get(f"/v1/subscriptions/{sub['id']}").json()
    assert moved["status"] == "transfer_required"
    assert moved["period_end"] == sub["period_end"]  # paid time never cut short
    notices = user.get(f"/v1/accounts/{reg['account']['id']}/notices").json()["data"]
    assert "choose one of" in notices[0]["message"]
    # bizconf cannot see it until the customer chooses bizconf
    bz = live.client("bizconf")
    assert bz.get(f"/v1/subscriptions/{sub['id']}").status_code == 404
    assert bz.post(f"/v1/subscriptions/{sub['id']}/takeover").status_code == 404
    assert user.post(f"/v1/subscriptions/{sub['id']}/partner", json={"partner": "nobody"}).status_code == 404
    chose = user.post(f"/v1/subscriptions/{sub['id']}/partner", json={"partner": "bizconf"})
    assert chose.status_code == 200, chose.text
    # the other partner still sees nothing
    assert live.client("suirui").post(f"/v1/subscriptions/{sub['id']}/takeover").status_code == 404
    taken = bz.post(f"/v1/subscriptions/{sub['id']}/takeover")
    assert taken.status_code == 201, taken.text
    new = taken.json()["subscription"]
    assert (new["channel"], new["partner_id"], new["replaces_id"]) == ("partner", "bizconf", sub["id"])
    assert user.get(f"/v1/subscriptions/{sub['id']}").json()["status"] == "transferred"
    assert bz.get(f"/v1/accounts/{reg['account']['id']}").status_code == 200  # now its customer
    twice = bz.post(f"/v1/subscriptions/{sub['id']}/takeover")
    assert twice.status_code == 409


def test_takeover_before_the_paid_period_ends_keeps_the_remaining_time(live):
    reg, user, sub = _direct_cn_customer_before_cutover(live)
    ops = live.client("operator")
    live.clock.set("2020-08-01T10:00:00+08:00")
    applied = ops.get("/v1/transitions", params={"jurisdiction": "CN", "at": "2020-08-23"})
    assert applied.status_code == 200
    from meridian.audit import Actor
    from meridian.clock import parse_instant
    from meridian.commerce.transition import plan_transition

    report = plan_transition(
        live.runtime, jurisdiction="CN", at=parse_instant(CUTOVER), apply=True, actor=Actor("test", "t")
    )
    assert report["items"][0]["applied"] is True
    again = plan_transition(
        live.runtime, jurisdiction="CN", at=parse_instant(CUTOVER), apply=True, actor=Actor("test", "t")
    )
    assert again["items"][0]["applied"] is True  # reported, not redone
    notices = user.get(f"/v1/accounts/{reg['account']['id']}/notices").json()
    assert notices["count"] == 1
    live.clock.set("2020-09-10T10:00:00+08:00")
    assert user.post(f"/v1/subscriptions/{sub['id']}/partner", json={"partner": "systec-umeet"}).status_code == 200
    live.token("umeet", role="partner", partner_id="systec-umeet")
    taken = live.client("umeet").post(f"/v1/subscriptions/{sub['id']}/takeover")
    assert taken.status_code == 201, taken.text
    new = taken.json()["subscription"]
    assert new["period_end"] == sub["period_end"]
    assert new["period_start"].startswith("2020-09-10")


def test_renewal_of_an_allowed_subscription_extends_it_judged_when_due(live):
    live.clock.set("2020-01-31T10:00:00Z")
    reg = sign_up(live, country="US")
    user = as_user(live, reg)
    sub = user.post("/v1/checkout", json={"account": reg["account"]["id"], "plan": "pro", "channel": "online"}).json()["subscription"]
    assert sub["period_end"].startswith("2020-02-29")  # 31 January + a month, clamped
    live.clock.set("2020-04-01T00:00:00Z")
    summary = live.client("operator").post("/v1/renewals", json={}).json()
    assert summary["renewed"] == 2
    renewed = user.get(f"/v1/subscriptions/{sub['id']}").json()
    assert renewed["period_start"].startswith("2020-03-29")
    assert renewed["period_end"].startswith("2020-04-29")
    records = live.client("operator").get("/v1/records", params={"action": "subscription.renew"}).json()["data"]
    assert [r["at"][:10] for r in records] == ["2020-02-29", "2020-03-29"]
    assert all(r["decision"]["decision"] == "allow" for r in records)


def test_an_open_checkout_starting_after_the_cutover_is_listed_and_starts_when_due(live):
    live.clock.set("2020-08-01T10:00:00+08:00")
    reg = sign_up(live, org_id=OTHER_USCC)
    user = as_user(live, reg)
    r = user.post(
        "/v1/checkout",
        json={
            "account": reg["account"]["id"],
            "plan": "pro",
            "channel": "direct",
            "starts_at": "2020-09-01T00:00:00+08:00",
        },
    )
    assert r.status_code == 201, r.text
    sub = r.json()["subscription"]
    assert sub["status"] == "pending"
    ops = live.client("operator")
    report = ops.get("/v1/transitions", params={"jurisdiction": "CN", "at": "2020-08-23"}).json()
    assert report["counts"]["open_checkout"] == 1
    assert report["items"][0]["subscription"] == sub["id"]
    past = user.post(
        "/v1/checkout",
        json={"account": reg["account"]["id"], "plan": "pro", "channel": "direct", "starts_at": "2020-07-01T00:00:00Z"},
    )
    assert past.status_code == 422
    live.clock.set("2020-09-01T00:00:01+08:00")
    assert ops.post("/v1/renewals", json={}).json()["started"] == 1
    assert user.get(f"/v1/subscriptions/{sub['id']}").json()["status"] == "active"
