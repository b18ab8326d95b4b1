"""``Idempotency-Key`` over HTTP, on both backends, with Stripe's semantics.

The first response to a key is stored and every retry with the same parameters gets its exact
bytes back (``Idempotent-Replayed: true``); the same key with other parameters is 422; while the
first request is in flight a duplicate is 409; a key left in flight by a crashed holder is taken
over once its lease has run out; keys belong to one caller; a 5xx is not stored.

"In flight" is made deterministic by writing the key's row as a running request would leave it,
never by racing a slow request against a timer.
"""

from __future__ import annotations

import json
import threading
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
from sqlalchemy import func, select, update

from meridian.storage.models import Account, IdempotencyKey

pytestmark = pytest.mark.storage

VALID_USCC = "91110000600037341L"


def _body(name: str) -> dict[str, Any]:
    return {"type": "organization", "name": name, "country": "US"}


def _accounts_named(live: Any, name: str) -> int:
    with live.runtime.db.read() as session:
        return session.scalar(select(func.count()).where(Account.name == name)) or 0


def _row(live: Any, key: str) -> IdempotencyKey | None:
    with live.runtime.db.read() as session:
        return session.scalars(select(IdempotencyKey).where(IdempotencyKey.key == key)).first()


def _set_in_flight(live: Any, key: str, lease: timedelta) -> None:
    """Leave the key's row as a request still running (or one whose process died) would."""
    with live.runtime.db.write() as session:
        changed = session.execute(
            update(IdempotencyKey)
            .where(IdempotencyKey.key == key)
            .values(
                state="in_flight",
                status_code=None,
                body=None,
                lease_until=datetime.now(UTC) + lease,
            )
        )
        assert changed.rowcount == 1  # type: ignore[attr-defined]


def _post(client: httpx.Client, path: str, body: Any, key: str | None) -> httpx.Response:
    headers = {} if key is None else {"idempotency-key": key}
    return client.post(path, json=body, headers=headers)


# -- replay ------------------------------------------------------------------------------------


def test_a_retry_gets_the_first_response_byte_for_byte(live):
    ops = live.client("operator")
    first = _post(ops, "/v1/accounts", _body("Replay Co"), "k-1")
    assert first.status_code == 201, first.text
    assert "idempotent-replayed" not in first.headers
    for _ in range(2):
        again = _post(ops, "/v1/accounts", _body("Replay Co"), "k-1")
        assert again.status_code == 201
        assert again.content == first.content
        assert again.headers["idempotent-replayed"] == "true"
        assert again.headers["content-type"] == first.headers["content-type"]
    # the same parameters written differently are the same parameters
    reordered = ops.post(
        "/v1/accounts",
        content=b'{ "country":"US",\n "name": "Replay Co", "type":"organization"}',
        headers={"idempotency-key": "k-1", "content-type": "application/json"},
    )
    assert reordered.content == first.content
    assert reordered.headers["idempotent-replayed"] == "true"
    assert _accounts_named(live, "Replay Co") == 1
    # without a key, the same request is a new one
    assert _post(ops, "/v1/accounts", _body("Replay Co"), None).status_code == 201
    assert _accounts_named(live, "Replay Co") == 2


def test_a_retried_checkout_is_replayed_not_refused_as_a_second_subscription(live):
    ops = live.client("operator")
    account = _post(ops, "/v1/accounts", _body("Buyer"), None).json()["account"]["id"]
    order = {"account": account, "plan": "pro", "channel": "direct"}
    first = _post(ops, "/v1/checkout", order, "order-1")
    assert first.status_code == 201, first.text
    again = _post(ops, "/v1/checkout", order, "order-1")
    assert (again.status_code, again.content) == (201, first.content)
    assert again.headers["idempotent-replayed"] == "true"
    # a new key is a new purchase: one subscription at a time
    assert _post(ops, "/v1/checkout", order, "order-2").status_code == 409
    subs = ops.get("/v1/subscriptions", params={"account": account}).json()
    assert subs["count"] == 1


def test_a_refusal_is_stored_and_replayed_too(live):
    live.clock.set("2020-09-01T10:00:00+08:00")
    client = live.client("operator")
    body = {"type": "individual", "name": "Zhang San", "country": "CN"}
    first = _post(client, "/v1/accounts", body, "refused")
    assert first.status_code == 403
    assert first.json()["error"]["code"] == "denied"
    again = _post(client, "/v1/accounts", body, "refused")
    assert (again.status_code, again.content) == (403, first.content)
    assert again.headers["idempotent-replayed"] == "true"


def test_the_response_is_kept_in_the_database_for_another_server(live, live_factory):
    ops = live.client("operator")
    first = _post(ops, "/v1/accounts", _body("Kept Co"), "kept")
    assert first.status_code == 201
    other = live_factory()  # a second process's worth of server on the same database
    again = other.client(None, authorization=f"Bearer {live.tokens['operator']}").post(
        "/v1/accounts", json=_body("Kept Co"), headers={"idempotency-key": "kept"}
    )
    assert (again.status_code, again.content) == (201, first.content)
    assert again.headers["idempotent-replayed"] == "true"


# -- other parameters --------------------------------------------------------------------------


def test_the_same_key_with_other_parameters_is_422(live):
    ops = live.client("operator")
    first = _post(ops, "/v1/accounts", _body("First Co"), "k-2")
    assert first.status_code == 201
    other_body = _post(ops, "/v1/accounts", _body("Second Co"), "k-2")
    assert other_body.status_code == 422
    error = other_body.json()["error"]
    assert error["code"] == "invalid"
    assert "`Idempotency-Key` `k-2` was already used with different parameters" in error["message"]
    assert "idempotent-replayed" not in other_body.headers
    other_path = _post(ops, "/v1/tokens", {"role": "operator", "name": "First Co"}, "k-2")
    assert other_path.status_code == 422
    assert _accounts_named(live, "Second Co") == 0
    # the key still answers its own request with the first response
    again = _post(ops, "/v1/accounts", _body("First Co"), "k-2")
    assert (again.status_code, again.content) == (201, first.content)


# -- in flight ---------------------------------------------------------------------------------


def test_a_duplicate_while_the_first_is_in_flight_is_409(live):
    ops = live.client("operator")
    assert _post(ops, "/v1/accounts", _body("Busy Co"), "busy").status_code == 201
    _set_in_flight(live, "busy", lease=timedelta(minutes=5))
    duplicate = _post(ops, "/v1/accounts", _body("Busy Co"), "busy")
    assert duplicate.status_code == 409
    error = duplicate.json()["error"]
    assert error["code"] == "conflict"
    assert "still in progress" in error["message"]
    assert _accounts_named(live, "Busy Co") == 1  # the duplicate did not run
    row = _row(live, "busy")
    assert row is not None
    assert row.state == "in_flight"  # and left the holder's claim alone
    # other parameters are still told apart from a duplicate
    assert _post(ops, "/v1/accounts", _body("Other Co"), "busy").status_code == 422


def test_a_key_left_in_flight_past_its_lease_is_taken_over(live):
    """A holder that died (its lease ran out) does not block the key forever: a retry runs."""
    ops = live.client("operator")
    first = _post(ops, "/v1/accounts", _body("Crashed Co"), "stale")
    assert first.status_code == 201
    _set_in_flight(live, "stale", lease=timedelta(seconds=-1))
    retry = _post(ops, "/v1/accounts", _body("Crashed Co"), "stale")
    assert retry.status_code == 201, retry.text
    assert "idempotent-replayed" not in retry.headers
    assert retry.json()["account"]["id"] != first.json()["account"]["id"]  # it ran again
    row = _row(live, "stale")
    assert row is not None
    assert row.state == "done"
    assert row.body == retry.content
    replay = _post(ops, "/v1/accounts", _body("Crashed Co"), "stale")
    assert replay.content == retry.content
    assert replay.headers["idempotent-replayed"] == "true"


def _concurrently(n: int, call: Any) -> list[httpx.Response]:
    barrier = threading.Barrier(n)
    results: list[Any] = [None] * n

    def run(i: int) -> None:
        barrier.wait()
        results[i] = call()

    threads = [threading.Thread(target=run, args=(i,)) for i in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    assert all(isinstance(r, httpx.Response) for r in results)
    return results


def _one_original(responses: list[httpx.Response]) -> httpx.Response:
    """Exactly one response ran the request; every other is a 409 or a replay of it."""
    originals = [
        r for r in responses if r.status_code == 201 and "idempotent-replayed" not in r.headers
    ]
    assert len(originals) == 1, [(r.status_code, r.text[:80]) for r in responses]
    for r in responses:
        if r is not originals[0]:
            assert r.status_code == 409 or (
                r.content == originals[0].content and r.headers["idempotent-replayed"] == "true"
            ), (r.status_code, r.text)
    return originals[0]


def test_concurrent_duplicates_run_once(live):
    clients = [live.client("operator") for _ in range(8)]
    responses = _concurrently(
        8, lambda: _post(clients.pop(), "/v1/accounts", _body("Rush Co"), "rush")
    )
    _one_original(responses)
    assert _accounts_named(live, "Rush Co") == 1


def test_concurrent_retries_of_a_stale_key_take_it_over_once(live):
    ops = live.client("operator")
    assert _post(ops, "/v1/accounts", _body("Stampede Co"), "stampede").status_code == 201
    _set_in_flight(live, "stampede", lease=timedelta(seconds=-1))
    clients = [live.client("operator") for _ in range(8)]
    responses = _concurrently(
        8, lambda: _post(clients.pop(), "/v1/accounts", _body("Stampede Co"), "stampede")
    )
    _one_original(responses)
    assert _accounts_named(live, "Stampede Co") == 2  # the first run and one retake


# -- callers -----------------------------------------------------------------------------------


def test_keys_are_scoped_to_the_caller(live):
    live.clock.set("2020-09-01T10:00:00+08:00")
    body = {"type": "organization", "name": "Shared Key", "country": "CN", "org_id": VALID_USCC}
    responses = [
        _post(live.client(who), "/v1/accounts", body, "shared")
        for who in ("operator", "operator2", "bizconf", None)
    ]
    for r in responses:
        assert r.status_code == 201, r.text
        assert "idempotent-replayed" not in r.headers
    assert len({r.json()["account"]["id"] for r in responses}) == 4
    assert _accounts_named(live, "Shared Key") == 4
    # and each caller's retry gets its own first response
    again = _post(live.client("operator2"), "/v1/accounts", body, "shared")
    assert again.content == responses[1].content


# -- errors ------------------------------------------------------------------------------------


def test_a_server_error_is_not_stored_and_a_retry_runs(live, monkeypatch):
    from meridian.errors import StorageUnavailableError
    from meridian.identity import accounts

    real = accounts.register
    failures: list[BaseException] = [
        RuntimeError("boom"),
        StorageUnavailableError("the database is unavailable: test"),
    ]

    def failing(*args: Any, **kwargs: Any) -> Any:
        raise failures.pop(0)

    monkeypatch.setattr(accounts, "register", failing)
    crashed = _post(live.client("operator"), "/v1/accounts", _body("Flaky Co"), "flaky")
    assert crashed.status_code == 500
    assert _row(live, "flaky") is None
    # (uvicorn closes the connection after an unhandled error: a new client for what follows)
    ops = live.client("operator")
    unavailable = _post(ops, "/v1/accounts", _body("Flaky Co"), "flaky")
    assert unavailable.status_code == 503
    assert "idempotent-replayed" not in unavailable.headers
    assert _row(live, "flaky") is None
    monkeypatch.setattr(accounts, "register", real)
    ran = _post(ops, "/v1/accounts", _body("Flaky Co"), "flaky")
    assert ran.status_code == 201
    assert "idempotent-replayed" not in ran.headers
    assert _accounts_named(live, "Flaky Co") == 1


@pytest.mark.parametrize(
    "key",
    [b"", b"k" * 256, b"caf\xc3\xa9", b"\xff", b"tab\there"],
    ids=["empty", "too-long", "utf-8", "latin-1", "control"],
)
def test_a_malformed_key_is_422_and_nothing_runs(live, key):
    r = live.client("operator").post(
        "/v1/accounts", json=_body("Bad Key Co"), headers={"idempotency-key": key}
    )
    assert r.status_code == 422
    assert r.json()["error"]["code"] == "invalid"
    assert "`Idempotency-Key`" in r.json()["error"]["message"]
    assert _accounts_named(live, "Bad Key Co") == 0


def test_the_longest_key_is_accepted(live):
    ops = live.client("operator")
    key = "k" * 255
    first = _post(ops, "/v1/accounts", _body("Long Key Co"), key)
    again = _post(ops, "/v1/accounts", _body("Long Key Co"), key)
    assert first.status_code == 201
    assert again.content == first.content
    assert json.loads(again.content)["account"]["name"] == "Long Key Co"


# -- secrets at rest (issue 14) ----------------------------------------------------------------


def _secrets_in(row: IdempotencyKey | None) -> bytes:
    assert row is not None
    assert row.body is not None
    return row.body


def test_a_replayed_self_sign_up_never_carries_the_token(live):
    anonymous = live.client()
    first = _post(anonymous, "/v1/accounts", _body("Secret Co"), "signup-1")
    assert first.status_code == 201, first.text
    token = first.json()["token"]
    assert token.startswith("mrd_")
    # the stored row holds no token, not even part of it
    stored = _secrets_in(_row(live, "signup-1"))
    assert token.encode() not in stored
    assert b"mrd_" not in stored
    again = _post(anonymous, "/v1/accounts", _body("Secret Co"), "signup-1")
    assert again.status_code == 201
    assert again.headers["idempotent-replayed"] == "true"
    assert again.json()["token"] is None
    assert again.json()["account"] == first.json()["account"]
    assert token not in again.text
    assert _accounts_named(live, "Secret Co") == 1


def test_a_replayed_token_mint_never_carries_the_secret(live):
    ops = live.client("operator")
    body = {"role": "operator", "name": "minted once"}
    first = _post(ops, "/v1/tokens", body, "mint-1")
    assert first.status_code == 201, first.text
    secret = first.json()["token"]
    stored = _secrets_in(_row(live, "mint-1"))
    assert secret.encode() not in stored
    assert b"mrd_" not in stored
    again = _post(ops, "/v1/tokens", body, "mint-1")
    assert again.status_code == 201
    assert again.headers["idempotent-replayed"] == "true"
    assert again.json()["token"] is None
    assert again.json()["id"] == first.json()["id"]  # the same token, shown without its secret
    # the minted token works: its secret went out once, on the first response
    assert live.client(None, authorization=f"Bearer {secret}").get("/v1/policy").status_code == 200


def test_rows_expire_and_are_purged(live):
    from meridian.http.idempotency import purge_expired

    ops = live.client("operator")
    first = _post(ops, "/v1/accounts", _body("Old Co"), "old")
    assert first.status_code == 201
    assert _post(ops, "/v1/accounts", _body("Kept Co"), "young").status_code == 201
    with live.runtime.db.write() as session:
        session.execute(
            update(IdempotencyKey)
            .where(IdempotencyKey.key == "old")
            .values(created_at=datetime.now(UTC) - timedelta(hours=25))
        )
    # past its 24 h the key is forgotten: the same request runs again, and is not a replay
    again = _post(ops, "/v1/accounts", _body("Old Co"), "old")
    assert again.status_code == 201
    assert "idempotent-replayed" not in again.headers
    assert _accounts_named(live, "Old Co") == 2
    with live.runtime.db.write() as session:
        session.execute(
            update(IdempotencyKey)
            .where(IdempotencyKey.key == "old")
            .values(created_at=datetime.now(UTC) - timedelta(hours=25))
        )
    removed = purge_expired(live.runtime.db, ttl=live.runtime.settings.idempotency_ttl)
    assert removed == 1
    assert _row(live, "old") is None
    assert _row(live, "young") is not None


def test_two_clients_behind_a_trusted_proxy_are_kept_apart(live_factory):
    """Behind a proxy every client has the proxy's socket address: the key is scoped by the client."""
    live = live_factory(trusted_proxies=("127.0.0.1/32",))
    alice = live.client(None, **{"x-forwarded-for": "8.8.8.8"})
    bob = live.client(None, **{"x-forwarded-for": "8.8.4.4"})
    first = _post(alice, "/v1/accounts", _body("Proxied Co"), "same-key")
    second = _post(bob, "/v1/accounts", _body("Proxied Co"), "same-key")
    assert first.status_code == second.status_code == 201, (first.text, second.text)
    assert "idempotent-replayed" not in second.headers
    assert first.json()["account"]["id"] != second.json()["account"]["id"]
    assert second.json()["token"] is not None
    assert second.json()["token"] != first.json()["token"]
    # and alice's own retry is still hers
    again = _post(alice, "/v1/accounts", _body("Proxied Co"), "same-key")
    assert again.headers["idempotent-replayed"] == "true"
    assert again.json()["account"]["id"] == first.json()["account"]["id"]


def test_a_replayed_meeting_creation_never_carries_the_invite(live):
    # the join secret is shown once, like a token: an idempotent replay must not keep it at rest
    from tests.api.test_meetings import paid_account

    account = paid_account(live, name="Invite Co")
    host = live.client(account["id"])
    first = _post(host, "/v1/meetings", {"topic": "board"}, "meet-1")
    assert first.status_code == 201, first.text
    invite = first.json()["invite"]
    assert invite
    stored = _secrets_in(_row(live, "meet-1"))
    assert invite.encode() not in stored
    again = _post(host, "/v1/meetings", {"topic": "board"}, "meet-1")
    assert again.status_code == 201
    assert again.headers["idempotent-replayed"] == "true"
    assert again.json()["meeting"]["id"] == first.json()["meeting"]["id"]
    assert again.json()["invite"] is None
    assert again.json()["join_url"] is None
