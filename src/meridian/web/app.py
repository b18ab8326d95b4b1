"""``install_web(app)``: the pages, their static files and their security headers on the API's app."""

from __future__ import annotations

import logging
from importlib.resources import files
from pathlib import Path

from fastapi import FastAPI, Request
from fastapi.responses import RedirectResponse, Response
from fastapi.staticfiles import StaticFiles

from ..errors import SignInRequiredError
from ..http.errors import refused_decision
from ..http.session import SessionSeal
from ..keyfiles import load_or_create_secret
from ..settings import Settings
from .render import render
from .security import SecurityHeaders, relay_origins

__all__ = ["install_web", "is_page", "page_error", "start_sessions"]

log = logging.getLogger("meridian.web")

_NOT_PAGES = ("/v1/", "/log/", "/docs", "/openapi.json", "/static/")


def is_page(path: str) -> bool:
    """Whether an error on ``path`` is shown as a page (else it is the API's JSON)."""
    return not path.startswith(_NOT_PAGES)


def start_sessions(app: FastAPI, settings: Settings) -> None:
    """Read (in development, create) the session key: called at start-up, never at import."""
    key = load_or_create_secret(
        settings.session_key,
        create=settings.mode == "development",
        what="session key",
        setting="MERIDIAN_SESSION_KEY",
    )
    app.state.sessions = SessionSeal(key)


def page_error(request: Request, exc: Exception, status: int, message: str) -> Response | None:
    """An error met while serving a page, as a page (never a traceback, never JSON).

    ``None`` for a path that is not a page: the API's handler answers with JSON.
    """
    if not is_page(request.url.path):
        return None
    if isinstance(exc, SignInRequiredError):
        return RedirectResponse(exc.location, status_code=303)
    decision = refused_decision(exc)
    titles = {401: "Sign in", 403: "Not allowed", 404: "Not found", 409: "Conflict"}
    title = titles.get(status, "Something went wrong" if status >= 500 else "Cannot do that")
    return render(
        request,
        "error.html",
        {"title": title, "message": message, "status": status, "decision": decision},
        status=status,
    )


def install_web(app: FastAPI, settings: Settings) -> None:
    """Add the pages and static files to ``app``; called by ``create_app``."""
    from .routes import ROUTERS

    static = Path(str(files("meridian.web") / "static"))
    if not (static / "vendor" / "d3-geo.min.js").exists():
        log.warning(
            "the pages' front-end libraries are missing from %s: run `make install`",
            static / "vendor",
        )
    app.mount("/static", StaticFiles(directory=static), name="static")
    for router in ROUTERS:
        app.include_router(router)
    app.add_middleware(SecurityHeaders, connect=relay_origins(settings.node_urls.values()))
    app.state.page_error = page_error
