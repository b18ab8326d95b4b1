"""Accounts: sign-up through the ``register`` decision, review, reading, entitlements, notices."""

from __future__ import annotations

from typing import Annotated, Literal

from fastapi import APIRouter, Query

from ...commerce.plans import entitlements
from ...http.deps import (
    CallerDep,
    ClientIpDep,
    IdempotencyKeyHeader,
    MaybeCallerDep,
    RuntimeDep,
    SignupLimited,
    require,
)
from ...http.schemas import (
    AccountCreate,
    AccountPublic,
    AccountsPublic,
    EntitlementsPublic,
    IdPath,
    NoticePublic,
    NoticesPublic,
    RegistrationPublic,
    Review,
)
from ...identity import accounts
from ...storage.models import Notice
from ...storage.paging import page
from .common import errors

router = APIRouter(tags=["accounts"])
__all__ = ["router"]

Status = Literal["active", "pending_review", "rejected", "suspended"]


@router.post(
    "/v1/accounts",
    status_code=201,
    responses=errors(401, 403, 404, 409, 413, 429),
    dependencies=[IdempotencyKeyHeader, SignupLimited],
)
def register(
    body: AccountCreate, rt: RuntimeDep, caller: MaybeCallerDep, ip: ClientIpDep
) -> RegistrationPublic:
    """Sign up. Anyone (no token: a self sign-up, which returns a user token), a partner (its own customer, in its jurisdictions) or an operator.

    The `register` decision runs now with the request's evidence: the client IP (self sign-up),
    the declared country and the organisation's registration number. A mainland China
    organisation's Unified Social Credit Code is checked (GB 32100); a pilot-era code creates the
    account in `pending_review`. A refusal is 403 `denied` with the decision's reasons and
    `advice`: what the person can do instead (the other applicant type, the code to fix, joining
    meetings, the partners authorised where they are), each as `text` and as data.
    """
    result = accounts.register(
        rt,
        caller=caller,
        type=body.type,
        name=body.name,
        country=body.country,
        org_id=body.org_id,
        email=body.email,
        client_ip=ip,
    )
    return RegistrationPublic(
        account=AccountPublic.model_validate(result.account),
        decision=result.decision,
        token=result.token,
    )


@router.get("/v1/accounts", responses=errors(401))
def list_accounts(
    rt: RuntimeDep,
    caller: CallerDep,
    country: Annotated[str | None, Query(max_length=2, pattern="^[A-Z]{2}$")] = None,
    status: Status | None = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 50,
    offset: Annotated[int, Query(ge=0, le=10_000_000)] = 0,
) -> AccountsPublic:
    """The accounts the caller may see, newest first. Roles: operator (all), partner (its customers), user (its own)."""
    with rt.db.read() as session:
        rows, count = accounts.list_accounts(
            session, caller, country=country, status=status, limit=limit, offset=offset
        )
        return AccountsPublic(data=[AccountPublic.model_validate(r) for r in rows], count=count)


@router.get("/v1/accounts/{account_id}", responses=errors(401, 404))
def get_account(account_id: IdPath, rt: RuntimeDep, caller: CallerDep) -> AccountPublic:
    """One account. Roles: operator, partner (its customers), user (its own)."""
    with rt.db.read() as session:
        return AccountPublic.model_validate(accounts.get_account(session, caller, account_id))


@router.post(
    "/v1/accounts/{account_id}/review",
    responses=errors(401, 403, 404, 409, 413),
    dependencies=[require("operator"), IdempotencyKeyHeader],
)
def review(account_id: IdPath, body: Review, rt: RuntimeDep, caller: CallerDep) -> AccountPublic:
    """Approve or reject an account waiting for review (a pilot-era company code). Role: operator."""
    row = accounts.review(
        rt, caller=caller, account_id=account_id, approve=body.approve, note=body.note
    )
    return AccountPublic.model_validate(row)


@router.get("/v1/accounts/{account_id}/entitlements", responses=errors(401, 404))
def get_entitlements(account_id: IdPath, rt: RuntimeDep, caller: CallerDep) -> EntitlementsPublic:
    """What the account may do now: its plan's limits and the `host` decision. Roles: operator, partner, user."""
    with rt.db.read() as session:
        account = accounts.get_account(session, caller, account_id)
        return EntitlementsPublic.model_validate(
            entitlements(session, rt.engine, account, rt.now())
        )


@router.get("/v1/accounts/{account_id}/notices", responses=errors(401, 404))
def list_notices(
    account_id: IdPath,
    rt: RuntimeDep,
    caller: CallerDep,
    limit: Annotated[int, Query(ge=1, le=500)] = 50,
    offset: Annotated[int, Query(ge=0, le=10_000_000)] = 0,
) -> NoticesPublic:
    """Notices queued for the account (transitions, refused renewals). Roles: operator, partner, user."""
    with rt.db.read() as session:
        account = accounts.get_account(session, caller, account_id)
        rows, count = page(
            session,
            Notice,
            [Notice.account_id == account.id],
            (Notice.created_at.desc(), Notice.id),
            limit=limit,
            offset=offset,
        )
        return NoticesPublic(data=[NoticePublic.model_validate(r) for r in rows], count=count)
