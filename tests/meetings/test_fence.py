"""The fence, end to end: a real control plane, real region-node processes, real participants.

Participants join from loopback through the test harness acting as a trusted proxy: the control
plane and the relays believe ``X-Forwarded-For`` from 127.0.0.1 and from nothing else, exactly
as production believes its load balancer. What each region carried is read back from the nodes'
own counters.
"""

from __future__ import annotations

import asyncio
import re
from typing import Any

import httpx
import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from tests.changing import put_in_force
from tests.support import aeventually, eventually

from meridian.errors import DeniedError
from meridian.keys import b64url
from meridian.keys.media import signing_public_bytes
from meridian.node.cluster import LocalCluster
from meridian.policy.loader import default_bundle_path

pytestmark = pytest.mark.storage

US_IP, DE_IP, CN_IP, HK_IP, FR_IP = (
    "8.8.8.8",
    "80.81.192.1",
    "114.114.114.114",
    "1.64.0.1",
    "2.0.0.1",
)


def stats(
    nodes: LocalCluster, meeting: str, *, keys: tuple[str, int] | None = None
) -> dict[str, dict[str, Any]]:
    """Every node's counters for ``meeting``.

    With ``keys=(region, n)``, read until that region has made ``n`` keys (for up to 10 s, then
    fail): a participant's ``leave()`` returns when its socket closes, and the rotation its
    leaving causes on the server may still be under way.
    """
    with httpx.Client(timeout=10) as http:

        def read() -> dict[str, dict[str, Any]]:
            return {
                r: http.get(f"{n.url}/v1/stats/{meeting}", headers=nodes.admin).json()
                for r, n in nodes.nodes.items()
            }

        if keys is None:
            return read()
        region, made = keys

        def enough() -> dict[str, dict[str, Any]]:
            got = read()
            assert got[region]["keys"] >= made, f"{region} made {got[region]['keys']}: {got}"
            return got

        return eventually(enough, timeout=10, what=f"{made} keys made in {region}")


def host(live, *, country="US", plan="pro", name="Host", partner=None) -> str:
    ops = live.client("operator")
    body = {"type": "organization", "name": name, "country": country}
    if country == "CN":
        body["org_id"] = "91110000600037341L"
    account = ops.post("/v1/accounts", json=body).json()["account"]
    checkout = {"account": account["id"], "plan": plan, "channel": "direct"}
    if partner:
        checkout.update(channel="partner", partner=partner)
    assert ops.post("/v1/checkout", json=checkout).status_code == 201
    live.token(account["id"], role="user", account_id=account["id"])
    return account["id"]


def create_meeting(live, account: str, **body: Any) -> dict[str, Any]:
    r = live.client(account).post("/v1/meetings", json=body)
    assert r.status_code == 201, r.text
    live.invites[r.json()["meeting"]["id"]] = r.json()["invite"]
    return r.json()["meeting"]


async def join(live, meeting: str, name: str, ip: str, notices: list[str] | None = None):
    from meridian.client.participant import Participant

    return await Participant.join(
        live.url,
        meeting,
        name=name,
        forwarded_for=ip,
        on_notice=None if notices is None else notices.append,
        invite=live.invites.get(meeting),
    )


async def exchange(people) -> dict[str, set[str]]:
    """Each participant says one line; returns what each heard."""
    for p in people:
        await p.send_chat(f"hello from {p.participant}")
    heard: dict[str, set[str]] = {p.participant: set() for p in people}
    for p in people:
        while len(heard[p.participant]) < len(people) - 1:
            got = await p.receive(timeout=10)
            heard[p.participant].add(got.text)
    return heard


def run(coro):
    return asyncio.run(coro)


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
def test_a_us_meeting_with_a_cn_participant_never_touches_cn(plane, nodes):
    account = host(plane)
    meeting = create_meeting(plane, account)
    assert "CN" not in meeting["regions"]

    async def scenario():
        people = [
            await join(plane, meeting["id"], "us", US_IP),
            await join(plane, meeting["id"], "de", DE_IP),
            await join(plane, meeting["id"], "cn", CN_IP),
        ]
        try:
            heard = await exchange(people)
            return [p.admission.dc for p in people], heard, people
        finally:
            for p in people:
                await p.leave()

    dcs, heard, people = run(scenario())
    assert dcs == ["US", "DE", "HK"]
    for p in people:
        others = {f"hello from {q.participant}" for q in people if q is not p}
        assert heard[p.participant] == others
    counted = stats(nodes, meeting["id"], keys=("US", 6))
    assert counted["CN"]["bytes_in"] == counted["CN"]["bytes_out"] == 0
    assert counted["CN"]["frames_in"] == counted["CN"]["keys"] == 0
    # the key region made every key: three joins, then 2 + 1 rotated keys as they left one by one
    assert counted["US"]["keys"] == 6
    assert counted["DE"]["keys"] == counted["HK"]["keys"] == 0
    for region in ("US", "DE", "HK"):
        assert counted[region]["bytes_in"] > 0
        assert counted[region]["bytes_out"] > 0
    # the control plane's view is the nodes' own counters, region by region
    carried = plane.client(account).get(f"/v1/meetings/{meeting['id']}/carried").json()["regions"]
    skip = ("region", "meeting")
    assert carried == {r: {k: v for k, v in c.items() if k not in skip} for r, c in counted.items()}
    assert plane.client("bizconf").get(f"/v1/meetings/{meeting['id']}/carried").status_code == 404


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
def test_full_regions_refuse_rather_than_spill(plane, nodes):
    text = default_bundle_path().read_text(encoding="utf-8")
    for region in ("US", "DE", "HK"):
        text = re.sub(rf"(  {region}: \{{.*?capacity: )\d+", r"\g<1>1", text)
    put_in_force(plane, text)
    plane.runtime.refresh()
    account = host(plane)
    plane.client("operator").put(
        f"/v1/accounts/{account}/regions", json={"regions": ["US", "DE", "HK"]}
    )
    meeting = create_meeting(plane, account)
    assert meeting["regions"] == ["DE", "HK", "US"]

    async def scenario():
        # US and DE full (one participant each); the CN participant still only gets HK
        us = await join(plane, meeting["id"], "us", US_IP)
        de = await join(plane, meeting["id"], "de", DE_IP)
        cn = await join(plane, meeting["id"], "cn", CN_IP)
        placed = [us.admission.dc, de.admission.dc, cn.admission.dc]
        heard = await exchange([us, de, cn])
        # now every allowed region is full: the next joiner is refused, nothing spills
        with pytest.raises(DeniedError) as refused:
            await join(plane, meeting["id"], "fr", FR_IP)
        for p in (us, de, cn):
            await p.leave()
        return placed, heard, refused.value

    placed, heard, refused = run(scenario())
    assert placed == ["US", "DE", "HK"]
    assert all(len(v) == 2 for v in heard.values())
    assert "every data centre this meeting may use is full" in refused.message
    assert refused.decision is not None
    assert refused.decision.reasons[0].rule == "capacity"
    counted = stats(nodes, meeting["id"])
    assert counted["CN"] == {
        **counted["CN"],
        "bytes_in": 0,
        "bytes_out": 0,
        "keys": 0,
        "frames_in": 0,
    }


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
def test_an_opted_in_host_may_use_cn_and_the_opt_in_is_on_record(plane, nodes):
    account = host(plane)
    r = plane.client(account).put(
        f"/v1/accounts/{account}/regions", json={"regions": ["US", "DE", "CN"], "opt_in": ["CN"]}
    )
    assert r.status_code == 200, r.text
    records = (
        plane.client("operator").get("/v1/records", params={"action": "account.regions"}).json()
    )
    (entry,) = [e for e in records["data"] if e["subject_id"] == account]
    assert entry["details"]["opted_in_now"] == ["CN"]
    assert entry["actor"].startswith("user:")
    meeting = create_meeting(plane, account)

    async def scenario():
        people = [
            await join(plane, meeting["id"], "us", US_IP),
            await join(plane, meeting["id"], "cn", CN_IP),
        ]
        heard = await exchange(people)
        placed = [p.admission.dc for p in people]
        for p in people:
            await p.leave()
        return placed, heard

    placed, heard = run(scenario())
    assert placed == ["US", "CN"]
    assert all(len(v) == 1 for v in heard.values())
    counted = stats(nodes, meeting["id"], keys=("US", 3))
    assert counted["CN"]["bytes_in"] > 0
    # keys still come from home: two joins, one rotation when the first left
    assert counted["CN"]["keys"] == 0
    assert counted["US"]["keys"] == 3


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
def test_a_cn_hosted_meeting_stays_in_cn_and_tells_others_first(plane, nodes):
    account = host(plane, country="CN", partner="bizconf", name="CN host")
    meeting = create_meeting(plane, account)
    assert (meeting["regions"], meeting["key_region"]) == (["CN"], "CN")

    async def scenario():
        told: list[str] = []
        cn = await join(plane, meeting["id"], "cn", CN_IP)
        de = await join(plane, meeting["id"], "de", DE_IP, told)
        hk = await join(plane, meeting["id"], "hk", HK_IP, told)
        heard = await exchange([cn, de, hk])
        placed = [p.admission.dc for p in (cn, de, hk)]
        for p in (cn, de, hk):
            await p.leave()
        return placed, heard, told, cn.admission.notices

    placed, heard, told, cn_notices = run(scenario())
    assert placed == ["CN", "CN", "CN"]
    assert all(len(v) == 2 for v in heard.values())
    assert cn_notices == ()
    assert len(told) == 2
    assert all("processed in mainland China" in n for n in told)
    counted = stats(nodes, meeting["id"], keys=("CN", 6))
    assert counted["CN"]["keys"] == 3 + 2 + 1  # three joins, then rotations as they left
    for region in ("US", "DE", "HK"):
        assert counted[region]["bytes_in"] == counted[region]["keys"] == 0


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
def test_the_key_rotates_when_someone_leaves(plane, nodes):
    meeting = create_meeting(plane, host(plane))

    async def scenario():
        a = await join(plane, meeting["id"], "a", US_IP)
        b = await join(plane, meeting["id"], "b", DE_IP)
        c = await join(plane, meeting["id"], "c", US_IP)
        assert a.epoch == b.epoch == c.epoch == 1
        await c.leave()

        async def rotated() -> bool:
            assert (a.epoch, b.epoch) == (2, 2)
            return True

        await aeventually(rotated, timeout=10, what="a and b on epoch 2 after c left")
        heard = await exchange([a, b])
        epochs = (a.epoch, b.epoch)
        await a.leave()
        await b.leave()
        return epochs, heard

    epochs, heard = run(scenario())
    assert epochs == (2, 2)
    assert all(len(v) == 1 for v in heard.values())
    # three joins, two keys when c left, one when a left
    assert stats(nodes, meeting["id"], keys=("US", 6))["US"]["keys"] == 3 + 2 + 1


def test_a_blocked_country_is_told_the_meeting_is_not_reachable(plane, nodes):
    meeting = create_meeting(plane, host(plane), countries={"deny": ["CN"]})

    async def scenario():
        with pytest.raises(DeniedError) as refused:
            await join(plane, meeting["id"], "cn", CN_IP)
        return refused.value

    refused = run(scenario())
    assert refused.message == "this meeting is not reachable from CN: its host blocks it"
    assert stats(nodes, meeting["id"])["HK"]["bytes_in"] == 0


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
def test_ending_a_meeting_tells_everyone_and_frees_their_places(plane, nodes):
    account = host(plane)
    meeting = create_meeting(plane, account)

    async def scenario():
        people = [
            await join(plane, meeting["id"], "a", US_IP),
            await join(plane, meeting["id"], "b", DE_IP),
        ]
        load = {
            d["region"]: d["participants"]
            for d in plane.client("operator").get("/v1/datacentres").json()["data"]
        }
        r = plane.client(account).post(f"/v1/meetings/{meeting['id']}/end")
        assert r.status_code == 200, r.text

        async def all_told() -> bool:
            assert all(p.ended for p in people), [p.ended for p in people]
            return True

        await aeventually(all_told, timeout=10, what="everyone told the meeting ended")
        ended = [p.ended for p in people]
        with pytest.raises(Exception, match="has ended"):
            await join(plane, meeting["id"], "c", US_IP)
        for p in people:
            await p.leave()
        return load, ended

    load, ended = run(scenario())
    assert (load["US"], load["DE"]) == (1, 1)
    assert ended == ["the meeting ended", "the meeting ended"]
    after = {
        d["region"]: d["participants"]
        for d in plane.client("operator").get("/v1/datacentres").json()["data"]
    }
    assert (after["US"], after["DE"]) == (0, 0)
    assert plane.client(account).get(f"/v1/meetings/{meeting['id']}").json()["status"] == "ended"


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
def test_a_government_request_drops_only_the_cn_participants_of_a_live_meeting(plane, nodes):
    """The June 2020 promise on a live meeting: a CN request against a US-hosted meeting with
    participants in the US, Hong Kong and mainland China is recorded by one operator, refused
    to that operator's approval, approved by a second; the CN participant is dropped by its
    relay, the others go on talking under a new key, and CN cannot join again."""
    account = host(plane)
    meeting = create_meeting(plane, account)
    ops, ops2 = plane.client("operator"), plane.client("operator2")

    async def scenario():
        us = await join(plane, meeting["id"], "us", US_IP)
        hk = await join(plane, meeting["id"], "hk", HK_IP)
        cn = await join(plane, meeting["id"], "cn", CN_IP)
        before = await exchange([us, hk, cn])
        recorded = await asyncio.to_thread(
            ops.post,
            "/v1/legal-requests",
            json={
                "authority": "Beijing Municipal Public Security Bureau",
                "jurisdiction": "CN",
                "legal_type": "court_order",
                "reference": "2020-06-0001",
                "target": {"kind": "meeting", "id": meeting["id"]},
                "action": "end_meeting",
            },
        )
        assert recorded.status_code == 201, recorded.text
        request = recorded.json()
        own = await asyncio.to_thread(ops.post, f"/v1/legal-requests/{request['id']}/approve")
        assert own.status_code == 403
        assert us.removed is hk.removed is cn.removed is None  # nothing applied yet
        approved = await asyncio.to_thread(ops2.post, f"/v1/legal-requests/{request['id']}/approve")
        assert approved.status_code == 200, approved.text

        async def applied() -> bool:
            assert (cn.removed is not None, us.epoch, hk.epoch) == (True, 2, 2)
            return True

        await aeventually(applied, timeout=10, what="cn removed, us and hk on epoch 2")
        after = await exchange([us, hk])
        with pytest.raises(DeniedError) as refused:
            await join(plane, meeting["id"], "cn-again", CN_IP)
        hk2 = await join(plane, meeting["id"], "hk2", HK_IP)
        for p in (us, hk, hk2):
            await p.leave()
        return request, approved.json(), before, after, cn, (us.epoch, hk.epoch), refused.value

    request, approved, before, after, cn, epochs, refused = run(scenario())
    assert all(len(heard) == 2 for heard in before.values())
    effects = {e["country"]: e for e in request["scope"]["effects"] if e["kind"] == "participant"}
    assert {c: e["in_scope"] for c, e in effects.items()} == {"US": False, "HK": False, "CN": True}
    assert request["scope"]["outcome"] == "narrowed"
    assert approved["disconnected"] == [cn.participant]
    assert cn.removed is not None
    assert request["id"] in cn.removed
    assert epochs == (2, 2)
    assert all(len(heard) == 1 for heard in after.values())
    assert request["id"] in str(refused)


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
def test_a_signed_out_page_session_opens_the_meeting_socket_only_as_a_guest(plane, nodes):
    """The meeting page's WebSocket accepts the session cookie: not once it is signed out."""
    import json

    from websockets.asyncio.client import connect

    account = host(plane, name="Acme Inc")
    meeting = create_meeting(plane, account)
    with httpx.Client(base_url=plane.url, follow_redirects=False) as c:
        assert c.post("/login", data={"token": plane.tokens[account]}).status_code == 303
        cookie = c.cookies["meridian_session"]
        csrf = re.search(r'name="csrf" value="([^"]+)"', c.get("/account").text)
        assert csrf is not None
        assert c.post("/logout", data={"csrf": csrf[1]}).status_code == 303
    url = plane.url.replace("http://", "ws://") + f"/v1/meetings/{meeting['id']}/signal"

    async def join_with_cookie() -> dict[str, Any]:
        headers = {
            "Cookie": f"meridian_session={cookie}",
            "Origin": plane.url,
            "X-Forwarded-For": US_IP,
        }
        async with connect(url, additional_headers=headers, proxy=None) as ws:
            join = {
                "type": "join",
                "name": "replayed",
                "public_key": "A" * 43,
                "signing_key": b64url(signing_public_bytes(Ed25519PrivateKey.generate())),
                "invite": plane.invites[meeting["id"]],  # a guest's way in: the join link
            }
            await ws.send(json.dumps(join))
            answer: dict[str, Any] = json.loads(await asyncio.wait_for(ws.recv(), 30))
            return answer

    run(join_with_cookie())
    params = {"action": "meeting.join", "subject": meeting["id"]}
    (record,) = plane.client("operator").get("/v1/records", params=params).json()["data"]
    assert record["actor"].startswith("anonymous:"), record["actor"]
