"""The pages, one module per area; :data:`ROUTERS` is every page router, in the order mounted.

``auth`` (sign-in, the front page); the operator console: ``overview``, ``policy``, ``policy_diff``,
``changes`` (proposed bundle changes: diff, replay, approval),
``directory`` (accounts, subscriptions, partners, reviews), ``datacentres`` (the map),
``legal`` (government requests), ``log``, ``report``; the partner portal: ``partner``; the user
pages: ``signup``, ``account`` (home, checkout), ``meeting`` (meetings, settings, the meeting
page).
"""

from __future__ import annotations

from fastapi import APIRouter

from . import (
    account,
    auth,
    changes,
    datacentres,
    directory,
    legal,
    log,
    meeting,
    overview,
    partner,
    policy,
    policy_diff,
    report,
    signup,
)

__all__ = ["ROUTERS"]

ROUTERS: list[APIRouter] = [
    m.router
    for m in (
        auth,
        overview,
        policy,
        policy_diff,
        changes,
        directory,
        datacentres,
        legal,
        log,
        report,
        partner,
        signup,
        account,
        meeting,
    )
]
