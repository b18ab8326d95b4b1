"""Pages: the user's meetings, their meeting settings (data-centre regions), and the meeting page.

``/account/meetings`` lists and creates meetings exactly as ``GET``/``POST /v1/meetings`` do for
the signed-in user; ``/account/settings`` reads and changes the account's data-centre regions as
``GET``/``PUT /v1/accounts/{id}/regions`` do. A meeting's join link (``/meet/{id}#k=<invite>``)
is shown once, in the answer to creating the meeting or to "New join link" (the invite is stored
hashed, so no later page can show it again); the list also locks and unlocks each live meeting
and turns its waiting room on and off, as ``PATCH /v1/meetings/{id}`` does. ``/meet/{id}`` is
open to anyone, but joining needs the invite (read from the link's fragment, which no server
sees) unless the viewer is one of the host account's own users: its script
(``static/js/meeting.js``) joins through the signalling WebSocket, unwraps the meeting key with a
key pair made in the browser and talks through the assigned relay in sealed frames, so nothing
secret or decrypted ever reaches the server.
"""

from __future__ import annotations

import contextlib
import json
from typing import Annotated, Any

from fastapi import APIRouter, Form, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from pydantic import ValidationError
from starlette.concurrency import run_in_threadpool

from ...errors import ConflictError, DeniedError, InputError, MeridianError, NotFoundError
from ...http.deps import get_client_ip
from ...http.errors import refused_decision
from ...http.schemas import IdPath, MeetingCreate, MeetingPublic, RegionsUpdate
from ...identity.accounts import get_account
from ...meetings import access, receipts, service
from ...meetings.invite import join_link
from ...meetings.lifecycle import end_everywhere
from ...meetings.regions import region_table
from ...runtime import Runtime
from ..deps import CsrfChecked, MaybeViewerDep, Viewer, page_for
from ..forms import form_error
from ..render import render

router = APIRouter(include_in_schema=False)
__all__ = ["router"]

UserPage = Annotated[Viewer, page_for("user")]
#: how a meeting's country list is given in the form: no list, an approve list, a deny list
_COUNTRY_MODES = ("none", "approve", "deny")


def _account_id(viewer: Viewer) -> str:
    account_id = viewer.caller.account_id
    if account_id is None:
        raise NotFoundError("this sign-in has no account")
    return account_id


# -- meetings -------------------------------------------------------------------------------------


def _meetings(rt: Runtime, viewer: Viewer) -> list[MeetingPublic]:
    """The meetings the viewer may see, as ``GET /v1/meetings`` shows them."""
    with rt.db.read() as session:
        rows, _ = service.list_meetings(session, viewer.caller, limit=50)
        return [MeetingPublic.model_validate(r) for r in rows]


async def _meetings_page(
    request: Request,
    viewer: Viewer,
    *,
    form: dict[str, str] | None = None,
    error: str | None = None,
    decision: dict[str, Any] | None = None,
    created: str | None = None,
    link: dict[str, str] | None = None,
    status: int = 200,
) -> HTMLResponse:
    meetings = await run_in_threadpool(_meetings, request.app.state.runtime, viewer)
    base = str(request.base_url).rstrip("/")
    return render(
        request,
        "account/meetings.html",
        {
            "title": "Meetings",
            "meetings": meetings,
            "join_base": f"{base}/meet/",
            "form": form or {"topic": "", "mode": "none", "countries": ""},
            "modes": _COUNTRY_MODES,
            "error": error,
            "decision": decision,
            "created": next((m for m in meetings if m.id == created), None),
            # a join link just issued ({"meeting", "url", "topic"}): shown this once
            "link": link,
        },
        status=status,
        active="meetings",
    )


@router.get("/account/meetings", response_class=HTMLResponse)
async def meetings_page(request: Request, viewer: UserPage, created: str | None = None) -> Response:
    return await _meetings_page(request, viewer, created=created)


@router.post("/account/meetings", response_class=HTMLResponse, dependencies=[CsrfChecked])
async def create_meeting(
    request: Request,
    viewer: UserPage,
    topic: Annotated[str, Form(max_length=1000)] = "",
    mode: Annotated[str, Form(max_length=20)] = "none",
    countries: Annotated[str, Form(max_length=2000)] = "",
) -> Response:
    """Create a meeting hosted by the viewer's account: ``POST /v1/meetings``, then back to the list."""
    form = {"topic": topic, "mode": mode, "countries": countries}
    rt = request.app.state.runtime
    try:
        if mode not in _COUNTRY_MODES:
            raise InputError(f"unknown country list `{mode[:20]}`: expected none, approve or deny")
        codes = [c for c in countries.replace(",", " ").split() if c]
        if mode != "none" and not codes:
            raise InputError(f"name at least one country for the {mode} list")
        try:
            body = MeetingCreate.model_validate(
                {"topic": topic.strip() or "Meeting", "countries": {mode: codes}}
                if mode != "none"
                else {"topic": topic.strip() or "Meeting"}
            )
        except ValidationError as exc:
            raise form_error(exc) from None
        meeting, _, invite = await run_in_threadpool(
            service.create_meeting,
            rt,
            caller=viewer.caller,
            host_account_id=None,
            topic=body.topic,
            countries=None if body.countries is None else body.countries.as_dict(),
            client_ip=await get_client_ip(request),
        )
    except DeniedError as exc:
        return await _meetings_page(
            request,
            viewer,
            form=form,
            error=exc.message,
            decision=refused_decision(exc),
            status=exc.http_status,
        )
    except MeridianError as exc:
        return await _meetings_page(
            request, viewer, form=form, error=exc.message, status=exc.http_status
        )
    # rendered here rather than redirected: the invite is shown once and is in no URL
    base = str(request.base_url)
    return await _meetings_page(
        request,
        viewer,
        created=meeting.id,
        link={"meeting": meeting.id, "url": join_link(base, meeting.id, invite)},
    )


@router.post(
    "/account/meetings/{meeting_id}/invite", response_class=HTMLResponse, dependencies=[CsrfChecked]
)
async def new_invite(request: Request, meeting_id: IdPath, viewer: UserPage) -> Response:
    """A new join link for a live meeting (``POST /v1/meetings/{id}/invite``): shown once."""
    rt = request.app.state.runtime
    try:
        invite = await run_in_threadpool(
            access.rotate_invite, rt, caller=viewer.caller, meeting_id=meeting_id
        )
    except MeridianError as exc:
        return await _meetings_page(request, viewer, error=exc.message, status=exc.http_status)
    url = join_link(str(request.base_url), meeting_id, invite)
    return await _meetings_page(request, viewer, link={"meeting": meeting_id, "url": url})


@router.post(
    "/account/meetings/{meeting_id}/access", response_class=HTMLResponse, dependencies=[CsrfChecked]
)
async def meeting_access(
    request: Request,
    meeting_id: IdPath,
    viewer: UserPage,
    setting: Annotated[str, Form(max_length=20)] = "",
    value: Annotated[str, Form(max_length=5)] = "",
) -> Response:
    """Lock or unlock a meeting, or turn its waiting room on or off (``PATCH /v1/meetings/{id}``)."""
    rt = request.app.state.runtime
    try:
        if setting not in ("locked", "waiting_room") or value not in ("on", "off"):
            raise InputError(f"unknown meeting setting `{setting[:20]}={value[:5]}`")
        await run_in_threadpool(
            lambda: access.set_access(
                rt, caller=viewer.caller, meeting_id=meeting_id, **{setting: value == "on"}
            )
        )
    except MeridianError as exc:
        return await _meetings_page(request, viewer, error=exc.message, status=exc.http_status)
    return RedirectResponse("/account/meetings", status_code=303)


# -- meeting settings -----------------------------------------------------------------------------


def _settings(rt: Runtime, viewer: Viewer) -> dict[str, Any]:
    """The account's region setting (as ``GET /v1/accounts/{id}/regions``) and every region."""
    table = region_table(rt.engine.bundle)
    with rt.db.read() as session:
        account = get_account(session, viewer.caller, _account_id(viewer))
        setting = service.region_setting(session, rt, account)
        _, paid = service.account_plan(session, rt, account, rt.now())
        country = account.country
    regions = [
        {
            "code": code,
            "name": dc.name,
            "jurisdiction": dc.jurisdiction,
            "opened": dc.opened,
            "home": code == setting["home_region"],
            "default": code in setting["default"],
            "needs_opt_in": table.needs_opt_in(code, country),
            "notice": table.notices.get(code),
        }
        for code, dc in sorted(table.datacentres.items(), key=lambda item: item[1].name)
    ]
    return {"setting": setting, "paid": paid, "regions": regions, "country": country}


async def _settings_page(
    request: Request,
    viewer: Viewer,
    *,
    chosen: list[str] | None = None,
    opted: list[str] | None = None,
    error: str | None = None,
    saved: bool = False,
    status: int = 200,
) -> HTMLResponse:
    data = await run_in_threadpool(_settings, request.app.state.runtime, viewer)
    setting = data["setting"]
    return render(
        request,
        "account/settings.html",
        {
            "title": "Meeting settings",
            **data,
            # what the form shows ticked: what was just sent back (after an error), or in effect
            "checked": set(setting["regions"] if chosen is None else chosen)
            | {setting["home_region"]},
            "opted": set(setting["opt_in"] if opted is None else opted),
            "error": error,
            "saved": saved,
        },
        status=status,
        active="regions",
    )


@router.get("/account/settings", response_class=HTMLResponse)
async def settings_page(request: Request, viewer: UserPage, saved: bool = False) -> Response:
    return await _settings_page(request, viewer, saved=saved)


@router.post("/account/settings", response_class=HTMLResponse, dependencies=[CsrfChecked])
async def save_settings(
    request: Request,
    viewer: UserPage,
    regions: Annotated[list[str], Form()] = [],  # noqa: B006 - FastAPI copies defaults
    opt_in: Annotated[list[str], Form()] = [],  # noqa: B006
    action: Annotated[str, Form(max_length=20)] = "save",
) -> Response:
    """Choose the account's regions (``PUT /v1/accounts/{id}/regions``), or return to the default.

    The home region's box is disabled, so a browser never sends it: the service keeps it anyway,
    whatever is sent.
    """
    rt = request.app.state.runtime
    reset = action == "default"
    try:
        try:
            body = RegionsUpdate.model_validate(
                {"regions": None, "opt_in": []} if reset else {"regions": regions, "opt_in": opt_in}
            )
        except ValidationError as exc:
            raise form_error(exc) from None
        await run_in_threadpool(
            service.set_regions,
            rt,
            caller=viewer.caller,
            account_id=_account_id(viewer),
            regions=body.regions,
            opt_in=body.opt_in,
        )
    except MeridianError as exc:
        return await _settings_page(
            request,
            viewer,
            chosen=None if reset else regions,
            opted=None if reset else opt_in,
            error=exc.message,
            status=exc.http_status,
        )
    return RedirectResponse("/account/settings?saved=true", status_code=303)


# -- the meeting page -----------------------------------------------------------------------------


def _meeting_for(rt: Runtime, viewer: Viewer | None, meeting_id: str) -> dict[str, Any]:
    """What the page may say before joining: the meeting itself only to a viewer the API would
    show it to (a guest learns nothing until the control plane answers its join), and the
    name a signed-in user's account goes by."""
    if viewer is None:
        return {"meeting": None, "name": ""}
    with rt.db.read() as session:
        try:
            meeting: MeetingPublic | None = MeetingPublic.model_validate(
                service.get_meeting(session, viewer.caller, meeting_id)
            )
        except NotFoundError:
            meeting = None
        name = ""
        if viewer.caller.account_id is not None:
            try:
                name = get_account(session, viewer.caller, viewer.caller.account_id).name
            except NotFoundError:
                name = ""
    return {"meeting": meeting, "name": name}


@router.get("/meet/{meeting_id}", response_class=HTMLResponse)
async def meeting_page(request: Request, meeting_id: IdPath, viewer: MaybeViewerDep) -> Response:
    """Join a meeting from the browser (signed in, or as a guest with a name)."""
    rt = request.app.state.runtime
    data = await run_in_threadpool(_meeting_for, rt, viewer, meeting_id)
    title = data["meeting"].topic if data["meeting"] is not None else "Join a meeting"
    trust: dict[str, Any] = {}
    if data["meeting"] is not None and data["meeting"].status != "live":
        # what the page checks the receipt with: the service's own word for the keys (the
        # independent check is `meridian receipt verify` with keys obtained out of band)
        signalling = getattr(request.app.state, "signalling", None)
        nodes = await signalling.nodes.node_keys() if signalling is not None else {}
        trust = {"log_key": rt.log.vkey, "node_keys": json.dumps(nodes, sort_keys=True)}
    return render(
        request,
        "meeting.html",
        {
            "title": title,
            "meeting_id": meeting_id,
            # `meridian serve --demo`: a browser here may connect as if from one of these places
            "demo_places": sorted(getattr(request.app.state, "demo_network", None) or ()),
            **trust,
            **data,
        },
        active="meetings" if viewer is not None and viewer.caller.role == "user" else None,
    )


@router.get("/meet/{meeting_id}/receipt.json")
async def meeting_receipt(request: Request, meeting_id: IdPath, viewer: MaybeViewerDep) -> Response:
    """The meeting's residency receipt for the signed-in viewer, as ``GET
    /v1/meetings/{id}/receipt`` gives it (the same scoping: 404 for anyone else, 409 while live),
    downloaded as a file; the page checks it in the browser."""
    if viewer is None:
        raise NotFoundError(f"no meeting `{meeting_id}`")
    rt = request.app.state.runtime
    live_signalling = getattr(request.app.state, "signalling", None)
    if live_signalling is not None:  # a seal under way (the meeting just ended): wait for it
        await live_signalling.sealing(meeting_id)
    made = await run_in_threadpool(receipts.meeting_receipt, rt, viewer.caller, meeting_id)
    if made is None:  # ended but not sealed yet: seal it now, as the API does
        signalling = request.app.state.signalling
        await receipts.seal(rt, signalling.nodes, meeting_id)
        made = await run_in_threadpool(receipts.meeting_receipt, rt, viewer.caller, meeting_id)
    if made is None:
        raise ConflictError(f"meeting `{meeting_id}` could not be sealed: try again")
    return Response(
        json.dumps(made, ensure_ascii=False),
        media_type="application/json",
        headers={"Content-Disposition": f'attachment; filename="receipt-{meeting_id}.json"'},
    )


@router.post("/meet/{meeting_id}/end", response_class=HTMLResponse, dependencies=[CsrfChecked])
async def end_meeting(request: Request, meeting_id: IdPath, viewer: MaybeViewerDep) -> Response:
    """End the meeting (``POST /v1/meetings/{id}/end``), then back to its page, which says so.

    Only a viewer the API lets end it (its host's users, their partner, an operator) is offered
    the button; anyone else gets the API's answer (404 for a meeting it may not see).
    """
    if viewer is None:
        raise NotFoundError(f"no meeting `{meeting_id}`")
    # ended meanwhile (another tab, the timer): its page says so
    with contextlib.suppress(ConflictError):
        await end_everywhere(
            request.app.state.runtime,
            getattr(request.app.state, "signalling", None),
            meeting_id=meeting_id,
            caller=viewer.caller,
            actor=viewer.caller.actor,
        )
    return RedirectResponse(f"/meet/{meeting_id}", status_code=303)
