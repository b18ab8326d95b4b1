"""What a buyer may buy now: checkout's one-subscription-at-a-time rule and the options it leaves.

:func:`checkout_options` is the what-if a buyer sees before paying: for every channel the caller
may use and every paid plan it runs the ``purchase`` decision checkout will run (nothing is
recorded), gathers the partners the refusals name, and says whether the account may buy now and,
if not, why. :func:`running_subscription` is the one-at-a-time rule itself, which
:func:`meridian.commerce.subscriptions.checkout` applies under the account's lock.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import ColumnElement, select
from sqlalchemy.orm import Session

from ..gate import ask
from ..identity.tokens import Caller
from ..policy.decision import Decision, PartnerRef
from ..policy.engine import Engine
from ..storage.models import Account, AccountStatus, Partner, Subscription, SubscriptionStatus
from .plans import LIVE

__all__ = [
    "HOLDS_CHECKOUT",
    "ChannelOption",
    "CheckoutOptions",
    "Running",
    "account_subject",
    "buyer_channels",
    "cannot_buy_yet",
    "checkout_options",
    "holds_checkout",
    "one_at_a_time",
    "purchase_preview",
    "running_subscription",
]

#: subscription states that keep checkout from starting another until their ``period_end``
HOLDS_CHECKOUT = (*LIVE, SubscriptionStatus.PENDING)


def holds_checkout(status: str, period_end: datetime, at: datetime) -> bool:
    """Whether a subscription in ``status`` until ``period_end`` keeps checkout closed at ``at``."""
    return status in HOLDS_CHECKOUT and period_end > at


def _holding(account_id: str, at: datetime) -> ColumnElement[bool]:
    """:func:`holds_checkout` as SQL, for one account's subscriptions."""
    return (
        (Subscription.account_id == account_id)
        & Subscription.status.in_(HOLDS_CHECKOUT)
        & (Subscription.period_end > at)
    )


@dataclass(frozen=True, slots=True)
class Running:
    """The subscription that keeps an account from buying another."""

    id: str
    plan: str
    status: str
    period_end: datetime


def running_subscription(session: Session, account_id: str, at: datetime) -> Running | None:
    """The account's newest subscription that holds checkout at ``at``: one at a time."""
    row = session.execute(
        select(Subscription.id, Subscription.plan, Subscription.status, Subscription.period_end)
        .where(_holding(account_id, at))
        .order_by(Subscription.created_at.desc(), Subscription.id)
    ).first()
    return None if row is None else Running(*row)


def one_at_a_time(account_id: str, running: Running) -> str:
    """The one line that refuses a second running subscription."""
    return f"account `{account_id}` already has subscription `{running.id}` running: one at a time"


def cannot_buy_yet(account: Account) -> str | None:
    """Why ``account`` cannot buy at all yet (it is not active), or ``None``."""
    if account.status != AccountStatus.ACTIVE:
        return f"account `{account.id}` is `{account.status}`: it cannot buy yet"
    return None


def account_subject(account: Account, plan: str, ip: str | None) -> dict[str, Any]:
    """``account`` on ``plan`` as a subject: for ``purchase`` and ``renew``, and for ``host`` on the
    free plan (the transition report asks all three)."""
    return {
        "type": account.type,
        "id": account.id,
        "country": account.country,
        "plan": plan,
        "org_id": account.org_id,
        "ip": ip,
    }


def buyer_channels(engine: Engine, caller: Caller) -> tuple[tuple[str, str | None], ...]:
    """The (channel, partner) pairs ``caller`` may buy through.

    A partner sells only through its own channel; anyone else buys directly or online, and a
    purchase through a partner is made by that partner.
    """
    if caller.role == "partner":
        return (("partner", caller.partner_id),)
    return tuple((c, None) for c in engine.bundle.document.channels if c != "partner")


@dataclass(frozen=True, slots=True)
class ChannelOption:
    """One sales channel as a buyer sees it now: open for which plans, or why it is closed."""

    id: str
    name: str
    description: str | None
    partner: str | None
    open_plans: tuple[str, ...]
    #: the first refusal when a plan is refused through this channel
    refusal: Decision | None

    @property
    def open(self) -> bool:
        return bool(self.open_plans)


def purchase_preview(
    engine: Engine,
    account: Account,
    channels: Sequence[tuple[str, str | None]],
    *,
    at: datetime,
    ip: str | None,
) -> tuple[ChannelOption, ...]:
    """The ``purchase`` decision at ``at`` for each (channel, partner) and each paid plan.

    The subject is built as checkout builds it, so the preview and the purchase agree; nothing is
    recorded (the purchase records its own decision).
    """
    doc = engine.bundle.document
    paid = [pid for pid, plan in doc.plans.items() if plan.paid]
    out = []
    for channel, partner in channels:
        spec = doc.channels.get(channel)
        allowed: list[str] = []
        refusal: Decision | None = None
        for plan in paid:
            _, decision = ask(
                engine,
                action="purchase",
                at=at,
                subject=account_subject(account, plan, ip),
                resource={"channel": channel, "partner": partner},
            )
            if decision.allowed:
                allowed.append(plan)
            elif refusal is None:
                refusal = decision
        out.append(
            ChannelOption(
                id=channel,
                name=spec.name if spec is not None else channel,
                description=spec.description if spec is not None else None,
                partner=partner,
                open_plans=tuple(allowed),
                refusal=refusal,
            )
        )
    return tuple(out)


@dataclass(frozen=True, slots=True)
class CheckoutOptions:
    """What an account may buy now, through which channel, and if it may not, why."""

    channels: tuple[ChannelOption, ...]
    #: the partners the closed channels' refusals name, each with the contact to reach it
    offered: tuple[PartnerRef, ...]
    running: Running | None
    #: one line saying why the account may not buy now; ``None`` when it may
    why_not: str | None

    @property
    def open_channels(self) -> tuple[ChannelOption, ...]:
        return tuple(c for c in self.channels if c.open)

    @property
    def may_buy(self) -> bool:
        return self.why_not is None


def checkout_options(
    session: Session,
    engine: Engine,
    caller: Caller,
    account: Account,
    *,
    at: datetime,
    client_ip: str | None = None,
) -> CheckoutOptions:
    """The checkout options ``caller`` has for ``account`` at ``at`` (a what-if: nothing recorded).

    ``client_ip`` counts as evidence only for a user buying for itself, as in checkout. The
    account may buy when it is active, no subscription holds checkout (one at a time) and some
    channel is open for some plan.
    """
    ip = client_ip if caller.role == "user" else None
    channels = purchase_preview(engine, account, buyer_channels(engine, caller), at=at, ip=ip)
    named: dict[str, PartnerRef] = {}
    for option in channels:
        if option.refusal is not None:
            for p in option.refusal.alternatives.partners:
                named.setdefault(p.id, p)
    if named:
        rows = session.execute(
            select(Partner.id, Partner.contact).where(Partner.id.in_(list(named)))
        )
        contacts = {pid: contact for pid, contact in rows}
        named = {
            pid: p._replace(contact=p.contact or contacts.get(pid)) for pid, p in named.items()
        }
    running = running_subscription(session, account.id, at)
    why_not = cannot_buy_yet(account)
    if why_not is None and running is not None:
        why_not = one_at_a_time(account.id, running)
    if why_not is None and not any(c.open for c in channels):
        why_not = f"no channel is open to account `{account.id}` here now" + (
            ": buy through an authorised partner" if named else ""
        )
    return CheckoutOptions(
        channels=channels, offered=tuple(named.values()), running=running, why_not=why_not
    )
