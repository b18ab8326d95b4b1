"""Pages: the operator console's overview (being built)."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse

from ..deps import page_for
from ..render import render

router = APIRouter(include_in_schema=False)
__all__ = ["router"]


@router.get("/console", response_class=HTMLResponse, dependencies=[page_for("operator")])
def overview(request: Request) -> HTMLResponse:
    return render(request, "console/overview.html", active="overview")
