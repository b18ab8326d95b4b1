"""Shared route pieces: the error responses each endpoint documents, JSON out."""

from __future__ import annotations

import json
from typing import Any

from fastapi import Response

from ..schemas import ErrorPublic

__all__ = ["errors", "json_response"]

_DESCRIPTIONS = {
    401: "no valid api token",
    403: "the caller's role may not do this, or the policy refused it (`denied`, with the decision)",
    404: "no such object, or not one the caller may see",
    409: "the action clashes with the current state, or the same `Idempotency-Key` is in flight",
    413: "request body too large",
    422: "invalid input; `fields` names each failing field",
    503: "the database is unavailable",
}


def errors(*codes: int) -> dict[int | str, dict[str, Any]]:
    """OpenAPI ``responses`` for the given error statuses (422 and 503 always)."""
    out: dict[int | str, dict[str, Any]] = {}
    for code in sorted({*codes, 422, 503}):
        out[code] = {"model": ErrorPublic, "description": _DESCRIPTIONS[code]}
    return out


def json_response(body: Any, status_code: int = 200) -> Response:
    return Response(
        json.dumps(body, ensure_ascii=False, separators=(",", ":")).encode(),
        status_code=status_code,
        media_type="application/json",
    )
