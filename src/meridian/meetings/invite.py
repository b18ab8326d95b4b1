"""A meeting's join secret: made at random, stored only as its SHA-256, compared in constant time."""

from __future__ import annotations

import hashlib
import hmac
import secrets
from urllib.parse import quote

__all__ = ["hash_invite", "invite_matches", "join_link", "new_invite"]


def new_invite() -> tuple[str, str]:
    """A fresh join secret (192 random bits) and the hash to store of it."""
    secret = secrets.token_urlsafe(24)
    return secret, hash_invite(secret)


def hash_invite(secret: str) -> str:
    return hashlib.sha256(secret.encode("utf-8", "surrogatepass")).hexdigest()


def invite_matches(stored: str | None, offered: str | None) -> bool:
    """Whether ``offered`` is the secret whose hash is ``stored`` (no hash: nothing matches)."""
    if stored is None or offered is None:
        return False
    return hmac.compare_digest(hash_invite(offered), stored)


def join_link(base_url: str, meeting_id: str, invite: str) -> str:
    """The link a host shares: the meeting page, with the invite in the fragment (a browser never
    sends a fragment to a server, so it stays out of every access log)."""
    return f"{base_url.rstrip('/')}/meet/{quote(meeting_id, safe='')}#k={invite}"
