"""Pages: an account holder's own account (``/account``) and checkout (``/account/checkout``).

Everything is read and written through the service functions the API's account and commerce
routes call, with the viewer's caller, so the pages show the account that ``GET
/v1/accounts/{id}`` shows its user token and nothing else.

The checkout page shows :func:`meridian.commerce.checkout.checkout_options` before the buyer
submits: for every channel the buyer can use and every paid plan, the same decision checkout will
run (a what-if; nothing is recorded), so a channel the rules have closed is marked closed with its
reason, and when every channel is closed (mainland China after the 2020-08-23 cutover) the page
offers the partners the refusal names instead of a purchase; a running subscription holds
checkout (one at a time). The purchase itself still goes through checkout, and a refusal there is
shown with its decision whatever the preview said.

Also here, for the partner portal: :func:`zone_of`.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Form, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from sqlalchemy.orm import Session

from ...commerce import subscriptions as subs
from ...commerce.checkout import checkout_options
from ...commerce.partners import list_partners, partner_public
from ...commerce.plans import entitlements, plan_catalogue
from ...errors import MeridianError
from ...gate import ask, deny_message, public_decision
from ...http.deps import ClientIpDep
from ...http.errors import refused_decision
from ...http.schemas import (
    AccountPublic,
    CheckoutCreate,
    EntitlementsPublic,
    IdPath,
    NoticePublic,
    PartnerChoice,
    SubscriptionPublic,
)
from ...http.session import SessionSeal
from ...identity.accounts import get_account
from ...identity.tokens import Caller
from ...policy.engine import Engine
from ...policy.request import epoch_seconds
from ...runtime import Runtime
from ...storage.models import Notice, SubscriptionStatus
from ...storage.paging import page
from ..deps import CsrfChecked, Viewer, page_for
from ..forms import parse_form
from ..render import render
from .signup import NEW_TOKEN_COOKIE

router = APIRouter(include_in_schema=False)
__all__ = ["authorised_partners", "router", "zone_of"]

UserPage = Annotated[Viewer, page_for("user")]


def zone_of(engine: Engine, country: str) -> str | None:
    """The time zone the bundle gives ``country`` (its rules' dates are read there)."""
    info = engine.bundle.document.jurisdictions.get(country)
    return info.zone if info is not None else None


def authorised_partners(
    rt: Runtime, session: Session, country: str, at: datetime
) -> list[dict[str, Any]]:
    """The partners authorised in ``country`` at ``at``, as ``GET /v1/partners`` shows them."""
    bundle = rt.engine.bundle
    epoch = epoch_seconds(at)
    return [
        partner_public(p)
        for p in list_partners(session, jurisdiction=country)
        if bundle.is_authorised(p.id, country, epoch)
    ]


def _home_context(rt: Runtime, caller: Caller) -> dict[str, Any]:
    """What ``/account`` shows: the account, entitlements, subscriptions, notices, what is ahead."""
    engine = rt.engine
    now = rt.now()
    with rt.db.read() as session:
        account = get_account(session, caller, caller.account_id or "")
        ents = EntitlementsPublic.model_validate(entitlements(session, engine, account, now))
        rows, _ = subs.list_subscriptions(session, caller, account_id=account.id, limit=50)
        subscriptions = [SubscriptionPublic.model_validate(r).model_dump() for r in rows]
        notes, notice_count = page(
            session,
            Notice,
            [Notice.account_id == account.id],
            (Notice.created_at.desc(), Notice.id),
            limit=20,
            offset=0,
        )
        notices = [NoticePublic.model_validate(n).model_dump() for n in notes]
        partners = authorised_partners(rt, session, account.country, now)
        # What lies ahead: each running subscription's renewal, asked now as a what-if at the
        # instant it falls due (as the renewal job will ask it).
        ahead = []
        for sub in rows:
            if sub.status != SubscriptionStatus.ACTIVE:
                continue
            _, decision = ask(
                engine,
                action="renew",
                at=sub.period_end,
                subject={
                    "type": account.type,
                    "id": account.id,
                    "country": account.country,
                    "plan": sub.plan,
                    "org_id": account.org_id,
                },
                resource={"channel": sub.channel, "partner": sub.partner_id},
            )
            if not decision.allowed:
                ahead.append(
                    {
                        "subscription": sub.id,
                        "at": sub.period_end,
                        "message": deny_message(decision),
                        "partners": public_decision(session, decision)["alternatives"]["partners"],
                    }
                )
        public = AccountPublic.model_validate(account).model_dump()
    names = {p["id"]: p["name"] for p in partners}
    return {
        "account": public,
        "entitlements": ents.model_dump(),
        "subscriptions": subscriptions,
        "transfers": [s for s in subscriptions if s["status"] == "transfer_required"],
        "notices": notices,
        "notice_count": notice_count,
        "partners": partners,
        "partner_names": names,
        "ahead": ahead,
        "zone": zone_of(engine, public["country"]),
        "plans": {p["id"]: p for p in plan_catalogue(engine)},
    }


def _home_page(
    request: Request,
    viewer: Viewer,
    *,
    error: str | None = None,
    decision: dict[str, Any] | None = None,
    status: int = 200,
    token: str | None = None,
) -> HTMLResponse:
    ctx = _home_context(request.app.state.runtime, viewer.caller)
    ctx.update({"error": error, "decision": decision, "new_token": token})
    return render(request, "account/home.html", ctx, status=status, active="account")


@router.get("/account", response_class=HTMLResponse)
def home(request: Request, viewer: UserPage) -> Response:
    """The account: status, plan and entitlements, subscriptions, notices; a new token once."""
    token = None
    sealed = request.cookies.get(NEW_TOKEN_COOKIE)
    if sealed is not None:
        seal: SessionSeal = request.app.state.sessions
        opened = seal.open(sealed)
        if opened is not None and opened.token == viewer.token:
            token = opened.token
    response = _home_page(request, viewer, token=token)
    if sealed is not None:
        response.delete_cookie(NEW_TOKEN_COOKIE, path="/account")
    return response


@router.post(
    "/account/subscriptions/{subscription_id}/partner",
    response_class=HTMLResponse,
    dependencies=[CsrfChecked],
)
def choose_partner(
    request: Request,
    subscription_id: IdPath,
    viewer: UserPage,
    partner: Annotated[str, Form(max_length=200)] = "",
) -> Response:
    """Choose the partner to take over a ``transfer_required`` subscription."""
    rt: Runtime = request.app.state.runtime
    try:
        body = parse_form(PartnerChoice, {"partner": partner})
        subs.choose_partner(
            rt, caller=viewer.caller, subscription_id=subscription_id, partner_id=body.partner
        )
    except MeridianError as exc:
        decision = refused_decision(exc)
        return _home_page(
            request, viewer, error=exc.message, decision=decision, status=exc.http_status
        )
    return RedirectResponse(f"/account#sub-{subscription_id}", status_code=303)


def _checkout_context(rt: Runtime, caller: Caller, ip: str | None) -> dict[str, Any]:
    engine = rt.engine
    with rt.db.read() as session:
        account = get_account(session, caller, caller.account_id or "")
        options = checkout_options(session, engine, caller, account, at=rt.now(), client_ip=ip)
        public = AccountPublic.model_validate(account).model_dump()
    return {
        "account": public,
        "plans": [p for p in plan_catalogue(engine) if p["paid"]],
        "channels": options.channels,
        "open_channels": options.open_channels,
        "offered": options.offered,
        "running": options.running,
        "zone": zone_of(engine, public["country"]),
    }


def _checkout_page(
    request: Request,
    viewer: Viewer,
    ip: str | None,
    *,
    form: dict[str, Any] | None = None,
    error: str | None = None,
    decision: dict[str, Any] | None = None,
    status: int = 200,
) -> HTMLResponse:
    ctx = _checkout_context(request.app.state.runtime, viewer.caller, ip)
    ctx.update({"form": form or {"term": "month"}, "error": error, "decision": decision})
    return render(request, "account/checkout.html", ctx, status=status, active="checkout")


@router.get("/account/checkout", response_class=HTMLResponse)
def checkout_form(request: Request, viewer: UserPage, ip: ClientIpDep) -> Response:
    """Plans and channels, each channel marked open or closed by the rules in force now."""
    return _checkout_page(request, viewer, ip)


@router.post("/account/checkout", response_class=HTMLResponse, dependencies=[CsrfChecked])
def checkout(
    request: Request,
    viewer: UserPage,
    ip: ClientIpDep,
    plan: Annotated[str, Form(max_length=200)] = "",
    channel: Annotated[str, Form(max_length=200)] = "",
    term: Annotated[str, Form(max_length=20)] = "month",
) -> Response:
    """Buy a plan through checkout (the ``purchase`` decision); a refusal shows its decision."""
    rt: Runtime = request.app.state.runtime
    form = {"plan": plan, "channel": channel, "term": term}
    try:
        body = parse_form(CheckoutCreate, {"account": viewer.caller.account_id, **form})
        sub, _ = subs.checkout(
            rt,
            caller=viewer.caller,
            account_id=body.account,
            plan=body.plan,
            channel=body.channel,
            term=body.term,
            client_ip=ip,
        )
    except MeridianError as exc:
        decision = refused_decision(exc)
        return _checkout_page(
            request,
            viewer,
            ip,
            form=form,
            error=exc.message,
            decision=decision,
            status=exc.http_status,
        )
    return RedirectResponse(f"/account/checkout/{sub.id}", status_code=303)


@router.get("/account/checkout/{subscription_id}", response_class=HTMLResponse)
def checkout_done(request: Request, subscription_id: IdPath, viewer: UserPage) -> Response:
    """One of the account's subscriptions, as checkout made it."""
    rt: Runtime = request.app.state.runtime
    with rt.db.read() as session:
        row = subs.get_subscription(session, viewer.caller, subscription_id)
        sub = SubscriptionPublic.model_validate(row).model_dump()
        account = get_account(session, viewer.caller, row.account_id)
        country = account.country
    plans = {p["id"]: p for p in plan_catalogue(rt.engine)}
    return render(
        request,
        "account/checkout-done.html",
        {"sub": sub, "plan": plans.get(sub["plan"]), "zone": zone_of(rt.engine, country)},
        active="checkout",
    )
