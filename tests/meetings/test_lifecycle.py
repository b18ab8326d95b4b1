"""Plan limits and the meeting lifecycle, end to end: real nodes, real participants, a set clock.

``max_participants`` is checked at admission; ``meeting_minutes`` by the meeting timer, which
warns and then ends the meeting; a meeting left empty ends after ``meeting_empty_timeout``. The
timer reads the service's clock: the tests move it rather than wait (the timer itself looks every
0.1 s of real time here).
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from tests.conftest import Live
from tests.support import aeventually, aeventually_in_thread

from meridian.audit import SYSTEM
from meridian.client.participant import Participant
from meridian.errors import DeniedError
from meridian.meetings.limits import open_participants
from meridian.policy.loader import default_bundle_path, load_bundle_text
from meridian.policy.store import activate_bundle

pytestmark = pytest.mark.storage

US_IP, DE_IP = "8.8.8.8", "80.81.192.1"
WAIT = 15  # seconds: a safety net against hanging, never an assertion
FREE = "free: {name: Free, paid: false, may_host: true, max_participants: 100, meeting_minutes: 40}"


@pytest.fixture
def plane(live_factory: Callable[..., Live], nodes: Any, grant_key: Path) -> Live:
    live = live_factory(
        grant_key=grant_key,
        node_urls={r: n.url for r, n in nodes.nodes.items()},
        trusted_proxies=("127.0.0.1/32",),
        meeting_check_interval=0.1,
        meeting_empty_timeout=600,
        meeting_warning=300,
    )
    live.clock.set("2021-03-01T10:00:00Z")
    return live


def use_free_plan(plane: Live, *, max_participants: int = 100, minutes: int = 40) -> None:
    """Put in force the built-in bundle with the free plan's limits changed."""
    text = default_bundle_path().read_text(encoding="utf-8")
    assert FREE in text
    text = text.replace(
        FREE,
        FREE.replace("max_participants: 100", f"max_participants: {max_participants}").replace(
            "meeting_minutes: 40", f"meeting_minutes: {minutes}"
        ),
    )
    loaded = load_bundle_text(text, "limits.yaml")
    rt = plane.runtime
    with rt.db.write() as session:
        activate_bundle(session, loaded, text, actor=SYSTEM, at=rt.now())
    rt.use(loaded)


def host(plane: Live, *, plan: str | None = None) -> str:
    """A US host (``plan=None``: left on the free plan) with a user token named by its id."""
    ops = plane.client("operator")
    body = {"type": "organization", "name": "Host", "country": "US"}
    account = ops.post("/v1/accounts", json=body).json()["account"]
    if plan is not None:
        checkout = {"account": account["id"], "plan": plan, "channel": "direct"}
        assert ops.post("/v1/checkout", json=checkout).status_code == 201
    plane.token(account["id"], role="user", account_id=account["id"])
    return str(account["id"])


def create_meeting(plane: Live, account: str) -> str:
    r = plane.client(account).post("/v1/meetings", json={})
    assert r.status_code == 201, r.text
    plane.invites[r.json()["meeting"]["id"]] = r.json()["invite"]
    return str(r.json()["meeting"]["id"])


def status(plane: Live, meeting: str) -> str:
    r = plane.client("operator").get(f"/v1/meetings/{meeting}")
    assert r.status_code == 200, r.text
    return str(r.json()["status"])


def end_records(plane: Live, meeting: str) -> list[dict[str, Any]]:
    params = {"action": "meeting.end", "subject": meeting}
    data: list[dict[str, Any]] = (
        plane.client("operator").get("/v1/records", params=params).json()["data"]
    )
    return data


async def eventually(check: Callable[[], bool], what: str) -> None:
    """Wait until ``check()`` holds (run off the loop); fail loudly at the deadline."""
    await aeventually_in_thread(check, timeout=WAIT, what=what)


async def join(plane: Live, meeting: str, name: str, ip: str = US_IP) -> Participant:
    return await Participant.join(
        plane.url, meeting, name=name, forwarded_for=ip, invite=plane.invites[meeting]
    )


def run(scenario: Any) -> Any:
    return asyncio.run(asyncio.wait_for(scenario, 90))


# -- max_participants --------------------------------------------------------------------------


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
def test_a_joiner_over_the_plans_max_participants_is_refused_naming_the_plan(plane, nodes):
    use_free_plan(plane, max_participants=2)
    meeting = create_meeting(plane, host(plane))

    async def scenario() -> None:
        a = await join(plane, meeting, "a")
        b = await join(plane, meeting, "b", DE_IP)
        with pytest.raises(DeniedError) as refused:
            await join(plane, meeting, "c")
        assert refused.value.message == (
            "the `free` plan allows 2 participants per meeting: this meeting is full"
        )
        # a place that frees up is taken again, once the control plane has seen b leave
        # (closing the socket does not wait for that)
        await b.leave()

        async def b_has_left() -> bool:
            with plane.runtime.db.read() as session:
                return open_participants(session, meeting) == 1

        await aeventually(b_has_left, what="the control plane to see b leave")
        c = await join(plane, meeting, "c")
        for p in (a, c):
            await p.leave()

    run(scenario())
    denied = [
        r
        for r in plane.client("operator")
        .get("/v1/records", params={"action": "meeting.join", "subject": meeting})
        .json()["data"]
        if r["details"]["decision"] == "deny"
    ]
    assert [r["details"]["reasons"][0]["rule"] for r in denied] == ["plan-participants"]


# -- meeting_minutes ---------------------------------------------------------------------------


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
def test_the_meeting_timer_warns_then_ends_the_meeting_at_the_plans_minutes(plane, nodes):
    meeting = create_meeting(plane, host(plane))  # free: 40 minutes
    rt_clock = plane.clock

    async def scenario() -> None:
        told: list[str] = []
        alice = await Participant.join(
            plane.url,
            meeting,
            name="alice",
            forwarded_for=US_IP,
            on_notice=told.append,
            invite=plane.invites[meeting],
        )
        rt_clock.set("2021-03-01T10:34:00Z")  # six minutes before the end: no warning yet
        await asyncio.sleep(0.5)
        assert alice.warnings == []
        rt_clock.set("2021-03-01T10:35:00Z")  # five minutes before
        await eventually(lambda: bool(alice.warnings), "the warning")
        warning = alice.warnings[0]
        assert warning["code"] == "time_limit"
        assert warning["ends_at"] == "2021-03-01T10:40:00+00:00"
        assert "the `free` plan allows 40 minutes per meeting" in warning["message"]
        assert warning["message"] in told
        assert status(plane, meeting) == "live"
        rt_clock.set("2021-03-01T10:40:00Z")
        await eventually(lambda: alice.ended is not None, "the end")
        assert "the `free` plan allows 40 minutes per meeting" in (alice.ended or "")
        assert len(alice.warnings) == 1  # warned once
        await alice.leave()

    run(scenario())
    assert status(plane, meeting) == "ended"
    [ended] = end_records(plane, meeting)
    assert ended["actor"] == "system:meridian"
    assert ended["details"]["reason"].startswith("the `free` plan allows 40 minutes per meeting")
    assert ended["at"] == "2021-03-01T10:40:00+00:00"


# -- empty meetings ----------------------------------------------------------------------------


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
def test_an_empty_meeting_ends_after_the_configured_time(plane, nodes):
    account = host(plane, plan="pro")
    joined = create_meeting(plane, account)
    never = create_meeting(plane, account)  # nobody ever joins

    async def scenario() -> None:
        alice = await join(plane, joined, "alice")
        plane.clock.set("2021-03-01T10:05:00Z")
        await alice.leave()
        await eventually(
            lambda: bool(
                plane.client("operator")
                .get("/v1/records", params={"action": "meeting.leave", "subject": joined})
                .json()["data"]
            ),
            "the leave",
        )
        plane.clock.set("2021-03-01T10:10:00Z")  # `never`: empty for 10 minutes since creation
        await eventually(lambda: status(plane, never) == "ended", "the never-joined one ends")
        assert status(plane, joined) == "live"  # empty for 5 minutes only
        plane.clock.set("2021-03-01T10:15:00Z")
        await eventually(lambda: status(plane, joined) == "ended", "the emptied one ends")

    run(scenario())
    for meeting, at in ((never, "10:10"), (joined, "10:15")):
        [ended] = end_records(plane, meeting)
        assert ended["actor"] == "system:meridian"
        assert ended["details"]["reason"] == "the meeting was empty for 10 minutes"
        assert ended["at"] == f"2021-03-01T{at}:00+00:00"
