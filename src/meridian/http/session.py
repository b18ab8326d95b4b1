"""Signed-in sessions for the pages: the API token, sealed in a cookie, and its CSRF token.

Signing in means pasting an API token (the one ``meridian serve --demo`` prints, or one from
``meridian admin create-token``). The token is sealed with AES-256-GCM under the session key
(``MERIDIAN_SESSION_KEY``) into an ``HttpOnly``, ``SameSite=Strict`` cookie, with the instant it
was issued and a random session id; every page request opens it, checks that the session is
still open (:mod:`meridian.identity.sessions`: a database row, so signing out ends the session
on every replica) and authenticates the token exactly as the API does. So a page sees what the
API would show that token and nothing more, and a revoked token or a sign-out ends a session at
once.

The CSRF token is an HMAC of the cookie under a key derived from the session key: a form or an
script request that changes anything must carry it (``csrf`` field or ``X-CSRF-Token`` header).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import os
import struct
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

if TYPE_CHECKING:
    from starlette.requests import HTTPConnection

__all__ = ["COOKIE", "SESSION_SECONDS", "Session", "SessionSeal", "secure_cookies"]

#: the cookie's name; the ``__Host-`` prefix is only honoured over HTTPS, so it is not used
COOKIE = "meridian_session"
#: a session lasts a working day; signing in again starts a new one
SESSION_SECONDS = 12 * 3600
_VERSION = b"s2"
_NONCE = 12
_SID = 16  # bytes of session id


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def _unb64(text: str) -> bytes | None:
    try:
        return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
    except (ValueError, TypeError):
        return None


@dataclass(frozen=True, slots=True)
class Session:
    """One opened session cookie."""

    token: str
    issued: float
    cookie: str
    #: the session's id (32 hex digits), whose database row says whether it is still open
    sid: str = ""


class SessionSeal:
    """Seals API tokens into cookie values and opens them again."""

    def __init__(self, key: bytes) -> None:
        if len(key) != 32:
            raise ValueError("the session key must be 32 bytes")
        self._aead = AESGCM(hashlib.sha256(b"meridian session cookie v1" + key).digest())
        self._csrf = hashlib.sha256(b"meridian csrf v1" + key).digest()

    def seal(self, token: str, *, sid: str, now: float | None = None) -> str:
        """A cookie value sealing ``token`` and the session id ``sid`` (32 hex digits)."""
        issued = time.time() if now is None else now
        nonce = os.urandom(_NONCE)
        body = struct.pack(">d", issued) + bytes.fromhex(sid) + token.encode("utf-8")
        return _b64(_VERSION + nonce + self._aead.encrypt(nonce, body, _VERSION))

    def open(self, cookie: str | None, *, now: float | None = None) -> Session | None:
        """The session in ``cookie``; ``None`` if it is missing, altered, foreign or expired."""
        if not cookie or len(cookie) > 4096:
            return None
        raw = _unb64(cookie)
        if raw is None or not raw.startswith(_VERSION) or len(raw) < 2 + _NONCE + 16 + 8 + _SID:
            return None
        nonce, sealed = raw[2 : 2 + _NONCE], raw[2 + _NONCE :]
        try:
            body = self._aead.decrypt(nonce, sealed, _VERSION)
        except InvalidTag:
            return None
        (issued,) = struct.unpack(">d", body[:8])
        current = time.time() if now is None else now
        if not issued <= current + 60 or current - issued > SESSION_SECONDS:
            return None
        try:
            token = body[8 + _SID :].decode("utf-8")
        except UnicodeDecodeError:
            return None
        return Session(token=token, issued=issued, cookie=cookie, sid=body[8 : 8 + _SID].hex())

    def csrf(self, cookie: str) -> str:
        """The CSRF token that goes with the session in ``cookie``."""
        return _b64(hmac.new(self._csrf, cookie.encode("ascii"), hashlib.sha256).digest())

    def check_csrf(self, cookie: str, offered: str | None) -> bool:
        return offered is not None and hmac.compare_digest(self.csrf(cookie), offered)


def secure_cookies(request: HTTPConnection) -> bool:
    """Whether cookies set on ``request`` get ``Secure``: it came over HTTPS, directly or via a
    trusted TLS proxy's ``X-Forwarded-Proto`` (``MERIDIAN_TRUSTED_PROXIES``)."""
    # imported here: the API's package imports this module (its WebSocket reads the cookie)
    from .network import forwarded_https

    peer = request.client.host if request.client else None
    return forwarded_https(
        request.url.scheme,
        peer,
        request.headers.get("x-forwarded-proto"),
        request.app.state.trusted_proxies,
    )
