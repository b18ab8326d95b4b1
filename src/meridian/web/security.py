"""Headers every page and static file carries: a strict Content-Security-Policy and friends.

The policy allows scripts, styles, images and fonts from this origin only (no inline script, no
``eval``), connections to this origin and to the region nodes' relays (the meeting page talks to
its relay directly), and framing only by this origin.

The API under ``/v1`` (and ``/openapi.json``) gets ``Cache-Control: no-store`` (an answer is for
its caller alone) and ``nosniff``; its documentation pages ``/docs`` (Swagger UI) and ``/redoc``
(ReDoc), drawn from vendored copies in ``/static/vendor``, get a policy of their own
(:func:`docs_security_policy`): the same origin-only sources, plus the inline styles both libraries
set and the ``blob:`` worker ReDoc searches with.

Camera and microphone are refused to every page (``Permissions-Policy``) but the meeting page
``/meet/{id}``, which may use them itself (the call) and lends them to no other origin.
"""

from __future__ import annotations

from collections.abc import Iterable

from starlette.types import ASGIApp, Message, Receive, Scope, Send

__all__ = ["SecurityHeaders", "content_security_policy", "docs_security_policy", "relay_origins"]

_API = ("/v1/", "/openapi.json")
_DOCS = ("/docs", "/redoc")
_MEETING = "/meet/"


def content_security_policy(connect: Iterable[str] = ()) -> str:
    sources = " ".join(["'self'", *sorted(set(connect))])
    return "; ".join(
        [
            "default-src 'none'",
            "script-src 'self'",
            "style-src 'self'",
            "img-src 'self' data:",
            "font-src 'self'",
            f"connect-src {sources}",
            "frame-src 'self'",
            "frame-ancestors 'self'",
            "form-action 'self'",
            "base-uri 'none'",
            "object-src 'none'",
        ]
    )


def docs_security_policy() -> str:
    """The policy of ``/docs`` and ``/redoc``: this origin only, no inline script, no ``eval``.

    Swagger UI and ReDoc (React, styled-components) write ``style`` attributes and ``<style>``
    elements, hence ``'unsafe-inline'`` for styles (not scripts); ReDoc runs its search index in a
    ``blob:`` worker.
    """
    return "; ".join(
        [
            "default-src 'none'",
            "script-src 'self'",
            "style-src 'self' 'unsafe-inline'",
            "img-src 'self' data:",
            "font-src 'self'",
            "connect-src 'self'",
            "worker-src 'self' blob:",
            "frame-ancestors 'none'",
            "form-action 'self'",
            "base-uri 'none'",
            "object-src 'none'",
        ]
    )


def relay_origins(node_urls: Iterable[str]) -> list[str]:
    """The ``ws://`` (``wss://``) origins of the region nodes, for ``connect-src``."""
    out = []
    for url in node_urls:
        base = url.rstrip("/")
        if base.startswith("https://"):
            out.append("wss://" + base.removeprefix("https://").split("/", 1)[0])
        elif base.startswith("http://"):
            out.append("ws://" + base.removeprefix("http://").split("/", 1)[0])
    return out


class SecurityHeaders:
    """Pure ASGI middleware: an API path gets ``no-store`` and ``nosniff`` (:func:`_api_headers`),
    a page its full set; no second task and no buffered body on either."""

    def __init__(self, app: ASGIApp, connect: Iterable[str] = ()) -> None:
        self.app = app
        csp = content_security_policy(connect)
        self.headers = [
            (b"content-security-policy", csp.encode("ascii")),
            (b"x-content-type-options", b"nosniff"),
            (b"referrer-policy", b"same-origin"),
            (b"cross-origin-opener-policy", b"same-origin"),
            (b"permissions-policy", b"camera=(), microphone=(), geolocation=()"),
        ]
        self.docs_headers = [
            (b"content-security-policy", docs_security_policy().encode("ascii")),
            *self.headers[1:],
        ]
        # the meeting page alone may ask for the camera and the microphone (the call), and only
        # for itself: no frame of another origin may
        self.meeting_headers = [
            *self.headers[:-1],
            (b"permissions-policy", b"camera=(self), microphone=(self), geolocation=()"),
        ]

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        path = scope["path"]
        if path.startswith(_API):
            await self.app(scope, receive, _api_headers(send))
            return
        static = path.startswith("/static/")
        if path.startswith(_DOCS):
            extra = self.docs_headers
        elif path.startswith(_MEETING):
            extra = self.meeting_headers
        else:
            extra = self.headers

        async def with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = list(message.get("headers", []))
                names = {k.lower() for k, _ in headers}
                headers.extend(h for h in extra if h[0] not in names)
                if not static and b"cache-control" not in names:
                    # pages show what one signed-in viewer may see: never cached
                    headers.append((b"cache-control", b"no-store"))
                message = {**message, "headers": headers}
            await send(message)

        await self.app(scope, receive, with_headers)


_NO_STORE = (b"cache-control", b"no-store")
_NOSNIFF = (b"x-content-type-options", b"nosniff")


def _api_headers(send: Send) -> Send:
    """``send``, adding ``no-store`` and ``nosniff`` to an API response that lacks them."""

    async def with_headers(message: Message) -> None:
        if message["type"] == "http.response.start":
            headers = list(message.get("headers", []))
            names = {k.lower() for k, _ in headers}
            if b"cache-control" not in names:
                headers.append(_NO_STORE)
            if b"x-content-type-options" not in names:
                headers.append(_NOSNIFF)
            message = {**message, "headers": headers}
        await send(message)

    return with_headers
