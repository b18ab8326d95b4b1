"""Rate limits on the doors a stranger can knock on, answered 429 with ``Retry-After``.

Each door has its own limit (a setting, in the ``limits`` notation: ``20/minute;200/hour``) and
counts one kind of caller::

    door            counted per                        setting
    signup          client address (no token)          rate_signup         (API and page sign-up)
    signup_token    token (a partner or an operator)   rate_signup_authenticated
    signin          client address                     rate_signin         (the pages' /login)
    auth_failures   client address                     rate_auth_failures  (unknown/revoked token)
    decisions       token, one per decision            rate_decisions      (/v1/decisions[:batch])
    joins           token, or a guest's address        rate_joins          (the signalling socket)

A failed authentication has no token to count against, so it is counted per client address;
once an address has used up its failures, every authentication attempt from it that is not
already known good (in the token cache) is refused until the window clears: a guesser gets no
answer, right or wrong. Client addresses are those resolved through the trusted proxies
(:mod:`.network`).

The counts are exact moving windows (each counted instant kept, up to the limit) for every door
but the decisions, which are counted in the hundreds of thousands and so with ``limits``'
sliding-window counter (two fixed windows, the previous one weighted: approximate at the edge
of a window, constant in size). They are kept in this process's memory, or in Redis when ``redis_url`` is set, so every
replica of a deployment counts the same callers together. Their keys are named by the log's
origin (one deployment, one name) and hold SHA-256 digests of the addresses and token ids,
never the addresses themselves. A Redis that does not answer refuses the request (503): a limit
that cannot be counted is not waived.
"""

from __future__ import annotations

import hashlib
import math
import time
from typing import TYPE_CHECKING, Literal

from limits import RateLimitItem, parse_many
from limits.aio.storage import MemoryStorage, RedisStorage, Storage
from limits.aio.strategies import (
    MovingWindowRateLimiter,
    RateLimiter,
    SlidingWindowCounterRateLimiter,
)
from limits.errors import StorageError
from starlette.requests import HTTPConnection

from ..errors import AuthenticationError, RateLimitedError, StorageUnavailableError
from ..identity.tokens import Caller
from ..settings import Settings
from .network import client_ip

if TYPE_CHECKING:
    from .deps import TokenCache

__all__ = [
    "DOORS",
    "Door",
    "RateLimits",
    "authenticate_counted",
    "connection_ip",
    "failed_authentication",
    "rate_limits",
]

Door = Literal["signup", "signup_token", "signin", "auth_failures", "decisions", "joins"]

#: each door: its setting, and what its message calls one of what it counts
DOORS: dict[Door, tuple[str, str]] = {
    "signup": ("rate_signup", "sign-ups"),
    "signup_token": ("rate_signup_authenticated", "sign-ups"),
    "signin": ("rate_signin", "sign-ins"),
    "auth_failures": ("rate_auth_failures", "failed authentications"),
    "decisions": ("rate_decisions", "decisions"),
    "joins": ("rate_joins", "joins"),
}


class RateLimits:
    """The service's rate limits, counted in memory or in the Redis at ``settings.redis_url``."""

    def __init__(self, settings: Settings) -> None:
        storage: Storage
        if settings.redis_url:
            storage = RedisStorage(
                "async+" + settings.redis_url,
                implementation="redispy",
                key_prefix="meridian",
                wrap_exceptions=True,
            )
        else:
            storage = MemoryStorage()
        # exact (a moving window: each hit's instant kept) where counts are small; for the
        # decisions, counted in the hundreds of thousands, a sliding-window counter (two counters)
        self._exact = MovingWindowRateLimiter(storage)
        self._counter = SlidingWindowCounterRateLimiter(storage)
        self._namespace = settings.log_origin
        self._items: dict[Door, list[RateLimitItem]] = {
            door: parse_many(getattr(settings, field)) for door, (field, _) in DOORS.items()
        }

    def _limiter(self, door: Door) -> RateLimiter:
        return self._counter if door == "decisions" else self._exact

    def _who(self, door: Door, who: str | None) -> tuple[str, str, str]:
        digest = hashlib.sha256((who or "-").encode("utf-8", "surrogatepass")).hexdigest()[:32]
        return (self._namespace, door, digest)

    async def hit(self, door: Door, who: str | None, *, cost: int = 1) -> None:
        """Count ``cost`` against ``who`` at ``door``; :class:`RateLimitedError` past a limit.

        A limit that refuses does not count the attempt: a caller over its limit is not pushed
        further back by retrying.
        """
        keys = self._who(door, who)
        try:
            for item in self._items[door]:
                if cost > item.amount or not await self._limiter(door).hit(item, *keys, cost=cost):
                    await self._refuse(door, item, keys, cost)
        except (StorageError, ConnectionError, OSError) as exc:
            raise _unavailable(exc) from None

    async def check(self, door: Door, who: str | None) -> None:
        """Refuse (:class:`RateLimitedError`) if ``who`` has no room left at ``door``; count nothing."""
        keys = self._who(door, who)
        try:
            for item in self._items[door]:
                if not await self._limiter(door).test(item, *keys):
                    await self._refuse(door, item, keys, 1)
        except (StorageError, ConnectionError, OSError) as exc:
            raise _unavailable(exc) from None

    async def _refuse(
        self, door: Door, item: RateLimitItem, keys: tuple[str, ...], cost: int
    ) -> None:
        stats = await self._limiter(door).get_window_stats(item, *keys)
        retry = max(1, math.ceil(stats.reset_time - time.time()))
        retry = min(retry, item.get_expiry())
        _, what = DOORS[door]
        per = "token" if door in ("signup_token", "decisions") else "address"
        if door == "joins":
            per = "caller"
        if cost > item.amount:
            raise RateLimitedError(
                f"too many {what} in one call: {cost}, the limit is {_said(item)}; send fewer",
                retry,
            )
        raise RateLimitedError(
            f"too many {what} from this {per}: the limit is {_said(item)}; retry in {retry} s",
            retry,
        )


def _unavailable(exc: BaseException) -> StorageUnavailableError:
    cause = getattr(exc, "storage_error", None) or exc
    text = (str(cause) or type(cause).__name__).splitlines()[0].lower()
    return StorageUnavailableError(f"the rate limits' store is unavailable: {text}")


def _said(item: RateLimitItem) -> str:
    """``20 per minute``, ``500 per 2 hours``."""
    unit = item.GRANULARITY.name
    if item.multiples == 1:
        return f"{item.amount} per {unit}"
    return f"{item.amount} per {item.multiples} {unit}s"


def rate_limits(app: object) -> RateLimits:
    """The app's rate limits (built by ``create_app``)."""
    limits: RateLimits = app.state.rate_limits  # type: ignore[attr-defined]
    return limits


def connection_ip(conn: HTTPConnection) -> str | None:
    """The client address of a request or a WebSocket, through the trusted proxies."""
    peer = conn.client.host if conn.client else None
    return client_ip(peer, conn.headers.get("x-forwarded-for"), conn.app.state.trusted_proxies)


async def authenticate_counted(conn: HTTPConnection, secret: str) -> Caller:
    """The caller for the token ``secret``, failed authentications counted per client address.

    A token already in the cache (known good a moment ago) costs nothing more. Any other is
    refused outright (429) from an address that has used up its failures; a failure is counted,
    then raised (401).
    """
    cache: TokenCache = conn.app.state.tokens
    known = cache.cached(secret)
    # a cached token's expiry is still judged on every use (against the service's clock)
    if known is not None and known.expired(conn.app.state.runtime.now()) is None:
        return known
    limits = rate_limits(conn.app)
    ip = connection_ip(conn)
    await limits.check("auth_failures", ip)
    try:
        return cache.get(conn.app.state.runtime, secret)
    except AuthenticationError:
        await limits.hit("auth_failures", ip)
        raise


async def failed_authentication(conn: HTTPConnection) -> None:
    """Count a failed authentication that never reached a token (a malformed header)."""
    ip = connection_ip(conn)
    limits = rate_limits(conn.app)
    await limits.check("auth_failures", ip)
    await limits.hit("auth_failures", ip)
