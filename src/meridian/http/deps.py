"""Dependencies every route reads like a sentence with: the runtime, the caller, the client's IP.

The dependencies are ``async``: FastAPI would run plain functions in its thread pool, a hop that
costs more than the work. A token cache miss reads the database on the event loop; that is one
indexed lookup per token every few seconds.

Authentication is a bearer token (``Authorization: Bearer mrd_…``). A token's caller is cached
for a few seconds so a busy decision endpoint does not read the token table on every call. The
cache may be stale for as long as an order takes to arrive: a revocation or a suspension is an
order (:mod:`meridian.storage.orders`) every replica receives as its transaction commits, and
each then forgets every caller it remembered, so a revoked token (or a user token of a suspended
account, 403) is refused on every replica within that delivery (milliseconds), never the
:data:`TOKEN_CACHE_SECONDS` a remembered caller otherwise lives. While a replica cannot listen
for orders it remembers nobody (fail closed: every request reads the token table).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Annotated, Any

from fastapi import Depends, Header, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from ..errors import AuthenticationError, ForbiddenError
from ..identity.tokens import Caller, Role, authenticate
from ..runtime import Runtime
from ..storage.models import Account, AccountStatus
from .network import TrustedProxies, client_ip
from .ratelimit import authenticate_counted, failed_authentication, rate_limits

__all__ = [
    "TOKEN_CACHE_SECONDS",
    "CallerDep",
    "ClientIpDep",
    "IdempotencyKeyHeader",
    "MaybeCallerDep",
    "RuntimeDep",
    "SignupLimited",
    "TokenCache",
    "require",
]

TOKEN_CACHE_SECONDS = 5.0
_bearer = HTTPBearer(auto_error=False, description="An API token: `Bearer mrd_…`")


class TokenCache:
    """Token secrets to callers, each remembered for :data:`TOKEN_CACHE_SECONDS`."""

    def __init__(self, limit: int = 10_000) -> None:
        self._entries: dict[str, tuple[float, Caller]] = {}
        self._limit = limit
        #: whether orders reach this replica now (set by the server from its order listener):
        #: a remembered caller is trusted only while they do
        self.listening: Callable[[], bool] = lambda: True

    def clear(self) -> None:
        """Forget every cached caller (after a revocation through this process)."""
        self._entries.clear()

    def cached(self, secret: str) -> Caller | None:
        """The caller ``secret`` stood for a moment ago, if still remembered; no database read."""
        hit = self._entries.get(secret)
        if hit is None or hit[0] <= time.monotonic() or not self.listening():
            return None
        return hit[1]

    def get(self, rt: Runtime, secret: str) -> Caller:
        now = time.monotonic()
        hit = self._entries.get(secret)
        if hit is not None and hit[0] > now and self.listening():
            # an expiry is checked on every use, cached or not: it is known without a read
            expired = hit[1].expired(rt.now())
            if expired is None:
                return hit[1]
            self._entries.pop(secret, None)
            raise expired
        with rt.db.read() as session:
            try:
                caller = authenticate(session, secret, at=rt.now())
            except AuthenticationError:
                self._entries.pop(secret, None)
                raise
            account = (
                session.get(Account, caller.account_id)
                if caller is not None and caller.account_id is not None
                else None
            )
        if caller is None:
            self._entries.pop(secret, None)
            raise AuthenticationError("invalid or revoked api token")
        if account is not None and account.status == AccountStatus.SUSPENDED:
            # not cached: the refusal lasts as long as the suspension, and no longer
            self._entries.pop(secret, None)
            raise ForbiddenError(f"account `{account.id}` is suspended")
        if len(self._entries) >= self._limit:
            self._entries.clear()
        if self.listening():
            self._entries[secret] = (now + TOKEN_CACHE_SECONDS, caller)
        return caller


async def get_runtime(request: Request) -> Runtime:
    runtime: Runtime = request.app.state.runtime
    return runtime


RuntimeDep = Annotated[Runtime, Depends(get_runtime)]


async def get_maybe_caller(
    request: Request,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
) -> Caller | None:
    if credentials is None:
        if request.headers.get("authorization"):
            await failed_authentication(request)
            raise AuthenticationError("malformed `Authorization` header: expected `Bearer <token>`")
        return None
    # failed authentications are counted per client address (api.ratelimit)
    return await authenticate_counted(request, credentials.credentials)


async def get_caller(caller: Annotated[Caller | None, Depends(get_maybe_caller)]) -> Caller:
    if caller is None:
        raise AuthenticationError("an api token is required: send `Authorization: Bearer <token>`")
    return caller


MaybeCallerDep = Annotated[Caller | None, Depends(get_maybe_caller)]
CallerDep = Annotated[Caller, Depends(get_caller)]


def require(*roles: Role) -> Any:
    """A dependency refusing callers whose role is not one of ``roles`` (403)."""

    async def check(caller: CallerDep) -> Caller:
        if caller.role not in roles:
            raise ForbiddenError(
                f"a `{caller.role}` token cannot do this: it needs a {' or '.join(f'`{r}`' for r in roles)} token"
            )
        return caller

    return Depends(check)


async def get_client_ip(request: Request) -> str | None:
    trusted: TrustedProxies = request.app.state.trusted_proxies
    peer = request.client.host if request.client else None
    return client_ip(peer, request.headers.get("x-forwarded-for"), trusted)


ClientIpDep = Annotated[str | None, Depends(get_client_ip)]


async def _idempotency_key(
    key: Annotated[
        str | None,
        Header(
            alias="Idempotency-Key",
            min_length=1,
            max_length=255,
            pattern=r"^[ -~]+$",
            description="Retry safely: the first response is stored and replayed byte for byte "
            "for 24 h, except that an api token in it is never stored (`token` is `null` on a "
            "replay); anonymous callers are told apart by client address; the same key with "
            "other parameters is 422, and while the first is in flight, 409",
        ),
    ] = None,
) -> None:
    """Documents the header on a POST; :class:`~.idempotency.IdempotencyMiddleware` acts on it."""


IdempotencyKeyHeader = Depends(_idempotency_key)


async def _signup_limited(request: Request, caller: MaybeCallerDep, ip: ClientIpDep) -> None:
    limits = rate_limits(request.app)
    if caller is not None:
        await limits.hit("signup_token", caller.token_id)
    else:
        await limits.hit("signup", ip)


#: counts a sign-up (api.ratelimit): per token, or for an anonymous caller per client address
SignupLimited = Depends(_signup_limited)
