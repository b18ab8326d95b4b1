"""The participant's keys: meeting keys unwrapped, rosters checked, received frames opened.

Every frame received is checked against the roster the control plane signed before it is
opened; a frame whose key or whose sender's roster entry has not arrived yet is held (bounded)
until it does, and what is dropped is counted (:attr:`FrameKeys.dropped`).
"""

from __future__ import annotations

import asyncio
from collections import deque
from dataclasses import dataclass
from typing import Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey

from ..errors import FrameDroppedError, InputError, RosterError, UnwrapError
from ..keys import (
    DropReason,
    FrameKind,
    KeyContext,
    SenderKeys,
    WrappedKey,
    from_b64url,
    parse_header,
    signing_public_bytes,
    unwrap_key,
    verify_roster,
)
from ..keys.media import FRAME_GRACE_SECONDS

__all__ = ["FrameKeys", "Received"]

#: frames of an epoch whose key has not arrived yet, or of a sender whose roster entry has not,
#: held for when it does (a sender's roster entry is held for FRAME_GRACE_SECONDS at most)
_EARLY_FRAMES = 256
#: the counters of :attr:`Participant.dropped`
_DROPPED = (DropReason.BAD_SIGNATURE, DropReason.UNKNOWN_SENDER, DropReason.OLD_EPOCH)
_END = object()  # queued when the relay connection ends


@dataclass(frozen=True, slots=True)
class Received:
    """One frame from another participant, opened."""

    kind: FrameKind
    sender: str
    epoch: int
    payload: bytes

    @property
    def text(self) -> str:
        """A chat frame's line (undecodable bytes shown as U+FFFD)."""
        return self.payload.decode("utf-8", "replace")


def _roster_key(text: object, pinned: Ed25519PublicKey | None) -> Ed25519PublicKey:
    """The key rosters are checked with: ``pinned`` if given (and ``admitted`` must agree)."""
    try:
        offered = Ed25519PublicKey.from_public_bytes(from_b64url(text, "`roster_key`"))
    except (InputError, ValueError) as exc:
        raise RosterError(
            f"the control plane's `admitted` has no valid `roster_key`: {exc}"
        ) from None
    if pinned is not None and signing_public_bytes(pinned) != signing_public_bytes(offered):
        raise RosterError(
            "the control plane's roster key is not the pinned one: refusing its rosters"
        )
    return pinned or offered


class FrameKeys:
    """One participant's keys and the frames it received: opened, held or counted.

    :class:`~meridian.client.Participant` is one; it feeds it what its sockets bring (frames,
    ``key`` messages, signed rosters) and reads the opened frames from its inbox.
    """

    def __init__(self, meeting: str, participant: str, keys: SenderKeys) -> None:
        self.meeting = meeting
        self.participant = participant
        self.keys = keys
        #: frames that did not open (wrong key, unknown epoch, malformed): counted, never raised
        self.undecryptable = 0
        self._dropped: dict[str, int] = dict.fromkeys(_DROPPED, 0)
        #: rosters refused (not signed by the control plane, or malformed); the last good one holds
        self.rosters_refused = 0
        self._control_key: Ed25519PublicKey | None = None
        self._roster_seq = -1
        #: the names of the signed roster (kept after someone leaves, for their last frames)
        self._signed_names: dict[str, str] = {}
        self._private: X25519PrivateKey | None = None
        self._inbox: asyncio.Queue[Received | object] = asyncio.Queue()
        self._early: deque[tuple[float, bytes]] = deque()

    @property
    def dropped(self) -> dict[str, int]:
        """Frames dropped, by reason: ``bad_signature`` (not signed by its sender's key in the
        roster: a forgery), ``unknown_sender`` (a sender the roster does not list, after the
        grace), ``old_epoch`` (an epoch superseded past the grace, or older than the previous)."""
        self._expire()
        return dict(self._dropped)

    def _open(self, frame: bytes, *, hold: bool = True) -> None:
        try:
            header, payload = self.keys.open(frame)
        except FrameDroppedError as exc:
            waits = exc.reason == DropReason.UNKNOWN_SENDER or (
                exc.reason == DropReason.UNDECRYPTABLE and self._is_early(frame)
            )
            if hold and waits:
                self._hold(frame)
            elif exc.reason == DropReason.UNDECRYPTABLE:
                self.undecryptable += 1
            else:
                self._dropped[exc.reason] += 1
            return
        except UnwrapError:
            self.undecryptable += 1
            return
        self._inbox.put_nowait(Received(header.kind, header.sender, header.epoch, payload))

    def _hold(self, frame: bytes) -> None:
        """Keep a frame whose key or sender's roster entry may be on its way (bounded)."""
        self._expire()
        if len(self._early) >= _EARLY_FRAMES:
            self._open(self._early.popleft()[1], hold=False)  # counted, as it stands now
        self._early.append((self.keys.clock(), frame))

    def _expire(self) -> None:
        """Count the held frames whose sender the roster did not name within the grace."""
        deadline = self.keys.clock() - FRAME_GRACE_SECONDS
        if not self._early or self._early[0][0] >= deadline:
            return
        held, self._early = list(self._early), deque()
        for at, frame in held:
            # a frame ahead of its key waits as long as it is ahead (bounded by _EARLY_FRAMES)
            if at >= deadline or self._is_early(frame):
                self._early.append((at, frame))
            else:
                self._open(frame, hold=False)

    def _retry(self) -> None:
        """Open what now opens of the held frames (a key or a roster arrived)."""
        held, self._early = list(self._early), deque()
        for _, frame in held:
            self._open(frame)

    def _is_early(self, frame: bytes) -> bool:
        """Whether ``frame`` is of an epoch newer than any held (its key may be on its way)."""
        try:
            epoch = parse_header(frame).epoch
        except InputError:
            return False
        latest = self.keys.latest
        return latest is not None and epoch > latest

    def _add_key(self, key: dict[str, Any]) -> None:
        """Unwrap a ``key`` message (admission or rotation) and hold its epoch."""
        if self._private is None:
            raise UnwrapError("no key pair to unwrap with: this participant did not join")
        try:
            region, epoch = str(key["region"]), int(key["epoch"])
            wrapped = WrappedKey.from_json(key["wrapped"])
        except (KeyError, TypeError, ValueError) as exc:
            raise InputError(f"malformed key message: missing or bad {exc}") from None
        context = KeyContext(self.meeting, self.participant, region, epoch)
        self.keys.add_epoch(epoch, unwrap_key(wrapped, self._private, context))
        # frames that came before their key: open what now opens, hold or count the rest
        self._retry()

    def _apply_roster(self, token: object) -> None:
        """Take a roster the control plane signed (:class:`RosterError` if it did not); one
        older than the roster held is ignored."""
        if self._control_key is None:
            raise RosterError("no control-plane roster key to check the roster with")
        roster = verify_roster(self._control_key, token, meeting=self.meeting)
        if roster.seq <= self._roster_seq:
            return
        self._roster_seq = roster.seq
        self._signed_names.update(roster.names())
        self.keys.senders.replace(roster.keys())
        self._retry()
