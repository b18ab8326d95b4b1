"""The signed roster: who is in a meeting, and the signing key each one's frames must carry.

The control plane registers each participant's Ed25519 signing public key at admission and
hands out the meeting's roster as a JWT (``alg: EdDSA``) signed with its grant key, whose public
half participants get in ``admitted`` as ``roster_key`` (docs/data-plane.md §Roster). Claims::

    {"iss": "meridian-control", "typ": "roster", "mtg": "mtg_…", "epoch": 3, "seq": 7,
     "iat": 1764650000,
     "members": [{"participant": "p_…", "name": "alice", "signing_key": "<b64url, 32 bytes>"}]}

``seq`` grows with each roster of a meeting: a receiver never goes back to an older one. A
roster that is not signed by the control plane's key, is of another meeting or kind, or is
malformed is refused with :class:`RosterError`, and the receiver keeps the roster it had.
"""

from __future__ import annotations

import base64
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

import jwt
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from ..errors import RosterError, shown
from .media import signing_public_bytes

__all__ = ["RosterMember", "SignedRoster", "sign_roster", "verify_roster"]

_ALG = "EdDSA"
_ISSUER = "meridian-control"
#: the most members a roster may list (far above any plan's participant limit): bounded work
MAX_MEMBERS = 4096


@dataclass(frozen=True, slots=True)
class RosterMember:
    """One participant as the roster lists it."""

    participant: str
    name: str
    signing_key: Ed25519PublicKey

    def to_claim(self) -> dict[str, str]:
        raw = signing_public_bytes(self.signing_key)
        return {
            "participant": self.participant,
            "name": self.name,
            "signing_key": base64.urlsafe_b64encode(raw).rstrip(b"=").decode(),
        }


@dataclass(frozen=True, slots=True)
class SignedRoster:
    """A roster as checked: its meeting, epoch, sequence number and members."""

    meeting: str
    epoch: int
    seq: int
    members: tuple[RosterMember, ...]

    def keys(self) -> dict[str, Ed25519PublicKey]:
        """Participant id → signing key: what :class:`~meridian.keys.SenderRoster` takes."""
        return {m.participant: m.signing_key for m in self.members}

    def names(self) -> dict[str, str]:
        return {m.participant: m.name for m in self.members}


def sign_roster(
    key: Ed25519PrivateKey,
    *,
    meeting: str,
    epoch: int,
    seq: int,
    members: Iterable[RosterMember],
    now: float | None = None,
) -> str:
    """The roster of ``meeting`` as a JWT signed with the control plane's ``key``."""
    claims = {
        "iss": _ISSUER,
        "typ": "roster",
        "mtg": meeting,
        "epoch": epoch,
        "seq": seq,
        "iat": int(time.time() if now is None else now),
        "members": [m.to_claim() for m in members],
    }
    return jwt.encode(claims, key, algorithm=_ALG)


def _member(entry: object) -> RosterMember:
    if not isinstance(entry, Mapping):
        raise TypeError("a member is not an object")
    participant, name, text = entry["participant"], entry["name"], entry["signing_key"]
    if not all(isinstance(v, str) for v in (participant, name, text)) or not participant:
        raise TypeError("a member's fields are not strings")
    raw = base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
    return RosterMember(participant, name, Ed25519PublicKey.from_public_bytes(raw))


def verify_roster(public_key: Ed25519PublicKey, token: object, *, meeting: str) -> SignedRoster:
    """The roster in ``token`` if the control plane's ``public_key`` signed it for ``meeting``.

    :class:`RosterError` with the reason otherwise.
    """
    if not isinstance(token, str) or not token:
        raise RosterError("missing roster: the control plane sends `signed_roster`")
    try:
        claims = jwt.decode(
            token,
            public_key,
            algorithms=[_ALG],
            issuer=_ISSUER,
            options={"require": ["iss", "typ", "mtg", "epoch", "seq", "members"]},
        )
    except jwt.PyJWTError as exc:
        raise RosterError(
            f"roster refused: not signed by the control plane ({str(exc).lower().rstrip('.')})"
        ) from exc
    if claims.get("typ") != "roster":
        raise RosterError(f"roster refused: a `{shown(claims.get('typ'))}` token, not a roster")
    if claims.get("mtg") != meeting:
        raise RosterError(
            f"roster refused: it is for meeting `{shown(claims.get('mtg'))}`, not `{shown(meeting)}`"
        )
    try:
        members = claims["members"]
        if not isinstance(members, list) or len(members) > MAX_MEMBERS:
            raise TypeError("`members` is not a list of at most 4096")
        epoch, seq = claims["epoch"], claims["seq"]
        if not isinstance(epoch, int) or not isinstance(seq, int):
            raise TypeError("`epoch` and `seq` are not integers")
        return SignedRoster(meeting, epoch, seq, tuple(_member(m) for m in members))
    except (KeyError, TypeError, ValueError) as exc:
        raise RosterError(f"roster refused: malformed ({exc})") from exc
