"""Meeting keys, sender keys and signed, sealed frames: what participants encrypt chat and media with.

The key ladder (docs/data-plane.md §Keys)::

    master (per key server) ──HKDF "meridian meeting key v1|m|e"──▶ meeting key of epoch e
    meeting key ──HKDF "meridian sender key v1|m|s|e"──▶ sender key of s

and the frame a sender seals with its sender key and signs with its own signing key (§Frames)::

    b"MF2" | kind (1) | epoch (4, big-endian) | len(sender) (1) | sender | nonce (12) | ct+tag
           | Ed25519 signature (64) over everything before it || meeting

The associated data is the header (everything before the nonce) followed by the meeting id, so
a frame opens only in its meeting, under its epoch, as from its sender. The group key does not
say who sealed a frame (every holder can derive every sender key): the signature does, checked
against the sender's signing key in the roster the control plane signs
(:mod:`meridian.keys.roster`). Relays carry frames without opening or checking them;
:func:`parse_header` is all that can be read without a key.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from enum import IntEnum, StrEnum

from cryptography.exceptions import InvalidSignature, InvalidTag
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from ..errors import FrameDroppedError, InputError, UnwrapError, shown
from ._checks import KEY_BYTES, check_epoch, check_key, utf8

__all__ = [
    "FRAME_GRACE_SECONDS",
    "FRAME_MAGIC",
    "MAX_SENDER_BYTES",
    "SIGNATURE_BYTES",
    "DropReason",
    "FrameHeader",
    "FrameKind",
    "SenderKeys",
    "SenderRoster",
    "check_signing_key",
    "meeting_key_from_master",
    "open_frame",
    "parse_header",
    "seal_frame",
    "sender_key",
    "signing_public_bytes",
    "verify_frame",
]

FRAME_MAGIC = b"MF2"
#: a sender id's length is one byte of the header
MAX_SENDER_BYTES = 255
#: an Ed25519 signature ends every frame
SIGNATURE_BYTES = 64
#: how long frames of a superseded epoch, and of a sender the roster no longer lists, are still
#: accepted after the newer key or roster arrived: frames sealed just before are in flight
FRAME_GRACE_SECONDS = 2.0
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
    """What a frame carries: its ``kind`` byte, the one thing of it a relay acts on.

    Every kind but :attr:`CHAT` is media (the relays count its bytes apart). A sender sends its
    video twice, at two qualities; a relay forwards each receiver the one it asked for
    (docs/data-plane.md §Media), and everything else to everyone.
    """

    CHAT = 1
    #: media every receiver gets: audio, keyframe requests, a sender's mute/camera state
    MEDIA = 2
    #: video, the higher quality (what a receiver gets unless it asks for the lower)
    VIDEO_HIGH = 3
    #: video, the lower quality
    VIDEO_LOW = 4

    @property
    def is_media(self) -> bool:
        """Whether frames of this kind are media (counted apart by the relays)."""
        return self is not FrameKind.CHAT


class DropReason(StrEnum):
    """Why a receiver dropped a frame: the names of its counters."""

    #: signed by another key than its sender's in the roster (a forgery), or not signed
    BAD_SIGNATURE = "bad_signature"
    #: its sender is not in the signed roster (nor was, within the grace)
    UNKNOWN_SENDER = "unknown_sender"
    #: of an epoch older than the previous one, or of the previous one past the grace
    OLD_EPOCH = "old_epoch"
    #: malformed, or it does not open: wrong key, meeting or bytes, or no key for its epoch
    UNDECRYPTABLE = "undecryptable"


@dataclass(frozen=True, slots=True)
class FrameHeader:
    """The cleartext part of a sealed frame: enough to pick the keys that check and open it."""

    kind: FrameKind
    epoch: int
    sender: str


def signing_public_bytes(key: Ed25519PrivateKey | Ed25519PublicKey) -> bytes:
    """The raw 32 bytes of a signing key's public half (as the ``join`` message sends it)."""
    public = key.public_key() if isinstance(key, Ed25519PrivateKey) else key
    return public.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)


def check_signing_key(raw: object) -> bytes:
    """``raw`` if it is an Ed25519 public key (32 bytes); :class:`InputError` otherwise."""
    if not isinstance(raw, bytes) or len(raw) != 32:
        size = len(raw) if isinstance(raw, bytes) else type(raw).__name__
        raise InputError(f"signing key must be 32 bytes of Ed25519, not `{size}`")
    try:
        Ed25519PublicKey.from_public_bytes(raw)
    except ValueError as exc:
        raise InputError("signing key is not an Ed25519 public key") from exc
    return raw


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
        raise InputError(f"sealed frame `{shown(frame[:8].hex())}` does not start with `MF2`")
    if len(frame) < _FIXED:
        raise InputError(f"sealed frame is truncated: {len(frame)} bytes")
    kind_byte = frame[3]
    try:
        kind = FrameKind(kind_byte)
    except ValueError as exc:
        raise InputError(f"sealed frame has unknown kind `{kind_byte}`: expected 1 to 4") from exc
    epoch = int.from_bytes(frame[4:8], "big")
    end = _FIXED + frame[8]
    if len(frame) < end + _NONCE_BYTES + _TAG_BYTES + SIGNATURE_BYTES:
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

    What a receiver uses to pick the sender's keys; :class:`InputError` if ``frame`` is not a
    well-formed sealed frame (it says nothing of whether the frame is genuine or opens).
    """
    return _parse(frame)[0]


def seal_frame(
    key: bytes,
    *,
    meeting: str,
    sender: str,
    epoch: int,
    kind: FrameKind,
    payload: bytes,
    signing_key: Ed25519PrivateKey,
) -> bytes:
    """``payload`` sealed with ``sender``'s ``key`` as one frame of ``meeting`` and ``epoch``,
    signed with ``signing_key`` (the sender's own, whose public half the roster lists)."""
    check_key(key, "sender key")
    if not isinstance(signing_key, Ed25519PrivateKey):
        raise InputError(
            f"signing key must be an Ed25519 private key, not `{type(signing_key).__name__}`"
        )
    meeting_bytes = utf8(meeting, "meeting id")
    sender_raw = _sender_bytes(sender)
    try:
        kind_byte = FrameKind(kind)
    except ValueError as exc:
        raise InputError(
            f"frame kind `{shown(kind)}` is not 1 (chat), 2 (media), 3 or 4 (video)"
        ) from exc
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
    sealed = header + nonce + AESGCM(key).encrypt(nonce, payload, header + meeting_bytes)
    # encrypt-then-sign: a receiver checks the sender before it decrypts anything, and the
    # signature covers the meeting, so a frame cannot be replayed into another meeting
    return sealed + signing_key.sign(sealed + meeting_bytes)


def verify_frame(public_key: Ed25519PublicKey, *, meeting: str, frame: bytes) -> FrameHeader:
    """The header of ``frame`` if ``public_key`` signed it for ``meeting``.

    :class:`FrameDroppedError` (``bad_signature``) if it did not; ``undecryptable`` if malformed.
    """
    meeting_bytes = utf8(meeting, "meeting id")
    try:
        header, _ = _parse(frame)
    except InputError as exc:
        raise FrameDroppedError(
            f"sealed frame does not open: {exc.message}", DropReason.UNDECRYPTABLE
        ) from exc
    try:
        public_key.verify(frame[-SIGNATURE_BYTES:], frame[:-SIGNATURE_BYTES] + meeting_bytes)
    except InvalidSignature as exc:
        raise FrameDroppedError(
            f"sealed frame is not signed by its sender `{shown(header.sender)}`",
            DropReason.BAD_SIGNATURE,
        ) from exc
    return header


def open_frame(key: bytes, *, meeting: str, frame: bytes) -> tuple[FrameHeader, bytes]:
    """The header and payload of ``frame``, opened with the sender key of its header.

    This decrypts only: who signed the frame is :func:`verify_frame`'s question, which
    :meth:`SenderKeys.open` asks first. :class:`UnwrapError` for any frame that does not open:
    malformed, changed, of another meeting, or sealed under another key or epoch.
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
            nonce, frame[end + _NONCE_BYTES : -SIGNATURE_BYTES], frame[:end] + meeting_bytes
        )
    except InvalidTag as exc:
        raise UnwrapError(
            "sealed frame does not open: wrong sender key, meeting, epoch or bytes"
        ) from exc
    return header, payload


class SenderRoster:
    """Whom frames may come from: each participant's signing public key, as the roster the
    control plane signs lists them.

    A participant the roster no longer lists (it left, or was removed) is still known for
    :data:`FRAME_GRACE_SECONDS`, for its frames in flight; after that its frames are from an
    unknown sender. Participants of one process may share one roster (hand-made meetings).
    """

    __slots__ = ("_clock", "_former", "_keys")

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self._clock = clock
        self._keys: dict[str, Ed25519PublicKey] = {}
        self._former: dict[str, tuple[Ed25519PublicKey, float]] = {}

    def __repr__(self) -> str:
        return f"SenderRoster(senders={sorted(self._keys)!r})"

    def __contains__(self, participant: object) -> bool:
        return participant in self._keys

    @property
    def senders(self) -> tuple[str, ...]:
        """The participants listed now, sorted."""
        return tuple(sorted(self._keys))

    def trust(self, participant: str, public_key: Ed25519PublicKey) -> None:
        """Add one sender (a hand-made roster; a signed one is applied with :meth:`replace`)."""
        self._keys[participant] = public_key
        self._former.pop(participant, None)

    def replace(self, members: Mapping[str, Ed25519PublicKey]) -> None:
        """Take ``members`` as the whole roster; those no longer in it keep the grace."""
        now = self._clock()
        until = now + FRAME_GRACE_SECONDS
        for participant, key in self._keys.items():
            if participant not in members:
                self._former[participant] = (key, until)
        self._keys = dict(members)
        self._former = {
            p: (k, u) for p, (k, u) in self._former.items() if u > now and p not in self._keys
        }

    def key_of(self, participant: str) -> Ed25519PublicKey | None:
        """The signing key ``participant``'s frames are checked with, if it may send now."""
        key = self._keys.get(participant)
        if key is not None:
            return key
        former = self._former.get(participant)
        if former is not None and former[1] > self._clock():
            return former[0]
        return None


class SenderKeys:
    """One participant's frame keys for one meeting: its own signing key, the meeting keys of
    the current and the previous epoch, the sender keys derived from them, and the roster of
    the others' signing keys.

    A participant adds each meeting key it unwraps. Frames of the previous epoch are accepted
    for :data:`FRAME_GRACE_SECONDS` after the newer key was added (frames sealed just before a
    rotation are in flight); after that, and for any older epoch, they are dropped.
    """

    #: how many epochs are held: the current one and, for its grace, the previous one
    KEEP_EPOCHS = 2
    #: derived sender keys kept at most; any participant can name any sender, so it is bounded
    MAX_CACHED = 4096

    __slots__ = (
        "_meeting_keys",
        "_sender_keys",
        "_signing_key",
        "_superseded",
        "clock",
        "meeting",
        "senders",
    )

    def __init__(
        self,
        meeting: str,
        *,
        signing_key: Ed25519PrivateKey | None = None,
        senders: SenderRoster | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        utf8(meeting, "meeting id")
        self.meeting = meeting
        #: the time frames' epochs are judged by (seconds, monotone)
        self.clock = clock
        self._signing_key = signing_key or Ed25519PrivateKey.generate()
        #: whose frames are accepted, with which signing key
        self.senders = senders if senders is not None else SenderRoster(clock)
        self._meeting_keys: dict[int, bytes] = {}
        self._superseded: dict[int, float] = {}
        self._sender_keys: dict[tuple[int, str], bytes] = {}

    def __repr__(self) -> str:
        return f"SenderKeys(meeting={self.meeting!r}, epochs={list(self.epochs)!r})"

    @property
    def verifying_key(self) -> Ed25519PublicKey:
        """The public half of this participant's signing key: what the roster lists for it."""
        return self._signing_key.public_key()

    @property
    def epochs(self) -> tuple[int, ...]:
        """The epochs held, oldest first."""
        return tuple(sorted(self._meeting_keys))

    @property
    def latest(self) -> int | None:
        """The newest epoch held (the one :meth:`seal` uses by default), if any."""
        return max(self._meeting_keys, default=None)

    def add_epoch(self, epoch: int, meeting_key: bytes) -> None:
        """Hold ``meeting_key`` for ``epoch``; the epoch it supersedes starts its grace now.

        Only the newest two epochs are held. Adding an epoch again replaces its key and forgets
        the sender keys derived from it.
        """
        check_epoch(epoch)
        check_key(meeting_key, "meeting key")
        now = self.clock()
        self._meeting_keys[epoch] = meeting_key
        newest = max(self._meeting_keys)
        for e in self._meeting_keys:
            if e != newest:
                self._superseded.setdefault(e, now)
        kept = set(sorted(self._meeting_keys)[-self.KEEP_EPOCHS :])
        self._meeting_keys = {e: k for e, k in self._meeting_keys.items() if e in kept}
        self._superseded = {e: t for e, t in self._superseded.items() if e in kept}
        self._sender_keys = {
            (e, s): k for (e, s), k in self._sender_keys.items() if e in kept and e != epoch
        }

    def current(self, epoch: int) -> bool:
        """Whether frames of ``epoch`` are accepted now: the newest held, the previous within
        its grace, or one newer than any held (its key may be on its way)."""
        latest = self.latest
        if latest is None or epoch >= latest:
            return True
        superseded = self._superseded.get(epoch)
        if epoch not in self._meeting_keys or superseded is None:
            return False
        return self.clock() - superseded <= FRAME_GRACE_SECONDS

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
        """``payload`` sealed as from ``sender`` under ``epoch`` (by default the newest held),
        signed with this participant's signing key.

        :class:`InputError` if no meeting key is held for that epoch.
        """
        chosen = self.latest if epoch is None else epoch
        key = None if chosen is None else self._derive(chosen, sender)
        if chosen is None or key is None:
            raise InputError(
                f"no meeting key for epoch `{shown(chosen)}` of meeting `{shown(self.meeting)}`"
            )
        frame = seal_frame(
            key,
            meeting=self.meeting,
            sender=sender,
            epoch=chosen,
            kind=kind,
            payload=payload,
            signing_key=self._signing_key,
        )
        self._remember(chosen, sender, key)
        return frame

    def open(self, frame: bytes) -> tuple[FrameHeader, bytes]:
        """The header and payload of ``frame``, checked in this order: its epoch is current, its
        sender is in the roster, the sender's signing key signed it, and it opens.

        :class:`FrameDroppedError` with the reason otherwise. A sender key is cached only once a
        frame has opened with it, so frames that do not open cost a derivation but no memory.
        """
        try:
            header = parse_header(frame)
        except InputError as exc:
            raise FrameDroppedError(
                f"sealed frame does not open: {exc.message}", DropReason.UNDECRYPTABLE
            ) from exc
        if not self.current(header.epoch):
            raise FrameDroppedError(
                f"sealed frame of epoch `{header.epoch}` is superseded (held: "
                f"`{', '.join(map(str, self.epochs))}`)",
                DropReason.OLD_EPOCH,
            )
        public = self.senders.key_of(header.sender)
        if public is None:
            raise FrameDroppedError(
                f"sealed frame from `{shown(header.sender)}`, who is not in the roster",
                DropReason.UNKNOWN_SENDER,
            )
        verify_frame(public, meeting=self.meeting, frame=frame)
        key = self._derive(header.epoch, header.sender)
        if key is None:
            raise FrameDroppedError(
                f"sealed frame does not open: no meeting key for epoch `{header.epoch}` "
                f"(held: `{', '.join(map(str, self.epochs)) or 'none'}`)",
                DropReason.UNDECRYPTABLE,
            )
        try:
            opened = open_frame(key, meeting=self.meeting, frame=frame)
        except UnwrapError as exc:
            raise FrameDroppedError(exc.message, DropReason.UNDECRYPTABLE) from exc
        self._remember(header.epoch, header.sender, key)
        return opened
