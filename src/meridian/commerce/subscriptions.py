"""Checkout, the subscriptions it makes, and the move of a subscription to a partner.

Who sees which subscription (enforced here)::

    operator   every subscription
    partner    those it sells, and those whose customer chose it to take them over
    user       its own account's

Anything outside the caller's reach is not found (404), never forbidden.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import ColumnElement, or_, select, true
from sqlalchemy.orm import Session

from ..audit import Actor, record
from ..errors import (
    ConflictError,
    DeniedError,
    ForbiddenError,
    InputError,
    NotFoundError,
    shown,
)
from ..gate import ask, deny_message, public_decision, with_contacts
from ..identity.accounts import get_account
from ..identity.tokens import Caller
from ..policy.decision import Decision
from ..policy.request import epoch_seconds
from ..runtime import Runtime
from ..storage.models import (
    Account,
    Notice,
    Subscription,
    SubscriptionStatus,
    new_id,
)
from ..storage.paging import page
from .checkout import account_subject, cannot_buy_yet, one_at_a_time, running_subscription
from .terms import TERMS, add_term

__all__ = [
    "checkout",
    "choose_partner",
    "get_subscription",
    "list_subscriptions",
    "subscription_filter",
    "take_over",
]


def subscription_filter(caller: Caller) -> ColumnElement[bool]:
    """The SQL condition for the subscriptions ``caller`` may see."""
    if caller.role == "operator":
        return true()
    if caller.role == "partner":
        return or_(
            Subscription.partner_id == caller.partner_id,
            Subscription.chosen_partner_id == caller.partner_id,
        )
    return Subscription.account_id == caller.account_id


def get_subscription(session: Session, caller: Caller, subscription_id: str) -> Subscription:
    row = session.scalars(
        select(Subscription).where(Subscription.id == subscription_id, subscription_filter(caller))
    ).first()
    if row is None:
        raise NotFoundError(f"no subscription `{shown(subscription_id)}`")
    return row


def list_subscriptions(
    session: Session,
    caller: Caller,
    *,
    account_id: str | None = None,
    status: str | None = None,
    limit: int = 50,
    offset: int = 0,
) -> tuple[list[Subscription], int]:
    where = [subscription_filter(caller)]
    if account_id:
        where.append(Subscription.account_id == account_id)
    if status:
        where.append(Subscription.status == status)
    return page(
        session,
        Subscription,
        where,
        (Subscription.created_at.desc(), Subscription.id),
        limit=limit,
        offset=offset,
    )


def _open(
    session: Session,
    *,
    actor: Actor,
    decision: Decision,
    at: datetime,
    account_id: str,
    plan: str,
    channel: str,
    partner_id: str | None,
    term: str,
    start: datetime,
    end: datetime,
    replaces_id: str | None = None,
) -> Subscription:
    """Add a subscription (``pending`` until ``start``) and the record of its creation."""
    sub = Subscription(
        id=new_id("sub"),
        account_id=account_id,
        plan=plan,
        channel=channel,
        partner_id=partner_id,
        status=SubscriptionStatus.PENDING if start > at else SubscriptionStatus.ACTIVE,
        term=term,
        period_start=start,
        period_end=end,
        chosen_partner_id=None,
        replaces_id=replaces_id,
        bundle_digest=decision.bundle.digest,
        created_at=at,
        updated_at=at,
    )
    session.add(sub)
    session.flush()
    record(
        session,
        actor=actor,
        action="subscription.create",
        subject_kind="subscription",
        subject_id=sub.id,
        at=at,
        bundle_digest=decision.bundle.digest,
        details={
            "account": account_id,
            "status": sub.status,
            "period_start": start.isoformat(),
            "period_end": end.isoformat(),
            "replaces": replaces_id,
        },
    )
    return sub


def checkout(
    rt: Runtime,
    *,
    caller: Caller,
    account_id: str,
    plan: str,
    channel: str,
    partner: str | None = None,
    term: str = "month",
    starts_at: datetime | None = None,
    client_ip: str | None = None,
) -> tuple[Subscription, dict[str, Any]]:
    """Buy ``plan`` for an account through ``channel`` if the ``purchase`` decision allows it.

    Returns the new subscription and the decision. A refusal is recorded and raised as
    :class:`DeniedError` carrying the decision, whose alternatives name the partners to buy from.
    """
    if term not in TERMS:
        raise InputError(f"unknown term `{shown(term)}`: expected `month` or `year`")
    if caller.role == "partner":
        if channel != "partner" or partner != caller.partner_id:
            raise ForbiddenError(
                f"partner `{caller.partner_id}` sells only through its own channel: use `channel: partner`, `partner: {caller.partner_id}`"
            )
    elif caller.role == "user" and channel == "partner":
        raise ForbiddenError(
            "a purchase through a partner is made by that partner: ask it to sell you the plan"
        )
    at = rt.now()
    start = at if starts_at is None else starts_at
    if start < at:
        raise InputError(f"`starts_at` `{start.isoformat()}` is in the past")
    engine = rt.engine
    spec = engine.bundle.document.plans.get(plan)
    if spec is not None and not spec.paid:
        raise InputError(f"plan `{shown(plan)}` is free: there is nothing to buy")
    with rt.db.read() as session:
        account = get_account(session, caller, account_id)
    inactive = cannot_buy_yet(account)
    if inactive is not None:
        raise ConflictError(inactive)
    ip = client_ip if caller.role == "user" else None
    _, decision = ask(
        engine,
        action="purchase",
        at=at,
        subject=account_subject(account, plan, ip),
        resource={"channel": channel, "partner": partner},
    )
    refusal = None
    with rt.db.write() as session:
        # Lock the account first: two checkouts for one account then run one after the other,
        # and the second sees the first's subscription (PostgreSQL; SQLite's BEGIN IMMEDIATE
        # already serialises writers). test_crash.py caught two live subscriptions without it.
        session.get(Account, account.id, with_for_update=True)
        running = running_subscription(session, account.id, at)
        if running is not None:
            raise ConflictError(one_at_a_time(account.id, running))
        record(
            session,
            actor=caller.actor,
            action="subscription.purchase",
            subject_kind="account",
            subject_id=account.id,
            at=at,
            bundle_digest=decision.bundle.digest,
            decision=decision,
            details={"plan": plan, "channel": channel, "partner": partner, "term": term},
        )
        if not decision.allowed:
            refusal = with_contacts(session, decision)
        else:
            sub = _open(
                session,
                actor=caller.actor,
                decision=decision,
                at=at,
                account_id=account.id,
                plan=plan,
                channel=channel,
                partner_id=partner if channel == "partner" else None,
                term=term,
                start=start,
                end=add_term(start, term),
            )
            stored = session.get(Account, account.id)
            assert stored is not None
            stored.plan = plan
            stored.updated_at = at
            public = public_decision(session, decision)
    if refusal is not None:
        raise DeniedError(deny_message(decision), refusal)
    return sub, public


def choose_partner(
    rt: Runtime, *, caller: Caller, subscription_id: str, partner_id: str
) -> Subscription:
    """The customer picks the partner that is to take over a ``transfer_required`` subscription."""
    if caller.role == "partner":
        raise ForbiddenError("the customer chooses the partner, not a partner")
    at = rt.now()
    engine = rt.engine
    with rt.db.write() as session:
        sub = get_subscription(session, caller, subscription_id)
        if sub.status != SubscriptionStatus.TRANSFER_REQUIRED:
            raise ConflictError(
                f"subscription `{sub.id}` is `{sub.status}`: only a `transfer_required` one moves to a partner"
            )
        account = session.get(Account, sub.account_id)
        assert account is not None
        if partner_id not in engine.bundle.partners:
            raise NotFoundError(f"no partner `{shown(partner_id)}`")
        if not engine.bundle.is_authorised(partner_id, account.country, epoch_seconds(at)):
            names = ", ".join(
                f"`{p.id}`"
                for p in engine.bundle.authorised_partners(account.country, epoch_seconds(at))
            )
            raise InputError(
                f"partner `{shown(partner_id)}` is not authorised in `{account.country}`"
                + (f": choose one of {names}" if names else "")
            )
        sub.chosen_partner_id = partner_id
        sub.updated_at = at
        record(
            session,
            actor=caller.actor,
            action="subscription.choose_partner",
            subject_kind="subscription",
            subject_id=sub.id,
            at=at,
            bundle_digest=rt.digest,
            details={"partner": partner_id},
        )
    return sub


def take_over(
    rt: Runtime, *, caller: Caller, subscription_id: str
) -> tuple[Subscription, dict[str, Any]]:
    """A partner takes over a subscription its customer chose it for, keeping the paid time.

    The new subscription runs to the old one's ``period_end`` (never shorter); the old one becomes
    ``transferred``. The ``purchase`` decision through the partner's channel must allow it.
    """
    if caller.role != "partner":
        raise ForbiddenError("only the chosen partner can take over a subscription")
    at = rt.now()
    engine = rt.engine
    with rt.db.read() as session:
        sub = get_subscription(session, caller, subscription_id)
        if sub.chosen_partner_id != caller.partner_id:
            raise NotFoundError(f"no subscription `{shown(subscription_id)}`")
        account = session.get(Account, sub.account_id)
        assert account is not None
    if sub.status != SubscriptionStatus.TRANSFER_REQUIRED:
        raise ConflictError(f"subscription `{sub.id}` is `{sub.status}`, not `transfer_required`")
    _, decision = ask(
        engine,
        action="purchase",
        at=at,
        subject=account_subject(account, sub.plan, None),
        resource={"channel": "partner", "partner": caller.partner_id},
    )
    refusal = None
    with rt.db.write() as session:
        old = session.scalars(
            select(Subscription).where(Subscription.id == sub.id).with_for_update()
        ).one()
        if old.status != SubscriptionStatus.TRANSFER_REQUIRED:  # taken over meanwhile
            raise ConflictError(
                f"subscription `{old.id}` is `{old.status}`, not `transfer_required`"
            )
        record(
            session,
            actor=caller.actor,
            action="subscription.take_over",
            subject_kind="subscription",
            subject_id=old.id,
            at=at,
            bundle_digest=decision.bundle.digest,
            decision=decision,
            details={"partner": caller.partner_id},
        )
        if not decision.allowed:
            refusal = with_contacts(session, decision)
        else:
            new = _open(
                session,
                actor=caller.actor,
                decision=decision,
                at=at,
                account_id=old.account_id,
                plan=old.plan,
                channel="partner",
                partner_id=caller.partner_id,
                term=old.term,
                start=at,
                end=max(old.period_end, at),
                replaces_id=old.id,
            )
            old.status = SubscriptionStatus.TRANSFERRED
            old.updated_at = at
            stored = session.get(Account, old.account_id)
            assert stored is not None
            stored.partner_id = caller.partner_id
            stored.updated_at = at
            session.add(
                Notice(
                    id=new_id("ntc"),
                    account_id=old.account_id,
                    kind="subscription.transferred",
                    message=f"your subscription `{old.id}` is now served by partner `{caller.partner_id}` as `{new.id}`, paid until {new.period_end.date().isoformat()}",
                    subject_id=new.id,
                    created_at=at,
                    sent_at=None,
                )
            )
            public = public_decision(session, decision)
    if refusal is not None:
        raise DeniedError(deny_message(decision), refusal)
    return new, public
