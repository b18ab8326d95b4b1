"""One request-body limit for every method and path, enforced while the body streams in.

A pure ASGI middleware: a declared ``Content-Length`` over the limit is refused before a byte of
the body is read; a body without one (chunked) is counted as it arrives and refused as soon as
it passes the limit, so the service never holds more than the limit of any request. Either way
the answer is 413 ``too_large`` in one line. Whatever the app had begun to answer to a body cut
short is replaced by that 413 (an endpoint that saw a broken body might have called it
malformed). WebSockets and lifespan pass untouched.

Before the 413 goes out, what remains of the body is read and dropped, a chunk at a time, up to
:data:`DRAIN_SECONDS` and ``drain_bytes`` (16 MiB or four times the limit, whichever is more): a
server that closes with unread bytes makes the kernel reset the connection, and an ordinary
client that sent its body whole then loses the answer. A declared length past ``drain_bytes``
is answered at once, and a client that stops sending is waited for :data:`DRAIN_IDLE_SECONDS`
at most: the drain never holds more than one chunk, nor a connection for long.
"""

from __future__ import annotations

import asyncio
import contextlib
import json

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from ..wire import ErrorCode
from .errors import error_body

__all__ = ["DRAIN_IDLE_SECONDS", "DRAIN_SECONDS", "BodyLimitMiddleware"]

#: the longest a refused body is read and dropped for, in all
DRAIN_SECONDS = 5.0
#: the longest the drain waits for the next chunk of a refused body
DRAIN_IDLE_SECONDS = 1.0
#: the least a refused body is drained up to (else four times the limit)
_DRAIN_FLOOR = 16 * 1024 * 1024


class _TooLargeError(Exception):
    """The body passed the limit (raised out of ``receive`` into the app, caught here)."""


class BodyLimitMiddleware:
    def __init__(self, app: ASGIApp, *, max_bytes: int) -> None:
        self.app = app
        self.max_bytes = max_bytes
        self.drain_bytes = max(_DRAIN_FLOOR, 4 * max_bytes)

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
                    if declared <= self.drain_bytes:
                        await self._drain(receive, 0)
                    await self._refuse(send)
                    return
        received = 0
        exceeded = False
        started = False

        more = True

        async def limited() -> Message:
            nonlocal received, exceeded, more
            if exceeded:
                return {"type": "http.disconnect"}
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                more = bool(message.get("more_body", False))
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
            if more:
                await self._drain(receive, received)
            await self._refuse(send)

    async def _drain(self, receive: Receive, received: int) -> None:
        """Read and drop the rest of a refused body, within the bounds above."""
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(DRAIN_SECONDS):
                while received <= self.drain_bytes:
                    message = await asyncio.wait_for(receive(), DRAIN_IDLE_SECONDS)
                    if message["type"] != "http.request":
                        return  # the client went away
                    received += len(message.get("body", b""))
                    if not message.get("more_body", False):
                        return

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
