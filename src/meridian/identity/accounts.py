"""Accounts: registration through the ``register`` decision, operator review, scoped reads.

Who sees what (enforced here, not in the HTTP layer)::

    operator   every account
    partner    accounts it manages (``partner_id`` is its own)
    user       its own account

An account outside the caller's reach is reported as not found, never as forbidden: a caller
learns nothing about objects it may not see.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

from sqlalchemy import ColumnElement, select, true
from sqlalchemy.orm import Session

from ..audit import Actor, record
from ..errors import ConflictError, DeniedError, ForbiddenError, InputError, NotFoundError, shown
from ..gate import ask, deny_message, public_decision, with_contacts
from ..geography.regions import home_region
from ..policy.explain import join_request, signup_advice
from ..runtime import Runtime
from ..storage.models import Account, AccountStatus, Partner, new_id
from ..storage.paging import page
from .tokens import Caller, create_token

__all__ = [
    "Registration",
    "account_filter",
    "get_account",
    "list_accounts",
    "register",
    "review",
]


@dataclass(frozen=True, slots=True)
class Registration:
    """A new account, the decision that admitted it, and (for a self sign-up) its user token."""

    account: Account
    decision: dict[str, Any]
    token: str | None


def account_filter(caller: Caller) -> ColumnElement[bool]:
    """The SQL condition for the accounts ``caller`` may see."""
    if caller.role == "operator":
        return true()
    if caller.role == "partner":
        return Account.partner_id == caller.partner_id
    return Account.id == caller.account_id


def get_account(session: Session, caller: Caller, account_id: str) -> Account:
    """One account the caller may see, or :class:`NotFoundError`."""
    row = session.scalars(
        select(Account).where(Account.id == account_id, account_filter(caller))
    ).first()
    if row is None:
        raise NotFoundError(f"no account `{shown(account_id)}`")
    return row


def list_accounts(
    session: Session,
    caller: Caller,
    *,
    country: str | None = None,
    status: str | None = None,
    limit: int = 50,
    offset: int = 0,
) -> tuple[list[Account], int]:
    """A page of the accounts the caller may see, newest first, and how many there are in all."""
    where = [account_filter(caller)]
    if country:
        where.append(Account.country == country)
    if status:
        where.append(Account.status == status)
    return page(
        session,
        Account,
        where,
        (Account.created_at.desc(), Account.id),
        limit=limit,
        offset=offset,
    )


def register(
    rt: Runtime,
    *,
    caller: Caller | None,
    type: Literal["individual", "organization"],
    name: str,
    country: str,
    org_id: str | None = None,
    email: str | None = None,
    client_ip: str | None = None,
) -> Registration:
    """Register an account if the ``register`` decision allows it at the service's "now".

    The evidence is what the request carries: the declared country, the organisation's
    registration number, and the client's IP when the caller is the person signing up (a
    partner's or an operator's server address says nothing about their customer).
    """
    if caller is not None and caller.role == "user":
        raise ForbiddenError("a user token cannot register further accounts")
    if org_id is not None and type != "organization":
        raise InputError("`org_id` is for organisations: an individual has no registration number")
    at = rt.now()
    engine = rt.engine
    self_signup = caller is None
    request, decision = ask(
        engine,
        action="register",
        at=at,
        subject={
            "type": type,
            "country": country,
            "org_id": org_id,
            "ip": client_ip if self_signup else None,
        },
    )
    actor = caller.actor if caller is not None else Actor("anonymous", client_ip or "-")
    with rt.db.write() as session:
        partner_id = None
        if caller is not None and caller.role == "partner":
            partner_id = caller.partner_id
            partner = session.get(Partner, partner_id)
            epoch = request.epoch or 0
            if partner is None or not engine.bundle.is_authorised(
                partner.id, request.subject.country or "", epoch
            ):
                raise ForbiddenError(
                    f"partner `{shown(partner_id)}` is not authorised in `{shown(country)}`: it can create customers only in its own jurisdictions"
                )
        record(
            session,
            actor=actor,
            action="account.register",
            subject_kind="account",
            subject_id=None,
            at=at,
            bundle_digest=decision.bundle.digest,
            decision=decision,
            details={"type": type, "country": country, "org_id": request.subject.org_id},
        )
        if not decision.allowed:
            refusal = with_contacts(session, decision)
            contacts = {pid: c for pid, c in session.execute(select(Partner.id, Partner.contact))}
            advice = signup_advice(
                decision,
                request,
                engine.bundle,
                join=engine.decide(join_request(request)),
                contacts=contacts,
            )
        else:
            refusal = None
            pending = "manual_review" in decision.obligations
            account = Account(
                id=new_id("acct"),
                type=type,
                name=name,
                email=email,
                country=request.subject.country or country,
                plan="free",
                home_region=home_region(request.subject.country or country),
                status=AccountStatus.PENDING_REVIEW if pending else AccountStatus.ACTIVE,
                org_id=request.subject.org_id,
                org_id_status=None
                if request.subject.org_id is None
                else engine.bundle.uscc_status(request.subject.org_form, request.subject.org_id),
                partner_id=partner_id,
                created_at=at,
                updated_at=at,
            )
            session.add(account)
            session.flush()
            record(
                session,
                actor=actor,
                action="account.create",
                subject_kind="account",
                subject_id=account.id,
                at=at,
                bundle_digest=decision.bundle.digest,
                details={"status": account.status, "partner": partner_id},
            )
            secret = None
            if self_signup:
                _, secret = create_token(
                    session,
                    role="user",
                    name=f"sign-up of {account.id}",
                    account_id=account.id,
                    default_user_days=rt.settings.user_token_days,
                    at=at,
                    actor=actor,
                    digest=decision.bundle.digest,
                )
            result = Registration(account, public_decision(session, decision), secret)
    if refusal is not None:
        raise DeniedError(deny_message(decision), refusal, advice=advice)
    return result


def review(
    rt: Runtime, *, caller: Caller, account_id: str, approve: bool, note: str | None = None
) -> Account:
    """An operator's verdict on an account waiting for review (a pilot-era company code)."""
    if caller.role != "operator":
        raise ForbiddenError("only an operator can review an account")
    at = rt.now()
    with rt.db.write() as session:
        account = get_account(session, caller, account_id)
        if account.status != AccountStatus.PENDING_REVIEW:
            raise ConflictError(
                f"account `{account.id}` is `{account.status}`, not waiting for review"
            )
        account.status = AccountStatus.ACTIVE if approve else "rejected"
        account.updated_at = at
        record(
            session,
            actor=caller.actor,
            action="account.review",
            subject_kind="account",
            subject_id=account.id,
            at=at,
            bundle_digest=rt.digest,
            details={"approved": approve, "note": note, "status": account.status},
        )
    return account
