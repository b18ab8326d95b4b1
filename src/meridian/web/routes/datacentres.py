"""Pages: the operator console's data centres (a world map and its table) and its meetings list.

``/console/datacentres`` shows every data-centre region of the bundle in force with the load
the control plane sees right now, the live meetings and the cascade links between the regions
they use; ``?meeting=ID`` adds what each region node carried for that one meeting. The page is
rendered whole on the server (the tables are the content; the map is drawn over them by
``static/js/map.js``), and the script refreshes it from ``/console/datacentres.json``, which is
the same view as data.

Every figure comes from what the API reads: the region list and live load are the rows
``GET /v1/datacentres`` returns (:func:`~meridian.meetings.regions.datacentre_rows` over
:meth:`Signalling.live_load`; the page is for operators, who see every meeting id), meetings come
from :func:`~meridian.meetings.service.list_meetings` / :func:`get_meeting` with the viewer's own
caller, and the carried figures are :meth:`Signalling.carried`, the nodes' own counters, as
``GET /v1/meetings/{id}/carried`` returns them. Who joined from where (participants by country)
is read from the participations of those same meetings: the operator sees the same facts in the
log, one ``meeting.join`` decision each.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Sequence
from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Query, Request
from fastapi.responses import HTMLResponse, JSONResponse
from sqlalchemy import select
from sqlalchemy.orm import Session
from starlette.concurrency import run_in_threadpool

from ...identity.tokens import Caller
from ...meetings import service
from ...meetings.live import Signalling
from ...meetings.placement import links_between
from ...meetings.regions import datacentre_rows
from ...runtime import Runtime
from ...storage.models import Meeting, MeetingStatus, Participation
from ..deps import Viewer, page_for
from ..render import render

router = APIRouter(include_in_schema=False)
__all__ = ["router"]

OperatorDep = Annotated[Viewer, page_for("operator")]
#: ``?meeting=``: a meeting id, or empty for none
MeetingQuery = Annotated[str, Query(max_length=100, pattern=r"^[A-Za-z0-9_.\-]*$")]

#: how many meetings the meetings list and the map's live list show (newest first)
LIST_LIMIT = 100
#: a node's counters for one meeting; any of them above zero means the region carried it
COUNTERS = (
    "bytes_in",
    "bytes_out",
    "frames_in",
    "frames_out",
    "media_bytes_in",
    "media_bytes_out",
    "keys",
    "participants",
)
_RELAYED = ("bytes_in", "bytes_out", "frames_in", "frames_out", "participants")


def _iso(value: datetime | None) -> str | None:
    return None if value is None else value.isoformat()


def _signalling(request: Request) -> Signalling | None:
    signalling: Signalling | None = getattr(request.app.state, "signalling", None)
    return signalling


# -- what the API reads ----------------------------------------------------------------------


def region_rows(rt: Runtime, signalling: Signalling | None) -> list[dict[str, Any]]:
    """``GET /v1/datacentres``'s entries, as an operator reads them (every meeting id)."""
    live = signalling.live_load() if signalling is not None else {}
    return [row.to_dict() for row in datacentre_rows(rt.engine.bundle, live, visible=None)]


def _attendance(session: Session, meeting_ids: Sequence[str]) -> dict[str, dict[str, Any]]:
    """Per meeting: participants by country and the regions that carried them (now, and ever)."""
    out: dict[str, dict[str, Any]] = {
        m: {"now": Counter(), "ever": Counter(), "dcs_now": set(), "dcs_ever": set()}
        for m in meeting_ids
    }
    if not meeting_ids:
        return out
    rows = session.scalars(
        select(Participation).where(Participation.meeting_id.in_(list(meeting_ids)))
    )
    for p in rows:
        seen = out[p.meeting_id]
        seen["ever"][p.country] += 1
        seen["dcs_ever"].add(p.dc)
        if p.left_at is None:
            seen["now"][p.country] += 1
            seen["dcs_now"].add(p.dc)
    return out


def _by_country(counts: Counter[str]) -> list[dict[str, Any]]:
    return [{"country": c, "count": n} for c, n in sorted(counts.items())]


def _meeting_row(
    meeting: Meeting, seen: dict[str, Any], uses: Iterable[str] | None
) -> dict[str, Any]:
    """One meeting as the pages list it; ``uses``: the regions its live participants are on."""
    live = meeting.status == MeetingStatus.LIVE
    countries: Counter[str] = seen["now"] if live else seen["ever"]
    if uses is None:
        uses = seen["dcs_now"] if live else seen["dcs_ever"]
    return {
        "id": meeting.id,
        "topic": meeting.topic,
        "host": meeting.host_account_id,
        "host_country": meeting.host_country,
        "status": meeting.status,
        "key_region": meeting.key_region,
        "allowed": sorted(meeting.regions),
        "started": _iso(meeting.created_at),
        "ended": _iso(meeting.ended_at),
        "participants": sum(countries.values()),
        "countries": _by_country(countries),
        "regions": sorted(uses),
    }


def live_uses(signalling: Signalling | None) -> dict[str, list[str]]:
    """Per live meeting, the regions whose relays carry its participants now.

    The control plane's own view; read on its event loop, where that state changes.
    """
    if signalling is None:
        return {}
    return {
        meeting_id: sorted(r for r, n in live.uses.items() if n > 0)
        for meeting_id, live in signalling.meetings.items()
    }


def meeting_rows(
    rt: Runtime, caller: Caller, uses: dict[str, list[str]], *, status: str | None
) -> tuple[list[dict[str, Any]], int]:
    """The meetings ``caller`` may see (``GET /v1/meetings``), newest first, and their count."""
    with rt.db.read() as session:
        rows, count = service.list_meetings(session, caller, status=status, limit=LIST_LIMIT)
        seen = _attendance(session, [m.id for m in rows])
        return [
            _meeting_row(m, seen[m.id], uses.get(m.id) if m.status == MeetingStatus.LIVE else None)
            for m in rows
        ], count


def _links(live: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The cascade links of the live meetings: each pair of regions with the meetings on it."""
    pairs: dict[tuple[str, str], list[str]] = {}
    for meeting in live:
        for pair in links_between(meeting["regions"]):
            pairs.setdefault(pair, []).append(meeting["id"])
    return [{"regions": list(p), "meetings": sorted(m)} for p, m in sorted(pairs.items())]


async def chosen_meeting(
    rt: Runtime, caller: Caller, signalling: Signalling | None, meeting_id: str
) -> dict[str, Any]:
    """One meeting (404 if the caller may not see it) and what each region node carried for it."""
    uses = live_uses(signalling)

    def read() -> dict[str, Any]:
        with rt.db.read() as session:
            meeting = service.get_meeting(session, caller, meeting_id)
            seen = _attendance(session, [meeting.id])[meeting.id]
            live = uses.get(meeting.id) if meeting.status == MeetingStatus.LIVE else None
            return _meeting_row(meeting, seen, live)

    row = await run_in_threadpool(read)
    counted = await signalling.carried(meeting_id) if signalling is not None else {}
    carried, unanswered = [], []
    for region, figures in sorted(counted.items()):
        if "error" in figures:
            unanswered.append({"region": region, "error": figures["error"]})
        elif any(figures.get(k) for k in COUNTERS):
            relayed = any(figures.get(k) for k in _RELAYED)
            entry = {k: figures.get(k, 0) for k in COUNTERS}
            entry.update(region=region, key_region=region == row["key_region"], relay=relayed)
            carried.append(entry)
    relays = [c["region"] for c in carried if c["relay"]]
    links = [list(p) for p in links_between(relays)]
    return {"meeting": row, "carried": carried, "unanswered": unanswered, "links": links}


def _live_counts(rt: Runtime, caller: Caller) -> service.LiveCounts:
    with rt.db.read() as session:
        return service.live_counts(session, caller)


async def datacentres_view(
    request: Request, caller: Caller, meeting_id: str | None
) -> dict[str, Any]:
    """Everything the data-centres page shows, as data (the page and its JSON share it)."""
    rt: Runtime = request.app.state.runtime
    signalling = _signalling(request)
    chosen = None
    if meeting_id:
        chosen = await chosen_meeting(rt, caller, signalling, meeting_id)
    uses = live_uses(signalling)
    live, _ = await run_in_threadpool(meeting_rows, rt, caller, uses, status=MeetingStatus.LIVE)
    counts = await run_in_threadpool(_live_counts, rt, caller)
    regions = region_rows(rt, signalling)
    return {
        "at": rt.now().isoformat(),
        "regions": regions,
        "live": live,
        "live_meetings": counts.meetings,
        "live_participants": counts.participants,
        "links": _links(live),
        "chosen": chosen,
    }


# -- the pages -------------------------------------------------------------------------------


@router.get("/console/datacentres", response_class=HTMLResponse)
async def datacentres_page(
    request: Request, viewer: OperatorDep, meeting: MeetingQuery = ""
) -> HTMLResponse:
    """The map and its tables; ``?meeting=ID`` shows where that meeting went."""
    view = await datacentres_view(request, viewer.caller, meeting or None)
    return render(request, "console/datacentres.html", {"view": view}, active="datacentres")


@router.get("/console/datacentres.json")
async def datacentres_data(
    request: Request, viewer: OperatorDep, meeting: MeetingQuery = ""
) -> JSONResponse:
    """The data-centres page as data, for its script's refresh (operators only)."""
    view = await datacentres_view(request, viewer.caller, meeting or None)
    return JSONResponse(view, headers={"cache-control": "no-store"})


@router.get("/console/meetings", response_class=HTMLResponse)
async def meetings_page(request: Request, viewer: OperatorDep) -> HTMLResponse:
    """Live and recent meetings, newest first, each linked to its map."""
    rt: Runtime = request.app.state.runtime
    uses = live_uses(_signalling(request))
    rows, count = await run_in_threadpool(meeting_rows, rt, viewer.caller, uses, status=None)
    counts = await run_in_threadpool(_live_counts, rt, viewer.caller)
    live = [r for r in rows if r["status"] == "live"]
    recent = [r for r in rows if r["status"] != "live"]
    return render(
        request,
        "console/meetings.html",
        {
            "live": live,
            "recent": recent,
            "count": count,
            "shown": len(rows),
            "live_meetings": counts.meetings,
            "live_participants": counts.participants,
        },
        active="meetings",
    )
