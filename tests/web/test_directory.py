"""The console's directory, in the browser: accounts, subscriptions, partners and reviews — each
list checked against what the API lists for the same operator, each write against the API's view."""

from __future__ import annotations

import re
from typing import Any

from playwright.sync_api import expect

from .conftest import check_a11y, shot

VALID_USCC = "91110000600037341L"
PILOT_USCC = "91350100M0001TGQXM"  # fails the check, issued in a pilot region: manual review


def _register(api: Any, **fields: str) -> dict[str, Any]:
    response = api.post("/v1/accounts", json=fields)
    assert response.status_code == 201, response.text
    account: dict[str, Any] = response.json()["account"]
    return account


def _ids(page: Any, table: str) -> list[str]:
    return [c.strip() for c in page.locator(f"{table} tbody tr td:first-child code").all_inner_texts()]


def test_accounts_are_listed_filtered_and_paged_as_the_api_lists_them(
    live: Any, browse: Any
) -> None:
    api = live.client("operator")
    live.clock.set("2020-06-15T10:00:00+08:00")
    _register(api, type="organization", name="Hangzhou Lakeside Design Co.", country="CN", org_id=VALID_USCC)
    _register(api, type="organization", name="Fuzhou Minjiang Trading", country="CN", org_id=PILOT_USCC)
    _register(api, type="individual", name="Jonas Becker", country="DE")
    for n in range(50):
        _register(api, type="individual", name=f"Customer {n:02}", country="US")

    page = browse(live, "operator", path="/console/accounts")
    listed = api.get("/v1/accounts", params={"limit": 50}).json()
    assert _ids(page, "#accounts") == [a["id"] for a in listed["data"]]
    expect(page.locator(".pager")).to_contain_text(f"1–50 of {listed['count']}")
    check_a11y(page)
    shot(page, "console-accounts")
    page.get_by_role("link", name="Next page").click()
    page.wait_for_url(re.compile(r"page=2"))
    second = api.get("/v1/accounts", params={"limit": 50, "offset": 50}).json()
    assert _ids(page, "#accounts") == [a["id"] for a in second["data"]]
    assert len(second["data"]) == 3

    page.goto("/console/accounts")
    page.get_by_label("Country").fill("cn")
    page.get_by_label("Status").select_option("pending_review")
    page.get_by_role("button", name="Filter").click()
    page.wait_for_url(re.compile(r"country=cn&status=pending_review"))
    pending = api.get("/v1/accounts", params={"country": "CN", "status": "pending_review"}).json()
    assert _ids(page, "#accounts") == [a["id"] for a in pending["data"]]
    expect(page.locator("#accounts")).to_contain_text("Fuzhou Minjiang Trading")

    response = page.goto("/console/accounts?country=China")
    assert response.status == 422
    assert "invalid country `China`" in page.get_by_role("alert").inner_text()


def test_an_account_shows_its_subscriptions_entitlements_and_notices(
    live: Any, browse: Any
) -> None:
    api = live.client("operator")
    live.clock.set("2020-08-01T10:00:00+08:00")
    org = _register(
        api, type="organization", name="Hangzhou Lakeside Design Co.", country="CN", org_id=VALID_USCC
    )
    sub = api.post(
        "/v1/checkout", json={"account": org["id"], "plan": "business", "channel": "direct"}
    ).json()["subscription"]
    # a month later the direct channel is gone: the renewal is refused, the subscription waits for
    # a partner to take it over, and the customer is told
    live.clock.set("2020-09-02T10:00:00+08:00")
    assert api.post("/v1/renewals", json={}).json()["transfer_required"] == 1

    page = browse(live, "operator", path=f"/console/accounts/{org['id']}")
    expect(page.get_by_role("heading", level=1)).to_have_text("Hangzhou Lakeside Design Co.")
    assert page.locator("#account-status").inner_text() == "active"
    row = page.locator("#account-subscriptions tbody tr")
    expect(row).to_contain_text(sub["id"])
    expect(row).to_contain_text("transfer_required")
    entitlements = api.get(f"/v1/accounts/{org['id']}/entitlements").json()
    may_host = page.locator("#entitlements dd").nth(1)
    expect(may_host).to_have_text("yes" if entitlements["may_host"] else "no")
    notices = api.get(f"/v1/accounts/{org['id']}/notices").json()["data"]
    assert len(notices) == 1
    expect(page.locator("#notices tbody")).to_contain_text(notices[0]["message"])
    check_a11y(page)
    shot(page, "console-account")

    page.get_by_role("link", name="Subscriptions", exact=True).click()
    page.get_by_label("Status").select_option("transfer_required")
    page.get_by_role("button", name="Filter").click()
    page.wait_for_url(re.compile(r"status=transfer_required"))
    listed = api.get("/v1/subscriptions", params={"status": "transfer_required"}).json()["data"]
    assert _ids(page, "#subscriptions") == [s["id"] for s in listed] == [sub["id"]]
    check_a11y(page)
    shot(page, "console-subscriptions")

    # an account that does not exist is the API's 404
    response = page.goto("/console/accounts/acct_0000000000000000")
    assert response.status == 404
    assert api.get("/v1/accounts/acct_0000000000000000").status_code == 404
    assert "no account `acct_0000000000000000`" in page.get_by_role("alert").inner_text()


def test_partners_are_listed_and_their_contact_is_set_as_the_api_sets_it(
    live: Any, browse: Any
) -> None:
    api = live.client("operator")
    page = browse(live, "operator", path="/console/partners")
    listed = api.get("/v1/partners").json()["data"]
    rows = page.locator("#partners tbody tr")
    assert rows.count() == len(listed) == 3
    for partner in listed:
        expect(page.locator("#partners")).to_contain_text(partner["name"])
    check_a11y(page)
    shot(page, "console-partners")

    page.get_by_role("link", name="Bizconf Communications").click()
    expect(page.get_by_role("heading", level=1)).to_have_text("Bizconf Communications")
    page.get_by_label("Contact").fill("https://bizconf.example/meridian")
    page.get_by_role("button", name="Save the contact").click()
    page.wait_for_url(re.compile(r"/console/partners/bizconf\?saved=1$"))
    assert page.locator("#partner-contact").inner_text() == "https://bizconf.example/meridian"
    assert api.get("/v1/partners/bizconf").json()["contact"] == "https://bizconf.example/meridian"
    check_a11y(page)
    # a contact the API would refuse is refused here too, with the reason at the form (the
    # input's maxlength stops a person typing it; the server checks whatever arrives)
    page.get_by_label("Contact").evaluate("e => e.removeAttribute('maxlength')")
    page.get_by_label("Contact").fill("x" * 301)
    page.get_by_role("button", name="Save the contact").click()
    assert "at most 300" in page.get_by_role("alert").inner_text()
    assert api.get("/v1/partners/bizconf").json()["contact"] == "https://bizconf.example/meridian"


def test_a_pending_account_approved_on_the_reviews_page_becomes_active(
    live: Any, browse: Any
) -> None:
    api = live.client("operator")
    live.clock.set("2020-06-12T10:00:00+08:00")
    fuzhou = _register(
        api, type="organization", name="Fuzhou Minjiang Trading", country="CN", org_id=PILOT_USCC
    )
    assert fuzhou["status"] == "pending_review"

    page = browse(live, "operator", path="/console/reviews")
    card = page.get_by_role("region", name="Fuzhou Minjiang Trading")
    expect(card).to_contain_text(PILOT_USCC)
    expect(card).to_contain_text("pilot")
    check_a11y(page)
    shot(page, "console-reviews")
    card.get_by_label("Note for the record").fill("licence checked against the Fuzhou register")
    card.get_by_role("button", name="Approve").click()
    page.wait_for_url(re.compile(r"verdict=active"))
    expect(page.get_by_role("status")).to_contain_text(f"{fuzhou['id']} is now active")
    expect(page.locator("#no-reviews")).to_be_visible()

    assert api.get(f"/v1/accounts/{fuzhou['id']}").json()["status"] == "active"
    review = api.get("/v1/records", params={"action": "account.review", "subject": fuzhou["id"]}).json()
    assert review["data"][-1]["details"] == {
        "approved": True,
        "note": "licence checked against the Fuzhou register",
        "status": "active",
    }


def test_a_review_someone_else_already_gave_is_refused_with_the_reason(
    live: Any, browse: Any
) -> None:
    api = live.client("operator")
    live.clock.set("2020-06-12T10:00:00+08:00")
    fuzhou = _register(
        api, type="organization", name="Fuzhou Minjiang Trading", country="CN", org_id=PILOT_USCC
    )
    page = browse(live, "operator", path="/console/reviews")
    # a second operator rejects it through the API while this page is open
    rejected = live.client("operator2").post(
        f"/v1/accounts/{fuzhou['id']}/review", json={"approve": False}
    )
    assert rejected.json()["status"] == "rejected"
    card = page.get_by_role("region", name="Fuzhou Minjiang Trading")
    card.get_by_label("Note for the record").fill("looks fine")
    with page.expect_response(re.compile(r"/console/reviews/")) as response:
        card.get_by_role("button", name="Approve").click()
    assert response.value.status == 409
    alert = page.get_by_role("alert").inner_text()
    assert alert == f"account `{fuzhou['id']}` is `rejected`, not waiting for review"
    assert api.get(f"/v1/accounts/{fuzhou['id']}").json()["status"] == "rejected"


def test_a_pending_account_can_be_rejected_from_its_own_page(live: Any, browse: Any) -> None:
    api = live.client("operator")
    live.clock.set("2020-06-12T10:00:00+08:00")
    fuzhou = _register(
        api, type="organization", name="Fuzhou Minjiang Trading", country="CN", org_id=PILOT_USCC
    )
    page = browse(live, "operator", path=f"/console/accounts/{fuzhou['id']}")
    page.get_by_role("button", name="Reject").click()
    page.wait_for_url(re.compile(r"reviewed=rejected$"))
    assert page.locator("#account-status").inner_text() == "rejected"
    assert api.get(f"/v1/accounts/{fuzhou['id']}").json()["status"] == "rejected"


def test_a_partner_cannot_open_the_directory(live: Any, browse: Any) -> None:
    page = browse(live, "bizconf")
    for path in ("/console/accounts", "/console/subscriptions", "/console/partners", "/console/reviews"):
        assert page.goto(path).status == 403
