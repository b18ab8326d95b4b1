"""Pages: sign-up (``/signup``), open to anyone, through the same ``register`` decision as the API.

A sign-up page does what ``POST /v1/accounts`` without a token does: the evidence is what the
person declares and the address the request came from (read through the trusted-proxy rule, as
the API reads it). An admitted sign-up signs the browser in with the new account's user token and
lands on ``/account``, which shows the token once. A refusal is shown with its reasons and with
what the person can do instead, worked out from the rules that refused and from what the same
bundle still allows them (joining meetings, buying through a partner) rather than from a table
of countries.
"""

from __future__ import annotations

from datetime import datetime
from functools import cache
from typing import Annotated, Any

from fastapi import APIRouter, Form, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from sqlalchemy import select

from ...errors import DeniedError, MeridianError
from ...gate import ask
from ...geography.jurisdictions import ALL_JURISDICTIONS, UNKNOWN, jurisdiction_name
from ...http.deps import ClientIpDep, SignupLimited
from ...http.errors import refused_decision
from ...http.schemas import AccountCreate
from ...http.session import SessionSeal, secure_cookies
from ...identity import accounts
from ...identity.sessions import new_session_id
from ...policy.compiled import condition_reads
from ...policy.engine import Engine
from ...policy.request import epoch_seconds
from ...runtime import Runtime
from ...storage.models import Partner
from ..deps import CsrfChecked, MaybeViewerDep
from ..forms import parse_form
from ..render import render
from .auth import start_session

router = APIRouter(include_in_schema=False)
__all__ = ["NEW_TOKEN_COOKIE", "advice", "country_choices", "router"]

#: a one-shot cookie carrying the new account's token (sealed) to ``/account``, which shows it once
NEW_TOKEN_COOKIE = "meridian_new_token"  # noqa: S105 - a cookie name, not a secret
_PLURAL = {"organization": "organisations", "individual": "individuals"}


@cache
def country_choices() -> tuple[tuple[str, str], ...]:
    """Every jurisdiction as (code, a person's name for it), sorted by name."""
    return tuple(sorted(((c, jurisdiction_name(c)) for c in ALL_JURISDICTIONS), key=lambda p: p[1]))


def _rules_read(engine: Engine, action: str, jurisdiction: str, at: datetime) -> set[str]:
    """The facts read by the rules in force for ``action`` in ``jurisdiction`` at ``at``."""
    specs = {r.id: r for r in engine.bundle.document.rules}
    forbids, permits = engine.bundle.segment(action, jurisdiction, epoch_seconds(at))
    reads: set[str] = set()
    for rule in (*forbids, *permits):
        spec = specs.get(rule.id)
        if spec is not None:
            reads |= condition_reads(spec.when)
    return reads


def advice(
    rt: Runtime, decision: dict[str, Any], *, type: str, country: str, ip: str | None
) -> list[str]:
    """What a refused applicant can do instead, one sentence each, derived from the bundle.

    Each refusing rule is read for what it tests: a rule on the organisation's code means the code
    is what to fix (the most specific fact: such a rule tests the type too); a rule on the
    applicant's type alone means the other type may sign up; a refusal
    for want of a location means the request placed the person nowhere. Then the same bundle is
    asked what is still open to the person where they were judged to be: joining meetings (the
    ``join`` decision for the same evidence) and the partners authorised there.
    """
    engine = rt.engine
    at = rt.now()
    specs = {r.id: r for r in engine.bundle.document.rules}
    out: list[str] = []
    places: list[str] = []
    for reason in decision.get("reasons", []):
        if reason.get("effect") != "forbid":
            continue
        where = str(reason.get("jurisdiction", UNKNOWN))
        spec = specs.get(str(reason.get("rule")))
        reads = condition_reads(spec.when) if spec is not None else frozenset()
        if where == UNKNOWN:
            text = (
                "Say which country you are in, and sign up from a connection that shows it: "
                "a private or unlisted address places you nowhere, and Meridian does not guess."
            )
        elif "uscc" in reads:
            text = (
                "Give the organisation's Unified Social Credit Code exactly as on its business "
                "licence: 18 characters, digits and capital letters without I, O, S, V or Z, the "
                "last one a check character."
            )
        elif "type" in reads:
            other = "organization" if type == "individual" else "individual"
            text = f"Sign-ups in {jurisdiction_name(where)} are for {_PLURAL[other]}: "
            if other == "organization":
                text += "register the organisation you work for"
                if "uscc" in _rules_read(engine, "register", where, at):
                    text += (
                        ", with its Unified Social Credit Code (the 18 characters on its "
                        "business licence)"
                    )
                text += "."
            else:
                text += "sign up in your own name."
        else:
            text = f"The rule `{reason.get('rule')}` refuses this in {jurisdiction_name(where)}."
        if text not in out:
            out.append(text)
        if where != UNKNOWN and where not in places:
            places.append(where)
    if not out:
        return out
    _, join = ask(
        engine, action="join", at=at, subject={"type": type, "country": country, "ip": ip}
    )
    if join.allowed:
        out.append(
            "You can still join meetings you are invited to as a participant, without an account."
        )
    with rt.db.read() as session:
        contacts = {pid: c for pid, c in session.execute(select(Partner.id, Partner.contact))}
    for where in places:
        partners = engine.bundle.authorised_partners(where, epoch_seconds(at))
        if partners:
            names = ", ".join(
                p.name + (f" ({c})" if (c := p.contact or contacts.get(p.id)) else "")
                for p in partners
            )
            out.append(
                f"Partners authorised in {jurisdiction_name(where)} can register an organisation "
                f"and sell it a plan: {names}."
            )
    return out


def _form_page(
    request: Request,
    form: dict[str, Any],
    *,
    error: str | None = None,
    decision: dict[str, Any] | None = None,
    todo: list[str] | None = None,
    status: int = 200,
) -> HTMLResponse:
    return render(
        request,
        "signup.html",
        {
            "form": form,
            "error": error,
            "decision": decision,
            "advice": todo or [],
            "countries": country_choices(),
        },
        status=status,
        active="signup",
    )


@router.get("/signup", response_class=HTMLResponse)
async def signup_form(request: Request, viewer: MaybeViewerDep) -> HTMLResponse:
    """The sign-up form."""
    return _form_page(request, {"type": "organization"})


@router.post("/signup", response_class=HTMLResponse, dependencies=[CsrfChecked, SignupLimited])
def signup(
    request: Request,
    ip: ClientIpDep,
    viewer: MaybeViewerDep,
    type: Annotated[str, Form(max_length=20)] = "",
    name: Annotated[str, Form(max_length=400)] = "",
    country: Annotated[str, Form(max_length=10)] = "",
    org_id: Annotated[str, Form(max_length=200)] = "",
    email: Annotated[str, Form(max_length=400)] = "",
) -> Response:
    """Sign up: the ``register`` decision, with the client's address as evidence."""
    rt: Runtime = request.app.state.runtime
    form = {
        "type": type,
        "name": name,
        "country": country.strip().upper(),
        "org_id": org_id,
        "email": email,
    }
    try:
        body = parse_form(AccountCreate, form)
        result = accounts.register(
            rt,
            caller=None,
            type=body.type,
            name=body.name,
            country=body.country,
            org_id=body.org_id,
            email=body.email,
            client_ip=ip,
        )
    except DeniedError as exc:
        decision = refused_decision(exc) or {}
        todo = advice(rt, decision, type=type, country=form["country"], ip=ip)
        return _form_page(
            request, form, error=exc.message, decision=decision, todo=todo, status=403
        )
    except MeridianError as exc:
        return _form_page(request, form, error=exc.message, status=exc.http_status)
    assert result.token is not None  # INVARIANT: a self sign-up always gets its user token
    response = RedirectResponse("/account", status_code=303)
    start_session(request, response, result.token)
    seal: SessionSeal = request.app.state.sessions
    response.set_cookie(
        NEW_TOKEN_COOKIE,
        # shows the new token once on /account; its session id names no session
        seal.seal(result.token, sid=new_session_id()),
        max_age=600,
        httponly=True,
        samesite="strict",
        secure=secure_cookies(request),
        path="/account",
    )
    return response
