"""Grants: short-lived Ed25519-signed JWTs by which the control plane admits to a region node.

A region node holds the control plane's public key and nothing else of it; a grant says which
meeting, participant, region, allowed set and links it covers (docs/data-plane.md). Signing and
checking are PyJWT's (``alg: EdDSA``); this module only fixes the claims and the refusals.

Five kinds (``typ``), each checked for by name, so one kind is never taken for another:
``relay`` admits a participant to one relay socket (once: its ``jti`` is single-use), ``key``
lets a key server wrap one key, ``drop`` orders a relay to disconnect participants of a meeting
(or, with ``end``, the whole meeting) and refuse them from then on, ``link`` lets one node open
a cascade to another for one meeting (only nodes ever hold it: the control plane hands it to
them over HTTP), and ``admin`` is the control plane's (or an operator's scraper's) credential
for a node's counters.
"""

from __future__ import annotations

import base64
import secrets
import time
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

import jwt
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from ..errors import ConfigurationError, FenceError, GrantError, shown
from ..keyfiles import load_or_create_ed25519

if TYPE_CHECKING:
    from ..keys.roster import RosterMember

__all__ = [
    "ANY_REGION",
    "GRANT_SECONDS",
    "Grant",
    "GrantKind",
    "GrantSigner",
    "GrantVerifier",
    "load_or_create_signing_key",
    "public_key_b64",
    "public_key_from_b64",
]

#: how long a grant is good for after it is issued
GRANT_SECONDS = 60
_ALG = "EdDSA"
_ISSUER = "meridian-control"
#: the ``dc`` of an admin credential good at every node
ANY_REGION = "*"

GrantKind = Literal["relay", "key", "drop", "link", "admin"]


@dataclass(frozen=True, slots=True)
class Grant:
    """The claims of one grant, checked."""

    typ: GrantKind
    meeting: str
    participant: str
    dc: str
    regions: tuple[str, ...]
    key_region: str
    links: tuple[tuple[str, str], ...] = ()
    ip: str | None = None
    epoch: int = 0
    #: ``drop`` only: the participants to disconnect, and why (what they are told)
    drop: tuple[str, ...] = ()
    reason: str = ""
    expires: int = 0
    #: ``drop`` only: the whole meeting ended (every socket and link of it closes)
    end: bool = False
    #: ``drop`` only: the close code the relay closes with (4451 removed, 1000 left, 4410 ended)
    code: int = 0
    #: ``key`` only: the control plane's session of the meeting (a fresh salt per session)
    session: str = ""
    #: ``link`` only: the two regions the link joins, sorted
    pair: tuple[str, ...] = ()
    issued: int = 0
    #: a unique id: a relay grant opens one socket once, and a renewal is used once
    jti: str = ""

    @property
    def lifetime(self) -> int:
        """Seconds from issue to expiry (how long the node must remember what it refuses)."""
        return max(self.expires - self.issued, 0)

    def claims(self, now: int, seconds: int = GRANT_SECONDS) -> dict[str, Any]:
        out: dict[str, Any] = {
            "iss": _ISSUER,
            "typ": self.typ,
            "mtg": self.meeting,
            "sub": self.participant,
            "dc": self.dc,
            "regions": sorted(self.regions),
            "key_region": self.key_region,
            "iat": now,
            "exp": now + seconds,
            "jti": self.jti or secrets.token_urlsafe(12),
        }
        if self.typ == "relay":
            out["links"] = [sorted(pair) for pair in self.links]
            out["ip"] = self.ip
        elif self.typ == "key":
            out["epoch"] = self.epoch
            out["ses"] = self.session
        elif self.typ == "link":
            out["pair"] = sorted(self.pair)
        elif self.typ == "drop":
            out["drop"] = sorted(self.drop)
            out["reason"] = self.reason
            if self.end:
                out["end"] = True
            if self.code:
                out["code"] = self.code
        return out


class GrantSigner:
    """The control plane's side: mints grants with its Ed25519 private key."""

    def __init__(self, key: Ed25519PrivateKey, *, seconds: int = GRANT_SECONDS) -> None:
        if seconds < 2:
            raise ConfigurationError(f"grant lifetime `{seconds}` s is too short: at least 2 s")
        self._key = key
        #: how long the grants it signs last
        self.seconds = seconds

    @property
    def public_key(self) -> Ed25519PublicKey:
        return self._key.public_key()

    def sign(self, grant: Grant, *, now: float | None = None, seconds: int | None = None) -> str:
        issued = int(time.time() if now is None else now)
        claims = grant.claims(issued, self.seconds if seconds is None else seconds)
        return jwt.encode(claims, self._key, algorithm=_ALG)

    def admin(self, region: str = ANY_REGION, *, seconds: int | None = None) -> str:
        """A credential for the counters of the node of ``region`` (``*``: every node)."""
        grant = Grant(
            typ="admin",
            meeting="",
            participant="control-plane",
            dc=region,
            regions=(),
            key_region="",
        )
        return self.sign(grant, seconds=seconds)

    def sign_roster(
        self, *, meeting: str, epoch: int, seq: int, members: Iterable[RosterMember]
    ) -> str:
        """A meeting's roster (:mod:`meridian.keys.roster`), signed with the grant key: its
        ``typ`` is ``roster``, so no node takes it for a grant."""
        # imported here: meridian.keys imports this module (its key server checks grants)
        from ..keys.roster import sign_roster

        return sign_roster(self._key, meeting=meeting, epoch=epoch, seq=seq, members=members)


class GrantVerifier:
    """A region node's side: checks a grant against the control plane's public key."""

    def __init__(self, public_key: Ed25519PublicKey, region: str) -> None:
        self._key = public_key
        self.region = region

    def verify(self, token: object, *, typ: GrantKind, for_region: str | None = None) -> Grant:
        """The grant's claims, or :class:`GrantError` / :class:`FenceError` with the reason.

        ``for_region`` is the region the grant must be addressed to (``dc``); by default this
        node's own. Whatever it is, this node's own region must be in the allowed set.
        """
        if not isinstance(token, str) or not token:
            raise GrantError('missing grant: send `{"grant": "<token>"}` first')
        try:
            claims = jwt.decode(
                token,
                self._key,
                algorithms=[_ALG],
                issuer=_ISSUER,
                options={"require": ["exp", "iat", "iss", "typ", "mtg", "sub", "dc", "regions"]},
            )
        except jwt.ExpiredSignatureError as exc:
            raise GrantError("expired grant: ask the control plane for a new one") from exc
        except jwt.PyJWTError as exc:
            raise GrantError(f"invalid grant: {str(exc).lower().rstrip('.')}") from exc
        try:
            drop = claims.get("drop", [])
            pair = claims.get("pair", [])
            if not isinstance(drop, list) or not isinstance(pair, list):
                raise TypeError("`drop` or `pair` is not a list")
            grant = Grant(
                typ=claims["typ"],
                meeting=str(claims["mtg"]),
                participant=str(claims["sub"]),
                dc=str(claims["dc"]),
                regions=tuple(str(r) for r in claims["regions"]),
                key_region=str(claims.get("key_region", "")),
                links=tuple((str(a), str(b)) for a, b in claims.get("links", ())),
                ip=claims.get("ip"),
                epoch=int(claims.get("epoch", 0)),
                drop=tuple(str(p) for p in drop),
                reason=str(claims.get("reason", "")),
                expires=int(claims["exp"]),
                end=claims.get("end", False) is True,
                code=int(claims.get("code", 0)),
                session=str(claims.get("ses", "")),
                pair=tuple(sorted(str(r) for r in pair)),
                issued=int(claims["iat"]),
                jti=str(claims.get("jti", "")),
            )
        except (TypeError, ValueError) as exc:
            raise GrantError("invalid grant: malformed claims") from exc
        if grant.typ != typ:
            raise GrantError(f"wrong grant: a `{shown(grant.typ)}` grant where `{typ}` is needed")
        target = self.region if for_region is None else for_region
        if grant.dc != target and not (typ == "admin" and grant.dc == ANY_REGION):
            raise GrantError(f"grant for region `{shown(grant.dc)}` presented to region `{target}`")
        if typ == "admin":
            return grant  # no meeting, so no fence: it reads counters, never frames or keys
        if self.region not in grant.regions:
            raise FenceError(
                f"region `{self.region}` refuses meeting `{shown(grant.meeting)}`: its allowed "
                f"regions `{', '.join(grant.regions)}` do not include `{self.region}`"
            )
        return grant


def public_key_b64(key: Ed25519PublicKey) -> str:
    """The raw 32-byte public key as unpadded base64url (how nodes are told the key)."""
    raw = key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


def public_key_from_b64(text: str) -> Ed25519PublicKey:
    try:
        raw = base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
        return Ed25519PublicKey.from_public_bytes(raw)
    except ValueError as exc:
        raise ConfigurationError(
            f"control-plane public key `{shown(text)}` is not a base64url Ed25519 key"
        ) from exc


def load_or_create_signing_key(path: Path, *, create: bool) -> Ed25519PrivateKey:
    """The control plane's grant-signing key from ``path`` (PEM, PKCS#8, mode 0600).

    With ``create`` (development mode) a missing key is generated; otherwise a missing key is a
    :class:`ConfigurationError`: production never invents one.
    """
    return load_or_create_ed25519(
        path, create=create, what="grant signing key", setting="MERIDIAN_GRANT_KEY"
    )
