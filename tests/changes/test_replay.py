"""Replay: the log's decisions judged again under a proposed bundle, and today's customers at its
instant; a decision that cannot be judged again is reported, never skipped."""

from __future__ import annotations

import re

import pytest
from sqlalchemy import select
from typer.testing import CliRunner

from meridian.cli.app import app
from meridian.policy.loader import default_bundle_path
from meridian.storage.models import Record

pytestmark = pytest.mark.storage

VALID_USCC = "91110000600037341L"
#: the built-in bundle with mainland China's end of direct sales a week later
CUTOVER_LINE = "effective: {from: 2020-08-23}"


def moved(days: int = 7) -> str:
    """The built-in bundle with the end of direct sales in CN moved to 2020-08-(23 + days)."""
    text = default_bundle_path().read_text(encoding="utf-8")
    assert text.count(CUTOVER_LINE) == 1
    return text.replace(CUTOVER_LINE, f"effective: {{from: 2020-08-{23 + days}}}").replace(
        'version: "2020.12.18"', 'version: "2020.12.18-moved"'
    )


def account(live, country, name, who="operator"):
    body = {"type": "organization", "name": name, "country": country}
    if country == "CN":
        body["org_id"] = VALID_USCC
    r = live.client(who).post("/v1/accounts", json=body)
    assert r.status_code == 201, r.text
    return r.json()["account"]["id"]


def buy(live, account_id, channel="direct", who="operator", **extra):
    return live.client(who).post(
        "/v1/checkout", json={"account": account_id, "plan": "pro", "channel": channel, **extra}
    )


@pytest.fixture
def week(live):
    """Decisions logged in the week after the cutover: a CN direct purchase refused, a US one
    allowed, a CN purchase through bizconf allowed, and advisory decisions."""
    live.clock.set("2020-08-25T10:00:00+08:00")
    cn = account(live, "CN", "Beijing Org")
    us = account(live, "US", "Denver Co")
    cn2 = account(live, "CN", "Shanghai Org", who="bizconf")
    assert buy(live, cn).status_code == 403
    assert buy(live, us).status_code == 201
    assert buy(live, cn2, channel="partner", partner="bizconf", who="bizconf").status_code == 201
    advisory = live.client("operator").post(
        "/v1/decisions",
        json={"action": "purchase", "subject": {"type": "organization", "country": "CN"}},
    )
    assert advisory.status_code == 200
    live.clock.set("2020-08-26T10:00:00+08:00")
    return {"cn": cn, "us": us, "cn2": cn2}


def _advisory_written(live):
    with live.runtime.db.read() as session:
        return session.scalars(select(Record).where(Record.action == "decision.advisory")).first()


def test_replay_names_the_refusal_a_later_cutover_would_have_allowed(live, week):
    from tests.support import eventually

    eventually(lambda: _advisory_written(live), what="the advisory decision's entry")
    r = live.client("operator").post("/v1/policy/replay", json={"yaml": moved(), "days": 7})
    assert r.status_code == 200, r.text
    report = r.json()
    log = report["log"]
    assert log["changed_count"] == 1
    (item,) = log["changed"]
    assert (item["action"], item["before"], item["after"]) == ("purchase", "deny", "allow")
    assert item["rules_before"] == ["cn-direct-sales-end"]
    assert item["subject"] == {"kind": "account", "id": week["cn"]}
    assert log["accounts"] == [week["cn"]]
    assert log["by_action"]["purchase"]["deny_to_allow"] == 1
    assert log["by_action"]["purchase"]["rejudged"] == 3
    assert log["by_action"]["register"]["rejudged"] == 3
    # the advisory decision is a tally without its request: counted apart, never judged again
    assert log["advisory"] == {"entries": 1, "decisions": 1}
    # nothing else is left out: every decision in the window is re-judged or said not to be
    assert log["examined"] == log["rejudged"] + log["not_rejudged_count"] == 6
    assert log["not_rejudged_count"] == 0


def test_replay_reports_what_it_cannot_judge_again_and_why(live):
    # decisions made under a bundle that did not count the IP address for purchases: whether
    # those requests carried one, the log cannot say
    from meridian.audit import SYSTEM
    from meridian.policy.loader import load_bundle_text
    from meridian.policy.store import activate_bundle

    country_only = (
        default_bundle_path()
        .read_text(encoding="utf-8")
        .replace(
            "purchase: {signals: [country, ip], resolve: strictest}",
            "purchase: {signals: [country], resolve: strictest}",
        )
    )
    loaded = load_bundle_text(country_only, "country-only.yaml")
    live.clock.set("2020-08-25T10:00:00+08:00")
    with live.runtime.db.write() as session:
        activate_bundle(session, loaded, country_only, actor=SYSTEM, at=live.clock())
    live.runtime.refresh()
    cn = account(live, "CN", "Beijing Org")
    us = account(live, "US", "Denver Co")
    assert buy(live, cn).status_code == 403
    assert buy(live, us).status_code == 201
    live.clock.set("2020-08-26T10:00:00+08:00")
    log = (
        live.client("operator")
        .post("/v1/policy/replay", json={"yaml": moved(), "days": 7})
        .json()["log"]
    )
    assert log["by_action"]["purchase"]["not_rejudged"] == 2
    assert log["by_action"]["purchase"]["rejudged"] == 0
    assert log["not_rejudged_count"] == 2
    assert {p["why"] for p in log["not_rejudged"]} == {
        "the proposed bundle counts `ip` for `purchase`, which the entry does not record"
    }
    assert {p["log_action"] for p in log["not_rejudged"]} == {"subscription.purchase"}
    # the sign-ups are still judged again: nothing they need is missing
    assert log["by_action"]["register"] == {
        "examined": 2,
        "rejudged": 2,
        "changed": 0,
        "allow_to_deny": 0,
        "deny_to_allow": 0,
        "not_rejudged": 0,
    }
    assert log["examined"] == log["rejudged"] + log["not_rejudged_count"]


def test_replay_outside_the_window_sees_nothing(live, week):
    live.clock.set("2020-10-01T00:00:00Z")
    log = (
        live.client("operator")
        .post("/v1/policy/replay", json={"yaml": moved(), "days": 7})
        .json()["log"]
    )
    assert log["examined"] == 0


def test_replay_at_the_instant_lists_todays_customers_the_change_touches(live, week):
    # on 2020-08-26 the CN direct customer has no subscription; give the US one's renewal a look,
    # and a CN customer who bought directly before the cutover: at 2020-08-27 the current bundle
    # refuses its renewal, the proposed one (cutover 2020-08-30) still allows it
    live.clock.set("2020-08-01T10:00:00+08:00")
    early = account(live, "CN", "Early Org")
    assert buy(live, early).status_code == 201
    live.clock.set("2020-08-26T10:00:00+08:00")
    report = (
        live.client("operator")
        .post(
            "/v1/policy/replay",
            json={"yaml": moved(), "days": 1, "at": "2020-08-27T00:00:00+08:00"},
        )
        .json()
    )
    transition = report["transition"]
    kinds = [(i["kind"], i["account"], i["change"]) for i in transition["items"]]
    assert kinds == [("subscription_transfer", early, "allowed")]
    assert transition["counts"]["subscription_transfer"] == {"refused": 0, "allowed": 1}


def test_bad_bundle_text_is_one_line_and_a_422(live):
    r = live.client("operator").post("/v1/policy/replay", json={"yaml": "bundle: [", "days": 1})
    assert r.status_code == 422
    message = r.json()["error"]["message"]
    assert "\n" not in message
    assert message.startswith("<api>:")
    assert (
        live.client("bizconf").post("/v1/policy/replay", json={"yaml": moved()}).status_code == 403
    )


def test_the_cli_replays_a_bundle_file(live, week, tmp_path):
    path = tmp_path / "moved.yaml"
    path.write_text(moved(), encoding="utf-8")
    result = CliRunner().invoke(
        app,
        [
            "policy",
            "replay",
            str(path),
            "--days",
            "7",
            "--database",
            live.runtime.settings.database_url,
            "--clock",
            "2020-08-26T10:00:00+08:00",
        ],
    )
    assert result.exit_code == 0, result.output
    assert re.search(
        r"6 decisions examined, 6 judged again, 1 decided differently, 0 not judged again",
        result.stdout,
    )
    assert f"purchase deny → allow  account {week['cn']}" in result.stdout
    bad = tmp_path / "bad.yaml"
    bad.write_text("bundle: [", encoding="utf-8")
    refused = CliRunner().invoke(
        app, ["policy", "replay", str(bad), "--database", live.runtime.settings.database_url]
    )
    assert refused.exit_code == 2
    assert "Traceback" not in refused.output
