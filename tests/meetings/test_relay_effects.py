"""Leave, end and grant lifetimes take effect at the relays, end to end: a real control plane,
region-node processes and clients (the nodes come from tests/conftest.py).

A client that closes its signalling socket but keeps its relay socket open is what a hostile
participant does to go on listening after it left; an ended meeting must stop at every relay.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Coroutine
from pathlib import Path
from typing import Any

import httpx
import jwt
import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey
from tests.conftest import Live
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed

from meridian.client.participant import Participant
from meridian.client.signalling import signal_url
from meridian.keys import b64url, public_bytes
from meridian.keys.grants import Grant, GrantSigner, load_or_create_signing_key
from meridian.keys.media import signing_public_bytes

pytestmark = pytest.mark.storage

US_IP, HK_IP = "8.8.8.8", "1.64.0.1"
WAIT = 10  # seconds: a safety net against hanging, never an assertion


def run(scenario: Coroutine[Any, Any, Any]) -> Any:
    return asyncio.run(asyncio.wait_for(scenario, 90))


@pytest.fixture(scope="module")
def signer(grant_key: Path) -> GrantSigner:
    return GrantSigner(load_or_create_signing_key(grant_key, create=False))


def host(plane: Live) -> str:
    ops = plane.client("operator")
    body = {"type": "organization", "name": "Host", "country": "US"}
    account = ops.post("/v1/accounts", json=body).json()["account"]
    checkout = {"account": account["id"], "plan": "pro", "channel": "direct"}
    assert ops.post("/v1/checkout", json=checkout).status_code == 201
    plane.token(account["id"], role="user", account_id=account["id"])
    return str(account["id"])


def create_meeting(plane: Live, account: str) -> str:
    r = plane.client(account).post("/v1/meetings", json={})
    assert r.status_code == 201, r.text
    plane.invites[r.json()["meeting"]["id"]] = r.json()["invite"]
    return str(r.json()["meeting"]["id"])


async def join(plane: Live, meeting: str, name: str, ip: str) -> Participant:
    return await Participant.join(
        plane.url, meeting, name=name, forwarded_for=ip, invite=plane.invites[meeting]
    )


def relay_socket(p: Participant) -> ClientConnection:
    conn = p._relay  # the client's own relay socket: what the relay does to it
    assert conn is not None
    return conn


async def closed_within(conn: ClientConnection, seconds: float) -> tuple[int, str]:
    """How the relay closed ``conn``; fails if it is still open after ``seconds``."""
    try:
        await asyncio.wait_for(conn.wait_closed(), seconds)
    except TimeoutError:
        raise AssertionError(f"the relay socket was still open after {seconds} s") from None
    assert conn.close_code is not None
    return conn.close_code, conn.close_reason or ""


async def _drain(conn: ClientConnection) -> None:
    while True:
        await asyncio.wait_for(conn.recv(), WAIT)


async def refused(url: str, grant: str, ip: str) -> tuple[int, str]:
    async with connect(url, proxy=None, additional_headers={"X-Forwarded-For": ip}) as conn:
        await conn.send(json.dumps({"grant": grant}))
        with pytest.raises(ConnectionClosed) as closed:
            await _drain(conn)
    rcvd = closed.value.rcvd
    assert rcvd is not None
    return rcvd.code, rcvd.reason


def carried_frames(plane: Live, meeting: str) -> int:
    regions = plane.client("operator").get(f"/v1/meetings/{meeting}/carried").json()["regions"]
    return sum(r.get("frames_in", 0) for r in regions.values())


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
def test_a_normal_leave_drops_the_leavers_relay_socket(plane, nodes):
    meeting = create_meeting(plane, host(plane))

    async def scenario():
        alice = await join(plane, meeting, "alice", US_IP)
        # bob does by hand what a hostile client does: joins, connects to its relay, then
        # closes signalling (which is leaving) and keeps the relay socket open to go on listening
        headers = {"X-Forwarded-For": US_IP}
        signal = await connect(signal_url(plane.url, meeting), additional_headers=headers)
        public = b64url(public_bytes(X25519PrivateKey.generate()))
        signing = b64url(signing_public_bytes(Ed25519PrivateKey.generate()))
        join_message = {
            "type": "join",
            "name": "bob",
            "public_key": public,
            "signing_key": signing,
            "invite": plane.invites[meeting],
        }
        await signal.send(json.dumps(join_message))
        admitted = json.loads(await asyncio.wait_for(signal.recv(), WAIT))
        assert admitted["type"] == "admitted", admitted
        relay = await connect(admitted["relay"], proxy=None, additional_headers=headers)
        await relay.send(json.dumps({"grant": admitted["grant"]}))
        assert json.loads(await asyncio.wait_for(relay.recv(), WAIT))["type"] == "ready"
        await signal.send(json.dumps({"type": "connected"}))
        await alice.wait_for_others(1, WAIT)
        started = time.monotonic()
        await signal.close()
        code, reason = await closed_within(relay, 1.5)
        took = time.monotonic() - started
        await alice.leave()
        return code, reason, took

    code, reason, took = run(scenario())
    assert (code, reason) == (1000, "left the meeting")
    assert took < 1.5


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
def test_ending_a_meeting_closes_every_relay_socket_and_refuses_its_grants(plane, nodes, signer):
    account = host(plane)
    meeting = create_meeting(plane, account)

    async def scenario():
        alice = await join(plane, meeting, "alice", US_IP)
        bob = await join(plane, meeting, "bob", HK_IP)
        await alice.wait_for_others(1, WAIT)
        await alice.send_chat("before the end")
        assert (await bob.receive(WAIT)).text == "before the end"
        sockets = [relay_socket(p) for p in (alice, bob)]
        started = time.monotonic()
        answer = await asyncio.to_thread(plane.client(account).post, f"/v1/meetings/{meeting}/end")
        assert answer.status_code == 200, answer.text
        closes = [await closed_within(s, 1.0) for s in sockets]
        took = time.monotonic() - started
        before = await asyncio.to_thread(carried_frames, plane, meeting)
        # a grant signed for the meeting (as one a participant held) opens nothing any more
        held = jwt.decode(alice.admission.grant, options={"verify_signature": False})
        grant = Grant(
            typ="relay",
            meeting=meeting,
            participant="p_late",
            dc="US",
            regions=tuple(held["regions"]),
            key_region=held["key_region"],
            ip=US_IP,
        )
        late = await refused(nodes["US"].relay_url, signer.sign(grant), US_IP)
        after = await asyncio.to_thread(carried_frames, plane, meeting)
        return closes, took, late, before, after

    closes, took, late, before, after = run(scenario())
    assert closes == [(4410, "the meeting ended")] * 2
    assert took < 1.0
    assert late == (4410, "the meeting ended")
    assert before == after


@pytest.fixture
def brief_plane(live_factory: Any, nodes: Any, grant_key: Any) -> Live:
    """A control plane whose grants last 3 s, so that renewal has to work."""
    live = live_factory(
        grant_key=grant_key,
        node_urls={r: n.url for r, n in nodes.nodes.items()},
        trusted_proxies=("127.0.0.1/32",),
        grant_seconds=3,
    )
    live.clock.set("2021-03-01T10:00:00Z")
    return live


@pytest.mark.slow
@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
def test_signalling_renews_relay_sessions_past_their_first_grant(brief_plane, nodes):
    plane = brief_plane
    meeting = create_meeting(plane, host(plane))

    async def scenario():
        alice = await join(plane, meeting, "alice", US_IP)
        bob = await join(plane, meeting, "bob", US_IP)
        await alice.wait_for_others(1, WAIT)
        await asyncio.sleep(5)  # longer than the first grant (3 s): renewals must have come
        await alice.send_chat("still here")
        heard = (await bob.receive(WAIT)).text
        states = (relay_socket(alice).close_code, relay_socket(bob).close_code)
        for p in (alice, bob):
            await p.leave()
        return heard, states

    heard, states = run(scenario())
    assert heard == "still here"
    assert states == (None, None)


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
def test_the_control_plane_reads_counters_with_its_credential_and_others_cannot(plane, nodes):
    meeting = create_meeting(plane, host(plane))
    carried = plane.client("operator").get(f"/v1/meetings/{meeting}/carried")
    assert carried.status_code == 200, carried.text
    assert {r: "error" in v for r, v in carried.json()["regions"].items()} == dict.fromkeys(
        nodes.nodes, False
    )
    plain = httpx.get(f"{nodes['US'].url}/v1/stats/{meeting}", trust_env=False)
    assert plain.status_code == 401
