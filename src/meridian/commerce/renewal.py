"""Renewal: every subscription due at an instant goes through the ``renew`` decision.

A subscription is due when its period has ended (``period_end <= at``). It is judged at the instant
it fell due, not at the instant the job runs, so a late run decides what a punctual one would
have. Allowed: a new period starts where the old one ended. Refused: the subscription becomes
``transfer_required`` when partners are offered (a market gone partner-only), else ``ended``; its
paid period is never shortened either way, and the account holder gets a notice. A
``transfer_required`` subscription waits for its customer to choose a partner, however long that
takes; it simply stops entitling anything once its paid period is over.

Each subscription is renewed in its own transaction, under a row lock, so two runners (the job
inside the service and ``meridian commerce renew``) never renew one twice.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime

from sqlalchemy import select

from ..audit import SYSTEM, Actor, record
from ..gate import ask, deny_message
from ..runtime import Runtime
from ..storage.models import Account, Notice, Subscription, SubscriptionStatus, new_id
from .terms import add_term

__all__ = ["RenewalSummary", "renew_due"]

#: renewals of one subscription in one run at most (a run years late stops there, and resumes)
_MAX_PERIODS = 240


@dataclass
class RenewalSummary:
    """What one run did."""

    at: datetime
    renewed: int = 0
    started: int = 0
    transfer_required: int = 0
    ended: int = 0
    subscriptions: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, object]:
        return {
            "at": self.at.isoformat(),
            "renewed": self.renewed,
            "started": self.started,
            "transfer_required": self.transfer_required,
            "ended": self.ended,
            "subscriptions": self.subscriptions,
        }


def _due(rt: Runtime, at: datetime) -> list[str]:
    with rt.db.read() as session:
        return list(
            session.scalars(
                select(Subscription.id)
                .where(
                    (
                        (Subscription.status == SubscriptionStatus.ACTIVE)
                        & (Subscription.period_end <= at)
                    )
                    | (
                        (Subscription.status == SubscriptionStatus.PENDING)
                        & (Subscription.period_start <= at)
                    )
                )
                .order_by(Subscription.period_end, Subscription.id)
            )
        )


def renew_due(
    rt: Runtime,
    at: datetime,
    *,
    actor: Actor = SYSTEM,
    progress: Callable[[int, int], None] | None = None,
) -> RenewalSummary:
    """Renew (or move, or end) every subscription due at ``at``."""
    summary = RenewalSummary(at)
    due = _due(rt, at)
    for done, sub_id in enumerate(due, start=1):
        _renew_one(rt, sub_id, at, actor, summary)
        if progress is not None:
            progress(done, len(due))
    return summary


def _renew_one(
    rt: Runtime, sub_id: str, at: datetime, actor: Actor, summary: RenewalSummary
) -> None:
    engine = rt.engine
    with rt.db.write() as session:
        sub = session.scalars(
            select(Subscription).where(Subscription.id == sub_id).with_for_update()
        ).one()
        account = session.get(Account, sub.account_id)
        assert account is not None  # INVARIANT: a foreign key
        if sub.status == SubscriptionStatus.PENDING:
            if sub.period_start > at:
                return
            sub.status = SubscriptionStatus.ACTIVE
            sub.updated_at = at
            summary.started += 1
            summary.subscriptions.append(sub.id)
            record(
                session,
                actor=actor,
                action="subscription.start",
                subject_kind="subscription",
                subject_id=sub.id,
                at=sub.period_start,
                bundle_digest=engine.bundle.ref.digest,
            )
        for _ in range(_MAX_PERIODS):
            if sub.status != SubscriptionStatus.ACTIVE or sub.period_end > at:
                return
            due_at = sub.period_end
            _, decision = ask(
                engine,
                action="renew",
                at=due_at,
                subject={
                    "type": account.type,
                    "id": account.id,
                    "country": account.country,
                    "plan": sub.plan,
                    "org_id": account.org_id,
                },
                resource={"channel": sub.channel, "partner": sub.partner_id},
            )
            record(
                session,
                actor=actor,
                action="subscription.renew",
                subject_kind="subscription",
                subject_id=sub.id,
                at=due_at,
                bundle_digest=decision.bundle.digest,
                decision=decision,
            )
            if decision.allowed:
                sub.period_start, sub.period_end = due_at, add_term(due_at, sub.term)
                sub.updated_at = at
                summary.renewed += 1
                summary.subscriptions.append(sub.id)
                continue
            moved = bool(decision.alternatives.partners)
            sub.status = SubscriptionStatus.TRANSFER_REQUIRED if moved else SubscriptionStatus.ENDED
            sub.updated_at = at
            if moved:
                summary.transfer_required += 1
                names = ", ".join(p.name for p in decision.alternatives.partners)
                text = f"{deny_message(decision)}. Your paid time is kept: choose one of {names} to take over subscription `{sub.id}`."
            else:
                summary.ended += 1
                text = f"{deny_message(decision)}. Subscription `{sub.id}` was not renewed."
            summary.subscriptions.append(sub.id)
            session.add(
                Notice(
                    id=new_id("ntc"),
                    account_id=account.id,
                    kind="subscription.renewal_refused",
                    message=text,
                    subject_id=sub.id,
                    created_at=at,
                    sent_at=None,
                )
            )
            return
