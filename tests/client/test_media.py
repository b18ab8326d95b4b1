"""``meridian.client.media``: what a participant makes of the media chunks others send it."""

from __future__ import annotations

import json
import time

import pytest

from meridian.client.keys import Received
from meridian.client.media import ChunkType, MediaChunk, MediaTally
from meridian.errors import InputError
from meridian.keys import FrameKind


def _received(chunk: MediaChunk, kind: FrameKind = FrameKind.VIDEO_HIGH) -> Received:
    return Received(kind=kind, sender="p_other", epoch=1, payload=chunk.to_bytes())


def test_a_chunk_reads_back_as_it_was_made() -> None:
    chunk = MediaChunk(ChunkType.VIDEO, 7, 1_700_000_000_000.5, 33_333.0, b"vp8", key=True)
    again = MediaChunk.parse(chunk.to_bytes())
    assert (again.type, again.seq, again.capture_ms, again.timestamp_us, again.data) == (
        ChunkType.VIDEO,
        7,
        1_700_000_000_000.5,
        33_333.0,
        b"vp8",
    )
    assert again.key


@pytest.mark.parametrize(
    ("capture", "stamp", "shown"),
    [
        (float("nan"), 0.0, "capture time `nan`"),
        (float("inf"), 0.0, "capture time `inf`"),
        (1e12, float("-inf"), "timestamp `-inf`"),
        (1e12, float("nan"), "timestamp `nan`"),
    ],
)
def test_a_chunk_with_an_impossible_time_is_malformed(
    capture: float, stamp: float, shown: str
) -> None:
    # a signed sender can seal any float: NaN or infinity would have gone into the latencies
    # and out as `NaN` / `-Infinity` in the `--json` lines, which are then not JSON
    chunk = MediaChunk(ChunkType.VIDEO, 0, capture, stamp, b"x")
    with pytest.raises(InputError, match=f"media chunk {shown}"):
        MediaChunk.parse(chunk.to_bytes())
    tally = MediaTally()
    tally.add(_received(MediaChunk(ChunkType.VIDEO, 1, time.time() * 1000, 0.0, b"x")))
    assert tally.add(_received(chunk)) is None
    assert tally.malformed == 1
    assert tally.frames == {"video": 1}
    json.dumps(tally.to_dict(), allow_nan=False)  # strict JSON: raises on NaN or infinity
