"""The transition report for mainland China's move to partner-only sales on 23 August 2020."""

from __future__ import annotations

import pytest

from meridian.audit import Actor
from meridian.clock import parse_instant
from meridian.commerce.subscriptions import checkout
from meridian.commerce.transition import plan_transition

from .conftest import BIZCONF, CUTOVER, OPERATOR, OTHER_USCC, uscc

pytestmark = pytest.mark.storage

ACTOR = Actor("operator", "test")


@pytest.fixture
def market(shop, clock):
    """Before the cutover: a direct customer, a partner's customer, an open direct checkout that
    starts after the cutover, and a free account; a US direct customer beside them."""
    clock.set("2020-08-01T10:00:00+08:00")
    direct = shop.account(name="Direct")
    partnered = shop.account(name="Partnered", org_id=OTHER_USCC, by=BIZCONF)
    waiting = shop.account(name="Waiting", org_id=uscc("91110108MA01ABCD5"))
    free = shop.account(name="Free", org_id=uscc("91440300MA5FABCD1"))
    us = shop.account("US", name="US")
    subs = {
        "direct": checkout(shop.rt, caller=OPERATOR, account_id=direct, plan="pro", channel="direct")[0],
        "partnered": checkout(
            shop.rt,
            caller=BIZCONF,
            account_id=partnered,
            plan="pro",
            channel="partner",
            partner="bizconf",
        )[0],
        "waiting": checkout(
            shop.rt,
            caller=OPERATOR,
            account_id=waiting,
            plan="pro",
            channel="direct",
            starts_at=parse_instant("2020-09-01T00:00:00+08:00"),
        )[0],
        "us": checkout(shop.rt, caller=OPERATOR, account_id=us, plan="pro", channel="direct")[0],
    }
    return {"free": free, **subs}


def test_the_dry_run_lists_what_the_cutover_touches_and_changes_nothing(shop, market):
    report = plan_transition(shop.rt, jurisdiction="CN", at=parse_instant(CUTOVER), actor=ACTOR)
    assert report["applied"] is False
    assert report["accounts_examined"] == 4  # mainland China's accounts only
    kinds = {item.get("subscription"): item["kind"] for item in report["items"]}
    assert kinds == {
        market["direct"].id: "subscription_transfer",
        market["waiting"].id: "open_checkout",
    }
    assert report["counts"] == {"subscription_transfer": 1, "open_checkout": 1, "hosting_lost": 0}
    direct = next(i for i in report["items"] if i["kind"] == "subscription_transfer")
    partners = [p["id"] for p in direct["alternatives"]["partners"]]
    assert partners == ["bizconf", "suirui-zhumu", "systec-umeet"]
    assert shop.subscription(market["direct"].id).status == "active"
    assert shop.notices(market["direct"].account_id) == []


def test_applying_marks_the_direct_subscription_keeps_its_time_and_is_idempotent(shop, market):
    at = parse_instant(CUTOVER)
    report = plan_transition(shop.rt, jurisdiction="CN", at=at, apply=True, actor=ACTOR)
    assert report["applied"] is True
    moved = shop.subscription(market["direct"].id)
    assert moved.status == "transfer_required"
    assert moved.period_end == market["direct"].period_end
    assert shop.subscription(market["partnered"].id).status == "active"
    assert shop.subscription(market["us"].id).status == "active"
    (notice,) = shop.notices(market["direct"].account_id)
    assert notice.kind == "transition.subscription_transfer"
    assert "choose one of" in notice.message
    again = plan_transition(shop.rt, jurisdiction="CN", at=at, apply=True, actor=ACTOR)
    transfer = next(i for i in again["items"] if i["kind"] == "subscription_transfer")
    assert transfer["applied"] is True  # reported, not redone
    assert len(shop.notices(market["direct"].account_id)) == 1
    assert len(shop.records("transition.subscription_transfer")) == 1


def test_a_day_before_the_cutover_nothing_flips(shop, market):
    report = plan_transition(
        shop.rt, jurisdiction="CN", at=parse_instant("2020-08-22T00:00:00+08:00"), actor=ACTOR
    )
    assert report["items"] == []


def test_the_us_is_not_touched_by_mainland_chinas_rules(shop, market):
    report = plan_transition(shop.rt, jurisdiction="US", at=parse_instant(CUTOVER), actor=ACTOR)
    assert (report["accounts_examined"], report["items"]) == (1, [])
