"""Pages: the transparency report on government requests — public at ``/report``, and in the
operator console at ``/console/report``.

The report is computed exactly as ``GET /v1/reports/transparency`` computes it
(:func:`meridian.reports.compute.report_from_log` at the log's latest signed checkpoint, for
the same period and with the same defaults), so the page and the API give the same counts. The
page draws its own bar charts as SVG on the server — shapes carry classes, never ``style``
attributes, which the pages' Content-Security-Policy forbids — each beside a table of the same
counts, and links to the API's JSON, CSV and HTML renderings of the same period.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated
from urllib.parse import urlencode

from fastapi import APIRouter, Query, Request
from fastapi.responses import HTMLResponse, Response
from starlette.concurrency import run_in_threadpool

from ...errors import MeridianError
from ...geography.jurisdictions import jurisdiction_name
from ...reports.compute import report_from_log
from ...reports.model import TransparencyReport, parse_day
from ...runtime import Runtime
from ..deps import MaybeViewerDep, Viewer, page_for
from ..render import render

router = APIRouter(include_in_schema=False)
__all__ = ["Chart", "bar_chart", "router"]

OperatorPage = Annotated[Viewer, page_for("operator")]

#: the charts' geometry, in SVG user units
WIDTH = 560
LABEL_WIDTH = 200
BAR_SPACE = 300
ROW = 28
BAR = 18


@dataclass(frozen=True, slots=True)
class Bar:
    """One bar of a chart: its key, label, count and where it is drawn."""

    key: str
    label: str
    count: int
    y: int
    width: int

    @property
    def middle(self) -> int:
        """The baseline of the bar's texts."""
        return self.y + BAR // 2 + 5


@dataclass(frozen=True, slots=True)
class Chart:
    """A horizontal bar chart of one breakdown, with the same rows as its table."""

    name: str
    title: str
    column: str
    bars: tuple[Bar, ...]

    @property
    def height(self) -> int:
        return max(1, len(self.bars)) * ROW + 8

    @property
    def total(self) -> int:
        return sum(b.count for b in self.bars)


def _bar_width(count: int, top: int) -> int:
    if count <= 0 or top <= 0:
        return 0
    return max(2, (count * BAR_SPACE + top // 2) // top)


def bar_chart(
    name: str, title: str, column: str, rows: tuple[tuple[str, int], ...], *, places: bool = False
) -> Chart:
    """The chart of ``rows`` (``(key, count)``), bars scaled to the largest count."""
    top = max((count for _, count in rows), default=0)
    bars = tuple(
        Bar(
            key=key,
            label=f"{key} ({jurisdiction_name(key)})" if places else key.replace("_", " "),
            count=count,
            y=i * ROW + 4,
            width=_bar_width(count, top),
        )
        for i, (key, count) in enumerate(rows)
    )
    return Chart(name, title, column, bars)


def _charts(report: TransparencyReport) -> list[Chart]:
    return [
        bar_chart(
            "jurisdiction",
            "Requests by requesting jurisdiction",
            "Jurisdiction",
            report.by_jurisdiction,
            places=True,
        ),
        bar_chart("legal-type", "Requests by legal type", "Legal type", report.by_legal_type),
        bar_chart("action", "Requests by action requested", "Action", report.by_action),
        bar_chart("outcome", "Requests by outcome", "Outcome", report.by_outcome),
    ]


def _downloads(report: TransparencyReport) -> list[tuple[str, str, str]]:
    """The API's renderings of the same period: (format, label, URL)."""
    period = {"from": report.period.start.isoformat(), "to": report.period.end.isoformat()}
    return [
        (fmt, label, "/v1/reports/transparency?" + urlencode({**period, "format": fmt}))
        for fmt, label in (("json", "JSON"), ("csv", "CSV"), ("html", "HTML (one page)"))
    ]


async def _page(request: Request, template: str, start: str, end: str, *, active: str) -> Response:
    """The report for the period asked (defaults as the API's), or the form with the error."""
    rt: Runtime = request.app.state.runtime
    report = None
    error = None
    status = 200
    try:
        first = parse_day(start.strip(), "from") if start.strip() else None
        last = parse_day(end.strip(), "to") if end.strip() else None
        # the API's own computation: the latest signed checkpoint, never a fresh signature
        report = await run_in_threadpool(
            lambda: report_from_log(rt.log, start=first, end=last, fresh=False)
        )
    except MeridianError as exc:
        error, status = exc.message, exc.http_status
    context = {
        "report": report,
        "error": error,
        "start": start if report is None else report.period.start.isoformat(),
        "end": end if report is None else report.period.end.isoformat(),
        "asked": {"from": start, "to": end},
        "charts": [] if report is None else _charts(report),
        "downloads": [] if report is None else _downloads(report),
        "place": jurisdiction_name,
        "width": WIDTH,
        "label_width": LABEL_WIDTH,
        "bar_height": BAR,
        "action": request.url.path,
    }
    return render(request, template, context, status=status, active=active)


@router.get("/report", response_class=HTMLResponse)
async def public_report(
    request: Request,
    viewer: MaybeViewerDep,
    start: Annotated[str, Query(alias="from", max_length=20)] = "",
    end: Annotated[str, Query(alias="to", max_length=20)] = "",
) -> Response:
    """The transparency report, for anyone: counts only, no one is named."""
    return await _page(request, "report.html", start, end, active="report")


@router.get("/console/report", response_class=HTMLResponse)
async def console_report(
    request: Request,
    viewer: OperatorPage,
    start: Annotated[str, Query(alias="from", max_length=20)] = "",
    end: Annotated[str, Query(alias="to", max_length=20)] = "",
) -> Response:
    """The transparency report in the operator console (the same report as ``/report``)."""
    return await _page(request, "console/report.html", start, end, active="report")
