"""The meeting's end in the browser: the host ends it from its page, and a page whose participant
was removed or whose meeting ended says so and shows nobody; every page counts live meetings the
same way.
"""

from __future__ import annotations

import re
from typing import Any

from playwright.sync_api import expect
from tests.web.test_meeting import (
    CN_IP,
    DE_IP,
    US_IP,
    Clients,
    clients,  # noqa: F401 - a fixture
    create_meeting,
    host,
    invited,
    join_page,
)

__all__ = ["Clients"]


def status(live: Any, meeting: str) -> str:
    return str(live.client("operator").get(f"/v1/meetings/{meeting}").json()["status"])


def test_the_host_ends_the_meeting_from_its_page_and_everyone_sees_it_ended(plane, nodes, browse):
    account = host(plane)
    mid = create_meeting(plane, account, topic="Board")["id"]
    guest = browse(plane, forwarded_for=DE_IP, path=invited(plane, mid))
    # a guest is offered no way to end it
    expect(guest.get_by_role("button", name="End meeting")).to_have_count(0)
    join_page(guest, "Dieter")
    expect(guest.get_by_role("status")).to_contain_text("Connected through the relay in DE")

    page = browse(plane, account, forwarded_for=US_IP, path=f"/meet/{mid}")
    join_page(page, "Hanna")
    expect(page.get_by_role("status")).to_contain_text("Connected through the relay in US")
    expect(guest.locator("#roster")).to_contain_text("Hanna")

    page.get_by_role("button", name="End meeting").click()
    expect(page).to_have_url(re.compile(rf"/meet/{mid}$"))
    expect(page.get_by_role("heading", name="Board")).to_be_visible()
    expect(page.locator("#meeting-ended")).to_have_text("This meeting has ended.")
    expect(page.get_by_role("button", name="Join meeting")).to_have_count(0)
    expect(page.get_by_role("button", name="End meeting")).to_have_count(0)

    expect(guest.get_by_role("status")).to_contain_text("The meeting ended")
    expect(guest.locator("#roster li")).to_have_count(0)
    expect(guest.locator("#people-heading")).to_have_text("Nobody here: you are not in the meeting")
    expect(guest.get_by_role("button", name="Send")).to_be_disabled()
    assert status(plane, mid) == "ended"
    records = (
        plane.client("operator")
        .get("/v1/records", params={"action": "meeting.end", "subject": mid})
        .json()["data"]
    )
    assert [r["actor"].split(":")[0] for r in records] == ["user"]


def test_the_end_form_needs_its_csrf_token(plane, nodes, browse):
    account = host(plane)
    mid = create_meeting(plane, account)["id"]
    page = browse(plane, account, path=f"/meet/{mid}")
    r = page.request.post(f"/meet/{mid}/end", form={"csrf": "forged"})
    assert r.status == 403
    assert status(plane, mid) == "live"


def test_a_removed_participants_page_says_so_and_shows_nobody(plane, nodes, browse, clients):  # noqa: F811
    account = host(plane)
    mid = create_meeting(plane, account)["id"]
    kept = browse(plane, forwarded_for=DE_IP, path=invited(plane, mid))
    join_page(kept, "Dieter")
    expect(kept.get_by_role("status")).to_contain_text("Connected through the relay in DE")
    gone = browse(plane, forwarded_for=CN_IP, path=invited(plane, mid))
    join_page(gone, "Chen")
    expect(gone.get_by_role("status")).to_contain_text("Connected through the relay in HK")
    expect(gone.locator("#roster")).to_contain_text("Dieter")
    chen = gone.locator("#me").inner_text().rsplit("(", 1)[1].rstrip(")")

    reason = "lawful request `lr_demo` approved by two operators: blocked in CN"
    signalling = plane.app.state.signalling
    assert clients.run(plane.on_server(signalling.remove(mid, [chen], reason=reason))) == [chen]
    expect(gone.get_by_role("alert")).to_have_text(f"You were removed from the meeting: {reason}")
    # it can no longer hear them: it lists nobody
    expect(gone.locator("#roster li")).to_have_count(0)
    expect(gone.locator("#people-heading")).to_have_text("Nobody here: you are not in the meeting")
    expect(kept.locator("#roster")).not_to_contain_text("Chen")


def test_every_page_counts_live_meetings_the_same_way(live, browse):
    account = host(live)
    first = create_meeting(live, account)["id"]  # live, nobody has joined yet
    create_meeting(live, account)
    ops = live.client("operator")

    def counts(page: Any) -> dict[str, int]:
        page.goto("/console")
        overview = int(page.locator("#stat-meetings").inner_text())
        page.goto("/console/meetings")
        listed = page.locator("#live-meetings tbody tr:not(.empty)").count()
        mapped = len(page.request.get("/console/datacentres.json").json()["live"])
        api = ops.get("/v1/datacentres").json()["live_meetings"]
        return {"overview": overview, "meetings": listed, "map": mapped, "api": api}

    page = browse(live, "operator")
    assert counts(page) == {"overview": 2, "meetings": 2, "map": 2, "api": 2}
    assert ops.post(f"/v1/meetings/{first}/end").status_code == 200
    assert counts(page) == {"overview": 1, "meetings": 1, "map": 1, "api": 1}


def test_the_plans_time_warning_and_the_timed_end_reach_the_page(plane, nodes, browse):
    account = host(plane, plan=None)  # free: 40 minutes a meeting
    mid = create_meeting(plane, account)["id"]  # at 10:00 by the service's clock
    page = browse(plane, forwarded_for=DE_IP, path=invited(plane, mid))
    join_page(page, "Dieter")
    expect(page.get_by_role("status")).to_contain_text("Connected through the relay in DE")
    plane.clock.set("2021-03-01T10:35:00Z")
    warning = (
        "this meeting ends in 5 minutes (at 10:40 UTC): "
        "the `free` plan allows 40 minutes per meeting"
    )
    expect(page.locator("#notices")).to_contain_text(warning)
    expect(page.locator("#chat")).to_contain_text(warning)
    plane.clock.set("2021-03-01T10:40:00Z")
    expect(page.get_by_role("status")).to_have_text(
        "The meeting ended: the `free` plan allows 40 minutes per meeting: "
        "this meeting reached its limit."
    )
    expect(page.locator("#roster li")).to_have_count(0)
    assert status(plane, mid) == "ended"
