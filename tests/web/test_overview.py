"""The console's overview, in the browser: decisions per minute, denials by rule, live meetings,
the log and the bundle in force — each number checked against what the API says."""

from __future__ import annotations

from typing import Any

from playwright.sync_api import expect
from tests.support import eventually

from .conftest import check_a11y, shot

NOW = "2020-08-24T10:00:00+08:00"  # the day after mainland China went partner-only
JOIN = {"action": "join", "subject": {"type": "individual", "country": "CN"}}
DIRECT = {
    "action": "purchase",
    "subject": {"type": "organization", "country": "CN"},
    "resource": {"channel": "direct"},
}


def _journaled(api: Any, expected: int) -> None:
    """Wait until the journal has written ``expected`` advisory decisions (it flushes every 0.2 s)."""

    def recorded() -> int:
        rows = api.get("/v1/records", params={"action": "decision.advisory"}).json()["data"]
        return sum(r["details"]["count"] for r in rows)

    eventually(
        lambda: recorded() >= expected,
        timeout=10,
        interval=0.1,
        what=f"the journal recording {expected} advisory decisions",
    )


def _live_meeting(live: Any, people: int) -> str:
    """A live meeting of a paying US host, with ``people`` admitted (and not gone) in it."""
    from meridian.meetings.placement import Occupancy
    from meridian.meetings.regions import region_table
    from meridian.meetings.service import admit

    ops = live.client("operator")
    body = {"type": "organization", "name": "Host", "country": "US"}
    account = ops.post("/v1/accounts", json=body).json()["account"]["id"]
    checkout = {"account": account, "plan": "pro", "channel": "direct"}
    assert ops.post("/v1/checkout", json=checkout).status_code == 201
    r = ops.post("/v1/meetings", json={"host": account})
    assert r.status_code == 201, r.text
    meeting = str(r.json()["meeting"]["id"])
    occupancy = Occupancy(region_table(live.runtime.engine.bundle))
    for _ in range(people):
        admission = admit(
            live.runtime,
            meeting_id=meeting,
            name="p",
            caller=None,
            client_ip="8.8.8.8",
            occupancy=occupancy,
            uses={},
        )
        assert admission.participation is not None
    return meeting


def _cells(page: Any, selector: str) -> list[list[str]]:
    return [
        [c.strip() for c in row.locator("td, th").all_inner_texts()]
        for row in page.locator(selector).all()
    ]


def test_the_overview_counts_the_decisions_made_and_the_rule_behind_each_denial(
    live: Any, browse: Any
) -> None:
    live.clock.set(NOW)
    api = live.client("operator")
    answers = [api.post("/v1/decisions", json=r).json() for r in (JOIN, JOIN, DIRECT)]
    assert [a["decision"] for a in answers] == ["allow", "allow", "deny"]
    assert answers[2]["reasons"][0]["rule"] == "cn-direct-sales-end"
    # a gated decision: a refused sign-up is recorded with its refusal
    refused = api.post("/v1/accounts", json={"type": "individual", "name": "Li", "country": "CN"})
    assert refused.status_code == 403
    _journaled(api, 3)

    page = browse(live, "operator", path="/console")
    assert page.locator("#stat-decisions").inner_text() == "4"
    assert page.locator("#stat-denied").inner_text() == "2"
    # the table under the chart: one minute (the service clock is stopped at NOW), and the total
    assert _cells(page, "#per-minute tbody tr") == [["2020-08-24 02:00 UTC", "4", "2", "2"]]
    assert _cells(page, "#per-minute tfoot tr") == [["Total", "4", "2", "2"]]
    # the chart draws that minute: one allowed bar and one denied bar stacked on it
    assert page.locator("svg.chart rect.bar-allow").count() == 1
    assert page.locator("svg.chart rect.bar-deny").count() == 1
    assert "4 decisions, 2 denied" in page.locator("svg.chart g title").last.text_content()
    assert sorted(_cells(page, "#denials tbody tr")) == [
        ["cn-direct-sales-end", "1"],
        ["cn-register-organisations-only", "1"],
    ]
    check_a11y(page)
    shot(page, "console-overview")


def test_the_overview_shows_the_bundle_the_log_and_the_live_meetings(
    live: Any, browse: Any
) -> None:
    api = live.client("operator")
    policy = api.get("/v1/policy").json()
    # two live meetings, three participants in them, two hours before now (out of the chart's
    # hour); on a paid plan, so neither has run out of minutes by now
    now = live.clock()
    live.clock.set("2026-01-15T07:00:00Z")
    for people in (2, 1):
        _live_meeting(live, people)
    live.clock.set(now)
    checkpoint = api.post("/v1/log/checkpoint").text  # the log's size, signed now
    size = int(checkpoint.splitlines()[1])
    page = browse(live, "operator", path="/console")
    facts = page.locator("dl.facts")
    expect(facts).to_contain_text(f"{policy['name']} {policy['version']}")
    expect(facts).to_contain_text(policy["digest"])
    assert page.locator("#stat-meetings").inner_text() == "2"
    expect(page.get_by_text("live meetings (3 participants)")).to_be_visible()
    assert page.locator("#stat-log").inner_text() == f"{size:,}"
    expect(facts).to_contain_text(f"{size:,} entries, signed")
    expect(facts).to_contain_text("covers the whole log")
    # nothing decided in the last hour: the chart is empty and says so
    assert page.locator("svg.chart rect").count() == 0
    expect(page.locator("#denials")).to_contain_text("No denials in this window.")
    shot(page, "console-overview-quiet")


def test_a_what_if_about_another_day_is_not_counted_in_this_hour(live: Any, browse: Any) -> None:
    live.clock.set(NOW)
    api = live.client("operator")
    api.post("/v1/decisions", json={**JOIN, "at": "2020-05-02T00:00:00+08:00"})
    api.post("/v1/decisions", json=JOIN)
    _journaled(api, 2)
    page = browse(live, "operator", path="/console")
    assert page.locator("#stat-decisions").inner_text() == "1"
