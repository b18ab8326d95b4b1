"""Pages: the policy — the bundle in force, what changes when, what-if, loading a bundle, cutovers.

Four pages under ``/console/policy``, each a door onto what the API does:

* the bundle in force (``GET /v1/policy``) with its source, and its timeline per jurisdiction in
  the jurisdiction's own time (:func:`meridian.policy.timeline.timeline`, as ``meridian policy
  timeline`` prints it);
* what-if: any request at any instant, decided by the engine in force and journaled exactly as
  ``POST /v1/decisions`` does;
* proposing a bundle: validated whole, every problem shown at its line, and proposed exactly as
  ``POST /v1/policy/changes`` does (a second operator approves it: ``web/routes/changes.py``);
* the transition report of a cutover before it happens (``GET /v1/transitions``, a dry run).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Annotated, Any

from fastapi import APIRouter, Form, Query, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from ...changes import workflow
from ...clock import parse_instant
from ...commerce.instants import local_instant
from ...commerce.transition import plan_transition
from ...errors import BundleError, BundleProblem, InputError, MeridianError, shown
from ...geography.jurisdictions import check_jurisdiction, jurisdiction_name
from ...http.journal import DecisionJournal
from ...http.schemas import check_instant
from ...policy.request import ACTIONS, epoch_seconds, parse_request
from ...policy.timeline import Change, timeline
from ...runtime import Runtime
from ...storage.models import PolicyBundle
from ..deps import CsrfChecked, Viewer, page_for
from ..render import render

router = APIRouter(include_in_schema=False)
__all__ = ["WhatIf", "excerpts", "router", "what_if_request"]

Operator = Annotated[Viewer, page_for("operator")]

#: the source name a bundle loaded from the console carries (problems read `<console>:12: …`)
SOURCE = "<console>"
#: the largest bundle the page accepts, as ``PUT /v1/policy`` does
MAX_BUNDLE = 1_000_000
#: lines shown around each problem in the excerpts of a refused bundle
CONTEXT = 2
_FIELD = Form(max_length=1000)
_QUERY = Query(max_length=1000)

_KINDS = (
    ("subscription_transfer", "Subscriptions to move to a partner (paid time kept)"),
    ("open_checkout", "Open checkouts the change refuses"),
    ("hosting_lost", "Accounts without a paid plan that lose hosting"),
)


def _bundle(rt: Runtime) -> dict[str, Any]:
    """The bundle in force: what ``GET /v1/policy`` says, and when, by whom and from what."""
    compiled = rt.engine.bundle
    doc = compiled.document
    with rt.db.read() as session:
        row = session.get(PolicyBundle, compiled.ref.digest)
        stored = (
            None
            if row is None
            else {"at": row.loaded_at, "by": row.loaded_by, "source": row.source, "text": row.text}
        )
    return {
        "name": doc.bundle,
        "version": doc.version,
        "digest": compiled.ref.digest,
        "rules": len(doc.rules),
        "jurisdictions": sorted(doc.jurisdictions),
        "description": doc.description,
        "stored": stored,
    }


def _place(code: str, rt: Runtime) -> str:
    info = rt.engine.bundle.document.jurisdictions.get(code)
    return info.name if info is not None and info.name else jurisdiction_name(code)


# -- the bundle in force and its timeline ------------------------------------------------------


@dataclass(frozen=True, slots=True)
class _Jurisdiction:
    code: str
    name: str
    zone: str
    changes: list[tuple[Change, str]]  # each change with "past", "next" or ""


def _timelines(rt: Runtime, only: str | None) -> list[_Jurisdiction]:
    now = epoch_seconds(rt.now())
    by_place: dict[str, list[Change]] = {}
    for change in timeline(rt.engine.bundle, only):
        by_place.setdefault(change.jurisdiction, []).append(change)
    out = []
    for code in sorted(by_place):
        changes = by_place[code]
        upcoming = next((c.epoch for c in changes if c.epoch > now), None)
        marked = [
            (c, "past" if c.epoch <= now else "next" if c.epoch == upcoming else "")
            for c in changes
        ]
        out.append(_Jurisdiction(code, _place(code, rt), changes[0].zone, marked))
    return out


@router.get("/console/policy", response_class=HTMLResponse)
def policy(
    request: Request,
    viewer: Operator,
    jurisdiction: Annotated[str, _QUERY] = "",
    done: Annotated[str, _QUERY] = "",
) -> HTMLResponse:
    rt: Runtime = request.app.state.runtime
    code = None
    error = None
    if jurisdiction:
        try:
            code = check_jurisdiction(jurisdiction.strip().upper())
        except InputError as exc:
            error = exc
    every = _timelines(rt, None)
    shown_places = every if code is None else [j for j in every if j.code == code]
    return render(
        request,
        "console/policy.html",
        {
            "title": "Policy",
            "section": "bundle",
            "bundle": _bundle(rt),
            "places": [(j.code, j.name) for j in every],
            "timelines": shown_places,
            "jurisdiction": code or jurisdiction,
            "error": None if error is None else error.message,
            "done": done,
        },
        status=200 if error is None else error.http_status,
        active="policy",
    )


# -- what-if -----------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class WhatIf:
    """The what-if form as typed: every field a string, empty when left blank."""

    action: str = "register"
    type: str = "individual"
    country: str = ""
    ip: str = ""
    phone: str = ""
    org_id: str = ""
    plan: str = ""
    channel: str = ""
    partner: str = ""
    at: str = ""


def what_if_request(rt: Runtime, form: WhatIf) -> dict[str, Any]:
    """The form as a decision request in wire form (what a client would POST to /v1/decisions).

    A date alone is midnight in the declared country's zone (UTC when the bundle names none);
    an empty instant means the service's now. Raises :class:`InputError` for an unreadable one.
    """
    country = form.country.strip().upper()
    subject: dict[str, Any] = {"type": form.type}
    for key, value in (
        ("country", country),
        ("ip", form.ip),
        ("phone", form.phone),
        ("org_id", form.org_id),
        ("plan", form.plan),
    ):
        if value.strip():
            subject[key] = value.strip()
    wire: dict[str, Any] = {"action": form.action, "subject": subject}
    resource = {k: v.strip() for k, v in (("channel", form.channel), ("partner", form.partner))}
    resource = {k: v for k, v in resource.items() if v}
    if resource:
        wire["resource"] = resource
    if form.at.strip():
        instant = local_instant(rt.engine, country, form.at, "at")
        try:
            check_instant(instant)
        except ValueError as exc:
            raise InputError(f"invalid `at` `{shown(form.at)}`: {exc}") from None
        wire["at"] = instant.isoformat()
    return wire


def _what_if_page(
    request: Request,
    form: WhatIf,
    *,
    decision: dict[str, Any] | None = None,
    wire: dict[str, Any] | None = None,
    error: MeridianError | None = None,
) -> HTMLResponse:
    doc = request.app.state.runtime.engine.bundle.document
    return render(
        request,
        "console/policy_whatif.html",
        {
            "title": "What if",
            "section": "whatif",
            "form": form,
            "actions": ACTIONS,
            "plans": sorted(doc.plans),
            "channels": sorted(doc.channels),
            "partners": sorted(doc.partners.items()),
            "decision": decision,
            "wire": wire,
            "error": None if error is None else error.message,
        },
        status=200 if error is None else error.http_status,
        active="policy",
    )


@router.get("/console/policy/whatif", response_class=HTMLResponse)
def what_if_form(request: Request, viewer: Operator) -> HTMLResponse:
    return _what_if_page(request, WhatIf())


@router.post("/console/policy/whatif", response_class=HTMLResponse, dependencies=[CsrfChecked])
def what_if(
    request: Request,
    viewer: Operator,
    action: Annotated[str, _FIELD] = "",
    type: Annotated[str, _FIELD] = "",
    country: Annotated[str, _FIELD] = "",
    ip: Annotated[str, _FIELD] = "",
    phone: Annotated[str, _FIELD] = "",
    org_id: Annotated[str, _FIELD] = "",
    plan: Annotated[str, _FIELD] = "",
    channel: Annotated[str, _FIELD] = "",
    partner: Annotated[str, _FIELD] = "",
    at: Annotated[str, _FIELD] = "",
) -> HTMLResponse:
    """Decide the request the form describes: the same engine and journal as POST /v1/decisions.

    A question, not a change: the answer is shown at once (no redirect), and asking again asks
    again. Like every advisory decision it is journaled, under the operator's token.
    """
    form = WhatIf(action, type, country, ip, phone, org_id, plan, channel, partner, at)
    rt: Runtime = request.app.state.runtime
    try:
        wire = what_if_request(rt, form)
        decision = rt.engine.decide(parse_request(wire))
    except MeridianError as exc:
        return _what_if_page(request, form, error=exc)
    journal: DecisionJournal = request.app.state.journal
    journal.add(viewer.caller.actor, decision.bundle.digest, (decision,))
    return _what_if_page(request, form, decision=decision.to_dict(), wire=wire)


# -- loading a bundle --------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class _Excerpt:
    start: int
    lines: list[tuple[int, str, bool]]  # (number, text, has a problem)


def excerpts(
    text: str, problems: tuple[BundleProblem, ...], context: int = CONTEXT
) -> list[dict[str, Any]]:
    """The lines of ``text`` around each located problem, in runs, problem lines marked."""
    # split on newlines alone, as YAML counts lines: a problem "at the end of the stream" is on
    # the empty line after a final newline
    source = text.split("\n")
    bad = {p.line for p in problems if p.line is not None and 0 < p.line <= len(source)}
    wanted = sorted(
        {
            n
            for line in bad
            for n in range(line - context, line + context + 1)
            if 0 < n <= len(source)
        }
    )
    runs: list[_Excerpt] = []
    for n in wanted:
        row = (n, source[n - 1], n in bad)
        if runs and runs[-1].lines[-1][0] == n - 1:
            runs[-1].lines.append(row)
        else:
            runs.append(_Excerpt(n, [row]))
    return [asdict(r) for r in runs]


def _bundle_page(
    request: Request,
    text: str,
    *,
    problems: tuple[BundleProblem, ...] = (),
    error: MeridianError | None = None,
    activate_at: str = "",
) -> HTMLResponse:
    rt: Runtime = request.app.state.runtime
    return render(
        request,
        "console/policy_bundle.html",
        {
            "title": "Propose a bundle",
            "section": "load",
            "activate_at": activate_at,
            "bundle": _bundle(rt),
            "text": text,
            "problems": sorted(problems, key=lambda p: (p.line is None, p.line or 0)),
            "excerpts": excerpts(text, problems),
            "error": None if error is None else error.message,
        },
        status=200 if error is None else error.http_status,
        active="policy",
    )


@router.get("/console/policy/bundle", response_class=HTMLResponse)
def bundle_form(request: Request, viewer: Operator) -> HTMLResponse:
    stored = _bundle(request.app.state.runtime)["stored"]
    return _bundle_page(request, stored["text"] if stored else "")


@router.post("/console/policy/bundle", dependencies=[CsrfChecked])
def load_bundle(
    request: Request,
    viewer: Operator,
    yaml: Annotated[str, Form()] = "",
    activate_at: Annotated[str, Form(max_length=40)] = "",
) -> Response:
    """Validate the YAML and propose it, exactly as POST /v1/policy/changes does; refused whole if
    invalid. A second operator approves it on the change's page."""
    rt: Runtime = request.app.state.runtime
    yaml = yaml.replace("\r\n", "\n")  # a browser sends a textarea's lines with CRLF
    if not yaml.strip():
        return _bundle_page(request, yaml, error=InputError("paste a bundle's yaml to propose it"))
    if len(yaml) > MAX_BUNDLE:
        return _bundle_page(
            request,
            "",
            error=InputError(f"the bundle has {len(yaml):,} characters: at most {MAX_BUNDLE:,}"),
        )
    try:
        at = parse_instant(activate_at.strip(), "activate_at") if activate_at.strip() else None
        change = workflow.propose(
            rt, caller=viewer.caller, text=yaml, source=SOURCE, activate_at=at
        )
    except BundleError as exc:
        count = len(exc.problems)
        summary = InputError(
            f"the bundle was not proposed: {count} problem{'' if count == 1 else 's'}, listed below"
        )
        return _bundle_page(request, yaml, problems=exc.problems, error=summary)
    except MeridianError as exc:
        return _bundle_page(request, yaml, error=exc, activate_at=activate_at)
    return RedirectResponse(f"/console/policy/changes/{change.id}?done=proposed", status_code=303)


# -- the transition report ---------------------------------------------------------------------


@router.get("/console/policy/transition", response_class=HTMLResponse)
def transition(
    request: Request,
    viewer: Operator,
    jurisdiction: Annotated[str, _QUERY] = "",
    at: Annotated[str, _QUERY] = "",
) -> HTMLResponse:
    """Who and what a cutover touches, before it happens: GET /v1/transitions, as a page."""
    rt: Runtime = request.app.state.runtime
    report = None
    error: MeridianError | None = None
    if jurisdiction or at:
        try:
            if not jurisdiction.strip() or not at.strip():
                raise InputError("give both a jurisdiction and a date or instant")
            code = check_jurisdiction(jurisdiction.strip().upper())
            instant = local_instant(rt.engine, code, at, "at")
            try:
                check_instant(instant)
            except ValueError as exc:
                raise InputError(f"invalid `at` `{shown(at)}`: {exc}") from None
            report = plan_transition(rt, jurisdiction=code, at=instant, actor=viewer.caller.actor)
        except MeridianError as exc:
            error = exc
    zone = None
    if report is not None:
        info = rt.engine.bundle.document.jurisdictions.get(report["jurisdiction"])
        zone = info.zone if info is not None else "UTC"
    return render(
        request,
        "console/policy_transition.html",
        {
            "title": "Transition report",
            "section": "transition",
            "jurisdiction": jurisdiction,
            "at": at,
            "places": sorted(rt.engine.bundle.document.jurisdictions),
            "report": report,
            "zone": zone,
            "kinds": _KINDS,
            "error": None if error is None else error.message,
        },
        status=200 if error is None else error.http_status,
        active="policy",
    )
