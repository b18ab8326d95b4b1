"""The meeting page against a hostile participant, in a real browser against real region nodes.

A participant holding the group key forges a frame under another participant's id: the page
checks every frame's Ed25519 signature against the roster the control plane signs, shows
nothing of the forgery and counts it; a roster that is not the control plane's is refused.
"""

from __future__ import annotations

import base64
import json
from typing import Any

from playwright.sync_api import expect
from tests.web.test_meeting import US_IP, WAIT, Clients, create_meeting, host, invited, join_page
from tests.web.test_meeting import clients as clients  # the fixture, shared

from meridian.keys import FrameKind


def test_the_page_drops_a_frame_forged_under_another_participants_id(
    plane, nodes, browse, clients: Clients
):
    meeting = create_meeting(plane, host(plane), topic="Forgery")["id"]
    page = browse(plane, forwarded_for=US_IP, path=invited(plane, meeting))
    join_page(page, "Browser guest")
    expect(page.get_by_role("status")).to_contain_text("Connected through the relay in US")
    bob = clients.join(plane, meeting, "Bob", US_IP)
    mallory = clients.join(plane, meeting, "Mallory", US_IP)
    for person in (bob, mallory):
        clients.run(person.wait_for_others(2, timeout=WAIT))
    roster = page.locator("#roster")
    expect(roster).to_contain_text("Bob")
    expect(roster).to_contain_text("Mallory")

    # mallory holds the group key: her frame opens as bob's to anyone who only decrypts it
    forged = mallory.keys.seal(sender=bob.participant, kind=FrameKind.CHAT, payload=b"i am bob")
    clients.run(mallory.send_frame(forged))
    clients.run(bob.send_chat("the real bob"))
    chat = page.locator("#chat")
    expect(chat).to_contain_text("Bob: the real bob")
    # the forgery came first (one relay, in order): nothing of it was shown, and it was counted
    expect(chat).not_to_contain_text("i am bob")
    dropped = page.locator("#dropped")
    expect(dropped).to_have_attribute("data-bad-signature", "1")
    expect(dropped).to_contain_text("1 with a bad signature")
    # and mallory, as herself, is heard
    clients.run(mallory.send_chat("mallory as herself"))
    expect(chat).to_contain_text("Mallory: mallory as herself")
    expect(dropped).to_have_attribute("data-unknown-sender", "0")
    expect(dropped).to_have_attribute("data-old-epoch", "0")


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _tamper(message: str | bytes) -> str | bytes:
    """``admitted`` with its roster's payload changed, the control plane's signature kept."""
    if not isinstance(message, str):
        return message
    body: dict[str, Any] = json.loads(message)
    if body.get("type") != "admitted":
        return message
    head, payload, signature = body["signed_roster"].split(".")
    claims = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
    claims["seq"] += 1
    body["signed_roster"] = ".".join([head, _b64(json.dumps(claims).encode()), signature])
    return json.dumps(body)


def test_the_page_refuses_a_roster_the_control_plane_did_not_sign(plane, nodes, browse):
    meeting = create_meeting(plane, host(plane), topic="Tampered roster")["id"]
    page = browse(plane, forwarded_for=US_IP, path=invited(plane, meeting))

    def between(ws: Any) -> None:
        server = ws.connect_to_server()
        ws.on_message(server.send)
        server.on_message(lambda message: ws.send(_tamper(message)))

    page.route_web_socket("**/signal", between)
    join_page(page, "Browser guest")
    expect(page.get_by_role("alert")).to_contain_text(
        "Could not join: roster refused: not signed by the control plane"
    )
    expect(page.get_by_role("status")).to_have_text("Not joined.")
    expect(page.locator("#room")).to_be_hidden()
