"""Shared route pieces: the error responses each endpoint documents, JSON out."""

from __future__ import annotations

import json
from typing import Any

import orjson
from fastapi import Response

from ...http.schemas import ErrorPublic

__all__ = ["errors", "json_encode", "json_response"]

_DESCRIPTIONS = {
    401: "no valid api token",
    403: "the caller's role may not do this, or the policy refused it (`denied`, with the decision)",
    404: "no such object, or not one the caller may see",
    409: "the action clashes with the current state, or the same `Idempotency-Key` is in flight",
    413: "request body too large (`max_body_bytes`, 8,388,608 by default, for every method)",
    422: "invalid input; `fields` names each failing field",
    429: "a rate limit was passed (sign-ups, sign-ins, failed authentications, decisions or "
    "joins): `Retry-After` says when to come back",
    503: "the database is unavailable",
}


def errors(*codes: int) -> dict[int | str, dict[str, Any]]:
    """OpenAPI ``responses`` for the given error statuses (413, 422, 429 and 503 always).

    413 and 429 are always possible: the body limit is every method's, and an address that used
    up its failed authentications is refused on every endpoint that reads a token.
    """
    out: dict[int | str, dict[str, Any]] = {}
    for code in sorted({*codes, 413, 422, 429, 503}):
        out[code] = {"model": ErrorPublic, "description": _DESCRIPTIONS[code]}
    return out


# orjson writes a decision in 0.4 µs where ``json.dumps`` takes 6.5 µs: a sixth of what a decision
# costs inside ``POST /v1/decisions:batch`` (bench/api.py; BENCHMARKS.md, "HTTP API"). For the
# types it serialises natively — str, int, bool, None, list, tuple, dict with str keys — its
# bytes equal ``json.dumps(..., ensure_ascii=False, separators=(",", ":"))``'s, character escapes
# included (checked over every code point). Subclasses (enum members), datetimes and dataclasses
# are passed through to ``_fallback``, which raises, and ``json.dumps`` then writes the body (or
# refuses it) exactly as before; so do ints beyond 64 bits and dicts with non-str keys. What
# differs: floats (orjson writes ``1e16`` where json writes ``1e+16``, the same number, and NaN as
# ``null``), and UUIDs and plain ``Enum`` members, which orjson writes and json refuses. No body
# carries any of these today.
_ORJSON_OPTIONS = (
    orjson.OPT_PASSTHROUGH_SUBCLASS
    | orjson.OPT_PASSTHROUGH_DATETIME
    | orjson.OPT_PASSTHROUGH_DATACLASS
)


def _fallback(value: Any) -> Any:
    raise TypeError(type(value).__name__)


def json_encode(body: Any) -> bytes:
    """``body`` as compact UTF-8 JSON.

    A string UTF-8 cannot carry (a lone surrogate a client sent as ``"\\ud800"``, quoted back
    in an error message) is written as a ``\\u`` escape, as the error handlers do.
    """
    try:
        return orjson.dumps(body, default=_fallback, option=_ORJSON_OPTIONS)
    except TypeError:
        text = json.dumps(body, ensure_ascii=False, separators=(",", ":"))
    try:
        return text.encode()
    except UnicodeEncodeError:
        return json.dumps(body, separators=(",", ":")).encode()


def json_response(body: Any, status_code: int = 200) -> Response:
    return Response(json_encode(body), status_code=status_code, media_type="application/json")
