"""The replayer on entries made by hand: what it rebuilds, and what it refuses to guess."""

from __future__ import annotations

from datetime import UTC, datetime

import orjson

from meridian.changes.replay import LoggedDecision, Replayer, replay_rows
from meridian.policy.engine import Engine
from meridian.policy.loader import default_bundle_path, load_bundle_text

TEXT = default_bundle_path().read_text(encoding="utf-8")
AT = datetime(2020, 8, 25, 2, tzinfo=UTC)


def entry(action: str, decision: dict, details: dict | None = None) -> bytes:
    return orjson.dumps({"action": action, "decision": decision, "details": details or {}})


def decided(request: dict) -> dict:
    return Engine(load_bundle_text(TEXT, "default.yaml")).decide(request).to_dict()


def replayer(text: str = TEXT, *, bundles: dict | None = None) -> Replayer:
    known = {load_bundle_text(TEXT, "d").digest: TEXT} if bundles is None else bundles
    return Replayer(
        load_bundle_text(text, "proposed.yaml"),
        accounts={"acct_cn": ("organization", "CN", "91110000600037341L")},
        subscriptions={},
        tokens={"tok_user": "acct_cn"},
        bundle_text=known.get,
    )


def row(
    seq: int,
    log_action: str,
    content: bytes,
    *,
    kind="account",
    sid="acct_cn",
    actor="operator:psn_x",
    digest=None,
) -> LoggedDecision:
    digest = digest or load_bundle_text(TEXT, "d").digest
    return LoggedDecision(seq, log_action, kind, sid, actor, digest, content)


PURCHASE = {
    "action": "purchase",
    "at": AT.isoformat(),
    "subject": {
        "type": "organization",
        "country": "CN",
        "plan": "pro",
        "org_id": "91110000600037341L",
    },
    "resource": {"channel": "direct"},
}


def test_a_purchase_is_rebuilt_from_its_entry_and_judged_under_the_moved_cutover() -> None:
    content = entry(
        "subscription.purchase",
        decided(PURCHASE),
        {"plan": "pro", "channel": "direct", "partner": None},
    )
    moved = TEXT.replace("effective: {from: 2020-08-23}", "effective: {from: 2020-08-30}")
    result = replayer(moved).judge(row(1, "subscription.purchase", content))
    assert result["outcome"] == "changed"
    assert (result["before"], result["after"]) == ("deny", "allow")


def test_the_bundle_that_decided_gone_leaves_an_uncounted_signal_unknown() -> None:
    # without the deciding bundle, nobody knows whether the request carried an address
    content = entry(
        "subscription.purchase",
        decided(PURCHASE),
        {"plan": "pro", "channel": "direct", "partner": None},
    )
    result = replayer(bundles={}).judge(row(1, "subscription.purchase", content))
    assert result == {
        "outcome": "not_rejudged",
        "action": "purchase",
        "why": "the proposed bundle counts `ip` for `purchase`, which the entry does not record",
    }


def test_a_users_join_is_not_judged_again_by_a_bundle_that_reads_the_plan_for_joining() -> None:
    join = {
        "action": "join",
        "at": AT.isoformat(),
        "subject": {"type": "organization", "ip": "114.114.114.114"},
    }
    content = entry("meeting.join", decided(join), {"name": "p"})
    reads_plan = TEXT.replace(
        "  - id: cn-free-users-join-only\n",
        "  - id: cn-paid-join-only\n"
        "    description: test\n"
        "    message: paid plans only\n"
        "    effect: forbid\n"
        "    actions: [join]\n"
        "    jurisdictions: [CN]\n"
        "    when: {attribute: subject.plan, in: [free]}\n\n"
        "  - id: cn-free-users-join-only\n",
    )
    user = row(1, "meeting.join", content, kind="meeting", sid="mtg_1", actor="user:tok_user")
    result = replayer(reads_plan).judge(user)
    assert result["outcome"] == "not_rejudged"
    assert (
        result["why"]
        == "the proposed bundle reads `plan` for `join` in CN, which the entry does not record"
    )
    # an anonymous joiner has no plan at all: judged again
    anonymous = row(
        2, "meeting.join", content, kind="meeting", sid="mtg_1", actor="anonymous:114.114.114.114"
    )
    assert replayer(reads_plan).judge(anonymous)["outcome"] == "changed"


def test_nothing_is_skipped_without_a_word() -> None:
    unreadable = row(
        1, "subscription.purchase", b'{"decision": {"action": "purchase"}, "details": {}}'
    )
    unknown = row(2, "meeting.someday", entry("meeting.someday", decided(PURCHASE)))
    plain = row(3, "token.create", b'{"decision": null, "details": {}}')
    report = replay_rows(replayer(), [unreadable, unknown, plain], since=AT, until=AT)
    assert report.examined == 2
    assert report.not_rejudged_count == 2
    whys = [p["why"] for p in report.not_rejudged]
    assert whys[0].startswith("the entry's decision is not readable")
    assert whys[1] == "entries of `meeting.someday` do not say what request was decided"
