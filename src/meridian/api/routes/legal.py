"""Lawful requests: intake, scoping, two-person approval, and what was applied. Operators only."""

from __future__ import annotations

from typing import Annotated, Literal

from fastapi import APIRouter, Query, Request
from fastapi.concurrency import run_in_threadpool

from ...http.deps import CallerDep, IdempotencyKeyHeader, RuntimeDep, TokenCache, require
from ...http.schemas import IdPath
from ...legal import workflow
from ...legal.model import LegalRequestCreate, Lift, Rejection
from ...legal.views import ApprovalPublic, LegalRequestPublic, LegalRequestsPublic, to_public
from ...runtime import Runtime
from ...storage.models import LegalRequest
from .common import errors

router = APIRouter(tags=["legal"], dependencies=[require("operator")])
__all__ = ["router"]

State = Literal["pending", "rejected", "applied"]


def _public(rt: Runtime, row: LegalRequest) -> LegalRequestPublic:
    with rt.db.read() as session:
        return to_public(row, workflow.blocks_of(session, row.id))


@router.post(
    "/v1/legal-requests",
    status_code=201,
    responses=errors(401, 403, 404, 413),
    dependencies=[IdempotencyKeyHeader],
)
def receive(body: LegalRequestCreate, rt: RuntimeDep, caller: CallerDep) -> LegalRequestPublic:
    """Record a lawful request and compute its scope. Role: operator.

    The scope lists every entity of the target with whether it lies in the requesting
    jurisdiction (from the record: the account's country, the host's, where each participant
    joined from), its effect and why. A request with nothing in scope is rejected at once by
    `system:meridian`; any other waits in `pending` for a second operator's approval.
    """
    return _public(rt, workflow.receive(rt, caller=caller, body=body))


@router.get("/v1/legal-requests", responses=errors(401, 403))
def list_requests(
    rt: RuntimeDep,
    caller: CallerDep,
    state: State | None = None,
    jurisdiction: Annotated[str | None, Query(max_length=2, pattern="^[A-Z]{2}$")] = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 50,
    offset: Annotated[int, Query(ge=0, le=10_000_000)] = 0,
) -> LegalRequestsPublic:
    """Lawful requests, newest first. Role: operator."""
    with rt.db.read() as session:
        rows, count = workflow.list_requests(
            session, state=state, jurisdiction=jurisdiction, limit=limit, offset=offset
        )
        return LegalRequestsPublic(
            data=[to_public(r, workflow.blocks_of(session, r.id)) for r in rows], count=count
        )


@router.get("/v1/legal-requests/{request_id}", responses=errors(401, 403, 404))
def get_request(request_id: IdPath, rt: RuntimeDep, caller: CallerDep) -> LegalRequestPublic:
    """One lawful request: as received, its state, its scope entity by entity, who recorded and decided it, what was applied. Role: operator."""
    with rt.db.read() as session:
        row = workflow.get_request(session, request_id)
        return to_public(row, workflow.blocks_of(session, row.id))


@router.post(
    "/v1/legal-requests/{request_id}/approve",
    responses=errors(401, 403, 404, 409),
    dependencies=[IdempotencyKeyHeader],
)
async def approve(
    request_id: IdPath, request: Request, rt: RuntimeDep, caller: CallerDep
) -> ApprovalPublic:
    """Approve a pending request and apply it. Role: operator — not the one who recorded it.

    The operator who recorded the request (the same token, or a token of the same name,
    compared case-insensitively) is refused with 403. The scope is computed again now; blocks,
    suspensions, ended meetings and disclosures follow it, live participants in the
    jurisdiction are disconnected, and the accounts affected are notified unless a
    delayed-notice order is on file. A request no longer pending, or with nothing left in
    scope (then rejected), is 409.
    """
    tokens: TokenCache = request.app.state.tokens
    applied = await workflow.approve_and_apply(
        rt,
        caller=caller,
        request_id=request_id,
        tokens=tokens,
        live=getattr(request.app.state, "signalling", None),
    )
    view = await run_in_threadpool(_public, rt, applied.approval.request)
    return ApprovalPublic(request=view, disconnected=list(applied.disconnected))


@router.post(
    "/v1/legal-requests/{request_id}/reject",
    responses=errors(401, 403, 404, 409, 413),
    dependencies=[IdempotencyKeyHeader],
)
def reject(
    request_id: IdPath, body: Rejection, rt: RuntimeDep, caller: CallerDep
) -> LegalRequestPublic:
    """Reject a pending request, with the reason. Role: operator."""
    row = workflow.reject(rt, caller=caller, request_id=request_id, reason=body.reason)
    return _public(rt, row)


@router.post(
    "/v1/legal-requests/{request_id}/lift",
    responses=errors(401, 403, 404, 409, 413),
    dependencies=[IdempotencyKeyHeader],
)
def lift(request_id: IdPath, body: Lift, rt: RuntimeDep, caller: CallerDep) -> LegalRequestPublic:
    """End the blocks an applied request left, with the reason: its jurisdiction may join again. Role: operator."""
    row = workflow.lift(rt, caller=caller, request_id=request_id, reason=body.reason)
    return _public(rt, row)
