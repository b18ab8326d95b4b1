"""Who is looking at a page: the signed-in viewer, the roles a page needs, the CSRF check.

A page dependency opens the session cookie, authenticates its token through the API's own token
cache (so revocation and suspension apply to pages exactly as to the API) and puts the viewer on
``request.state``. A page for a role the viewer lacks is a 403 page; a page that needs a
sign-in and has none sends the browser to ``/login`` and back.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated, Any

from fastapi import Depends, Request
from starlette.concurrency import run_in_threadpool

from ..errors import AuthenticationError, ForbiddenError, SignInRequiredError
from ..http.session import COOKIE, Session, SessionSeal
from ..identity.sessions import session_caller
from ..identity.tokens import Caller, Role

__all__ = [
    "CsrfChecked",
    "MaybeViewerDep",
    "Viewer",
    "check_csrf",
    "page_for",
]


@dataclass(frozen=True, slots=True)
class Viewer:
    """The signed-in person behind one page request."""

    caller: Caller
    session: Session
    csrf: str

    @property
    def token(self) -> str:
        """The API token of the session (what the page acts with)."""
        return self.session.token


async def get_viewer(request: Request) -> Viewer | None:
    if hasattr(request.state, "viewer"):
        cached: Viewer | None = request.state.viewer
        return cached
    request.state.viewer = None
    seal: SessionSeal | None = getattr(request.app.state, "sessions", None)
    if seal is None:
        return None
    session = seal.open(request.cookies.get(COOKIE))
    if session is None:
        return None
    rt = request.app.state.runtime
    try:
        # the session's row is read on every request, never cached: a sign-out holds at once,
        # on every replica
        caller = await run_in_threadpool(
            session_caller, rt, session.sid, session.token, request.app.state.tokens.get
        )
    except (AuthenticationError, ForbiddenError):
        return None  # revoked, expired, or its account suspended: the session is over
    if caller is None:
        return None  # signed out (here or on another replica)
    viewer = Viewer(caller=caller, session=session, csrf=seal.csrf(session.cookie))
    request.state.viewer = viewer
    return viewer


MaybeViewerDep = Annotated[Viewer | None, Depends(get_viewer)]


def page_for(*roles: Role) -> Any:
    """A dependency: the viewer, who must be signed in with one of ``roles`` (any, if none)."""

    async def check(request: Request, viewer: MaybeViewerDep) -> Viewer:
        if viewer is None:
            path = request.url.path + (f"?{request.url.query}" if request.url.query else "")
            raise SignInRequiredError(path)
        if roles and viewer.caller.role not in roles:
            raise ForbiddenError(
                f"a `{viewer.caller.role}` sign-in cannot open this page: it needs {' or '.join(f'`{r}`' for r in roles)}"
            )
        return viewer

    return Depends(check)


async def check_csrf(request: Request, viewer: MaybeViewerDep) -> None:
    """Refuse a state-changing request without this session's CSRF token (403).

    The token comes in the ``csrf`` form field, or the ``X-CSRF-Token`` header (a script's request). A request
    from another origin is refused whatever it carries.
    """
    origin = request.headers.get("origin")
    if origin is not None and origin != f"{request.url.scheme}://{request.url.netloc}":
        raise ForbiddenError(f"cross-origin request from `{origin[:80]}` refused")
    if viewer is None:
        return  # nothing to protect: the handler decides whether a sign-in is needed
    offered = request.headers.get("x-csrf-token")
    if offered is None:
        content_type = request.headers.get("content-type", "")
        if content_type.startswith(("application/x-www-form-urlencoded", "multipart/form-data")):
            form = await request.form()
            value = form.get("csrf")
            offered = value if isinstance(value, str) else None
    seal: SessionSeal = request.app.state.sessions
    if not seal.check_csrf(viewer.session.cookie, offered):
        raise ForbiddenError(
            "the form's csrf token is missing or stale: reload the page and try again"
        )


CsrfChecked = Depends(check_csrf)
