"""Keys: meeting keys, their wrapping to participants, sealed frames and the key server.

Implements docs/data-plane.md §Keys, §Frames and §Roster. Importing this package reads no key and
writes nothing: a store is opened with :meth:`MasterKeyStore.open`, by whoever needs one.
"""

from __future__ import annotations

from ..errors import FrameDroppedError, RosterError
from .media import (
    DropReason,
    FrameHeader,
    FrameKind,
    SenderKeys,
    SenderRoster,
    meeting_key_from_master,
    open_frame,
    parse_header,
    seal_frame,
    sender_key,
    signing_public_bytes,
    verify_frame,
)
from .roster import RosterMember, SignedRoster, sign_roster, verify_roster
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
    "DropReason",
    "FrameDroppedError",
    "FrameHeader",
    "FrameKind",
    "IssuedKey",
    "KeyContext",
    "KeyServer",
    "MasterKeyStore",
    "RosterError",
    "RosterMember",
    "SenderKeys",
    "SenderRoster",
    "SignedRoster",
    "WrappedKey",
    "b64url",
    "from_b64url",
    "meeting_key_from_master",
    "open_frame",
    "parse_header",
    "public_bytes",
    "seal_frame",
    "sender_key",
    "sign_roster",
    "signing_public_bytes",
    "unwrap_key",
    "verify_frame",
    "verify_roster",
    "wrap_key",
]
