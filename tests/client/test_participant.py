"""A participant end to end: signalling, its key, the relay, rotations, and what does not open."""

from __future__ import annotations

import asyncio
import json
import os
import time
from collections.abc import Coroutine
from typing import Any

import httpx
import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from websockets.asyncio.client import connect

from meridian.client import Participant
from meridian.errors import ConfigurationError, DeniedError, FenceError, GrantError
from meridian.keys import FrameKind, SenderKeys, SenderRoster, seal_frame, sender_key
from meridian.keys.grants import Grant

WAIT = 10  # seconds: a safety net against hanging, never an assertion


def run(scenario: Coroutine[Any, Any, Any]) -> Any:
    return asyncio.run(asyncio.wait_for(scenario, 60))


def participants_on(cluster, region: str, meeting: str) -> int:
    url = f"{cluster[region].url}/v1/stats/{meeting}"
    return int(httpx.get(url, headers=cluster.admin, trust_env=False).json()["participants"])


def test_two_participants_join_unwrap_the_same_key_and_chat_across_regions(
    control, cluster, meeting
):
    control.placement[meeting] = {"bob": "DE"}
    control.notices = ["this meeting is recorded", "your relay is in the US"]
    shown: list[tuple[str, int]] = []

    def on_notice(text: str) -> None:
        # shown before the relay connection: the relay has nobody yet
        shown.append((text, participants_on(cluster, "US", meeting)))

    async def scenario():
        alice = await Participant.join(control.url, meeting, name="alice", on_notice=on_notice)
        bob = await Participant.join(control.url, meeting, name="bob")
        await alice.send_chat("hello from the US")
        heard = await bob.receive(WAIT)
        await bob.send_media(3000)
        media = await alice.receive(WAIT)
        relays = (alice.dc, bob.dc)
        await alice.leave()
        await bob.leave()
        return alice, bob, heard, media, relays

    alice, bob, heard, media, relays = run(scenario())
    assert shown == [("this meeting is recorded", 0), ("your relay is in the US", 0)]
    assert relays == ("US", "DE")
    assert alice.admission.notices == tuple(control.notices)
    assert (heard.kind, heard.sender, heard.epoch, heard.text) == (
        FrameKind.CHAT,
        alice.participant,
        0,
        "hello from the US",
    )
    assert (media.kind, media.sender, len(media.payload)) == (
        FrameKind.MEDIA,
        bob.participant,
        3000,
    )
    assert alice.undecryptable == bob.undecryptable == 0
    # the join carried a fresh X25519 public key and a fresh Ed25519 signing public key, and
    # nothing else of the participant's keys
    joins = [j for j in control.joins if j["meeting"] == meeting]
    assert sorted(joins[0]) == ["meeting", "name", "public_key", "signing_key", "type"]
    assert joins[0]["public_key"] != joins[1]["public_key"]
    assert joins[0]["signing_key"] != joins[1]["signing_key"]


def test_a_refusal_is_a_denied_error_with_the_decision(control, cluster, meeting):
    with pytest.raises(DeniedError) as refused:
        run(Participant.join(control.url, meeting, name="mallory"))
    assert refused.value.message == "mallory may not join this meeting"
    assert refused.value.decision is not None
    assert refused.value.decision.decision == "deny"
    assert participants_on(cluster, "US", meeting) == 0


def test_a_rotated_key_is_used_and_a_frame_ahead_of_its_key_waits_for_it(control, meeting):
    rotations: list[int] = []

    async def scenario():
        alice = await Participant.join(control.url, meeting, name="alice")
        bob = await Participant.join(control.url, meeting, name="bob", on_key=rotations.append)
        # alice hears of epoch 1 first and speaks under it; bob's key comes after
        await control.rotate(meeting, 1, only=(alice.participant,))
        while alice.epoch != 1:
            await asyncio.sleep(0.01)
        await alice.send_chat("under epoch 1")
        await control.rotate(meeting, 1, only=(bob.participant,))
        heard = await bob.receive(WAIT)
        # a frame of the previous epoch still in flight opens too
        old = alice.keys.seal(
            sender=alice.participant, kind=FrameKind.CHAT, payload=b"late", epoch=0
        )
        await alice.send_frame(old)
        late = await bob.receive(WAIT)
        await alice.leave()
        await bob.leave()
        return heard, late, bob

    heard, late, bob = run(scenario())
    assert (heard.epoch, heard.text) == (1, "under epoch 1")
    assert (late.epoch, late.text) == (0, "late")
    assert rotations == [1]
    assert bob.undecryptable == 0


def test_the_end_of_the_meeting_ends_receiving(control, meeting):
    async def scenario():
        alice = await Participant.join(control.url, meeting, name="alice")
        await control.end(meeting)
        with pytest.raises(EOFError):
            await alice.receive(WAIT)
        with pytest.raises(EOFError):
            await alice.receive(WAIT)  # and stays ended
        ended = alice.ended
        await alice.leave()
        return ended

    assert run(scenario()) == "the meeting ended"


def test_forwarded_for_reaches_the_control_plane_and_the_relay(control, cluster, meeting):
    beijing = "114.114.114.114"

    async def scenario():
        p = await Participant.join(control.url, meeting, name="li", forwarded_for=beijing)
        await p.leave()
        return p

    p = run(scenario())
    assert p.dc == "US"  # the relay admitted a grant for 114.114.114.114 from loopback


def test_an_unreachable_control_plane_is_a_configuration_error(meeting):
    with pytest.raises(ConfigurationError) as failed:
        run(Participant.join("http://127.0.0.1:9", meeting, name="alice"))
    assert failed.value.message.startswith("cannot reach the control plane at `ws://127.0.0.1:9/")


# -- the relay alone, with hand-made grants ----------------------------------------------------


def _grant(signer, meeting: str, who: str, **changes: Any) -> str:
    fields: dict[str, Any] = {
        "typ": "relay",
        "meeting": meeting,
        "participant": who,
        "dc": "US",
        "regions": ("DE", "US"),
        "key_region": "US",
        "links": (("DE", "US"),),
        "ip": "127.0.0.1",
        **changes,
    }
    now = fields.pop("now", time.time())
    return signer.sign(Grant(**fields), now=now)


def _keys(meeting: str, key: bytes, senders: SenderRoster | None = None) -> SenderKeys:
    keys = SenderKeys(meeting, senders=senders)
    keys.add_epoch(0, key)
    return keys


def test_frames_that_do_not_open_are_counted_and_skipped(signer, cluster, meeting):
    key = os.urandom(32)
    signing = Ed25519PrivateKey.generate()  # mallory's, in bob's (hand-made) roster
    senders = SenderRoster()
    senders.trust("p_mallory", signing.public_key())

    async def scenario():
        relay = cluster["US"].relay_url
        bob = await Participant.connect_relay(
            relay, _grant(signer, meeting, "p_bob"), meeting, "p_bob", _keys(meeting, key, senders)
        )
        async with connect(relay, proxy=None) as mallory:
            await mallory.send(json.dumps({"grant": _grant(signer, meeting, "p_mallory")}))
            await mallory.recv()
            await mallory.send(b"not a frame at all")
            wrong = sender_key(os.urandom(32), meeting, "p_mallory", 0)
            bad = seal_frame(
                wrong,
                meeting=meeting,
                sender="p_mallory",
                epoch=0,
                kind=FrameKind.CHAT,
                payload=b"x",
                signing_key=signing,
            )
            await mallory.send(bad)
            await mallory.send(bad[:-1] + bytes([bad[-1] ^ 1]))
            good = seal_frame(
                sender_key(key, meeting, "p_mallory", 0),
                meeting=meeting,
                sender="p_mallory",
                epoch=0,
                kind=FrameKind.CHAT,
                payload=b"this one opens",
                signing_key=signing,
            )
            await mallory.send(good)
            received = await bob.receive(WAIT)
        await bob.leave()
        return received, bob.undecryptable, bob.dropped

    received, undecryptable, dropped = run(scenario())
    assert received.text == "this one opens"
    # junk and a frame under the wrong key do not open; a changed byte breaks the signature
    assert undecryptable == 2
    assert dropped == {"bad_signature": 1, "unknown_sender": 0, "old_epoch": 0}


@pytest.mark.parametrize(
    ("changes", "error", "message"),
    [
        ({"now": 0}, GrantError, "expired grant"),
        ({"ip": "203.0.113.9"}, GrantError, "grant for address `203.0.113.9`"),
        ({"regions": ("DE",), "links": ()}, FenceError, "region `US` refuses meeting"),
    ],
    ids=["expired", "wrong-address", "fenced"],
)
def test_a_relay_refusal_is_the_matching_error(signer, cluster, meeting, changes, error, message):
    grant = _grant(signer, meeting, "p_alice", **changes)
    keys = _keys(meeting, os.urandom(32))
    with pytest.raises(error) as refused:
        run(Participant.connect_relay(cluster["US"].relay_url, grant, meeting, "p_alice", keys))
    assert refused.value.message.startswith(message)
