"""Meeting keys, sender keys and sealed frames: what participants encrypt chat and media with.

The key ladder (docs/data-plane.md §Keys)::

    master (per key server) ──HKDF "meridian meeting key v1|m|e"──▶ meeting key of epoch e
    meeting key ──HKDF "meridian sender key v1|m|s|e"──▶ sender key of s

and the frame a sender seals with its sender key (§Frames)::

    b"MF1" | kind (1) | epoch (4, big-endian) | len(sender) (1) | sender | nonce (12) | ct+tag

The associated data is the header (everything before the nonce) followed by the meeting id, so
a frame opens only in its meeting, under its epoch, as from its sender. Relays carry frames
without opening them; :func:`parse_header` is all that can be read without a key.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from enum import IntEnum

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from ..errors import InputError, UnwrapError, shown
from ._checks import KEY_BYTES, check_epoch, check_key, utf8

__all__ = [
    "FRAME_MAGIC",
    "MAX_SENDER_BYTES",
    "FrameHeader",
    "FrameKind",
    "SenderKeys",
    "meeting_key_from_master",
    "open_frame",
    "parse_header",
    "seal_frame",
    "sender_key",
]

FRAME_MAGIC = b"MF1"
#: a sender id's length is one byte of the header
MAX_SENDER_BYTES = 255
_NONCE_BYTES = 12
_TAG_BYTES = 16
# magic, kind, epoch, len(sender): the header before the sender id
_FIXED = len(FRAME_MAGIC) + 1 + 4 + 1


def _hkdf(key: bytes, info: str) -> bytes:
    hkdf = HKDF(algorithm=hashes.SHA256(), length=KEY_BYTES, salt=None, info=info.encode())
    return hkdf.derive(key)


def meeting_key_from_master(master: bytes, meeting: str, epoch: int) -> bytes:
    """The meeting key of ``epoch``, derived from a key server's master key.

    Nothing per meeting is stored, and HKDF is one-way, so knowing one epoch's key tells
    nothing of the next one: rotating the epoch when someone leaves locks them out.
    """
    check_key(master, "master key")
    utf8(meeting, "meeting id")
    # INVARIANT: the epoch is a decimal integer after the last "|", so a meeting id containing
    # "|" still gives a label no other (meeting, epoch) pair gives
    return _hkdf(master, f"meridian meeting key v1|{meeting}|{check_epoch(epoch)}")


def sender_key(meeting_key: bytes, meeting: str, sender: str, epoch: int) -> bytes:
    """The key ``sender`` seals its frames of ``epoch`` with, derived from the meeting key.

    Per-sender keys give each sender its own space of random nonces. They do not authenticate
    the sender: every holder of the meeting key can derive every sender's key.
    """
    check_key(meeting_key, "meeting key")
    utf8(meeting, "meeting id")
    _sender_bytes(sender)
    return _hkdf(meeting_key, f"meridian sender key v1|{meeting}|{sender}|{check_epoch(epoch)}")


class FrameKind(IntEnum):
    """What a frame carries: its ``kind`` byte."""

    CHAT = 1
    MEDIA = 2


@dataclass(frozen=True, slots=True)
class FrameHeader:
    """The cleartext part of a sealed frame: enough to pick the key that opens it."""

    kind: FrameKind
    epoch: int
    sender: str


def _sender_bytes(sender: object) -> bytes:
    raw = utf8(sender, "sender id")
    if len(raw) > MAX_SENDER_BYTES:
        raise InputError(
            f"sender id `{shown(sender)}` is {len(raw)} utf-8 bytes: at most {MAX_SENDER_BYTES} fit a frame"
        )
    return raw


def _parse(frame: object) -> tuple[FrameHeader, int]:
    """The header of ``frame`` and where it ends (where the nonce starts)."""
    if not isinstance(frame, bytes):
        raise InputError(f"sealed frame must be bytes, not `{type(frame).__name__}`")
    if not frame.startswith(FRAME_MAGIC):
        raise InputError(f"sealed frame `{shown(frame[:8].hex())}` does not start with `MF1`")
    if len(frame) < _FIXED:
        raise InputError(f"sealed frame is truncated: {len(frame)} bytes")
    kind_byte = frame[3]
    try:
        kind = FrameKind(kind_byte)
    except ValueError as exc:
        raise InputError(f"sealed frame has unknown kind `{kind_byte}`: expected 1 or 2") from exc
    epoch = int.from_bytes(frame[4:8], "big")
    end = _FIXED + frame[8]
    if len(frame) < end + _NONCE_BYTES + _TAG_BYTES:
        raise InputError(f"sealed frame is truncated: {len(frame)} bytes")
    try:
        sender = frame[_FIXED:end].decode("utf-8")
    except UnicodeDecodeError as exc:
        raise InputError("sealed frame has a sender id that is not utf-8") from exc
    if not sender:
        raise InputError("sealed frame has an empty sender id")
    return FrameHeader(kind=kind, epoch=epoch, sender=sender), end


def parse_header(frame: bytes) -> FrameHeader:
    """The kind, epoch and sender of a sealed frame, read without any key.

    What a receiver uses to pick the sender key; :class:`InputError` if ``frame`` is not a
    well-formed sealed frame (it says nothing of whether the frame opens).
    """
    return _parse(frame)[0]


def seal_frame(
    key: bytes, *, meeting: str, sender: str, epoch: int, kind: FrameKind, payload: bytes
) -> bytes:
    """``payload`` sealed with ``sender``'s ``key`` as one frame of ``meeting`` and ``epoch``."""
    check_key(key, "sender key")
    meeting_bytes = utf8(meeting, "meeting id")
    sender_raw = _sender_bytes(sender)
    try:
        kind_byte = FrameKind(kind)
    except ValueError as exc:
        raise InputError(f"frame kind `{shown(kind)}` is not 1 (chat) or 2 (media)") from exc
    header = (
        FRAME_MAGIC
        + bytes([kind_byte])
        + check_epoch(epoch).to_bytes(4, "big")
        + bytes([len(sender_raw)])
        + sender_raw
    )
    # Random 96-bit nonces are safe for 2**32 frames per key (NIST SP 800-38D); a key is one
    # sender's for one epoch, and epochs rotate, so no key comes near that
    nonce = os.urandom(_NONCE_BYTES)
    return header + nonce + AESGCM(key).encrypt(nonce, payload, header + meeting_bytes)


def open_frame(key: bytes, *, meeting: str, frame: bytes) -> tuple[FrameHeader, bytes]:
    """The header and payload of ``frame``, opened with the sender key of its header.

    :class:`UnwrapError` for any frame that does not open: malformed, changed, of another
    meeting, or sealed under another key or epoch.
    """
    check_key(key, "sender key")
    meeting_bytes = utf8(meeting, "meeting id")
    try:
        header, end = _parse(frame)
    except InputError as exc:
        raise UnwrapError(f"sealed frame does not open: {exc.message}") from exc
    nonce = frame[end : end + _NONCE_BYTES]
    try:
        payload = AESGCM(key).decrypt(
            nonce, frame[end + _NONCE_BYTES :], frame[:end] + meeting_bytes
        )
    except InvalidTag as exc:
        raise UnwrapError(
            "sealed frame does not open: wrong sender key, meeting, epoch or bytes"
        ) from exc
    return header, payload


class SenderKeys:
    """One participant's frame keys for one meeting: the meeting keys of recent epochs and the
    sender keys derived from them.

    A participant adds each meeting key it unwraps. It keeps the :attr:`KEEP_EPOCHS` newest
    epochs, because frames sealed just before a rotation are still in flight after it.
    """

    #: how many epochs are kept for frames in flight
    KEEP_EPOCHS = 4
    #: derived sender keys kept at most; any participant can name any sender, so it is bounded
    MAX_CACHED = 4096

    __slots__ = ("_meeting_keys", "_sender_keys", "meeting")

    def __init__(self, meeting: str) -> None:
        utf8(meeting, "meeting id")
        self.meeting = meeting
        self._meeting_keys: dict[int, bytes] = {}
        self._sender_keys: dict[tuple[int, str], bytes] = {}

    def __repr__(self) -> str:
        return f"SenderKeys(meeting={self.meeting!r}, epochs={list(self.epochs)!r})"

    @property
    def epochs(self) -> tuple[int, ...]:
        """The epochs held, oldest first."""
        return tuple(sorted(self._meeting_keys))

    @property
    def latest(self) -> int | None:
        """The newest epoch held (the one :meth:`seal` uses by default), if any."""
        return max(self._meeting_keys, default=None)

    def add_epoch(self, epoch: int, meeting_key: bytes) -> None:
        """Hold ``meeting_key`` for ``epoch``, dropping all but the newest epochs.

        Adding an epoch again replaces its key and forgets the sender keys derived from it.
        """
        check_epoch(epoch)
        check_key(meeting_key, "meeting key")
        self._meeting_keys[epoch] = meeting_key
        kept = set(sorted(self._meeting_keys)[-self.KEEP_EPOCHS :])
        self._meeting_keys = {e: k for e, k in self._meeting_keys.items() if e in kept}
        self._sender_keys = {
            (e, s): k for (e, s), k in self._sender_keys.items() if e in kept and e != epoch
        }

    def _derive(self, epoch: int, sender: str) -> bytes | None:
        cached = self._sender_keys.get((epoch, sender))
        if cached is not None:
            return cached
        meeting_key = self._meeting_keys.get(epoch)
        if meeting_key is None:
            return None
        return sender_key(meeting_key, self.meeting, sender, epoch)

    def _remember(self, epoch: int, sender: str, key: bytes) -> None:
        if (epoch, sender) not in self._sender_keys and len(self._sender_keys) >= self.MAX_CACHED:
            del self._sender_keys[next(iter(self._sender_keys))]  # the oldest entry
        self._sender_keys[(epoch, sender)] = key

    def seal(
        self, *, sender: str, kind: FrameKind, payload: bytes, epoch: int | None = None
    ) -> bytes:
        """``payload`` sealed as from ``sender`` under ``epoch`` (by default the newest held).

        :class:`InputError` if no meeting key is held for that epoch.
        """
        chosen = self.latest if epoch is None else epoch
        key = None if chosen is None else self._derive(chosen, sender)
        if chosen is None or key is None:
            raise InputError(
                f"no meeting key for epoch `{shown(chosen)}` of meeting `{shown(self.meeting)}`"
            )
        frame = seal_frame(
            key, meeting=self.meeting, sender=sender, epoch=chosen, kind=kind, payload=payload
        )
        self._remember(chosen, sender, key)
        return frame

    def open(self, frame: bytes) -> tuple[FrameHeader, bytes]:
        """The header and payload of ``frame``; :class:`UnwrapError` if it does not open here.

        A sender key is cached only once a frame has opened with it, so frames that do not
        open cost a derivation but no memory.
        """
        try:
            header = parse_header(frame)
        except InputError as exc:
            raise UnwrapError(f"sealed frame does not open: {exc.message}") from exc
        key = self._derive(header.epoch, header.sender)
        if key is None:
            raise UnwrapError(
                f"sealed frame does not open: no meeting key for epoch `{header.epoch}` "
                f"(held: `{', '.join(map(str, self.epochs)) or 'none'}`)"
            )
        opened = open_frame(key, meeting=self.meeting, frame=frame)
        self._remember(header.epoch, header.sender, key)
        return opened
