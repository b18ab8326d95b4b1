"""One partner never sees or changes another partner's customers, or a direct customer: 404, not 403."""

from __future__ import annotations

import pytest

pytestmark = pytest.mark.storage

USCC = ["91110000600037341L", "91330100MA27XL0R42", "91440300MA5G2YJ775"]


@pytest.fixture
def world(live):
    """Three CN customers: one of bizconf's, one of suirui's, one direct (bought before the cutover)."""
    live.clock.set("2020-07-01T10:00:00+08:00")
    out = {}
    reg = live.client().post(
        "/v1/accounts", json={"type": "organization", "name": "Direct", "country": "CN", "org_id": USCC[0]}
    ).json()
    live.tokens["direct"] = reg["token"]
    sub = live.client("direct").post(
        "/v1/checkout", json={"account": reg["account"]["id"], "plan": "pro", "channel": "direct"}
    )
    assert sub.status_code == 201, sub.text
    out["direct"] = (reg["account"]["id"], sub.json()["subscription"]["id"])
    for who, pid, code in (("bizconf", "bizconf", USCC[1]), ("suirui", "suirui-zhumu", USCC[2])):
        acc = live.client(who).post(
            "/v1/accounts", json={"type": "organization", "name": who, "country": "CN", "org_id": code}
        )
        assert acc.status_code == 201, acc.text
        account = acc.json()["account"]["id"]
        s = live.client(who).post(
            "/v1/checkout", json={"account": account, "plan": "pro", "channel": "partner", "partner": pid}
        )
        assert s.status_code == 201, s.text
        out[who] = (account, s.json()["subscription"]["id"])
    return out


def _reads(account, subscription):
    return [
        ("get", f"/v1/accounts/{account}", None),
        ("get", f"/v1/accounts/{account}/entitlements", None),
        ("get", f"/v1/accounts/{account}/notices", None),
        ("get", f"/v1/subscriptions/{subscription}", None),
        ("post", f"/v1/subscriptions/{subscription}/takeover", None),
    ]


@pytest.mark.parametrize(
    ("caller", "owners"),
    [("suirui", ["bizconf", "direct"]), ("bizconf", ["suirui", "direct"]), ("direct", ["bizconf", "suirui"])],
)
def test_objects_outside_the_callers_reach_are_not_found(live, world, caller, owners):
    client = live.client(caller)
    for owner in owners:
        account, subscription = world[owner]
        for method, path, body in _reads(account, subscription):
            if method == "post" and caller == "direct":
                continue  # a user token may not take over at all (a role check: 403)
            r = client.request(method, path, json=body)
            assert r.status_code == 404, (caller, owner, path, r.status_code)
            assert r.json()["error"]["code"] == "not_found"
        partner = {"bizconf": "bizconf", "suirui": "suirui-zhumu"}.get(caller)
        buy = client.post(
            "/v1/checkout",
            json={"account": account, "plan": "business", "channel": "partner" if partner else "direct", "partner": partner},
        )
        assert buy.status_code == 404, (caller, owner, buy.text)
        if caller == "direct":
            choose = client.post(f"/v1/subscriptions/{subscription}/partner", json={"partner": "bizconf"})
            assert choose.status_code == 404


def test_lists_hold_only_what_the_caller_may_see(live, world):
    for caller in ("bizconf", "suirui", "direct"):
        client = live.client(caller)
        accounts = client.get("/v1/accounts").json()
        assert [a["id"] for a in accounts["data"]] == [world[caller][0]]
        assert accounts["count"] == 1
        subs = client.get("/v1/subscriptions").json()
        assert [s["id"] for s in subs["data"]] == [world[caller][1]]
        for other in {"bizconf", "suirui", "direct"} - {caller}:
            filtered = client.get("/v1/subscriptions", params={"account": world[other][0]}).json()
            assert filtered == {"data": [], "count": 0}
    ops = live.client("operator").get("/v1/accounts").json()
    assert ops["count"] == 3


@pytest.mark.parametrize(
    ("who", "method", "path"),
    [
        ("bizconf", "get", "/v1/records"),
        ("bizconf", "get", "/v1/transitions?jurisdiction=CN&at=2020-08-23"),
        ("bizconf", "post", "/v1/renewals"),
        ("bizconf", "post", "/v1/tokens"),
        ("bizconf", "patch", "/v1/partners/bizconf"),
        ("bizconf", "put", "/v1/policy"),
        ("direct", "get", "/v1/records"),
        ("direct", "post", "/v1/accounts"),
    ],
)
def test_roles_that_may_not_call_an_endpoint_get_403(live, world, who, method, path):
    bodies = {
        "/v1/renewals": {},
        "/v1/tokens": {"role": "operator", "name": "x"},
        "/v1/partners/bizconf": {"contact": "x"},
        "/v1/policy": {"yaml": "bundle: x"},
        "/v1/accounts": {"type": "organization", "name": "x", "country": "US"},
    }
    r = live.client(who).request(method, path, json=bodies.get(path.split("?")[0]))
    assert r.status_code == 403, r.text
    assert r.json()["error"]["code"] == "forbidden"


def test_no_token_is_401_and_a_bad_token_is_401(live):
    assert live.client().get("/v1/accounts").status_code == 401
    bad = live.client(None, authorization="Bearer mrd_operator_nope").get("/v1/accounts")
    assert bad.status_code == 401
    assert bad.headers["www-authenticate"] == "Bearer"
    assert live.client(None, authorization="Basic abc").get("/v1/accounts").status_code == 401


def test_tokens_are_stored_hashed(live):
    from sqlalchemy import select

    from meridian.storage.models import Token

    with live.runtime.db.read() as session:
        hashes = set(session.scalars(select(Token.hash)))
    for secret in live.tokens.values():
        assert secret not in hashes
        assert all(secret not in h for h in hashes)


def test_a_revoked_token_stops_working(live):
    ops = live.client("operator")
    made = ops.post("/v1/tokens", json={"role": "partner", "name": "temp", "partner": "bizconf"})
    assert made.status_code == 201
    token = made.json()
    temp = live.client(None, authorization=f"Bearer {token['token']}")
    assert temp.get("/v1/accounts").status_code == 200
    revoked = ops.delete(f"/v1/tokens/{token['id']}")
    assert revoked.status_code == 200
    assert temp.get("/v1/accounts").status_code == 401
    assert ops.delete("/v1/tokens/tok_nope").status_code == 404
    assert live.client("bizconf").delete(f"/v1/tokens/{token['id']}").status_code == 403
    records = ops.get("/v1/records", params={"action": "token.revoke"}).json()["data"]
    assert [r["subject_id"] for r in records] == [token["id"]]
