"""The one error handler of the HTTP door: every error becomes ``{"error": {...}}`` with its status.

Body shape, for every status::

    {"error": {"code": "not_found", "message": "no account `acct_…`"}}

422 adds ``fields`` (each failing field and why); a policy refusal (403 ``denied``) adds
``decision``, the full decision with its reasons and alternatives, and for a refused sign-up
``advice``, what the person can do instead (see :mod:`meridian.policy.explain`).
"""

from __future__ import annotations

import json
import logging
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from starlette.exceptions import HTTPException as StarletteHTTPException

from ..errors import (
    AuthenticationError,
    BundleError,
    ConflictError,
    DeniedError,
    ForbiddenError,
    InputError,
    LogTamperedError,
    MeridianError,
    NotFoundError,
    shown,
)
from ..wire import ErrorCode

__all__ = ["ErrorResponse", "error_body", "install_error_handlers", "refused_decision"]

log = logging.getLogger("meridian.api")

_CODES: list[tuple[type[MeridianError], ErrorCode]] = [
    (LogTamperedError, ErrorCode.LOG_INTEGRITY),
    (DeniedError, ErrorCode.DENIED),
    (ForbiddenError, ErrorCode.FORBIDDEN),
    (AuthenticationError, ErrorCode.UNAUTHENTICATED),
    (NotFoundError, ErrorCode.NOT_FOUND),
    (ConflictError, ErrorCode.CONFLICT),
    (InputError, ErrorCode.INVALID),
]
_STATUS_CODES = {
    400: ErrorCode.BAD_REQUEST,
    401: ErrorCode.UNAUTHENTICATED,
    403: ErrorCode.FORBIDDEN,
    404: ErrorCode.NOT_FOUND,
    405: ErrorCode.METHOD_NOT_ALLOWED,
    409: ErrorCode.CONFLICT,
    413: ErrorCode.TOO_LARGE,
    415: ErrorCode.UNSUPPORTED_MEDIA_TYPE,
    422: ErrorCode.INVALID,
    429: ErrorCode.RATE_LIMITED,
    503: ErrorCode.UNAVAILABLE,
}


class ErrorResponse(JSONResponse):
    """A JSON error body that always encodes, whatever client input its message quotes."""

    def render(self, content: Any) -> bytes:
        try:
            return super().render(content)
        except UnicodeEncodeError:  # a lone surrogate the client sent, quoted: escape it
            return json.dumps(content, separators=(",", ":")).encode()


def error_body(code: ErrorCode, message: str, **extra: Any) -> dict[str, Any]:
    return {"error": {"code": code, "message": message, **extra}}


def error_code(exc: MeridianError) -> ErrorCode:
    for cls, code in _CODES:
        if isinstance(exc, cls):
            return code
    return _STATUS_CODES.get(exc.http_status, ErrorCode.ERROR)


def refused_decision(exc: BaseException) -> dict[str, Any] | None:
    """The public JSON form of the decision a :class:`DeniedError` carries; ``None`` otherwise.

    The one place a door turns a refusal's frozen decision into what it shows (the API's body,
    the pages' context).
    """
    if isinstance(exc, DeniedError) and exc.decision is not None:
        return exc.decision.to_dict()
    return None


def _field(loc: tuple[Any, ...]) -> str:
    return ".".join(str(p) for p in loc)


def validation_fields(errors: list[dict[str, Any]]) -> list[dict[str, str]]:
    out = []
    for err in errors:
        msg = str(err.get("msg", "is invalid"))
        msg = (msg[:1].lower() + msg[1:]).replace("\n", " ")
        out.append({"field": _field(tuple(err.get("loc", ()))), "message": msg})
    return out


def _as_page(request: Request, exc: Exception, status: int, message: str) -> Response | None:
    """The web pages' rendering of an error on one of their paths (see meridian.web.app)."""
    page_error = getattr(request.app.state, "page_error", None)
    if page_error is None:
        return None
    response: Response | None = page_error(request, exc, status, message)
    return response


def install_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(MeridianError)
    async def meridian_error(request: Request, exc: MeridianError) -> Response:
        extra: dict[str, Any] = {}
        decision = refused_decision(exc)
        if decision is not None:
            extra["decision"] = decision
        if isinstance(exc, DeniedError) and exc.advice is not None:
            # a refused sign-up: what the person can do instead
            extra["advice"] = [a.to_dict() for a in exc.advice]
        if isinstance(exc, BundleError):  # every problem of a bundle, each at its line
            extra["problems"] = [
                {"source": p.source, "line": p.line, "message": p.message} for p in exc.problems
            ]
        message = exc.message.splitlines()[0] if exc.message else "refused"
        if exc.http_status >= 500:
            log.error("%s", exc.message)
        page = _as_page(request, exc, exc.http_status, message)
        retry_after = getattr(exc, "retry_after", None)  # a RateLimitedError: when to come back
        if page is not None:
            if retry_after is not None:
                page.headers["Retry-After"] = str(retry_after)
            return page
        headers = {"WWW-Authenticate": "Bearer"} if exc.http_status == 401 else None
        if retry_after is not None:
            headers = {"Retry-After": str(retry_after)}
        return ErrorResponse(
            error_body(error_code(exc), message, **extra),
            status_code=exc.http_status,
            headers=headers,
        )

    @app.exception_handler(RequestValidationError)
    async def invalid_request(request: Request, exc: RequestValidationError) -> Response:
        fields = validation_fields(list(exc.errors()))
        first = fields[0] if fields else {"field": "request", "message": "is invalid"}
        message = f"invalid request: `{shown(first['field'])}`: {first['message']}"
        page = _as_page(request, exc, 422, message)
        if page is not None:
            return page
        return ErrorResponse(error_body(ErrorCode.INVALID, message, fields=fields), status_code=422)

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, exc: StarletteHTTPException) -> Response:
        if exc.status_code == 400 and exc.__cause__ is not None:
            # FastAPI could not read the body (not UTF-8, nested too deeply for the parser): input
            # as malformed as JSON that does not parse, which is 422
            fields = [{"field": "body", "message": "cannot be read as json"}]
            message = "invalid request: `body`: cannot be read as json"
            return ErrorResponse(
                error_body(ErrorCode.INVALID, message, fields=fields), status_code=422
            )
        code = _STATUS_CODES.get(exc.status_code, ErrorCode.ERROR)
        detail = exc.detail if isinstance(exc.detail, str) else code.replace("_", " ")
        detail = detail[:1].lower() + detail[1:]
        page = _as_page(request, exc, exc.status_code, detail)
        if page is not None:
            return page
        return ErrorResponse(
            error_body(code, detail),
            status_code=exc.status_code,
            headers=getattr(exc, "headers", None),
        )

    @app.exception_handler(Exception)
    async def unexpected(request: Request, exc: Exception) -> Response:
        log.exception("unexpected error")
        page = _as_page(request, exc, 500, "internal error: the request was not completed")
        if page is not None:
            return page
        return ErrorResponse(
            error_body(ErrorCode.INTERNAL, "internal error: the request was not completed"),
            status_code=500,
        )
