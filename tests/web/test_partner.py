"""The partner portal in the browser: taking over a subscription, and seeing only its own customers."""

from __future__ import annotations

import re
from typing import Any

from playwright.sync_api import expect

from .conftest import check_a11y, shot

USCC = "91330100MA27XL0R42"
OTHER_USCC = "91110000600037341L"
THIRD_USCC = "91440300MA5G2YJ775"
PILOT_USCC = "91350100M0001TGQXM"


def direct_cn_customer(live: Any) -> tuple[str, dict[str, Any]]:
    """A CN organisation that bought a month of Business directly on 2020-08-01 (token ``cn``)."""
    live.clock.set("2020-08-01T10:00:00+08:00")
    r = live.client().post(
        "/v1/accounts",
        json={"type": "organization", "name": "Hangzhou Lakeside Design Co.", "country": "CN", "org_id": USCC},
    )
    assert r.status_code == 201, r.text
    account = r.json()["account"]["id"]
    live.tokens["cn"] = r.json()["token"]
    r = live.client("cn").post(
        "/v1/checkout", json={"account": account, "plan": "business", "channel": "direct"}
    )
    assert r.status_code == 201, r.text
    return account, r.json()["subscription"]


def test_bizconf_takes_over_a_transfer_required_subscription_keeping_the_paid_time(
    live: Any, browse: Any
) -> None:
    account, sub = direct_cn_customer(live)
    assert sub["period_end"].startswith("2020-09-01")
    # after the cutover, the renewal due on 2020-09-01 is judged at that instant: direct sales
    # have ended, so the subscription must move to a partner
    live.clock.set("2020-08-24T10:00:00+08:00")
    run = live.client("operator").post("/v1/renewals", json={"at": sub["period_end"]})
    assert run.json()["transfer_required"] == 1, run.text
    # bizconf cannot see it before the customer chooses it
    bizconf = browse(live, "bizconf", path="/partner/transfers")
    expect(bizconf.get_by_role("button", name="Take over")).to_have_count(0)

    # the customer chooses bizconf on its account page
    customer = browse(live, "cn", path="/account")
    expect(customer.locator(f"#sub-{sub['id']}")).to_contain_text("must move to a partner")
    customer.get_by_label("Partner to take it over").select_option("bizconf")
    customer.get_by_role("button", name="Choose this partner").click()
    expect(customer.locator(f"#sub-{sub['id']}")).to_contain_text(
        "You chose Bizconf Communications"
    )
    check_a11y(customer)
    shot(customer, "account-transfer")

    # bizconf's transfers page now offers it, and taking it over keeps the paid time
    bizconf.reload()
    row = bizconf.get_by_role("row", name=re.compile(sub["id"]))
    expect(row).to_contain_text(account)
    check_a11y(bizconf)
    shot(bizconf, "partner-transfers")
    row.get_by_role("button", name="Take over").click()
    bizconf.wait_for_url(re.compile(r"/partner/transfers\?taken=sub_"))
    new_id = bizconf.url.rsplit("=", 1)[1]
    result = bizconf.locator(".result")
    expect(result).to_contain_text(f"Subscription {new_id} is active under your channel")
    expect(result).to_contain_text(f"replacing {sub['id']}")
    expect(result).to_contain_text("paid until 2020-09-01")
    expect(bizconf.get_by_role("button", name="Take over")).to_have_count(0)
    check_a11y(bizconf)
    shot(bizconf, "partner-takeover")

    # the API agrees: the new subscription is bizconf's, to the same end; the old one moved
    bz = live.client("bizconf")
    new = bz.get(f"/v1/subscriptions/{new_id}").json()
    assert (new["status"], new["channel"], new["partner_id"], new["replaces_id"]) == (
        "active",
        "partner",
        "bizconf",
        sub["id"],
    )
    assert new["period_end"] == sub["period_end"]
    assert live.client("cn").get(f"/v1/subscriptions/{sub['id']}").json()["status"] == "transferred"
    assert bz.get(f"/v1/accounts/{account}").status_code == 200
    # and the customer is now on bizconf's list, its page showing both subscriptions
    bizconf.goto("/partner")
    bizconf.get_by_role("link", name="Hangzhou Lakeside Design Co.").click()
    bizconf.wait_for_url(re.compile(rf"/partner/customers/{account}$"))
    expect(bizconf.locator("#subscriptions + table")).to_contain_text(new_id)
    expect(bizconf.locator("#subscriptions + table")).to_contain_text("transferred")
    check_a11y(bizconf)
    bizconf.goto("/partner/subscriptions")
    expect(bizconf.get_by_role("row", name=re.compile(new_id))).to_contain_text("active")
    check_a11y(bizconf)


def test_a_partner_sees_only_its_own_customers_and_another_partners_is_not_found(
    live: Any, browse: Any
) -> None:
    live.clock.set("2020-09-01T10:00:00+08:00")
    # suirui's customer, made through the API
    r = live.client("suirui").post(
        "/v1/accounts",
        json={"type": "organization", "name": "Suirui Customer Co.", "country": "CN", "org_id": OTHER_USCC},
    )
    assert r.status_code == 201, r.text
    suirui_customer = r.json()["account"]["id"]

    # bizconf creates its customer in the portal and sells it a plan through its own channel
    bizconf = browse(live, "bizconf", path="/partner/customers/new")
    check_a11y(bizconf)
    bizconf.get_by_label("Name", exact=True).fill("Shenzhen Harbour Robotics Ltd.")
    bizconf.get_by_label("Organisation registration number").fill(USCC)
    bizconf.get_by_role("button", name="Create customer").click()
    bizconf.wait_for_url(re.compile(r"/partner/customers/acct_"))
    bizconf_customer = bizconf.url.rsplit("/", 1)[1]
    bizconf.get_by_label("Plan", exact=True).select_option("business")
    bizconf.get_by_role("button", name="Sell").click()
    expect(bizconf.get_by_role("status")).to_contain_text("Sold: subscription")
    check_a11y(bizconf)
    shot(bizconf, "partner-customer")
    # two more of bizconf's customers, through the API: one waits for review (a pilot-era code)
    bz = live.client("bizconf")
    for name, code in (("Fuzhou Minjiang Trading", PILOT_USCC), ("Wuhan Riverside Clinic", THIRD_USCC)):
        made = bz.post(
            "/v1/accounts",
            json={"type": "organization", "name": name, "country": "CN", "org_id": code},
        )
        assert made.status_code == 201, made.text

    # bizconf's list holds its customer and not suirui's
    bizconf.goto("/partner")
    table = bizconf.get_by_role("table")
    expect(table).to_contain_text("Shenzhen Harbour Robotics Ltd.")
    expect(table).not_to_contain_text("Suirui Customer Co.")
    assert suirui_customer not in table.inner_text()
    check_a11y(bizconf)
    shot(bizconf, "partner-customers")
    bizconf.get_by_label("Status").select_option("pending_review")
    bizconf.get_by_role("button", name="Filter").click()
    bizconf.wait_for_url(re.compile(r"status=pending_review"))
    rows = bizconf.get_by_role("table").get_by_role("row")
    expect(rows).to_have_count(2)  # the header and the one waiting for review
    expect(rows.nth(1)).to_contain_text("Fuzhou Minjiang Trading")
    check_a11y(bizconf)
    listed = bz.get("/v1/accounts").json()
    assert listed["count"] == 3
    assert suirui_customer not in [a["id"] for a in listed["data"]]
    waiting = bz.get("/v1/accounts", params={"status": "pending_review"}).json()["data"]
    assert [a["name"] for a in waiting] == ["Fuzhou Minjiang Trading"]

    # suirui opening bizconf's customer by URL gets a 404 page, as the API answers it
    suirui = browse(live, "suirui")
    response = suirui.goto(f"/partner/customers/{bizconf_customer}")
    assert response.status == 404
    expect(suirui.get_by_role("alert")).to_have_text(f"no account `{bizconf_customer}`")
    assert "Shenzhen" not in suirui.content()
    check_a11y(suirui)
    api = live.client("suirui").get(f"/v1/accounts/{bizconf_customer}")
    assert api.status_code == 404
    assert api.json()["error"]["message"] == f"no account `{bizconf_customer}`"
    # and its own customer opens
    assert suirui.goto(f"/partner/customers/{suirui_customer}").status == 200


def test_a_partner_cannot_create_a_customer_outside_its_jurisdictions(live: Any) -> None:
    import httpx

    live.clock.set("2020-09-01T10:00:00+08:00")
    with httpx.Client(base_url=live.url, follow_redirects=False) as c:
        c.post("/login", data={"token": live.tokens["bizconf"]})
        page = c.get("/partner/customers/new")
        csrf = re.search(r'name="csrf" value="([^"]+)"', page.text).group(1)
        r = c.post(
            "/partner/customers/new",
            data={"csrf": csrf, "type": "organization", "name": "Acme", "country": "US"},
        )
        assert r.status_code == 403
        assert "can create customers only in its own jurisdictions" in r.text
        assert 'value="Acme"' in r.text  # what was typed is kept
    api = live.client("bizconf").post(
        "/v1/accounts", json={"type": "organization", "name": "Acme", "country": "US"}
    )
    assert api.status_code == 403
