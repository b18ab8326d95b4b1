"""Checkout in the browser: mainland China before and after the 2020-08-23 cutover."""

from __future__ import annotations

import re
from typing import Any

from playwright.sync_api import expect

from .conftest import check_a11y, shot

USCC = "91110000600037341L"
CONTACTS = {
    "bizconf": "sales@bizconf.example",
    "suirui-zhumu": "https://zhumu.example/meridian",
    "systec-umeet": "umeet@systec.example",
}


def cn_customer(live: Any, name: str = "Beijing Harbour Tech Ltd.") -> str:
    """A mainland China organisation signed up through the API; its token is ``live.tokens["cn"]``."""
    r = live.client().post(
        "/v1/accounts",
        json={"type": "organization", "name": name, "country": "CN", "org_id": USCC},
    )
    assert r.status_code == 201, r.text
    live.tokens["cn"] = r.json()["token"]
    return str(r.json()["account"]["id"])


def partner_names(live: Any) -> list[str]:
    """The partners the bundle in force authorises in CN, by name."""
    doc = live.runtime.engine.bundle.document
    return [p.name for p in doc.partners.values() if "CN" in p.jurisdictions]


def test_after_the_cutover_checkout_offers_the_three_authorised_partners_instead(
    live: Any, browse: Any
) -> None:
    ops = live.client("operator")
    for pid, contact in CONTACTS.items():
        assert ops.patch(f"/v1/partners/{pid}", json={"contact": contact}).status_code == 200
    live.clock.set("2020-08-24T10:00:00+08:00")
    account = cn_customer(live)
    page = browse(live, "cn", path="/account/checkout")
    offer = page.locator(".partners-offer")
    expect(offer.get_by_role("heading")).to_have_text("Buy through an authorised partner")
    names = partner_names(live)
    assert len(names) == 3
    for name, contact in zip(names, CONTACTS.values(), strict=True):
        expect(offer).to_contain_text(name)
        expect(offer).to_contain_text(contact)
    # no purchase is offered, and each closed channel says why
    expect(page.get_by_role("button", name="Buy")).to_have_count(0)
    channels = page.locator(".channels").inner_text()
    assert "direct sales in mainland China ended on 2020-08-23" in channels
    assert "online subscriptions in mainland China ended around 2020-06-01" in channels
    check_a11y(page)
    shot(page, "checkout-partners")
    # the API refuses the same purchase with the same partners
    r = live.client("cn").post(
        "/v1/checkout", json={"account": account, "plan": "pro", "channel": "direct"}
    )
    assert r.status_code == 403
    offered = r.json()["error"]["decision"]["alternatives"]["partners"]
    assert [p["name"] for p in offered] == names


def test_a_purchase_refused_at_submit_shows_the_refusal_and_the_partners(
    live: Any, browse: Any
) -> None:
    # the page is opened a minute before the cutover, with direct sales still open...
    live.clock.set("2020-08-22T23:59:00+08:00")
    account = cn_customer(live)
    page = browse(live, "cn", path="/account/checkout")
    page.get_by_label("Plan", exact=True).select_option("business")
    page.get_by_label("Direct sales").check()
    # ...and submitted after it: the server's refusal is what counts, and the page shows it
    live.clock.set("2020-08-23T00:00:00+08:00")
    page.get_by_role("button", name="Buy").click()
    page.wait_for_load_state()
    expect(page.get_by_role("alert")).to_have_text(
        "direct sales in mainland China ended on 2020-08-23; buy through an authorised partner"
    )
    decision = page.locator(".decision")
    assert "cn-direct-sales-end" in decision.inner_text()
    for name in partner_names(live):
        expect(decision).to_contain_text(name)
    check_a11y(page)
    assert live.client("cn").get("/v1/subscriptions", params={"account": account}).json()[
        "count"
    ] == 0


def test_before_the_cutover_a_direct_purchase_goes_through(live: Any, browse: Any) -> None:
    live.clock.set("2020-08-01T10:00:00+08:00")
    account = cn_customer(live)
    page = browse(live, "cn", path="/account/checkout")
    # online subscriptions ended around 2020-06-01, direct sales are still open
    expect(page.locator(".channel-open")).to_contain_text("Direct sales")
    expect(page.locator(".channel-closed")).to_contain_text("Online subscription")
    check_a11y(page)
    page.get_by_label("Plan", exact=True).select_option("business")
    page.get_by_label("Direct sales").check()
    page.get_by_label("One year").check()
    page.get_by_role("button", name="Buy").click()
    page.wait_for_url(re.compile(r"/account/checkout/sub_"))
    sub_id = page.url.rsplit("/", 1)[1]
    expect(page.get_by_role("status")).to_contain_text("active")
    check_a11y(page)
    got = live.client("cn").get(f"/v1/subscriptions/{sub_id}").json()
    assert (got["account_id"], got["plan"], got["channel"], got["status"]) == (
        account,
        "business",
        "direct",
        "active",
    )
    assert got["period_end"].startswith("2021-08-01")
    # the account page now shows the plan, and warns that it cannot renew directly
    page.goto("/account")
    expect(page.locator(".stats")).to_contain_text("Business")
    attention = page.locator("section", has=page.get_by_role("heading", name="Needs your attention"))
    expect(attention).to_contain_text("direct sales in mainland China ended on 2020-08-23")
    expect(attention).to_contain_text("Bizconf Communications")
    check_a11y(page)
    # a second purchase is not offered while this one runs
    page.goto("/account/checkout")
    expect(page.get_by_role("status")).to_contain_text("one subscription at a time")
