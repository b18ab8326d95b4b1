"""Key wrapping: how a key server hands one meeting key to one participant and no one else.

The key server wraps to the participant's X25519 public key (docs/data-plane.md §Keys): an
ephemeral key pair, ECDH, ``HKDF-SHA256(shared, salt=epk || recipient_public, info="meridian
key wrap v1")`` as an AES-256-GCM key, 12 random bytes of nonce, and the :class:`KeyContext`
(meeting, participant, region, epoch) as associated data. A wrapped key therefore opens only
with the recipient's private key *and* the exact context it was wrapped for.
"""

from __future__ import annotations

import base64
import binascii
import json
import os
import re
from dataclasses import dataclass

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey, X25519PublicKey
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from ..errors import InputError, UnwrapError, shown
from ._checks import KEY_BYTES, check_epoch, check_key, utf8

__all__ = [
    "NONCE_BYTES",
    "PUBLIC_KEY_BYTES",
    "WRAPPED_CT_BYTES",
    "KeyContext",
    "WrappedKey",
    "b64url",
    "check_public_key",
    "from_b64url",
    "public_bytes",
    "unwrap_key",
    "wrap_key",
]

#: a raw X25519 public key (the participant's, and the ephemeral ``epk``)
PUBLIC_KEY_BYTES = 32
#: an AES-GCM nonce
NONCE_BYTES = 12
#: a wrapped 32-byte key: the key itself and the 16-byte GCM tag
WRAPPED_CT_BYTES = KEY_BYTES + 16
_WRAP_INFO = b"meridian key wrap v1"
_B64URL = re.compile(r"[A-Za-z0-9_-]*")
_UNWRAP_FAILED = "wrapped key does not open: wrong recipient, context or bytes"


def b64url(data: bytes) -> str:
    """``data`` as unpadded base64url, the encoding of every key on the wire."""
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def from_b64url(text: object, what: str = "value") -> bytes:
    """The bytes of unpadded base64url ``text``; :class:`InputError` for anything else.

    Only the canonical spelling is accepted (no padding, no stray characters, no set trailing
    bits), so one byte string has one text form and ``b64url(from_b64url(t)) == t``.
    """
    if not isinstance(text, str):
        raise InputError(f"{what} must be a base64url string, not `{shown(text)}`")
    if _B64URL.fullmatch(text) is None:
        raise InputError(f"{what} `{shown(text)}` is not unpadded base64url")
    try:
        data = base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
    except (binascii.Error, ValueError) as exc:
        raise InputError(f"{what} `{shown(text)}` is not unpadded base64url") from exc
    # the decoder ignores trailing bits that do not make a byte; a canonical text has none set
    if b64url(data) != text:
        raise InputError(f"{what} `{shown(text)}` is not canonical unpadded base64url")
    return data


def public_bytes(private_key: X25519PrivateKey) -> bytes:
    """The raw 32-byte public key of ``private_key``: what a participant sends to be wrapped to."""
    return private_key.public_key().public_bytes_raw()


def check_public_key(public_key: object) -> bytes:
    """``public_key`` if it is 32 raw bytes (a possible X25519 key); :class:`InputError` otherwise."""
    if not isinstance(public_key, bytes) or len(public_key) != PUBLIC_KEY_BYTES:
        size = len(public_key) if isinstance(public_key, bytes) else type(public_key).__name__
        raise InputError(f"public key must be {PUBLIC_KEY_BYTES} bytes of X25519, not `{size}`")
    return public_key


@dataclass(frozen=True, slots=True)
class KeyContext:
    """What a wrapped key is for: bound into it as associated data, checked when it is opened.

    Built by the key server from a verified grant and by the participant from what it asked
    for; if any field differs, the wrapped key does not open.
    """

    meeting: str
    participant: str
    region: str
    epoch: int

    def __post_init__(self) -> None:
        # refuse here, not in aad(): a context that cannot be encoded must never be built
        utf8(self.meeting, "meeting id")
        utf8(self.participant, "participant id")
        utf8(self.region, "region")
        check_epoch(self.epoch)

    def aad(self) -> bytes:
        """The canonical JSON of the context: sorted keys, no spaces, utf-8.

        Non-ASCII is written as itself rather than ``\\u`` escapes, as ``JSON.stringify`` does,
        so a participant in any language can rebuild the same bytes (once it sorts the keys).
        """
        fields = {
            "epoch": self.epoch,
            "meeting": self.meeting,
            "participant": self.participant,
            "region": self.region,
        }
        text = json.dumps(fields, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
        return text.encode("utf-8")


@dataclass(frozen=True, slots=True)
class WrappedKey:
    """A meeting key wrapped to one participant: ephemeral public key, nonce and ciphertext."""

    epk: bytes
    nonce: bytes
    ct: bytes

    def __post_init__(self) -> None:
        # INVARIANT: every WrappedKey has the lengths of the wire contract, so unwrap_key and
        # to_json never meet a short or long field, however it was built
        for name, size in (
            ("epk", PUBLIC_KEY_BYTES),
            ("nonce", NONCE_BYTES),
            ("ct", WRAPPED_CT_BYTES),
        ):
            value = getattr(self, name)
            if not isinstance(value, bytes):
                raise InputError(
                    f"wrapped key `{name}` must be bytes, not `{type(value).__name__}`"
                )
            if len(value) != size:
                raise InputError(f"wrapped key `{name}` must be {size} bytes, not {len(value)}")

    def to_json(self) -> dict[str, str]:
        """The wire form: ``{"epk", "nonce", "ct"}``, each unpadded base64url."""
        return {"epk": b64url(self.epk), "nonce": b64url(self.nonce), "ct": b64url(self.ct)}

    @classmethod
    def from_json(cls, data: object) -> WrappedKey:
        """A wrapped key read from its wire form; :class:`InputError` if it is malformed in any way."""
        fields = ("epk", "nonce", "ct")
        if not isinstance(data, dict):
            raise InputError(
                f"wrapped key must be an object with `epk`, `nonce` and `ct`, not `{shown(data)}`"
            )
        for name in fields:
            if name not in data:
                raise InputError(f"wrapped key is missing `{name}`")
        extra = sorted(str(name) for name in data if name not in fields)
        if extra:
            raise InputError(f"wrapped key has unknown field `{shown(extra[0])}`")
        raw = {name: from_b64url(data[name], f"wrapped key `{name}`") for name in fields}
        return cls(epk=raw["epk"], nonce=raw["nonce"], ct=raw["ct"])


def _wrapping_key(shared: bytes, epk: bytes, recipient_public: bytes) -> bytes:
    # Both public keys go into the salt: X25519 ignores the top bit of a u-coordinate and
    # accepts non-canonical ones, so several `epk` spellings give one shared secret; hashing
    # the exact bytes makes every other spelling derive a different key, and never opens
    hkdf = HKDF(
        algorithm=hashes.SHA256(),
        length=KEY_BYTES,
        salt=epk + recipient_public,
        info=_WRAP_INFO,
    )
    return hkdf.derive(shared)


def wrap_key(key: bytes, recipient_public: bytes, context: KeyContext) -> WrappedKey:
    """Wrap the 32-byte ``key`` so that only the holder of ``recipient_public``'s private key
    can open it, and only for ``context``. Called by a key server for each key grant.

    :class:`InputError` if the key or public key has the wrong length, or the public key is a
    low-order point (every shared secret would be zero, so anyone could open the result).
    """
    check_key(key, "key to wrap")
    peer = X25519PublicKey.from_public_bytes(check_public_key(recipient_public))
    ephemeral = X25519PrivateKey.generate()
    try:
        shared = ephemeral.exchange(peer)
    except ValueError as exc:  # OpenSSL refuses an all-zero shared secret
        raise InputError(
            f"public key `{b64url(recipient_public)}` is a low-order X25519 point: it cannot receive a key"
        ) from exc
    epk = public_bytes(ephemeral)
    nonce = os.urandom(NONCE_BYTES)
    ct = AESGCM(_wrapping_key(shared, epk, recipient_public)).encrypt(nonce, key, context.aad())
    return WrappedKey(epk=epk, nonce=nonce, ct=ct)


def unwrap_key(
    wrapped: WrappedKey, recipient_private: X25519PrivateKey, context: KeyContext
) -> bytes:
    """The key inside ``wrapped``, opened with ``recipient_private`` for ``context``.

    Called by a participant on the ``key`` it is given at admission and at each rotation.
    :class:`UnwrapError` whatever the cause (another recipient, another context, a changed
    byte, a low-order ``epk``): the reasons are not told apart, so a failure teaches nothing.
    """
    try:
        shared = recipient_private.exchange(X25519PublicKey.from_public_bytes(wrapped.epk))
        aead = AESGCM(_wrapping_key(shared, wrapped.epk, public_bytes(recipient_private)))
        return aead.decrypt(wrapped.nonce, wrapped.ct, context.aad())
    except (InvalidTag, ValueError) as exc:
        raise UnwrapError(_UNWRAP_FAILED) from exc
