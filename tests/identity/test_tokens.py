"""Tokens: stored as hashes, scoped to their role, user tokens expiring, revocation at once."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import select

from meridian.audit import SYSTEM
from meridian.errors import AuthenticationError, InputError, NotFoundError
from meridian.identity.accounts import register
from meridian.identity.tokens import Caller, authenticate, create_token, hash_token, revoke_token
from meridian.storage.models import Token

pytestmark = pytest.mark.storage

OPERATOR = Caller("tok_ops", "operator")


def _account(runtime) -> str:
    return register(runtime, caller=OPERATOR, type="individual", name="Ada", country="US").account.id


def _token(runtime, clock, **fields):
    with runtime.db.write() as session:
        row, secret = create_token(
            session, at=clock(), actor=SYSTEM, digest=runtime.digest, name="t", **fields
        )
        return row.id, secret


def test_only_the_hash_is_stored(runtime, clock):
    token_id, secret = _token(runtime, clock, role="partner", partner_id="bizconf")
    with runtime.db.read() as session:
        row = session.get(Token, token_id)
        assert row.hash == hash_token(secret)
        assert secret not in {v for v in vars(row).values() if isinstance(v, str)}
        assert session.scalars(select(Token).where(Token.hash == secret)).first() is None


def test_a_user_token_expires_after_90_days_by_default(runtime, clock):
    account = _account(runtime)
    _, secret = _token(runtime, clock, role="user", account_id=account)
    with runtime.db.read() as session:
        caller = authenticate(session, secret, at=clock() + timedelta(days=89))
        assert (caller.role, caller.account_id) == ("user", account)
        with pytest.raises(AuthenticationError, match="expired at"):
            authenticate(session, secret, at=clock() + timedelta(days=90))


def test_a_revoked_token_stops_working(runtime, clock):
    token_id, secret = _token(runtime, clock, role="partner", partner_id="bizconf")
    with runtime.db.write() as session:
        revoke_token(session, token_id=token_id, at=clock(), actor=SYSTEM, digest=runtime.digest)
    with runtime.db.read() as session:
        assert authenticate(session, secret, at=clock()) is None
    with runtime.db.write() as session, pytest.raises(NotFoundError, match="no token `tok_nope`"):
        revoke_token(session, token_id="tok_nope", at=clock(), actor=SYSTEM, digest=runtime.digest)


@pytest.mark.parametrize(
    ("fields", "error", "message"),
    [
        ({"role": "root"}, InputError, "unknown role `root`"),
        ({"role": "partner"}, InputError, "a partner token needs `partner`"),
        ({"role": "partner", "partner_id": "acme"}, NotFoundError, "no partner `acme`"),
        ({"role": "user"}, InputError, "a user token needs `account`"),
        ({"role": "user", "account_id": "acct_x"}, NotFoundError, "no account `acct_x`"),
        ({"role": "operator"}, InputError, "an operator token needs `person`"),
        (
            {"role": "user", "account_id": "acct_x", "partner_id": "bizconf"},
            InputError,
            "only a partner token names a partner",
        ),
    ],
)
def test_a_token_names_exactly_what_its_role_acts_for(runtime, clock, fields, error, message):
    with runtime.db.write() as session, pytest.raises(error, match=message):
        create_token(session, at=clock(), actor=SYSTEM, digest=runtime.digest, name="t", **fields)


def test_an_expiry_needs_a_zone_and_must_be_in_the_future(runtime, clock):
    with pytest.raises(InputError, match="is not after now"):
        _token(runtime, clock, role="partner", partner_id="bizconf", expires_at=clock())
    with pytest.raises(InputError, match="`expires_at` needs a time zone"):
        _token(
            runtime,
            clock,
            role="partner",
            partner_id="bizconf",
            expires_at=clock().replace(tzinfo=None) + timedelta(days=1),
        )
