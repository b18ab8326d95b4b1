"""Checkout's rules at the service: one subscription at a time, and the options a buyer has now."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest

from meridian.commerce import checkout as co
from meridian.commerce.subscriptions import checkout
from meridian.errors import ConflictError, DeniedError
from meridian.identity.accounts import register
from meridian.identity.tokens import Caller

pytestmark = pytest.mark.storage

USCC = "91110000600037341L"
CN_IP = "114.114.114.114"


def _cn_customer(rt: Any) -> tuple[Caller, Any]:
    result = register(rt, caller=None, type="organization", name="Harbour", country="CN", org_id=USCC)
    account = result.account
    return Caller("tok_user", "user", account_id=account.id), account


def _options(rt: Any, caller: Caller, account: Any, ip: str | None = CN_IP) -> co.CheckoutOptions:
    with rt.db.read() as session:
        return co.checkout_options(session, rt.engine, caller, account, at=rt.now(), client_ip=ip)


def test_before_the_cutover_a_customer_may_buy_directly_and_online_is_closed(runtime: Any, clock: Any) -> None:
    clock.set("2020-07-01T10:00:00+08:00")
    user, account = _cn_customer(runtime)
    options = _options(runtime, user, account)
    assert options.may_buy
    assert options.why_not is None
    assert options.running is None
    # a user buys directly or online; a purchase through a partner is the partner's to make
    assert [c.id for c in options.channels] == ["direct", "online"]
    direct, online = options.channels
    assert direct.open
    assert direct.partner is None
    assert "pro" in direct.open_plans
    assert not online.open
    assert online.refusal is not None
    assert online.refusal.decision == "deny"
    assert [c.id for c in options.open_channels] == ["direct"]
    # the closed channel's refusal names the partners authorised here
    assert [p.id for p in options.offered] == ["bizconf", "suirui-zhumu", "systec-umeet"]


def test_after_the_cutover_nothing_is_open_and_the_partners_are_offered_with_their_contacts(
    runtime: Any, clock: Any
) -> None:
    clock.set("2020-08-24T10:00:00+08:00")
    user, account = _cn_customer(runtime)
    from meridian.storage.models import Partner

    with runtime.db.write() as session:
        session.get(Partner, "bizconf").contact = "sales@bizconf.example"
    options = _options(runtime, user, account)
    assert not options.may_buy
    assert options.open_channels == ()
    assert options.why_not == f"no channel is open to account `{account.id}` here now: buy through an authorised partner"
    assert options.offered[0].contact == "sales@bizconf.example"
    # and checkout itself refuses, naming the same partners
    with pytest.raises(DeniedError) as refused:
        checkout(runtime, caller=user, account_id=account.id, plan="pro", channel="direct", client_ip=CN_IP)
    assert [p["id"] for p in refused.value.decision.to_dict()["alternatives"]["partners"]] == [p.id for p in options.offered]


def test_one_subscription_at_a_time_holds_the_options_and_checkout_alike(runtime: Any, clock: Any) -> None:
    clock.set("2020-07-01T10:00:00+08:00")
    user, account = _cn_customer(runtime)
    sub, _ = checkout(runtime, caller=user, account_id=account.id, plan="pro", channel="direct", client_ip=CN_IP)
    options = _options(runtime, user, account)
    assert options.running == co.Running(sub.id, "pro", "active", sub.period_end)
    assert not options.may_buy
    assert options.why_not == f"account `{account.id}` already has subscription `{sub.id}` running: one at a time"
    with pytest.raises(ConflictError) as clash:
        checkout(runtime, caller=user, account_id=account.id, plan="business", channel="direct", client_ip=CN_IP)
    assert clash.value.message == options.why_not
    # once its paid time is over it holds nothing
    clock.set(sub.period_end + timedelta(seconds=1))
    assert _options(runtime, user, account).running is None


def test_a_partner_sees_only_its_own_channel() -> None:
    partner = Caller("tok_p", "partner", partner_id="bizconf")
    user = Caller("tok_u", "user", account_id="acct_1")
    from meridian.policy import Engine, load_bundle

    engine = Engine(load_bundle())
    assert co.buyer_channels(engine, partner) == (("partner", "bizconf"),)
    assert ("partner", None) not in co.buyer_channels(engine, user)


@pytest.mark.parametrize(
    ("status", "offset", "holds"),
    [
        ("active", 1, True),
        ("pending", 1, True),
        ("transfer_required", 1, True),
        ("active", 0, False),
        ("transferred", 1, False),
        ("ended", 1, False),
    ],
    ids=["active", "pending", "transfer-required", "ended-just-now", "transferred", "ended"],
)
def test_which_subscriptions_hold_checkout(status: str, offset: int, holds: bool) -> None:
    from datetime import UTC, datetime

    at = datetime(2020, 7, 1, tzinfo=UTC)
    assert co.holds_checkout(status, at + timedelta(seconds=offset), at) is holds


def test_an_account_waiting_for_review_cannot_buy_yet(runtime: Any, clock: Any) -> None:
    clock.set("2020-09-01T10:00:00+08:00")
    result = register(runtime, caller=None, type="organization", name="Fuzhou", country="CN", org_id="91350100M0001TGQXM")
    account = result.account
    user = Caller("tok_u", "user", account_id=account.id)
    options = _options(runtime, user, account)
    assert options.why_not == f"account `{account.id}` is `pending_review`: it cannot buy yet"
    with pytest.raises(ConflictError, match="it cannot buy yet"):
        checkout(runtime, caller=user, account_id=account.id, plan="pro", channel="direct", client_ip=CN_IP)
