"""Operators are people: one name in office, removal revokes every token of theirs."""

from __future__ import annotations

import pytest

from meridian.audit import SYSTEM
from meridian.errors import ConflictError, ForbiddenError, InputError, NotFoundError
from meridian.identity.people import add_operator, find_operator, list_operators, remove_operator
from meridian.identity.tokens import authenticate, create_token

pytestmark = pytest.mark.storage


def test_an_operator_is_added_with_a_first_token_and_found_by_name_in_any_case(runtime, clock):
    with runtime.db.write() as session:
        person, token, secret = add_operator(
            session, name=" Alice ", at=clock(), actor=SYSTEM, digest=runtime.digest
        )
    assert (person.name, token.person_id, token.role) == ("Alice", person.id, "operator")
    with runtime.db.read() as session:
        assert find_operator(session, "alice").id == person.id
        caller = authenticate(session, secret, at=clock())
    assert caller is not None
    assert caller.actor.id == person.id  # the log names the person, not the token


def test_two_operators_in_office_never_share_a_name(runtime, clock):
    with runtime.db.write() as session:
        add_operator(session, name="Alice", at=clock(), actor=SYSTEM, digest=runtime.digest)
    with runtime.db.write() as session, pytest.raises(ConflictError, match="`ALICE` exists already"):
        add_operator(session, name="ALICE", at=clock(), actor=SYSTEM, digest=runtime.digest)


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"name": "  "}, "an operator's name must be 1 to 200 printable characters"),
        ({"name": "a\nb"}, "an operator's name must be 1 to 200 printable characters"),
        ({"name": "Bob", "email": "bob"}, "`bob` is not an email address"),
    ],
)
def test_bad_names_and_emails_are_refused(runtime, clock, fields, message):
    with runtime.db.write() as session, pytest.raises(InputError, match=message):
        add_operator(session, at=clock(), actor=SYSTEM, digest=runtime.digest, **fields)


def test_removing_an_operator_revokes_every_token_and_no_new_one_is_made(runtime, clock):
    with runtime.db.write() as session:
        person, _, first = add_operator(
            session, name="Alice", at=clock(), actor=SYSTEM, digest=runtime.digest
        )
        _, second = create_token(
            session,
            role="operator",
            name="laptop",
            person_id=person.id,
            at=clock(),
            actor=SYSTEM,
            digest=runtime.digest,
        )
    with runtime.db.read() as session:
        assert dict((p.id, n) for p, n in list_operators(session))[person.id] == 2
    with runtime.db.write() as session:
        _, revoked = remove_operator(
            session, person_id=person.id, at=clock(), actor=SYSTEM, digest=runtime.digest
        )
    assert revoked == 2
    with runtime.db.read() as session:
        assert authenticate(session, first, at=clock()) is None
        assert authenticate(session, second, at=clock()) is None
        assert find_operator(session, "Alice") is None
    with runtime.db.write() as session:
        assert remove_operator(
            session, person_id=person.id, at=clock(), actor=SYSTEM, digest=runtime.digest
        )[1] == 0  # removing a removed operator changes nothing
    with runtime.db.write() as session, pytest.raises(ForbiddenError, match="was removed"):
        create_token(
            session,
            role="operator",
            name="again",
            person_id=person.id,
            at=clock(),
            actor=SYSTEM,
            digest=runtime.digest,
        )
    with runtime.db.write() as session, pytest.raises(NotFoundError, match="no operator `psn_x`"):
        remove_operator(session, person_id="psn_x", at=clock(), actor=SYSTEM, digest=runtime.digest)
