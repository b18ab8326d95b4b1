"""Rendering pages: the Jinja2 environment, the common context, and error pages.

Templates autoescape everything; a page gets ``viewer`` (who is signed in, or ``None``),
``csrf`` (the token its forms carry), ``nav`` (the sections the viewer's role may open) and
``active`` (the section it is in).
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any
from zoneinfo import ZoneInfo

from fastapi import Request
from fastapi.responses import HTMLResponse
from jinja2 import Environment, PackageLoader, select_autoescape

__all__ = ["environment", "nav_for", "render"]

_NAV: dict[str, list[tuple[str, str, str]]] = {
    # (section, label, path)
    "operator": [
        ("overview", "Overview", "/console"),
        ("policy", "Policy", "/console/policy"),
        ("accounts", "Accounts", "/console/accounts"),
        ("subscriptions", "Subscriptions", "/console/subscriptions"),
        ("partners", "Partners", "/console/partners"),
        ("reviews", "Reviews", "/console/reviews"),
        ("datacentres", "Data centres", "/console/datacentres"),
        ("meetings", "Meetings", "/console/meetings"),
        ("legal", "Government requests", "/console/legal"),
        ("log", "Log", "/console/log"),
        ("report", "Transparency report", "/console/report"),
    ],
    "partner": [
        ("customers", "Customers", "/partner"),
        ("subscriptions", "Subscriptions", "/partner/subscriptions"),
        ("transfers", "Transfers", "/partner/transfers"),
    ],
    "user": [
        ("account", "Account", "/account"),
        ("checkout", "Buy a plan", "/account/checkout"),
        ("meetings", "Meetings", "/account/meetings"),
        ("regions", "Meeting settings", "/account/settings"),
    ],
}
_PUBLIC_NAV = [
    ("signup", "Sign up", "/signup"),
    ("report", "Transparency report", "/report"),
    ("login", "Sign in", "/login"),
]

_env: Environment | None = None


def nav_for(role: str | None) -> list[tuple[str, str, str]]:
    return _NAV.get(role or "", _PUBLIC_NAV)


def _when(value: datetime | str | None, zone: str | None = None) -> str:
    """An instant as ``2020-08-23 00:00 UTC`` (or in ``zone``, with its abbreviation)."""
    if value is None or value == "":
        return "—"
    if isinstance(value, str):
        text = value
        try:
            value = datetime.fromisoformat(text.replace("Z", "+00:00"))
        except ValueError:
            return text
    if value.tzinfo is None:
        value = value.replace(tzinfo=UTC)
    if zone:
        local = value.astimezone(ZoneInfo(zone))
        return local.strftime("%Y-%m-%d %H:%M ") + (local.tzname() or zone)
    return value.astimezone(UTC).strftime("%Y-%m-%d %H:%M UTC")


def _number(value: int | float | None) -> str:
    if value is None:
        return "—"
    return f"{value:,}" if isinstance(value, int) else f"{value:,.2f}"


def _pretty(value: Any) -> str:
    return json.dumps(value, indent=2, ensure_ascii=False, default=str)


def environment() -> Environment:
    global _env
    if _env is None:
        env = Environment(
            loader=PackageLoader("meridian.web", "templates"),
            autoescape=select_autoescape(default=True, default_for_string=True),
            trim_blocks=True,
            lstrip_blocks=True,
        )
        env.filters["when"] = _when
        env.filters["number"] = _number
        env.filters["pretty"] = _pretty
        _env = env
    return _env


def render(
    request: Request,
    template: str,
    context: dict[str, Any] | None = None,
    *,
    status: int = 200,
    active: str | None = None,
) -> HTMLResponse:
    """``template`` rendered for ``request``'s viewer."""
    viewer = getattr(request.state, "viewer", None)
    rt = request.app.state.runtime
    ctx: dict[str, Any] = {
        "request": request,
        "viewer": viewer,
        "csrf": viewer.csrf if viewer is not None else "",
        "nav": nav_for(viewer.caller.role if viewer is not None else None),
        "active": active,
        "now": rt.now(),
        "clock_set": rt.settings.clock is not None,
    }
    ctx.update(context or {})
    html = environment().get_template(template).render(ctx)
    return HTMLResponse(html, status_code=status)
