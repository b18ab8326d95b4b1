"""Pages: the directory — accounts, subscriptions, partners, and the accounts waiting for review.

Every list and detail comes from the service function the API route for it calls, with the
viewer's caller (:mod:`meridian.identity.accounts`, :mod:`meridian.commerce.subscriptions`,
:mod:`meridian.commerce.partners`), so a page shows what the viewer's token could read through
the API and nothing more. The two writes — an operator's verdict on a pending account and a
partner's contact — go through :func:`~meridian.identity.accounts.review` and
:func:`~meridian.commerce.partners.set_contact`, as ``POST /v1/accounts/{id}/review`` and
``PATCH /v1/partners/{id}`` do, and are recorded the same way.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Annotated, Any, Literal
from urllib.parse import urlencode

from fastapi import APIRouter, Form, Query, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from ...commerce import partners as partner_registry
from ...commerce.plans import entitlements
from ...commerce.subscriptions import list_subscriptions
from ...errors import InputError, MeridianError, shown
from ...http.schemas import IdPath
from ...identity import accounts
from ...runtime import Runtime
from ...storage.models import Account, AccountStatus, Notice, SubscriptionStatus
from ...storage.paging import page as page_of
from ...text import plain_text
from ..deps import CsrfChecked, Viewer, page_for
from ..render import render

router = APIRouter(include_in_schema=False)
__all__ = ["Paging", "router"]

Operator = Annotated[Viewer, page_for("operator")]

#: rows per page of a listing
PAGE_SIZE = 50
ACCOUNT_STATUSES = tuple(AccountStatus)
SUBSCRIPTION_STATUSES = tuple(SubscriptionStatus)
_COUNTRY = re.compile(r"[A-Z]{2}")
_IDENT = re.compile(r"[A-Za-z0-9_.\-]{1,100}")
_PageNumber = Annotated[int, Query(ge=1, le=200_000)]
#: a filter from the query string: bounded, and no control character (a NUL would reach the database)
_Filter = Annotated[str, Query(max_length=100, pattern=r"^[^\x00-\x1f\x7f]*$")]


@dataclass(frozen=True, slots=True)
class Paging:
    """Where a page of a listing sits in the whole: what the pager under a table says."""

    number: int
    size: int
    count: int
    #: the listing's filters, kept in the previous/next links
    query: dict[str, str]

    @property
    def first(self) -> int:
        return 0 if self.count == 0 else (self.number - 1) * self.size + 1

    @property
    def last(self) -> int:
        return min(self.number * self.size, self.count)

    @property
    def offset(self) -> int:
        return (self.number - 1) * self.size

    def link(self, number: int) -> str | None:
        """The URL of page ``number``, or ``None`` if there is no such page."""
        if number < 1 or (number - 1) * self.size >= self.count:
            return None
        return "?" + urlencode({**{k: v for k, v in self.query.items() if v}, "page": number})


def _status_error(value: str, allowed: tuple[str, ...], what: str) -> InputError:
    return InputError(
        f"unknown {what} status `{shown(value)}`: expected one of {', '.join(allowed)}"
    )


# -- accounts ----------------------------------------------------------------------------------


@router.get("/console/accounts", response_class=HTMLResponse)
def account_list(
    request: Request,
    viewer: Operator,
    country: _Filter = "",
    status: _Filter = "",
    page: _PageNumber = 1,
) -> HTMLResponse:
    """Accounts, newest first, filtered by country and status: GET /v1/accounts."""
    rt: Runtime = request.app.state.runtime
    code = country.strip().upper()
    error: MeridianError | None = None
    if code and not _COUNTRY.fullmatch(code):
        error = InputError(f"invalid country `{shown(country)}`: expected a two-letter ISO code")
    elif status and status not in ACCOUNT_STATUSES:
        error = _status_error(status, ACCOUNT_STATUSES, "account")
    rows: list[Account] = []
    count = 0
    paging = Paging(page, PAGE_SIZE, 0, {"country": code, "status": status})
    if error is None:
        with rt.db.read() as session:
            rows, count = accounts.list_accounts(
                session,
                viewer.caller,
                country=code or None,
                status=status or None,
                limit=PAGE_SIZE,
                offset=paging.offset,
            )
        paging = Paging(page, PAGE_SIZE, count, paging.query)
    return render(
        request,
        "console/accounts.html",
        {
            "title": "Accounts",
            "rows": rows,
            "paging": paging,
            "country": code,
            "status": status,
            "statuses": ACCOUNT_STATUSES,
            "error": None if error is None else error.message,
        },
        status=200 if error is None else error.http_status,
        active="accounts",
    )


@router.get("/console/accounts/{account_id}", response_class=HTMLResponse)
def account_detail(
    request: Request, viewer: Operator, account_id: IdPath, reviewed: str = ""
) -> HTMLResponse:
    """One account with its subscriptions, what it may do now, and its notices."""
    rt: Runtime = request.app.state.runtime
    with rt.db.read() as session:
        # a missing account raises NotFoundError: the 404 page, as the API's 404
        account = accounts.get_account(session, viewer.caller, account_id)
        subs, sub_count = list_subscriptions(
            session, viewer.caller, account_id=account.id, limit=PAGE_SIZE
        )
        allowed = entitlements(session, rt.engine, account, rt.now())
        notices, notice_count = page_of(
            session,
            Notice,
            [Notice.account_id == account.id],
            (Notice.created_at.desc(), Notice.id),
            limit=PAGE_SIZE,
            offset=0,
        )
    return render(
        request,
        "console/accounts_detail.html",
        {
            "title": account.name,
            "account": account,
            "subs": subs,
            "sub_count": sub_count,
            "entitlements": allowed,
            "decision": allowed["host_decision"],
            "notices": notices,
            "notice_count": notice_count,
            "reviewed": reviewed,
            "note": "",
            "error": None,
        },
        active="accounts",
    )


# -- subscriptions -----------------------------------------------------------------------------


@router.get("/console/subscriptions", response_class=HTMLResponse)
def subscription_list(
    request: Request,
    viewer: Operator,
    status: _Filter = "",
    account: _Filter = "",
    page: _PageNumber = 1,
) -> HTMLResponse:
    """Subscriptions, newest first, filtered by status or account: GET /v1/subscriptions."""
    rt: Runtime = request.app.state.runtime
    account = account.strip()
    error: MeridianError | None = None
    if status and status not in SUBSCRIPTION_STATUSES:
        error = _status_error(status, SUBSCRIPTION_STATUSES, "subscription")
    elif account and not _IDENT.fullmatch(account):
        error = InputError(f"invalid account id `{shown(account)}`")
    paging = Paging(page, PAGE_SIZE, 0, {"status": status, "account": account})
    rows: list[Any] = []
    if error is None:
        with rt.db.read() as session:
            rows, count = list_subscriptions(
                session,
                viewer.caller,
                account_id=account or None,
                status=status or None,
                limit=PAGE_SIZE,
                offset=paging.offset,
            )
        paging = Paging(page, PAGE_SIZE, count, paging.query)
    return render(
        request,
        "console/subscriptions.html",
        {
            "title": "Subscriptions",
            "rows": rows,
            "paging": paging,
            "status": status,
            "account": account,
            "statuses": SUBSCRIPTION_STATUSES,
            "error": None if error is None else error.message,
        },
        status=200 if error is None else error.http_status,
        active="subscriptions",
    )


# -- partners ----------------------------------------------------------------------------------


def _zones(rt: Runtime) -> dict[str, str]:
    return {code: info.zone for code, info in rt.engine.bundle.document.jurisdictions.items()}


@router.get("/console/partners", response_class=HTMLResponse)
def partner_list(request: Request, viewer: Operator, jurisdiction: _Filter = "") -> HTMLResponse:
    """Every partner in the registry: GET /v1/partners."""
    rt: Runtime = request.app.state.runtime
    code = jurisdiction.strip().upper()
    error: MeridianError | None = None
    rows: list[dict[str, Any]] = []
    if code and not _COUNTRY.fullmatch(code):
        error = InputError(
            f"invalid jurisdiction `{shown(jurisdiction)}`: expected a two-letter ISO code"
        )
    else:
        with rt.db.read() as session:
            rows = [
                partner_registry.partner_public(r)
                for r in partner_registry.list_partners(session, jurisdiction=code or None)
            ]
    return render(
        request,
        "console/partners.html",
        {
            "title": "Partners",
            "rows": rows,
            "jurisdiction": code,
            "zones": _zones(rt),
            "error": None if error is None else error.message,
        },
        status=200 if error is None else error.http_status,
        active="partners",
    )


def _partner_page(
    request: Request,
    partner_id: str,
    *,
    contact: str | None = None,
    error: MeridianError | None = None,
    saved: bool = False,
) -> HTMLResponse:
    rt: Runtime = request.app.state.runtime
    with rt.db.read() as session:
        partner = partner_registry.partner_public(partner_registry.get_partner(session, partner_id))
    return render(
        request,
        "console/partners_detail.html",
        {
            "title": partner["name"],
            "partner": partner,
            "zones": _zones(rt),
            "contact": partner["contact"] if contact is None else contact,
            "saved": saved,
            "error": None if error is None else error.message,
        },
        status=200 if error is None else error.http_status,
        active="partners",
    )


@router.get("/console/partners/{partner_id}", response_class=HTMLResponse)
def partner_detail(
    request: Request, viewer: Operator, partner_id: IdPath, saved: str = ""
) -> HTMLResponse:
    """One partner: where and when it may sell, and how customers reach it."""
    return _partner_page(request, partner_id, saved=bool(saved))


@router.post("/console/partners/{partner_id}/contact", dependencies=[CsrfChecked])
def partner_contact(
    request: Request,
    viewer: Operator,
    partner_id: IdPath,
    contact: Annotated[str, Form(max_length=10_000)] = "",
) -> Response:
    """Set how customers reach the partner (empty: none), as PATCH /v1/partners/{id} does."""
    rt: Runtime = request.app.state.runtime
    value = contact.strip() or None
    try:
        if value is not None:
            _check_text(value, 300, "contact")
        partner_registry.set_contact(rt, caller=viewer.caller, partner_id=partner_id, contact=value)
    except MeridianError as exc:
        return _partner_page(request, partner_id, contact=contact, error=exc)
    return RedirectResponse(f"/console/partners/{partner_id}?saved=1", status_code=303)


def _check_text(value: str, limit: int, what: str) -> None:
    """The API's checks on free text: bounded, one line, no control characters."""
    if len(value) > limit:
        raise InputError(f"the {what} has {len(value)} characters: at most {limit}")
    try:
        plain_text(value)
    except ValueError as exc:
        raise InputError(f"invalid {what}: {exc}") from None


# -- reviews -----------------------------------------------------------------------------------


def _reviews_page(
    request: Request,
    viewer: Viewer,
    page: int,
    *,
    done: dict[str, str] | None = None,
    error: MeridianError | None = None,
    failed: str | None = None,
    note: str = "",
) -> HTMLResponse:
    rt: Runtime = request.app.state.runtime
    with rt.db.read() as session:
        rows, count = accounts.list_accounts(
            session,
            viewer.caller,
            status=AccountStatus.PENDING_REVIEW,
            limit=PAGE_SIZE,
            offset=(page - 1) * PAGE_SIZE,
        )
    return render(
        request,
        "console/reviews.html",
        {
            "title": "Reviews",
            "rows": rows,
            "paging": Paging(page, PAGE_SIZE, count, {}),
            "done": done,
            "error": None if error is None else error.message,
            "failed": failed,
            "note": note,
        },
        status=200 if error is None else error.http_status,
        active="reviews",
    )


@router.get("/console/reviews", response_class=HTMLResponse)
def review_list(
    request: Request,
    viewer: Operator,
    page: _PageNumber = 1,
    account: _Filter = "",
    verdict: _Filter = "",
) -> HTMLResponse:
    """Accounts waiting for an operator's review (pilot-era company codes), newest first."""
    done = {"account": account, "verdict": verdict} if account and verdict else None
    return _reviews_page(request, viewer, page, done=done)


@router.post("/console/reviews/{account_id}", dependencies=[CsrfChecked])
def review_account(
    request: Request,
    viewer: Operator,
    account_id: IdPath,
    verdict: Annotated[Literal["approve", "reject"], Form()],
    note: Annotated[str, Form(max_length=10_000)] = "",
    back: Annotated[str, Form(max_length=20)] = "reviews",
) -> Response:
    """Approve or reject a pending account, as POST /v1/accounts/{id}/review does."""
    rt: Runtime = request.app.state.runtime
    text = note.strip() or None
    try:
        if text is not None:
            _check_text(text, 2000, "note")
        row = accounts.review(
            rt, caller=viewer.caller, account_id=account_id, approve=verdict == "approve", note=text
        )
    except MeridianError as exc:
        return _reviews_page(request, viewer, 1, error=exc, failed=account_id, note=note)
    if back == "account":
        return RedirectResponse(
            f"/console/accounts/{row.id}?" + urlencode({"reviewed": row.status}), status_code=303
        )
    query = urlencode({"account": row.id, "verdict": row.status})
    return RedirectResponse(f"/console/reviews?{query}", status_code=303)
