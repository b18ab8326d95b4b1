"""Per-meeting counters of a region node, and the Prometheus collector that shows them.

The relay bumps plain integer attributes on its hot path: no lock, no library call per frame.
That is safe because every bump happens on the node's one event-loop thread; the collector reads
the same integers when ``/metrics`` is scraped (on that thread too), so a scrape is a consistent
snapshot.

Keys wrapped are counted by the key server itself (``KeyServer.keys_issued``, one dict per
meeting); the counters read that mapping rather than keeping a second count of the same thing.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any

from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric

__all__ = ["MeetingCounters", "MeetingStats", "NodeCollector", "NodeCounters"]


class MeetingCounters:
    """One meeting's traffic through this relay (participant and cascade traffic both)."""

    __slots__ = (
        "bytes_in",
        "bytes_out",
        "frames_in",
        "frames_out",
        "media_bytes_in",
        "media_bytes_out",
        "media_frames_in",
        "media_frames_out",
        "participants",
    )

    def __init__(self) -> None:
        self.bytes_in = 0
        self.bytes_out = 0
        self.frames_in = 0
        self.frames_out = 0
        #: the part of the above that is media (audio and video frames, any kind but chat), read
        #: from the frame's cleartext kind byte: the relay still opens nothing
        self.media_bytes_in = 0
        self.media_bytes_out = 0
        self.media_frames_in = 0
        self.media_frames_out = 0
        self.participants = 0


@dataclass(frozen=True, slots=True)
class MeetingStats:
    """A snapshot of one meeting's counters, as ``GET /v1/stats/{meeting}`` returns it."""

    region: str
    meeting: str
    bytes_in: int = 0
    bytes_out: int = 0
    frames_in: int = 0
    frames_out: int = 0
    media_bytes_in: int = 0
    media_bytes_out: int = 0
    media_frames_in: int = 0
    media_frames_out: int = 0
    keys: int = 0
    participants: int = 0

    def to_dict(self) -> dict[str, Any]:
        return {
            "region": self.region,
            "meeting": self.meeting,
            "bytes_in": self.bytes_in,
            "bytes_out": self.bytes_out,
            "frames_in": self.frames_in,
            "frames_out": self.frames_out,
            "media_bytes_in": self.media_bytes_in,
            "media_bytes_out": self.media_bytes_out,
            "media_frames_in": self.media_frames_in,
            "media_frames_out": self.media_frames_out,
            "keys": self.keys,
            "participants": self.participants,
        }


class NodeCounters:
    """Every meeting's counters on one node; a meeting's counters live as long as the process."""

    def __init__(self, region: str, keys_wrapped: Mapping[str, int] | None = None) -> None:
        self.region = region
        self._meetings: dict[str, MeetingCounters] = {}
        self._keys: Mapping[str, int] = {} if keys_wrapped is None else keys_wrapped

    def meeting(self, meeting: str) -> MeetingCounters:
        """The counters of ``meeting``, created at zero the first time it is seen."""
        counters = self._meetings.get(meeting)
        if counters is None:
            counters = self._meetings[meeting] = MeetingCounters()
        return counters

    def meetings(self) -> list[str]:
        """Every meeting this node has carried or keyed, sorted."""
        return sorted(set(self._meetings) | set(self._keys))

    def stats(self, meeting: str) -> MeetingStats:
        """A snapshot of ``meeting``'s counters; zeros for a meeting never seen."""
        keys = self._keys.get(meeting, 0)
        c = self._meetings.get(meeting)
        if c is None:
            return MeetingStats(self.region, meeting, keys=keys)
        return MeetingStats(
            self.region,
            meeting,
            bytes_in=c.bytes_in,
            bytes_out=c.bytes_out,
            frames_in=c.frames_in,
            frames_out=c.frames_out,
            media_bytes_in=c.media_bytes_in,
            media_bytes_out=c.media_bytes_out,
            media_frames_in=c.media_frames_in,
            media_frames_out=c.media_frames_out,
            keys=keys,
            participants=c.participants,
        )


class NodeCollector:
    """Renders :class:`NodeCounters` as Prometheus metrics when ``/metrics`` is scraped."""

    def __init__(self, counters: NodeCounters) -> None:
        self._counters = counters

    def collect(self) -> Iterator[Metric]:
        traffic = CounterMetricFamily(
            "meridian_relay_bytes_total",
            "Bytes relayed, per meeting, into this relay and out of it.",
            labels=["meeting", "direction"],
        )
        frames = CounterMetricFamily(
            "meridian_relay_frames_total",
            "Frames relayed, per meeting, into this relay and out of it.",
            labels=["meeting", "direction"],
        )
        media = CounterMetricFamily(
            "meridian_relay_media_bytes_total",
            "Bytes of media frames (audio and video) relayed, per meeting, in and out.",
            labels=["meeting", "direction"],
        )
        keys = CounterMetricFamily(
            "meridian_keys_wrapped_total",
            "Meeting keys this node's key server wrapped, per meeting.",
            labels=["meeting"],
        )
        participants = GaugeMetricFamily(
            "meridian_relay_participants",
            "Participants connected to this relay, per meeting.",
            labels=["meeting"],
        )
        for meeting in self._counters.meetings():
            s = self._counters.stats(meeting)
            traffic.add_metric([meeting, "in"], s.bytes_in)
            traffic.add_metric([meeting, "out"], s.bytes_out)
            frames.add_metric([meeting, "in"], s.frames_in)
            frames.add_metric([meeting, "out"], s.frames_out)
            media.add_metric([meeting, "in"], s.media_bytes_in)
            media.add_metric([meeting, "out"], s.media_bytes_out)
            keys.add_metric([meeting], s.keys)
            participants.add_metric([meeting], s.participants)
        yield traffic
        yield frames
        yield media
        yield keys
        yield participants
