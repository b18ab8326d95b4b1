"""Rooms and links from the inside: two nodes served in this process, their relays inspected.

The process tests (test_relay.py) see what goes over the wire; these see what a relay holds: a
room per meeting, one link per peer, dropped when the last local participant leaves.
"""

from __future__ import annotations

import asyncio
import json
import socket
import threading
import time
from collections.abc import Callable, Iterator

import pytest
import uvicorn
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from tests.support import aeventually
from websockets.asyncio.client import ClientConnection, connect

from meridian.errors import ConfigurationError
from meridian.keys.grants import Grant, GrantSigner, public_key_b64
from meridian.node import NodeConfig, create_node_app
from meridian.node import relay as relay_module
from meridian.node.counters import MeetingCounters
from meridian.node.relay import Outbox, Relay

MEETING = "mtg_rooms"


def _serve(config: NodeConfig, sock: socket.socket) -> tuple[Relay, Callable[[], None]]:
    """Serve a node on ``sock`` in a thread; its relay and a function that stops it."""
    app = create_node_app(config)
    server = uvicorn.Server(
        uvicorn.Config(
            app, log_level="warning", ws="websockets-sansio", proxy_headers=False, lifespan="on"
        )
    )
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not server.started:
        assert thread.is_alive(), "node did not start"
        assert time.monotonic() < deadline, "node did not start in time"
        time.sleep(0.01)

    def stop() -> None:
        server.should_exit = True
        thread.join(timeout=30)
        sock.close()

    return app.state.relay, stop


@pytest.fixture(scope="module")
def pair(tmp_path_factory) -> Iterator[tuple[dict[str, Relay], dict[str, str], GrantSigner]]:
    """US and DE nodes in this process, peers of each other: their relays, URLs and signer."""
    signer = GrantSigner(Ed25519PrivateKey.generate())
    socks = {}
    for region in ("US", "DE"):
        socks[region] = socket.socket()
        socks[region].bind(("127.0.0.1", 0))
    urls = {r: f"http://127.0.0.1:{s.getsockname()[1]}" for r, s in socks.items()}
    relays, stops = {}, []
    base = tmp_path_factory.mktemp("rooms")
    for region in ("US", "DE"):
        config = NodeConfig(
            region=region,
            store=base / region,
            control_key=public_key_b64(signer.public_key),
            peers={p: u for p, u in urls.items() if p != region},
        )
        relays[region], stop = _serve(config, socks[region])
        stops.append(stop)
    yield relays, {r: u.replace("http", "ws") + "/v1/relay" for r, u in urls.items()}, signer
    for stop in stops:
        stop()


def _grant(signer: GrantSigner, who: str, dc: str) -> str:
    grant = Grant(
        typ="relay",
        meeting=MEETING,
        participant=who,
        dc=dc,
        regions=("DE", "US"),
        key_region="US",
        links=(("DE", "US"),),
        ip="127.0.0.1",
    )
    return signer.sign(grant)


def _give_links(signer: GrantSigner, urls: dict[str, str]) -> None:
    """What the control plane does on placing a participant: each node gets its link grant."""
    import httpx

    for region in ("US", "DE"):
        grant = Grant(
            typ="link",
            meeting=MEETING,
            participant="",
            dc=region,
            regions=("DE", "US"),
            key_region="US",
            pair=("DE", "US"),
        )
        base = urls[region].replace("ws://", "http://").removesuffix("/v1/relay")
        answer = httpx.post(
            f"{base}/v1/relay/{MEETING}/links",
            json={"grants": [signer.sign(grant)]},
            trust_env=False,
        )
        assert answer.status_code == 200, answer.text


async def _admit(url: str, grant: str) -> ClientConnection:
    conn = await connect(url, proxy=None)
    await conn.send(json.dumps({"grant": grant}))
    assert json.loads(await conn.recv())["type"] == "ready"
    return conn


async def _until(check: Callable[[], bool]) -> bool:
    """Wait until ``check`` holds: the relay acts on a close a moment after the client sees it."""

    async def holds() -> bool:
        return check()

    return await aeventually(holds, timeout=10, interval=0.01)


def test_a_room_links_each_peer_once_and_drops_its_links_with_its_last_participant(pair):
    relays, urls, signer = pair

    async def scenario():
        us, de = relays["US"], relays["DE"]
        await asyncio.to_thread(_give_links, signer, urls)
        alice = await _admit(urls["US"], _grant(signer, "p_alice", "US"))
        # the link is up before alice hears `ready`: both sides hold it
        assert list(us.rooms[MEETING].links) == ["DE"]
        assert list(de.rooms[MEETING].links) == ["US"]
        assert de.rooms[MEETING].links["US"].inbound
        carol = await _admit(urls["US"], _grant(signer, "p_carol", "US"))
        bob = await _admit(urls["DE"], _grant(signer, "p_bob", "DE"))
        # nobody opened a second link: DE already had one to US when bob came
        assert len(us.rooms[MEETING].every_link) == len(de.rooms[MEETING].every_link) == 1
        await alice.close()
        assert await _until(lambda: len(us.rooms[MEETING].locals) == 1)
        assert list(us.rooms[MEETING].links) == ["DE"]  # carol is still there
        await carol.close()
        # US's last participant left: the room and its link go, and DE's end of the link too
        assert await _until(lambda: MEETING not in us.rooms)
        assert await _until(lambda: not de.rooms[MEETING].links)
        assert len(de.rooms[MEETING].locals) == 1
        # a new US participant brings a new link; bob's frames reach her
        dora = await _admit(urls["US"], _grant(signer, "p_dora", "US"))
        await bob.send(b"sealed bytes")
        assert await asyncio.wait_for(dora.recv(), 10) == b"sealed bytes"
        await bob.close()
        await dora.close()
        assert await _until(lambda: MEETING not in us.rooms and MEETING not in de.rooms)

    asyncio.run(asyncio.wait_for(scenario(), 60))


def test_a_receiver_too_far_behind_is_dropped_not_waited_for(monkeypatch):
    monkeypatch.setattr(relay_module, "BACKLOG_LIMIT", 1000)

    async def scenario():
        never = asyncio.Event()

        async def stuck(_: bytes) -> None:
            await never.wait()

        dropped = []
        outbox = Outbox(stuck, MeetingCounters(), lambda: dropped.append(True))
        writer = asyncio.create_task(outbox.run())
        for _ in range(30):
            outbox.put(b"x" * 100)  # never blocks the sender, whatever the receiver does
            await asyncio.sleep(0)
        writer.cancel()
        return dropped, outbox.closed

    assert asyncio.run(scenario()) == ([True], True)


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"region": "XX"}, "unknown region `XX`"),
        ({"peers": {"US": "http://x"}}, "peer `US` of region `US` is not another region"),
        ({"trusted_proxies": ("not-a-net",)}, "trusted proxy: "),
    ],
    ids=["region", "peer", "proxy"],
)
def test_node_config_refuses_what_it_cannot_run_on(tmp_path, changes, message):
    fields = {"region": "US", "store": tmp_path, "control_key": "k", **changes}
    with pytest.raises(ConfigurationError) as refused:
        NodeConfig(**fields)
    assert refused.value.message.startswith(message)
