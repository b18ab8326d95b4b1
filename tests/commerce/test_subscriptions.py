"""Checkout through each channel, one subscription at a time, partner-only mainland China."""

from __future__ import annotations

import pytest

from meridian.clock import parse_instant
from meridian.commerce.plans import current_subscription
from meridian.commerce.subscriptions import checkout, choose_partner, take_over
from meridian.errors import ConflictError, DeniedError, ForbiddenError, InputError

from .conftest import BIZCONF, CUTOVER, OPERATOR

pytestmark = pytest.mark.storage


def test_a_us_customer_buys_online_and_the_account_takes_the_plan(shop, clock):
    clock.set("2020-09-01T10:00:00-04:00")
    account = shop.account("US")
    sub, decision = checkout(
        shop.rt, caller=shop.user(account), account_id=account, plan="pro", channel="online"
    )
    assert (sub.channel, sub.partner_id, sub.status, sub.plan) == ("online", None, "active", "pro")
    assert sub.period_end == parse_instant("2020-10-01T10:00:00-04:00")
    assert decision["decision"] == "allow"
    assert sub.bundle_digest == shop.rt.digest
    with shop.rt.db.read() as session:
        assert current_subscription(session, account, clock()).id == sub.id
    (purchase,) = shop.records("subscription.purchase")
    assert purchase.subject_id == account


def test_direct_sales_sell_a_year(shop, clock):
    clock.set("2020-09-01T10:00:00-04:00")
    account = shop.account("US")
    sub, _ = checkout(
        shop.rt, caller=OPERATOR, account_id=account, plan="business", channel="direct", term="year"
    )
    assert (sub.channel, sub.term) == ("direct", "year")
    assert sub.period_end == parse_instant("2021-09-01T10:00:00-04:00")


def test_one_subscription_at_a_time_a_pending_one_included(shop, clock):
    clock.set("2020-09-01T10:00:00Z")
    account = shop.account("US")
    later = parse_instant("2020-10-01T00:00:00Z")
    first, _ = checkout(
        shop.rt, caller=OPERATOR, account_id=account, plan="pro", channel="direct", starts_at=later
    )
    assert first.status == "pending"
    with pytest.raises(ConflictError, match=rf"already has subscription `{first.id}` running"):
        checkout(shop.rt, caller=OPERATOR, account_id=account, plan="business", channel="direct")
    assert [s.id for s in shop.subscriptions(account)] == [first.id]


def test_after_its_period_a_subscription_no_longer_stands_in_the_way(shop, clock):
    clock.set("2020-01-10T10:00:00Z")
    account = shop.account("US")
    checkout(shop.rt, caller=OPERATOR, account_id=account, plan="pro", channel="direct")
    clock.set("2020-03-01T00:00:00Z")  # the month is long over (and nothing renewed it)
    again, _ = checkout(shop.rt, caller=OPERATOR, account_id=account, plan="pro", channel="direct")
    assert len(shop.subscriptions(account)) == 2
    assert again.status == "active"


def test_mainland_china_direct_sales_end_at_midnight_on_23_august_2020_shanghai_time(shop, clock):
    before, after = shop.account(name="Before"), shop.account(name="After", org_id="91330100MA27XL0R42")
    clock.set("2020-08-22T15:59:59Z")  # 23:59:59 in Shanghai
    sub, _ = checkout(shop.rt, caller=OPERATOR, account_id=before, plan="pro", channel="direct")
    assert sub.status == "active"
    clock.set(CUTOVER)
    with pytest.raises(DeniedError, match="direct sales in mainland China ended on 2020-08-23"):
        checkout(shop.rt, caller=OPERATOR, account_id=after, plan="pro", channel="direct")
    assert shop.subscriptions(after) == []
    refused = [r for r in shop.records("subscription.purchase") if r.subject_id == after]
    assert len(refused) == 1  # the refusal is on record, with no subscription


def test_after_the_cutover_an_authorised_partner_sells_in_mainland_china(shop, clock):
    clock.set("2020-09-01T10:00:00+08:00")
    account = shop.account(by=BIZCONF)
    sub, decision = checkout(
        shop.rt, caller=BIZCONF, account_id=account, plan="pro", channel="partner", partner="bizconf"
    )
    assert (sub.channel, sub.partner_id, sub.status) == ("partner", "bizconf", "active")
    assert decision["reasons"][0]["rule"] == "sales-through-authorised-partner"


def test_a_partner_sells_only_through_its_own_channel_and_a_user_not_through_one(shop, clock):
    clock.set("2020-09-01T10:00:00+08:00")
    account = shop.account(by=BIZCONF)
    with pytest.raises(ForbiddenError, match="partner `bizconf` sells only through its own channel"):
        checkout(shop.rt, caller=BIZCONF, account_id=account, plan="pro", channel="direct")
    with pytest.raises(ForbiddenError, match="sells only through its own channel"):
        checkout(
            shop.rt,
            caller=BIZCONF,
            account_id=account,
            plan="pro",
            channel="partner",
            partner="suirui-zhumu",
        )
    with pytest.raises(ForbiddenError, match="a purchase through a partner is made by that partner"):
        checkout(
            shop.rt,
            caller=shop.user(account),
            account_id=account,
            plan="pro",
            channel="partner",
            partner="bizconf",
        )
    assert shop.subscriptions(account) == []


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"term": "week"}, "unknown term `week`: expected `month` or `year`"),
        ({"plan": "free"}, "plan `free` is free: there is nothing to buy"),
        ({"starts_at": parse_instant("2020-01-01T00:00:00Z")}, "is in the past"),
    ],
)
def test_bad_checkouts_are_refused_before_anything_is_written(shop, clock, fields, message):
    clock.set("2020-09-01T10:00:00Z")
    account = shop.account("US")
    body = {"plan": "pro", "channel": "direct", **fields}
    with pytest.raises(InputError, match=message):
        checkout(shop.rt, caller=OPERATOR, account_id=account, **body)
    assert shop.subscriptions(account) == []
    assert shop.records("subscription.purchase") == []


def test_only_a_transfer_required_subscription_moves_to_a_partner(shop, clock):
    clock.set("2020-09-01T10:00:00-04:00")
    account = shop.account("US")
    sub, _ = checkout(shop.rt, caller=OPERATOR, account_id=account, plan="pro", channel="direct")
    with pytest.raises(ConflictError, match=r"is `active`: only a `transfer_required` one moves"):
        choose_partner(shop.rt, caller=shop.user(account), subscription_id=sub.id, partner_id="bizconf")
    with pytest.raises(ForbiddenError, match="only the chosen partner"):
        take_over(shop.rt, caller=shop.user(account), subscription_id=sub.id)
