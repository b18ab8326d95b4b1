"""Pages: the operator console's overview — what Meridian is deciding now, and what it runs on.

One screen for an operator starting a shift: decisions per minute over the last hour of the
service's clock and the rules behind the denials (read from the log, :mod:`meridian.audit.stats`),
the live meetings (:func:`~meridian.meetings.service.live_counts`, as every page counts them), the log's size and last signed checkpoint, and the
bundle in force.
"""

from __future__ import annotations

import base64
from dataclasses import dataclass
from typing import Annotated, Any

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse
from starlette.concurrency import run_in_threadpool

from ...audit.stats import DecisionStats, decision_stats
from ...identity.tokens import Caller
from ...meetings.service import live_counts
from ...storage.models import PolicyBundle
from ..deps import Viewer, page_for
from ..render import render

router = APIRouter(include_in_schema=False)
__all__ = ["Bar", "chart_bars", "router"]

Operator = Annotated[Viewer, page_for("operator")]

#: the window of the chart, in minutes of the service's clock
WINDOW_MINUTES = 60
#: the chart's drawing area, in SVG user units (the SVG scales to its box)
CHART_WIDTH = 720
CHART_HEIGHT = 160
_LEFT = 40  # room for the axis labels
_BOTTOM = 20


@dataclass(frozen=True, slots=True)
class Bar:
    """One minute of the chart: where its two stacked rectangles go, and what it says."""

    x: float
    width: float
    allowed_y: float
    allowed_height: float
    denied_y: float
    denied_height: float
    label: str
    #: a time label under the axis every ten minutes (else empty)
    tick: str


def chart_bars(stats: DecisionStats) -> list[Bar]:
    """The bars of the decisions-per-minute chart: allowed at the bottom, denied stacked on top."""
    plot_width = CHART_WIDTH - _LEFT
    plot_height = CHART_HEIGHT - _BOTTOM
    step = plot_width / max(len(stats.minutes), 1)
    scale = plot_height / stats.peak if stats.peak else 0.0
    bars = []
    for i, minute in enumerate(stats.minutes):
        allowed = minute.allowed * scale
        denied = minute.denied * scale
        clock = minute.start.strftime("%H:%M")
        bars.append(
            Bar(
                x=round(_LEFT + i * step + step * 0.1, 2),
                width=round(step * 0.8, 2),
                allowed_y=round(plot_height - allowed, 2),
                allowed_height=round(allowed, 2),
                denied_y=round(plot_height - allowed - denied, 2),
                denied_height=round(denied, 2),
                label=f"{clock} UTC: {minute.total} decisions, {minute.denied} denied",
                tick=clock if minute.start.minute % 10 == 0 else "",
            )
        )
    return bars


def _read(rt: Any, caller: Caller) -> dict[str, Any]:
    """Everything the overview shows that comes from the database (run off the event loop)."""
    now = rt.now()
    with rt.db.read() as session:
        stats = decision_stats(session, now=now, minutes=WINDOW_MINUTES)
        live = live_counts(session, caller)
        row = session.get(PolicyBundle, rt.digest)
        loaded = None if row is None else {"at": row.loaded_at, "by": row.loaded_by}
    size = rt.log.sync()
    latest = rt.log.latest()
    checkpoint = None
    if latest is not None:
        checkpoint = {
            "size": latest.checkpoint.size,
            "time": latest.checkpoint.time,
            "root": base64.b64encode(latest.checkpoint.root).decode(),
            "behind": size - latest.checkpoint.size,
        }
    return {
        "stats": stats,
        "loaded": loaded,
        "log_size": size,
        "checkpoint": checkpoint,
        "live_meetings": live.meetings,
        "live_participants": live.participants,
        "log_problems": rt.log.problems(),
    }


@router.get("/console", response_class=HTMLResponse)
async def overview(request: Request, viewer: Operator) -> HTMLResponse:
    rt = request.app.state.runtime
    data = await run_in_threadpool(_read, rt, viewer.caller)
    bundle = rt.engine.bundle
    return render(
        request,
        "console/overview.html",
        {
            **data,
            "title": "Overview",
            "bars": chart_bars(data["stats"]),
            "chart": {
                "width": CHART_WIDTH,
                "height": CHART_HEIGHT,
                "left": _LEFT,
                "base": CHART_HEIGHT - _BOTTOM,
            },
            "bundle": {
                "name": bundle.document.bundle,
                "version": bundle.document.version,
                "digest": bundle.ref.digest,
                "rules": len(bundle.document.rules),
            },
        },
        active="overview",
    )
