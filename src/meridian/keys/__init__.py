"""Keys: meeting keys, their wrapping to participants, sealed frames and the key server.

Implements docs/data-plane.md §Keys and §Frames. Importing this package reads no key and
writes nothing: a store is opened with :meth:`MasterKeyStore.open`, by whoever needs one.
"""

from __future__ import annotations

from .media import (
    FrameHeader,
    FrameKind,
    SenderKeys,
    meeting_key_from_master,
    open_frame,
    parse_header,
    seal_frame,
    sender_key,
)
from .server import IssuedKey, KeyServer
from .store import MasterKeyStore
from .wrap import (
    KeyContext,
    WrappedKey,
    b64url,
    from_b64url,
    public_bytes,
    unwrap_key,
    wrap_key,
)

__all__ = [
    "FrameHeader",
    "FrameKind",
    "IssuedKey",
    "KeyContext",
    "KeyServer",
    "MasterKeyStore",
    "SenderKeys",
    "WrappedKey",
    "b64url",
    "from_b64url",
    "meeting_key_from_master",
    "open_frame",
    "parse_header",
    "public_bytes",
    "seal_frame",
    "sender_key",
    "unwrap_key",
    "wrap_key",
]
