"""API tokens: random secrets shown once, stored only as SHA-256, each with one role.

Roles::

    operator   the platform's staff: every account, subscription, partner and report
    partner    an authorised partner: its own customers in its own jurisdictions, nothing else
    user       an account holder: that account alone

A token has 256 random bits, so one unsalted SHA-256 is enough to store it: there is nothing to
guess that a slow hash would protect.
"""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass
from datetime import datetime
from typing import Literal

from sqlalchemy import select
from sqlalchemy.orm import Session

from ..audit import Actor, record
from ..errors import InputError, NotFoundError, shown
from ..storage.models import Account, Partner, Token, new_id

__all__ = [
    "ROLES",
    "Caller",
    "Role",
    "authenticate",
    "create_token",
    "hash_token",
    "revoke_token",
]

Role = Literal["operator", "partner", "user"]
ROLES: tuple[Role, ...] = ("operator", "partner", "user")
_PREFIX = "mrd"


@dataclass(frozen=True, slots=True)
class Caller:
    """The authenticated caller of one request."""

    token_id: str
    role: Role
    partner_id: str | None = None
    account_id: str | None = None

    @property
    def actor(self) -> Actor:
        return Actor(self.role, self.token_id)


def hash_token(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8", "surrogatepass")).hexdigest()


def create_token(
    session: Session,
    *,
    role: str,
    name: str,
    at: datetime,
    actor: Actor,
    partner_id: str | None = None,
    account_id: str | None = None,
    digest: str,
) -> tuple[Token, str]:
    """Create a token; returns the stored row and the secret (shown to the caller once)."""
    if role not in ROLES:
        raise InputError(f"unknown role `{shown(role)}`: expected one of operator, partner, user")
    if role == "partner":
        if not partner_id:
            raise InputError("a partner token needs `partner`: the partner it acts for")
        if session.get(Partner, partner_id) is None:
            raise NotFoundError(f"no partner `{shown(partner_id)}`")
    elif partner_id:
        raise InputError(f"only a partner token names a partner, not a `{role}` token")
    if role == "user":
        if not account_id:
            raise InputError("a user token needs `account`: the account it acts for")
        if session.get(Account, account_id) is None:
            raise NotFoundError(f"no account `{shown(account_id)}`")
    elif account_id:
        raise InputError(f"only a user token names an account, not a `{role}` token")
    secret = f"{_PREFIX}_{role}_{secrets.token_urlsafe(32)}"
    row = Token(
        id=new_id("tok"),
        hash=hash_token(secret),
        role=role,
        name=name,
        partner_id=partner_id,
        account_id=account_id,
        created_at=at,
        revoked_at=None,
    )
    session.add(row)
    session.flush()
    record(
        session,
        actor=actor,
        action="token.create",
        subject_kind="token",
        subject_id=row.id,
        at=at,
        bundle_digest=digest,
        details={"role": role, "name": name, "partner": partner_id, "account": account_id},
    )
    return row, secret


def revoke_token(
    session: Session, *, token_id: str, at: datetime, actor: Actor, digest: str
) -> Token:
    """Revoke a token; it stops working at once for new look-ups (and within the API's cache)."""
    row = session.get(Token, token_id)
    if row is None:
        raise NotFoundError(f"no token `{shown(token_id)}`")
    if row.revoked_at is None:
        row.revoked_at = at
        record(
            session,
            actor=actor,
            action="token.revoke",
            subject_kind="token",
            subject_id=row.id,
            at=at,
            bundle_digest=digest,
            details={"role": row.role, "name": row.name},
        )
    return row


def authenticate(session: Session, secret: str) -> Caller | None:
    """The caller a bearer token stands for, or ``None`` for an unknown or revoked token."""
    row = session.scalars(select(Token).where(Token.hash == hash_token(secret))).first()
    if row is None or row.revoked_at is not None:
        return None
    role: Role = row.role  # type: ignore[assignment]
    return Caller(row.id, role, row.partner_id, row.account_id)
