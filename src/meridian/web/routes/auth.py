"""Signing in and out, and the front page that sends each viewer to their own pages."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Form, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from starlette.concurrency import run_in_threadpool

from ...clock import system_clock
from ...errors import AuthenticationError, ForbiddenError
from ...http.ratelimit import authenticate_counted, connection_ip, rate_limits
from ...http.session import COOKIE, SESSION_SECONDS, SessionSeal, secure_cookies
from ...identity import sessions
from ...runtime import Runtime
from ..deps import CsrfChecked, MaybeViewerDep
from ..render import render

router = APIRouter(include_in_schema=False)
__all__ = ["HOME", "router", "start_session"]

#: where each role lands after signing in
HOME = {"operator": "/console", "partner": "/partner", "user": "/account"}


def _safe_next(value: str | None, fallback: str) -> str:
    # only a path on this site: never `//elsewhere` or `https://…` (an open redirect)
    if value and value.startswith("/") and not value.startswith("//") and "\\" not in value:
        return value
    return fallback


@router.get("/", response_class=HTMLResponse)
async def front(request: Request, viewer: MaybeViewerDep) -> Response:
    if viewer is not None:
        return RedirectResponse(HOME[viewer.caller.role], status_code=303)
    return render(request, "front.html", active="front")


@router.get("/login", response_class=HTMLResponse)
async def login_form(request: Request, viewer: MaybeViewerDep, next: str | None = None) -> Response:
    return render(request, "login.html", {"next": next or "", "error": None}, active="login")


@router.post("/login", response_class=HTMLResponse, dependencies=[CsrfChecked])
async def login(
    request: Request,
    token: Annotated[str, Form(max_length=200)] = "",
    next: Annotated[str, Form(max_length=2000)] = "",
) -> Response:
    secret = token.strip()
    # every attempt counts per client address, and a failure also as a failed authentication
    await rate_limits(request.app).hit("signin", connection_ip(request))
    error = None
    if not secret:
        error = "paste an api token to sign in"
    else:
        try:
            caller = await authenticate_counted(request, secret)
        except (AuthenticationError, ForbiddenError) as exc:
            error = exc.message
    if error is not None:
        return render(
            request, "login.html", {"next": next, "error": error}, status=401, active="login"
        )
    response = RedirectResponse(_safe_next(next, HOME[caller.role]), status_code=303)
    await run_in_threadpool(start_session, request, response, secret)
    return response


def _open(rt: Runtime, sid: str, token_id: str) -> None:
    with rt.db.write() as session:
        sessions.start_session(
            session, sid=sid, token_id=token_id, at=system_clock(), seconds=SESSION_SECONDS
        )


def _close(rt: Runtime, sid: str) -> None:
    with rt.db.write() as session:
        sessions.end_session(session, sid, system_clock())


def start_session(request: Request, response: Response, secret: str) -> None:
    """Sign the browser in with the API token ``secret``: a new session, open in the database,
    and the sealed cookie that names it. It reads and writes the database: call it from a
    thread (as a plain route is run), not on the event loop."""
    seal: SessionSeal = request.app.state.sessions
    rt: Runtime = request.app.state.runtime
    caller = request.app.state.tokens.get(rt, secret)
    sid = sessions.new_session_id()
    _open(rt, sid, caller.token_id)
    response.set_cookie(
        COOKIE,
        seal.seal(secret, sid=sid),
        max_age=SESSION_SECONDS,
        httponly=True,
        samesite="strict",
        secure=secure_cookies(request),
        path="/",
    )


@router.post("/logout", dependencies=[CsrfChecked])
async def logout(request: Request, viewer: MaybeViewerDep) -> Response:
    """Sign out: the session ends in the database (on every replica), and the cookie goes."""
    if viewer is not None:
        await run_in_threadpool(_close, request.app.state.runtime, viewer.session.sid)
    response = RedirectResponse("/", status_code=303)
    response.delete_cookie(COOKIE, path="/")
    return response
