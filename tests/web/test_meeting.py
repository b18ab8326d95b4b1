"""The meetings list and the meeting page, in a real browser against real region nodes.

The browser is a participant like any other: meeting.js makes its key pair, joins through
signalling, unwraps the meeting key and seals chat lines itself; the others are
:class:`meridian.client.Participant` clients placed by ``X-Forwarded-For`` as in
tests/meetings/test_fence.py. The Python clients run on an event loop of their own thread
(:class:`Clients`) so they stay in the meeting while Playwright drives the page.
"""

from __future__ import annotations

import asyncio
import contextlib
import re
import threading
from collections.abc import Coroutine, Iterator
from typing import Any

import httpx
import pytest
from playwright.sync_api import expect
from tests.support import eventually
from tests.web.conftest import check_a11y, shot
from websockets.asyncio.client import connect
from websockets.exceptions import InvalidStatus

from meridian.client.participant import Participant
from meridian.http.session import COOKIE
from meridian.keys import FrameKind

US_IP, DE_IP, CN_IP, HK_IP = "8.8.8.8", "80.81.192.1", "114.114.114.114", "1.64.0.1"
WAIT = 15  # seconds: a safety net against hanging, never an assertion


class Clients:
    """An event loop on its own thread, for Python participants that outlive one call."""

    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self.thread.start()
        self.people: list[Participant] = []

    def run(self, coro: Coroutine[Any, Any, Any], timeout: float = 30) -> Any:
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(timeout)

    def join(self, plane: Any, meeting: str, name: str, ip: str) -> Participant:
        person: Participant = self.run(
            Participant.join(
                plane.url, meeting, name=name, forwarded_for=ip, invite=plane.invites.get(meeting)
            )
        )
        self.people.append(person)
        return person

    def close(self) -> None:
        for person in self.people:
            with contextlib.suppress(Exception):  # already gone
                self.run(person.leave())
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(timeout=10)
        self.loop.close()


@pytest.fixture
def clients() -> Iterator[Clients]:
    c = Clients()
    yield c
    c.close()


def host(live: Any, *, country: str = "US", plan: str | None = "pro", name: str = "Host") -> str:
    """A hosting account (``plan=None``: left on the free plan) and a user token named by its id."""
    ops = live.client("operator")
    body = {"type": "organization", "name": name, "country": country}
    if country == "CN":
        body["org_id"] = "91110000600037341L"
    account = ops.post("/v1/accounts", json=body).json()["account"]
    if plan is not None:
        checkout = {"account": account["id"], "plan": plan, "channel": "direct"}
        assert ops.post("/v1/checkout", json=checkout).status_code == 201
    live.token(account["id"], role="user", account_id=account["id"])
    return str(account["id"])


def create_meeting(live: Any, account: str, **body: Any) -> dict[str, Any]:
    r = live.client(account).post("/v1/meetings", json=body)
    assert r.status_code == 201, r.text
    meeting: dict[str, Any] = r.json()["meeting"]
    live.invites[meeting["id"]] = r.json()["invite"]
    return meeting


def invited(live: Any, meeting: str) -> str:
    """The path of the meeting's join link: the page, with the invite in the fragment."""
    return f"/meet/{meeting}#k={live.invites[meeting]}"


def stats(nodes: Any, meeting: str) -> dict[str, dict[str, Any]]:
    with httpx.Client(timeout=10, trust_env=False) as http:
        return {
            r: http.get(f"{n.url}/v1/stats/{meeting}", headers=nodes.admin).json()
            for r, n in nodes.nodes.items()
        }


class Wire:
    """Every WebSocket frame the page sent and received, by socket URL."""

    def __init__(self, page: Any) -> None:
        self.frames: list[tuple[str, str, str | bytes]] = []
        page.on("websocket", self._watch)

    def _watch(self, ws: Any) -> None:
        url = ws.url
        ws.on("framesent", lambda payload: self.frames.append((url, "sent", payload)))
        ws.on("framereceived", lambda payload: self.frames.append((url, "received", payload)))

    def on(self, fragment: str) -> list[tuple[str, str | bytes]]:
        return [(d, p) for u, d, p in self.frames if fragment in u]


async def hear(person: Participant, sender: str) -> Any:
    """The next chat line ``person`` receives from ``sender`` (frames from others, and the
    page's call, are passed over)."""
    while True:
        got = await person.receive(timeout=WAIT)
        if got.sender == sender and got.kind == FrameKind.CHAT:
            return got


def join_page(page: Any, name: str) -> None:
    page.get_by_label("Your name").fill(name)
    page.get_by_role("button", name="Join meeting").click()


def wait_until(check: Any, what: str) -> None:
    eventually(check, timeout=WAIT, what=what)


def test_a_browser_and_two_clients_chat_end_to_end_encrypted(plane, nodes, browse, clients):
    account = host(plane)
    meeting = create_meeting(plane, account, topic="Quarterly review")
    mid = meeting["id"]
    page = browse(plane, forwarded_for=US_IP, path=invited(plane, mid))
    wire = Wire(page)
    check_a11y(page)
    join_page(page, "Browser guest")
    expect(page.get_by_role("status")).to_contain_text("Connected through the relay in US")
    expect(page.locator("#dc")).to_have_text("US")
    expect(page.locator("#key-region")).to_have_text("US")
    expect(page.locator("#epoch")).to_have_text("1")

    de = clients.join(plane, mid, "Dana in Frankfurt", DE_IP)
    us = clients.join(plane, mid, "Uma in Denver", US_IP)
    assert (de.admission.dc, us.admission.dc) == ("DE", "US")
    roster = page.locator("#roster")
    expect(roster).to_contain_text("Dana in Frankfurt")
    expect(roster).to_contain_text("Uma in Denver")
    clients.run(de.wait_for_others(2, timeout=WAIT))
    clients.run(us.wait_for_others(2, timeout=WAIT))

    # the Python clients speak: the browser opens their frames and names them
    clients.run(de.send_chat("Guten Morgen aus Frankfurt"))
    clients.run(us.send_chat("Good morning from Denver"))
    chat = page.locator("#chat")
    expect(chat).to_contain_text("Dana in Frankfurt: Guten Morgen aus Frankfurt")
    expect(chat).to_contain_text("Uma in Denver: Good morning from Denver")

    # the browser speaks: both clients open its frame with its sender key
    page.get_by_label("Message").fill("Hello from the browser ✓")
    page.get_by_role("button", name="Send").click()
    browser_id = page.locator("#me").inner_text().rsplit("(", 1)[1].rstrip(")")
    for person in (de, us):
        got = clients.run(hear(person, browser_id))
        assert got.text == "Hello from the browser ✓"
        assert (got.sender, got.epoch) == (browser_id, 1)
        assert clients.run(person.sender_name(got.sender)) == "Browser guest"
    expect(chat).to_contain_text("Browser guest: Hello from the browser ✓")
    check_a11y(page)
    shot(page, "meeting-page")

    # someone leaves: the key rotates, and the browser goes on under the new epoch
    clients.run(us.leave())
    expect(page.locator("#epoch")).to_have_text("2")
    expect(roster).not_to_contain_text("Uma in Denver")
    wait_until(lambda: de.epoch == 2, "DE's rotation")
    clients.run(de.send_chat("Still here after the rotation"))
    expect(chat).to_contain_text("Dana in Frankfurt: Still here after the rotation")
    page.get_by_label("Message").fill("So am I")
    page.get_by_role("button", name="Send").click()
    got = clients.run(hear(de, browser_id))
    assert (got.text, got.epoch) == ("So am I", 2)

    # what crossed the wire: the relay carried MF2 frames only, and no plaintext line ever went
    # to or came from a server, in either direction
    lines = [
        "Guten Morgen aus Frankfurt",
        "Good morning from Denver",
        "Hello from the browser ✓",
        "Still here after the rotation",
        "So am I",
    ]
    relay = [(d, p) for d, p in wire.on("/v1/relay")]
    sealed = [p for _, p in relay if isinstance(p, bytes)]
    chat = [(d, p) for d, p in relay if isinstance(p, bytes) and p.startswith(b"MF2\x01")]
    assert len([d for d, _ in chat if d == "sent"]) == 2
    assert len([d for d, _ in chat if d == "received"]) == 3
    assert all(p.startswith(b"MF2") for p in sealed)  # chat, and the page's call
    signalling = wire.on("/signal")
    assert signalling, "the page's signalling socket was not seen"
    for _, payload in relay + signalling:
        raw = payload if isinstance(payload, bytes) else payload.encode("utf-8")
        for line in lines:
            assert line.encode("utf-8") not in raw
    # the relays counted ciphertext through US and DE, and nothing went near CN or HK
    counted = stats(nodes, mid)
    assert counted["US"]["frames_in"] >= 3
    assert counted["DE"]["frames_in"] >= 2
    assert counted["CN"]["bytes_in"] == counted["HK"]["bytes_in"] == 0
    page.get_by_role("button", name="Leave the meeting").click()
    expect(page.get_by_role("status")).to_have_text("You left the meeting.")


def test_the_page_needs_the_invite_and_the_host_admits_from_the_waiting_room(plane, nodes, browse):
    account = host(plane, name="Board Inc")
    mid = create_meeting(plane, account, topic="Board")["id"]
    # the id alone: one clear line, and nothing was placed or keyed
    outsider = browse(plane, forwarded_for=US_IP, path=f"/meet/{mid}")
    join_page(outsider, "Mallory")
    expect(outsider.get_by_role("alert")).to_have_text(
        "Refused: this meeting needs its invite link: ask the host"
    )
    expect(outsider.locator("#room")).to_be_hidden()
    assert join_records(plane, mid) == []

    r = plane.client(account).patch(f"/v1/meetings/{mid}", json={"waiting_room": True})
    assert r.status_code == 200, r.text
    # the host account's own user needs no invite and does not wait
    host_page = browse(plane, account, forwarded_for=US_IP, path=f"/meet/{mid}")
    host_page.get_by_role("button", name="Join meeting").click()
    expect(host_page.get_by_role("status")).to_contain_text("Connected through the relay in US")

    guest = browse(plane, forwarded_for=DE_IP, path=invited(plane, mid))
    join_page(guest, "Gina")
    expect(guest.get_by_role("status")).to_have_text("Waiting for the host to let you in…")
    expect(guest.locator("#room")).to_be_hidden()
    waiting = host_page.get_by_role("region", name="Waiting to join")
    expect(waiting).to_contain_text("Gina")
    check_a11y(host_page)
    shot(host_page, "meeting-waiting-room")
    waiting.get_by_role("button", name="Admit Gina").click()
    expect(guest.get_by_role("status")).to_contain_text("Connected through the relay in DE")
    expect(host_page.locator("#roster")).to_contain_text("Gina")
    expect(waiting).to_be_hidden()

    other = browse(plane, forwarded_for=DE_IP, path=invited(plane, mid))
    join_page(other, "Otto")
    expect(waiting).to_contain_text("Otto")
    waiting.get_by_role("button", name="Refuse Otto").click()
    expect(other.get_by_role("alert")).to_have_text(
        "Refused: the host refused your request to join"
    )
    expect(other.locator("#room")).to_be_hidden()
    expect(waiting).to_be_hidden()
    # Otto was never placed: one join each for the host and Gina
    assert len(join_records(plane, mid)) == 2


def join_records(live: Any, meeting: str) -> list[dict[str, Any]]:
    params = {"action": "meeting.join", "subject": meeting}
    data: list[dict[str, Any]] = (
        live.client("operator").get("/v1/records", params=params).json()["data"]
    )
    return data


def test_a_joiner_from_a_denied_country_sees_the_reason_on_the_page(plane, nodes, browse):
    meeting = create_meeting(plane, host(plane), topic="No CN", countries={"deny": ["CN"]})
    page = browse(plane, forwarded_for=CN_IP, path=invited(plane, meeting["id"]))
    wire = Wire(page)
    join_page(page, "Chen")
    alert = page.get_by_role("alert")
    expect(alert).to_contain_text(
        "Refused: this meeting is not reachable from CN: its host blocks it"
    )
    expect(alert.locator(".reasons li").first).to_contain_text("(CN)")
    expect(page.get_by_role("status")).to_have_text("Not joined.")
    expect(page.locator("#room")).to_be_hidden()
    check_a11y(page)
    shot(page, "meeting-refused")
    # the control plane refused and recorded it; no relay was ever opened, no key was made
    (record,) = join_records(plane, meeting["id"])
    assert record["details"]["decision"] == "deny"
    assert record["details"]["country"] == "CN"
    assert record["actor"].startswith("anonymous:")
    assert not wire.on("/v1/relay")
    assert all(s["keys"] == 0 for s in stats(nodes, meeting["id"]).values())


def test_a_signed_in_user_joins_with_their_session_and_only_from_this_origin(
    plane, nodes, browse, clients
):
    account = host(plane, name="Acme Inc")
    meeting = create_meeting(plane, account, topic="Board call")
    page = browse(plane, account, forwarded_for=US_IP, path=f"/meet/{meeting['id']}")
    # the host sees its meeting as the API shows it, and joins under its account's name
    expect(page.get_by_role("heading", level=1)).to_have_text("Board call")
    expect(page.get_by_label("Your name")).to_have_value("Acme Inc")
    page.get_by_role("button", name="Join meeting").click()
    expect(page.get_by_role("status")).to_contain_text("Connected through the relay in US")
    check_a11y(page)
    # the join was judged as the account's user: the same actor that created the meeting
    (record,) = join_records(plane, meeting["id"])
    params = {"action": "meeting.create", "subject": meeting["id"]}
    (created,) = plane.client("operator").get("/v1/records", params=params).json()["data"]
    assert record["actor"] == created["actor"]
    assert record["actor"].startswith("user:")
    # a guest sees no topic (the API would not show it the meeting either)
    guest = browse(plane, forwarded_for=US_IP, path=invited(plane, meeting["id"]))
    expect(guest.get_by_role("heading", level=1)).to_have_text("Join a meeting")
    expect(guest.locator("main")).not_to_contain_text("Board call")

    # the session cookie never works for another origin's page (cross-site WebSocket hijacking)
    cookie = next(c["value"] for c in page.context.cookies() if c["name"] == COOKIE)
    url = plane.url.replace("http://", "ws://") + f"/v1/meetings/{meeting['id']}/signal"

    async def handshake(origin: str) -> int:
        headers = {"Cookie": f"{COOKIE}={cookie}", "Origin": origin, "X-Forwarded-For": US_IP}
        try:
            async with connect(url, additional_headers=headers, proxy=None):
                return 101
        except InvalidStatus as refused:
            return int(refused.response.status_code)

    assert clients.run(handshake("http://evil.example")) == 403
    assert clients.run(handshake(plane.url.replace("127.0.0.1", "localhost"))) == 403
    assert clients.run(handshake(plane.url)) == 101


def test_removal_rotation_and_the_end_reach_the_page(plane, nodes, browse, clients):
    account = host(plane)
    meeting = create_meeting(plane, account)
    mid = meeting["id"]
    kept = browse(plane, forwarded_for=DE_IP, path=invited(plane, mid))
    join_page(kept, "Dieter")
    expect(kept.get_by_role("status")).to_contain_text("Connected through the relay in DE")
    gone = browse(plane, forwarded_for=CN_IP, path=invited(plane, mid))
    join_page(gone, "Chen")
    expect(gone.get_by_role("status")).to_contain_text("Connected through the relay in HK")
    expect(kept.locator("#roster")).to_contain_text("Chen")
    chen = gone.locator("#me").inner_text().rsplit("(", 1)[1].rstrip(")")
    reason = "lawful request `lr_demo` approved by two operators: blocked in CN"

    signalling = plane.app.state.signalling
    removed = clients.run(plane.on_server(signalling.remove(mid, [chen], reason=reason)))
    assert removed == [chen]
    expect(gone.get_by_role("alert")).to_have_text(f"You were removed from the meeting: {reason}")
    expect(gone.get_by_role("button", name="Send")).to_be_disabled()
    # the one who stays is told, and moves to a key the removed never get
    expect(kept.locator("#roster")).not_to_contain_text("Chen")
    expect(kept.locator("#epoch")).to_have_text("2")
    expect(gone.locator("#epoch")).to_have_text("1")

    r = plane.client(account).post(f"/v1/meetings/{mid}/end")
    assert r.status_code == 200, r.text
    expect(kept.get_by_role("status")).to_have_text("The meeting ended.")
    expect(kept.get_by_role("button", name="Send")).to_be_disabled()


# -- the meetings list ------------------------------------------------------------------------------


def test_a_user_creates_a_meeting_and_gets_its_join_link(live, browse):
    acct = host(live)
    page = browse(live, acct, path="/account/meetings")
    expect(page.locator("main")).to_contain_text("No meetings yet.")
    page.get_by_label("Title").fill("Weekly sync")
    page.get_by_label("Everyone except people in these countries").check()
    page.get_by_label("Countries (ISO codes").fill("cn, RU")
    page.get_by_role("button", name="Create meeting").click()
    # the list is the API's list for this user, and the new meeting is in it as the API made it
    (meeting,) = live.client(acct).get("/v1/meetings").json()["data"]
    assert (meeting["topic"], meeting["countries"]) == ("Weekly sync", {"deny": ["CN", "RU"]})
    expect(page.get_by_role("status")).to_contain_text("Meeting Weekly sync created")
    row = page.locator(f'tr[data-meeting="{meeting["id"]}"]')
    expect(row).to_contain_text("not CN, RU")
    expect(row).to_contain_text(", ".join(meeting["regions"]))
    expect(row.get_by_role("link", name="Weekly sync")).to_have_attribute(
        "href", f"/meet/{meeting['id']}"
    )
    # the join link carries the invite in its fragment, and is shown this once
    link = row.get_by_label("Join link of Weekly sync")
    expect(link).to_have_value(
        re.compile(rf"^{re.escape(live.url)}/meet/{meeting['id']}#k=[A-Za-z0-9_-]{{32}}$")
    )
    row.get_by_role("button", name="Copy the join link of Weekly sync").click()
    expect(row.locator("button[data-copy]")).to_contain_text(re.compile(r"^(Copied|Selected)"))
    check_a11y(page)
    shot(page, "account-meetings")
    first = link.input_value()
    page.goto("/account/meetings")
    expect(row.get_by_label("Join link of Weekly sync")).to_have_count(0)
    # a new join link replaces it
    row.get_by_role("button", name="New join link for Weekly sync").click()
    fresh = row.get_by_label("Join link of Weekly sync").input_value()
    assert fresh != first
    assert fresh.startswith(f"{live.url}/meet/{meeting['id']}#k=")
    # lock and waiting room, as PATCH /v1/meetings/{id} sets them
    row.get_by_role("button", name="Lock Weekly sync").click()
    expect(row.get_by_role("button", name="Unlock Weekly sync")).to_be_visible()
    row.get_by_role("button", name="Waiting room on for Weekly sync").click()
    expect(row.get_by_role("button", name="Waiting room off for Weekly sync")).to_be_visible()
    got = live.client(acct).get(f"/v1/meetings/{meeting['id']}").json()
    assert (got["locked"], got["waiting_room"]) == (True, True)

    # a bad country code is the API's own refusal, with what was typed kept
    page.get_by_label("Title").fill("Second")
    page.get_by_label("Only people in these countries").check()
    page.get_by_label("Countries (ISO codes").fill("US, XX")
    page.get_by_role("button", name="Create meeting").click()
    expect(page.get_by_role("alert")).to_have_text(
        "unknown jurisdiction `XX`: expected an ISO 3166-1 alpha-2 code"
    )
    api = live.client(acct).post(
        "/v1/meetings", json={"topic": "Second", "countries": {"approve": ["US", "XX"]}}
    )
    assert api.status_code == 422
    assert "unknown jurisdiction `XX`" in api.json()["error"]["message"]
    expect(page.get_by_label("Countries (ISO codes")).to_have_value("US, XX")
    expect(page.get_by_label("Only people in these countries")).to_be_checked()
    assert live.client(acct).get("/v1/meetings").json()["count"] == 1
    # and another user's list does not show this meeting
    other = host(live, name="Other")
    assert live.client(other).get("/v1/meetings").json()["count"] == 0
    page2 = browse(live, other, path="/account/meetings")
    expect(page2.locator("main")).not_to_contain_text("Weekly sync")


def test_a_free_account_in_mainland_china_is_told_why_it_cannot_host(live, browse):
    acct = host(live, country="CN", plan=None, name="Free CN")
    page = browse(live, acct, path="/account/meetings")
    page.get_by_label("Title").fill("Cannot host")
    page.get_by_role("button", name="Create meeting").click()
    alert = page.get_by_role("alert")
    expect(alert).to_contain_text("since 2020-05-20 free accounts in mainland China can join")
    decision = page.get_by_role("region", name="Decision")
    expect(decision).to_contain_text("Decision: deny · host")
    expect(decision).to_contain_text("cn-free-users-join-only")
    expect(page.get_by_label("Title")).to_have_value("Cannot host")
    check_a11y(page)
    # the API refuses the same way, and nothing was created
    api = live.client(acct).post("/v1/meetings", json={"topic": "Cannot host"})
    assert api.status_code == 403
    assert api.json()["error"]["message"] == alert.inner_text()
    assert live.client(acct).get("/v1/meetings").json()["count"] == 0


# -- with the operator's data-centre page (its DOM contract: table#regions, tr[data-region],
#    td[data-col="in-use"] saying yes or no) ---------------------------------------------------------


def test_a_live_meeting_with_a_cn_joiner_uses_no_cn_relay_on_the_operator_page(
    plane, nodes, browse, clients
):
    meeting = create_meeting(plane, host(plane), topic="Across the Pacific")
    assert "CN" not in meeting["regions"]  # the default set of a US host: CN needs an opt-in
    mid = meeting["id"]
    page = browse(plane, forwarded_for=US_IP, path=invited(plane, mid))
    join_page(page, "Browser in Denver")
    expect(page.get_by_role("status")).to_contain_text("Connected through the relay in US")
    de = clients.join(plane, mid, "Dana in Frankfurt", DE_IP)
    cn = clients.join(plane, mid, "Chen in Beijing", CN_IP)
    assert (de.admission.dc, cn.admission.dc) == ("DE", "HK")
    expect(page.locator("#roster")).to_contain_text("Chen in Beijing")
    clients.run(cn.wait_for_others(2, timeout=WAIT))
    clients.run(cn.send_chat("你好, from Beijing via Hong Kong"))
    expect(page.locator("#chat")).to_contain_text(
        "Chen in Beijing: 你好, from Beijing via Hong Kong"
    )
    page.get_by_label("Message").fill("Heard you, Chen")
    page.get_by_role("button", name="Send").click()
    browser_id = page.locator("#me").inner_text().rsplit("(", 1)[1].rstrip(")")
    for person in (de, cn):
        assert clients.run(hear(person, browser_id)).text == "Heard you, Chen"

    console = browse(plane, "operator", path="/console/datacentres")
    regions = console.locator("table#regions")
    in_use = {
        code: regions.locator(f'tr[data-region="{code}"] td[data-col="in-use"]')
        for code in ("CN", "DE", "HK", "US")
    }
    expect(in_use["CN"]).to_have_text("no")
    for code in ("DE", "HK", "US"):
        expect(in_use[code]).to_have_text("yes")
    shot(console, "datacentres-live-meeting")
    # the CN node agrees: it carried nothing of this meeting
    counted = stats(nodes, mid)
    assert counted["CN"]["bytes_in"] == counted["CN"]["keys"] == 0
    assert counted["HK"]["frames_in"] >= 1
