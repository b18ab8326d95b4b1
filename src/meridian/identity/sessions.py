"""Signed-in page sessions, kept in the database so that signing out ends them everywhere.

The sealed cookie (:mod:`meridian.http.session`) carries a random session id beside the API
token; the ``web_sessions`` row of that id (stored as its SHA-256) says whether the session is
still open. Every page request reads the row, on whichever replica it lands, with no cache: a
signed-out cookie replayed anywhere is no session from the next request on. Instants here are
the wall clock's, as the cookie's are (not the service's "now", which a demo may fix in 2020).
"""

from __future__ import annotations

import hashlib
import secrets
from collections.abc import Callable
from datetime import datetime, timedelta

from sqlalchemy import delete, select, update
from sqlalchemy.orm import Session

from ..clock import system_clock
from ..runtime import Runtime
from ..storage.models import WebSession
from .tokens import Caller

__all__ = ["end_session", "new_session_id", "session_caller", "session_open", "start_session"]

#: rows of sessions over for this long are deleted when a new session starts
_KEEP_ENDED = timedelta(days=1)


def new_session_id() -> str:
    """128 random bits, as 32 hex digits."""
    return secrets.token_hex(16)


def _key(sid: str) -> str:
    return hashlib.sha256(sid.encode("ascii", "replace")).hexdigest()


def start_session(
    session: Session, *, sid: str, token_id: str, at: datetime, seconds: float
) -> None:
    """Record a new open session (and forget sessions long over)."""
    session.execute(delete(WebSession).where(WebSession.expires_at < at - _KEEP_ENDED))
    session.add(
        WebSession(
            id=_key(sid),
            token_id=token_id,
            created_at=at,
            expires_at=at + timedelta(seconds=seconds),
            ended_at=None,
        )
    )


def session_open(session: Session, sid: str, at: datetime) -> bool:
    """Whether the session ``sid`` was started, is not signed out, and has not expired."""
    row = session.scalars(select(WebSession).where(WebSession.id == _key(sid))).first()
    return row is not None and row.ended_at is None and at < row.expires_at


def end_session(session: Session, sid: str, at: datetime) -> None:
    """Sign the session out (nothing happens for an unknown or already ended one)."""
    session.execute(
        update(WebSession)
        .where(WebSession.id == _key(sid), WebSession.ended_at.is_(None))
        .values(ended_at=at)
    )


def session_caller(
    rt: Runtime, sid: str, token: str, lookup: Callable[[Runtime, str], Caller]
) -> Caller | None:
    """The caller of an opened session cookie: ``None`` if the session was signed out, else
    ``lookup(rt, token)`` (the API's token cache: it raises for a revoked or expired token).

    Every door a session cookie opens (the pages, the meeting page's WebSocket) goes through
    this, so a sign-out closes them all. It reads the database: call it from a thread.
    """
    with rt.db.read() as session:
        if not session_open(session, sid, system_clock()):
            return None
    return lookup(rt, token)
