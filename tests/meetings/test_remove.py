"""Removing live participants, end to end: a real control plane, region-node processes, clients.

Participants join from loopback through the harness acting as a trusted proxy (as in
test_fence.py; the nodes and the control plane come from tests/meetings/conftest.py). The tests
call :meth:`Signalling.remove` themselves, on the server's own event loop
(:meth:`Live.on_server`), as the lawful-request workflow does.
"""

from __future__ import annotations

import asyncio
import json
import re
import sys
import time
from collections.abc import Callable, Coroutine
from pathlib import Path
from typing import Any

import httpx
import jwt
import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from tests.conftest import Live
from tests.support import aeventually
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed

from meridian.client.participant import Participant
from meridian.errors import ForbiddenError, InputError, UnwrapError
from meridian.keys import FrameKind
from meridian.keys.grants import (
    Grant,
    GrantSigner,
    load_or_create_signing_key,
)
from meridian.meetings.live import Signalling
from meridian.node.cluster import LocalCluster
from meridian.wire import Close

pytestmark = pytest.mark.storage

US_IP, HK_IP, CN_IP, DE_IP = "8.8.8.8", "1.64.0.1", "114.114.114.114", "80.81.192.1"
REASON = "lawful request `lr_1` approved by two: blocked in CN"
WAIT = 10  # seconds: a safety net against hanging, never an assertion


# -- the control plane and the nodes ------------------------------------------------------------


@pytest.fixture(scope="module")
def signer(grant_key: Path) -> GrantSigner:
    """The control plane's own signer (the same key file): for grants made by hand."""
    return GrantSigner(load_or_create_signing_key(grant_key, create=False))


def signalling(plane: Live) -> Signalling:
    live: Signalling = plane.app.state.signalling
    return live


async def remove(plane: Live, meeting: str, ids: Any, reason: str = REASON) -> list[str]:
    """``Signalling.remove`` run on the server's loop, awaited from the test's."""
    removed: list[str] = await plane.on_server(
        signalling(plane).remove(meeting, ids, reason=reason)
    )
    return removed


def host(plane: Live) -> str:
    ops = plane.client("operator")
    body = {"type": "organization", "name": "Host", "country": "US"}
    account = ops.post("/v1/accounts", json=body).json()["account"]
    checkout = {"account": account["id"], "plan": "pro", "channel": "direct"}
    assert ops.post("/v1/checkout", json=checkout).status_code == 201
    plane.token(account["id"], role="user", account_id=account["id"])
    return str(account["id"])


def create_meeting(plane: Live, account: str) -> dict[str, Any]:
    r = plane.client(account).post("/v1/meetings", json={})
    assert r.status_code == 201, r.text
    meeting: dict[str, Any] = r.json()["meeting"]
    plane.invites[meeting["id"]] = r.json()["invite"]
    return meeting


async def join(plane: Live, meeting: str, name: str, ip: str, **kw: Any) -> Participant:
    kw.setdefault("invite", plane.invites.get(meeting))
    return await Participant.join(plane.url, meeting, name=name, forwarded_for=ip, **kw)


async def raw_relay(url: str, grant: str, ip: str) -> ClientConnection:
    """A bare relay connection with ``grant``, admitted: it sees what the relay sends it."""
    conn = await connect(url, proxy=None, additional_headers={"X-Forwarded-For": ip})
    await conn.send(json.dumps({"grant": grant}))
    assert json.loads(await asyncio.wait_for(conn.recv(), WAIT))["type"] == "ready"
    return conn


async def closed_with(conn: ClientConnection) -> tuple[int, str, int]:
    """How ``conn`` was closed (code, reason), and how many frames came before the close."""
    frames = 0
    while True:
        try:
            await asyncio.wait_for(conn.recv(), WAIT)
        except ConnectionClosed as closed:
            rcvd = closed.rcvd
            break
        frames += 1
    assert rcvd is not None
    return rcvd.code, rcvd.reason, frames


async def until(check: Callable[[], bool]) -> None:
    async def holds() -> bool:
        return check()

    await aeventually(holds, timeout=10, what=getattr(check, "__name__", "the condition"))


def run(scenario: Coroutine[Any, Any, Any]) -> Any:
    return asyncio.run(asyncio.wait_for(scenario, 90))


def stats(nodes: LocalCluster, meeting: str) -> dict[str, dict[str, Any]]:
    with httpx.Client(timeout=10, trust_env=False) as http:
        return {
            r: http.get(f"{n.url}/v1/stats/{meeting}", headers=nodes.admin).json()
            for r, n in nodes.nodes.items()
        }


def leave_records(plane: Live, meeting: str) -> list[dict[str, Any]]:
    params = {"action": "meeting.leave", "subject": meeting}
    data: list[dict[str, Any]] = (
        plane.client("operator").get("/v1/records", params=params).json()["data"]
    )
    return data


# -- removal through the control plane ----------------------------------------------------------


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
def test_removing_a_cn_participant_cuts_it_off_and_the_rest_go_on(plane, nodes, signer):
    meeting = create_meeting(plane, host(plane))["id"]

    async def scenario() -> dict[str, Any]:
        us = await join(plane, meeting, "us", US_IP)
        hk = await join(plane, meeting, "hk", HK_IP)
        told: list[str] = []
        cn = await join(plane, meeting, "cn", CN_IP, on_notice=told.append)
        assert [p.dc for p in (us, hk, cn)] == ["US", "HK", "HK"]
        await us.wait_for_others(2, WAIT)
        await hk.wait_for_others(2, WAIT)
        # a second socket for CN (its own grant opens only one): what the relay still sends
        # CN, and how it closes it
        spy_grant = Grant(
            typ="relay",
            meeting=meeting,
            participant=cn.participant,
            dc="HK",
            regions=tuple(
                jwt.decode(cn.admission.grant, options={"verify_signature": False})["regions"]
            ),
            key_region="US",
            ip=CN_IP,
        )
        spy = await raw_relay(nodes["HK"].relay_url, signer.sign(spy_grant), CN_IP)
        await us.send_chat("before")
        for p in (hk, cn):
            assert (await p.receive(WAIT)).text == "before"
        await asyncio.wait_for(spy.recv(), WAIT)

        removed = await remove(plane, meeting, [cn.participant])

        code, reason, frames = await closed_with(spy)
        signal = cn._signal  # the client's signalling socket, closed by the control plane
        assert signal is not None
        await asyncio.wait_for(signal.wait_closed(), WAIT)
        await until(lambda: cn.removed is not None and us.epoch == hk.epoch == 2)
        await until(lambda: cn.participant not in us.roster and cn.participant not in hk.roster)
        # US and HK go on, on the new epoch
        await us.send_chat("after")
        await hk.send_media(900)
        got_hk, got_us = await hk.receive(WAIT), await us.receive(WAIT)
        # what US sends now, CN cannot open: it never got epoch 2
        sealed = us.keys.seal(sender=us.participant, kind=FrameKind.CHAT, payload=b"secret")
        with pytest.raises(UnwrapError):
            cn.keys.open(sealed)
        with pytest.raises(InputError, match="removed from the meeting"):
            await cn.send_chat("still here?")
        # its old grant is worth nothing now, though it has not expired
        with pytest.raises(ForbiddenError) as refused:
            await Participant.connect_relay(
                nodes["HK"].relay_url,
                cn.admission.grant,
                meeting,
                cn.participant,
                cn.keys,
                forwarded_for=CN_IP,
            )
        # the removal is a no-op the second time
        again = await remove(plane, meeting, [cn.participant, "p_nobody"])
        # three joins, then a key for each of the two left
        keys = stats(nodes, meeting)["US"]["keys"]
        records = {r["details"]["participant"]: r["details"] for r in leave_records(plane, meeting)}
        out = {
            "removed": removed,
            "again": again,
            "spy": (code, reason, frames),
            "signal": (signal.close_code, signal.close_reason),
            "cn": (cn.removed, cn.ended, cn.epoch, told),
            "epochs": (us.epoch, hk.epoch),
            "got": (got_hk.text, got_hk.epoch, got_us.kind, len(got_us.payload), got_us.epoch),
            "refused": refused.value.message,
            "ids": (us.participant, hk.participant, cn.participant),
            "keys": keys,
            "records": records,
        }
        for p in (us, hk, cn):
            await p.leave()
        return out

    out = run(scenario())
    _, _, cn_id = out["ids"]
    assert out["removed"] == [cn_id]
    assert out["again"] == []
    assert Close.REMOVED == 4451  # signalling and relay close with the one code
    assert out["spy"] == (4451, REASON, 0)  # nothing after the drop
    assert out["signal"] == (4451, REASON)
    ended = f"removed from the meeting: {REASON}"
    assert out["cn"] == (REASON, ended, 1, [ended])
    assert out["epochs"] == (2, 2)
    assert out["got"] == ("after", 2, FrameKind.MEDIA, 900, 2)
    assert out["refused"] == ended
    # the record says it was a removal, and that its relay closed its connection
    assert out["records"] == {
        cn_id: {
            "participant": cn_id,
            "dc": "HK",
            "epochs": [1],  # the key epoch it held (for the meeting's residency receipt)
            "removal": {"reason": REASON, "relay": {"region": "HK", "closed": True}},
        }
    }
    assert out["keys"] == 3 + 2


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
def test_unknown_or_gone_ids_are_a_no_op(plane, nodes):
    meeting = create_meeting(plane, host(plane))["id"]

    async def scenario() -> tuple[Any, ...]:
        nobody = await remove(plane, "mtg_not_live", ["p_x"])
        us = await join(plane, meeting, "us", US_IP)
        de = await join(plane, meeting, "de", DE_IP)
        await us.wait_for_others(1, WAIT)
        gone = de.participant
        await de.leave()
        await until(lambda: us.epoch == 2)
        after_leave = await remove(plane, meeting, [gone, "p_unknown"])
        empty = await remove(plane, meeting, [])
        with pytest.raises(TypeError, match="not one id"):
            await remove(plane, meeting, us.participant)
        epoch, ended = us.epoch, us.ended
        records = [r["details"] for r in leave_records(plane, meeting)]
        await us.leave()
        return nobody, after_leave, empty, epoch, ended, records

    nobody, after_leave, empty, epoch, ended, records = run(scenario())
    assert nobody == after_leave == empty == []
    assert (epoch, ended) == (2, None)  # no rotation for nothing, and US is still in
    assert len(records) == 1
    assert "removal" not in records[0]


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
def test_one_admitted_but_not_yet_registered_when_removed_is_refused_as_it_registers(
    plane, nodes, monkeypatch
):
    """The window between a joiner's admission (its participation committed) and its
    registration in the live meeting: a removal that runs there names an id the live meeting
    does not hold yet. The joiner is refused when it registers, with the removal's reason."""
    import meridian.meetings.service as service

    meeting = create_meeting(plane, host(plane))["id"]
    monkeypatch.setattr(service, "new_id", lambda prefix: f"{prefix}_late")

    async def scenario() -> tuple[Any, ...]:
        removed = await remove(plane, meeting, ["p_late"])
        with pytest.raises(ForbiddenError) as refused:
            await join(plane, meeting, "late", CN_IP)
        return removed, str(refused.value)

    removed, refused = run(scenario())
    assert removed == []
    assert refused == f"removed from the meeting: {REASON}"
    records = [r["details"] for r in leave_records(plane, meeting)]
    assert [r["participant"] for r in records] == ["p_late"]  # its place given back, recorded


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
def test_an_unreachable_relay_does_not_stop_the_removal(plane, nodes, caplog):
    meeting = create_meeting(plane, host(plane))["id"]

    async def scenario() -> dict[str, Any]:
        us = await join(plane, meeting, "us", US_IP)
        cn = await join(plane, meeting, "cn", CN_IP)
        await us.wait_for_others(1, WAIT)
        # HK's node is unreachable from the control plane from now on (it still runs)
        signalling(plane).node_urls["HK"] = "http://127.0.0.1:9"
        try:
            removed = await remove(plane, meeting, [cn.participant])
        finally:
            signalling(plane).node_urls["HK"] = nodes["HK"].url
        await until(lambda: cn.removed is not None and us.epoch == 2)
        sealed = us.keys.seal(sender=us.participant, kind=FrameKind.CHAT, payload=b"secret")
        with pytest.raises(UnwrapError):
            cn.keys.open(sealed)
        out = {"removed": removed, "cn": cn.participant}
        for p in (us, cn):
            await p.leave()
        return out

    with caplog.at_level("WARNING", logger="meridian.meetings.live"):
        out = run(scenario())
    assert out["removed"] == [out["cn"]]
    (warning,) = [r.getMessage() for r in caplog.records if "dropping" in r.getMessage()]
    assert "region node `HK` is unreachable" in warning
    (record,) = [
        r for r in leave_records(plane, meeting) if r["details"]["participant"] == out["cn"]
    ]
    relay = record["details"]["removal"]["relay"]
    assert relay["region"] == "HK"
    assert relay["error"].startswith("region node `HK` is unreachable")


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
def test_the_client_shows_the_removal_reason_in_one_line(plane, nodes):
    meeting = create_meeting(plane, host(plane))["id"]

    async def scenario() -> tuple[int, str, str]:
        us = await join(plane, meeting, "us", US_IP)
        process = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "meridian",
            "client",
            "join",
            # the whole join link: the control plane and the invite come from it
            f"{plane.url}/meet/{meeting}#k={plane.invites[meeting]}",
            "--name",
            "cn",
            "--forwarded-for",
            CN_IP,
            "--stay",
            "60",
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
        )
        assert process.stderr is not None
        before = ""
        while (found := re.search(r"as (p_\w+) via relay HK", before)) is None:
            line = (await asyncio.wait_for(process.stderr.readline(), 30)).decode()
            assert line, before
            before += line
        await us.wait_for_others(1, WAIT)
        assert await remove(plane, meeting, [found.group(1)]) == [found.group(1)]
        out, err = await asyncio.wait_for(process.communicate(), 30)
        await us.leave()
        return process.returncode or 0, out.decode(), before + err.decode()

    code, _, err = run(scenario())
    assert code == 0, err
    assert "Traceback" not in err
    lines = [line for line in err.splitlines() if REASON in line]
    assert lines == [f"notice: removed from the meeting: {REASON}"]


# -- the node's drop endpoint -------------------------------------------------------------------


def drop_grant(
    signer: GrantSigner,
    meeting: str,
    ids: tuple[str, ...],
    *,
    dc: str = "HK",
    typ: str = "drop",
    regions: tuple[str, ...] = ("DE", "HK", "US"),
    now: float | None = None,
    reason: str = REASON,
) -> str:
    grant = Grant(
        typ=typ,  # type: ignore[arg-type]
        meeting=meeting,
        participant="" if typ == "drop" else ids[0],
        dc=dc,
        regions=regions,
        key_region="US",
        links=(("HK", "US"),),
        ip=CN_IP,
        drop=ids,
        reason=reason,
    )
    return signer.sign(grant, now=time.time() if now is None else now)


def post_drop(nodes: LocalCluster, meeting: str, body: Any, region: str = "HK") -> httpx.Response:
    url = f"{nodes[region].url}/v1/relay/{meeting}/drop"
    return httpx.post(url, json=body, timeout=10, trust_env=False)


def _refusals(signer: GrantSigner) -> list[tuple[str, Callable[[str], Any], int, str]]:
    forger = GrantSigner(Ed25519PrivateKey.generate())
    return [
        ("missing", lambda m: {}, 401, "missing grant"),
        ("empty", lambda m: {"grant": ""}, 401, "missing grant"),
        ("garbage", lambda m: {"grant": "not.a.jwt"}, 401, "invalid grant"),
        ("forged", lambda m: {"grant": drop_grant(forger, m, ("p_cn",))}, 401, "invalid grant"),
        (
            "expired",
            lambda m: {"grant": drop_grant(signer, m, ("p_cn",), now=time.time() - 3600)},
            401,
            "expired grant",
        ),
        (
            "a relay grant",
            lambda m: {"grant": drop_grant(signer, m, ("p_cn",), typ="relay")},
            401,
            "a `relay` grant where `drop` is needed",
        ),
        (
            "a key grant",
            lambda m: {"grant": drop_grant(signer, m, ("p_cn",), typ="key")},
            401,
            "a `key` grant where `drop` is needed",
        ),
        (
            "another region's",
            lambda m: {"grant": drop_grant(signer, m, ("p_cn",), dc="US")},
            401,
            "grant for region `US` presented to region `HK`",
        ),
        (
            "another meeting's",
            lambda m: {"grant": drop_grant(signer, "mtg_other", ("p_cn",))},
            401,
            "presented for meeting",
        ),
        (
            "naming no one",
            lambda m: {"grant": drop_grant(signer, m, ())},
            401,
            "names no participant",
        ),
        (
            "fenced out",
            lambda m: {"grant": drop_grant(signer, m, ("p_cn",), regions=("DE", "US"))},
            403,
            "region `HK` refuses meeting",
        ),
        ("malformed", lambda m: {"grant": "x", "extra": 1}, 422, ""),
    ]


def test_the_drop_endpoint_refuses_what_is_not_a_drop_order(nodes, signer):
    meeting = f"mtg_refuse_{time.monotonic_ns()}"

    async def connect_cn() -> ClientConnection:
        relay = drop_grant(signer, meeting, ("p_cn",), typ="relay")
        return await raw_relay(nodes["HK"].relay_url, relay, CN_IP)

    async def scenario() -> list[tuple[str, int, str]]:
        conn = await connect_cn()
        answers = []
        for name, body, _, _ in _refusals(signer):
            r = post_drop(nodes, meeting, body(meeting))
            message = r.json()["error"]["message"] if r.status_code != 422 else ""
            answers.append((name, r.status_code, message))
        # after every refusal the participant is still connected, and its grant still admits
        again = await connect_cn()
        for c in (conn, again):
            await c.send(b"MF1 still forwarded")
        got = await asyncio.wait_for(again.recv(), WAIT)
        assert got == b"MF1 still forwarded"
        await conn.close()
        await again.close()
        return answers

    answers = run(scenario())
    for (name, _, status, words), (_, got_status, message) in zip(
        _refusals(signer), answers, strict=True
    ):
        assert got_status == status, (name, message)
        assert words in message, (name, message)
        assert "\n" not in message
        assert not message.endswith(".")


def test_a_drop_order_closes_only_those_named_and_bars_them(nodes, signer):
    meeting = f"mtg_drop_{time.monotonic_ns()}"

    def relay_grant(participant: str, dc: str = "HK") -> str:
        grant = Grant(
            typ="relay",
            meeting=meeting,
            participant=participant,
            dc=dc,
            regions=("DE", "HK", "US"),
            key_region="US",
            links=(("HK", "US"),),
            ip=CN_IP,
        )
        return signer.sign(grant)

    async def scenario() -> dict[str, Any]:
        cn = await raw_relay(nodes["HK"].relay_url, relay_grant("p_cn"), CN_IP)
        hk = await raw_relay(nodes["HK"].relay_url, relay_grant("p_hk"), CN_IP)
        order = {"grant": drop_grant(signer, meeting, ("p_cn", "p_never"))}
        answer = post_drop(nodes, meeting, order)
        code, reason, _ = await closed_with(cn)
        # the others in the room are untouched
        hk2 = await raw_relay(nodes["HK"].relay_url, relay_grant("p_hk2"), CN_IP)
        await hk.send(b"MF1 hello")
        got = await asyncio.wait_for(hk2.recv(), WAIT)
        # both named ids are barred: the one that was here, and the one never seen
        barred = []
        for who in ("p_cn", "p_never"):
            async with connect(
                nodes["HK"].relay_url, proxy=None, additional_headers={"X-Forwarded-For": CN_IP}
            ) as conn:
                await conn.send(json.dumps({"grant": relay_grant(who)}))
                barred.append((await closed_with(conn))[:2])
        # nor may a participant's grant (removed or not) open a cascade: only nodes link
        to_us = {"grant": drop_grant(signer, meeting, ("p_cn",), dc="US")}
        assert post_drop(nodes, meeting, to_us, "US").json()["dropped"] == []
        async with connect(nodes["US"].cascade_url, proxy=None) as conn:
            await conn.send(json.dumps({"grant": relay_grant("p_cn")}))
            cascade = (await closed_with(conn))[:2]
        # the same order again: idempotent
        repeat = post_drop(nodes, meeting, order)
        participants = httpx.get(
            f"{nodes['HK'].url}/v1/stats/{meeting}", headers=nodes.admin, trust_env=False
        ).json()["participants"]
        await hk.close()
        await hk2.close()
        return {
            "answer": (answer.status_code, answer.json()),
            "closed": (code, reason),
            "got": got,
            "barred": barred,
            "cascade": cascade,
            "repeat": repeat.json()["dropped"],
            "participants": participants,
        }

    out = run(scenario())
    assert out["answer"] == (200, {"region": "HK", "meeting": meeting, "dropped": ["p_cn"]})
    assert out["closed"] == (4451, REASON)
    assert out["got"] == b"MF1 hello"
    assert out["barred"] == [(4451, REASON), (4451, REASON)]
    assert out["cascade"] == (4401, "wrong grant: a `relay` grant where `link` is needed")
    assert out["repeat"] == []
    assert out["participants"] == 2
