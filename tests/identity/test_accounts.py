"""Registration and review at the service level: who may open an account, and who sees it."""

from __future__ import annotations

import pytest
from sqlalchemy import select

from meridian.errors import ConflictError, DeniedError, ForbiddenError, NotFoundError
from meridian.identity.accounts import get_account, register, review
from meridian.identity.tokens import Caller, authenticate
from meridian.storage.models import Record

pytestmark = pytest.mark.storage

OPERATOR = Caller("tok_ops", "operator")
BIZCONF = Caller("tok_bizconf", "partner", partner_id="bizconf")
VALID_USCC = "91110000600037341L"
PILOT_USCC = "91350100M0001TGQXM"


def test_a_self_sign_up_gets_an_active_account_and_its_own_user_token(runtime, clock):
    clock.set("2020-09-01T10:00:00Z")
    reg = register(runtime, caller=None, type="individual", name="Ada", country="US")
    assert (reg.account.status, reg.account.plan, reg.account.partner_id) == ("active", "free", None)
    assert reg.decision["decision"] == "allow"
    assert reg.token is not None
    with runtime.db.read() as session:
        caller = authenticate(session, reg.token, at=clock())
    assert caller is not None
    assert (caller.role, caller.account_id) == ("user", reg.account.id)


def test_an_operator_registers_without_a_token_for_anyone(runtime, clock):
    reg = register(runtime, caller=OPERATOR, type="organization", name="Acme", country="US")
    assert reg.token is None


def test_after_1_may_2020_mainland_china_admits_organisations_only(runtime, clock):
    clock.set("2020-04-30T12:00:00+08:00")
    early = register(runtime, caller=OPERATOR, type="individual", name="Li", country="CN")
    assert early.account.status == "active"
    clock.set("2020-05-01T00:00:00+08:00")
    with pytest.raises(DeniedError):
        register(runtime, caller=OPERATOR, type="individual", name="Wang", country="CN")
    org = register(
        runtime, caller=OPERATOR, type="organization", name="Co", country="CN", org_id=VALID_USCC
    )
    assert org.account.status == "active"
    with runtime.db.read() as session:
        registrations = session.scalars(
            select(Record).where(Record.action == "account.register")
        ).all()
    assert len(registrations) == 3  # the refusal is on record too


def test_a_pilot_era_code_waits_for_an_operators_review(runtime, clock):
    clock.set("2020-09-01T10:00:00+08:00")
    reg = register(
        runtime, caller=OPERATOR, type="organization", name="Fuzhou", country="CN", org_id=PILOT_USCC
    )
    assert (reg.account.status, reg.account.org_id_status) == ("pending_review", "pilot")
    with pytest.raises(ForbiddenError, match="only an operator can review"):
        review(runtime, caller=BIZCONF, account_id=reg.account.id, approve=True)
    approved = review(runtime, caller=OPERATOR, account_id=reg.account.id, approve=True, note="ok")
    assert approved.status == "active"
    with pytest.raises(ConflictError, match="is `active`, not waiting for review"):
        review(runtime, caller=OPERATOR, account_id=reg.account.id, approve=False)


def test_a_partner_registers_its_own_customers_in_its_own_jurisdictions_only(runtime, clock):
    clock.set("2020-09-01T10:00:00+08:00")
    reg = register(
        runtime, caller=BIZCONF, type="organization", name="Co", country="CN", org_id=VALID_USCC
    )
    assert reg.account.partner_id == "bizconf"
    with pytest.raises(ForbiddenError, match="partner `bizconf` is not authorised in `US`"):
        register(runtime, caller=BIZCONF, type="organization", name="Inc", country="US")


def test_each_caller_sees_only_its_accounts(runtime, clock):
    clock.set("2020-09-01T10:00:00+08:00")
    own = register(
        runtime, caller=BIZCONF, type="organization", name="Co", country="CN", org_id=VALID_USCC
    ).account.id
    other = register(runtime, caller=OPERATOR, type="organization", name="Inc", country="US")
    other_id = other.account.id
    user = Caller("tok_u", "user", account_id=other_id)
    with runtime.db.read() as session:
        assert get_account(session, BIZCONF, own).id == own
        with pytest.raises(NotFoundError, match=f"no account `{other_id}`"):
            get_account(session, BIZCONF, other_id)
        with pytest.raises(NotFoundError):
            get_account(session, user, own)
        assert get_account(session, OPERATOR, own).id == own
    with pytest.raises(ForbiddenError, match="a user token cannot register further accounts"):
        register(runtime, caller=user, type="individual", name="More", country="US")
