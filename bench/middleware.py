"""What the pages' security-headers middleware adds to every request the app serves.

The pages share the API's app, so every request, the decision endpoints' included, passes
through ``meridian.web.security.SecurityHeaders``: an API path pays a prefix check and gets
``no-store`` and ``nosniff`` (since issue 14), a page gets its full set of headers. Timed here
in-process against a trivial ASGI app called directly (the peer), over the same scope, so the
difference is the middleware alone; median of 5 rounds.

    .venv/bin/python bench/middleware.py
"""

from __future__ import annotations

import asyncio
import statistics
import sys
import time
from typing import Any

from meridian.web.security import SecurityHeaders

CALLS = 200_000


async def _app(scope: dict[str, Any], receive: Any, send: Any) -> None:
    await send({"type": "http.response.start", "status": 200, "headers": []})
    await send({"type": "http.response.body", "body": b""})


async def _send(message: dict[str, Any]) -> None:
    return None


async def _receive() -> dict[str, Any]:
    return {"type": "http.request"}


async def _per_call(target: Any, path: str) -> float:
    scope = {"type": "http", "path": path}
    start = time.perf_counter()
    for _ in range(CALLS):
        await target(scope, _receive, _send)
    return (time.perf_counter() - start) / CALLS * 1e6


async def _main() -> None:
    wrapped = SecurityHeaders(_app, ["ws://127.0.0.1:9000"])
    rounds: dict[str, list[float]] = {"bare": [], "api": [], "page": []}
    for _ in range(5):
        rounds["bare"].append(await _per_call(_app, "/v1/decisions"))
        rounds["api"].append(await _per_call(wrapped, "/v1/decisions"))
        rounds["page"].append(await _per_call(wrapped, "/console"))
    bare, api, page = (statistics.median(rounds[k]) for k in ("bare", "api", "page"))
    print("security-headers middleware, µs per call (median of 5 rounds of 200,000)")
    print(f"  the app called directly (peer):      {bare:6.2f}")
    print(f"  through it, an API path (/v1/...):   {api:6.2f}  (+{api - bare:.2f})")
    print(f"  through it, a page (headers added):  {page:6.2f}  (+{page - bare:.2f})")
    print("bench/middleware.py: 3 cases in 5 rounds", file=sys.stderr)


if __name__ == "__main__":
    asyncio.run(_main())
