"""The app itself: OpenAPI and docs, the bundle in force over HTTP, decisions, background jobs."""

from __future__ import annotations

import time

import pytest

from meridian.policy.loader import default_bundle_path

pytestmark = pytest.mark.storage

CONTRACT = {
    "action": "purchase",
    "at": "2020-08-23T09:00:00+08:00",
    "subject": {"type": "organization", "country": "CN", "ip": "114.114.114.114"},
    "resource": {"channel": "direct"},
}


def wait_for(condition, timeout=20.0):
    """Poll ``condition`` until it holds (background jobs run on their own schedule)."""
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "condition not met in time"
        time.sleep(0.05)


def test_openapi_documents_every_endpoint_with_its_roles(live):
    spec = live.client().get("/openapi.json").json()
    operations = [(p, m, op) for p, ops in spec["paths"].items() for m, op in ops.items()]
    assert len(operations) >= 20
    for path, method, op in operations:
        assert op.get("summary"), (method, path)
        if path not in {"/v1/health"}:
            text = op["summary"] + op.get("description", "")
            assert "Role" in text or "Public" in text or "Anyone" in text, (method, path)
    assert "/v1/noop" not in spec["paths"]
    assert live.client().get("/docs").status_code == 200


def test_decisions_answer_the_contract_and_are_recorded(live):
    ops = live.client("operator")
    r = ops.post("/v1/decisions", json=CONTRACT)
    assert r.status_code == 200
    d = r.json()
    assert (d["decision"], d["reasons"][0]["rule"]) == ("deny", "cn-direct-sales-end")
    assert d["bundle"]["digest"] == live.runtime.digest
    batch = ops.post("/v1/decisions:batch", json={"requests": [CONTRACT, {"action": "fly"}, CONTRACT]})
    assert batch.status_code == 200
    out = batch.json()["decisions"]
    assert [x.get("decision") for x in out] == ["deny", None, "deny"]
    assert out[1]["index"] == 1
    assert "`action` is `fly`" in out[1]["error"]["message"]

    def recorded():
        rows = ops.get("/v1/records", params={"action": "decision.advisory"}).json()["data"]
        return sum(r["details"]["count"] for r in rows) == 3

    wait_for(recorded)
    assert live.client().post("/v1/decisions", json=CONTRACT).status_code == 401


@pytest.mark.parametrize(
    ("body", "fragment"),
    [
        (b"{", "malformed json"),
        (b'{"action": "join"}', "missing field `subject`"),
        (b'{"action": "join", "subject": {"type": "individual", "ip": "999.1.1.1"}}', "invalid ip address `999.1.1.1`"),
        (b"\xff\xfe", "not utf-8"),
    ],
)
def test_bad_decision_requests_are_422_in_one_line(live, body, fragment):
    r = live.client("operator").post("/v1/decisions", content=body)
    assert r.status_code == 422
    message = r.json()["error"]["message"]
    assert fragment in message
    assert "\n" not in message


def test_batch_limits(live):
    ops = live.client("operator")
    assert ops.post("/v1/decisions:batch", json={"requests": [CONTRACT] * 1001}).status_code == 422
    assert ops.post("/v1/decisions:batch", json=[CONTRACT]).status_code == 422
    assert ops.post("/v1/decisions:batch", json={"requests": []}).json() == {"decisions": [], "count": 0}


def test_loading_a_bundle_over_http_validates_first_and_is_refused_whole(live):
    ops = live.client("operator")
    before = ops.get("/v1/policy").json()
    bad = ops.put("/v1/policy", json={"yaml": "bundle: x\nversion: '1'\nrules:\n  - id: 1\n"})
    assert bad.status_code == 422
    assert bad.json()["error"]["message"].startswith("<api>:")
    assert ops.get("/v1/policy").json() == before
    text = default_bundle_path().read_text(encoding="utf-8").replace(
        'version: "2020.12.18"', 'version: "2026.3"'
    )
    # a valid bundle is only proposed: nothing changes until a second operator approves it
    proposed = ops.put("/v1/policy", json={"yaml": text})
    assert proposed.status_code == 202, proposed.text
    change = proposed.json()
    assert change["state"] == "proposed"
    assert change["bundle"]["version"] == "2026.3"
    assert ops.get("/v1/policy").json() == before
    approved = live.client("operator2").post(
        f"/v1/policy/changes/{change['id']}/approve", json={"diff": change["diff_digest"]}
    )
    assert approved.status_code == 200, approved.text
    ok = ops.get("/v1/policy")
    assert ok.json()["version"] == "2026.3"
    decided = ops.post("/v1/decisions", json=CONTRACT).json()
    assert decided["bundle"]["digest"] == ok.json()["digest"] != before["digest"]
    loads = ops.get("/v1/records", params={"action": "policy.load"}).json()["data"]
    assert loads[-1]["details"]["previous"] == before["digest"]


def test_a_hostile_bundle_over_http_is_a_422_listing_its_problems_fast(live):
    ops = live.client("operator")
    before = ops.get("/v1/policy").json()
    bomb = "".join(
        f"{c}: &{c} [{','.join([f'*{p}'] * 9) if p else ','.join(['lol'] * 9)}]\n"
        for p, c in zip(["", *"abcdefgh"], "abcdefghi", strict=True)
    )
    selfish = "bundle: &x [*x]\nversion: '1'\nrules: []\n"
    for text, first in ((bomb, "yaml anchors are not allowed in a bundle: `&a`"), (selfish, "yaml anchors")):
        started = time.monotonic()
        bad = ops.put("/v1/policy", json={"yaml": text})
        assert time.monotonic() - started < 5
        assert bad.status_code == 422, bad.text
        error = bad.json()["error"]
        assert error["message"].startswith(f"<api>:1: {first}")
        assert error["problems"][0] == {"source": "<api>", "line": 1, "message": error["message"].removeprefix("<api>:1: ")}
        assert any("yaml aliases" in p["message"] for p in error["problems"])
    text = default_bundle_path().read_text(encoding="utf-8")
    both = text.replace("effect: forbid", "effect: block", 1).replace(
        "jurisdictions: [CN]\n    effective: {from: 2020-05-20}",
        "jurisdictions: [XX]\n    effective: {from: 2020-05-20}",
    )
    refused = ops.put("/v1/policy", json={"yaml": both}).json()["error"]["problems"]
    assert any(p["message"].startswith("`rules.") for p in refused)
    assert any(p["message"].startswith("unknown jurisdiction `XX`") for p in refused)
    assert ops.get("/v1/policy").json() == before


def test_the_service_renews_on_its_own_schedule(live_factory, clock):
    clock.set("2021-01-05T10:00:00-05:00")
    live = live_factory(renew_interval=0.2)
    ops = live.client("operator")
    acc = ops.post("/v1/accounts", json={"type": "organization", "name": "A", "country": "US"}).json()
    sub = ops.post(
        "/v1/checkout", json={"account": acc["account"]["id"], "plan": "pro", "channel": "online"}
    ).json()["subscription"]
    clock.set("2021-02-06T00:00:00Z")
    wait_for(lambda: ops.get(f"/v1/subscriptions/{sub['id']}").json()["period_end"] != sub["period_end"])
    assert ops.get(f"/v1/subscriptions/{sub['id']}").json()["period_end"].startswith("2021-03-05")


def test_public_endpoints(live):
    c = live.client()
    plans = c.get("/v1/plans").json()
    free = next(p for p in plans["data"] if p["id"] == "free")
    assert (free["paid"], free["meeting_minutes"]) == (False, 40)
    assert [p["id"] for p in c.get("/v1/partners", params={"jurisdiction": "CN"}).json()["data"]] == [
        "bizconf",
        "suirui-zhumu",
        "systec-umeet",
    ]
    assert c.get("/v1/partners/nobody").status_code == 404
    assert c.get("/v1/health").json()["status"] == "ok"
    assert c.get("/v1/nowhere").json()["error"]["code"] == "not_found"
    assert c.delete("/v1/plans").status_code == 405


def test_a_purchase_through_a_partner_nobody_authorised_is_a_denial_not_a_422(live):
    # issue 19: an unknown partner is a partner nobody authorised, so the answer is a refusal
    # that names it and offers the authorised partners, not a malformed request.
    body = {**CONTRACT, "resource": {"channel": "partner", "partner": "acme"}}
    r = live.client("operator").post("/v1/decisions", json=body)
    assert r.status_code == 200, r.text
    d = r.json()
    assert d["decision"] == "deny"
    assert [x["rule"] for x in d["reasons"]] == ["partner-not-authorised"]
    assert "`acme`" in d["reasons"][0]["message"]
    assert [p["id"] for p in d["alternatives"]["partners"]] == [
        "bizconf",
        "suirui-zhumu",
        "systec-umeet",
    ]
