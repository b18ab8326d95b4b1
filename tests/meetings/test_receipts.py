"""Residency receipts end to end: a real control plane, region-node processes and participants.

The host of an ended meeting gets a receipt that verifies offline with the log key and the
nodes' own keys and says where the meeting went; anyone who may not see the meeting gets the
404 a meeting that does not exist gets; a live meeting has no receipt (409, said plainly).
"""

from __future__ import annotations

import asyncio
from collections.abc import Coroutine
from typing import Any

import httpx
import pytest
from tests.conftest import Live
from tests.support import aeventually
from typer.testing import CliRunner

from meridian.cli.app import app
from meridian.client.participant import Participant
from meridian.meetings.residency import verify_receipt

pytestmark = pytest.mark.storage

US_IP, HK_IP, CN_IP = "8.8.8.8", "1.64.0.1", "114.114.114.114"
USCC = "91330100MA27XL0R42"  # a valid unified social credit code (tests/api/test_scoping.py)


def run(scenario: Coroutine[Any, Any, Any]) -> Any:
    return asyncio.run(asyncio.wait_for(scenario, 90))


def account(plane: Live, name: str, country: str = "US") -> str:
    ops = plane.client("operator")
    body = {"type": "organization", "name": name, "country": country}
    made = ops.post("/v1/accounts", json=body).json()["account"]
    checkout = {"account": made["id"], "plan": "pro", "channel": "direct"}
    assert ops.post("/v1/checkout", json=checkout).status_code == 201
    plane.token(made["id"], role="user", account_id=made["id"])
    return str(made["id"])


def create_meeting(plane: Live, host: str) -> str:
    r = plane.client(host).post("/v1/meetings", json={})
    assert r.status_code == 201, r.text
    plane.invites[r.json()["meeting"]["id"]] = r.json()["invite"]
    return str(r.json()["meeting"]["id"])


def node_keys(nodes: Any) -> dict[str, str]:
    """Each node's public key, read from the node itself (not from the control plane)."""
    return {
        region: httpx.get(f"{node.url}/v1/node/key").json()["key"]
        for region, node in nodes.nodes.items()
    }


async def hold(plane: Live, meeting: str, *, leave_early: bool) -> None:
    """ana in the US and bo in Hong Kong say hello; bo leaves before the end if asked."""
    invite = plane.invites[meeting]
    ana = await Participant.join(plane.url, meeting, name="ana", forwarded_for=US_IP, invite=invite)
    bo = await Participant.join(plane.url, meeting, name="bo", forwarded_for=HK_IP, invite=invite)
    await ana.wait_for_others(1, timeout=10)
    await bo.wait_for_others(1, timeout=10)
    await ana.send_chat("hello from Denver")
    await bo.receive(timeout=10)
    await bo.send_chat("hello from Hong Kong")
    await ana.receive(timeout=10)
    if leave_early:
        await bo.leave()
    # the relays counted the frames before the meeting ends (the counters are final then)
    await aeventually(lambda: _counted(plane, meeting), timeout=10, what="frames counted")
    r = await asyncio.to_thread(
        plane.client(_host_of(plane, meeting)).post, f"/v1/meetings/{meeting}/end"
    )
    assert r.status_code == 200, r.text
    await ana.leave()
    if not leave_early:
        await bo.leave()


def _host_of(plane: Live, meeting: str) -> str:
    return str(plane.client("operator").get(f"/v1/meetings/{meeting}").json()["host_account_id"])


async def _counted(plane: Live, meeting: str) -> bool:
    regions = (
        await asyncio.to_thread(plane.client("operator").get, f"/v1/meetings/{meeting}/carried")
    ).json()["regions"]
    return all(regions[r].get("frames_in", 0) >= 1 for r in ("US", "HK"))


@pytest.mark.parametrize("database_url", ["sqlite", "postgresql"], indirect=True)
def test_the_host_gets_a_receipt_that_verifies_and_says_where_the_meeting_went(plane, nodes):
    host = account(plane, "Host")
    meeting = create_meeting(plane, host)
    run(hold(plane, meeting, leave_early=True))

    got = plane.client(host).get(f"/v1/meetings/{meeting}/receipt")
    assert got.status_code == 200, got.text
    receipt = got.json()
    check = verify_receipt(receipt, log_key=plane.runtime.log.vkey, node_keys=node_keys(nodes))
    assert check.where() == "carried only in HK, US; keys only from US"
    assert check.participants == 2
    assert check.outside == ()
    people = {p["name"]: p for p in receipt["summary"]["participants"]}
    assert people["ana"]["region"] == "US"
    assert people["bo"]["region"] == "HK"
    assert people["ana"]["key_region"] == people["bo"]["key_region"] == "US"
    # ana held the first epoch and the one after bo left; bo only the first
    assert len(people["ana"]["epochs"]) == 2
    assert len(people["bo"]["epochs"]) == 1
    assert people["bo"]["epochs"][0] in people["ana"]["epochs"]
    assert people["bo"]["left"] is not None
    assert people["ana"]["left"] is not None
    assert people["ana"]["evidence"]["country"] == "US"
    nodes_said = receipt["summary"]["nodes"]
    assert nodes_said["US"]["counters"]["keys"] == 3  # ana twice, bo once
    assert nodes_said["HK"]["counters"]["frames_in"] >= 1
    assert nodes_said["DE"]["counters"]["frames_in"] == 0
    # the operator gets the same receipt, and asking again seals nothing new
    again = plane.client("operator").get(f"/v1/meetings/{meeting}/receipt").json()
    assert [e["index"] for e in again["entries"]] == [e["index"] for e in receipt["entries"]]


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
def test_no_one_else_sees_a_receipt_and_a_live_meeting_has_none(plane, nodes):
    host = account(plane, "Host")
    other = account(plane, "Other")
    meeting = create_meeting(plane, host)

    async def scenario() -> None:
        invite = plane.invites[meeting]
        # a participant who is not the host: another account's user, joined with the invite
        guest = await Participant.join(
            plane.url,
            meeting,
            name="guest",
            forwarded_for=US_IP,
            invite=invite,
            token=plane.tokens[other],
        )
        live = await asyncio.to_thread(plane.client(host).get, f"/v1/meetings/{meeting}/receipt")
        assert live.status_code == 409, live.text
        assert live.json()["error"]["message"] == (
            f"meeting `{meeting}` is live: its receipt is made when it ends (no partial "
            "receipt is given)"
        )
        end = await asyncio.to_thread(plane.client(host).post, f"/v1/meetings/{meeting}/end")
        assert end.status_code == 200, end.text
        await guest.leave()

    run(scenario())
    missing = plane.client(host).get("/v1/meetings/mtg_nosuchmeeting/receipt")
    assert missing.status_code == 404
    for who in (other, "bizconf", "suirui"):
        r = plane.client(who).get(f"/v1/meetings/{meeting}/receipt")
        assert r.status_code == 404, (who, r.text)
        assert r.json()["error"]["message"] == f"no meeting `{meeting}`"
    assert plane.client(None).get(f"/v1/meetings/{meeting}/receipt").status_code == 401
    assert plane.client(host).get(f"/v1/meetings/{meeting}/receipt").status_code == 200


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
def test_a_partner_gets_its_customers_receipts_and_no_one_elses(plane, nodes):
    made = plane.client("bizconf").post(
        "/v1/accounts",
        json={"type": "organization", "name": "Kunlun", "country": "CN", "org_id": USCC},
    )
    assert made.status_code == 201, made.text
    customer = made.json()["account"]["id"]
    checkout = {"account": customer, "plan": "pro", "channel": "partner", "partner": "bizconf"}
    assert plane.client("bizconf").post("/v1/checkout", json=checkout).status_code == 201
    r = plane.client("bizconf").post("/v1/meetings", json={"host": customer})
    assert r.status_code == 201, r.text
    meeting = r.json()["meeting"]["id"]

    async def scenario() -> None:
        chen = await Participant.join(
            plane.url, meeting, name="chen", forwarded_for=CN_IP, invite=r.json()["invite"]
        )
        end = await asyncio.to_thread(plane.client("bizconf").post, f"/v1/meetings/{meeting}/end")
        assert end.status_code == 200, end.text
        await chen.leave()

    run(scenario())
    got = plane.client("bizconf").get(f"/v1/meetings/{meeting}/receipt")
    assert got.status_code == 200, got.text
    check = verify_receipt(got.json(), log_key=plane.runtime.log.vkey, node_keys=node_keys(nodes))
    assert check.where() == "carried only in CN; keys only from CN"
    assert plane.client("suirui").get(f"/v1/meetings/{meeting}/receipt").status_code == 404


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
def test_a_receipt_carries_the_witnesses_cosignatures(
    live_factory, nodes, grant_key, tmp_path_factory
):
    """Two real witness processes cosign the checkpoint a receipt is proved against; the CLI
    requires them with --witness and --quorum."""
    from tests.cli.test_witness import _start_witness

    from meridian.audit.note import NoteSigner, load_or_create_log_key

    key_path = tmp_path_factory.mktemp("wlog") / "log.key"
    vkey = NoteSigner("meridian.localhost/log", load_or_create_log_key(key_path, create=True))
    directory = tmp_path_factory.mktemp("witnesses")
    witnesses = [
        _start_witness(directory, f"witness.test/w{i}", vkey.verifier_key()) for i in (1, 2)
    ]
    try:
        plane = live_factory(
            grant_key=grant_key,
            node_urls={r: n.url for r, n in nodes.nodes.items()},
            trusted_proxies=("127.0.0.1/32",),
            log_key=key_path,
            witnesses=tuple(f"{w.vkey} {w.url}" for w in witnesses),
            witness_timeout=5.0,
        )
        plane.clock.set("2021-03-01T10:00:00Z")
        host = account(plane, "Host")
        meeting = create_meeting(plane, host)
        run(hold(plane, meeting, leave_early=False))
        got = plane.client(host).get(f"/v1/meetings/{meeting}/receipt")
        assert got.status_code == 200, got.text
    finally:
        for w in witnesses:
            w.stop()
    path = tmp_path_factory.mktemp("receipt") / "receipt.json"
    path.write_text(got.text, encoding="utf-8")
    keys = [f"--node-key={r}={k}" for r, k in node_keys(nodes).items()]
    cosigners = [arg for w in witnesses for arg in ("--witness", w.vkey)]
    args = ["receipt", "verify", str(path), "--key", vkey.verifier_key(), *keys, *cosigners]
    result = CliRunner().invoke(app, [*args, "--quorum", "2"])
    assert result.exit_code == 0, result.stderr
    assert result.stdout.splitlines()[0].endswith(", cosigned by 2 of 2 witnesses")
    assert result.stdout.splitlines()[1] == "verified: carried only in HK, US; keys only from US"
    # a witness key the checkpoint carries no cosignature of: the quorum names it
    other = _start_witness(directory, "witness.test/w3", vkey.verifier_key())
    other.stop()
    result = CliRunner().invoke(app, [*args, "--witness", other.vkey, "--quorum", "3"])
    assert result.exit_code == 1
    assert result.stderr == (
        "error: cosignature quorum not met: 2 of 3 required: `witness.test/w3` has not "
        "cosigned it\n"
    )
