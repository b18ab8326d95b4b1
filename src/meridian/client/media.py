"""Media chunks as the meeting page seals them, and a synthetic stream for tests and benches.

The meeting page (static/js/media.js) puts each encoded chunk (VP8 video, Opus audio) in a
sealed frame, behind a 24-byte header of its own (docs/data-plane.md §Media), big-endian::

    version (1) = 1 | type (1) | flags (1) | layer (1) | sequence (4)
                    | capture time (8, float64 ms since the Unix epoch) | codec timestamp (8, µs)

The frame's kind says who gets it: :attr:`FrameKind.MEDIA` (audio, keyframe requests, state)
goes to everyone, :attr:`FrameKind.VIDEO_HIGH` and :attr:`FrameKind.VIDEO_LOW` only to the
receivers that asked their relay for that quality.

:func:`send_stream` sends what a page sends — video at two qualities and audio, at their rates —
but its chunks carry a test pattern, flagged :data:`SYNTHETIC`, instead of VP8 and Opus (no
encoder is needed): a page counts them and decodes nothing. :class:`MediaTally` counts what a
participant receives, real or synthetic, and the glass-to-glass latency of each chunk (the
capture time travels sealed; on one machine the clocks agree).
"""

from __future__ import annotations

import asyncio
import math
import struct
import time
from dataclasses import dataclass, field
from enum import IntEnum
from typing import TYPE_CHECKING, Any

from ..errors import InputError, shown
from ..keys import FrameKind

if TYPE_CHECKING:
    from .keys import Received
    from .participant import Participant

__all__ = [
    "CHUNK_VERSION",
    "KEYFRAME",
    "SYNTHETIC",
    "ChunkType",
    "MediaChunk",
    "MediaTally",
    "send_stream",
    "test_pattern",
]

CHUNK_VERSION = 1
#: flag bits of a chunk
KEYFRAME = 0b01
SYNTHETIC = 0b10
_HEADER = struct.Struct(">BBBBIdd")
#: (frame kind, layer index, payload bytes) of each video quality the synthetic stream sends:
#: about 1.2 and 0.3 Mbit/s at 30 fps, the page's two qualities
_LAYERS = ((FrameKind.VIDEO_HIGH, 0, 5000), (FrameKind.VIDEO_LOW, 1, 1200))
_AUDIO_BYTES = 80  # an Opus chunk of 20 ms at 32 kbit/s
_AUDIO_EVERY = 0.02


class ChunkType(IntEnum):
    """What a media chunk carries."""

    AUDIO = 1
    VIDEO = 2
    #: a keyframe request; its data is the sender asked (utf-8), empty for everyone
    REQUEST = 3
    #: a sender's microphone (bit 0: on) and camera (bit 1: on)
    STATE = 4


@dataclass(frozen=True, slots=True)
class MediaChunk:
    """One media chunk: the plaintext of a sealed media frame."""

    type: ChunkType
    seq: int
    capture_ms: float
    timestamp_us: float
    data: bytes
    key: bool = False
    layer: int = 0
    synthetic: bool = False

    def to_bytes(self) -> bytes:
        flags = (KEYFRAME if self.key else 0) | (SYNTHETIC if self.synthetic else 0)
        head = _HEADER.pack(
            CHUNK_VERSION,
            int(self.type),
            flags,
            self.layer,
            self.seq & 0xFFFFFFFF,
            self.capture_ms,
            self.timestamp_us,
        )
        return head + self.data

    @classmethod
    def parse(cls, payload: bytes) -> MediaChunk:
        """The chunk in an opened media frame's payload; :class:`InputError` if malformed."""
        if len(payload) < _HEADER.size:
            raise InputError(f"media chunk is {len(payload)} bytes: its header is {_HEADER.size}")
        version, kind, flags, layer, seq, capture, stamp = _HEADER.unpack_from(payload)
        if version != CHUNK_VERSION:
            raise InputError(f"media chunk version `{version}` is not {CHUNK_VERSION}")
        try:
            chunk_type = ChunkType(kind)
        except ValueError:
            raise InputError(f"media chunk type `{shown(kind)}` is not 1 to 4") from None
        # a signed sender may still seal any float; a time that is not one is malformed
        for what, value in (("capture time", capture), ("timestamp", stamp)):
            if not math.isfinite(value):
                raise InputError(f"media chunk {what} `{value}` is not a finite number")
        return cls(
            type=chunk_type,
            seq=seq,
            capture_ms=capture,
            timestamp_us=stamp,
            data=payload[_HEADER.size :],
            key=bool(flags & KEYFRAME),
            layer=layer,
            synthetic=bool(flags & SYNTHETIC),
        )


def test_pattern(size: int, n: int) -> bytes:
    """``size`` bytes of frame ``n`` of the test pattern: bars that move one step per frame."""
    row = bytes((i * 7 + n) & 0xFF for i in range(256))
    return (row * (size // 256 + 1))[:size]


@dataclass
class MediaTally:
    """What one participant received of the others' media, by type; a chunk that does not
    parse is counted as ``malformed``."""

    frames: dict[str, int] = field(default_factory=dict)
    bytes: int = 0
    synthetic: int = 0
    malformed: int = 0
    keyframes: int = 0
    #: glass-to-glass milliseconds of each video chunk (receipt minus capture)
    latencies: list[float] = field(default_factory=list)

    def add(self, received: Received) -> MediaChunk | None:
        """Count ``received`` if it is media; the chunk it carries (``None`` for chat)."""
        if received.kind == FrameKind.CHAT:
            return None
        self.bytes += len(received.payload)
        try:
            chunk = MediaChunk.parse(received.payload)
        except InputError:
            self.malformed += 1
            return None
        name = chunk.type.name.lower()
        self.frames[name] = self.frames.get(name, 0) + 1
        self.synthetic += chunk.synthetic
        self.keyframes += chunk.key
        if chunk.type == ChunkType.VIDEO:
            self.latencies.append(time.time() * 1000 - chunk.capture_ms)
            del self.latencies[:-1000]  # bounded: the latest 1000
        return chunk

    def to_dict(self) -> dict[str, Any]:
        ordered = sorted(self.latencies)
        p50 = ordered[len(ordered) // 2] if ordered else None
        return {
            "frames": dict(sorted(self.frames.items())),
            "bytes": self.bytes,
            "synthetic": self.synthetic,
            "keyframes": self.keyframes,
            "malformed": self.malformed,
            "latency_ms_p50": None if p50 is None else round(p50, 1),
        }


async def send_stream(
    p: Participant, seconds: float, *, fps: float = 30.0, keyframe_every: float = 4.0
) -> dict[str, int]:
    """Send ``seconds`` of a synthetic call from ``p``: video at both qualities at ``fps`` and
    audio every 20 ms, each chunk sealed and signed by ``p`` as the page seals its own.

    Returns what was sent: ``{"video", "audio", "bytes"}``.
    """
    if not 0 < fps <= 120:
        raise InputError(f"frame rate `{shown(fps)}` is not between 0 and 120")
    if not 0 < seconds <= 24 * 3600:
        raise InputError(f"stream length `{shown(seconds)}` s is not between 0 and 86400")
    loop = asyncio.get_running_loop()
    start = loop.time()
    sent = {"video": 0, "audio": 0, "bytes": 0}
    seq = {"audio": 0, "video": 0}
    next_video = next_audio = start
    last_key = -keyframe_every

    async def ship(kind: FrameKind, chunk: MediaChunk) -> None:
        frame = p.keys.seal(sender=p.participant, kind=kind, payload=chunk.to_bytes())
        await p.send_frame(frame)
        sent["bytes"] += len(frame)

    while (now := loop.time()) - start < seconds:
        if now >= next_video:
            n = seq["video"]
            key = now - last_key >= keyframe_every
            if key:
                last_key = now
            capture = time.time() * 1000
            for kind, layer, size in _LAYERS:
                data = test_pattern(size if not key else size * 3, n)
                chunk = MediaChunk(
                    ChunkType.VIDEO, n, capture, n * 1e6 / fps, data, key, layer, synthetic=True
                )
                await ship(kind, chunk)
            seq["video"] += 1
            sent["video"] += 1
            next_video += 1 / fps
        if now >= next_audio:
            n = seq["audio"]
            chunk = MediaChunk(
                ChunkType.AUDIO,
                n,
                time.time() * 1000,
                n * _AUDIO_EVERY * 1e6,
                test_pattern(_AUDIO_BYTES, n),
                synthetic=True,
            )
            await ship(FrameKind.MEDIA, chunk)
            seq["audio"] += 1
            sent["audio"] += 1
            next_audio += _AUDIO_EVERY
        await asyncio.sleep(max(0.0, min(next_video, next_audio) - loop.time()))
    return sent
