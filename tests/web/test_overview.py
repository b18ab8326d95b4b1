"""The console's overview, in the browser: decisions per minute, denials by rule, live meetings,
the log and the bundle in force — each number checked against what the API says."""

from __future__ import annotations

import asyncio
import time
from types import SimpleNamespace
from typing import Any

from playwright.sync_api import expect

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
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        rows = api.get("/v1/records", params={"action": "decision.advisory"}).json()["data"]
        if sum(r["details"]["count"] for r in rows) >= expected:
            return
        time.sleep(0.1)
    raise AssertionError(f"the journal did not record {expected} advisory decisions")


def _on_server(live: Any, coro: Any) -> None:
    """Run ``coro`` on the server's event loop (Playwright's sync API holds this thread's loop)."""
    asyncio.run_coroutine_threadsafe(coro, live.loop).result(timeout=10)


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
    checkpoint = api.post("/v1/log/checkpoint").text  # the log's size, signed now
    size = int(checkpoint.splitlines()[1])

    async def two_live_meetings() -> None:
        # what the signalling keeps per live meeting, as far as the overview reads it
        live.app.state.signalling.meetings.update(
            {
                "mtg_a": SimpleNamespace(participants={"p1": None, "p2": None}),
                "mtg_b": SimpleNamespace(participants={"p3": None}),
            }
        )

    _on_server(live, two_live_meetings())
    try:
        page = browse(live, "operator", path="/console")
        facts = page.locator("dl.facts")
        expect(facts).to_contain_text(f"{policy['name']} {policy['version']}")
        expect(facts).to_contain_text(policy["digest"])
        assert page.locator("#stat-meetings").inner_text() == "2"
        expect(page.get_by_text("live meetings (3 participants)")).to_be_visible()
        assert page.locator("#stat-log").inner_text() == f"{size:,}"
        expect(facts).to_contain_text(f"{size:,} entries, signed")
        expect(facts).to_contain_text("covers the whole log")
        # nothing decided yet: the chart is empty and says so
        assert page.locator("svg.chart rect").count() == 0
        expect(page.locator("#denials")).to_contain_text("No denials in this window.")
        shot(page, "console-overview-quiet")
    finally:

        async def clear() -> None:
            live.app.state.signalling.meetings.clear()

        _on_server(live, clear())


def test_a_what_if_about_another_day_is_not_counted_in_this_hour(live: Any, browse: Any) -> None:
    live.clock.set(NOW)
    api = live.client("operator")
    api.post("/v1/decisions", json={**JOIN, "at": "2020-05-02T00:00:00+08:00"})
    api.post("/v1/decisions", json=JOIN)
    _journaled(api, 2)
    page = browse(live, "operator", path="/console")
    assert page.locator("#stat-decisions").inner_text() == "1"
