"""Real region nodes (US, DE) and a stand-in control plane that speaks the signalling contract.

The stand-in does what docs/data-plane.md §Signalling says the control plane does, and no
policy: it refuses a participant named ``mallory``, places everyone else in the region the test
chose (US by default), asks the US key server for the wrapped key with a key grant, and answers
``admitted`` with a relay grant for the address it saw (``X-Forwarded-For`` from loopback is
believed, as the nodes here believe it). It registers each joiner's signing key and hands out
the meeting's roster signed with its grant key (``signed_roster``, ``roster_key`` in
``admitted``; ``members`` to the others), as the control plane does. Tests rotate keys and end
meetings through it.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import secrets
import threading
from collections.abc import Iterator
from concurrent.futures import Future
from dataclasses import dataclass, field
from typing import Any

import httpx
import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from websockets.asyncio.server import Server, ServerConnection, serve
from websockets.exceptions import ConnectionClosed

from meridian.keys import RosterMember, from_b64url, sign_roster
from meridian.keys.grants import Grant, GrantSigner, public_key_b64
from meridian.node.cluster import LocalCluster

REGIONS = ("DE", "US")
LINKS = (("DE", "US"),)
#: a refusal's decision in its public form, as the control plane sends it
DECISION = {
    "decision": "deny",
    "action": "join",
    "reasons": [{"rule": "test.mallory", "effect": "forbid", "message": "not mallory", "jurisdiction": "US"}],
    "obligations": [],
    "location": {"country": "US", "evidence": [], "judged_under": ["US"]},
    "alternatives": {"partners": []},
    "bundle": {"name": "test", "version": "1", "digest": "0" * 64},
    "at": "2026-03-01T12:00:00Z",
}


@dataclass
class Seat:
    participant: str
    public_key: str
    conn: ServerConnection
    name: str = ""
    signing_key: str = ""


@dataclass
class FakeControl:
    """The stand-in control plane, served from its own thread and event loop."""

    url: str
    signer: GrantSigner
    cluster: LocalCluster
    loop: asyncio.AbstractEventLoop
    #: meeting -> participant name -> the region to place them in (default US)
    placement: dict[str, dict[str, str]] = field(default_factory=dict)
    notices: list[str] = field(default_factory=list)
    seats: dict[str, list[Seat]] = field(default_factory=dict)
    joins: list[dict[str, Any]] = field(default_factory=list)
    seq: int = 0
    #: the signing key rosters are signed with (the grant key's private half)
    roster_signer: Ed25519PrivateKey | None = None

    def signed_roster(self, meeting: str) -> str:
        assert self.roster_signer is not None
        self.seq += 1
        members = [
            RosterMember(
                s.participant,
                s.name,
                Ed25519PublicKey.from_public_bytes(from_b64url(s.signing_key)),
            )
            for s in self.seats.get(meeting, [])
        ]
        return sign_roster(self.roster_signer, meeting=meeting, epoch=0, seq=self.seq, members=members)

    async def publish(self, meeting: str, *, exclude: str = "") -> None:
        message = json.dumps({"type": "members", "signed_roster": self.signed_roster(meeting)})
        for seat in self.seats.get(meeting, []):
            if seat.participant != exclude:
                with contextlib.suppress(ConnectionClosed):
                    await seat.conn.send(message)

    def call(self, coro: Any) -> Future[Any]:
        return asyncio.run_coroutine_threadsafe(coro, self.loop)

    async def rotate(self, meeting: str, epoch: int, *, only: tuple[str, ...] = ()) -> None:
        """Send every (or ``only`` these) participant(s) the key of ``epoch``."""
        await asyncio.wrap_future(self.call(self._rotate(meeting, epoch, only)))

    async def end(self, meeting: str) -> None:
        await asyncio.wrap_future(self.call(self._end(meeting)))

    async def _rotate(self, meeting: str, epoch: int, only: tuple[str, ...]) -> None:
        for seat in self.seats.get(meeting, []):
            if not only or seat.participant in only:
                key = await self._key(meeting, seat.participant, seat.public_key, epoch)
                await seat.conn.send(json.dumps({"type": "key", **key}))

    async def _end(self, meeting: str) -> None:
        for seat in self.seats.pop(meeting, []):
            await seat.conn.send(json.dumps({"type": "ended"}))
            await seat.conn.close()

    async def _links(self, meeting: str) -> None:
        """Each node gets the meeting's link grant, as the control plane gives it on placement."""
        async with httpx.AsyncClient(trust_env=False) as http:
            for region in REGIONS:
                grant = Grant(
                    typ="link",
                    meeting=meeting,
                    participant="",
                    dc=region,
                    regions=REGIONS,
                    key_region="US",
                    pair=LINKS[0],
                )
                url = f"{self.cluster[region].url}/v1/relay/{meeting}/links"
                answer = await http.post(url, json={"grants": [self.signer.sign(grant)]})
                answer.raise_for_status()

    async def _key(self, meeting: str, participant: str, public_key: str, epoch: int) -> Any:
        grant = Grant(
            typ="key",
            meeting=meeting,
            participant=participant,
            dc="US",
            regions=REGIONS,
            key_region="US",
            epoch=epoch,
            session="s_fake",
        )
        body = {"grant": self.signer.sign(grant), "public_key": public_key}
        async with httpx.AsyncClient(trust_env=False) as http:
            answer = await http.post(f"{self.cluster['US'].url}/v1/keys", json=body)
        answer.raise_for_status()
        return answer.json()

    async def signal(self, conn: ServerConnection) -> None:
        path = conn.request.path if conn.request else ""
        parts = path.strip("/").split("/")
        if len(parts) != 4 or parts[:2] != ["v1", "meetings"] or parts[3] != "signal":
            await conn.close(4404, f"no such endpoint `{path}`")
            return
        meeting = parts[2]
        join = json.loads(await conn.recv())
        self.joins.append({"meeting": meeting, **join})
        if join.get("name") == "mallory":
            message = "mallory may not join this meeting"
            refusal = {"type": "refused", "code": "denied", "message": message}
            await conn.send(json.dumps({**refusal, "decision": DECISION}))
            await conn.close(4403, message)
            return
        participant = f"p_{join['name']}_{secrets.token_hex(3)}"
        peer = conn.remote_address[0]
        forwarded = conn.request.headers.get("X-Forwarded-For") if conn.request else None
        ip = forwarded.split(",")[-1].strip() if forwarded and peer == "127.0.0.1" else peer
        dc = self.placement.get(meeting, {}).get(join["name"], "US")
        relay_grant = Grant(
            typ="relay",
            meeting=meeting,
            participant=participant,
            dc=dc,
            regions=REGIONS,
            key_region="US",
            links=LINKS,
            ip=ip,
        )
        key = await self._key(meeting, participant, join["public_key"], 0)
        await self._links(meeting)
        seat = Seat(participant, join["public_key"], conn, join["name"], join["signing_key"])
        self.seats.setdefault(meeting, []).append(seat)
        await self.publish(meeting, exclude=participant)
        await conn.send(
            json.dumps(
                {
                    "type": "admitted",
                    "participant": participant,
                    "meeting": meeting,
                    "dc": dc,
                    "relay": self.cluster[dc].relay_url,
                    "grant": self.signer.sign(relay_grant),
                    "notices": self.notices,
                    "key": key,
                    "placement": {"dc": dc, "key_region": "US"},
                    "roster_key": public_key_b64(self.signer.public_key),
                    "signed_roster": self.signed_roster(meeting),
                }
            )
        )
        await conn.wait_closed()  # closing the signalling socket is leaving
        seats = self.seats.get(meeting, [])
        if seat in seats:
            seats.remove(seat)
            await self.publish(meeting)


@pytest.fixture(scope="session")
def signer_key() -> Ed25519PrivateKey:
    return Ed25519PrivateKey.generate()


@pytest.fixture(scope="session")
def signer(signer_key: Ed25519PrivateKey) -> GrantSigner:
    return GrantSigner(signer_key)


@pytest.fixture(scope="session")
def cluster(
    tmp_path_factory: pytest.TempPathFactory, signer: GrantSigner
) -> Iterator[LocalCluster]:
    nodes = LocalCluster(
        ["US", "DE"],
        control_key=public_key_b64(signer.public_key),
        directory=tmp_path_factory.mktemp("nodes"),
        trusted_proxies=["127.0.0.1/32"],
    )
    nodes.admin = {"Authorization": f"Bearer {signer.admin(seconds=3600)}"}
    with nodes:
        yield nodes


@pytest.fixture(scope="session")
def control_server(
    signer: GrantSigner, signer_key: Ed25519PrivateKey, cluster: LocalCluster
) -> Iterator[FakeControl]:
    loop = asyncio.new_event_loop()
    started: Future[tuple[Server, asyncio.Event]] = Future()
    control: list[FakeControl] = []

    async def handler(conn: ServerConnection) -> None:
        await control[0].signal(conn)

    async def main() -> None:
        stop = asyncio.Event()
        async with serve(handler, "127.0.0.1", 0) as server:
            started.set_result((server, stop))
            await stop.wait()

    thread = threading.Thread(target=loop.run_until_complete, args=(main(),), daemon=True)
    thread.start()
    server, stop = started.result(timeout=30)
    port = next(iter(server.sockets)).getsockname()[1]
    control.append(
        FakeControl(f"http://127.0.0.1:{port}", signer, cluster, loop, roster_signer=signer_key)
    )
    yield control[0]
    loop.call_soon_threadsafe(stop.set)
    thread.join(timeout=10)
    loop.close()


@pytest.fixture
def control(control_server: FakeControl) -> FakeControl:
    """The stand-in control plane, with this test's notices and placements only."""
    control_server.notices = []
    control_server.placement = {}
    return control_server


@pytest.fixture
def meeting() -> str:
    return f"mtg_{secrets.token_hex(6)}"
