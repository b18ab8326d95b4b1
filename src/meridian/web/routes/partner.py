"""Pages: the partner portal, for a reseller signed in with its partner token.

A partner sees what ``GET /v1/accounts`` and ``GET /v1/subscriptions`` show its token: the
customers it manages and the subscriptions it sells or was chosen to take over. Every page reads
and writes through the same service functions as the API with the viewer's caller, so another
partner's customer is "not found" here exactly as it is there (a 404 page, never a 403 that would
confirm it exists).

``/partner``                      its customers, filtered by country and status
``/partner/customers/new``        create a customer in its own jurisdictions (the ``register`` decision)
``/partner/customers/{id}``       a customer: subscriptions, entitlements, and a checkout through
                                  the partner's own channel (the ``purchase`` decision)
``/partner/subscriptions``        its subscriptions
``/partner/transfers``            subscriptions whose customer chose it after direct sales closed,
                                  each with a "Take over" button that keeps the paid time
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Form, Query, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from ...commerce import subscriptions as subs
from ...commerce.checkout import checkout_options
from ...commerce.partners import get_partner, partner_public
from ...commerce.plans import entitlements, plan_catalogue
from ...errors import InputError, MeridianError, NotFoundError, shown
from ...geography.jurisdictions import check_jurisdiction, jurisdiction_name
from ...http.deps import ClientIpDep
from ...http.errors import refused_decision
from ...http.schemas import (
    AccountCreate,
    AccountPublic,
    CheckoutCreate,
    EntitlementsPublic,
    IdPath,
    NoticePublic,
    SubscriptionPublic,
)
from ...identity import accounts
from ...identity.tokens import Caller
from ...runtime import Runtime
from ...storage.models import AccountStatus, Notice, SubscriptionStatus
from ...storage.paging import page
from ..deps import CsrfChecked, Viewer, page_for
from ..forms import parse_form
from ..render import render
from .account import zone_of

router = APIRouter(include_in_schema=False)
__all__ = ["router"]

PartnerPage = Annotated[Viewer, page_for("partner")]

_ACCOUNT_STATES = tuple(AccountStatus)
_SUB_STATES = tuple(SubscriptionStatus)
_PAGE = 50


def _me(rt: Runtime, caller: Caller) -> dict[str, Any]:
    """The viewer's own partner record, as ``GET /v1/partners/{id}`` shows it."""
    with rt.db.read() as session:
        return partner_public(get_partner(session, caller.partner_id or ""))


def _choice(value: str, allowed: tuple[str, ...], what: str) -> str | None:
    """A filter from a query string: empty means none; anything else must be one of ``allowed``."""
    value = value.strip()
    if not value:
        return None
    if value not in allowed:
        raise InputError(f"unknown {what} `{shown(value)}`: expected one of {', '.join(allowed)}")
    return value


def _country_filter(value: str) -> str | None:
    value = value.strip().upper()
    return check_jurisdiction(value) if value else None


Offset = Annotated[int, Query(ge=0, le=10_000_000)]
Filter = Annotated[str, Query(max_length=40)]


@router.get("/partner", response_class=HTMLResponse)
def customers(
    request: Request,
    viewer: PartnerPage,
    country: Filter = "",
    status: Filter = "",
    offset: Offset = 0,
) -> Response:
    """The partner's customers (``GET /v1/accounts`` for its token), newest first."""
    rt: Runtime = request.app.state.runtime
    filters = {
        "country": _country_filter(country),
        "status": _choice(status, _ACCOUNT_STATES, "status"),
    }
    with rt.db.read() as session:
        rows, count = accounts.list_accounts(
            session, viewer.caller, **filters, limit=_PAGE, offset=offset
        )
        data = [AccountPublic.model_validate(r).model_dump() for r in rows]
    me = _me(rt, viewer.caller)
    return render(
        request,
        "partner/customers.html",
        {
            "me": me,
            "customers": data,
            "count": count,
            "filters": {k: v or "" for k, v in filters.items()},
            "states": _ACCOUNT_STATES,
            "offset": offset,
            "page_size": _PAGE,
            "countries": [(c, jurisdiction_name(c)) for c in me["jurisdictions"]],
        },
        active="customers",
    )


def _new_page(
    request: Request,
    viewer: Viewer,
    form: dict[str, Any],
    *,
    error: str | None = None,
    decision: dict[str, Any] | None = None,
    status: int = 200,
) -> HTMLResponse:
    me = _me(request.app.state.runtime, viewer.caller)
    return render(
        request,
        "partner/customer-new.html",
        {
            "me": me,
            "form": form,
            "error": error,
            "decision": decision,
            "countries": [(c, jurisdiction_name(c)) for c in me["jurisdictions"]],
        },
        status=status,
        active="customers",
    )


@router.get("/partner/customers/new", response_class=HTMLResponse)
def new_customer_form(request: Request, viewer: PartnerPage) -> Response:
    """The form that creates a customer."""
    return _new_page(request, viewer, {"type": "organization"})


@router.post("/partner/customers/new", response_class=HTMLResponse, dependencies=[CsrfChecked])
def new_customer(
    request: Request,
    viewer: PartnerPage,
    ip: ClientIpDep,
    type: Annotated[str, Form(max_length=20)] = "",
    name: Annotated[str, Form(max_length=400)] = "",
    country: Annotated[str, Form(max_length=10)] = "",
    org_id: Annotated[str, Form(max_length=200)] = "",
    email: Annotated[str, Form(max_length=400)] = "",
) -> Response:
    """Create a customer through the ``register`` decision, as ``POST /v1/accounts`` does."""
    rt: Runtime = request.app.state.runtime
    form = {
        "type": type,
        "name": name,
        "country": country.upper(),
        "org_id": org_id,
        "email": email,
    }
    try:
        body = parse_form(AccountCreate, form)
        result = accounts.register(
            rt,
            caller=viewer.caller,
            type=body.type,
            name=body.name,
            country=body.country,
            org_id=body.org_id,
            email=body.email,
            client_ip=ip,
        )
    except MeridianError as exc:
        decision = refused_decision(exc)
        return _new_page(
            request, viewer, form, error=exc.message, decision=decision, status=exc.http_status
        )
    return RedirectResponse(f"/partner/customers/{result.account.id}", status_code=303)


def _customer_page(
    request: Request,
    viewer: Viewer,
    account_id: str,
    *,
    form: dict[str, Any] | None = None,
    error: str | None = None,
    decision: dict[str, Any] | None = None,
    bought: str | None = None,
    status: int = 200,
) -> HTMLResponse:
    rt: Runtime = request.app.state.runtime
    caller = viewer.caller
    now = rt.now()
    with rt.db.read() as session:
        # INVARIANT: the same lookup as GET /v1/accounts/{id}: another partner's customer is a 404
        account = accounts.get_account(session, caller, account_id)
        ents = EntitlementsPublic.model_validate(entitlements(session, rt.engine, account, now))
        rows, _ = subs.list_subscriptions(session, caller, account_id=account.id, limit=_PAGE)
        subscriptions = [SubscriptionPublic.model_validate(r).model_dump() for r in rows]
        notes, _ = page(
            session,
            Notice,
            [Notice.account_id == account.id],
            (Notice.created_at.desc(), Notice.id),
            limit=10,
            offset=0,
        )
        notices = [NoticePublic.model_validate(n).model_dump() for n in notes]
        options = checkout_options(session, rt.engine, caller, account, at=now)
        preview = options.channels[0]  # INVARIANT: a partner buys through its own channel only
        public = AccountPublic.model_validate(account).model_dump()
    plans = plan_catalogue(rt.engine)
    return render(
        request,
        "partner/customer.html",
        {
            "account": public,
            "entitlements": ents.model_dump(),
            "subscriptions": subscriptions,
            "notices": notices,
            "preview": preview,
            "plans": [p for p in plans if p["paid"]],
            "plan_names": {p["id"]: p["name"] for p in plans},
            "running": options.running,
            "bought": next((s for s in subscriptions if s["id"] == bought), None),
            "zone": zone_of(rt.engine, public["country"]),
            "form": form or {"term": "month"},
            "error": error,
            "decision": decision,
        },
        status=status,
        active="customers",
    )


@router.get("/partner/customers/{account_id}", response_class=HTMLResponse)
def customer(
    request: Request,
    account_id: IdPath,
    viewer: PartnerPage,
    bought: Annotated[str | None, Query(max_length=100)] = None,
) -> Response:
    """One customer (``GET /v1/accounts/{id}`` for the partner's token): 404 if not its own."""
    return _customer_page(request, viewer, account_id, bought=bought)


@router.post(
    "/partner/customers/{account_id}/checkout",
    response_class=HTMLResponse,
    dependencies=[CsrfChecked],
)
def customer_checkout(
    request: Request,
    account_id: IdPath,
    viewer: PartnerPage,
    plan: Annotated[str, Form(max_length=200)] = "",
    term: Annotated[str, Form(max_length=20)] = "month",
) -> Response:
    """Sell the customer a plan through the partner's own channel (``POST /v1/checkout``)."""
    rt: Runtime = request.app.state.runtime
    partner = viewer.caller.partner_id
    form = {"plan": plan, "term": term}
    try:
        body = parse_form(
            CheckoutCreate,
            {"account": account_id, "channel": "partner", "partner": partner, **form},
        )
        sub, _ = subs.checkout(
            rt,
            caller=viewer.caller,
            account_id=body.account,
            plan=body.plan,
            channel=body.channel,
            partner=body.partner,
            term=body.term,
        )
    except NotFoundError:
        raise  # not its customer: the 404 page, as the API answers
    except MeridianError as exc:
        decision = refused_decision(exc)
        return _customer_page(
            request,
            viewer,
            account_id,
            form=form,
            error=exc.message,
            decision=decision,
            status=exc.http_status,
        )
    return RedirectResponse(
        f"/partner/customers/{account_id}?bought={sub.id}#subscriptions", status_code=303
    )


@router.get("/partner/subscriptions", response_class=HTMLResponse)
def subscriptions(
    request: Request, viewer: PartnerPage, status: Filter = "", offset: Offset = 0
) -> Response:
    """The partner's subscriptions (``GET /v1/subscriptions`` for its token)."""
    rt: Runtime = request.app.state.runtime
    wanted = _choice(status, _SUB_STATES, "status")
    with rt.db.read() as session:
        rows, count = subs.list_subscriptions(
            session, viewer.caller, status=wanted, limit=_PAGE, offset=offset
        )
        data = [SubscriptionPublic.model_validate(r).model_dump() for r in rows]
    return render(
        request,
        "partner/subscriptions.html",
        {
            "subscriptions": data,
            "count": count,
            "status": wanted or "",
            "states": _SUB_STATES,
            "offset": offset,
            "page_size": _PAGE,
            "me": viewer.caller.partner_id,
            "plan_names": {p["id"]: p["name"] for p in plan_catalogue(rt.engine)},
        },
        active="subscriptions",
    )


def _transfers_page(
    request: Request,
    viewer: Viewer,
    *,
    taken: str | None = None,
    error: str | None = None,
    decision: dict[str, Any] | None = None,
    status: int = 200,
) -> HTMLResponse:
    rt: Runtime = request.app.state.runtime
    me = viewer.caller.partner_id
    result = None
    with rt.db.read() as session:
        rows, _ = subs.list_subscriptions(
            session, viewer.caller, status=SubscriptionStatus.TRANSFER_REQUIRED, limit=500
        )
        data = [SubscriptionPublic.model_validate(r).model_dump() for r in rows]
        if taken:
            try:
                result = SubscriptionPublic.model_validate(
                    subs.get_subscription(session, viewer.caller, taken)
                ).model_dump()
            except NotFoundError:
                result = None
    return render(
        request,
        "partner/transfers.html",
        {
            "chosen": [s for s in data if s["chosen_partner_id"] == me],
            "own": [s for s in data if s["chosen_partner_id"] != me],
            "taken": result,
            "error": error,
            "decision": decision,
            "plan_names": {p["id"]: p["name"] for p in plan_catalogue(rt.engine)},
        },
        status=status,
        active="transfers",
    )


@router.get("/partner/transfers", response_class=HTMLResponse)
def transfers(
    request: Request,
    viewer: PartnerPage,
    taken: Annotated[str | None, Query(max_length=100)] = None,
) -> Response:
    """Subscriptions waiting for a partner: those whose customer chose this one can be taken over."""
    return _transfers_page(request, viewer, taken=taken)


@router.post(
    "/partner/transfers/{subscription_id}/takeover",
    response_class=HTMLResponse,
    dependencies=[CsrfChecked],
)
def take_over(request: Request, subscription_id: IdPath, viewer: PartnerPage) -> Response:
    """Take a subscription over, keeping its paid time (``POST /v1/subscriptions/{id}/takeover``)."""
    rt: Runtime = request.app.state.runtime
    try:
        new, _ = subs.take_over(rt, caller=viewer.caller, subscription_id=subscription_id)
    except NotFoundError:
        raise
    except MeridianError as exc:
        decision = refused_decision(exc)
        return _transfers_page(
            request, viewer, error=exc.message, decision=decision, status=exc.http_status
        )
    return RedirectResponse(f"/partner/transfers?taken={new.id}", status_code=303)
