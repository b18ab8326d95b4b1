"""Plans, checkout, subscriptions, the move to a partner, renewals and transition reports."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from fastapi import APIRouter, Query

from ...commerce import subscriptions as subs
from ...commerce.plans import plan_catalogue
from ...commerce.renewal import renew_due
from ...commerce.transition import plan_transition
from ...errors import InputError, shown
from ...geography.jurisdictions import check_jurisdiction
from ...http.deps import CallerDep, ClientIpDep, IdempotencyKeyHeader, RuntimeDep, require
from ...http.schemas import (
    CheckoutCreate,
    CheckoutPublic,
    IdPath,
    PartnerChoice,
    PlanPublic,
    PlansPublic,
    RenewalRun,
    SubscriptionPublic,
    SubscriptionsPublic,
    check_instant,
)
from .common import errors

router = APIRouter(tags=["commerce"])
__all__ = ["router"]

SubStatus = Literal["pending", "active", "transfer_required", "transferred", "ended"]


@router.get("/v1/plans")
def list_plans(rt: RuntimeDep) -> PlansPublic:
    """Every plan with its entitlements (may host, participants, meeting length). Public."""
    plans = [PlanPublic.model_validate(p) for p in plan_catalogue(rt.engine)]
    return PlansPublic(data=plans, count=len(plans))


@router.post(
    "/v1/checkout",
    status_code=201,
    responses=errors(401, 403, 404, 409, 413),
    dependencies=[IdempotencyKeyHeader],
)
def checkout(
    body: CheckoutCreate, rt: RuntimeDep, caller: CallerDep, ip: ClientIpDep
) -> CheckoutPublic:
    """Buy a plan through a channel; the `purchase` decision runs now. Roles: operator, partner (its customers, its own channel), user (its own account).

    Allowed: a subscription. Refused: 403 `denied` with the decision, whose alternatives are the
    partners authorised in the buyer's jurisdiction, with their contact.
    """
    sub, decision = subs.checkout(
        rt,
        caller=caller,
        account_id=body.account,
        plan=body.plan,
        channel=body.channel,
        partner=body.partner,
        term=body.term,
        starts_at=body.starts_at,
        client_ip=ip,
    )
    return CheckoutPublic(subscription=SubscriptionPublic.model_validate(sub), decision=decision)


@router.get("/v1/subscriptions", responses=errors(401))
def list_subscriptions(
    rt: RuntimeDep,
    caller: CallerDep,
    account: Annotated[str | None, Query(max_length=100, pattern=r"^[A-Za-z0-9_.\-]+$")] = None,
    status: SubStatus | None = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 50,
    offset: Annotated[int, Query(ge=0, le=10_000_000)] = 0,
) -> SubscriptionsPublic:
    """Subscriptions the caller may see. Roles: operator (all), partner (its own and those offered to it), user (its own)."""
    with rt.db.read() as session:
        rows, count = subs.list_subscriptions(
            session, caller, account_id=account, status=status, limit=limit, offset=offset
        )
        return SubscriptionsPublic(
            data=[SubscriptionPublic.model_validate(r) for r in rows], count=count
        )


@router.get("/v1/subscriptions/{subscription_id}", responses=errors(401, 404))
def get_subscription(
    subscription_id: IdPath, rt: RuntimeDep, caller: CallerDep
) -> SubscriptionPublic:
    """One subscription. Roles: operator, partner, user (each within its reach)."""
    with rt.db.read() as session:
        return SubscriptionPublic.model_validate(
            subs.get_subscription(session, caller, subscription_id)
        )


@router.post(
    "/v1/subscriptions/{subscription_id}/partner",
    responses=errors(401, 403, 404, 409, 413),
    dependencies=[IdempotencyKeyHeader],
)
def choose_partner(
    subscription_id: IdPath, body: PartnerChoice, rt: RuntimeDep, caller: CallerDep
) -> SubscriptionPublic:
    """The customer chooses the partner to take over a `transfer_required` subscription. Roles: user (its own), operator."""
    row = subs.choose_partner(
        rt, caller=caller, subscription_id=subscription_id, partner_id=body.partner
    )
    return SubscriptionPublic.model_validate(row)


@router.post(
    "/v1/subscriptions/{subscription_id}/takeover",
    status_code=201,
    responses=errors(401, 403, 404, 409, 413),
    dependencies=[IdempotencyKeyHeader],
)
def take_over(subscription_id: IdPath, rt: RuntimeDep, caller: CallerDep) -> CheckoutPublic:
    """The chosen partner takes the subscription over, keeping the paid time. Role: partner."""
    sub, decision = subs.take_over(rt, caller=caller, subscription_id=subscription_id)
    return CheckoutPublic(subscription=SubscriptionPublic.model_validate(sub), decision=decision)


@router.post(
    "/v1/renewals",
    responses=errors(401, 403, 409, 413),
    dependencies=[require("operator"), IdempotencyKeyHeader],
)
def run_renewals(body: RenewalRun, rt: RuntimeDep, caller: CallerDep) -> dict[str, Any]:
    """Renew every subscription due at `at` (default now) through the `renew` decision. Role: operator."""
    at = body.at or rt.now()
    return renew_due(rt, at, actor=caller.actor).to_dict()


@router.get("/v1/transitions", responses=errors(401, 403), dependencies=[require("operator")])
def transition_report(
    rt: RuntimeDep,
    caller: CallerDep,
    jurisdiction: Annotated[str, Query(min_length=2, max_length=2, pattern="^[A-Za-z]{2}$")],
    at: Annotated[
        str,
        Query(
            min_length=10,
            max_length=40,
            description="a date (local midnight in the jurisdiction) or an ISO 8601 instant with a zone",
        ),
    ],
) -> dict[str, Any]:
    """Who and what a rule change at `at` touches in a jurisdiction (a dry run). Role: operator."""
    from ...commerce.instants import local_instant

    code = check_jurisdiction(jurisdiction.upper())
    instant = local_instant(rt.engine, code, at)
    try:
        check_instant(instant)
    except ValueError as exc:
        raise InputError(f"invalid `at` `{shown(at)}`: {exc}") from None
    return plan_transition(rt, jurisdiction=code, at=instant, actor=caller.actor)
