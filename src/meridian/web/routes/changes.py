"""Pages: bundle changes — the list, one change with its diff and replay, and its approval.

A door onto :mod:`meridian.changes.workflow`, as ``/v1/policy/changes`` is: the bundle page
(``/console/policy/bundle``) proposes, a second operator approves here, naming the diff digest
the page showed them.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from fastapi import APIRouter, Form, Query, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from ...changes import workflow
from ...errors import MeridianError
from ...http.schemas import IdPath
from ...runtime import Runtime
from ..deps import CsrfChecked, Viewer, page_for
from ..render import render

router = APIRouter(include_in_schema=False)
__all__ = ["router"]

Operator = Annotated[Viewer, page_for("operator")]
_REASON = Form(max_length=500)
#: what a change's forms may do to it
Step = Literal["approve", "refuse", "activate", "rollback"]


@router.get("/console/policy/changes", response_class=HTMLResponse)
async def changes(request: Request, viewer: Operator) -> Response:
    """Every bundle change, newest first."""
    rt: Runtime = request.app.state.runtime
    rows = await run_in_threadpool(workflow.list_changes, rt)
    return render(
        request,
        "console/policy_changes.html",
        {"title": "Bundle changes", "section": "changes", "changes": [c.summary() for c in rows]},
        active="policy",
    )


async def _show(
    request: Request,
    viewer: Viewer,
    change_id: str,
    *,
    error: MeridianError | None = None,
    done: str = "",
) -> Response:
    rt: Runtime = request.app.state.runtime
    change = (await run_in_threadpool(workflow.get_change, rt, change_id)).to_dict()
    proposer = change["proposed_by"] == str(viewer.caller.actor)
    return render(
        request,
        "console/policy_change.html",
        {
            "title": f"Bundle change {change['id']}",
            "section": "changes",
            "c": change,
            "proposer": proposer,
            "error": None if error is None else error.message,
            "done": done,
        },
        status=200 if error is None else error.http_status,
        active="policy",
    )


@router.get("/console/policy/changes/{change_id}", response_class=HTMLResponse)
async def change_page(
    request: Request,
    change_id: IdPath,
    viewer: Operator,
    done: Annotated[str, Query(max_length=20)] = "",
) -> Response:
    """One change: its state, diff, replay, and the forms that move it."""
    return await _show(request, viewer, change_id, done=done)


def _act(rt: Runtime, viewer: Viewer, change_id: str, step: str, diff: str, reason: str) -> Any:
    caller = viewer.caller
    if step == "approve":
        return workflow.approve(rt, caller=caller, change_id=change_id, diff_digest=diff)
    if step == "refuse":
        return workflow.refuse(rt, caller=caller, change_id=change_id, reason=reason)
    if step == "activate":
        return workflow.activate(rt, caller=caller, change_id=change_id)
    return workflow.rollback(rt, caller=caller, change_id=change_id, reason=reason)


@router.post(
    "/console/policy/changes/{change_id}/{step}",
    response_class=HTMLResponse,
    dependencies=[CsrfChecked],
)
async def move(
    request: Request,
    change_id: IdPath,
    step: Step,
    viewer: Operator,
    diff: Annotated[str, Form(max_length=80)] = "",
    reason: Annotated[str, _REASON] = "",
) -> Response:
    """Approve, refuse, activate or roll back, as the API's endpoints of the same names do."""
    rt: Runtime = request.app.state.runtime
    try:
        await run_in_threadpool(_act, rt, viewer, change_id, step, diff, reason)
    except MeridianError as exc:
        return await _show(request, viewer, change_id, error=exc)
    await run_in_threadpool(rt.refresh)
    return RedirectResponse(f"/console/policy/changes/{change_id}?done={step}", status_code=303)
