"""Limits on every door: one body limit for every method, and rate limits answered 429.

Each limit is set low through the settings (as an operator would), so a test needs only a few
requests; the defaults are generous enough for the rest of the suite.
"""

from __future__ import annotations

import asyncio
import json
import secrets
import socket
import time
from typing import Any

import httpx
import pytest

pytestmark = pytest.mark.storage

SIGNUP = {"type": "organization", "name": "Limit Co", "country": "US"}
DECISION = {
    "action": "purchase",
    "at": "2020-08-23T09:00:00+08:00",
    "subject": {"type": "organization", "country": "CN", "ip": "114.114.114.114"},
    "resource": {"channel": "direct"},
}


def _too_large(r: httpx.Response, limit: int) -> None:
    assert r.status_code == 413, r.text
    error = r.json()["error"]
    assert error == {"code": "too_large", "message": f"request body too large: more than {limit} bytes"}


def _rate_limited(r: httpx.Response) -> int:
    assert r.status_code == 429, r.text
    error = r.json()["error"]
    assert error["code"] == "rate_limited"
    assert "\n" not in error["message"]
    assert error["message"].startswith("too many ")
    retry = int(r.headers["retry-after"])
    assert 1 <= retry <= 3600
    assert f"retry in {retry} s" in error["message"]
    return retry


# -- the body limit ----------------------------------------------------------------------------


@pytest.fixture
def small(live_factory):
    """A server whose body limit is 20,000 bytes; loopback is a trusted proxy."""
    return live_factory(max_body_bytes=20_000, trusted_proxies=("127.0.0.1/32",))


def test_every_method_has_one_body_limit(small):
    ops = small.client("operator")
    big = {**SIGNUP, "name": "x" * 30_000}
    _too_large(ops.post("/v1/accounts", json=big), 20_000)
    _too_large(ops.put("/v1/policy", json={"yaml": "y" * 30_000}), 20_000)
    _too_large(ops.patch("/v1/partners/bizconf", json={"name": "p" * 30_000}), 20_000)
    # with an Idempotency-Key, the same limit
    _too_large(ops.post("/v1/accounts", json=big, headers={"idempotency-key": "big"}), 20_000)
    # and a body just under it goes through to the endpoint (which refuses the name itself)
    assert ops.post("/v1/accounts", json={**SIGNUP, "name": "x" * 19_000}).status_code == 422


def _raw(url: str, head: bytes, chunks: list[bytes]) -> bytes:
    """Send ``head`` and ``chunks`` on a raw socket, never finishing the body; the answer's bytes."""
    host, port = url.removeprefix("http://").split(":")
    with socket.create_connection((host, int(port)), timeout=10) as sock:
        sock.sendall(head)
        for chunk in chunks:
            try:
                sock.sendall(chunk)
            except OSError:  # the server answered and closed: it stopped reading
                break
        answer = b""
        while True:
            data = sock.recv(65536)  # a timeout here: the server waits for the rest of the body
            if not data:  # the server closed the connection (it will not read the rest)
                return answer
            answer += data


def test_an_oversized_declared_body_is_refused_before_it_is_sent(small):
    """``Content-Length: 60 MB`` and no body sent: refused at once, nothing waited for."""
    head = (
        b"POST /v1/accounts HTTP/1.1\r\nhost: x\r\ncontent-type: application/json\r\n"
        b"content-length: 60000000\r\n\r\n"
    )
    started = time.monotonic()
    # nothing of the body is sent: a server that waited for it would time out here (data left
    # unread would make the kernel reset the connection and could lose the answer)
    answer = _raw(small.url, head, [])
    assert answer.startswith(b"HTTP/1.1 413 "), answer[:200]
    assert time.monotonic() - started < 5


def _send_whole(url: str, head: bytes, body: bytes) -> bytes:
    """Send ``head`` and all of ``body``, as an ordinary client does, then read the answer."""
    host, port = url.removeprefix("http://").split(":")
    with socket.create_connection((host, int(port)), timeout=10) as sock:
        sock.sendall(head + body)  # a reset here: the server stopped reading and closed
        answer = b""
        while data := sock.recv(65536):  # a reset here: the answer was lost with the close
            answer += data
        return answer


def test_an_oversized_body_sent_whole_gets_its_answer(small):
    """A client that sends a too-large body whole (as most do) reads the 413, not a reset.

    The server reads and drops what remains of the body (up to a bound) before it answers, so
    it never closes with unread bytes, which makes the kernel reset the connection and lose the
    answer (seen as `IncompleteRead` or `ECONNRESET` by an ordinary client).
    """
    body = b" " * 4_000_000
    head = (
        b"POST /v1/accounts HTTP/1.1\r\nhost: x\r\ncontent-type: application/json\r\n"
        b"content-length: %d\r\n\r\n" % len(body)
    )
    for _ in range(3):
        answer = _send_whole(small.url, head, body)
        assert answer.startswith(b"HTTP/1.1 413 "), answer[:200]
        assert b"request body too large: more than 20000 bytes" in answer
    # streamed, with no length: the same
    chunked = head.replace(b"content-length: %d" % len(body), b"transfer-encoding: chunked")
    framed = b"%x\r\n%s\r\n" % (len(body), body) + b"0\r\n\r\n"
    answer = _send_whole(small.url, chunked, framed)
    assert answer.startswith(b"HTTP/1.1 413 "), answer[:200]


def test_a_streamed_body_is_refused_once_it_passes_the_limit(small):
    """Chunked, no length: refused as the limit is passed, while the client is still sending."""
    head = (
        b"POST /v1/accounts HTTP/1.1\r\nhost: x\r\ncontent-type: application/json\r\n"
        b"transfer-encoding: chunked\r\n\r\n"
    )
    chunk = b" " * 4096
    framed = b"%x\r\n%s\r\n" % (len(chunk), chunk)
    # 8 chunks (32 KB) and never the last, empty one: a server reading it whole would wait
    answer = _raw(small.url, head, [framed] * 8)
    assert answer.startswith(b"HTTP/1.1 413 "), answer[:200]
    assert b"request body too large: more than 20000 bytes" in answer


# -- rate limits -------------------------------------------------------------------------------


def test_a_burst_of_sign_ups_from_one_address_is_429(live_factory):
    live = live_factory(rate_signup="3/minute", trusted_proxies=("127.0.0.1/32",))
    here = live.client(None, **{"x-forwarded-for": "8.8.8.8"})
    for i in range(3):
        assert here.post("/v1/accounts", json={**SIGNUP, "name": f"Burst {i}"}).status_code == 201
    _rate_limited(here.post("/v1/accounts", json={**SIGNUP, "name": "Burst 3"}))
    # the page's sign-up is the same door
    r = here.post("/signup", data={"type": "organization", "name": "Burst 4", "country": "US"})
    assert r.status_code == 429
    # another address is another count
    there = live.client(None, **{"x-forwarded-for": "8.8.4.4"})
    assert there.post("/v1/accounts", json={**SIGNUP, "name": "Elsewhere"}).status_code == 201


def test_sign_ups_by_a_token_are_counted_per_token(live_factory):
    live = live_factory(rate_signup_authenticated="2/minute")
    ops = live.client("operator")
    for i in range(2):
        assert ops.post("/v1/accounts", json={**SIGNUP, "name": f"Ops {i}"}).status_code == 201
    _rate_limited(ops.post("/v1/accounts", json={**SIGNUP, "name": "Ops 2"}))
    other = live.client("operator2")
    assert other.post("/v1/accounts", json={**SIGNUP, "name": "Ops 3"}).status_code == 201


def test_failed_authentications_from_one_address_are_429_then_even_for_a_good_token(live_factory):
    live = live_factory(rate_auth_failures="3/minute", trusted_proxies=("127.0.0.1/32",))
    guesser = {"x-forwarded-for": "8.8.8.8"}
    for i in range(3):
        bad = live.client(None, authorization=f"Bearer mrd_user_guess{i}", **guesser)
        assert bad.get("/v1/policy").status_code == 401
    retry = _rate_limited(
        live.client(None, authorization="Bearer mrd_user_guess9", **guesser).get("/v1/policy")
    )
    assert retry >= 1
    # a stolen good token does not help from there, until the window clears
    stolen = live.client(None, authorization=f"Bearer {live.tokens['operator']}", **guesser)
    _rate_limited(stolen.get("/v1/policy"))
    # the pages' sign-in counts failures on the same door
    with httpx.Client(base_url=live.url, headers=guesser) as browser:
        assert browser.post("/login", data={"token": "mrd_user_guess10"}).status_code == 429
    # everyone else is unaffected
    assert live.client("operator").get("/v1/policy").status_code == 200


def test_sign_in_attempts_are_limited_per_address(live_factory):
    live = live_factory(rate_signin="2/minute", trusted_proxies=("127.0.0.1/32",))
    with httpx.Client(base_url=live.url, headers={"x-forwarded-for": "8.8.8.8"}) as browser:
        for _ in range(2):
            r = browser.post("/login", data={"token": live.tokens["operator"]})
            assert r.status_code == 303
            browser.cookies.clear()  # signed out again (a signed-in form would need its csrf)
        r = browser.post("/login", data={"token": live.tokens["operator"]})
        assert r.status_code == 429
        assert int(r.headers["retry-after"]) >= 1
        assert "too many sign-ins" in r.text


def test_decisions_are_counted_per_token_and_per_decision(live_factory):
    # an hour: the decisions' counter is a sliding-window approximation at a window's edge
    live = live_factory(rate_decisions="5/hour")
    ops = live.client("operator")
    assert ops.post("/v1/decisions:batch", json={"requests": [DECISION] * 4}).status_code == 200
    assert ops.post("/v1/decisions", json=DECISION).status_code == 200
    _rate_limited(ops.post("/v1/decisions", json=DECISION))
    _rate_limited(ops.post("/v1/decisions:batch", json={"requests": [DECISION]}))
    assert live.client("bizconf").post("/v1/decisions", json=DECISION).status_code == 200


def _join(live: Any, headers: dict[str, str]) -> tuple[dict[str, Any], int | None]:
    from websockets.asyncio.client import connect

    async def talk() -> tuple[dict[str, Any], int | None]:
        url = live.url.replace("http://", "ws://") + "/v1/meetings/mtg_nope/signal"
        async with connect(url, additional_headers=headers) as ws:
            join = {"type": "join", "public_key": "A" * 43, "signing_key": "A" * 43}
            await ws.send(json.dumps(join))
            answer = json.loads(await ws.recv())
            await ws.wait_closed()
            return answer, ws.close_code

    return asyncio.run(talk())


def test_joins_are_limited_per_token_and_per_guest_address(live_factory):
    live = live_factory(rate_joins="2/minute", trusted_proxies=("127.0.0.1/32",))
    guest = {"x-forwarded-for": "8.8.8.8"}
    for _ in range(2):
        answer, _ = _join(live, guest)
        assert answer["code"] == "not_found"  # counted, then judged
    answer, code = _join(live, guest)
    assert answer["type"] == "refused"
    assert answer["code"] == "rate_limited"
    assert answer["retry_after"] >= 1
    assert code == 4429
    # a token is counted on its own, wherever it comes from
    operator = {"authorization": f"Bearer {live.tokens['operator']}", **guest}
    assert _join(live, operator)[0]["code"] == "not_found"


def test_limits_are_shared_through_redis_by_two_replicas(live_factory):
    try:
        socket.create_connection(("127.0.0.1", 6379), timeout=2).close()
    except OSError:
        pytest.fail("no Redis at 127.0.0.1:6379 (the limits' shared store)")
    shared = {
        "redis_url": "redis://127.0.0.1:6379/0",
        "rate_signup": "3/minute",
        "trusted_proxies": ("127.0.0.1/32",),
        # replicas of one deployment share its log's name, which names their counters
        "log_origin": f"test-{secrets.token_hex(6)}.example/log",
    }
    one, two = live_factory(**shared), live_factory(**shared)
    here = {"x-forwarded-for": "8.8.8.8"}
    a, b = one.client(None, **here), two.client(None, **here)
    assert a.post("/v1/accounts", json={**SIGNUP, "name": "R1"}).status_code == 201
    assert b.post("/v1/accounts", json={**SIGNUP, "name": "R2"}).status_code == 201
    assert a.post("/v1/accounts", json={**SIGNUP, "name": "R3"}).status_code == 201
    _rate_limited(b.post("/v1/accounts", json={**SIGNUP, "name": "R4"}))
    _rate_limited(a.post("/v1/accounts", json={**SIGNUP, "name": "R5"}))


def test_a_rate_limit_store_that_does_not_answer_refuses_the_request(live_factory):
    """Fail closed: a limit that cannot be counted is not waived (503, one line)."""
    with socket.socket() as probe:  # a port nothing listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    live = live_factory(redis_url=f"redis://127.0.0.1:{port}/0")
    r = live.client().post("/v1/accounts", json={**SIGNUP, "name": "No Store"})
    assert r.status_code == 503, r.text
    message = r.json()["error"]["message"]
    assert message.startswith("the rate limits' store is unavailable")
    assert "\n" not in message
    with live.runtime.db.read() as session:
        from sqlalchemy import func, select

        from meridian.storage.models import Account

        assert session.scalar(select(func.count()).where(Account.name == "No Store")) == 0


def test_the_largest_bundle_the_api_accepts_fits_under_the_default_body_limit(live):
    """`PUT /v1/policy` takes up to 1,000,000 characters of YAML; sent as JSON with every one
    escaped (`\\uXXXX`, 6 bytes each) it is judged as a bundle, never refused as too large."""
    import json as _json

    body = _json.dumps({"yaml": "é" * 1_000_000})  # ensure_ascii: 6,000,013 bytes
    r = live.client("operator").put(
        "/v1/policy", content=body, headers={"content-type": "application/json"}
    )
    assert r.status_code == 422, r.text[:200]
    assert r.json()["error"]["code"] != "too_large"
