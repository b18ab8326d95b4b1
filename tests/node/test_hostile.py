"""Region nodes against a hostile participant or outsider: real node processes, real sockets.

What a participant holds (its relay grant, its key grant) must open nothing but its own relay
socket, once, for as long as the grant (or a renewal) lasts; the node's counters and cascades
are for the control plane and the other nodes only. Tokens are written claim by claim here, so
each test says exactly what the attacker presents.
"""

from __future__ import annotations

import asyncio
import json
import secrets
import time
from collections.abc import Coroutine
from typing import Any

import httpx
import jwt
import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed

WAIT = 10  # seconds: a safety net against hanging, never an assertion


def run(scenario: Coroutine[Any, Any, Any]) -> Any:
    return asyncio.run(asyncio.wait_for(scenario, 60))


def token(key: Ed25519PrivateKey, *, seconds: int = 60, **claims: Any) -> str:
    """A control-plane token with ``claims`` over the usual ones."""
    now = int(time.time())
    base = {
        "iss": "meridian-control",
        "mtg": "",
        "sub": "",
        "regions": ["DE", "US"],
        "key_region": "US",
        "iat": now,
        "exp": now + seconds,
        "jti": secrets.token_hex(8),
    }
    return jwt.encode({**base, **claims}, key, algorithm="EdDSA")


def link_grant(key: Ed25519PrivateKey, meeting: str, opener: str, pair=("DE", "US")) -> str:
    return token(key, typ="link", mtg=meeting, dc=opener, pair=sorted(pair))


def give_links(cluster, key: Ed25519PrivateKey, meeting: str, regions=("DE", "US")) -> None:
    """What the control plane does when it places a participant: each node gets its links."""
    for region in regions:
        grants = [link_grant(key, meeting, region, pair) for pair in [tuple(sorted(regions))]]
        answer = httpx.post(
            f"{cluster[region].url}/v1/relay/{meeting}/links",
            json={"grants": grants},
            trust_env=False,
        )
        assert answer.status_code == 200, answer.text


async def admitted(url: str, grant: str) -> ClientConnection:
    conn = await connect(url, proxy=None, compression=None)
    await conn.send(json.dumps({"grant": grant}))
    ready = json.loads(await asyncio.wait_for(conn.recv(), WAIT))
    assert ready["type"] == "ready", ready
    return conn


async def refusal(url: str, grant: str) -> tuple[int, str, int]:
    """How a door answers ``grant``: close code, reason, and how many messages came first."""
    got: list[object] = []

    async def drain(conn: ClientConnection) -> None:
        while True:
            got.append(await asyncio.wait_for(conn.recv(), WAIT))

    async with connect(url, proxy=None) as conn:
        await conn.send(json.dumps({"grant": grant}))
        with pytest.raises(ConnectionClosed) as closed:
            await drain(conn)
    rcvd = closed.value.rcvd
    assert rcvd is not None, "closed without a close frame"
    return rcvd.code, rcvd.reason, len(got)


async def closed_within(conn: ClientConnection, seconds: float) -> tuple[int, str, float]:
    """The close code and reason of ``conn``, and how long it took; fails after ``seconds``."""
    start = time.monotonic()
    try:
        async with asyncio.timeout(seconds):
            await conn.wait_closed()
    except TimeoutError:
        raise AssertionError(f"the relay socket was still open after {seconds} s") from None
    assert conn.close_code is not None
    return conn.close_code, conn.close_reason or "", time.monotonic() - start


def stats(cluster, region: str, meeting: str, admin: dict[str, str]) -> dict[str, Any]:
    answer = httpx.get(f"{cluster[region].url}/v1/stats/{meeting}", headers=admin, trust_env=False)
    assert answer.status_code == 200, answer.text
    data: dict[str, Any] = answer.json()
    return data


# -- counters are the control plane's -----------------------------------------------------------


@pytest.mark.parametrize("path", ["/v1/stats", "/v1/stats/mtg_x", "/metrics"])
def test_counters_refuse_an_outsider_and_a_participant(cluster, mint, path):
    url = cluster["US"].url + path
    outsider = httpx.get(url, trust_env=False)
    assert outsider.status_code == 401
    assert outsider.json()["error"]["message"].startswith("missing credential")
    participant = httpx.get(url, headers={"Authorization": f"Bearer {mint()}"}, trust_env=False)
    assert participant.status_code == 401
    assert participant.json()["error"]["message"] == (
        "wrong grant: a `relay` grant where `admin` is needed"
    )


def test_counters_answer_the_control_planes_credential_and_healthz_names_no_meeting(
    cluster, mint, meeting, admin
):
    async def scenario():
        conn = await admitted(cluster["US"].relay_url, mint(regions=("US",), links=()))
        answers = {
            p: httpx.get(cluster["US"].url + p, headers=admin, trust_env=False)
            for p in ("/v1/stats", f"/v1/stats/{meeting}", "/metrics")
        }
        health = httpx.get(cluster["US"].url + "/healthz", trust_env=False).text
        await conn.close()
        return answers, health

    answers, health = run(scenario())
    assert {p: a.status_code for p, a in answers.items()} == dict.fromkeys(answers, 200)
    assert answers[f"/v1/stats/{meeting}"].json()["participants"] == 1
    assert meeting in answers["/metrics"].text
    assert meeting not in health
    assert "mtg_" not in health


def test_an_admin_credential_for_another_region_is_refused(cluster, control_private):
    de_only = token(control_private, typ="admin", dc="DE", regions=[])
    answer = httpx.get(
        cluster["US"].url + "/v1/stats",
        headers={"Authorization": f"Bearer {de_only}"},
        trust_env=False,
    )
    assert answer.status_code == 401
    assert answer.json()["error"]["message"] == "grant for region `DE` presented to region `US`"


# -- cascades are node-to-node links ------------------------------------------------------------


def test_a_participants_grant_opens_no_cascade(cluster, mint, meeting, control_private, admin):
    async def scenario():
        give_links(cluster, control_private, meeting)
        bob = await admitted(cluster["DE"].relay_url, mint("p_bob", dc="DE"))
        # eve holds a good relay grant for US, listing the DE-US link: she tries DE's cascade
        code, reason, got = await refusal(cluster["DE"].cascade_url, mint("p_eve"))
        await bob.send(b"sealed by bob")
        await bob.close()
        return code, reason, got

    code, reason, got = run(scenario())
    assert (code, got) == (4401, 0)
    assert reason == "wrong grant: a `relay` grant where `link` is needed"


def test_a_participant_cannot_capture_a_cascade_before_the_peer_node_opens_it(
    cluster, mint, meeting, control_private, admin
):
    async def scenario():
        give_links(cluster, control_private, meeting)
        bob = await admitted(cluster["DE"].relay_url, mint("p_bob", dc="DE"))
        # before any US participant (so before US opens the link), eve dials DE's cascade
        code, _, got = await refusal(cluster["DE"].cascade_url, mint("p_eve"))
        # the real link still comes up when alice joins US, and carries bob's frames to her
        alice = await admitted(cluster["US"].relay_url, mint("p_alice"))
        await bob.send(b"for alice")
        heard = await asyncio.wait_for(alice.recv(), WAIT)
        for conn in (alice, bob):
            await conn.close()
        return code, got, heard

    code, got, heard = run(scenario())
    assert (code, got) == (4401, 0)
    assert heard == b"for alice"


def test_a_link_grant_is_for_its_pair_and_its_meeting_only(cluster, meeting, control_private):
    async def scenario():
        hk = token(control_private, typ="link", mtg=meeting, dc="HK", pair=["DE", "HK"])
        fenced = await refusal(cluster["DE"].cascade_url, hk)
        other_pair = token(control_private, typ="link", mtg=meeting, dc="US", pair=["HK", "US"])
        wrong = await refusal(cluster["DE"].cascade_url, other_pair)
        return fenced, wrong

    fenced, wrong = run(scenario())
    assert fenced[0] == 4403
    assert fenced[2] == 0
    assert wrong[0] == 4403
    assert wrong[2] == 0
    assert wrong[1].startswith(f"region `DE` refuses a cascade from `US` for meeting `{meeting}`")


def test_link_grants_reach_a_node_only_from_the_control_plane(cluster, mint, meeting):
    answer = httpx.post(
        f"{cluster['US'].url}/v1/relay/{meeting}/links",
        json={"grants": [mint()]},  # a participant's relay grant
        trust_env=False,
    )
    assert answer.status_code == 401
    assert answer.json()["error"]["message"] == (
        "wrong grant: a `relay` grant where `link` is needed"
    )


# -- a grant opens one socket, once, for its lifetime --------------------------------------------


def test_a_grant_opens_one_relay_socket_once(cluster, mint, meeting, admin):
    grant = mint(regions=("US",), links=())

    async def scenario():
        first = await admitted(cluster["US"].relay_url, grant)
        second = await refusal(cluster["US"].relay_url, grant)
        await first.close()
        third = await refusal(cluster["US"].relay_url, grant)
        return second, third

    second, third = run(scenario())
    assert second[0] == third[0] == 4401
    assert second[1] == "grant already used: ask the control plane for a new one"
    assert second[2] == 0


@pytest.mark.slow
def test_a_relay_session_ends_when_its_grant_expires_unless_renewed(
    cluster, meeting, control_private
):
    def relay(who: str, seconds: int) -> str:
        return token(
            control_private,
            seconds=seconds,
            typ="relay",
            mtg=meeting,
            sub=who,
            dc="US",
            regions=["US"],
            links=[],
            ip="127.0.0.1",
        )

    async def scenario():
        lapsing = await admitted(cluster["US"].relay_url, relay("p_lapsing", 2))
        # Expiries are whole seconds, so a 3-second grant lasts 2 to 3: renewing it every second
        # leaves at least a second of slack on a loaded machine, and five renewals outlive it.
        renewed = await admitted(cluster["US"].relay_url, relay("p_renewed", 3))
        ended = asyncio.create_task(closed_within(lapsing, 4))
        for _ in range(5):  # renewed every second, as signalling does
            await asyncio.sleep(1)
            await renewed.send(json.dumps({"type": "renew", "grant": relay("p_renewed", 3)}))
        code, reason, _ = await ended
        await renewed.send(b"still here")  # goes through: the socket is open
        # someone else's grant is no renewal
        await renewed.send(json.dumps({"type": "renew", "grant": relay("p_other", 2)}))
        hijack = await closed_within(renewed, WAIT)
        return code, reason, hijack

    code, reason, hijack = run(scenario())
    assert (code, reason) == (4401, "expired grant: ask the control plane for a new one")
    assert hijack[0] == 4401
    assert hijack[1] == "a renewal must be for the same meeting, participant and region"


# -- ending a meeting at the node ---------------------------------------------------------------


def test_an_end_order_closes_every_socket_and_link_and_refuses_the_meeting_after(
    cluster, mint, meeting, control_private, admin
):
    async def scenario():
        give_links(cluster, control_private, meeting)
        alice = await admitted(cluster["US"].relay_url, mint("p_alice"))
        bob = await admitted(cluster["DE"].relay_url, mint("p_bob", dc="DE"))
        await alice.send(b"before the end")
        assert await asyncio.wait_for(bob.recv(), WAIT) == b"before the end"
        closing = [asyncio.create_task(closed_within(c, 1.0)) for c in (alice, bob)]
        for region in ("US", "DE"):
            order = token(
                control_private,
                typ="drop",
                mtg=meeting,
                dc=region,
                drop=[],
                end=True,
                reason="the meeting ended",
            )
            answer = httpx.post(
                f"{cluster[region].url}/v1/relay/{meeting}/drop",
                json={"grant": order},
                trust_env=False,
            )
            assert answer.status_code == 200, answer.text
        closed = [await c for c in closing]
        after = stats(cluster, "US", meeting, admin)
        again = await refusal(cluster["US"].relay_url, mint("p_carol"))
        link = await refusal(cluster["DE"].cascade_url, link_grant(control_private, meeting, "US"))
        return closed, after, again, link

    closed, after, again, link = run(scenario())
    assert [(c[0], c[1]) for c in closed] == [(4410, "the meeting ended")] * 2
    assert after["participants"] == 0
    assert again[:2] == (4410, "the meeting ended")
    assert link[:2] == (4410, "the meeting ended")
