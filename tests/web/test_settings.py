"""Meeting settings: the account's data-centre regions, in a real browser, checked against the API."""

from __future__ import annotations

from typing import Any

from playwright.sync_api import expect
from tests.web.conftest import check_a11y, shot


def account(live: Any, *, country: str = "US", plan: str | None = "pro") -> str:
    """An account (``plan=None``: left on the free plan) with a user token named by its id."""
    ops = live.client("operator")
    body = {"type": "organization", "name": f"{country} host", "country": country}
    created = ops.post("/v1/accounts", json=body).json()["account"]
    if plan is not None:
        checkout = {"account": created["id"], "plan": plan, "channel": "direct"}
        assert ops.post("/v1/checkout", json=checkout).status_code == 201
    live.token(created["id"], role="user", account_id=created["id"])
    return str(created["id"])


def regions(live: Any, account_id: str) -> dict[str, Any]:
    r = live.client(account_id).get(f"/v1/accounts/{account_id}/regions")
    assert r.status_code == 200, r.text
    setting: dict[str, Any] = r.json()
    return setting


def test_the_home_region_is_locked_in_the_form_and_kept_by_the_server(live, browse):
    acct = account(live)
    page = browse(live, acct, path="/account/settings")
    home = page.get_by_label("United States (US)")
    expect(home).to_be_checked()
    expect(home).to_be_disabled()
    expect(page.locator("#note-US")).to_contain_text("It cannot be removed")
    expect(home).to_have_attribute("aria-describedby", "note-US")
    # the default set: everything but CN, which waits for an explicit opt-in
    expect(page.get_by_label("Germany (DE)")).to_be_checked()
    expect(page.get_by_label("Mainland China (CN)", exact=True)).not_to_be_checked()
    expect(page.locator("#note-CN")).to_contain_text("processed in mainland China")
    check_a11y(page)
    shot(page, "account-settings")

    # a forged form (the box re-enabled and cleared, DE dropped) cannot remove the home region
    page.evaluate("document.getElementById('region-US').disabled = false")
    home.uncheck()
    page.get_by_label("Germany (DE)").uncheck()
    page.get_by_role("button", name="Save regions").click()
    page.wait_for_url("**/account/settings?saved=true")
    expect(page.get_by_role("status")).to_contain_text("Saved")
    expect(page.get_by_label("United States (US)")).to_be_checked()
    expect(page.get_by_label("Germany (DE)")).not_to_be_checked()
    setting = regions(live, acct)
    assert "US" in setting["chosen"]
    assert "DE" not in setting["chosen"]
    assert setting["home_region"] == "US"
    # the API agrees: a set without the home region is saved with it
    r = live.client(acct).put(f"/v1/accounts/{acct}/regions", json={"regions": ["DE"]})
    assert r.status_code == 200, r.text
    assert r.json()["regions"] == ["DE", "US"]


def test_an_opt_in_is_required_for_cn_and_saving_it_records_it(live, browse):
    acct = account(live)
    page = browse(live, acct, path="/account/settings")
    # CN without the opt-in: the service's refusal, with the boxes as they were ticked
    page.get_by_label("Mainland China (CN)", exact=True).check()
    page.get_by_role("button", name="Save regions").click()
    expect(page.get_by_role("alert")).to_have_text(
        "region `CN` needs an explicit opt-in for a host in `US`: add `CN` to `opt_in`"
    )
    expect(page.get_by_label("Mainland China (CN)", exact=True)).to_be_checked()
    assert regions(live, acct)["chosen"] is None
    api = live.client(acct).put(f"/v1/accounts/{acct}/regions", json={"regions": ["US", "CN"]})
    assert api.status_code == 422
    assert api.json()["error"]["message"] == page.get_by_role("alert").inner_text()

    page.get_by_label("I opt in to Mainland China (CN) for my meetings").check()
    page.get_by_role("button", name="Save regions").click()
    page.wait_for_url("**/account/settings?saved=true")
    expect(page.locator("#in-effect")).to_contain_text("CN")
    expect(page.get_by_label("I opt in to Mainland China (CN) for my meetings")).to_be_checked()
    setting = regions(live, acct)
    assert setting["opt_in"] == ["CN"]
    assert {"CN", "US"} <= set(setting["regions"])
    records = live.client("operator").get(
        "/v1/records", params={"action": "account.regions", "subject": acct}
    )
    (entry,) = records.json()["data"]
    assert entry["details"]["opted_in_now"] == ["CN"]
    assert entry["actor"].startswith("user:")

    # back to the default set: CN and its opt-in are gone again
    page.get_by_role("button", name="Return to the default set").click()
    page.wait_for_url("**/account/settings?saved=true")
    expect(page.get_by_label("Mainland China (CN)", exact=True)).not_to_be_checked()
    setting = regions(live, acct)
    assert (setting["chosen"], setting["opt_in"]) == (None, [])
    assert "CN" not in setting["regions"]


def test_a_free_account_is_told_it_cannot_choose_regions(live, browse):
    acct = account(live, plan=None)
    page = browse(live, acct, path="/account/settings")
    expect(page.locator("main")).to_contain_text("Your account is on a free plan")
    page.get_by_label("Germany (DE)").uncheck()
    page.get_by_role("button", name="Save regions").click()
    alert = page.get_by_role("alert")
    expect(alert).to_contain_text("is on a free plan: its meetings use the default regions")
    api = live.client(acct).put(f"/v1/accounts/{acct}/regions", json={"regions": ["US"]})
    assert api.status_code == 403
    assert api.json()["error"]["message"] == alert.inner_text()
    check_a11y(page)
