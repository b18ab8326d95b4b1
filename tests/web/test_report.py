"""The transparency report pages: /report for anyone, /console/report for operators.

The demo world (``seed_demo``: about a second) records the June 2020 requests from mainland
China; the page must show the very counts ``GET /v1/reports/transparency`` gives for the period.
"""

from __future__ import annotations

from typing import Any

import httpx
from playwright.sync_api import expect

from .conftest import check_a11y, shot


def a11y(page: Any) -> None:
    """No critical accessibility violation (the harness's rule), and no serious one either."""
    serious = [f"{v['id']}: {v['help']}" for v in check_a11y(page) if v["impact"] == "serious"]
    assert not serious, f"serious accessibility violations on {page.url}: {serious}"


PERIOD = {"from": "2020-01-01", "to": "2020-12-31"}


def seeded(live: Any) -> None:
    """``live`` is ``demo_live`` (tests/web/conftest.py): the demo world was seeded before it
    started."""
    # the report is computed at the latest signed checkpoint: sign one that covers the demo
    assert live.client("operator").post("/v1/log/checkpoint").status_code == 200


def shown_breakdowns(page: Any) -> dict[str, dict[str, int]]:
    """Each breakdown table on the page as ``{key: count}``."""
    out: dict[str, dict[str, int]] = {}
    for table in page.locator("table.breakdown-table").all():
        name = table.get_attribute("data-breakdown")
        rows = table.locator("tbody tr").all()
        out[name] = {
            r.locator("th").get_attribute("data-key"): int(r.locator("td").inner_text())
            for r in rows
            if r.locator("th").count()
        }
    return out


def test_the_2020_report_shows_the_apis_counts_with_charts(demo_live: Any, browse: Any) -> None:
    live = demo_live
    seeded(live)
    api = live.client().get("/v1/reports/transparency", params=PERIOD).json()
    page = browse(live, "operator", path="/console/report?from=2020-01-01&to=2020-12-31")
    assert page.get_by_role("heading", level=1).inner_text().startswith("Transparency report")
    assert page.locator("#period").inner_text() == "2020-01-01 to 2020-12-31"
    counts = {
        "#count-requests": api["requests"]["total"],
        "#count-accounts": api["affected"]["accounts"],
        "#count-participants": api["affected"]["participants"],
        "#count-meetings-ended": api["affected"]["meetings_ended"],
        "#count-content": api["disclosures"]["content"],
        "#count-non-content": api["disclosures"]["non_content"],
        "#count-delayed": api["notice"]["delayed"],
        "#count-notified": api["notice"]["delayed_then_notified"],
    }
    assert {k: page.locator(k).inner_text() for k in counts} == {
        k: str(v) for k, v in counts.items()
    }
    # the June 2020 case: six requests from mainland China, three narrowed, three rejected
    assert api["requests"]["total"] == 6
    assert api["requests"]["by_outcome"]["narrowed"] == 3
    assert shown_breakdowns(page) == {
        "jurisdiction": api["requests"]["by_jurisdiction"],
        "legal-type": api["requests"]["by_legal_type"],
        "action": api["requests"]["by_action"],
        "outcome": api["requests"]["by_outcome"],
    }
    assert page.locator("#checkpoint-size").inner_text() == str(api["checkpoint"]["size"])
    # a chart per breakdown, drawn as SVG with a bar per row
    assert page.locator("svg.chart").count() == 4
    assert page.locator("svg.chart-outcome rect.bar").count() == 4
    assert page.locator("svg.chart-jurisdiction title").text_content().startswith(
        "Requests by requesting jurisdiction"
    )
    # the downloads are the API's renderings of the same period
    links = {
        a.inner_text(): a.get_attribute("href")
        for a in page.get_by_role("list").filter(has_text="JSON").locator("a").all()
    }
    assert set(links) == {"JSON", "CSV", "HTML (one page)"}
    with httpx.Client(base_url=live.url) as http:
        assert http.get(links["JSON"]).json() == api
        assert http.get(links["CSV"]).text.startswith("dimension,key,value\n")
        assert "transparency report" in http.get(links["HTML (one page)"]).text
    a11y(page)
    shot(page, "transparency-report")


def test_the_public_report_needs_no_sign_in_and_defaults_as_the_api(
    demo_live: Any, browse: Any
) -> None:
    live = demo_live
    seeded(live)
    page = browse(live, path="/report")
    assert page.url.endswith("/report")
    api = live.client().get("/v1/reports/transparency").json()
    # the API's default period: the days of the first and the last request in the log
    assert api["period"] == {"from": "2020-06-04", "to": "2020-06-04"}
    assert page.get_by_label("From (UTC, inclusive)").input_value() == "2020-06-04"
    assert page.get_by_label("To (UTC, inclusive)").input_value() == "2020-06-04"
    assert page.locator("#count-requests").inner_text() == str(api["requests"]["total"])
    assert page.get_by_role("link", name="Sign in").is_visible()
    # the period form
    page.get_by_label("From (UTC, inclusive)").fill("2020-05-01")
    page.get_by_label("To (UTC, inclusive)").fill("2020-12-12")
    page.get_by_role("button", name="Show the report").click()
    page.wait_for_url("**/report?from=2020-05-01&to=2020-12-12")
    may_dec = live.client().get(
        "/v1/reports/transparency", params={"from": "2020-05-01", "to": "2020-12-12"}
    )
    assert page.locator("#count-participants").inner_text() == str(
        may_dec.json()["affected"]["participants"]
    )
    assert page.locator("svg.chart").count() == 4
    a11y(page)
    shot(page, "transparency-report-public")


def test_a_bad_period_is_refused_as_the_api_refuses_it(live: Any, browse: Any) -> None:
    page = browse(live)
    response = page.goto("/report?from=2020-12-31&to=2020-01-01")
    api = live.client().get(
        "/v1/reports/transparency", params={"from": "2020-12-31", "to": "2020-01-01"}
    )
    assert response.status == api.status_code == 422
    expect(page.get_by_role("alert")).to_have_text(api.json()["error"]["message"])
    response = page.goto("/report?from=2020-02-30")
    assert response.status == 422
    expect(page.get_by_role("alert")).to_contain_text("invalid date `2020-02-30` for `from`")
    a11y(page)
    shot(page, "transparency-report-bad-period")


def test_an_empty_period_says_so(live: Any, browse: Any) -> None:
    page = browse(live, "operator", path="/console/report?from=2019-01-01&to=2019-12-31")
    assert page.locator("#count-requests").inner_text() == "0"
    assert page.locator("svg.chart-jurisdiction text.empty").text_content() == (
        "No requests in this period."
    )
    a11y(page)
