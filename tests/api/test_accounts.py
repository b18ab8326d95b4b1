"""Sign-up over HTTP: the ``register`` decision at request time, with the request's evidence."""

from __future__ import annotations

import pytest

pytestmark = pytest.mark.storage

VALID_USCC = "91110000600037341L"
PILOT_USCC = "91350100M0001TGQXM"


def test_cn_individual_after_2020_05_01_is_refused_with_the_reason(live):
    live.clock.set("2020-05-02T10:00:00+08:00")
    r = live.client().post(
        "/v1/accounts", json={"type": "individual", "name": "Zhang San", "country": "CN"}
    )
    assert r.status_code == 403
    body = r.json()["error"]
    assert body["code"] == "denied"
    assert "only organisations may sign up in mainland China" in body["message"]
    assert [x["rule"] for x in body["decision"]["reasons"]] == ["cn-register-organisations-only"]
    # nothing was created, but the refusal is on record
    ops = live.client("operator")
    assert ops.get("/v1/accounts", params={"country": "CN"}).json()["count"] == 0
    records = ops.get("/v1/records", params={"action": "account.register"}).json()["data"]
    assert records[-1]["decision"]["decision"] == "deny"


def test_cn_individual_before_the_change_is_accepted(live):
    live.clock.set("2020-04-30T23:59:59+08:00")
    r = live.client().post(
        "/v1/accounts", json={"type": "individual", "name": "Zhang San", "country": "CN"}
    )
    assert r.status_code == 201, r.text
    assert r.json()["account"]["status"] == "active"


def test_cn_organisation_with_a_valid_code_is_accepted_and_gets_a_user_token(live):
    live.clock.set("2020-09-01T10:00:00+08:00")
    r = live.client().post(
        "/v1/accounts",
        json={"type": "organization", "name": "Example", "country": "cn", "org_id": " 91110000600037341l "},
    )
    assert r.status_code == 201, r.text
    body = r.json()
    account = body["account"]
    assert account["country"] == "CN"
    assert account["home_region"] == "CN"
    assert account["org_id"] == VALID_USCC  # stored normalised
    assert account["org_id_status"] == "valid"
    assert account["status"] == "active"
    assert body["decision"]["decision"] == "allow"
    assert body["decision"]["bundle"]["digest"] == live.runtime.digest
    me = httpx_get(live, body["token"], f"/v1/accounts/{account['id']}")
    assert me.status_code == 200
    assert me.json()["id"] == account["id"]


def httpx_get(live, token, path):
    return live.client(None, authorization=f"Bearer {token}").get(path)


def test_invalid_uscc_is_refused_naming_the_code(live):
    live.clock.set("2020-09-01T10:00:00+08:00")
    r = live.client().post(
        "/v1/accounts",
        json={"type": "organization", "name": "X", "country": "CN", "org_id": "91110000600037341A"},
    )
    assert r.status_code == 403
    assert "`91110000600037341A` is not a valid Unified Social Credit Code" in r.json()["error"]["message"]


def test_pilot_era_code_waits_for_review_and_an_operator_decides(live):
    live.clock.set("2020-09-01T10:00:00+08:00")
    r = live.client().post(
        "/v1/accounts",
        json={"type": "organization", "name": "Fuzhou", "country": "CN", "org_id": PILOT_USCC},
    )
    assert r.status_code == 201, r.text
    account = r.json()["account"]
    assert account["status"] == "pending_review"
    assert account["org_id_status"] == "pilot"
    ops = live.client("operator")
    pending = ops.get("/v1/accounts", params={"status": "pending_review"}).json()
    assert [a["id"] for a in pending["data"]] == [account["id"]]
    reviewed = ops.post(f"/v1/accounts/{account['id']}/review", json={"approve": True, "note": "licence seen"})
    assert reviewed.status_code == 200
    assert reviewed.json()["status"] == "active"
    again = ops.post(f"/v1/accounts/{account['id']}/review", json={"approve": True})
    assert again.status_code == 409
    partner = live.client("bizconf").post(f"/v1/accounts/{account['id']}/review", json={"approve": True})
    assert partner.status_code == 403


def test_client_ip_is_evidence_for_a_self_sign_up(live):
    """A US-declared individual connecting from a mainland China address is judged under CN too."""
    live.clock.set("2020-09-01T10:00:00+08:00")
    # 10.0.0.0/8 is a trusted proxy in the fixture, but the test client connects from 127.0.0.1,
    # which is not: its X-Forwarded-For is ignored.
    spoofed = live.client(None, **{"x-forwarded-for": "114.114.114.114"}).post(
        "/v1/accounts", json={"type": "individual", "name": "A", "country": "US"}
    )
    assert spoofed.status_code == 201
    assert [e["value"] for e in spoofed.json()["decision"]["location"]["evidence"] if e["signal"] == "ip"] == ["127.0.0.1"]


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"type": "person", "name": "A", "country": "US"}, "body.type"),
        ({"type": "individual", "name": "A", "country": "XX"}, "body.country"),
        ({"type": "individual", "name": "", "country": "US"}, "body.name"),
        ({"type": "individual", "name": "A\u0000B", "country": "US"}, "body.name"),
        ({"type": "individual", "name": "A", "country": "US", "extra": 1}, "body.extra"),
        ({"type": "individual", "country": "US"}, "body.name"),
    ],
    ids=["type", "country", "empty-name", "nul", "unknown-field", "missing-name"],
)
def test_bad_sign_up_is_422_naming_the_field(live, body, field):
    r = live.client().post("/v1/accounts", json=body)
    assert r.status_code == 422
    err = r.json()["error"]
    assert err["code"] == "invalid"
    assert field in [f["field"] for f in err["fields"]]
    assert "\n" not in err["message"]


def test_partner_creates_customers_only_in_its_jurisdictions(live):
    live.clock.set("2020-09-01T10:00:00+08:00")
    bz = live.client("bizconf")
    ok = bz.post(
        "/v1/accounts",
        json={"type": "organization", "name": "Customer", "country": "CN", "org_id": VALID_USCC},
    )
    assert ok.status_code == 201, ok.text
    assert ok.json()["account"]["partner_id"] == "bizconf"
    assert ok.json()["token"] is None  # the customer's own token is not the partner's to hold
    outside = bz.post("/v1/accounts", json={"type": "organization", "name": "US Co", "country": "US"})
    assert outside.status_code == 403
    assert outside.json()["error"]["code"] == "forbidden"


def test_a_refused_sign_up_says_what_to_do_instead(live):
    live.clock.set("2020-05-02T10:00:00+08:00")
    r = live.client().post(
        "/v1/accounts", json={"type": "individual", "name": "Zhang San", "country": "CN"}
    )
    assert r.status_code == 403
    body = r.json()["error"]
    # the existing fields stay as they were, and the advice comes beside them
    assert body["code"] == "denied"
    assert [x["rule"] for x in body["decision"]["reasons"]] == ["cn-register-organisations-only"]
    advice = body["advice"]
    assert [a["kind"] for a in advice] == ["other_type", "join", "partners"]
    assert advice[0]["rule"] == "cn-register-organisations-only"
    assert advice[0]["jurisdiction"] == "CN"
    assert advice[0]["text"].startswith("Sign-ups in mainland China are for organisations")
    assert "without an account" in advice[1]["text"]
    assert [p["id"] for p in advice[2]["partners"]] == ["bizconf", "suirui-zhumu", "systec-umeet"]
    assert "Bizconf Communications" in advice[2]["text"]
