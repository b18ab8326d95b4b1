"""One request-body limit for every method and path, enforced while the body streams in.

A pure ASGI middleware: a declared ``Content-Length`` over the limit is refused before a byte of
the body is read; a body without one (chunked) is counted as it arrives and refused as soon as
it passes the limit, so the service never holds more than the limit of any request. Either way
the answer is 413 ``too_large`` in one line. Whatever the app had begun to answer to a body cut
short is replaced by that 413 (an endpoint that saw a broken body might have called it
malformed). WebSockets and lifespan pass untouched.
"""

from __future__ import annotations

import contextlib
import json

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from ..wire import ErrorCode
from .errors import error_body

__all__ = ["BodyLimitMiddleware"]


class _TooLargeError(Exception):
    """The body passed the limit (raised out of ``receive`` into the app, caught here)."""


class BodyLimitMiddleware:
    def __init__(self, app: ASGIApp, *, max_bytes: int) -> None:
        self.app = app
        self.max_bytes = max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        limit = self.max_bytes
        for name, value in scope["headers"]:
            if name == b"content-length":
                try:
                    declared = int(value)
                except ValueError:
                    declared = 0  # the server (h11) refuses a malformed length itself
                if declared > limit:
                    await self._refuse(send)
                    return
        received = 0
        exceeded = False
        started = False

        async def limited() -> Message:
            nonlocal received, exceeded
            if exceeded:
                return {"type": "http.disconnect"}
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > limit:
                    exceeded = True
                    raise _TooLargeError
            return message

        async def guarded(message: Message) -> None:
            nonlocal started
            if exceeded and not started:
                return  # the app's answer to a cut body: the 413 goes out instead
            if message["type"] == "http.response.start":
                started = True
            await send(message)

        with contextlib.suppress(_TooLargeError):
            await self.app(scope, limited, guarded)
        if exceeded and not started:
            await self._refuse(send)

    async def _refuse(self, send: Send) -> None:
        message = f"request body too large: more than {self.max_bytes} bytes"
        data = json.dumps(error_body(ErrorCode.TOO_LARGE, message)).encode()
        await send(
            {
                "type": "http.response.start",
                "status": 413,
                "headers": [
                    (b"content-type", b"application/json"),
                    (b"content-length", str(len(data)).encode()),
                    (b"connection", b"close"),
                ],
            }
        )
        await send({"type": "http.response.body", "body": data})
