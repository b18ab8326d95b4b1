"""Transition planning: who and what a change of the rules at one instant touches.

The report compares decisions one second before the instant with decisions at it, for every
account in the jurisdiction, so it follows whatever the bundle says rather than a list of known
changes:

* ``subscription_transfer`` — a live subscription whose renewal through its channel stops being
  allowed (a direct subscription when the market goes partner-only); it keeps its paid time;
* ``open_checkout`` — a checkout made but not started (``pending``) whose purchase would be
  refused once it starts;
* ``hosting_lost`` — an account without a paid plan that could host before and cannot after.

Dry-run by default; applying marks subscriptions ``transfer_required`` and queues one notice per
item, each change recorded, and is idempotent: an item already marked is reported, not redone.

The work runs in phases, ``examining`` the accounts then (with ``apply``) ``applying`` the
items; a caller that shows progress is told when each starts (``phase(name, total)``) and how far
it is (``progress(done, total)``, every :data:`_PROGRESS_EVERY` accounts and once at the end;
every item applied, each its own transaction).
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import select

from ..audit import Actor, record
from ..errors import RequestError
from ..gate import ask, deny_message
from ..policy.decision import Decision
from ..policy.engine import Engine
from ..runtime import Runtime
from ..storage.models import (
    Account,
    AccountStatus,
    Notice,
    Partner,
    Subscription,
    SubscriptionStatus,
    new_id,
)
from .checkout import account_subject
from .plans import LIVE

__all__ = ["compare_bundles", "plan_transition"]

_SECOND = timedelta(seconds=1)
#: how often (in accounts examined) ``progress`` is called: a batch, not every account
_PROGRESS_EVERY = 64


def _flip(
    engine: Engine, action: str, at: datetime, subject: dict[str, Any], resource: dict[str, Any]
) -> Decision | None:
    """The decision at ``at`` when it refuses what was allowed a second earlier, else ``None``."""
    _, before = ask(engine, action=action, at=at - _SECOND, subject=subject, resource=resource)
    if not before.allowed:
        return None
    _, after = ask(engine, action=action, at=at, subject=subject, resource=resource)
    return None if after.allowed else after


def _item(
    kind: str, account: Account, decision: Decision, contacts: dict[str, str | None], **extra: Any
) -> dict[str, Any]:
    alternatives = decision.alternatives.to_dict()
    for partner in alternatives["partners"]:
        partner["contact"] = partner["contact"] or contacts.get(partner["id"])
    return {
        "kind": kind,
        "account": account.id,
        "account_name": account.name,
        "country": account.country,
        "rules": list(decision.rule_ids),
        "message": deny_message(decision),
        "alternatives": alternatives,
        **extra,
    }


def plan_transition(
    rt: Runtime,
    *,
    jurisdiction: str,
    at: datetime,
    apply: bool = False,
    actor: Actor,
    progress: Callable[[int, int], None] | None = None,
    phase: Callable[[str, int], None] | None = None,
) -> dict[str, Any]:
    """The transition report for ``jurisdiction`` at ``at``; with ``apply``, act on it too.

    ``phase(name, total)`` is called as ``examining`` (``total`` accounts) and ``applying``
    (``total`` items) start, and ``progress(done, total)`` as each goes (see the module's
    docstring).
    """
    engine = rt.engine
    with rt.db.read() as session:
        accounts = list(
            session.scalars(
                select(Account)
                .where(Account.country == jurisdiction, Account.status != AccountStatus.REJECTED)
                .order_by(Account.id)
            )
        )
        subs: dict[str, list[Subscription]] = {}
        for sub in session.scalars(
            select(Subscription)
            .join(Account, Account.id == Subscription.account_id)
            .where(
                Account.country == jurisdiction,
                Subscription.status.in_((*LIVE, "pending")),
                Subscription.period_end > at,
            )
            .order_by(Subscription.id)
        ):
            subs.setdefault(sub.account_id, []).append(sub)
        contacts = {p.id: p.contact for p in session.scalars(select(Partner))}
    items: list[dict[str, Any]] = []
    if phase is not None:
        phase("examining", len(accounts))
    for done, account in enumerate(accounts, start=1):
        paid = False
        for sub in subs.get(account.id, []):
            resource = {"channel": sub.channel, "partner": sub.partner_id}
            subject = account_subject(account, sub.plan, None)
            if sub.status == SubscriptionStatus.PENDING and sub.period_start >= at:
                decision = _flip(engine, "purchase", at, subject, resource)
                kind = "open_checkout"
            else:
                paid = paid or (sub.status == SubscriptionStatus.ACTIVE and sub.period_start <= at)
                decision = _flip(engine, "renew", at, subject, resource)
                kind = "subscription_transfer"
            if decision is not None:
                items.append(
                    _item(
                        kind,
                        account,
                        decision,
                        contacts,
                        subscription=sub.id,
                        plan=sub.plan,
                        channel=sub.channel,
                        status=sub.status,
                        paid_until=sub.period_end.isoformat(),
                        applied=sub.status == SubscriptionStatus.TRANSFER_REQUIRED,
                    )
                )
        if not paid:
            decision = _flip(engine, "host", at, account_subject(account, "free", None), {})
            if decision is not None:
                items.append(_item("hosting_lost", account, decision, contacts, applied=False))
        if progress is not None and (done % _PROGRESS_EVERY == 0 or done == len(accounts)):
            progress(done, len(accounts))
    if apply:
        _apply(rt, items, at, actor, progress, phase)
    kinds = ("subscription_transfer", "open_checkout", "hosting_lost")
    return {
        "jurisdiction": jurisdiction,
        "at": at.isoformat(),
        "bundle": engine.bundle.ref.to_dict(),
        "applied": apply,
        "accounts_examined": len(accounts),
        "counts": {k: sum(1 for i in items if i["kind"] == k) for k in kinds},
        "items": items,
    }


def _decide(
    engine: Engine, action: str, at: datetime, subject: dict[str, Any], resource: dict[str, Any]
) -> Decision | str:
    """The decision, or the catalogue's refusal of the request in words (a plan or partner the
    bundle no longer knows)."""
    try:
        return ask(engine, action=action, at=at, subject=subject, resource=resource)[1]
    except RequestError as exc:
        return exc.message


def _verdict(decision: Decision | str) -> str:
    return "deny" if isinstance(decision, str) else decision.decision


def compare_bundles(
    rt: Runtime, *, current: Engine, proposed: Engine, at: datetime
) -> dict[str, Any]:
    """What changes at ``at`` for the customers of today when ``proposed`` replaces ``current``.

    The transition report generalised to any change: every account (of every jurisdiction) and
    its live or pending subscriptions, each renewal, checkout and free hosting decided at ``at``
    under both bundles; an item for each whose answer differs, ``"change": "refused"`` when the
    proposed bundle refuses what the current one allows and ``"allowed"`` the other way round.
    """
    with rt.db.read() as session:
        accounts = list(
            session.scalars(
                select(Account).where(Account.status != AccountStatus.REJECTED).order_by(Account.id)
            )
        )
        subs: dict[str, list[Subscription]] = {}
        for sub in session.scalars(
            select(Subscription)
            .where(Subscription.status.in_((*LIVE, "pending")), Subscription.period_end > at)
            .order_by(Subscription.id)
        ):
            subs.setdefault(sub.account_id, []).append(sub)
        contacts = {p.id: p.contact for p in session.scalars(select(Partner))}
    items: list[dict[str, Any]] = []

    def compare(
        kind: str,
        account: Account,
        action: str,
        subject: dict[str, Any],
        resource: dict[str, Any],
        **extra: Any,
    ) -> None:
        before = _decide(current, action, at, subject, resource)
        after = _decide(proposed, action, at, subject, resource)
        if _verdict(before) == _verdict(after):
            return
        if isinstance(after, str):  # the proposed catalogue refuses the request itself
            item: dict[str, Any] = {
                "kind": kind,
                "account": account.id,
                "account_name": account.name,
                "country": account.country,
                "rules": [],
                "message": after,
                "alternatives": {"partners": []},
                **extra,
            }
        elif after.allowed:
            item = _item(kind, account, after, contacts, **extra)
            item["message"] = "allowed under the proposed bundle"
        else:
            item = _item(kind, account, after, contacts, **extra)
        item["change"] = "refused" if _verdict(after) == "deny" else "allowed"
        items.append(item)

    for account in accounts:
        paid = False
        for sub in subs.get(account.id, []):
            resource = {"channel": sub.channel, "partner": sub.partner_id}
            subject = account_subject(account, sub.plan, None)
            extra = {
                "subscription": sub.id,
                "plan": sub.plan,
                "channel": sub.channel,
                "status": sub.status,
                "paid_until": sub.period_end.isoformat(),
            }
            if sub.status == SubscriptionStatus.PENDING and sub.period_start >= at:
                compare("open_checkout", account, "purchase", subject, resource, **extra)
            else:
                paid = paid or (sub.status == SubscriptionStatus.ACTIVE and sub.period_start <= at)
                compare("subscription_transfer", account, "renew", subject, resource, **extra)
        if not paid:
            compare("hosting_lost", account, "host", account_subject(account, "free", None), {})
    kinds = ("subscription_transfer", "open_checkout", "hosting_lost")
    return {
        "at": at.isoformat(),
        "current": current.bundle.ref.to_dict(),
        "proposed": proposed.bundle.ref.to_dict(),
        "accounts_examined": len(accounts),
        "counts": {
            k: {
                c: sum(1 for i in items if i["kind"] == k and i["change"] == c)
                for c in ("refused", "allowed")
            }
            for k in kinds
        },
        "items": items,
    }


def _apply(
    rt: Runtime,
    items: list[dict[str, Any]],
    at: datetime,
    actor: Actor,
    progress: Callable[[int, int], None] | None,
    phase: Callable[[str, int], None] | None,
) -> None:
    now = rt.now()
    todo = [item for item in items if not item["applied"]]
    if phase is not None:
        phase("applying", len(todo))
    for done, item in enumerate(todo, start=1):
        _apply_one(rt, item, at, actor, now)
        if progress is not None:
            progress(done, len(todo))


def _apply_one(
    rt: Runtime, item: dict[str, Any], at: datetime, actor: Actor, now: datetime
) -> None:
    """Act on one item in its own transaction (nothing if it was acted on already)."""
    with rt.db.write() as session:
        if item["kind"] == "hosting_lost":
            already = session.scalars(
                select(Notice.id).where(
                    Notice.account_id == item["account"],
                    Notice.kind == "transition.hosting_lost",
                    Notice.subject_id == at.isoformat()[:40],
                )
            ).first()
            if already is not None:
                return
            subject_id, subject_kind = item["account"], "account"
            text = f"from {at.isoformat()}: {item['message']}"
            notice_subject = at.isoformat()[:40]
        else:
            sub = session.scalars(
                select(Subscription)
                .where(Subscription.id == item["subscription"])
                .with_for_update()
            ).one()
            if sub.status == SubscriptionStatus.TRANSFER_REQUIRED:
                return
            sub.status = SubscriptionStatus.TRANSFER_REQUIRED
            sub.updated_at = now
            subject_id, subject_kind = sub.id, "subscription"
            names = ", ".join(p["name"] for p in item["alternatives"]["partners"])
            text = (
                f"from {at.isoformat()}: {item['message']}. Subscription `{sub.id}` stays paid "
                f"until {sub.period_end.date().isoformat()}"
                + (f"; choose one of {names} to take it over" if names else "")
            )
            notice_subject = sub.id
        session.add(
            Notice(
                id=new_id("ntc"),
                account_id=item["account"],
                kind=f"transition.{item['kind']}",
                message=text,
                subject_id=notice_subject,
                created_at=now,
                sent_at=None,
            )
        )
        record(
            session,
            actor=actor,
            action=f"transition.{item['kind']}",
            subject_kind=subject_kind,
            subject_id=subject_id,
            at=at,
            bundle_digest=rt.digest,
            details={"rules": item["rules"]},
        )
        item["applied"] = True
