"""What counts as a healthy node: a real HTTP server on loopback that answers as told."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from typing import Any

import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route
from tests.conftest import serve

from meridian.meetings.health import NodeHealth, NodeState
from meridian.node.cluster import free_port


class Answer:
    """What the stand-in node says to ``/healthz`` (changed by the test)."""

    def __init__(self) -> None:
        self.status = 200
        self.region = "US"


@pytest.fixture
def node() -> Iterator[tuple[str, Answer]]:
    answer = Answer()

    async def healthz(_: Request) -> Response:
        if answer.status != 200:
            return Response("no", status_code=answer.status)
        return JSONResponse({"region": answer.region, "status": "ok"})

    url, stop = serve(Starlette(routes=[Route("/healthz", healthz)]))
    yield url, answer
    stop()


def rounds(health: NodeHealth, n: int) -> list[list[Any]]:
    async def run() -> list[list[Any]]:
        try:
            return [await health.check() for _ in range(n)]
        finally:
            await health.aclose()

    return asyncio.run(run())


@pytest.mark.parametrize(
    ("status", "region", "why"),
    [
        (503, "US", "answered status 503"),
        (200, "DE", "answered as region `DE`, not `US`"),
    ],
    ids=["error-status", "another-region"],
)
def test_a_node_is_down_after_n_failed_checks_and_up_after_one_good_one(node, status, region, why):
    url, answer = node
    health = NodeHealth({"US": url}, failures=2, timeout=2)

    async def run() -> list[list[Any]]:
        try:
            out = [await health.check()]  # healthy: nothing changes
            answer.status, answer.region = status, region
            out += [await health.check(), await health.check(), await health.check()]
            answer.status, answer.region = 200, "US"
            out += [await health.check(), await health.check()]
            return out
        finally:
            await health.aclose()

    healthy, first, second, third, back, again = asyncio.run(run())
    assert (healthy, first) == ([], [])  # one failure is not enough
    [down] = second
    assert (down.region, down.state, down.failures) == ("US", NodeState.DOWN, 2)
    assert down.error is not None
    assert why in down.error
    assert third == []  # down once, not again at each failure
    [up] = back
    assert (up.region, up.state) == ("US", NodeState.UP)
    assert again == []
    assert health.state("US") is NodeState.UP


def test_a_port_nothing_listens_on_is_a_failed_check():
    url = f"http://127.0.0.1:{free_port()}"
    [[down]] = rounds(NodeHealth({"US": url}, failures=1, timeout=1), 1)
    assert down.state is NodeState.DOWN
    assert down.error is not None
    assert down.error.startswith(f"no answer from `{url}`")


def test_failures_must_be_at_least_one():
    with pytest.raises(ValueError, match="at least 1"):
        NodeHealth({}, failures=0, timeout=1)
