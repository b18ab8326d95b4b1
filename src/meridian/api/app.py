"""``install_api(app)``: the API's routes, its docs and its OpenAPI schema on the service's app.

The composition root (:func:`meridian.server.create_app`) calls it beside the pages'
``install_web``; neither door imports the other. What both share lives in :mod:`meridian.http`.
"""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI
from fastapi.openapi.utils import get_openapi

from . import docs
from .routes import (
    accounts,
    admin,
    changes,
    commerce,
    decisions,
    legal,
    meetings,
    partners,
    reports,
    tiles,
)
from .routes import log as log_routes

__all__ = ["API_DESCRIPTION", "install_api"]

API_DESCRIPTION = """\
May this person do this, here, now — and why? Meridian decides against the policy bundle in
force, enforces the answer on sign-up, checkout and renewal, and records every decision and
change with the bundle digest that decided it.

Authenticate with `Authorization: Bearer <token>`; each endpoint names the roles that may call
it. Errors are `{"error": {"code", "message"}}`; a policy refusal is 403 `denied` with the
decision and its alternatives. POSTs that create things accept `Idempotency-Key`.
"""


def install_api(app: FastAPI) -> None:
    """Add the API's routers, ``/docs`` and ``/redoc``, and its OpenAPI schema to ``app``."""
    for module in (
        admin,
        changes,
        decisions,
        accounts,
        commerce,
        partners,
        meetings,
        log_routes,
        tiles,
        legal,
        reports,
    ):
        app.include_router(module.router)
    app.include_router(docs.router)

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            schema = get_openapi(
                title=app.title,
                version=app.version,
                description=app.description,
                routes=app.routes,
            )
            schema.setdefault("components", {}).setdefault("schemas", {}).update(
                decisions.decision_schemas()
            )
            app.openapi_schema = schema
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]
