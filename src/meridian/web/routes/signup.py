"""Pages: sign-up (``/signup``), open to anyone, through the same ``register`` decision as the API.

A sign-up page does what ``POST /v1/accounts`` without a token does: the evidence is what the
person declares and the address the request came from (read through the trusted-proxy rule, as
the API reads it). An admitted sign-up signs the browser in with the new account's user token and
lands on ``/account``, which shows the token once. A refusal is shown with its reasons and with
what the person can do instead: the advice the refusal carries, which
:mod:`meridian.policy.explain` works out from the rules that refused and from what the same
bundle still allows them (joining meetings, buying through a partner) rather than from a table
of countries.
"""

from __future__ import annotations

from functools import cache
from typing import Annotated, Any

from fastapi import APIRouter, Form, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from ...errors import DeniedError, MeridianError
from ...geography.jurisdictions import ALL_JURISDICTIONS, jurisdiction_name
from ...http.deps import ClientIpDep, SignupLimited
from ...http.errors import refused_decision
from ...http.schemas import AccountCreate
from ...http.session import SessionSeal, secure_cookies
from ...identity import accounts
from ...identity.sessions import new_session_id
from ...runtime import Runtime
from ..deps import CsrfChecked, MaybeViewerDep
from ..forms import parse_form
from ..render import render
from .auth import start_session

router = APIRouter(include_in_schema=False)
__all__ = ["NEW_TOKEN_COOKIE", "country_choices", "router"]

#: a one-shot cookie carrying the new account's token (sealed) to ``/account``, which shows it once
NEW_TOKEN_COOKIE = "meridian_new_token"  # noqa: S105 - a cookie name, not a secret


@cache
def country_choices() -> tuple[tuple[str, str], ...]:
    """Every jurisdiction as (code, a person's name for it), sorted by name."""
    return tuple(sorted(((c, jurisdiction_name(c)) for c in ALL_JURISDICTIONS), key=lambda p: p[1]))


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
        decision = refused_decision(exc)
        todo = [a.text for a in exc.advice or ()]
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
