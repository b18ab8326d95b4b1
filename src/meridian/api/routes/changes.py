"""Changing the bundle in force: replay a bundle, propose it, approve (a second operator), refuse,
activate, roll back. Operators only."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Query

from ...changes import workflow
from ...http.deps import CallerDep, IdempotencyKeyHeader, RuntimeDep, require
from ...http.schemas import ChangeApprove, ChangeCreate, ChangeReason, IdPath, ReplayAsk
from ...runtime import Runtime
from .common import errors

router = APIRouter(tags=["policy changes"], dependencies=[require("operator")])
__all__ = ["propose_change", "router"]


def propose_change(rt: Runtime, caller: Any, body: ChangeCreate, source: str) -> dict[str, Any]:
    """Propose ``body`` and return the change's JSON (``PUT /v1/policy`` shares it)."""
    change = workflow.propose(
        rt,
        caller=caller,
        text=body.yaml,
        source=source,
        activate_at=body.activate_at,
        days=body.days,
        note=body.note,
    )
    return change.to_dict()


@router.post("/v1/policy/replay", responses=errors(401, 403, 409, 413))
def replay(body: ReplayAsk, rt: RuntimeDep, caller: CallerDep) -> dict[str, Any]:
    """Judge the log's decisions of the last `days` days again under a bundle, and the customers of today at `at`, without proposing it. Role: operator.

    `log.changed` lists the decisions it would have answered differently; `log.not_rejudged` those
    it cannot judge again because the entry lacks an input the bundle reads (named in `why`):
    they are counted, never skipped. `transition` lists the renewals, checkouts and hosting of
    today's customers whose answer at `at` differs.
    """
    return workflow.replay_bundle(rt, text=body.yaml, source="<api>", days=body.days, at=body.at)


@router.post(
    "/v1/policy/changes",
    status_code=201,
    responses=errors(401, 403, 409, 413),
    dependencies=[IdempotencyKeyHeader],
)
def propose(body: ChangeCreate, rt: RuntimeDep, caller: CallerDep) -> dict[str, Any]:
    """Propose a bundle to replace the one in force, at `activate_at` or as soon as approved; stored with its diff, the diff's digest, its replay and the invariants it breaks. Nothing changes in force until a second operator approves it. Role: operator."""
    return propose_change(rt, caller, body, "<api>")


@router.get("/v1/policy/changes", responses=errors(401, 403))
def list_changes(
    rt: RuntimeDep,
    caller: CallerDep,
    state: Annotated[str | None, Query(max_length=20, pattern=r"^[a-z_]+$")] = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 100,
) -> dict[str, Any]:
    """Bundle changes, newest first, without their diffs and replays. Role: operator."""
    data = [c.summary() for c in workflow.list_changes(rt, state=state, limit=limit)]
    return {"data": data, "count": len(data)}


@router.get("/v1/policy/changes/{change_id}", responses=errors(401, 403, 404))
def get_change(change_id: IdPath, rt: RuntimeDep, caller: CallerDep) -> dict[str, Any]:
    """One bundle change with its diff, replay and history. Role: operator."""
    return workflow.get_change(rt, change_id).to_dict()


@router.post("/v1/policy/changes/{change_id}/approve", responses=errors(401, 403, 404, 409))
def approve(
    change_id: IdPath, body: ChangeApprove, rt: RuntimeDep, caller: CallerDep
) -> dict[str, Any]:
    """Approve a proposed change as a second operator, naming the diff digest read; one without `activate_at` comes into force now. The proposer is refused, through any of their tokens, and the refusal is recorded; so is a diff digest that is not the change's, a bundle in force that is no longer its base, and an instant that has passed (409). Role: operator."""
    change = workflow.approve(rt, caller=caller, change_id=change_id, diff_digest=body.diff)
    rt.refresh()
    return change.to_dict()


@router.post("/v1/policy/changes/{change_id}/refuse", responses=errors(401, 403, 404, 409))
def refuse(
    change_id: IdPath, body: ChangeReason, rt: RuntimeDep, caller: CallerDep
) -> dict[str, Any]:
    """Refuse a change not yet in force, with a reason (the proposer may withdraw their own). Role: operator."""
    return workflow.refuse(rt, caller=caller, change_id=change_id, reason=body.reason).to_dict()


@router.post("/v1/policy/changes/{change_id}/activate", responses=errors(401, 403, 404, 409))
def activate(change_id: IdPath, rt: RuntimeDep, caller: CallerDep) -> dict[str, Any]:
    """Put an approved change in force now, before its instant. Role: operator."""
    change = workflow.activate(rt, caller=caller, change_id=change_id)
    rt.refresh()
    return change.to_dict()


@router.post("/v1/policy/changes/{change_id}/rollback", responses=errors(401, 403, 404, 409))
def rollback(
    change_id: IdPath, body: ChangeReason, rt: RuntimeDep, caller: CallerDep
) -> dict[str, Any]:
    """Put back the bundle in force before this change, which must be the change in force; one operator, recorded with the reason. Role: operator."""
    change = workflow.rollback(rt, caller=caller, change_id=change_id, reason=body.reason)
    rt.refresh()
    return change.to_dict()
