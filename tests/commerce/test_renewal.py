"""Renewal, judged at the instant each subscription fell due."""

from __future__ import annotations

import pytest

from meridian.clock import parse_instant
from meridian.commerce.renewal import renew_due
from meridian.commerce.subscriptions import checkout, choose_partner, take_over
from meridian.errors import ConflictError, NotFoundError

from .conftest import BIZCONF, OPERATOR

pytestmark = pytest.mark.storage


def test_an_allowed_subscription_renews_once_per_period_missed(shop, clock):
    clock.set("2020-01-31T10:00:00Z")
    account = shop.account("US")
    sub, _ = checkout(
        shop.rt, caller=shop.user(account), account_id=account, plan="pro", channel="online"
    )
    assert sub.period_end == parse_instant("2020-02-29T10:00:00Z")  # 31 January + a month
    summary = renew_due(shop.rt, parse_instant("2020-04-01T00:00:00Z"))
    assert (summary.renewed, summary.transfer_required, summary.ended) == (2, 0, 0)
    assert summary.subscriptions == [sub.id, sub.id]  # once per period
    renewed = shop.subscription(sub.id)
    assert (renewed.status, renewed.id) == ("active", sub.id)
    assert renewed.period_start == parse_instant("2020-03-29T10:00:00Z")
    assert renewed.period_end == parse_instant("2020-04-29T10:00:00Z")
    records = shop.records("subscription.renew")
    assert [r.at.isoformat()[:10] for r in records] == ["2020-02-29", "2020-03-29"]
    # nothing is due now: a second run changes nothing
    again = renew_due(shop.rt, parse_instant("2020-04-01T00:00:00Z"))
    assert (again.renewed, again.subscriptions) == (0, [])


def test_a_pending_subscription_starts_when_due(shop, clock):
    clock.set("2020-01-10T10:00:00Z")
    account = shop.account("US")
    starts = parse_instant("2020-02-01T00:00:00Z")
    sub, _ = checkout(
        shop.rt, caller=OPERATOR, account_id=account, plan="pro", channel="direct", starts_at=starts
    )
    assert renew_due(shop.rt, parse_instant("2020-01-31T23:59:59Z")).started == 0
    summary = renew_due(shop.rt, parse_instant("2020-02-01T00:00:00Z"))
    assert (summary.started, summary.renewed) == (1, 0)
    assert shop.subscription(sub.id).status == "active"


def _direct_in_mainland_china_before_the_cutover(shop, clock):
    clock.set("2020-07-15T10:00:00+08:00")
    account = shop.account(by=OPERATOR)
    sub, _ = checkout(
        shop.rt, caller=OPERATOR, account_id=account, plan="pro", channel="direct", term="year"
    )
    return account, sub


def test_a_direct_mainland_subscription_due_after_the_cutover_must_move_to_a_partner(shop, clock):
    account, sub = _direct_in_mainland_china_before_the_cutover(shop, clock)
    clock.set("2021-07-16T00:00:00Z")
    summary = renew_due(shop.rt, clock())
    assert (summary.renewed, summary.transfer_required) == (0, 1)
    moved = shop.subscription(sub.id)
    assert moved.status == "transfer_required"
    assert moved.period_end == sub.period_end  # paid time is never cut short
    (notice,) = shop.notices(account)
    assert "choose one of" in notice.message
    (renewal,) = shop.records("subscription.renew")
    assert renewal.at == sub.period_end  # judged when it fell due


def test_the_customer_chooses_a_partner_that_then_takes_over(shop, clock):
    account, sub = _direct_in_mainland_china_before_the_cutover(shop, clock)
    clock.set("2021-07-16T00:00:00Z")
    renew_due(shop.rt, clock())
    user = shop.user(account)
    with pytest.raises(NotFoundError):  # bizconf sees nothing until it is chosen
        take_over(shop.rt, caller=BIZCONF, subscription_id=sub.id)
    with pytest.raises(NotFoundError, match="no partner `nobody`"):
        choose_partner(shop.rt, caller=user, subscription_id=sub.id, partner_id="nobody")
    chosen = choose_partner(shop.rt, caller=user, subscription_id=sub.id, partner_id="bizconf")
    assert chosen.chosen_partner_id == "bizconf"
    new, _ = take_over(shop.rt, caller=BIZCONF, subscription_id=sub.id)
    assert (new.channel, new.partner_id, new.replaces_id) == ("partner", "bizconf", sub.id)
    assert shop.subscription(sub.id).status == "transferred"
    with pytest.raises(ConflictError, match="`transferred`, not `transfer_required`"):
        take_over(shop.rt, caller=BIZCONF, subscription_id=sub.id)

