"""The console's policy pages, in the browser: the bundle in force and its timeline, what-if,
loading a bundle, and the transition report — each answer checked against the API's."""

from __future__ import annotations

import json
import re
import time
from typing import Any

from playwright.sync_api import expect

from .conftest import check_a11y, shot

VALID_USCC = "91110000600037341L"


def _what_if(page: Any, **fields: str) -> None:
    page.goto("/console/policy/whatif")
    selects = {
        "action": "Action",
        "type": "Subject type",
        "plan": "Plan",
        "channel": "Sales channel",
    }
    inputs = {"country": "Declared country", "ip": "IP address", "at": "Instant"}
    for name, value in fields.items():
        if name in selects:
            page.get_by_label(selects[name]).select_option(value)
        else:
            page.get_by_label(inputs[name]).fill(value)
    page.get_by_role("button", name="Decide").click()
    page.wait_for_load_state()


def _shown(page: Any, element: str) -> Any:
    return json.loads(page.locator(element).text_content())


def test_the_policy_page_shows_the_bundle_in_force_and_each_timeline_in_local_time(
    live: Any, browse: Any
) -> None:
    live.clock.set("2020-07-01T12:00:00+08:00")
    policy = live.client("operator").get("/v1/policy").json()
    page = browse(live, "operator", path="/console/policy")
    assert page.locator("#bundle-name").inner_text() == policy["name"]
    assert page.locator("#bundle-version").inner_text() == policy["version"]
    assert page.locator("#bundle-digest").inner_text() == policy["digest"]
    page.get_by_text("Its source (YAML").click()
    expect(page.locator("#bundle-source")).to_contain_text("id: cn-direct-sales-end")

    cn = page.locator("#timeline-CN")
    expect(cn.locator("caption")).to_contain_text("local time is Asia/Shanghai")
    cutover = cn.locator("tr", has_text="cn-direct-sales-end")
    # 23 August in mainland China is midnight there, 16:00 the day before in UTC
    expect(cutover).to_contain_text("2020-08-23 00:00 CST")
    expect(cutover).to_contain_text("2020-08-22 16:00 UTC")
    expect(cutover).to_contain_text("forbid starts")
    # the clock is at 1 July: online subscriptions ended (past); the direct-sales end is next
    expect(cn.locator("tr.past", has_text="cn-online-subscriptions-end")).to_contain_text("≈")
    assert cn.locator("tr.next").count() == 1
    expect(cn.locator("tr.next")).to_contain_text("cn-direct-sales-end")
    check_a11y(page)
    shot(page, "console-policy-timeline")

    page.get_by_label("Jurisdiction").select_option("CN")
    page.get_by_role("button", name="Show").click()
    page.wait_for_url(re.compile(r"jurisdiction=CN"))
    assert page.locator("table.timeline").count() == 1
    response = page.goto("/console/policy?jurisdiction=ZZ")
    assert response.status == 422
    assert "`ZZ`" in page.get_by_role("alert").inner_text()


def test_what_if_a_cn_individual_signs_up_before_and_after_1_may_2020(
    live: Any, browse: Any
) -> None:
    api = live.client("operator")
    page = browse(live, "operator")

    _what_if(page, action="register", type="individual", country="CN", at="2020-05-02")
    decision = page.get_by_role("region", name="Decision")
    expect(decision).to_contain_text("Decision: deny")
    expect(decision).to_contain_text("cn-register-organisations-only")
    expect(decision).to_contain_text("since 2020-05-01 only organisations may sign up")
    request = _shown(page, "#whatif-request")
    # a date alone is midnight in the declared country
    assert request == {
        "action": "register",
        "subject": {"type": "individual", "country": "CN"},
        "at": "2020-05-02T00:00:00+08:00",
    }
    assert _shown(page, "#whatif-decision") == api.post("/v1/decisions", json=request).json()
    check_a11y(page)
    shot(page, "console-whatif")

    _what_if(page, action="register", type="individual", country="CN", at="2020-04-30")
    request = _shown(page, "#whatif-request")
    answer = api.post("/v1/decisions", json=request).json()
    assert _shown(page, "#whatif-decision") == answer
    expect(page.get_by_role("region", name="Decision")).to_contain_text(
        f"Decision: {answer['decision']}"
    )
    # the form keeps what was asked
    expect(page.get_by_label("Instant")).to_have_value("2020-04-30")
    expect(page.get_by_label("Declared country")).to_have_value("CN")


def test_what_if_with_invalid_input_says_why_at_the_form(live: Any, browse: Any) -> None:
    page = browse(live, "operator")
    for fields, message in (
        ({"ip": "not-an-ip"}, "`not-an-ip`"),
        ({"at": "23 August"}, "invalid instant `23 August`"),
        ({"country": "XX"}, "`XX`"),
    ):
        _what_if(page, action="purchase", type="organization", **fields)
        alert = page.get_by_role("alert")
        assert message in alert.inner_text()
        assert "\n" not in alert.inner_text().strip()
        assert page.get_by_role("region", name="Decision").count() == 0
    expect(page.get_by_label("Declared country")).to_have_value("XX")
    check_a11y(page)


def test_a_bundle_with_an_error_is_refused_at_its_line_and_changes_nothing(
    live: Any, browse: Any
) -> None:
    api = live.client("operator")
    before = api.get("/v1/policy").json()
    page = browse(live, "operator", path="/console/policy/bundle")
    editor = page.get_by_label("Bundle (YAML)")
    lines = editor.input_value().splitlines()
    rule = next(n for n, text in enumerate(lines) if "id: cn-direct-sales-end" in text)
    bad = next(n for n in range(rule, len(lines)) if "effect: forbid" in lines[n])
    lines[bad] = lines[bad].replace("forbid", "maybe")
    editor.fill("\n".join(lines))
    page.get_by_role("button", name="Validate and propose").click()
    page.wait_for_load_state()

    line = bad + 1
    assert "not proposed: 1 problem" in page.get_by_role("alert").inner_text()
    problem = page.locator(".problems li")
    expect(problem).to_contain_text(f"line {line}:")
    expect(problem).to_contain_text("`maybe`: input should be 'permit' or 'forbid'")
    # the excerpt marks the line, numbered as in the file
    marked = page.locator(f"ol.excerpt li.bad#line-{line}")
    expect(marked).to_contain_text("effect: maybe")
    # what was typed is kept, and the link selects the line in the editor
    assert "effect: maybe" in editor.input_value()
    problem.get_by_role("link").click()
    selected = page.evaluate(
        "() => { const e = document.getElementById('bundle-yaml');"
        " return e.value.substring(e.selectionStart, e.selectionEnd); }"
    )
    assert selected == lines[bad]
    check_a11y(page)
    shot(page, "console-bundle-errors")
    assert api.get("/v1/policy").json() == before


def test_malformed_yaml_is_shown_at_its_line(live: Any, browse: Any) -> None:
    page = browse(live, "operator", path="/console/policy/bundle")
    page.get_by_label("Bundle (YAML)").fill("bundle: x\nversion: '1\nrules: []\n")
    page.get_by_role("button", name="Validate and propose").click()
    expect(page.locator(".problems li")).to_contain_text("malformed yaml")
    assert page.locator("ol.excerpt li.bad").count() == 1


def test_an_alias_bomb_pasted_in_the_console_is_refused_fast_at_its_lines(
    live: Any, browse: Any
) -> None:
    bomb = "".join(
        f"{c}: &{c} [{','.join([f'*{p}'] * 9) if p else ','.join(['lol'] * 9)}]\n"
        for p, c in zip(["", *"abcdefgh"], "abcdefghi", strict=True)
    )
    page = browse(live, "operator", path="/console/policy/bundle")
    page.get_by_label("Bundle (YAML)").fill(bomb)
    started = time.monotonic()
    page.get_by_role("button", name="Validate and propose").click()
    page.wait_for_load_state()
    assert time.monotonic() - started < 10
    problems = page.locator(".problems li")
    expect(problems.first).to_contain_text("line 1:")
    expect(problems.first).to_contain_text("yaml anchors are not allowed in a bundle: `&a`")
    expect(problems.nth(1)).to_contain_text("line 2:")
    expect(problems.nth(1)).to_contain_text("yaml anchors are not allowed in a bundle: `&b`")
    expect(problems.nth(2)).to_contain_text("yaml aliases are not allowed in a bundle: `*a`")
    # bounded: fifty are listed, and the rest summed up in one line
    expect(problems).to_have_count(51)
    expect(problems.last).to_contain_text("more than 50 problems")


def test_a_valid_edited_bundle_is_proposed_and_a_second_operator_puts_it_in_force(
    live: Any, browse: Any
) -> None:
    api = live.client("operator")
    before = api.get("/v1/policy").json()
    page = browse(live, "operator", path="/console/policy/bundle")
    editor = page.get_by_label("Bundle (YAML)")
    text = editor.input_value()
    assert f'version: "{before["version"]}"' in text
    editor.fill(text.replace(f'version: "{before["version"]}"', 'version: "2020.12.19-console"'))
    page.get_by_role("button", name="Validate and propose").click()
    page.wait_for_url(re.compile(r"/console/policy/changes/chg_[0-9a-f]+\?done=proposed$"))
    expect(page.get_by_role("status")).to_contain_text(
        "nothing changes until a second operator approves it"
    )
    expect(page.locator("#state")).to_have_text("proposed")
    # the proposer is told a second operator must approve, and is offered no approve button
    expect(page.locator("#second-operator")).to_contain_text("a second operator must approve it")
    assert page.get_by_role("button", name="Approve this diff").count() == 0
    assert api.get("/v1/policy").json() == before
    change_url = page.url.split("?")[0]
    check_a11y(page)

    second = browse(live, "operator2", path=change_url.removeprefix(live.url))
    second.get_by_role("button", name="Approve this diff").click()
    second.wait_for_url(re.compile(r"\?done=approve$"))
    expect(second.get_by_role("status")).to_contain_text("in force now")
    expect(second.locator("#state")).to_have_text("active")

    after = api.get("/v1/policy").json()
    assert after["version"] == "2020.12.19-console"
    assert second.locator("#bundle-digest").inner_text() == after["digest"]
    loads = api.get("/v1/records", params={"action": "policy.load"}).json()["data"]
    assert loads[-1]["subject_id"] == after["digest"]
    assert loads[-1]["details"]["previous"] == before["digest"]
    # decisions follow the new bundle at once
    answer = api.post(
        "/v1/decisions", json={"action": "join", "subject": {"type": "individual", "country": "US"}}
    )
    assert answer.json()["bundle"]["version"] == "2020.12.19-console"

    # proposing the bundle in force again is refused, and says why
    page.goto("/console/policy/bundle")
    page.get_by_role("button", name="Validate and propose").click()
    expect(page.get_by_role("alert")).to_contain_text("is the one in force already")


def test_the_transition_report_lists_what_the_api_lists(live: Any, browse: Any) -> None:
    api = live.client("operator")
    live.clock.set("2020-08-01T10:00:00+08:00")  # before the cutover
    org = api.post(
        "/v1/accounts",
        json={
            "type": "organization",
            "name": "Hangzhou Lakeside Design Co.",
            "country": "CN",
            "org_id": VALID_USCC,
        },
    ).json()["account"]
    sub = api.post(
        "/v1/checkout",
        json={"account": org["id"], "plan": "business", "channel": "direct", "term": "year"},
    ).json()["subscription"]
    expected = api.get("/v1/transitions", params={"jurisdiction": "CN", "at": "2020-08-23"}).json()
    assert expected["counts"]["subscription_transfer"] == 1

    page = browse(live, "operator", path="/console/policy/transition")
    page.get_by_label("Jurisdiction").fill("CN")
    page.get_by_label("Date or instant").fill("2020-08-23")
    page.get_by_role("button", name="Show who it touches").click()
    page.wait_for_url(re.compile(r"jurisdiction=CN&at=2020-08-23"))

    expect(page.get_by_role("heading", level=2).first).to_contain_text("2020-08-23 00:00 CST")
    assert page.locator("#count-accounts").inner_text() == str(expected["accounts_examined"])
    for kind, count in expected["counts"].items():
        assert page.locator(f"#count-{kind}").inner_text() == str(count)
        assert page.locator(f"#items-{kind} tbody tr").count() == count
    row = page.locator("#items-subscription_transfer tbody tr")
    expect(row).to_contain_text(sub["id"])
    expect(row).to_contain_text("Hangzhou Lakeside Design Co.")
    expect(row).to_contain_text("cn-direct-sales-end")
    expect(row).to_contain_text("Bizconf Communications")
    for item in expected["items"]:
        expect(page.locator(f"#items-{item['kind']}")).to_contain_text(item["account"])
    check_a11y(page)
    shot(page, "console-transition")
    # a dry run: nothing was marked
    assert api.get(f"/v1/subscriptions/{sub['id']}").json()["status"] == "active"

    # the timeline links to the same report for each change
    page.goto("/console/policy?jurisdiction=CN")
    page.locator("tr", has_text="cn-direct-sales-end").get_by_role("link").click()
    expect(page.locator("#count-subscription_transfer")).to_have_text("1")

    response = page.goto("/console/policy/transition?jurisdiction=CN&at=23-08-2020")
    assert response.status == 422
    assert "invalid" in page.get_by_role("alert").inner_text()
