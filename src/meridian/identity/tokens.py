"""API tokens: random secrets shown once, stored only as SHA-256, each with one role.

Roles::

    operator   the platform's staff: every account, subscription, partner and report
    partner    an authorised partner: its own customers in its own jurisdictions, nothing else
    user       an account holder: that account alone

A token has 256 random bits, so one unsalted SHA-256 is enough to store it: there is nothing to
guess that a slow hash would protect.

An operator token belongs to one person (:mod:`.people`), and acts as that person: the log names
the person (``operator:psn_…``), and the two-person rule compares people. A token may expire
(``expires_at``); a user token always does, after :data:`DEFAULT_USER_TOKEN_DAYS` unless its
creator says otherwise (``MERIDIAN_USER_TOKEN_DAYS``).
"""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Literal

from sqlalchemy import select
from sqlalchemy.orm import Session

from ..audit import Actor, record
from ..clock import system_clock
from ..errors import AuthenticationError, ForbiddenError, InputError, NotFoundError, shown
from ..storage.models import Account, Partner, Person, Token, new_id
from ..storage.orders import publish
from ..wire import Order

__all__ = [
    "DEFAULT_USER_TOKEN_DAYS",
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
#: a user token's lifetime when its creator gives no ``expires_at`` (the setting's default)
DEFAULT_USER_TOKEN_DAYS = 90


@dataclass(frozen=True, slots=True)
class Caller:
    """The authenticated caller of one request."""

    token_id: str
    role: Role
    partner_id: str | None = None
    account_id: str | None = None
    #: the operator person the token belongs to (operator tokens only)
    person_id: str | None = None
    #: when the token stops working, if ever
    expires_at: datetime | None = None

    @property
    def actor(self) -> Actor:
        """Who the log names: the person for an operator token, else the token itself."""
        if self.person_id is not None:
            return Actor(self.role, self.person_id)
        return Actor(self.role, self.token_id)

    def expired(self, at: datetime) -> AuthenticationError | None:
        """The refusal of this caller's token at ``at`` if it has expired by then."""
        if self.expires_at is None or at < self.expires_at:
            return None
        return AuthenticationError(
            f"api token `{self.token_id}` expired at {self.expires_at.isoformat()}: "
            "ask for a new one"
        )


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
    person_id: str | None = None,
    expires_at: datetime | None = None,
    default_user_days: int = DEFAULT_USER_TOKEN_DAYS,
    demo: bool = False,
    digest: str,
) -> tuple[Token, str]:
    """Create a token; returns the stored row and the secret (shown to the caller once).

    An operator token needs ``person_id``, an operator person still in office (people are added
    out of band: :func:`.people.add_operator`). A user token without ``expires_at`` expires
    ``default_user_days`` after ``at``.
    """
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
    if role == "operator":
        if not person_id:
            raise InputError(
                "an operator token needs `person`: the operator it belongs to "
                "(`meridian admin add-operator` adds one)"
            )
        person = session.get(Person, person_id)
        if person is None:
            raise NotFoundError(f"no operator `{shown(person_id)}`")
        if person.disabled_at is not None:
            raise ForbiddenError(f"operator `{person.id}` was removed: it can have no new token")
    elif person_id:
        raise InputError(f"only an operator token names a person, not a `{role}` token")
    if expires_at is not None:
        if expires_at.tzinfo is None:
            raise InputError("`expires_at` needs a time zone, e.g. `2027-01-01T00:00:00Z`")
        if expires_at <= at:
            raise InputError(
                f"`expires_at` `{expires_at.isoformat()}` is not after now ({at.isoformat()})"
            )
    elif role == "user":
        expires_at = at + timedelta(days=default_user_days)
    secret = f"{_PREFIX}_{role}_{secrets.token_urlsafe(32)}"
    row = Token(
        id=new_id("tok"),
        hash=hash_token(secret),
        role=role,
        name=name,
        partner_id=partner_id,
        account_id=account_id,
        person_id=person_id,
        created_at=at,
        revoked_at=None,
        expires_at=expires_at,
        demo=demo,
    )
    session.add(row)
    session.flush()
    details: dict[str, object] = {
        "role": role,
        "name": name,
        "partner": partner_id,
        "account": account_id,
    }
    if person_id is not None:
        details["person"] = person_id
    if expires_at is not None:
        details["expires_at"] = expires_at.isoformat()
    record(
        session,
        actor=actor,
        action="token.create",
        subject_kind="token",
        subject_id=row.id,
        at=at,
        bundle_digest=digest,
        details=details,
    )
    return row, secret


def revoke_token(
    session: Session, *, token_id: str, at: datetime, actor: Actor, digest: str
) -> Token:
    """Revoke a token; it stops working at once for new look-ups, and every replica forgets the
    callers it remembered once this commits (an order, :mod:`meridian.storage.orders`)."""
    row = session.get(Token, token_id)
    if row is None:
        raise NotFoundError(f"no token `{shown(token_id)}`")
    if row.revoked_at is None:
        row.revoked_at = at
        publish(session, Order.REVOKE, token=row.id)
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


def authenticate(session: Session, secret: str, *, at: datetime | None = None) -> Caller | None:
    """The caller a bearer token stands for, or ``None`` for an unknown or revoked token (or one
    of a removed operator).

    Raises :class:`AuthenticationError` for a token that has expired by ``at`` (default: now).
    """
    row = session.scalars(select(Token).where(Token.hash == hash_token(secret))).first()
    if row is None or row.revoked_at is not None:
        return None
    if row.role == "operator":
        person = None if row.person_id is None else session.get(Person, row.person_id)
        if person is None or person.disabled_at is not None:
            return None  # INVARIANT: an operator acts only as a person in office
    role: Role = row.role  # type: ignore[assignment]
    caller = Caller(row.id, role, row.partner_id, row.account_id, row.person_id, row.expires_at)
    refusal = caller.expired(system_clock() if at is None else at)
    if refusal is not None:
        raise refusal
    return caller
