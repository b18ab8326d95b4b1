"""Rotation after a leave is mandatory: with the key region's node down the meeting pauses (and
ends if it stays down), it never goes on under the key the leaver holds.

Each test has its own two region nodes (DE, US; US is the key region of a US host's meetings),
real processes, so one can be killed with SIGKILL and started again on the same address.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from typing import Any

import pytest
from sqlalchemy import select
from tests.support import aeventually

import meridian.meetings.live as live_module
from meridian.client.participant import Participant
from meridian.errors import ConflictError
from meridian.node.cluster import LocalCluster
from meridian.storage.models import Meeting, Record

pytestmark = [
    pytest.mark.storage,
    pytest.mark.slow,
    pytest.mark.parametrize("database_url", ["sqlite"], indirect=True),
]

DE_IP = "80.81.192.1"
WAIT = 15.0


@pytest.fixture
def pair(tmp_path_factory: pytest.TempPathFactory, grant_key: Any) -> Iterator[LocalCluster]:
    from meridian.keys.grants import load_or_create_signing_key, public_key_b64

    key = load_or_create_signing_key(grant_key, create=False)
    cluster = LocalCluster(
        ["DE", "US"],
        control_key=public_key_b64(key.public_key()),
        directory=tmp_path_factory.mktemp("pair"),
        trusted_proxies=["127.0.0.1/32"],
    )
    with cluster:
        yield cluster


@pytest.fixture
def plane2(live_factory: Any, pair: LocalCluster, grant_key: Any) -> Any:
    live = live_factory(
        grant_key=grant_key,
        node_urls={r: n.url for r, n in pair.nodes.items()},
        trusted_proxies=("127.0.0.1/32",),
    )
    live.clock.set("2021-03-01T10:00:00Z")
    return live


def meeting(live: Any) -> tuple[str, str]:
    ops = live.client("operator")
    account = ops.post(
        "/v1/accounts", json={"type": "organization", "name": "Board", "country": "US"}
    ).json()["account"]
    checkout = {"account": account["id"], "plan": "pro", "channel": "direct"}
    assert ops.post("/v1/checkout", json=checkout).status_code == 201
    live.token(account["id"], role="user", account_id=account["id"])
    r = live.client(account["id"]).post("/v1/meetings", json={"topic": "Board"})
    assert r.status_code == 201, r.text
    assert r.json()["meeting"]["key_region"] == "US"
    # the host account's own users join without the invite (so this runs on any version)
    return str(r.json()["meeting"]["id"]), live.tokens[account["id"]]


async def eventually(check: Any, what: str) -> None:
    async def holds() -> Any:
        return check()

    await aeventually(holds, timeout=WAIT, what=what)


def kill(cluster: LocalCluster, region: str) -> None:
    node = cluster[region]
    node.process.kill()
    node.process.wait(timeout=10)


def actions(live: Any, mid: str) -> list[str]:
    with live.runtime.db.read() as session:
        rows = session.scalars(select(Record).where(Record.subject_id == mid).order_by(Record.seq))
        return [r.action for r in rows]


def test_a_leave_with_the_key_node_down_pauses_the_meeting_until_it_can_rotate(plane2, pair):
    mid, token = meeting(plane2)

    async def scenario() -> None:
        notices: list[str] = []
        stays = await Participant.join(
            plane2.url,
            mid,
            name="stays",
            forwarded_for=DE_IP,
            token=token,
            on_notice=notices.append,
        )
        leaver = await Participant.join(
            plane2.url, mid, name="leaver", forwarded_for=DE_IP, token=token
        )
        held = stays.epoch
        kill(pair, "US")  # the key region's node: SIGKILL, no goodbye
        await leaver.leave()
        await eventually(
            lambda: getattr(stays, "paused", None) is not None,
            "the one who stays is told `paused`",
        )
        assert "the meeting key could not be rotated" in (stays.paused or "")
        assert "key server `US`" in (stays.paused or "")
        assert notices[-1].startswith("meeting paused: ")
        # it sends nothing under the key the leaver holds
        assert stays.epoch == held
        with pytest.raises(ConflictError, match="is paused"):
            await stays.send_chat("still there?")
        # nobody new is let in meanwhile
        with pytest.raises(ConflictError, match="is paused"):
            await Participant.join(plane2.url, mid, name="late", forwarded_for=DE_IP, token=token)
        # the node comes back on its address: the retry rotates, and the meeting resumes
        node = pair["US"]
        urls = {r: n.url for r, n in pair.nodes.items()}
        pair.nodes["US"] = pair._spawn("US", node.url, urls)
        pair._wait(60)
        await eventually(lambda: stays.paused is None, "the meeting resumes")
        assert (stays.epoch or 0) > (held or 0)
        await stays.send_chat("back")
        await stays.leave()

    asyncio.run(scenario())
    done = actions(plane2, mid)
    assert "meeting.pause" in done
    assert done.index("meeting.pause") < done.index("meeting.resume")


def test_a_meeting_that_cannot_rotate_within_the_limit_ends(plane2, pair, monkeypatch):
    monkeypatch.setattr(live_module, "PAUSE_RETRY_SECONDS", 0.2, raising=False)
    monkeypatch.setattr(live_module, "PAUSE_LIMIT_SECONDS", 1.0, raising=False)
    mid, token = meeting(plane2)

    async def scenario() -> None:
        stays = await Participant.join(
            plane2.url, mid, name="stays", forwarded_for=DE_IP, token=token
        )
        leaver = await Participant.join(
            plane2.url, mid, name="leaver", forwarded_for=DE_IP, token=token
        )
        kill(pair, "US")
        await leaver.leave()
        # the relay's end order says "the meeting ended", signalling's adds why (the key could
        # not be rotated): the two sockets race, so either may be the last word
        await eventually(
            lambda: (stays.ended or "").startswith("the meeting ended"), "the meeting ends"
        )
        why = ": the meeting key could not be rotated: key server `US` is unreachable"
        assert stays.ended == "the meeting ended" or stays.ended.startswith(
            "the meeting ended" + why
        ), stays.ended
        await stays.leave()

    asyncio.run(scenario())
    with plane2.runtime.db.read() as session:
        row = session.get(Meeting, mid)
        assert row is not None
        assert row.status == "ended"
    done = actions(plane2, mid)
    assert done.index("meeting.pause") < done.index("meeting.end")
    assert "meeting.resume" not in done
