"""Checks shared by key wrapping and frame sealing: epochs, identifiers and key lengths.

Each check raises :class:`InputError` with the offending value shown, so a malformed request
or frame is refused with the same words wherever it is caught.
"""

from __future__ import annotations

from ..errors import InputError, shown

__all__ = ["KEY_BYTES", "MAX_EPOCH", "check_epoch", "check_key", "utf8"]

#: every symmetric key here (master, meeting, sender, wrapping) is 32 bytes: AES-256 and HKDF-SHA256
KEY_BYTES = 32
#: a frame carries its epoch in 4 bytes, so no key anywhere may belong to a later one
MAX_EPOCH = 2**32 - 1


def check_epoch(epoch: object) -> int:
    """``epoch`` if it is an integer in ``0 .. 2**32 - 1``; :class:`InputError` otherwise."""
    # bool is an int, and `f"{True}"` would put "True" into an HKDF label
    if isinstance(epoch, bool) or not isinstance(epoch, int) or not 0 <= epoch <= MAX_EPOCH:
        raise InputError(f"epoch `{shown(epoch)}` is not an integer from 0 to {MAX_EPOCH}")
    return epoch


def utf8(text: object, what: str) -> bytes:
    """``text`` as utf-8, refusing a non-string, an empty string or a lone surrogate."""
    if not isinstance(text, str) or not text:
        raise InputError(f"{what} `{shown(text)}` must be a non-empty string")
    try:
        return text.encode("utf-8")
    except UnicodeEncodeError as exc:
        raise InputError(f"{what} `{shown(text)}` is not valid unicode") from exc


def check_key(key: object, what: str) -> bytes:
    """``key`` if it is exactly :data:`KEY_BYTES` bytes; :class:`InputError` otherwise."""
    if not isinstance(key, bytes) or len(key) != KEY_BYTES:
        size = len(key) if isinstance(key, bytes) else type(key).__name__
        raise InputError(f"{what} must be {KEY_BYTES} bytes, not `{size}`")
    return key
