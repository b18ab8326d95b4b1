"""The participant's two WebSockets (signalling and relay): connecting, and reading a refusal.

A refused handshake becomes the Meridian error its HTTP status stands for; a socket closed by
the other side becomes the one its close code stands for (44xx codes mirror HTTP statuses, and
4451 is a removal: docs/data-plane.md).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from typing import Any

from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed, InvalidHandshake, InvalidStatus, InvalidURI

from ..errors import (
    AuthenticationError,
    ConfigurationError,
    FenceError,
    ForbiddenError,
    GrantError,
    InputError,
    MeridianError,
    NotFoundError,
    shown,
)
from ..wire import Close

__all__ = ["MAX_FRAME_BYTES"]

#: the largest frame accepted from a relay (a relay's own limit)
MAX_FRAME_BYTES = 16 * 1024 * 1024
_TIMEOUT_SECONDS = 10.0


def _headers(token: str | None, forwarded_for: str | None) -> dict[str, str]:
    headers = {}
    if token:
        headers["Authorization"] = f"Bearer {token}"
    if forwarded_for:
        headers["X-Forwarded-For"] = forwarded_for
    return headers


async def _connect(url: str, what: str, headers: dict[str, str]) -> ClientConnection:
    """A WebSocket to ``url``; refusals of the handshake become Meridian errors."""
    try:
        return await connect(
            url,
            additional_headers=headers,
            compression=None,  # sealed frames do not compress
            max_size=MAX_FRAME_BYTES,
            open_timeout=_TIMEOUT_SECONDS,
            proxy=None,
        )
    except InvalidStatus as exc:
        raise _status_error(exc, what) from None
    except InvalidURI as exc:
        raise InputError(f"{what} address `{shown(url)}` is not a ws:// or http:// URL") from exc
    except (OSError, TimeoutError, InvalidHandshake) as exc:
        why = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)
        raise ConfigurationError(f"cannot reach the {what} at `{url}`: {why.lower()}") from None


def _status_error(exc: InvalidStatus, what: str) -> MeridianError:
    status = exc.response.status_code
    message = f"the {what} refused the connection: HTTP {status}"
    with contextlib.suppress(ValueError, AttributeError, TypeError):
        message = str(json.loads(exc.response.body or b"")["error"]["message"])
    if status == 401:
        return AuthenticationError(message)
    if status == 403:
        return ForbiddenError(message)
    if status == 404:
        return NotFoundError(message)
    if status == 422:
        return InputError(message)
    return ConfigurationError(message)


def _closed_error(exc: ConnectionClosed, what: str) -> MeridianError:
    """The refusal a close of the ``what``'s socket stands for (close codes 44xx mirror HTTP)."""
    code = exc.rcvd.code if exc.rcvd else Close.ABNORMAL
    reason = exc.rcvd.reason if exc.rcvd and exc.rcvd.reason else ""
    if code == Close.REMOVED:
        return ForbiddenError(_removed(reason or "no reason given"))
    message = reason or f"the {what} closed the connection (code {code})"
    if what == "relay" and code == Close.UNAUTHENTICATED:
        return GrantError(message)
    if what == "relay" and code == Close.FORBIDDEN:
        return FenceError(message)
    by_code: dict[int, type[MeridianError]] = {
        Close.MALFORMED: InputError,
        Close.UNAUTHENTICATED: AuthenticationError,
        Close.FORBIDDEN: ForbiddenError,
        Close.NOT_FOUND: NotFoundError,
        Close.INVALID: InputError,
    }
    return by_code.get(code, ConfigurationError)(message)


def _removed(reason: str) -> str:
    return f"removed from the meeting: {reason}"


async def _next_message(
    conn: ClientConnection, what: str, timeout: float = _TIMEOUT_SECONDS
) -> dict[str, Any]:
    """The next JSON object from ``conn``; a close is the refusal its close code stands for."""
    try:
        text = await asyncio.wait_for(conn.recv(), timeout)
    except ConnectionClosed as exc:
        raise _closed_error(exc, what) from None
    except TimeoutError:
        raise ConfigurationError(f"the {what} did not answer within {timeout:g} s") from None
    try:
        message = json.loads(text)
    except ValueError:
        message = None
    if not isinstance(message, dict):
        raise InputError(f"the {what} sent `{shown(text)}`: expected a JSON object")
    return message
