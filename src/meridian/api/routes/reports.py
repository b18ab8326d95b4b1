"""Public reports computed from the log: counts only, recomputable from an export."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Query, Response

from ...http.deps import RuntimeDep
from ...reports.compute import report_from_log
from ...reports.model import media_type, parse_day, parse_format
from ...reports.render import render
from .common import errors

router = APIRouter(tags=["reports"])
__all__ = ["router"]

_REPORT_RESPONSE: dict[int | str, dict[str, Any]] = {
    200: {
        "description": "the report in the format asked for; the same log and checkpoint give "
        "the same bytes",
        "content": {
            "application/json": {"schema": {"type": "object"}},
            "text/csv": {"schema": {"type": "string"}},
            "text/html": {"schema": {"type": "string"}},
        },
    }
}


@router.get(
    "/v1/reports/transparency",
    response_class=Response,
    responses={**_REPORT_RESPONSE, **errors()},
)
def transparency_report(
    rt: RuntimeDep,
    start: Annotated[
        str | None,
        Query(
            alias="from",
            description="first day of the period, YYYY-MM-DD (UTC, inclusive); "
            "default: the day of the first request in the log",
        ),
    ] = None,
    end: Annotated[
        str | None,
        Query(
            alias="to",
            description="last day of the period, YYYY-MM-DD (UTC, inclusive); "
            "default: the day of the last request in the log",
        ),
    ] = None,
    fmt: Annotated[str, Query(alias="format", description="`json`, `csv` or `html`")] = "json",
) -> Response:
    """The transparency report on government requests, at the log's latest checkpoint. Public."""
    report_format = parse_format(fmt, "format")
    first = None if start is None else parse_day(start, "from")
    last = None if end is None else parse_day(end, "to")
    rt.log.guard()  # a log that failed its self-check gives no report, not even a cached one
    latest = rt.log.latest()
    key = (None if latest is None else latest.note, first, last, report_format)
    body = _CACHE.get(key)
    if body is None:
        report = report_from_log(rt.log, start=first, end=last, fresh=False)
        body = render(report, report_format)
        if len(_CACHE) >= _CACHE_SIZE:
            _CACHE.pop(next(iter(_CACHE)))
        _CACHE[key] = body
    return Response(body, media_type=media_type(report_format))


# A report is a function of the checkpoint it is computed at and the period: answers are kept
# per (checkpoint, period, format), so a public caller asking again costs no read of the log.
# The note text names the log (origin and key), so two services in one process never share one.
_CACHE_SIZE = 64
_CACHE: dict[tuple[object, ...], bytes] = {}
