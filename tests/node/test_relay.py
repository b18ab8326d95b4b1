"""Relays as real processes: who they admit, where frames go, and that they cannot read them."""

from __future__ import annotations

import asyncio
import json
import os
from collections import Counter
from collections.abc import Coroutine
from typing import Any

import httpx
import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed

from meridian.client import Participant
from meridian.errors import UnwrapError
from meridian.keys import (
    FrameKind,
    SenderKeys,
    SenderRoster,
    parse_header,
    seal_frame,
    sender_key,
)
from meridian.keys.grants import Grant, GrantSigner

WAIT = 10  # seconds: a safety net against hanging, never an assertion


def run(scenario: Coroutine[Any, Any, Any]) -> Any:
    return asyncio.run(asyncio.wait_for(scenario, 60))


def stats(cluster, region: str, meeting: str) -> dict[str, Any]:
    return httpx.get(
        f"{cluster[region].url}/v1/stats/{meeting}", headers=ADMIN, trust_env=False
    ).json()


ADMIN: dict[str, str] = {}


@pytest.fixture(autouse=True)
def _admin(admin: dict[str, str]) -> None:
    ADMIN.update(admin)  # the counters are the control plane's: read with its credential


async def raw(url: str, grant: str, *, forwarded_for: str | None = None) -> ClientConnection:
    """A bare relay connection, admitted: what a relay sees and sends, byte for byte."""
    headers = {"X-Forwarded-For": forwarded_for} if forwarded_for else {}
    conn = await connect(url, proxy=None, compression=None, additional_headers=headers)
    await conn.send(json.dumps({"grant": grant}))
    ready = json.loads(await asyncio.wait_for(conn.recv(), WAIT))
    assert ready["type"] == "ready", ready
    return conn


async def refused(
    url: str, first: str | bytes, *, forwarded_for: str | None = None
) -> tuple[int, str]:
    """The close code and reason a relay answers ``first`` with."""
    headers = {"X-Forwarded-For": forwarded_for} if forwarded_for else {}
    async with connect(url, proxy=None, additional_headers=headers) as conn:
        await conn.send(first)
        with pytest.raises(ConnectionClosed) as closed:
            await asyncio.wait_for(conn.recv(), WAIT)
    assert closed.value.rcvd is not None
    return closed.value.rcvd.code, closed.value.rcvd.reason


#: per meeting, the signing keys its hand-made participants know each other by (what a signed
#: roster gives participants that join through the control plane)
ROSTERS: dict[str, SenderRoster] = {}


def meeting_keys(meeting: str, key: bytes | None = None) -> SenderKeys:
    """Frame keys as a participant holds them once it has unwrapped the meeting key."""
    keys = SenderKeys(meeting, senders=ROSTERS.setdefault(meeting, SenderRoster()))
    keys.add_epoch(0, key or os.urandom(32))
    return keys


async def until_marker(p: Participant, marker: str, *, count: int = 1) -> list[tuple[str, str]]:
    """(sender, text) of every chat line ``p`` receives until ``count`` lines say ``marker``."""
    got: list[tuple[str, str]] = []
    seen = 0
    while seen < count:
        r = await p.receive(WAIT)
        got.append((r.sender, r.text if r.kind == FrameKind.CHAT else f"<media {len(r.payload)}>"))
        seen += r.kind == FrameKind.CHAT and r.text == marker
    return got


# -- admission ----------------------------------------------------------------------------------


@pytest.mark.parametrize("region", ["US", "DE", "HK", "CN"])
def test_healthz_names_the_region(cluster, region):
    answer = httpx.get(f"{cluster[region].url}/healthz", trust_env=False)
    assert answer.json() == {"region": region, "status": "ok"}


def test_relay_admits_a_good_grant_and_says_which_region(cluster, mint, meeting):
    async def scenario():
        conn = await raw(cluster["US"].relay_url, mint(regions=("US",), links=()))
        assert stats(cluster, "US", meeting)["participants"] == 1
        await conn.close()

    run(scenario())


OTHER_SIGNER = GrantSigner(Ed25519PrivateKey.generate())


@pytest.mark.parametrize(
    ("changes", "code", "reason"),
    [
        ({"by": OTHER_SIGNER}, 4401, "invalid grant: signature verification failed"),
        ({"now": 0}, 4401, "expired grant: ask the control plane for a new one"),
        ({"dc": "DE"}, 4401, "grant for region `DE` presented to region `US`"),
        ({"typ": "key"}, 4401, "wrong grant: a `key` grant where `relay` is needed"),
        ({"ip": "203.0.113.9"}, 4401, "grant for address `203.0.113.9` presented from `127.0.0.1`"),
        ({"ip": None}, 4401, "grant for address `null` presented from `127.0.0.1`"),
        ({"regions": ("DE", "HK"), "links": ()}, 4403, "region `US` refuses meeting `mtg_"),
    ],
    ids=["forged", "expired", "wrong-dc", "key-grant", "wrong-address", "no-address", "fenced"],
)
def test_relay_refuses_a_bad_grant_with_its_reason(cluster, mint, meeting, changes, code, reason):
    async def scenario():
        return await refused(cluster["US"].relay_url, json.dumps({"grant": mint(**changes)}))

    got_code, got_reason = run(scenario())
    assert (got_code, got_reason[: len(reason)]) == (code, reason)
    assert stats(cluster, "US", meeting)["participants"] == 0


@pytest.mark.parametrize(
    ("first", "code", "reason"),
    [
        (b"\x00binary", 4400, 'the first message must be the text `{"grant": "<token>"}`'),
        ("hello", 4400, "the first message `hello` is not JSON"),
        ("[1, 2]", 4400, "the first message `[1, 2]` is not an object"),
        ("{}", 4401, "missing grant"),
        ('{"grant": "a.b.c"}', 4401, "invalid grant"),
    ],
    ids=["binary", "not-json", "not-an-object", "no-grant", "garbage-grant"],
)
def test_relay_refuses_a_malformed_first_message(cluster, first, code, reason):
    got_code, got_reason = run(refused(cluster["US"].relay_url, first))
    assert (got_code, got_reason[: len(reason)]) == (code, reason)


def test_forwarded_for_is_believed_only_from_a_trusted_proxy(cluster, mint):
    beijing = "114.114.114.114"

    async def scenario():
        # US trusts loopback as a proxy: the client is where the header says
        conn = await raw(cluster["US"].relay_url, mint(ip=beijing), forwarded_for=beijing)
        await conn.close()
        # HK trusts no proxy: the header is ignored, whichever way it points
        hk_grant = mint(dc="HK", regions=("HK",), links=(), ip=beijing)
        code, reason = await refused(
            cluster["HK"].relay_url, json.dumps({"grant": hk_grant}), forwarded_for=beijing
        )
        assert (code, reason) == (4401, f"grant for address `{beijing}` presented from `127.0.0.1`")
        own = mint(dc="HK", regions=("HK",), links=(), ip="127.0.0.1")
        conn = await raw(cluster["HK"].relay_url, own, forwarded_for=beijing)
        await conn.close()

    run(scenario())


# -- forwarding ---------------------------------------------------------------------------------


def test_frames_flow_between_two_participants_on_one_relay_each_once(cluster, mint, meeting):
    keys = os.urandom(32)
    one_relay = {"regions": ("US",), "links": ()}

    async def scenario():
        relay = cluster["US"].relay_url
        alice = await Participant.connect_relay(
            relay, mint("p_alice", **one_relay), meeting, "p_alice", meeting_keys(meeting, keys)
        )
        bob = await Participant.connect_relay(
            relay, mint("p_bob", **one_relay), meeting, "p_bob", meeting_keys(meeting, keys)
        )
        assert stats(cluster, "US", meeting)["participants"] == 2
        for i in range(5):
            await alice.send_chat(f"line {i}")
        for _ in range(3):
            await alice.send_media(1000)
        await alice.send_chat("over")
        got = await until_marker(bob, "over")
        await bob.send_chat("roger")
        back = await until_marker(alice, "roger")
        s = stats(cluster, "US", meeting)
        await alice.leave()
        await bob.leave()
        return got, back, s, bob.undecryptable + alice.undecryptable

    got, back, s, undecryptable = run(scenario())
    expected = [("p_alice", f"line {i}") for i in range(5)]
    expected += [("p_alice", "<media 1000>")] * 3 + [("p_alice", "over")]
    assert got == expected
    assert back == [("p_bob", "roger")]
    assert undecryptable == 0
    # 10 frames in, each forwarded to the one other participant; nothing over a cascade
    assert (s["frames_in"], s["frames_out"]) == (10, 10)
    assert s["bytes_in"] == s["bytes_out"] > 3000
    assert stats(cluster, "US", meeting)["participants"] == 0
    assert stats(cluster, "DE", meeting)["frames_in"] == 0


def test_frames_cross_a_cascade_once_and_never_reach_an_unlinked_region(
    cluster, mint, meeting, give_links
):
    key = os.urandom(32)
    give_links()
    rounds = 4

    async def join(name: str, region: str) -> Participant:
        grant = mint(f"p_{name}", dc=region)
        node = cluster[region].relay_url
        return await Participant.connect_relay(
            node, grant, meeting, f"p_{name}", meeting_keys(meeting, key)
        )

    async def scenario():
        alice, carol, bob = (
            await join("alice", "US"),
            await join("carol", "US"),
            await join("bob", "DE"),
        )
        people = {"p_alice": alice, "p_carol": carol, "p_bob": bob}
        for name, p in people.items():
            for i in range(rounds):
                await p.send_chat(f"{name} {i}")
            await p.send_chat("done")
        heard = {
            name: await until_marker(p, "done", count=len(people) - 1) for name, p in people.items()
        }
        counts = {r: stats(cluster, r, meeting) for r in ("US", "DE", "CN", "HK")}
        for p in people.values():
            await p.leave()
        return heard, counts

    heard, counts = run(scenario())
    for name, lines in heard.items():
        expected = Counter(
            (other, f"{other} {i}" if i < rounds else "done")
            for other in ("p_alice", "p_carol", "p_bob")
            if other != name
            for i in range(rounds + 1)
        )
        assert Counter(lines) == expected, name  # every line of every other once, none of its own
    per_sender = rounds + 1
    us, de = counts["US"], counts["DE"]
    assert (us["participants"], de["participants"]) == (2, 1)
    # US: its two locals' frames and bob's over the cascade in; each local frame to the other
    # local and once to DE, each of bob's to both locals
    assert (us["frames_in"], us["frames_out"]) == (3 * per_sender, 6 * per_sender)
    # DE: alice's and carol's over the cascade and bob's own in; theirs to bob, bob's once to US
    assert (de["frames_in"], de["frames_out"]) == (3 * per_sender, 3 * per_sender)
    zero = {"bytes_in": 0, "bytes_out": 0, "frames_in": 0, "frames_out": 0, "keys": 0}
    zero |= {f"media_{k}": 0 for k in ("bytes_in", "bytes_out", "frames_in", "frames_out")}
    for region in ("CN", "HK"):
        assert counts[region] == {
            "region": region,
            "meeting": meeting,
            **zero,
            "participants": 0,
        }


def test_a_node_refuses_a_link_to_a_region_outside_the_allowed_set(
    cluster, mint, meeting, signer, give_links
):
    give_links()  # DE-US, as the control plane would
    to_cn = Grant(
        typ="link",
        meeting=meeting,
        participant="",
        dc="US",
        regions=("DE", "US"),
        key_region="",
        pair=("CN", "US"),
    )
    answer = httpx.post(
        f"{cluster['US'].url}/v1/relay/{meeting}/links",
        json={"grants": [signer.sign(to_cn)]},
        trust_env=False,
    )

    async def scenario():
        key = os.urandom(32)
        alice = await Participant.connect_relay(
            cluster["US"].relay_url, mint("p_alice"), meeting, "p_alice", meeting_keys(meeting, key)
        )
        bob = await Participant.connect_relay(
            cluster["DE"].relay_url,
            mint("p_bob", dc="DE"),
            meeting,
            "p_bob",
            meeting_keys(meeting, key),
        )
        await alice.send_chat("still works")
        got = await until_marker(bob, "still works")
        await alice.leave()
        await bob.leave()
        return got

    assert answer.status_code == 403
    assert answer.json()["error"]["message"] == (
        f"region `US` refuses link `CN-US` of meeting `{meeting}`: not a link from this region "
        "to an allowed one"
    )
    assert run(scenario()) == [("p_alice", "still works")]
    assert stats(cluster, "CN", meeting)["frames_in"] == 0


def _link(signer, meeting: str, *, dc: str = "US", pair=("DE", "US"), regions=("DE", "US")):
    grant = Grant(
        typ="link",
        meeting=meeting,
        participant="",
        dc=dc,
        regions=regions,
        key_region="",
        pair=pair,
    )
    return signer.sign(grant)


@pytest.mark.parametrize(
    ("changes", "code", "reason"),
    [
        ({"pair": ("HK", "US")}, 4403, "region `DE` refuses a cascade from `US` for meeting `mtg_"),
        ({"regions": ("HK", "US")}, 4403, "region `DE` refuses meeting `mtg_"),
        ({"regions": ("DE",)}, 4403, "region `DE` refuses a cascade from `US` for meeting `mtg_"),
        ({"dc": "DE"}, 4403, "region `DE` refuses a cascade from `DE`"),
        ({"relay": True}, 4401, "wrong grant: a `relay` grant where `link` is needed"),
    ],
    ids=["other-link", "peer-not-allowed", "opener-not-allowed", "from-itself", "relay-grant"],
)
def test_cascade_accepts_only_a_link_grant_between_allowed_regions(
    cluster, mint, signer, meeting, changes, code, reason
):
    grant = mint() if changes.pop("relay", False) else _link(signer, meeting, **changes)
    got_code, got = run(refused(cluster["DE"].cascade_url, json.dumps({"grant": grant})))
    assert (got_code, got[: len(reason)]) == (code, reason)


def test_relays_forward_ciphertext_they_cannot_read(cluster, mint, meeting, give_links):
    key = os.urandom(32)
    give_links()
    marker = "MARKER-7f3a-the-relay-must-not-see-this"

    async def scenario():
        alice = await Participant.connect_relay(
            cluster["US"].relay_url, mint("p_alice"), meeting, "p_alice", meeting_keys(meeting, key)
        )
        eve = await raw(cluster["US"].relay_url, mint("p_eve"))  # what US passes on, raw
        tap = await raw(cluster["DE"].relay_url, mint("p_tap", dc="DE"))  # what crossed to DE
        await alice.send_chat(marker)
        on_us, on_de = (
            await asyncio.wait_for(eve.recv(), WAIT),
            await asyncio.wait_for(tap.recv(), WAIT),
        )
        # a frame sealed by hand goes through unchanged, byte for byte
        eve_signs = Ed25519PrivateKey.generate()
        ROSTERS[meeting].trust("p_eve", eve_signs.public_key())
        sealed = seal_frame(
            sender_key(key, meeting, "p_eve", 0),
            meeting=meeting,
            sender="p_eve",
            epoch=0,
            kind=FrameKind.CHAT,
            payload=b"exactly these bytes",
            signing_key=eve_signs,
        )
        await eve.send(sealed)
        forwarded = await asyncio.wait_for(tap.recv(), WAIT)
        opened = await alice.receive(WAIT)
        for conn in (eve, tap):
            await conn.close()
        await alice.leave()
        return on_us, on_de, sealed, forwarded, opened

    on_us, on_de, sealed, forwarded, opened = run(scenario())
    assert on_us == on_de
    assert marker.encode() not in on_us
    assert b"MARKER" not in on_us
    assert on_us.startswith(b"MF2")
    assert parse_header(on_us).sender == "p_alice"
    with pytest.raises(UnwrapError):
        meeting_keys(meeting).open(on_us)  # any other meeting key opens nothing
    assert meeting_keys(meeting, key).open(on_us)[1] == marker.encode()
    assert forwarded == sealed
    assert (opened.sender, opened.payload) == ("p_eve", b"exactly these bytes")


def test_leaving_updates_the_participant_count(cluster, mint, meeting):
    async def scenario():
        counts = []
        conns = []
        for name in ("a", "b", "c"):
            conns.append(await raw(cluster["US"].relay_url, mint(f"p_{name}")))
            counts.append(stats(cluster, "US", meeting)["participants"])
        for conn in conns:
            await conn.close()
            await conn.wait_closed()
        return counts

    assert run(scenario()) == [1, 2, 3]

    async def settled() -> int:
        for _ in range(500):  # the relay sees the close a moment after the client does
            left = stats(cluster, "US", meeting)["participants"]
            if left == 0:
                return left
            await asyncio.sleep(0.01)
        return left

    assert run(settled()) == 0


def test_metrics_expose_the_counters(cluster, mint, meeting):
    from prometheus_client.parser import text_string_to_metric_families

    async def scenario():
        a = await raw(cluster["US"].relay_url, mint("p_a", regions=("US",), links=()))
        b = await raw(cluster["US"].relay_url, mint("p_b", regions=("US",), links=()))
        await a.send(b"x" * 100)
        await a.send(b"y" * 50)
        assert await asyncio.wait_for(b.recv(), WAIT) == b"x" * 100
        assert await asyncio.wait_for(b.recv(), WAIT) == b"y" * 50
        text = httpx.get(f"{cluster['US'].url}/metrics", headers=ADMIN, trust_env=False).text
        await a.close()
        await b.close()
        return text

    samples = {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(run(scenario()))
        for s in family.samples
        if s.labels.get("meeting") == meeting
    }
    m = ("meeting", meeting)
    assert samples == {
        ("meridian_relay_bytes_total", (("direction", "in"), m)): 150,
        ("meridian_relay_bytes_total", (("direction", "out"), m)): 150,
        ("meridian_relay_frames_total", (("direction", "in"), m)): 2,
        ("meridian_relay_frames_total", (("direction", "out"), m)): 2,
        # what is not a sealed media frame is carried, and not counted as media
        ("meridian_relay_media_bytes_total", (("direction", "in"), m)): 0,
        ("meridian_relay_media_bytes_total", (("direction", "out"), m)): 0,
        ("meridian_keys_wrapped_total", (m,)): 0,
        ("meridian_relay_participants", (m,)): 2,
    }


def test_stats_of_a_meeting_never_seen_are_zeros_and_all_stats_list_meetings(
    cluster, mint, meeting
):
    assert stats(cluster, "HK", "mtg_never") == {
        "region": "HK",
        "meeting": "mtg_never",
        "bytes_in": 0,
        "bytes_out": 0,
        "frames_in": 0,
        "frames_out": 0,
        "media_bytes_in": 0,
        "media_bytes_out": 0,
        "media_frames_in": 0,
        "media_frames_out": 0,
        "keys": 0,
        "participants": 0,
    }

    async def scenario():
        conn = await raw(cluster["US"].relay_url, mint(regions=("US",), links=()))
        listed = httpx.get(f"{cluster['US'].url}/v1/stats", headers=ADMIN, trust_env=False).json()
        one = stats(cluster, "US", meeting)
        await conn.close()
        return listed, one

    listed, one = run(scenario())
    assert listed["region"] == "US"
    assert one["participants"] == 1
    assert one in listed["meetings"]
