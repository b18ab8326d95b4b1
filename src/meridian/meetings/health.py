"""Region node health: the control plane checks each node, marks a dead one down, takes it back.

Every ``node_check_interval`` seconds each configured node is asked ``GET /healthz`` (public on
every node, no credential). An answer counts only if it is ``200`` and names the node's own
region: anything else (refused connection, timeout, another status, another region) is a failed
check. After ``node_failures`` failed checks in a row the node is marked **down**:

1. placement gives its region no room (:meth:`Occupancy.set_down`): joiners go to the next
   allowed region with room, never outside the meeting's allowed set, and are refused with the
   reason (``region node down: US``) when there is none;
2. every participant it carried is told ``{"type": "region_down", "dc": "US", "message"}`` on
   signalling and its signalling socket is closed with :attr:`~meridian.wire.Close.REGION_DOWN` (4503): it has
   left, exactly as when it closes the socket itself (the others hear ``left`` and move to a new
   key epoch), and it may join again to be placed elsewhere;
3. a ``node.down`` record names the region, its URL, the last error and the participants told.

One good answer takes the node back (**up**): its capacity returns, a ``node.up`` record is
written. Transitions are logged at warning (down) and info (up). The state shows in
``GET /v1/datacentres`` (``state``: ``up``, ``down`` or ``none`` for no node configured, and
``down_since``) and on the console's map.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable
from dataclasses import dataclass
from enum import StrEnum
from typing import TYPE_CHECKING, Any

import httpx
from starlette.websockets import WebSocketDisconnect

from ..audit import SYSTEM, record
from ..runtime import Runtime
from ..wire import Close

if TYPE_CHECKING:
    from .live import Signalling

__all__ = ["NodeHealth", "NodeState", "Transition", "watch_nodes"]

log = logging.getLogger("meridian.meetings.health")


class NodeState(StrEnum):
    UP = "up"
    DOWN = "down"


@dataclass(frozen=True, slots=True)
class Transition:
    """A node went down or came back, as one health check round found."""

    region: str
    state: NodeState
    url: str
    failures: int
    error: str | None


@dataclass(slots=True)
class _Node:
    url: str
    state: NodeState = NodeState.UP
    failures: int = 0
    error: str | None = None


class NodeHealth:
    """What the health checks found for each configured node (nodes start out up)."""

    def __init__(
        self,
        node_urls: dict[str, str],
        *,
        failures: int,
        timeout: float,
        http: httpx.AsyncClient | None = None,
    ) -> None:
        if failures < 1:
            raise ValueError("failures must be at least 1")
        self.failures = failures
        self.timeout = timeout
        self.nodes = {region: _Node(url) for region, url in sorted(node_urls.items())}
        self._http = http or httpx.AsyncClient(timeout=timeout, trust_env=False)

    def state(self, region: str) -> NodeState | None:
        node = self.nodes.get(region)
        return None if node is None else node.state

    async def probe(self, region: str, url: str) -> str | None:
        """``None`` if the node answered as itself, else what went wrong (one line)."""
        try:
            response = await self._http.get(f"{url}/healthz", timeout=self.timeout)
        except httpx.HTTPError as exc:
            return f"no answer from `{url}`: {str(exc) or type(exc).__name__}"
        if response.status_code != 200:
            return f"`{url}/healthz` answered status {response.status_code}"
        try:
            said = response.json().get("region")
        except (ValueError, AttributeError):
            return f"`{url}/healthz` sent a malformed answer"
        if said != region:
            return f"`{url}/healthz` answered as region `{str(said)[:20]}`, not `{region}`"
        return None

    async def check(self) -> list[Transition]:
        """One round: every node probed at once; the nodes that went down or came back."""
        regions = list(self.nodes)
        errors = await asyncio.gather(*(self.probe(r, self.nodes[r].url) for r in regions))
        out = []
        for region, error in zip(regions, errors, strict=True):
            node = self.nodes[region]
            if error is None:
                node.failures, node.error = 0, None
                if node.state is NodeState.DOWN:
                    node.state = NodeState.UP
                    out.append(Transition(region, NodeState.UP, node.url, 0, None))
                continue
            node.failures += 1
            node.error = error
            if node.state is NodeState.UP and node.failures >= self.failures:
                node.state = NodeState.DOWN
                out.append(Transition(region, NodeState.DOWN, node.url, node.failures, error))
        return out

    async def aclose(self) -> None:
        await self._http.aclose()


def _record(rt: Runtime, transition: Transition, participants: list[str], at: Any) -> None:
    details: dict[str, Any] = {"url": transition.url, "state": str(transition.state)}
    if transition.state is NodeState.DOWN:
        details.update(
            failures=transition.failures, error=transition.error, participants=participants
        )
    with rt.db.write() as session:
        record(
            session,
            actor=SYSTEM,
            action=f"node.{transition.state}",
            subject_kind="region",
            subject_id=transition.region,
            at=at,
            bundle_digest=rt.digest,
            details=details,
        )


async def apply(
    signalling: Signalling, transition: Transition, *, records: bool = True
) -> list[str]:
    """Act on one transition (see the module's docstring); the participants told, if any."""
    rt = signalling.rt
    region = transition.region
    at = rt.now()
    told: list[str] = []
    if transition.state is NodeState.UP:
        signalling.down_since.pop(region, None)
        signalling.occupancy().set_down(region, False)
        log.info("region node %s (%s) answers again: taken back", region, transition.url)
    else:
        signalling.down_since[region] = at.isoformat()
        signalling.occupancy().set_down(region, True)
        log.warning(
            "region node %s (%s) is down after %d failed checks: %s",
            region,
            transition.url,
            transition.failures,
            transition.error,
        )
        message = f"region node `{region}` is down: join again to be placed in another region"
        carried = [
            (live.id, p)
            for live in list(signalling.meetings.values())
            for p in list(live.participants.values())
            if p.dc == region
        ]
        for meeting_id, p in carried:
            told.append(p.id)
            # a socket already gone raises on send or close: it has left by itself then
            with contextlib.suppress(ConnectionError, RuntimeError, WebSocketDisconnect):
                await p.send({"type": "region_down", "dc": region, "message": message})
                if p.close is not None:
                    await p.close(Close.REGION_DOWN, f"region node `{region}` is down")
            await signalling.leave(meeting_id, p.id)
    if records:
        await asyncio.to_thread(_record, rt, transition, sorted(told), at)
    return told


async def watch_nodes(
    signalling: Signalling,
    health: NodeHealth,
    interval: float,
    *,
    records: Callable[[], bool] | None = None,
) -> None:
    """Check the nodes every ``interval`` seconds, for ever (cancel the task to stop).

    Every replica checks for itself (its placement and its participants depend on it);
    ``records`` says whether this one also records a transition in the log (the leader: once
    for the service)."""
    while True:
        try:
            for transition in await health.check():
                leads = records is None or await asyncio.to_thread(records)
                await apply(signalling, transition, records=leads)
        except Exception:
            log.exception("the node health check failed")
        await asyncio.sleep(interval)
