"""Meetings over HTTP: the region setting, creating meetings, and the placement contract."""

from __future__ import annotations

import pytest
from sqlalchemy import select

from meridian.storage.models import Record

pytestmark = pytest.mark.storage

VALID_USCC = "91110000600037341L"


def paid_account(live, *, country="US", name="Acme"):
    """A direct customer on a Pro plan, with a user token of its own."""
    ops = live.client("operator")
    body = {"type": "organization", "name": name, "country": country}
    if country == "CN":
        body["org_id"] = VALID_USCC
    account = ops.post("/v1/accounts", json=body).json()["account"]
    r = ops.post(
        "/v1/checkout", json={"account": account["id"], "plan": "pro", "channel": "direct"}
    )
    assert r.status_code == 201, r.text
    live.token(account["id"], role="user", account_id=account["id"])
    return account


def free_account(live, *, country="US", name="Free"):
    body = {"type": "organization", "name": name, "country": country}
    if country == "CN":
        body["org_id"] = VALID_USCC
    r = live.client("operator").post("/v1/accounts", json=body)
    assert r.status_code == 201, r.text
    account = r.json()["account"]
    live.token(account["id"], role="user", account_id=account["id"])
    return account


def test_the_default_set_excludes_cn_and_keeps_home(live):
    live.clock.set("2021-03-01T10:00:00Z")
    account = paid_account(live)
    r = live.client(account["id"]).get(f"/v1/accounts/{account['id']}/regions")
    assert r.status_code == 200, r.text
    setting = r.json()
    assert setting["home_region"] == "US"
    assert setting["chosen"] is None
    assert "CN" not in setting["regions"]
    assert "US" in setting["regions"]


def test_an_account_admin_chooses_regions_and_the_home_region_stays(live):
    live.clock.set("2021-03-01T10:00:00Z")
    account = paid_account(live)
    user = live.client(account["id"])
    r = user.put(f"/v1/accounts/{account['id']}/regions", json={"regions": ["DE", "IE"]})
    assert r.status_code == 200, r.text
    assert r.json()["regions"] == ["DE", "IE", "US"]


def test_cn_needs_an_explicit_opt_in_recorded_with_who_made_it(live):
    live.clock.set("2021-03-01T10:00:00Z")
    account = paid_account(live)
    ops = live.client("operator")
    path = f"/v1/accounts/{account['id']}/regions"
    r = ops.put(path, json={"regions": ["US", "CN"]})
    assert r.status_code == 422
    assert (
        r.json()["error"]["message"]
        == "region `CN` needs an explicit opt-in for a host in `US`: add `CN` to `opt_in`"
    )
    r = ops.put(path, json={"regions": ["US", "CN"], "opt_in": ["CN"]})
    assert r.status_code == 200, r.text
    assert r.json()["regions"] == ["CN", "US"]
    assert r.json()["opt_in"] == ["CN"]
    with live.runtime.db.read() as session:
        entry = session.scalars(
            select(Record).where(
                Record.action == "account.regions", Record.subject_id == account["id"]
            )
        ).one()
        assert entry.details["opted_in_now"] == ["CN"]
        assert entry.actor.startswith("operator:psn_")
        assert entry.details["by"] == entry.actor
    meeting = (
        live.client(account["id"]).post("/v1/meetings", json={"topic": "with CN"}).json()["meeting"]
    )
    assert meeting["regions"] == ["CN", "US"]


def test_free_accounts_and_partners_cannot_choose(live):
    live.clock.set("2021-03-01T10:00:00Z")
    account = free_account(live)
    r = live.client(account["id"]).put(
        f"/v1/accounts/{account['id']}/regions", json={"regions": ["DE"]}
    )
    assert r.status_code == 403
    assert "free plan" in r.json()["error"]["message"]
    other = paid_account(live, name="Other")
    r = live.client(account["id"]).put(
        f"/v1/accounts/{other['id']}/regions", json={"regions": ["DE"]}
    )
    assert r.status_code == 404


def test_a_cn_free_account_cannot_host_after_may_20(live):
    live.clock.set("2020-06-01T10:00:00+08:00")
    account = free_account(live, country="CN", name="Free CN")
    r = live.client(account["id"]).post("/v1/meetings", json={})
    assert r.status_code == 403
    assert r.json()["error"]["code"] == "denied"
    assert "can join meetings but not host them" in r.json()["error"]["message"]


def test_a_cn_paid_host_gets_cn_only_and_a_us_host_everything_but_cn(live):
    live.clock.set("2021-03-01T10:00:00Z")
    cn = free_account(live, country="CN", name="CN org")
    ops = live.client("operator")
    r = ops.post(
        "/v1/checkout",
        json={"account": cn["id"], "plan": "pro", "channel": "partner", "partner": "bizconf"},
    )
    assert r.status_code == 201, r.text
    r = live.client(cn["id"]).post(
        "/v1/meetings", json={"topic": "CN", "countries": {"deny": ["KP"]}}
    )
    assert r.status_code == 201, r.text
    meeting = r.json()["meeting"]
    assert (meeting["regions"], meeting["key_region"], meeting["countries"]) == (
        ["CN"],
        "CN",
        {"deny": ["KP"]},
    )
    assert r.json()["signal"] == f"/v1/meetings/{meeting['id']}/signal"
    us = free_account(live, name="US free")
    meeting = live.client(us["id"]).post("/v1/meetings", json={}).json()["meeting"]
    assert "CN" not in meeting["regions"]
    assert meeting["key_region"] == "US"
    # scoping: the US user does not see the CN meeting
    assert live.client(us["id"]).get("/v1/meetings").json()["count"] == 1
    assert ops.get("/v1/meetings").json()["count"] == 2


def test_approve_and_deny_lists_together_are_refused(live):
    account = paid_account(live)
    r = live.client(account["id"]).post(
        "/v1/meetings", json={"countries": {"approve": ["DE"], "deny": ["KP"]}}
    )
    assert r.status_code == 422
    assert "not both" in r.json()["error"]["message"]


def test_placements_over_http(live):
    r = live.client("bizconf").post(
        "/v1/placements",
        json={
            "at": "2021-03-01T10:00:00Z",
            "meeting": {"host": {"country": "US", "plan": "pro"}, "regions": ["US", "DE", "HK"]},
            "participants": [{"id": "p1", "ip": "8.8.8.8"}, {"id": "p2", "country": "CN"}],
            "load": {"HK": 0.5},
        },
    )
    assert r.status_code == 200, r.text
    out = r.json()
    assert [p["dc"] for p in out["placements"]] == ["US", "HK"]
    assert out["links"] == [["HK", "US"]]
    assert live.client().post("/v1/placements", json={}).status_code == 401


def test_datacentres_lists_every_region(live):
    r = live.client("operator").get("/v1/datacentres")
    assert r.status_code == 200
    regions = {d["region"]: d for d in r.json()["data"]}
    assert set(regions) == {
        "AU",
        "LA",
        "CA",
        "CN",
        "DE",
        "HK",
        "IN",
        "IE",
        "TY",
        "MX",
        "NL",
        "SG",
        "US",
    }
    assert regions["CN"]["opt_in"] is True
    assert "mainland China" in regions["CN"]["notice"]
    assert regions["SG"]["opened"] == "2020-08-18"
    # no node is configured in this test server: every region is shown without one
    assert regions["US"]["node"] is None


@pytest.mark.parametrize(
    ("first", "message"),
    [
        (b"\x00binary", "expected `{\"type\": \"join\", \"name\", \"public_key\"}` first"),
        ("not json", "expected `{\"type\": \"join\", \"name\", \"public_key\"}` first"),
        ('{"type": "join", "public_key": "!!"}', "`public_key` `!!` is not unpadded base64url"),
        ('{"type": "join", "public_key": "AAAA"}', "public key must be 32 bytes of X25519, not `3`"),
        ('{"type": "join", "name": "a\\nb", "public_key": "' + "A" * 43 + '"}', "`name` must be printable"),
        ('{"type": "join", "public_key": "' + "A" * 43 + '"}', "`signing_key` must be a base64url string"),
        ('{"type": "join", "public_key": "' + "A" * 43 + '", "signing_key": "AAAA"}', "signing key must be 32 bytes of Ed25519, not `3`"),
        ('{"type": "join", "public_key": "' + "A" * 43 + '", "signing_key": "' + "A" * 43 + '"}', "no meeting `mtg_nope`"),
    ],
    ids=["binary", "not-json", "bad-base64", "short-key", "name", "no-signing-key", "short-signing-key", "unknown-meeting"],
)
def test_bad_signalling_input_gets_a_one_line_refusal(live, first, message):
    import asyncio
    import json

    from websockets.asyncio.client import connect

    async def talk():
        url = live.url.replace("http://", "ws://") + "/v1/meetings/mtg_nope/signal"
        async with connect(url) as ws:
            await ws.send(first)
            answer = json.loads(await ws.recv())
            await ws.wait_closed()
            return answer, ws.close_code

    answer, code = asyncio.run(talk())
    assert answer["type"] == "refused"
    assert message in answer["message"]
    assert "\n" not in answer["message"]
    assert code in (4400, 4403)
