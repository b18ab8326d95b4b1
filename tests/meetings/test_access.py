"""Who may enter a meeting, end to end: the invite, the lock, the waiting room, the data-centre
list's meeting ids, and key epochs that never restart.

Real control plane, real region-node processes (``nodes``, ``plane``), real participants.
"""

from __future__ import annotations

import asyncio
from typing import Any

import httpx
import pytest
from sqlalchemy import select
from tests.support import aeventually_in_thread

from meridian.client.participant import Participant
from meridian.errors import ConflictError, ForbiddenError
from meridian.meetings.limits import open_participants
from meridian.storage.models import Meeting, Record

pytestmark = [
    pytest.mark.storage,
    pytest.mark.parametrize("database_url", ["sqlite"], indirect=True),
]

US_IP, DE_IP, CN_IP = "8.8.8.8", "80.81.192.1", "114.114.114.114"
WAIT = 10.0
INVITE_NEEDED = "this meeting needs its invite link: ask the host"


def host(live: Any, *, name: str = "Board", country: str = "US", partner: str | None = None) -> str:
    """An organisation on a paid plan, with a user token of its own (named by its id)."""
    ops = live.client("operator")
    body = {"type": "organization", "name": name, "country": country}
    if country == "CN":
        body["org_id"] = "91110000600037341L"
    # a partner's customer is one the partner signed up
    creator = live.client(partner) if partner else ops
    account = creator.post("/v1/accounts", json=body).json()["account"]
    checkout = {"account": account["id"], "plan": "pro", "channel": "direct"}
    if partner:
        checkout.update(channel="partner", partner=partner)
    assert ops.post("/v1/checkout", json=checkout).status_code == 201
    live.token(account["id"], role="user", account_id=account["id"])
    return str(account["id"])


def create(live: Any, account: str, **body: Any) -> dict[str, Any]:
    r = live.client(account).post("/v1/meetings", json={"topic": "US board", **body})
    assert r.status_code == 201, r.text
    return dict(r.json())


def signup(live: Any) -> str:
    """A self-signed-up user (no operator involved): its token, also kept as ``mallory``."""
    r = live.client(**{"x-forwarded-for": US_IP}).post(
        "/v1/accounts", json={"type": "individual", "name": "Mallory", "country": "US"}
    )
    assert r.status_code == 201, r.text
    live.tokens["mallory"] = token = str(r.json()["token"])
    return token


async def join(live: Any, meeting: str, name: str, **kw: Any) -> Participant:
    return await Participant.join(live.url, meeting, name=name, forwarded_for=US_IP, **kw)


def records(live: Any, meeting: str, action: str) -> list[Record]:
    with live.runtime.db.read() as session:
        return list(
            session.scalars(
                select(Record).where(Record.subject_id == meeting, Record.action == action)
            )
        )


def keys_made(nodes: Any, meeting: str) -> int:
    """Keys the US node made for ``meeting`` (its counters need the admin credential)."""
    answer = httpx.get(
        f"{nodes['US'].url}/v1/stats/{meeting}", headers=nodes.admin, timeout=10, trust_env=False
    )
    assert answer.status_code == 200, answer.text
    return int(answer.json()["keys"])


# -- the invite -------------------------------------------------------------------------------


def test_an_outsider_who_knows_only_the_meeting_id_is_refused(plane, nodes):
    created = create(plane, host(plane))
    mid = created["meeting"]["id"]
    mallory = signup(plane)

    async def scenario() -> None:
        # a self-signed-up user, and an anonymous guest, with the id alone
        for token in (mallory, None):
            with pytest.raises(ForbiddenError) as refused:
                await join(plane, mid, "mallory", token=token)
            assert refused.value.message == INVITE_NEEDED
        # a wrong invite is no better
        with pytest.raises(ForbiddenError, match="needs its invite link"):
            await join(plane, mid, "mallory", invite="not-the-invite")

    asyncio.run(scenario())
    assert created["join_url"] == f"{plane.url}/meet/{mid}#k={created['invite']}"
    refused = records(plane, mid, "meeting.refuse")
    assert [r.details["reason"] for r in refused] == ["invite", "invite", "wrong invite"]
    assert records(plane, mid, "meeting.join") == []  # never placed, never given a key
    assert keys_made(nodes, mid) == 0
    # only the hash is stored
    with plane.runtime.db.read() as session:
        stored = session.get(Meeting, mid)
        assert stored is not None
        assert stored.invite_hash is not None
        assert created["invite"] not in stored.invite_hash


def test_a_guest_with_the_invite_joins_and_a_rotated_invite_replaces_it(plane, nodes):
    account = host(plane)
    created = create(plane, account)
    mid, invite = created["meeting"]["id"], created["invite"]

    async def scenario() -> None:
        guest = await join(plane, mid, "guest", invite=invite)
        # the host account's own user needs no invite
        own = await join(plane, mid, "host", token=plane.tokens[account])
        try:
            await guest.send_chat("hello board")
            assert (await own.receive(timeout=WAIT)).text == "hello board"
        finally:
            await guest.leave()
            await own.leave()

    asyncio.run(scenario())
    # a partner or a stranger cannot rotate it; the host can, and the old link stops working
    assert plane.client("bizconf").post(f"/v1/meetings/{mid}/invite").status_code == 404
    r = plane.client(account).post(f"/v1/meetings/{mid}/invite")
    assert r.status_code == 200, r.text
    fresh = r.json()["invite"]
    assert fresh != invite
    assert r.json()["join_url"].endswith(f"/meet/{mid}#k={fresh}")

    async def after() -> None:
        with pytest.raises(ForbiddenError, match="needs its invite link"):
            await join(plane, mid, "old link", invite=invite)
        p = await join(plane, mid, "new link", invite=fresh)
        await p.leave()

    asyncio.run(after())
    assert len(records(plane, mid, "meeting.invite")) == 1


def test_a_locked_meeting_refuses_a_new_guest_but_not_the_host(plane, nodes):
    account = host(plane)
    created = create(plane, account)
    mid, invite = created["meeting"]["id"], created["invite"]
    signup(plane)
    mallory = plane.client("mallory")
    assert mallory.patch(f"/v1/meetings/{mid}", json={"locked": True}).status_code == 404
    r = plane.client(account).patch(f"/v1/meetings/{mid}", json={"locked": True})
    assert r.status_code == 200, r.text
    assert (r.json()["locked"], r.json()["waiting_room"]) == (True, False)

    async def scenario() -> None:
        with pytest.raises(ForbiddenError, match=f"meeting `{mid}` is locked"):
            await join(plane, mid, "late guest", invite=invite)
        own = await join(plane, mid, "host", token=plane.tokens[account])
        await own.leave()

    asyncio.run(scenario())
    assert [r.details for r in records(plane, mid, "meeting.access")] == [
        {"before": {"locked": False, "waiting_room": False}, "locked": True, "waiting_room": False}
    ]
    assert records(plane, mid, "meeting.refuse")[0].details["reason"] == "locked"


def test_the_waiting_room_holds_each_guest_until_the_host_decides(plane, nodes):
    account = host(plane)
    created = create(plane, account)
    mid, invite = created["meeting"]["id"], created["invite"]
    api = plane.client(account)
    assert api.patch(f"/v1/meetings/{mid}", json={"waiting_room": True}).status_code == 200

    async def waiting_now(count: int) -> list[dict[str, str]]:
        """The API's waiting list once it holds ``count`` guests (fails loudly at its deadline)."""
        deadline = asyncio.get_running_loop().time() + WAIT
        while True:
            got = (await asyncio.to_thread(api.get, f"/v1/meetings/{mid}/waiting")).json()
            if got["count"] == count:
                return list(got["data"])
            if asyncio.get_running_loop().time() > deadline:
                raise AssertionError(f"{count} waiting expected, the API says {got}")
            await asyncio.sleep(0.05)

    async def scenario() -> None:
        notices: list[str] = []
        ann = asyncio.ensure_future(
            join(plane, mid, "Ann", invite=invite, on_notice=notices.append)
        )
        (ann_waiting,) = await waiting_now(1)
        assert ann_waiting["name"] == "Ann"
        assert not ann.done()  # still waiting: no participation, no key
        assert keys_made(nodes, mid) == 0
        # someone else may not decide for the host
        assert (
            plane.client("bizconf")
            .post(f"/v1/meetings/{mid}/waiting/{ann_waiting['participant']}/admit")
            .status_code
            == 404
        )
        r = await asyncio.to_thread(
            api.post, f"/v1/meetings/{mid}/waiting/{ann_waiting['participant']}/admit"
        )
        assert r.status_code == 200, r.text
        admitted = await asyncio.wait_for(ann, WAIT)
        assert admitted.participant == ann_waiting["participant"]
        assert notices[0] == "waiting for the host to let you in"

        bob = asyncio.ensure_future(join(plane, mid, "Bob", invite=invite))
        (bob_waiting,) = await waiting_now(1)
        r = await asyncio.to_thread(
            api.post, f"/v1/meetings/{mid}/waiting/{bob_waiting['participant']}/refuse"
        )
        assert r.status_code == 200, r.text
        with pytest.raises(ForbiddenError, match="the host refused your request to join"):
            await asyncio.wait_for(bob, WAIT)
        # deciding again on someone no longer waiting is a 404
        again = await asyncio.to_thread(
            api.post, f"/v1/meetings/{mid}/waiting/{bob_waiting['participant']}/admit"
        )
        assert again.status_code == 404
        await admitted.leave()

    asyncio.run(scenario())
    assert keys_made(nodes, mid) == 1  # Ann's key only: the refused guest never got one
    assert len(records(plane, mid, "meeting.wait")) == 2
    assert len(records(plane, mid, "meeting.admit")) == 1
    refused = [r for r in records(plane, mid, "meeting.refuse") if "by" in r.details]
    assert [r.details["name"] for r in refused] == ["Bob"]


# -- the data-centre list ---------------------------------------------------------------------


def test_datacentres_shows_live_meeting_ids_only_to_whom_may_see_the_meeting(plane, nodes):
    # a partner's customer (the bundle's partners serve mainland China)
    account = host(plane, country="CN", partner="bizconf")
    mid = create(plane, account)["meeting"]["id"]
    other = host(plane, name="Other")
    signup(plane)

    def shown(client: httpx.Client) -> dict[str, dict[str, Any]]:
        r = client.get("/v1/datacentres")
        assert r.status_code == 200, r.text
        return {d["region"]: d for d in r.json()["data"]}

    async def scenario() -> None:
        p = await Participant.join(
            plane.url, mid, name="host", forwarded_for=CN_IP, token=plane.tokens[account]
        )
        try:
            assert p.admission.dc == "CN"  # type: ignore[union-attr]
            for who in ("operator", account, "bizconf"):
                assert shown(plane.client(who))["CN"]["meetings"] == [mid], who
            for who in (other, "suirui", "mallory"):
                client = plane.client(who)
                cn = shown(client)["CN"]
                assert cn["meetings"] == []
                # load and counts only
                assert (cn["participants"], cn["meeting_count"]) == (1, 1)
        finally:
            await p.leave()

    asyncio.run(scenario())


# -- epochs -----------------------------------------------------------------------------------


def test_the_epoch_after_the_meeting_empties_and_after_a_restart_is_higher(
    plane, nodes, live_factory, grant_key
):
    account = host(plane)
    mid = create(plane, account)["meeting"]["id"]
    seen: list[int] = []

    async def session(url: str) -> None:
        token = plane.tokens[account]  # the host's own users: no invite needed
        a = await Participant.join(url, mid, name="a", forwarded_for=US_IP, token=token)
        b = await Participant.join(
            url, mid, name="b", forwarded_for=DE_IP, token=token, on_key=seen.append
        )
        seen.extend([a.admission.epoch, b.admission.epoch])  # type: ignore[union-attr]
        await a.leave()  # b rotates
        deadline = asyncio.get_running_loop().time() + WAIT
        while len(seen) < 3 and asyncio.get_running_loop().time() < deadline:
            await asyncio.sleep(0.02)
        assert len(seen) == 3, f"no rotation reached b: {seen}"
        await b.leave()

        # closing the socket does not wait for the control plane: until it has seen b leave, the
        # room is still live and the next session would join it at its current epoch
        def emptied() -> bool:
            with plane.runtime.db.read() as read:
                return open_participants(read, mid) == 0

        await aeventually_in_thread(
            emptied, timeout=WAIT, what="the control plane to see the meeting empty"
        )

    asyncio.run(session(plane.url))
    first = list(seen)
    seen.clear()
    asyncio.run(session(plane.url))  # the meeting emptied in between
    after_empty = list(seen)
    seen.clear()
    # a second control plane over the same database: as after a restart
    restarted = live_factory(
        grant_key=grant_key,
        node_urls={r: n.url for r, n in nodes.nodes.items()},
        trusted_proxies=("127.0.0.1/32",),
    )
    asyncio.run(session(restarted.url))
    after_restart = list(seen)
    assert first[0] == first[1] < first[2]
    assert min(after_empty) > max(first)
    assert min(after_restart) > max(after_empty)
    with plane.runtime.db.read() as session_:
        stored = session_.get(Meeting, mid)
        assert stored is not None
        assert stored.epoch == max(after_restart)


def test_an_ended_meeting_refuses_with_the_invite(plane, nodes):
    account = host(plane)
    created = create(plane, account)
    mid = created["meeting"]["id"]
    assert plane.client(account).post(f"/v1/meetings/{mid}/end").status_code == 200

    async def scenario() -> None:
        with pytest.raises(ConflictError, match="has ended"):
            await join(plane, mid, "late", invite=created["invite"])
        # without the invite, not even that it ended is told
        with pytest.raises(ForbiddenError, match="needs its invite link"):
            await join(plane, mid, "outsider")

    asyncio.run(scenario())
