"""Decisions over HTTP: one request, or a batch of up to 1,000, for platforms that only want answers."""

from __future__ import annotations

from typing import Any

import orjson
from fastapi import APIRouter, Request, Response

from ...errors import MeridianError, RequestError
from ...http.deps import CallerDep
from ...http.journal import DecisionJournal
from ...http.ratelimit import RateLimits
from ...policy.decision import Decision
from ...policy.request import _RequestWire, parse_request, parse_request_json
from ...wire import ErrorCode
from .common import errors, json_response

router = APIRouter(tags=["decisions"])
__all__ = ["router"]

BATCH_LIMIT = 1000

_REQUEST_SCHEMA: dict[str, Any] = _RequestWire.model_json_schema(
    ref_template="#/components/schemas/{model}"
)
_DEFS = _REQUEST_SCHEMA.pop("$defs", {})
_DECISION_EXAMPLE = {
    "action": "purchase",
    "at": "2020-08-23T09:00:00+08:00",
    "subject": {"type": "organization", "country": "CN", "ip": "114.114.114.114"},
    "resource": {"channel": "direct"},
}


def _request_body(schema: dict[str, Any]) -> dict[str, Any]:
    return {
        "requestBody": {
            "required": True,
            "content": {"application/json": {"schema": schema, "example": None}},
        }
    }


def _decision_body() -> dict[str, Any]:
    body = _request_body({"$ref": "#/components/schemas/DecisionRequest"})
    body["requestBody"]["content"]["application/json"]["example"] = _DECISION_EXAMPLE
    return body


def _batch_body() -> dict[str, Any]:
    body = _request_body(
        {
            "type": "object",
            "properties": {
                "requests": {
                    "type": "array",
                    "items": {"$ref": "#/components/schemas/DecisionRequest"},
                    "maxItems": BATCH_LIMIT,
                }
            },
            "required": ["requests"],
            "additionalProperties": False,
        }
    )
    body["requestBody"]["content"]["application/json"]["example"] = {
        "requests": [_DECISION_EXAMPLE]
    }
    return body


def decision_schemas() -> dict[str, Any]:
    """Components to add to the OpenAPI document for the decision request contract."""
    return {"DecisionRequest": _REQUEST_SCHEMA, **_DEFS}


_DECISION_RESPONSE: dict[int | str, dict[str, Any]] = {
    200: {
        "description": "the decision: `allow` or `deny`, with reasons, location evidence, alternatives and the bundle that decided",
        "content": {"application/json": {"schema": {"type": "object"}}},
    }
}


@router.post(
    "/v1/decisions",
    openapi_extra=_decision_body(),
    responses={**_DECISION_RESPONSE, **errors(401, 413, 429)},
    response_class=Response,
)
async def decide(request: Request, caller: CallerDep) -> Response:
    """Decide one request (the public contract). Roles: operator, partner, user."""
    limits: RateLimits = request.app.state.rate_limits
    await limits.hit("decisions", caller.token_id)
    body = await request.body()
    engine = request.app.state.runtime.engine
    decision = engine.decide(parse_request_json(body))
    journal: DecisionJournal = request.app.state.journal
    journal.add(caller.actor, decision.bundle.digest, (decision,))
    return json_response(decision.to_dict())


@router.post(
    "/v1/decisions:batch",
    openapi_extra=_batch_body(),
    responses={
        200: {
            "description": 'one entry per request, in order: a decision, or `{"error": …}` for a request that could not be decided',
            "content": {"application/json": {"schema": {"type": "object"}}},
        },
        **errors(401, 413, 429),
    },
    response_class=Response,
)
async def decide_batch(request: Request, caller: CallerDep) -> Response:
    """Decide up to 1,000 requests in one call; a bad request fails alone. Roles: operator, partner, user."""
    body = await request.body()
    try:
        # orjson reads a batch in a fifth of json's time (bench/api.py); it is also stricter
        # (no NaN, no lone surrogates), which only refuses more.
        data = orjson.loads(body)
    except (ValueError, UnicodeDecodeError, RecursionError):
        raise RequestError('batch: malformed json: expected `{"requests": [...]}`') from None
    if (
        not isinstance(data, dict)
        or set(data) != {"requests"}
        or not isinstance(data["requests"], list)
    ):
        raise RequestError("batch: expected an object with one field, `requests`, a list")
    items = data["requests"]
    if len(items) > BATCH_LIMIT:
        raise RequestError(f"batch: {len(items)} requests: at most {BATCH_LIMIT} per call")
    if items:  # each request of a batch counts as one decision
        limits: RateLimits = request.app.state.rate_limits
        await limits.hit("decisions", caller.token_id, cost=len(items))
    engine = request.app.state.runtime.engine
    decide = engine.decide
    out: list[dict[str, Any]] = []
    kept: list[Decision] = []
    for index, item in enumerate(items):
        try:
            decision = decide(parse_request(item))
        except MeridianError as exc:
            out.append(
                {"error": {"code": ErrorCode.INVALID, "message": exc.message}, "index": index}
            )
            continue
        kept.append(decision)
        out.append(decision.to_dict())
    if kept:
        journal: DecisionJournal = request.app.state.journal
        journal.add(caller.actor, kept[-1].bundle.digest, kept)
    return json_response({"decisions": out, "count": len(out)})


@router.post("/v1/noop", include_in_schema=False)
async def noop(request: Request, caller: CallerDep) -> Response:
    """The benchmark's baseline: the same authentication and body read as a decision, no decision."""
    await request.body()
    return json_response({"ok": True})
