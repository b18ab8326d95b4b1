"""Node health, end to end: a region node killed with SIGKILL is noticed, skipped and taken back.

This module starts its own two region nodes (DE, US): one of them is killed and restarted, which
the shared ``nodes`` of tests/conftest.py must never see. The control plane checks them every
0.2 s and marks one down after two failed checks.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from tests.conftest import Live
from tests.support import aeventually_in_thread

from meridian.client.participant import Participant
from meridian.errors import DeniedError
from meridian.keys.grants import load_or_create_signing_key, public_key_b64
from meridian.node.cluster import LocalCluster

pytestmark = [pytest.mark.storage, pytest.mark.slow]

US_IP, DE_IP = "8.8.8.8", "80.81.192.1"
WAIT = 20  # seconds: a safety net against hanging, never an assertion


@pytest.fixture
def database_url(tmp_path: Path) -> str:
    """SQLite only: what is checked here is the control plane's live state, not storage."""
    return f"sqlite:///{tmp_path / 'meridian.db'}"


@pytest.fixture(scope="module")
def own_nodes(tmp_path_factory: pytest.TempPathFactory, grant_key: Path) -> Iterator[LocalCluster]:
    key = load_or_create_signing_key(grant_key, create=False)
    cluster = LocalCluster(
        ["DE", "US"],
        control_key=public_key_b64(key.public_key()),
        directory=tmp_path_factory.mktemp("health-nodes"),
        trusted_proxies=["127.0.0.1/32"],
    )
    with cluster:
        yield cluster


@pytest.fixture
def plane(live_factory: Callable[..., Live], own_nodes: LocalCluster, grant_key: Path) -> Live:
    live = live_factory(
        grant_key=grant_key,
        node_urls={r: n.url for r, n in own_nodes.nodes.items()},
        trusted_proxies=("127.0.0.1/32",),
        node_check_interval=0.2,
        node_failures=2,
    )
    live.clock.set("2021-03-01T10:00:00Z")
    return live


def host(plane: Live, country: str, regions: list[str] | None = None) -> str:
    """A paying host in ``country`` (``regions``: the account's chosen set) with a user token."""
    ops = plane.client("operator")
    body = {"type": "organization", "name": f"Host {country}", "country": country}
    account = ops.post("/v1/accounts", json=body).json()["account"]
    checkout = {"account": account["id"], "plan": "pro", "channel": "direct"}
    assert ops.post("/v1/checkout", json=checkout).status_code == 201
    plane.token(account["id"], role="user", account_id=account["id"])
    if regions is not None:
        r = plane.client(account["id"]).put(
            f"/v1/accounts/{account['id']}/regions", json={"regions": regions}
        )
        assert r.status_code == 200, r.text
    return str(account["id"])


def create_meeting(plane: Live, account: str) -> str:
    r = plane.client(account).post("/v1/meetings", json={})
    assert r.status_code == 201, r.text
    plane.invites[r.json()["meeting"]["id"]] = r.json()["invite"]
    return str(r.json()["meeting"]["id"])


def node_state(plane: Live, region: str) -> str:
    r = plane.client("operator").get("/v1/datacentres")
    assert r.status_code == 200, r.text
    entry = next(e for e in r.json()["data"] if e["region"] == region)
    return str(entry.get("state"))


def records(plane: Live, action: str) -> list[dict[str, Any]]:
    r = plane.client("operator").get("/v1/records", params={"action": action})
    assert r.status_code == 200, r.text
    data: list[dict[str, Any]] = r.json()["data"]
    return data


async def eventually(check: Callable[[], bool], what: str) -> None:
    """Wait until ``check()`` holds (run off the loop); fail loudly at the deadline."""
    await aeventually_in_thread(check, timeout=WAIT, what=what)


async def join(plane: Live, meeting: str, name: str, ip: str) -> Participant:
    return await Participant.join(
        plane.url, meeting, name=name, forwarded_for=ip, invite=plane.invites[meeting]
    )


def test_a_node_killed_with_sigkill_is_marked_down_skipped_and_taken_back(plane, own_nodes):
    meeting = create_meeting(plane, host(plane, "DE"))  # may use DE and US; keys from DE
    us_only = create_meeting(plane, host(plane, "US", regions=["US"]))  # may use US only

    async def scenario() -> None:
        alice = await join(plane, meeting, "alice", US_IP)
        dieter = await join(plane, meeting, "dieter", DE_IP)
        assert (alice.dc, dieter.dc) == ("US", "DE")
        assert node_state(plane, "US") == "up"
        await dieter.wait_for_others(1, WAIT)

        own_nodes["US"].process.kill()  # SIGKILL: no goodbye, the socket just dies
        own_nodes["US"].process.wait()

        await eventually(lambda: node_state(plane, "US") == "down", "US marked down")
        # the participant it carried is told which region went down, so it can join again
        await eventually(lambda: alice.region_down == "US", "alice told")
        assert alice.ended == "region node `US` is down: join again to be placed in another region"
        # ... and is out of the meeting: the others hear it left
        await eventually(lambda: alice.participant not in dieter.roster, "alice gone")

        # the next joiner from the US goes to the next allowed region with room, never elsewhere
        bob = await join(plane, meeting, "bob", US_IP)
        assert bob.dc == "DE"
        # a meeting whose only allowed region is down refuses, naming it
        with pytest.raises(DeniedError) as refused:
            await join(plane, us_only, "carol", US_IP)
        assert refused.value.message == (
            "every data centre this meeting may use is full or unavailable (US; region node "
            "down: US); it is never carried elsewhere, try again shortly"
        )

        down = [r for r in records(plane, "node.down") if r["subject_id"] == "US"]
        assert len(down) == 1
        assert alice.participant in down[0]["details"]["participants"]

        await asyncio.to_thread(own_nodes.restart, "US")
        await eventually(lambda: node_state(plane, "US") == "up", "US taken back")
        dave = await join(plane, meeting, "dave", US_IP)
        assert dave.dc == "US"
        assert [r["subject_id"] for r in records(plane, "node.up")] == ["US"]
        for p in (bob, dave, dieter, alice):
            await p.leave()

    asyncio.run(asyncio.wait_for(scenario(), 120))
