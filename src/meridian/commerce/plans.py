"""Plans and what they entitle an account to, from the bundle in force."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from ..gate import ask
from ..policy.engine import Engine
from ..storage.models import Account, AccountStatus, Subscription, SubscriptionStatus

__all__ = ["LIVE", "current_subscription", "entitlements", "plan_catalogue"]

#: subscription states in which paid time still runs until ``period_end``
LIVE = (SubscriptionStatus.ACTIVE, SubscriptionStatus.TRANSFER_REQUIRED)


def plan_catalogue(engine: Engine) -> list[dict[str, Any]]:
    """Every plan in the bundle in force with its entitlements."""
    return [
        {
            "id": pid,
            "name": plan.name,
            "paid": plan.paid,
            "may_host": plan.may_host,
            "max_participants": plan.max_participants,
            "meeting_minutes": plan.meeting_minutes,
        }
        for pid, plan in engine.bundle.document.plans.items()
    ]


def current_subscription(session: Session, account_id: str, at: datetime) -> Subscription | None:
    """The subscription whose paid time covers ``at``, if any."""
    return session.scalars(
        select(Subscription)
        .where(
            Subscription.account_id == account_id,
            Subscription.status.in_(LIVE),
            Subscription.period_start <= at,
            Subscription.period_end > at,
        )
        .order_by(Subscription.period_end.desc())
    ).first()


def entitlements(
    session: Session, engine: Engine, account: Account, at: datetime
) -> dict[str, Any]:
    """What ``account`` may do at ``at``: its plan's limits, and whether it may host, and why."""
    sub = current_subscription(session, account.id, at)
    plan_id = sub.plan if sub is not None else "free"
    plan = engine.bundle.document.plans.get(plan_id)
    _, decision = ask(
        engine,
        action="host",
        at=at,
        subject={
            "type": account.type,
            "id": account.id,
            "country": account.country,
            "plan": plan_id,
            "org_id": account.org_id,
        },
    )
    # A plan the bundle no longer lists entitles to nothing (fail closed).
    may_host = (
        plan is not None
        and plan.may_host
        and decision.allowed
        and account.status == AccountStatus.ACTIVE
    )
    return {
        "account": account.id,
        "at": decision.to_dict()["at"],
        "plan": plan_id,
        "subscription": None if sub is None else sub.id,
        "may_host": may_host,
        "may_join": account.status != AccountStatus.SUSPENDED,
        "max_participants": 0 if plan is None else plan.max_participants,
        "meeting_minutes": 0 if plan is None else plan.meeting_minutes,
        "host_decision": decision.to_dict(),
    }
