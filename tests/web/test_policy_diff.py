"""The console's diff page, in the browser: what a pasted bundle changes, checked against the
library's diff, and a bundle it cannot read shown line by line; nothing is put in force."""

from __future__ import annotations

from typing import Any

from playwright.sync_api import expect

from meridian.policy import load_bundle_text
from meridian.policy.diff import diff_bundles
from meridian.policy.loader import default_bundle_path

from .conftest import check_a11y, shot


def test_the_diff_page_shows_the_classes_a_moved_cutover_changes(live: Any, browse: Any) -> None:
    api = live.client("operator")
    before = api.get("/v1/policy").json()
    moved = (
        default_bundle_path()
        .read_text(encoding="utf-8")
        .replace("effective: {from: 2020-08-23}", "effective: {from: 2020-08-30}")
    )
    page = browse(live, "operator", path="/console/policy/diff")
    page.get_by_label("Proposed bundle (YAML)").fill(moved)
    page.get_by_role("button", name="Show what it changes").click()
    page.wait_for_load_state()

    want = diff_bundles(
        live.runtime.engine.bundle, load_bundle_text(moved), locator=live.runtime.locator
    )
    rows = page.locator("#diff-classes tbody tr")
    expect(rows).to_have_count(len(want.classes))
    first = rows.first
    expect(first).to_contain_text("purchase")
    expect(first).to_contain_text("2020-08-23 00:00 CST → 2020-08-30 00:00 CST")
    expect(first).to_contain_text("2020-08-22 16:00:00 UTC → 2020-08-29 16:00:00 UTC")
    expect(first).to_contain_text("deny: cn-direct-sales-end@CN")
    expect(first).to_contain_text("allow: sales-direct-and-online@CN")
    assert page.locator("#diff-digest").inner_text() == want.digest
    expect(page.locator("#diff-summary")).to_contain_text(f"{len(want.classes)} classes")
    first.get_by_text("request").click()
    expect(first.locator("pre")).to_contain_text('"channel": "direct"')
    check_a11y(page)
    shot(page, "console-policy-diff")
    assert api.get("/v1/policy").json() == before  # nothing was put in force


def test_the_diff_page_refuses_an_unreadable_bundle_with_its_problems(
    live: Any, browse: Any
) -> None:
    page = browse(live, "operator", path="/console/policy/diff")
    page.get_by_label("Proposed bundle (YAML)").fill("bundle: x\nversion: '1\nrules: []\n")
    page.get_by_role("button", name="Show what it changes").click()
    expect(page.get_by_role("alert")).to_contain_text("cannot be read: 1 problem")
    expect(page.locator(".problems li")).to_contain_text("malformed yaml")
    assert page.locator("#diff-classes").count() == 0


def test_the_same_bundle_shows_no_difference(live: Any, browse: Any) -> None:
    page = browse(live, "operator", path="/console/policy/diff")
    page.get_by_label("Proposed bundle (YAML)").fill(
        default_bundle_path().read_text(encoding="utf-8")
    )
    page.get_by_role("button", name="Show what it changes").click()
    expect(page.locator("#diff-summary")).to_contain_text("No difference")
