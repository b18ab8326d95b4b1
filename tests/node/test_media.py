"""Media through real relays: one video quality per receiver, the rest to all, media counted apart."""

from __future__ import annotations

import asyncio
import json
import os

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from tests.node.test_relay import ADMIN, WAIT, raw, run, stats
from websockets.asyncio.client import ClientConnection
from websockets.exceptions import ConnectionClosed

from meridian.keys import FrameKind, seal_frame, sender_key
from meridian.keys.media import parse_header


@pytest.fixture(autouse=True)
def _admin(admin: dict[str, str]) -> None:
    ADMIN.update(admin)


def sealed(meeting: str, kind: FrameKind, size: int) -> bytes:
    key = sender_key(os.urandom(32), meeting, "p_sender", 1)
    return seal_frame(
        key,
        meeting=meeting,
        sender="p_sender",
        epoch=1,
        kind=kind,
        payload=os.urandom(size),
        signing_key=Ed25519PrivateKey.generate(),
    )


async def kinds_until(conn: ClientConnection, last: bytes) -> list[FrameKind]:
    """The kinds of the frames ``conn`` receives, until (and with) ``last``."""
    got = []
    while True:
        frame = await asyncio.wait_for(conn.recv(), WAIT)
        assert isinstance(frame, bytes)
        got.append(parse_header(frame).kind)
        if frame == last:
            return got


def test_each_receiver_gets_the_video_quality_it_asked_for_and_media_is_counted(
    cluster, mint, meeting, give_links
):
    give_links()
    frames = [
        sealed(meeting, FrameKind.MEDIA, 100),  # audio: to everyone
        sealed(meeting, FrameKind.VIDEO_HIGH, 4000),
        sealed(meeting, FrameKind.VIDEO_LOW, 1000),
        sealed(meeting, FrameKind.CHAT, 10),
    ]

    async def scenario():
        sender = await raw(cluster["US"].relay_url, mint("p_sender"))
        high = await raw(cluster["US"].relay_url, mint("p_high"))  # asks nothing: high
        low = await raw(cluster["US"].relay_url, mint("p_low"))
        far = await raw(cluster["DE"].relay_url, mint("p_far", dc="DE"))  # over the cascade
        for conn in (low, far):
            await conn.send(json.dumps({"type": "layer", "layer": "low"}))
        await asyncio.sleep(0)  # the layer messages are read before frames on each socket
        # a frame sent to settle the cascade: DE's participant hears the sender once it is up
        probe = sealed(meeting, FrameKind.CHAT, 1)
        for _ in range(100):
            await sender.send(probe)
            try:
                if await asyncio.wait_for(far.recv(), 0.2) == probe:
                    break
            except TimeoutError:
                continue
        before = {r: stats(cluster, r, meeting) for r in ("US", "DE")}
        for frame in frames:
            await sender.send(frame)
        got = {
            name: await kinds_until(conn, frames[-1])
            for name, conn in (("high", high), ("low", low), ("far", far))
        }
        # high and low may still be draining the probes sent before DE was linked
        after = {r: stats(cluster, r, meeting) for r in ("US", "DE", "CN")}
        for conn in (sender, high, low, far):
            await conn.close()
        return got, before, after

    got, before, after = run(scenario())
    media, hi, lo, chat = FrameKind.MEDIA, FrameKind.VIDEO_HIGH, FrameKind.VIDEO_LOW, FrameKind.CHAT
    assert [k for k in got["high"] if k != chat][-2:] == [media, hi]
    assert [k for k in got["low"] if k != chat][-2:] == [media, lo]
    assert got["far"][-3:] == [media, lo, chat]
    media_bytes = sum(len(f) for f in frames[:3])
    us_in = after["US"]["media_bytes_in"] - before["US"]["media_bytes_in"]
    assert us_in == media_bytes
    # US sent all three media frames over the link, one quality to each local receiver
    assert after["US"]["media_frames_in"] - before["US"]["media_frames_in"] == 3
    assert after["DE"]["media_bytes_in"] - before["DE"]["media_bytes_in"] == media_bytes
    assert after["DE"]["media_bytes_out"] - before["DE"]["media_bytes_out"] == len(frames[0]) + len(
        frames[2]
    )
    assert after["CN"]["media_bytes_in"] == after["CN"]["bytes_in"] == 0


@pytest.mark.parametrize(
    ("message", "reason"),
    [
        ({"type": "layer", "layer": "ultra"}, "video layer `ultra` is not `high` or `low`"),
        ({"type": "layer"}, "video layer `null` is not `high` or `low`"),
        ({"type": "dance"}, "expected binary frames,"),
    ],
)
def test_a_bad_layer_message_closes_the_socket_with_its_reason(
    cluster, mint, meeting, message, reason
):
    async def scenario():
        conn = await raw(cluster["US"].relay_url, mint(regions=("US",), links=()))
        await conn.send(json.dumps(message))
        with pytest.raises(ConnectionClosed) as closed:
            await asyncio.wait_for(conn.recv(), WAIT)
        assert closed.value.rcvd is not None
        return closed.value.rcvd.code, closed.value.rcvd.reason

    code, got = run(scenario())
    assert code == 4400
    assert got.startswith(reason)
