"""Sign-up in the browser: refused with the reason and what to do instead, or signed in with a token."""

from __future__ import annotations

import re
from typing import Any

import pytest
from playwright.sync_api import expect

from .conftest import check_a11y, shot

CN_IP = "114.114.114.114"
USCC = "91330100MA27XL0R42"
PILOT_USCC = "91350100M0001TGQXM"


@pytest.fixture
def live(live_factory: Any) -> Any:
    """The app trusting loopback as a proxy, so the browser's ``X-Forwarded-For`` places it."""
    return live_factory(trusted_proxies=("127.0.0.1/32",))


def fill_sign_up(page: Any, *, kind: str, name: str, country: str, org_id: str = "") -> None:
    label = "An organisation" if kind == "organization" else "An individual"
    page.get_by_label(label).check()
    page.get_by_label("Name", exact=True).fill(name)
    page.get_by_label("Country or territory").select_option(country)
    if org_id:
        page.get_by_label("Organisation registration number").fill(org_id)
    page.get_by_role("button", name="Sign up").click()
    page.wait_for_load_state()


def test_a_cn_individual_after_2020_05_01_is_refused_and_told_what_to_do(
    live: Any, browse: Any
) -> None:
    live.clock.set("2020-05-02T10:00:00+08:00")
    page = browse(live, forwarded_for=CN_IP, path="/signup")
    check_a11y(page)
    fill_sign_up(page, kind="individual", name="Li Wei", country="CN")
    # why: the rule that refused, in the person's words
    expect(page.get_by_role("alert")).to_contain_text(
        "since 2020-05-01 only organisations may sign up in mainland China"
    )
    assert page.get_by_role("heading", name="Sign-up refused").is_visible()
    assert "cn-register-organisations-only" in page.locator(".decision").inner_text()
    # what to do: derived from the refusing rule (it tests the applicant's type) and from what the
    # bundle still allows here (joining; the partners authorised in CN)
    advice = page.locator(".advice").inner_text()
    assert "Sign-ups in mainland China are for organisations" in advice
    assert "with its Unified Social Credit Code" in advice
    assert "join meetings you are invited to as a participant, without an account" in advice
    assert "Bizconf Communications" in advice
    # what was typed is kept
    assert page.get_by_label("Name", exact=True).input_value() == "Li Wei"
    check_a11y(page)
    shot(page, "signup-refused")
    # the API agrees, for the same evidence, and nothing was created
    r = live.client(None, **{"x-forwarded-for": CN_IP}).post(
        "/v1/accounts", json={"type": "individual", "name": "Li Wei", "country": "CN"}
    )
    assert r.status_code == 403
    assert r.json()["error"]["decision"]["reasons"][0]["rule"] == "cn-register-organisations-only"
    assert live.client("operator").get("/v1/accounts").json()["count"] == 0


def test_a_cn_organisation_with_a_valid_uscc_signs_up_and_sees_its_account_and_token(
    live: Any, browse: Any
) -> None:
    live.clock.set("2020-05-02T10:00:00+08:00")
    page = browse(live, forwarded_for=CN_IP, path="/signup")
    fill_sign_up(
        page, kind="organization", name="Hangzhou Lakeside Design Co.", country="CN", org_id=USCC
    )
    page.wait_for_url(re.compile(r"/account$"))
    assert page.get_by_role("heading", name="Hangzhou Lakeside Design Co.").is_visible()
    token = page.get_by_role("textbox", name="API token").input_value()
    assert token.startswith("mrd_")
    account_id = re.search(r"acct_[A-Za-z0-9_-]+", page.locator("main").inner_text()).group(0)
    # a free mainland China account may not host after 2020-05-20; on 05-02 it still may
    assert page.locator(".stats").inner_text().count("active") == 1
    check_a11y(page)
    shot(page, "signup-ok")
    # the API agrees, to the operator and to the new token
    got = live.client("operator").get(f"/v1/accounts/{account_id}")
    assert got.status_code == 200
    body = got.json()
    assert (body["type"], body["country"], body["org_id"], body["status"]) == (
        "organization",
        "CN",
        USCC,
        "active",
    )
    live.tokens["new"] = token
    assert live.client("new").get(f"/v1/accounts/{account_id}").status_code == 200
    # the token is shown once
    page.reload()
    assert page.get_by_role("textbox", name="API token").count() == 0
    assert page.get_by_role("heading", name="Hangzhou Lakeside Design Co.").is_visible()


def test_a_pilot_era_code_signs_up_into_review_and_the_page_explains_it(
    live: Any, browse: Any
) -> None:
    live.clock.set("2020-06-12T10:00:00+08:00")
    page = browse(live, forwarded_for=CN_IP, path="/signup")
    fill_sign_up(
        page, kind="organization", name="Fuzhou Minjiang Trading", country="CN", org_id=PILOT_USCC
    )
    page.wait_for_url(re.compile(r"/account$"))
    status = page.get_by_role("status").first
    expect(status).to_contain_text("Your account waits for review")
    expect(status).to_contain_text("early pilot region")
    accounts = live.client("operator").get("/v1/accounts").json()["data"]
    assert [(a["name"], a["status"]) for a in accounts] == [
        ("Fuzhou Minjiang Trading", "pending_review")
    ]


def test_an_invalid_code_is_refused_with_what_to_fix(live: Any, browse: Any) -> None:
    live.clock.set("2020-06-12T10:00:00+08:00")
    page = browse(live, forwarded_for=CN_IP, path="/signup")
    bad = USCC[:-1] + ("1" if USCC[-1] != "1" else "2")
    fill_sign_up(page, kind="organization", name="Typo Ltd.", country="CN", org_id=bad)
    expect(page.get_by_role("alert")).to_contain_text("is not a valid Unified Social Credit Code")
    assert "Give the organisation's Unified Social Credit Code exactly" in page.locator(
        ".advice"
    ).inner_text()
    assert page.get_by_label("Organisation registration number").input_value() == bad
