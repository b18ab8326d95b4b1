"""Pages: government requests — the list, the intake form, and one request's page.

A government (lawful) request is recorded by one operator, scoped entity by entity against the
requesting jurisdiction, and applied only once a *second* operator approves it. These pages are
a door onto :mod:`meridian.legal.workflow`, exactly as ``/v1/legal-requests`` is: the same
functions record, approve, reject and lift, so the checks, the refusals and the log entries are
the API's. The request page shows what ``GET /v1/legal-requests/{id}`` returns (the same view,
:func:`meridian.legal.views.to_public`), with the request's own log entries beside it.

The operator who recorded a request sees no Approve button: the page says a second operator
must approve. A forged approval from them still reaches the workflow, which refuses it (403,
recorded as ``legal.approval_refused``), and the page shows that refusal.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass, replace
from typing import Annotated, Any

from fastapi import APIRouter, File, Form, Query, Request, UploadFile
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from pydantic import ValidationError
from starlette.concurrency import run_in_threadpool

from ...errors import MeridianError
from ...geography.jurisdictions import jurisdiction_name
from ...http.schemas import IdPath
from ...legal import workflow
from ...legal.model import (
    ACTIONS,
    LEGAL_TYPES,
    TARGET_KINDS,
    TARGETS_BY_ACTION,
    LegalRequestCreate,
    Lift,
    Rejection,
)
from ...legal.views import EffectPublic, LegalRequestPublic, to_public
from ...runtime import Runtime
from ..deps import CsrfChecked, Viewer, page_for
from ..forms import form_error
from ..render import render

router = APIRouter(include_in_schema=False)
__all__ = ["router"]

OperatorPage = Annotated[Viewer, page_for("operator")]

#: requests per page of the list
PER_PAGE = 25
STATES = ("pending", "applied", "rejected")

#: what each legal type means here (the intake form's help)
LEGAL_TYPE_HELP: dict[str, str] = {
    "subpoena": "a demand for records; reaches non-content only",
    "warrant": "a search warrant: the only basis that reaches content",
    "court_order": "an order of a court other than a warrant; non-content only",
    "emergency": "an emergency disclosure request; non-content only, however urgent",
    "preservation": "a request to preserve records; non-content only",
    "national_security": "a national-security letter or order; non-content only without a warrant",
}
#: what each action does, and the targets it can take
ACTION_HELP: dict[str, str] = {
    "suspend_account": "suspend an account registered in the jurisdiction",
    "end_meeting": "end a meeting whose host and every participant are in the jurisdiction; "
    "otherwise only its participants there are blocked",
    "block_participants": "remove the meeting's participants in the jurisdiction and refuse "
    "them if they join again; the meeting goes on",
    "disclose_content": "hand over content (a warrant only); Meridian holds none: meetings are "
    "end-to-end encrypted, so only non-content records exist",
    "disclose_non_content": "hand over the records (account, meeting, participation) of "
    "people in the jurisdiction",
}
TARGET_HELP: dict[str, str] = {
    "account": "an account id (acct_…)",
    "meeting": "a meeting id (mtg_…): the meeting itself, its host included",
    "participants": "a meeting id (mtg_…): the people in it, live and past",
}


_KEPT = re.compile(r"([0-9a-f]{64}):([0-9]{1,16}):(.+)", re.DOTALL)
_CHUNK = 1 << 20


async def _digest(upload: UploadFile) -> dict[str, Any]:
    """A served document as a request records it: its name, SHA-256 and size — the contents are
    read once to hash them and never kept."""
    sha = hashlib.sha256()
    size = 0
    while chunk := await upload.read(_CHUNK):
        sha.update(chunk)
        size += len(chunk)
    await upload.close()
    return {"name": upload.filename or "document", "sha256": sha.hexdigest(), "size": size}


def _kept(value: str) -> dict[str, Any] | None:
    """A document hashed by an earlier, refused submission (``sha256:size:name``)."""
    match = _KEPT.fullmatch(value)
    if match is None:
        return None
    return {"name": match[3], "sha256": match[1], "size": int(match[2])}


# -- the list ----------------------------------------------------------------------------------


@router.get("/console/legal", response_class=HTMLResponse)
def list_page(
    request: Request,
    viewer: OperatorPage,
    state: Annotated[str, Query(max_length=20)] = "",
    jurisdiction: Annotated[str, Query(max_length=2)] = "",
    page: Annotated[int, Query(ge=1, le=100_000)] = 1,
) -> Response:
    """The requests, newest first, filtered by state and jurisdiction (as the API filters)."""
    rt: Runtime = request.app.state.runtime
    error = None
    if state and state not in STATES:
        error = f"unknown state `{state}`: expected one of {', '.join(STATES)}"
        state = ""
    if jurisdiction and not (jurisdiction.isascii() and jurisdiction.isalpha()):
        error = f"unknown jurisdiction `{jurisdiction}`: expected an iso 3166-1 alpha-2 code"
        jurisdiction = ""
    with rt.db.read() as session:
        rows, count = workflow.list_requests(
            session,
            state=state or None,
            jurisdiction=jurisdiction.upper() or None,
            limit=PER_PAGE,
            offset=(page - 1) * PER_PAGE,
        )
        requests = [to_public(r, workflow.blocks_of(session, r.id)) for r in rows]
    pages = max(1, -(-count // PER_PAGE))
    return render(
        request,
        "console/legal.html",
        {
            "requests": requests,
            "count": count,
            "state": state,
            "jurisdiction": jurisdiction.upper(),
            "states": STATES,
            "page": page,
            "pages": pages,
            "error": error,
            "place": jurisdiction_name,
        },
        status=400 if error else 200,
        active="legal",
    )


# -- intake ------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Intake:
    """What the intake form holds: as typed, so a refused form comes back as it was sent."""

    authority: str = ""
    jurisdiction: str = ""
    legal_type: str = ""
    reference: str = ""
    action: str = ""
    target_kind: str = ""
    target_id: str = ""
    notice_delay_until: str = ""
    documents: tuple[dict[str, Any], ...] = ()

    def body(self) -> dict[str, Any]:
        """The ``POST /v1/legal-requests`` body this form stands for."""
        delay = self.notice_delay_until.strip()
        if delay and len(delay) == 16:  # a datetime-local value, to the minute: UTC
            delay += ":00"
        return {
            "authority": self.authority,
            "jurisdiction": self.jurisdiction,
            "legal_type": self.legal_type,
            "reference": self.reference,
            "target": {"kind": self.target_kind, "id": self.target_id},
            "action": self.action,
            "notice_delay_until": (delay + "Z") if delay else None,
            "documents": list(self.documents),
        }


def _intake(
    request: Request, form: Intake, *, error: str | None = None, status: int = 200
) -> Response:
    return render(
        request,
        "console/legal_new.html",
        {
            "form": form,
            "error": error,
            "legal_types": LEGAL_TYPES,
            "legal_type_help": LEGAL_TYPE_HELP,
            "actions": ACTIONS,
            "action_help": ACTION_HELP,
            "targets_by_action": TARGETS_BY_ACTION,
            "target_kinds": TARGET_KINDS,
            "target_help": TARGET_HELP,
        },
        status=status,
        active="legal",
    )


@router.get("/console/legal/new", response_class=HTMLResponse)
def intake_form(
    request: Request,
    viewer: OperatorPage,
    target_kind: Annotated[str, Query(max_length=20)] = "meeting",
    target_id: Annotated[str, Query(max_length=100)] = "",
) -> Response:
    """The intake form (``target_kind``/``target_id`` prefill the target)."""
    return _intake(request, Intake(target_kind=target_kind, target_id=target_id))


@router.post("/console/legal/new", response_class=HTMLResponse, dependencies=[CsrfChecked])
async def intake(
    request: Request,
    viewer: OperatorPage,
    authority: Annotated[str, Form(max_length=400)] = "",
    jurisdiction: Annotated[str, Form(max_length=20)] = "",
    legal_type: Annotated[str, Form(max_length=40)] = "",
    reference: Annotated[str, Form(max_length=400)] = "",
    action: Annotated[str, Form(max_length=40)] = "",
    target_kind: Annotated[str, Form(max_length=20)] = "",
    target_id: Annotated[str, Form(max_length=200)] = "",
    notice_delay_until: Annotated[str, Form(max_length=40)] = "",
    kept: Annotated[list[str] | None, Form(max_length=100)] = None,
    documents: Annotated[list[UploadFile] | None, File()] = None,
) -> Response:
    """Record a request through :func:`workflow.receive`, then show its page (its scope)."""
    docs: list[dict[str, Any]] = []
    for value in kept or []:
        doc = _kept(value)
        if doc is not None:
            docs.append(doc)
    form = Intake(
        authority=authority,
        jurisdiction=jurisdiction,
        legal_type=legal_type,
        reference=reference,
        action=action,
        target_kind=target_kind,
        target_id=target_id,
        notice_delay_until=notice_delay_until,
        documents=tuple(docs),
    )
    try:
        for upload in documents or []:
            if upload.filename:
                docs.append(await _digest(upload))
        form = replace(form, documents=tuple(docs))
        body = LegalRequestCreate.model_validate(form.body())
    except ValidationError as exc:
        return _intake(request, form, error=form_error(exc).message, status=422)
    except MeridianError as exc:
        return _intake(request, form, error=exc.message, status=exc.http_status)
    rt: Runtime = request.app.state.runtime
    try:
        row = await run_in_threadpool(workflow.receive, rt, caller=viewer.caller, body=body)
    except MeridianError as exc:
        return _intake(request, form, error=exc.message, status=exc.http_status)
    return RedirectResponse(f"/console/legal/{row.id}", status_code=303)


# -- one request -------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class TrailEntry:
    """One log entry about a request: its position, instant, actor, action and details."""

    seq: int
    at: Any
    actor: str
    action: str
    details: dict[str, Any]


@dataclass(frozen=True, slots=True)
class RequestView:
    """Everything the request page shows: the request read in one transaction, then its log."""

    lr: LegalRequestPublic
    #: the viewer is the operator who recorded it (why, in words), or None
    recorder: str | None
    #: the entities inside the jurisdiction with an effect, and everyone else
    affected: list[EffectPublic]
    untouched: list[EffectPublic]
    #: the log entries of the request and of the changes it made
    trail: list[TrailEntry]
    #: the live participants its approval disconnected (from their ``meeting.leave`` entries)
    disconnected: list[TrailEntry]


def _same_person(session: Any, lr: LegalRequestPublic, viewer: Viewer) -> str | None:
    """Why the viewer counts as the recorder, as the workflow decides it (the same person, or
    a person of the same name)."""
    same = workflow.same_person(session, viewer.caller, lr.recorded_by.actor, lr.recorded_by.name)
    if same is None:
        return None
    if same.startswith("this operator"):
        return f"you recorded it (operator `{viewer.caller.person_id}`)"
    return f"it was recorded by {same}"


def _trail(rt: Runtime, lr: LegalRequestPublic) -> tuple[list[TrailEntry], list[TrailEntry]]:
    """The request's own ``legal.*`` entries and the changes naming it, in log order; and the
    ``meeting.leave`` entries of the participants its approval disconnected."""
    subjects = {lr.id, lr.target.id}
    if lr.applied is not None:
        subjects.update(lr.applied.accounts)
    rows = rt.log.entries_about(subjects)
    trail: list[TrailEntry] = []
    left: list[TrailEntry] = []
    naming = f"`{lr.id}`"
    for r in rows:
        details = r.details or {}
        entry = TrailEntry(r.seq, r.at, r.actor, r.action, details)
        own = r.subject_id == lr.id and r.subject_kind == "legal_request"
        if own or details.get("request") == lr.id:
            trail.append(entry)
        elif r.action == "meeting.leave" and naming in str(
            (details.get("removal") or {}).get("reason", "")
        ):
            trail.append(entry)
            left.append(entry)
    return trail, left


def _view(rt: Runtime, viewer: Viewer, request_id: str) -> RequestView:
    with rt.db.read() as session:
        row = workflow.get_request(session, request_id)
        lr = to_public(row, workflow.blocks_of(session, row.id))
        recorder = _same_person(session, lr, viewer)
    trail, left = _trail(rt, lr)
    effects = lr.scope.effects if lr.applied is None else lr.applied.effects
    return RequestView(
        lr=lr,
        recorder=recorder,
        affected=[e for e in effects if e.effect != "none"],
        untouched=[e for e in effects if e.effect == "none"],
        trail=trail,
        disconnected=left,
    )


async def _show(
    request: Request,
    viewer: Viewer,
    request_id: str,
    *,
    error: MeridianError | None = None,
    done: str = "",
    reason: str = "",
) -> Response:
    rt: Runtime = request.app.state.runtime
    view = await run_in_threadpool(_view, rt, viewer, request_id)
    decision: Any = getattr(error, "decision", None)
    return render(
        request,
        "console/legal_request.html",
        {
            "v": view,
            "lr": view.lr,
            "error": None if error is None else error.message,
            "decision": decision,
            "done": done,
            "reason": reason,
            "place": jurisdiction_name,
            "action_help": ACTION_HELP,
            "legal_type_help": LEGAL_TYPE_HELP,
        },
        status=200 if error is None else error.http_status,
        active="legal",
    )


@router.get("/console/legal/{request_id}", response_class=HTMLResponse)
async def request_page(
    request: Request,
    request_id: IdPath,
    viewer: OperatorPage,
    done: Annotated[str, Query(max_length=20)] = "",
) -> Response:
    """One request: as received, its scope, who recorded it, approval, what was applied."""
    return await _show(request, viewer, request_id, done=done)


@router.post(
    "/console/legal/{request_id}/approve", response_class=HTMLResponse, dependencies=[CsrfChecked]
)
async def approve(request: Request, request_id: IdPath, viewer: OperatorPage) -> Response:
    """Approve and apply, as ``POST /v1/legal-requests/{id}/approve`` does (the same steps)."""
    rt: Runtime = request.app.state.runtime
    try:
        await workflow.approve_and_apply(
            rt,
            caller=viewer.caller,
            request_id=request_id,
            tokens=request.app.state.tokens,
            live=getattr(request.app.state, "signalling", None),
        )
    except MeridianError as exc:
        return await _show(request, viewer, request_id, error=exc)
    return RedirectResponse(f"/console/legal/{request_id}?done=approved", status_code=303)


@router.post(
    "/console/legal/{request_id}/reject", response_class=HTMLResponse, dependencies=[CsrfChecked]
)
async def reject(
    request: Request,
    request_id: IdPath,
    viewer: OperatorPage,
    reason: Annotated[str, Form(max_length=4000)] = "",
) -> Response:
    """Reject a pending request with a reason (any operator, its recorder included)."""
    rt: Runtime = request.app.state.runtime
    try:
        body = Rejection.model_validate({"reason": reason})
        await run_in_threadpool(
            workflow.reject, rt, caller=viewer.caller, request_id=request_id, reason=body.reason
        )
    except ValidationError as exc:
        error = form_error(exc)
        return await _show(request, viewer, request_id, error=error, reason=reason)
    except MeridianError as exc:
        return await _show(request, viewer, request_id, error=exc, reason=reason)
    return RedirectResponse(f"/console/legal/{request_id}?done=rejected", status_code=303)


@router.post(
    "/console/legal/{request_id}/lift", response_class=HTMLResponse, dependencies=[CsrfChecked]
)
async def lift(
    request: Request,
    request_id: IdPath,
    viewer: OperatorPage,
    reason: Annotated[str, Form(max_length=4000)] = "",
) -> Response:
    """Lift the blocks an applied request left, with a reason."""
    rt: Runtime = request.app.state.runtime
    try:
        body = Lift.model_validate({"reason": reason})
        await run_in_threadpool(
            workflow.lift, rt, caller=viewer.caller, request_id=request_id, reason=body.reason
        )
    except ValidationError as exc:
        error = form_error(exc)
        return await _show(request, viewer, request_id, error=error)
    except MeridianError as exc:
        return await _show(request, viewer, request_id, error=exc)
    return RedirectResponse(f"/console/legal/{request_id}?done=lifted", status_code=303)
