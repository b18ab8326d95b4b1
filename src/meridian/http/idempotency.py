"""``Idempotency-Key`` on POSTs, with Stripe's semantics, as a pure ASGI middleware.

* The first request with a key runs; its response (status, body, content type) is stored and
  every retry with the same key and the same parameters gets it back, marked
  ``Idempotent-Replayed: true``: byte for byte, except that no secret is ever stored.
* **No secret at rest.** A response that carries an API token (a self sign-up's user token, a
  token minted with ``POST /v1/tokens``) is stored with the token replaced by ``null``: the
  secret is shown once, on the first response, and a replay answers the same call (the same
  account, the same token ``id``) with ``"token": null``. A client that lost the secret revokes
  that token and mints or signs up again. See :func:`redact`.
* Rows expire: a key is remembered for ``idempotency_ttl`` seconds (24 h by default); after
  that the same key runs the request again, and expired rows are deleted (:func:`purge_expired`,
  run by the middleware at most every :data:`PURGE_EVERY_SECONDS`).
* The same key with different parameters (method, path or body) is refused: 422.
* The same key while the first request is still running: 409, retry later.
* Keys are scoped to the caller: the hash of its ``Authorization`` header, or for an anonymous
  caller the hash of its address as resolved through the trusted proxies
  (:func:`~.network.client_ip`): behind a proxy every client has the proxy's socket address, and
  two clients picking the same key must never share an answer.
* A response the server could not complete (5xx) is not stored: the key is released and a retry
  runs again. A key left ``in_flight`` by a crashed process is released after its lease
  (:data:`LEASE_SECONDS`).

The key is claimed in one transaction (its row locked, so two retries never both take over a
stale key) and the response stored in another, before the last of it reaches the client; the
work itself commits in between. A crash after the work commits but before the response is
stored leaves the key to be retried after the lease, which then runs again — for a checkout that
is a 409 (one subscription at a time), never a second charge.

The request body is bounded by :class:`~.bodylimit.BodyLimitMiddleware` outside this one (and by
the same ``max_body_bytes`` here, should this middleware ever run without it).
"""

from __future__ import annotations

import hashlib
import json
import logging
import re
import time
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import delete, or_, select
from sqlalchemy.exc import IntegrityError
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from ..errors import shown
from ..storage.models import IdempotencyKey
from ..wire import ErrorCode
from .errors import error_body
from .network import client_ip

__all__ = [
    "LEASE_SECONDS",
    "PURGE_EVERY_SECONDS",
    "IdempotencyMiddleware",
    "purge_expired",
    "redact",
]

LEASE_SECONDS = 60
#: how often (at most) one process deletes expired keys
PURGE_EVERY_SECONDS = 60.0
log = logging.getLogger("meridian.api")
#: an API token's secret, wherever it appears in a stored response (see identity.tokens)
_SECRET = re.compile(r"^mrd_[a-z]+_[A-Za-z0-9_-]{16,}$")
#: fields that hold a secret shown once: an API token, a meeting's join secret and its link
_SECRET_FIELDS = frozenset({"token", "invite", "join_url"})


def redact(body: bytes) -> bytes:
    """``body`` as it may be stored: every secret in it replaced by ``null``.

    A JSON body is walked: a ``token``, ``invite`` or ``join_url`` field holding a string (an API
    token, a meeting's join secret and its link), and any string shaped like a token secret,
    become ``null``. A body with nothing to redact is returned unchanged (byte for byte);
    one that is not JSON is returned unchanged unless it contains ``mrd_``, when it is not
    stored at all (``b""``).
    """
    if b"mrd_" not in body and b'"token"' not in body and b'"invite"' not in body:
        return body
    try:
        data = json.loads(body)
    except (ValueError, RecursionError):
        return b""
    found = False

    def walk(value: Any, key: str | None = None) -> Any:
        nonlocal found
        if isinstance(value, dict):
            return {k: walk(v, k) for k, v in value.items()}
        if isinstance(value, list):
            return [walk(v) for v in value]
        if isinstance(value, str) and (key in _SECRET_FIELDS or _SECRET.match(value)):
            found = True
            return None
        return value

    cleaned = walk(data)
    if not found:
        return body
    return json.dumps(cleaned, separators=(",", ":"), ensure_ascii=False).encode()


def purge_expired(db: Any, *, ttl: float, now: datetime | None = None) -> int:
    """Delete the keys older than ``ttl`` seconds; how many were deleted."""
    at = now or _now()
    cutoff = at - timedelta(seconds=ttl)
    with db.write() as session:
        result = session.execute(
            delete(IdempotencyKey).where(
                IdempotencyKey.created_at < cutoff,
                # a key still running (its lease alive) is left to finish
                or_(IdempotencyKey.state == "done", IdempotencyKey.lease_until < at),
            )
        )
    count: int = result.rowcount
    return count


def _now() -> datetime:
    return datetime.now(UTC)  # leases run on the wall clock, not the service's set clock


def _aware(at: datetime) -> datetime:
    # SQLite gives back naive datetimes; every instant stored here is UTC
    return at if at.tzinfo is not None else at.replace(tzinfo=UTC)


def _fingerprint(method: str, path: str, body: bytes) -> str:
    try:
        canonical = json.dumps(json.loads(body), sort_keys=True, separators=(",", ":"))
        payload = canonical.encode()
    except (ValueError, RecursionError):  # not JSON (or too deep to parse): the bytes themselves
        payload = body
    return hashlib.sha256(method.encode() + b" " + path.encode() + b"\n" + payload).hexdigest()


async def _json(send: Send, status: int, body: dict[str, Any]) -> None:
    data = json.dumps(body).encode()
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [
                (b"content-type", b"application/json"),
                (b"content-length", str(len(data)).encode()),
            ],
        }
    )
    await send({"type": "http.response.body", "body": data})


class IdempotencyMiddleware:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app
        self._purged_at = 0.0

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"] != "POST":
            await self.app(scope, receive, send)
            return
        headers = dict(scope["headers"])
        raw_key = headers.get(b"idempotency-key")
        if raw_key is None:
            await self.app(scope, receive, send)
            return
        key = raw_key.decode("latin-1")
        if not 1 <= len(key) <= 255 or not key.isprintable() or not key.isascii():
            await _json(
                send,
                422,
                error_body(
                    ErrorCode.INVALID,
                    f"invalid `Idempotency-Key` `{shown(key)}`: 1 to 255 printable ascii characters",
                ),
            )
            return
        runtime = scope["app"].state.runtime
        settings = runtime.settings
        limit: int = settings.max_body_bytes
        body = b""
        more = True
        while more:
            message = await receive()
            if message["type"] == "http.disconnect":
                return
            body += message.get("body", b"")
            more = message.get("more_body", False)
            if len(body) > limit:
                message_text = f"request body too large: more than {limit} bytes"
                await _json(send, 413, error_body(ErrorCode.TOO_LARGE, message_text))
                return
        auth = headers.get(b"authorization", b"")
        # An anonymous caller (a self sign-up) is scoped by its address, resolved through the
        # trusted proxies: behind a proxy the socket peer is the proxy, shared by every client.
        caller = (
            hashlib.sha256(auth).hexdigest()[:40]
            if auth
            else "anonymous:"
            + hashlib.sha256(str(_client(scope, headers)).encode()).hexdigest()[:30]
        )
        fingerprint = _fingerprint(scope["method"], scope["path"], body)
        if time.monotonic() - self._purged_at > PURGE_EVERY_SECONDS:
            self._purged_at = time.monotonic()
            await _purge(runtime, settings.idempotency_ttl)
        claim = await _claim(runtime, caller, key, scope, fingerprint, settings.idempotency_ttl)
        if claim is not None:
            status, payload, replayed = claim
            if replayed:
                await send(
                    {
                        "type": "http.response.start",
                        "status": status,
                        "headers": [
                            (b"content-type", b"application/json"),
                            (b"content-length", str(len(payload)).encode()),
                            (b"idempotent-replayed", b"true"),
                        ],
                    }
                )
                await send({"type": "http.response.body", "body": payload})
            else:
                await _json(send, status, json.loads(payload))
            return

        sent_body = False

        async def replay_receive() -> Message:
            nonlocal sent_body
            if not sent_body:
                sent_body = True
                return {"type": "http.request", "body": body, "more_body": False}
            return await receive()

        captured: dict[str, Any] = {"status": 500, "headers": [], "body": b""}
        settled = False

        async def capture(message: Message) -> None:
            nonlocal settled
            if message["type"] == "http.response.start":
                captured["status"] = message["status"]
                captured["headers"] = message.get("headers", [])
            elif message["type"] == "http.response.body":
                captured["body"] += message.get("body", b"")
                if not message.get("more_body", False):
                    # Stored before the client has the whole response: a client that was
                    # answered, and retries, is answered the same (never "still in progress").
                    settled = True
                    try:
                        await _settle(runtime, caller, key, captured["status"], captured["body"])
                    except Exception:  # the answer still goes out; the key waits out its lease
                        log.exception("could not store the response to an idempotency key")
            await send(message)

        try:
            await self.app(scope, replay_receive, capture)
        finally:
            if not settled:  # no complete response: an exception, or the client went away
                await _settle(runtime, caller, key, captured["status"], captured["body"])


def _client(scope: Scope, headers: dict[bytes, bytes]) -> str | None:
    peer = (scope.get("client") or (None, 0))[0]
    forwarded = headers.get(b"x-forwarded-for")
    trusted = scope["app"].state.trusted_proxies
    return client_ip(peer, None if forwarded is None else forwarded.decode("latin-1"), trusted)


async def _purge(runtime: Any, ttl: float) -> None:
    from starlette.concurrency import run_in_threadpool

    try:
        await run_in_threadpool(lambda: purge_expired(runtime.db, ttl=ttl))
    except Exception:  # the request goes on; the next purge tries again
        log.exception("could not purge expired idempotency keys")


async def _claim(
    runtime: Any, caller: str, key: str, scope: Scope, fingerprint: str, ttl: float
) -> tuple[int, bytes, bool] | None:
    """Claim the key; or what to answer instead: (status, body, is_replay)."""
    from starlette.concurrency import run_in_threadpool

    def claim() -> tuple[int, bytes, bool] | None:
        now = _now()
        try:
            with runtime.db.write() as session:
                # Locked (PostgreSQL): two retries of a stale key must not both take it over.
                row = session.get(IdempotencyKey, (caller, key), with_for_update=True)
                if row is None:
                    session.add(
                        IdempotencyKey(
                            caller=caller,
                            key=key,
                            method=scope["method"],
                            path=scope["path"][:500],
                            fingerprint=fingerprint,
                            state="in_flight",
                            status_code=None,
                            body=None,
                            created_at=now,
                            lease_until=now + timedelta(seconds=LEASE_SECONDS),
                        )
                    )
                    return None
                expired = _aware(row.created_at) < now - timedelta(seconds=ttl)
                if expired and (row.state == "done" or _aware(row.lease_until) <= now):
                    # expired: forgotten, as if purged; the request runs afresh under the key
                    row.method = scope["method"]
                    row.path = scope["path"][:500]
                    row.fingerprint = fingerprint
                    row.state = "in_flight"
                    row.status_code = None
                    row.body = None
                    row.created_at = now
                    row.lease_until = now + timedelta(seconds=LEASE_SECONDS)
                    return None
                if row.fingerprint != fingerprint:
                    message = f"`Idempotency-Key` `{shown(key)}` was already used with different parameters"
                    return 422, json.dumps(error_body(ErrorCode.INVALID, message)).encode(), False
                if row.state == "done":
                    assert row.status_code is not None
                    assert row.body is not None
                    return row.status_code, row.body, True
                if row.lease_until > now:
                    message = f"a request with `Idempotency-Key` `{shown(key)}` is still in progress: retry later"
                    return 409, json.dumps(error_body(ErrorCode.CONFLICT, message)).encode(), False
                row.lease_until = now + timedelta(seconds=LEASE_SECONDS)  # a crashed holder's
                return None
        except IntegrityError:  # another request claimed it between our read and insert
            message = (
                f"a request with `Idempotency-Key` `{shown(key)}` is still in progress: retry later"
            )
            return 409, json.dumps(error_body(ErrorCode.CONFLICT, message)).encode(), False

    result: tuple[int, bytes, bool] | None = await run_in_threadpool(claim)
    return result


async def _settle(runtime: Any, caller: str, key: str, status: int, body: bytes) -> None:
    from starlette.concurrency import run_in_threadpool

    def settle() -> None:
        with runtime.db.write() as session:
            if status >= 500:
                session.execute(
                    delete(IdempotencyKey).where(
                        IdempotencyKey.caller == caller, IdempotencyKey.key == key
                    )
                )
                return
            row = session.scalars(
                select(IdempotencyKey).where(
                    IdempotencyKey.caller == caller, IdempotencyKey.key == key
                )
            ).first()
            if row is not None:
                row.state = "done"
                row.status_code = status
                row.body = redact(body)  # never a token at rest

    await run_in_threadpool(settle)
