"""The walk through the 2020 case in docs/walkthroughs.md, in one browser session after another,
as a new user.

It runs over the demo world ``make run`` seeds, on the demo's simulated network, against real
region nodes: sign-ups, a checkout, the cutover's takeover, a meeting with a participant from
mainland China, the government request that drops it, the map and the report. Each step goes
through the pages alone; the API is asked only to confirm what the pages showed.
"""

from __future__ import annotations

import re
from typing import Any

import pytest
from playwright.sync_api import expect

from meridian.demo import DEMO_HOSTS, DEMO_IPS

from .conftest import seed_before_serving, shot, sign_in


@pytest.fixture
def world(
    live_factory: Any, nodes: Any, grant_key: Any, database_url: str, clock: Any, tmp_path: Any
) -> Any:
    from sqlalchemy import select

    from meridian.storage.models import Account

    # after the CN company's direct year ran out (2021-07-15), as every 2020 change had happened
    clock.set("2021-08-02T10:00:00+08:00")
    seed_before_serving(database_url, clock, tmp_path)  # as `meridian serve --demo` does
    plane = live_factory(
        grant_key=grant_key,
        node_urls={r: n.url for r, n in nodes.nodes.items()},
        trusted_proxies=("127.0.0.1/32",),
    )
    with plane.runtime.db.read() as session:
        for name, account in DEMO_HOSTS.items():
            account_id = session.scalars(select(Account.id).where(Account.name == account)).one()
            plane.token(name, role="user", account_id=account_id)
    plane.app.state.demo_network = DEMO_IPS
    yield plane
    del plane.app.state.demo_network


def _sign_out(page: Any) -> None:
    page.get_by_role("button", name="Sign out").click()
    page.wait_for_url(re.compile(r"/$"))


def test_the_2020_case_end_to_end_in_the_browser(world: Any, browse: Any) -> None:
    page = browse(world, "operator")
    expect(page.get_by_role("heading", name="Overview")).to_be_visible()
    _sign_out(page)

    # sign-ups: a CN individual is refused and told why; an organisation gets in
    page.goto("/signup")
    page.get_by_label("An individual, in my own name").check()
    page.get_by_label("Name", exact=True).fill("Wang Fang")
    page.get_by_label("Country or territory").select_option("CN")
    page.get_by_role("button", name="Sign up").click()
    expect(page.locator("main")).to_contain_text("only organisations may sign up in mainland China")
    page.get_by_label("An organisation (a company, an institution, an association)").check()
    page.get_by_label("Name", exact=True).fill("Beijing Walkthrough Ltd.")
    page.get_by_label("Organisation registration number (organisations only)").fill(
        "91110000600037341L"
    )
    page.get_by_role("button", name="Sign up").click()
    page.wait_for_url(re.compile(r"/account$"))

    # its checkout offers the three authorised partners instead of a purchase
    page.goto("/account/checkout")
    for partner in ("Bizconf Communications", "Suirui Zhumu Video Conference", "Systec Umeet"):
        expect(page.locator("main")).to_contain_text(partner)
    _sign_out(page)

    # the cutover: the CN direct customer chooses bizconf, bizconf takes the subscription over
    sign_in(page, world.tokens["cn-direct"])
    page.locator("select[id^=partner-]").first.select_option("bizconf")
    page.get_by_role("button", name="Choose this partner").first.click()
    _sign_out(page)
    sign_in(page, world.tokens["bizconf"])
    page.goto("/partner/transfers")
    page.get_by_role("button", name=re.compile("^Take over")).first.click()
    expect(page.locator("main")).to_contain_text("is active under your channel")
    _sign_out(page)

    # a meeting: the US host joins from the US, a guest as if from mainland China
    sign_in(page, world.tokens["us-host"])
    page.goto("/account/meetings")
    page.get_by_label("Title").fill("Walkthrough")
    page.get_by_role("button", name="Create meeting").click()
    link = page.get_by_role("link", name="Walkthrough").first.get_attribute("href")
    assert link is not None
    meeting = link.rsplit("/", 1)[1]
    # the join link, with its invite, is shown this once: the guest needs it
    invited = page.get_by_label("Join link of Walkthrough").input_value()
    page.goto(link)
    page.get_by_label("Demo network: connect as if from").select_option("US")
    page.get_by_label("Your name").fill("Riley")
    page.get_by_role("button", name="Join meeting").click()
    expect(page.get_by_role("status")).to_contain_text("relay in US")
    guest = browse(world, path=invited)
    guest.get_by_label("Demo network: connect as if from").select_option("CN")
    guest.get_by_label("Your name").fill("Chen")
    guest.get_by_role("button", name="Join meeting").click()
    expect(guest.get_by_role("status")).to_contain_text("relay in HK")
    guest.get_by_label("Message").fill("ni hao")
    guest.get_by_role("button", name="Send").click()
    expect(page.locator(".chat")).to_contain_text("Chen: ni hao")

    # the operator's map: the meeting is carried in the US and Hong Kong, no CN relay in use
    ops = browse(world, "operator", path=f"/console/datacentres?meeting={meeting}")
    expect(ops.locator('#regions tr[data-region="CN"] td[data-col="in-use"]')).to_have_text("no")
    expect(ops.locator("#carried tr[data-region]")).to_have_count(2)

    # the June request: recorded by one operator, approved by the other; the CN guest is dropped
    ops.goto("/console/legal/new")
    ops.get_by_label("Requesting authority").fill("Beijing Municipal Public Security Bureau")
    ops.get_by_label("Jurisdiction").fill("CN")
    ops.get_by_label("Legal type").select_option("court_order")
    ops.get_by_label("Legal reference").fill("BJ-2020-0604")
    ops.get_by_label("Action requested").select_option("end_meeting")
    ops.get_by_label("Target kind").select_option("meeting")
    ops.get_by_label("Target id").fill(meeting)
    ops.get_by_role("button", name="Record the request").click()
    ops.wait_for_url(re.compile(r"/console/legal/lr_"))
    assert ops.get_by_role("button", name="Approve").count() == 0
    request = ops.url
    _sign_out(ops)
    sign_in(ops, world.tokens["operator2"])
    ops.goto(request)
    ops.get_by_role("button", name="Approve").click()
    expect(ops.locator("main")).to_contain_text("1 live participant disconnected")
    expect(guest.locator("main")).to_contain_text("You were removed from the meeting")
    page.get_by_label("Message").fill("still here")
    page.get_by_role("button", name="Send").click()
    expect(page.locator(".chat")).to_contain_text("Riley: still here")

    # the proof: a checkpoint signed now covers everything above; the report (public) reads the
    # log up to it alone, and counts 2020's six June requests
    ops.goto("/console/log")
    ops.get_by_role("button", name="Sign a checkpoint now").click()
    ops.wait_for_load_state()
    ops.goto("/report?from=2020-01-01&to=2020-12-31")
    expect(ops.locator("main")).to_contain_text(re.compile(r"(?<!\d)6\s*requests received"))
    shot(ops, "walkthrough-report")
    state = world.client("operator").get(f"/v1/legal-requests/{request.rsplit('/', 1)[1]}").json()
    assert state["state"] == "applied"
