"""``Idempotency-Key`` on POSTs, with Stripe's semantics, as a pure ASGI middleware.

* The first request with a key runs; its response (status, body, content type) is stored and
  every retry with the same key and the same parameters gets those exact bytes back, marked
  ``Idempotent-Replayed: true``.
* The same key with different parameters (method, path or body) is refused: 422.
* The same key while the first request is still running: 409, retry later.
* Keys are scoped to the caller: the hash of its ``Authorization`` header, or for an anonymous
  caller the hash of its address.
* A response the server could not complete (5xx) is not stored: the key is released and a retry
  runs again. A key left ``in_flight`` by a crashed process is released after its lease
  (:data:`LEASE_SECONDS`).

The key is claimed in one transaction (its row locked, so two retries never both take over a
stale key) and the response stored in another, before the last of it reaches the client; the
work itself commits in between. A crash after the work commits but before the response is
stored leaves the key to be retried after the lease, which then runs again — for a checkout that
is a 409 (one subscription at a time), never a second charge.
"""

from __future__ import annotations

import hashlib
import json
import logging
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import delete, select
from sqlalchemy.exc import IntegrityError
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from ..errors import shown
from ..storage.models import IdempotencyKey
from .errors import error_body

__all__ = ["LEASE_SECONDS", "IdempotencyMiddleware"]

LEASE_SECONDS = 60
log = logging.getLogger("meridian.api")
_MAX_BODY = 2_000_000


def _now() -> datetime:
    return datetime.now(UTC)  # leases run on the wall clock, not the service's set clock


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
                    "invalid",
                    f"invalid `Idempotency-Key` `{shown(key)}`: 1 to 255 printable ascii characters",
                ),
            )
            return
        body = b""
        more = True
        while more:
            message = await receive()
            if message["type"] == "http.disconnect":
                return
            body += message.get("body", b"")
            more = message.get("more_body", False)
            if len(body) > _MAX_BODY:
                await _json(send, 413, error_body("too_large", "request body too large"))
                return
        auth = headers.get(b"authorization", b"")
        # An anonymous caller (a self sign-up) is scoped by its address as well: a stored sign-up
        # response holds the new account's token, and must not replay to another client that
        # happened to pick the same key.
        peer = (scope.get("client") or ("-", 0))[0]
        caller = (
            hashlib.sha256(auth).hexdigest()[:40]
            if auth
            else "anonymous:" + hashlib.sha256(str(peer).encode()).hexdigest()[:30]
        )
        fingerprint = _fingerprint(scope["method"], scope["path"], body)
        runtime = scope["app"].state.runtime
        claim = await _claim(runtime, caller, key, scope, fingerprint)
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


async def _claim(
    runtime: Any, caller: str, key: str, scope: Scope, fingerprint: str
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
                if row.fingerprint != fingerprint:
                    message = f"`Idempotency-Key` `{shown(key)}` was already used with different parameters"
                    return 422, json.dumps(error_body("invalid", message)).encode(), False
                if row.state == "done":
                    assert row.status_code is not None
                    assert row.body is not None
                    return row.status_code, row.body, True
                if row.lease_until > now:
                    message = f"a request with `Idempotency-Key` `{shown(key)}` is still in progress: retry later"
                    return 409, json.dumps(error_body("conflict", message)).encode(), False
                row.lease_until = now + timedelta(seconds=LEASE_SECONDS)  # a crashed holder's
                return None
        except IntegrityError:  # another request claimed it between our read and insert
            message = (
                f"a request with `Idempotency-Key` `{shown(key)}` is still in progress: retry later"
            )
            return 409, json.dumps(error_body("conflict", message)).encode(), False

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
                row.body = body

    await run_in_threadpool(settle)
