"""Headers every page and static file carries: a strict Content-Security-Policy and friends.

The policy allows scripts, styles, images and fonts from this origin only (no inline script, no
``eval``), connections to this origin and to the region nodes' relays (the meeting page talks to
its relay directly), and framing only by this origin. The API under ``/v1`` and its ``/docs``
keep their own headers.
"""

from __future__ import annotations

from collections.abc import Iterable

from starlette.types import ASGIApp, Message, Receive, Scope, Send

__all__ = ["SecurityHeaders", "content_security_policy", "relay_origins"]

_SKIP = ("/v1/", "/docs", "/openapi.json")


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
    """Pure ASGI middleware (the decision endpoints' hot path only pays a prefix check)."""

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

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["path"].startswith(_SKIP):
            await self.app(scope, receive, send)
            return
        static = scope["path"].startswith("/static/")

        async def with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = list(message.get("headers", []))
                names = {k.lower() for k, _ in headers}
                headers.extend(h for h in self.headers if h[0] not in names)
                if not static and b"cache-control" not in names:
                    # pages show what one signed-in viewer may see: never cached
                    headers.append((b"cache-control", b"no-store"))
                message = {**message, "headers": headers}
            await send(message)

        await self.app(scope, receive, with_headers)
