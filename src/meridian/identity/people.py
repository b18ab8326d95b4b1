"""Operators are people: each is added out of band, and each has tokens of their own.

The two-person rule of lawful requests compares people, not tokens: a second token of the same
person (minted over the API, which mints operator tokens only for the caller's own person) is
still that person. So adding an operator is never something an operator's token can do: it is
``meridian admin add-operator``, run by whoever runs the service, on its database.

Names identify people to the humans reading the log and the pages, so two operators in office
never share a name (compared case-insensitively: ``Alice`` and ``alice`` are one name).
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from ..audit import Actor, record
from ..errors import ConflictError, ForbiddenError, InputError, NotFoundError, shown
from ..storage.models import Person, Token, new_id
from ..storage.orders import publish
from ..wire import Order
from .tokens import Caller, create_token

__all__ = [
    "add_operator",
    "find_operator",
    "list_operators",
    "operator_in_office",
    "remove_operator",
]


def _check_name(name: str) -> str:
    name = name.strip()
    if not name or len(name) > 200 or not name.isprintable():
        raise InputError(
            f"an operator's name must be 1 to 200 printable characters, not `{shown(name)}`"
        )
    return name


def _check_email(email: str | None) -> str | None:
    if email is None:
        return None
    email = email.strip()
    local, at, domain = email.partition("@")
    if not at or not local or "." not in domain or len(email) > 320 or not email.isprintable():
        raise InputError(f"`{shown(email)}` is not an email address")
    return email


def find_operator(session: Session, name: str) -> Person | None:
    """The operator in office named ``name`` (case-insensitively), if any."""
    return session.scalars(
        select(Person).where(
            Person.role == "operator",
            Person.disabled_at.is_(None),
            func.lower(Person.name) == name.strip().lower(),
        )
    ).first()


def add_operator(
    session: Session,
    *,
    name: str,
    email: str | None = None,
    at: datetime,
    actor: Actor,
    digest: str,
    token_name: str | None = None,
    demo: bool = False,
) -> tuple[Person, Token, str]:
    """Add an operator person and their first token; returns both and the token's secret.

    Raises :class:`ConflictError` when an operator in office already has that name.
    """
    name = _check_name(name)
    email = _check_email(email)
    existing = find_operator(session, name)
    if existing is not None:
        raise ConflictError(
            f"operator `{shown(name)}` exists already (`{existing.id}`): give them another "
            f"token with `meridian admin create-token --role operator --operator {existing.id}`"
        )
    person = Person(
        id=new_id("psn"),
        role="operator",
        name=name,
        email=email,
        created_at=at,
        disabled_at=None,
    )
    session.add(person)
    session.flush()
    record(
        session,
        actor=actor,
        action="person.create",
        subject_kind="person",
        subject_id=person.id,
        at=at,
        bundle_digest=digest,
        details={"role": "operator", "name": name, "email": email},
    )
    token, secret = create_token(
        session,
        role="operator",
        name=token_name or name,
        person_id=person.id,
        at=at,
        actor=actor,
        digest=digest,
        demo=demo,
    )
    return person, token, secret


def list_operators(session: Session) -> list[tuple[Person, int]]:
    """Every operator person, oldest first, with how many live (unrevoked) tokens each has."""
    live = (
        select(Token.person_id, func.count().label("n"))
        .where(Token.revoked_at.is_(None), Token.person_id.is_not(None))
        .group_by(Token.person_id)
        .subquery()
    )
    rows = session.execute(
        select(Person, func.coalesce(live.c.n, 0))
        .outerjoin(live, live.c.person_id == Person.id)
        .where(Person.role == "operator")
        .order_by(Person.created_at, Person.id)
    ).all()
    return [(person, int(n)) for person, n in rows]


def remove_operator(
    session: Session, *, person_id: str, at: datetime, actor: Actor, digest: str
) -> tuple[Person, int]:
    """Remove an operator: the person is disabled and every token of theirs revoked.

    Returns the person and how many tokens were revoked. Removing a removed operator changes
    nothing.
    """
    person = session.get(Person, person_id, with_for_update=True)
    if person is None or person.role != "operator":
        raise NotFoundError(f"no operator `{shown(person_id)}`")
    if person.disabled_at is not None:
        return person, 0
    person.disabled_at = at
    live = session.scalars(
        select(Token).where(Token.person_id == person.id, Token.revoked_at.is_(None))
    ).all()
    for token in live:
        token.revoked_at = at
    revoked = len(live)
    if revoked:
        publish(session, Order.REVOKE, person=person.id)
    record(
        session,
        actor=actor,
        action="person.remove",
        subject_kind="person",
        subject_id=person.id,
        at=at,
        bundle_digest=digest,
        details={"name": person.name, "tokens_revoked": revoked},
    )
    return person, revoked


def operator_in_office(
    session: Session, caller: Caller, *, may: str, work: str
) -> tuple[Actor, str]:
    """The caller as an operator in office: its actor (the person) and the person's name.

    Refused (:class:`ForbiddenError`) for any other role (``a `partner` token cannot <may>``),
    and for a token that is not a live token of a person in office (``<work>``, e.g. "lawful
    requests are handled by people"): a two-person rule counts people, not tokens.
    """
    if caller.role != "operator":
        raise ForbiddenError(f"a `{caller.role}` token cannot {may}")
    token = session.get(Token, caller.token_id)
    if token is None or token.revoked_at is not None:
        raise ForbiddenError(f"token `{shown(caller.token_id)}` is unknown or revoked")
    person = None if token.person_id is None else session.get(Person, token.person_id)
    if person is None or person.disabled_at is not None or person.id != caller.person_id:
        raise ForbiddenError(
            f"token `{shown(caller.token_id)}` belongs to no operator in office: "
            f"{work} (`meridian admin add-operator`)"
        )
    return caller.actor, person.name
