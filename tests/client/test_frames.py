"""Frames authenticated to their sender, against a hostile participant: a real control plane,
real region-node processes (tests/conftest.py ``plane`` and ``nodes``), real participants.

Every participant holds the meeting's group key, so any of them can seal a frame that opens as
another's. What stops it is the sender's signature, checked against the roster the control
plane signs; and frames of a superseded epoch are dropped once its grace (2 s) has passed.
"""

from __future__ import annotations

import asyncio
import base64
import json
from collections.abc import Coroutine
from typing import Any

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from meridian.client.participant import Participant
from meridian.keys import FrameKind

US_IP = "8.8.8.8"
WAIT = 10  # seconds: a safety net against hanging, never an assertion
#: the documented grace for frames of a superseded epoch (docs/data-plane.md §Frames), and a margin
PAST_THE_GRACE = 2.0 + 0.3

pytestmark = [
    pytest.mark.storage,
    pytest.mark.parametrize("database_url", ["sqlite"], indirect=True),
]


def run(scenario: Coroutine[Any, Any, Any]) -> Any:
    return asyncio.run(asyncio.wait_for(scenario, 90))


def create_meeting(plane: Any) -> str:
    ops = plane.client("operator")
    body = {"type": "organization", "name": "Host", "country": "US"}
    account = ops.post("/v1/accounts", json=body).json()["account"]
    checkout = {"account": account["id"], "plan": "pro", "channel": "direct"}
    assert ops.post("/v1/checkout", json=checkout).status_code == 201
    plane.token(account["id"], role="user", account_id=account["id"])
    r = plane.client(account["id"]).post("/v1/meetings", json={})
    assert r.status_code == 201, r.text
    plane.invites[r.json()["meeting"]["id"]] = r.json()["invite"]
    return str(r.json()["meeting"]["id"])


async def join(plane: Any, meeting: str, name: str, **kw: Any) -> Participant:
    """Join as a guest holding the meeting's invite (its join link's secret)."""
    kw.setdefault("invite", plane.invites[meeting])
    return await Participant.join(plane.url, meeting, name=name, forwarded_for=US_IP, **kw)


async def until(check: Any, what: str) -> None:
    for _ in range(200):
        if check():
            return
        await asyncio.sleep(0.05)
    raise AssertionError(f"{what} did not happen within 10 s")


async def everyone(plane: Any, meeting: str, *names: str) -> list[Participant]:
    people = [await join(plane, meeting, name) for name in names]
    for person in people:
        await person.wait_for_others(len(people) - 1, WAIT)
    return people


def test_a_frame_forged_under_another_participants_id_is_dropped_and_counted(plane, nodes):
    meeting = create_meeting(plane)

    async def scenario() -> dict[str, Any]:
        alice, bob, mallory = await everyone(plane, meeting, "alice", "bob", "mallory")
        # mallory holds the group key: her frame opens as bob's to anyone who only decrypts
        forged = mallory.keys.seal(sender=bob.participant, kind=FrameKind.CHAT, payload=b"i am bob")
        await mallory.send_frame(forged)
        # and one under an id that is no one's
        ghost = mallory.keys.seal(sender="p_ghost", kind=FrameKind.CHAT, payload=b"boo")
        await mallory.send_frame(ghost)
        await bob.send_chat("the real bob")
        first = await alice.receive(WAIT)
        # alice shows nothing of the forgery: the first frame she gets is bob's own
        assert (first.sender, first.text) == (bob.participant, "the real bob")
        # the ghost's frame waits for a roster naming it, then is counted (after the grace)
        await until(lambda: alice.dropped["unknown_sender"] == 1, "the ghost frame's drop")
        await mallory.send_chat("mallory as herself")
        second = await alice.receive(WAIT)
        out = {
            "first": (first.sender, first.text),
            "second": (second.sender, second.text),
            "alice": alice.dropped,
            "bob": bob.dropped,
            "undecryptable": alice.undecryptable,
            "ids": (bob.participant, mallory.participant),
        }
        for person in (alice, bob, mallory):
            await person.leave()
        return out

    out = run(scenario())
    bob_id, mallory_id = out["ids"]
    # alice showed nothing of the forgery: the first frame she got is bob's own
    assert out["first"] == (bob_id, "the real bob")
    assert out["second"] == (mallory_id, "mallory as herself")
    assert out["alice"] == {"bad_signature": 1, "unknown_sender": 1, "old_epoch": 0}
    # bob, too, got the forgery of himself and the ghost: dropped
    assert out["bob"]["bad_signature"] == 1
    assert out["undecryptable"] == 0


def test_frames_of_a_superseded_epoch_are_dropped_after_the_grace(plane, nodes):
    meeting = create_meeting(plane)

    async def scenario() -> dict[str, Any]:
        alice, bob, carol, dave = await everyone(plane, meeting, "alice", "bob", "carol", "dave")
        await carol.leave()  # the key rotates to epoch 2 (epochs start at 1)
        await until(lambda: alice.epoch == bob.epoch == 2, "the rotation to epoch 2")
        # sealed just before, under epoch 1, arriving just after: within the grace, it opens
        in_flight = bob.keys.seal(
            sender=bob.participant, kind=FrameKind.CHAT, payload=b"late", epoch=1
        )
        await bob.send_frame(in_flight)
        first = await alice.receive(WAIT)
        very_old = bob.keys.seal(
            sender=bob.participant, kind=FrameKind.CHAT, payload=b"e1", epoch=1
        )
        await dave.leave()  # epoch 3: epoch 1 is now older than the previous one
        await until(lambda: alice.epoch == bob.epoch == 3, "the rotation to epoch 3")
        await bob.send_frame(very_old)  # dropped at once, grace or not
        previous = bob.keys.seal(
            sender=bob.participant, kind=FrameKind.CHAT, payload=b"e2", epoch=2
        )
        await bob.send_frame(previous)
        second = await alice.receive(WAIT)
        assert (second.epoch, second.text) == (2, "e2")  # epoch 1 was dropped
        await asyncio.sleep(PAST_THE_GRACE)  # epoch 2's grace runs out
        stale = bob.keys.seal(
            sender=bob.participant, kind=FrameKind.CHAT, payload=b"e2 again", epoch=2
        )
        await bob.send_frame(stale)
        await bob.send_chat("current")
        third = await alice.receive(WAIT)
        assert (third.epoch, third.text) == (3, "current")  # epoch 2, past its grace, dropped
        out = {
            "got": [(r.epoch, r.text) for r in (first, second, third)],
            "dropped": alice.dropped,
        }
        for person in (alice, bob):
            await person.leave()
        return out

    out = run(scenario())
    assert out["got"] == [(1, "late"), (2, "e2"), (3, "current")]
    assert out["dropped"] == {"bad_signature": 0, "unknown_sender": 0, "old_epoch": 2}


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _tampered(token: str, participant: str, key: Ed25519PrivateKey) -> str:
    """``token`` with ``participant``'s signing key replaced by ``key``'s, signature kept."""
    from cryptography.hazmat.primitives import serialization

    head, payload, signature = token.split(".")
    claims = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
    raw = key.public_key().public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    for member in claims["members"]:
        if member["participant"] == participant:
            member["signing_key"] = _b64(raw)
    return ".".join([head, _b64(json.dumps(claims).encode()), signature])


def test_a_roster_not_signed_by_the_control_plane_is_refused(plane, nodes):
    """A roster that lists bob under mallory's key would let her forgeries pass: refused, both
    tampered (the control plane's signature kept) and signed by another key; and a client that
    pins the control plane's key refuses a control plane whose rosters it does not sign."""
    import jwt

    meeting = create_meeting(plane)
    signalling = plane.app.state.signalling
    mallory_key = Ed25519PrivateKey.generate()

    async def scenario() -> dict[str, Any]:
        alice, bob = await everyone(plane, meeting, "alice", "bob")
        live = signalling.meetings[meeting]
        genuine = signalling.signed_roster(live)
        claims = jwt.decode(genuine, options={"verify_signature": False})
        claims["seq"] += 100
        for member in claims["members"]:
            if member["participant"] == bob.participant:
                member["signing_key"] = _b64(mallory_key.public_key().public_bytes_raw())
        forged = {
            "tampered": _tampered(genuine, bob.participant, mallory_key),
            "other-key": jwt.encode(claims, mallory_key, algorithm="EdDSA"),
        }
        seat = live.participants[alice.participant]
        for token in forged.values():
            await plane.on_server(seat.send({"type": "members", "signed_roster": token}))
        await until(lambda: alice.rosters_refused == 2, "both rosters' refusal")
        # mallory, with bob's id and her own key, is still not bob to alice
        frame = alice.keys.seal(sender=bob.participant, kind=FrameKind.CHAT, payload=b"x")
        frame = frame[:-64] + mallory_key.sign(frame[:-64] + meeting.encode())
        await bob.send_frame(frame)
        await bob.send_chat("bob himself")
        got = await alice.receive(WAIT)
        out = {"got": (got.sender, got.text), "dropped": alice.dropped, "bob": bob.participant}
        # a client that pins another key than the control plane's refuses to join
        pinned = Ed25519PrivateKey.generate().public_key()
        try:
            await join(plane, meeting, "carol", control_key=pinned)
        except Exception as exc:  # noqa: BLE001 - the refusal's kind is asserted below
            out["pinned"] = (type(exc).__name__, str(exc))
        for person in (alice, bob):
            await person.leave()
        return out

    out = run(scenario())
    assert out["got"] == (out["bob"], "bob himself")
    assert out["dropped"]["bad_signature"] == 1
    assert out["pinned"] == (
        "RosterError",
        "the control plane's roster key is not the pinned one: refusing its rosters",
    )
