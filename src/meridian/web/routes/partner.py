"""Pages: the partner portal (being built)."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse

from ..deps import page_for
from ..render import render

router = APIRouter(include_in_schema=False)
__all__ = ["router"]


@router.get("/partner", response_class=HTMLResponse, dependencies=[page_for("partner")])
def home(request: Request) -> HTMLResponse:
    return render(request, "console/overview.html", active="customers")
