"""The console's data-centres map and meetings list, over a real control plane and region nodes.

Participants are real (``meridian.client.Participant``): they join from US, DE and CN addresses
through the test harness acting as a trusted proxy, and stay connected, on an event loop of
their own in a background thread, while the browser looks at the pages. What the pages show is
compared with what the API says (``/v1/datacentres``, ``/v1/meetings``, and the nodes' own
counters through ``/v1/meetings/{id}/carried``).
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Coroutine, Iterator
from typing import Any

import httpx
import pytest
from playwright.sync_api import expect

from .conftest import check_a11y, shot

US_IP, DE_IP, CN_IP = "8.8.8.8", "80.81.192.1", "114.114.114.114"
WAIT_MS = 15_000  # a few refreshes of the page's figures
COUNTERS = ("bytes_in", "bytes_out", "frames_in", "frames_out", "keys", "participants")


class Background:
    """An event loop in a thread of its own: participants stay while the browser looks."""

    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self.thread.start()

    def run(self, coro: Coroutine[Any, Any, Any], timeout: float = 60) -> Any:
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(timeout)

    def close(self) -> None:
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(10)
        self.loop.close()


@pytest.fixture
def background() -> Iterator[Background]:
    bg = Background()
    yield bg
    bg.close()


def us_host(live: Any) -> str:
    """A paying organisation in the US, with a user token named after its account."""
    ops = live.client("operator")
    body = {"type": "organization", "name": "Riverside Clinic", "country": "US"}
    account = ops.post("/v1/accounts", json=body).json()["account"]
    checkout = {"account": account["id"], "plan": "pro", "channel": "direct"}
    assert ops.post("/v1/checkout", json=checkout).status_code == 201
    live.token(account["id"], role="user", account_id=account["id"])
    return str(account["id"])


def new_meeting(live: Any, account: str, topic: str = "Quarterly review") -> dict[str, Any]:
    r = live.client(account).post("/v1/meetings", json={"topic": topic})
    assert r.status_code == 201, r.text
    meeting: dict[str, Any] = r.json()["meeting"]
    live.invites[meeting["id"]] = r.json()["invite"]
    return meeting


async def join_and_talk(live: Any, meeting: str) -> list[Any]:
    """US, DE and CN participants join, and each says one line (so the relays carry bytes)."""
    from meridian.client.participant import Participant

    people = [
        await Participant.join(
            live.url, meeting, name=name, forwarded_for=ip, invite=live.invites[meeting]
        )
        for name, ip in (("us", US_IP), ("de", DE_IP), ("cn", CN_IP))
    ]
    for p in people:
        await p.send_chat(f"hello from {p.participant}")
    for p in people:
        for _ in range(len(people) - 1):
            await p.receive(timeout=10)
    return people


async def leave_all(people: list[Any]) -> None:
    for p in people:
        await p.leave()


def carried_by_api(live: Any, meeting: str) -> dict[str, dict[str, Any]]:
    """The regions ``/v1/meetings/{id}/carried`` reports any traffic or key for."""
    regions = live.client("operator").get(f"/v1/meetings/{meeting}/carried").json()["regions"]
    return {r: c for r, c in regions.items() if any(c.get(k) for k in COUNTERS)}


def accessible(page: Any) -> None:
    """axe-core finds nothing critical (``check_a11y``) and nothing serious either."""
    serious = [v["id"] for v in check_a11y(page) if v.get("impact") == "serious"]
    assert not serious, f"serious accessibility findings on {page.url}: {serious}"


def cell(page: Any, table: str, region: str, col: str) -> Any:
    return page.locator(f'#{table} tr[data-region="{region}"] td[data-col="{col}"]')


def test_a_live_meeting_appears_on_the_map_and_its_regions_agree_with_the_api(
    plane: Any, nodes: Any, browse: Any, background: Background
) -> None:
    regions = [d["region"] for d in plane.client("operator").get("/v1/datacentres").json()["data"]]
    page = browse(plane, "operator", path="/console/datacentres")
    # the map has drawn the world (177 countries in world-atlas 110m) and one shape per region
    expect(page.locator("#map [data-region]")).to_have_count(len(regions), timeout=WAIT_MS)
    assert page.locator("#map path.land").count() > 100
    assert page.locator("#map").get_attribute("role") == "img"
    assert page.locator("#map").get_attribute("aria-label")
    assert page.locator('#map [data-in-use="true"]').count() == 0
    expect(cell(page, "regions", "US", "in-use")).to_have_text("no")

    account = us_host(plane)
    meeting = new_meeting(plane, account)
    assert "CN" not in meeting["regions"]
    people = background.run(join_and_talk(plane, meeting["id"]))
    try:
        assert [p.admission.dc for p in people] == ["US", "DE", "HK"]
        # the page picks the meeting up on its own refresh, without a reload
        expect(cell(page, "regions", "US", "in-use")).to_have_text("yes", timeout=WAIT_MS)
        expect(page.locator(f'#live tr[data-meeting="{meeting["id"]}"]')).to_have_count(1)
        expect(cell(page, "regions", "DE", "in-use")).to_have_text("yes", timeout=WAIT_MS)
        expect(cell(page, "regions", "CN", "in-use")).to_have_text("no")
        expect(page.locator('#map [data-region="US"]')).to_have_attribute("data-in-use", "true")
        expect(page.locator('#map [data-region="CN"]')).to_have_attribute("data-in-use", "false")

        # every region's figures are the API's
        api = {d["region"]: d for d in plane.client("operator").get("/v1/datacentres").json()["data"]}
        for region, d in api.items():
            in_use = bool(d.get("meetings"))
            expect(cell(page, "regions", region, "participants")).to_have_text(str(d["participants"]))
            expect(cell(page, "regions", region, "meetings")).to_have_text(str(len(d["meetings"])))
            expect(cell(page, "regions", region, "in-use")).to_have_text("yes" if in_use else "no")
            shape = page.locator(f'#map [data-region="{region}"]')
            expect(shape).to_have_attribute("data-in-use", "true" if in_use else "false")
        assert {r for r, d in api.items() if d.get("meetings")} == {"US", "DE", "HK"}
        assert api["CN"]["participants"] == 0

        # choosing the meeting shows exactly the regions the nodes say carried it
        page.locator(f'#live a[data-choose="{meeting["id"]}"]').click()
        expect(page).to_have_url(f"{plane.url}/console/datacentres?meeting={meeting['id']}")
        carried = carried_by_api(plane, meeting["id"])
        assert set(carried) == {"US", "DE", "HK"}
        rows = page.locator("#carried tbody tr[data-region]")
        expect(rows).to_have_count(len(carried), timeout=WAIT_MS)
        assert {r.get_attribute("data-region") for r in rows.all()} == set(carried)
        for region, figures in carried.items():
            for col in ("bytes_in", "bytes_out", "keys", "participants"):
                expect(cell(page, "carried", region, col)).to_have_text(f"{figures[col]:,}")
        chosen_on_map = page.locator('#map [data-carried="true"]')
        expect(chosen_on_map).to_have_count(len(carried))
        assert {r.get_attribute("data-region") for r in chosen_on_map.all()} == set(carried)
        expect(page.locator('#map [data-region="CN"]')).to_have_attribute("data-carried", "false")
        shot(page, "console-datacentres")
        accessible(page)

        # the same page opened at ?meeting=ID shows the same, rendered by the server
        page.goto(f"/console/datacentres?meeting={meeting['id']}")
        served = page.locator("#carried tbody tr[data-region]")
        assert {r.get_attribute("data-region") for r in served.all()} == set(carried)
        expect(page.locator('#map [data-carried="true"]')).to_have_count(len(carried), timeout=WAIT_MS)
    finally:
        background.run(leave_all(people))


def test_the_meetings_list_shows_hosts_countries_and_regions_as_the_api_does(
    plane: Any, nodes: Any, browse: Any, background: Background
) -> None:
    account = us_host(plane)
    ended = new_meeting(plane, account, topic="Monday stand-up")
    assert plane.client(account).post(f"/v1/meetings/{ended['id']}/end").status_code == 200
    meeting = new_meeting(plane, account)
    people = background.run(join_and_talk(plane, meeting["id"]))
    try:
        page = browse(plane, "operator", path="/console/meetings")
        listed = plane.client("operator").get("/v1/meetings").json()
        assert {m["id"] for m in listed["data"]} == {meeting["id"], ended["id"]}
        row = page.locator(f'#live-meetings tr[data-meeting="{meeting["id"]}"]')
        expect(row.locator('[data-col="host-country"]')).to_have_text("US")
        expect(row.locator('[data-col="countries"]')).to_have_text("CN 1, DE 1, US 1")
        expect(row.locator('[data-col="regions"]')).to_have_text("DE, HK, US")
        assert account in row.inner_text()
        old = page.locator(f'#recent-meetings tr[data-meeting="{ended["id"]}"]')
        expect(old).to_have_count(1)
        expect(old.locator('[data-col="countries"]')).to_have_text("none")
        assert page.locator("#live-meetings tbody tr[data-meeting]").count() == 1
        accessible(page)
        shot(page, "console-meetings")

        # each meeting links to its map
        row.get_by_role("link", name=meeting["id"]).click()
        page.wait_for_url(f"**/console/datacentres?meeting={meeting['id']}")
        expect(page.locator("#carried tbody tr[data-region]")).to_have_count(3)
        accessible(page)
    finally:
        background.run(leave_all(people))


def test_a_partner_cannot_open_the_map_or_its_data(live: Any, browse: Any) -> None:
    page = browse(live, "bizconf")
    for path in ("/console/datacentres", "/console/datacentres.json", "/console/meetings"):
        response = page.goto(path)
        assert response is not None
        assert response.status == 403, path
        expect(page.get_by_role("heading", name="Not allowed")).to_be_visible()
    shot(page, "console-datacentres-partner")
    # without a session the data is not served either: the browser is sent to sign in
    r = httpx.get(f"{live.url}/console/datacentres.json", follow_redirects=False)
    assert r.status_code == 303
    assert r.headers["location"].startswith("/login?next=/console/datacentres.json")


def test_an_unknown_meeting_is_not_found_on_the_map_as_in_the_api(live: Any, browse: Any) -> None:
    page = browse(live, "operator")
    response = page.goto("/console/datacentres?meeting=m_nothing")
    assert response is not None
    assert response.status == 404
    assert "no meeting `m_nothing`" in page.locator("main").inner_text()
    api = live.client("operator").get("/v1/meetings/m_nothing/carried")
    assert api.status_code == 404
    # without region nodes the map still draws every region, none in use
    page.goto("/console/datacentres")
    expect(page.locator('#map [data-in-use="false"]')).to_have_count(
        len(live.client("operator").get("/v1/datacentres").json()["data"]), timeout=WAIT_MS
    )
    accessible(page)
    shot(page, "console-datacentres-idle")
