"""Waiting in tests: one way to poll for something that happens on its own time.

``eventually(check)`` calls ``check`` until it returns something true and returns that; at the
deadline it raises :class:`AssertionError` naming what was awaited and what was last seen (the
last value ``check`` returned, or the last assertion it raised). ``aeventually`` is the same for
a coroutine function, awaited on the running loop, and ``aeventually_in_thread`` for a blocking
check called from a coroutine. Never a silent return at a deadline.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from typing import TypeVar

__all__ = ["aeventually", "aeventually_in_thread", "eventually"]

T = TypeVar("T")


def _seen(value: object, error: AssertionError | None) -> str:
    return f"assertion: {error}" if error is not None else repr(value)


def eventually(
    check: Callable[[], T], *, timeout: float = 10.0, interval: float = 0.05, what: str = ""
) -> T:
    """``check()``'s first true value (an ``AssertionError`` it raises counts as not yet)."""
    deadline = time.monotonic() + timeout
    while True:
        error: AssertionError | None = None
        value: object = None
        try:
            value = check()
        except AssertionError as exc:
            error = exc
        else:
            if value:
                return value  # type: ignore[return-value]
        if time.monotonic() > deadline:
            awaited = what or getattr(check, "__name__", "the condition")
            raise AssertionError(
                f"not within {timeout:g} s: {awaited}; last seen: {_seen(value, error)}"
            )
        time.sleep(interval)


async def aeventually(
    check: Callable[[], Awaitable[T]],
    *,
    timeout: float = 10.0,
    interval: float = 0.05,
    what: str = "",
) -> T:
    """:func:`eventually` for a coroutine function: ``await check()`` until it is true."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while True:
        error: AssertionError | None = None
        value: object = None
        try:
            value = await check()
        except AssertionError as exc:
            error = exc
        else:
            if value:
                return value  # type: ignore[return-value]
        if loop.time() > deadline:
            awaited = what or getattr(check, "__name__", "the condition")
            raise AssertionError(
                f"not within {timeout:g} s: {awaited}; last seen: {_seen(value, error)}"
            )
        await asyncio.sleep(interval)


async def aeventually_in_thread(
    check: Callable[[], T], *, timeout: float = 10.0, interval: float = 0.05, what: str = ""
) -> T:
    """:func:`aeventually` for a blocking ``check`` (a database read): each call runs in a
    thread, so the loop keeps serving the sockets the check waits on."""
    awaited = what or getattr(check, "__name__", "the condition")
    return await aeventually(
        lambda: asyncio.to_thread(check), timeout=timeout, interval=interval, what=awaited
    )
