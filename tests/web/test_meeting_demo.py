"""The demo's simulated network: a browser on this machine joins "as if from" a place.

Only a service started with ``meridian serve --demo`` has it (``app.state.demo_network``); the
address is judged like any other, so mainland China is fenced exactly as for a real CN address.
"""

from __future__ import annotations

from playwright.sync_api import expect
from tests.web.conftest import check_a11y, shot
from tests.web.test_meeting import create_meeting, host, invited, join_page, stats

from meridian.demo import DEMO_IPS


def test_a_browser_joins_as_if_from_mainland_china_and_is_fenced(plane, nodes, browse) -> None:
    plane.app.state.demo_network = DEMO_IPS
    try:
        mid = create_meeting(plane, host(plane), topic="Vendor sync")["id"]
        page = browse(plane, path=invited(plane, mid))
        check_a11y(page)
        page.get_by_label("Demo network: connect as if from").select_option("CN")
        join_page(page, "Chen in Beijing")
        # a US host's meeting keeps mainland China out: the CN browser is carried from Hong Kong
        expect(page.get_by_role("status")).to_contain_text("Connected through the relay in HK")
        expect(page.locator("#dc")).to_have_text("HK")
        shot(page, "meeting-demo-network")
    finally:
        del plane.app.state.demo_network
    counted = stats(nodes, mid)
    assert counted["CN"]["bytes_in"] == 0
    assert counted["CN"]["keys"] == 0
    # the join was judged by the demo's CN address, and says so
    joins = plane.client("operator").get("/v1/records", params={"action": "meeting.join"}).json()
    assert any("114.114.114.114" in str(r) for r in joins["data"])


def test_without_the_demo_network_from_is_refused_with_the_reason(plane, nodes, browse) -> None:
    mid = create_meeting(plane, host(plane), topic="Vendor sync")["id"]
    page = browse(plane, path=invited(plane, mid))
    # the select is not offered; a hand-made `?from=` is refused in one line
    assert page.get_by_label("Demo network: connect as if from").count() == 0
    message = page.evaluate(
        """async (mid) => await new Promise((done) => {
            const ws = new WebSocket(`ws://${location.host}/v1/meetings/${mid}/signal?from=CN`);
            ws.onmessage = (event) => done(JSON.parse(event.data).message);
            ws.onopen = () => ws.send(JSON.stringify({type: "join", name: "x", public_key: "AA"}));
        })""",
        mid,
    )
    assert message.startswith("`from=CN` is only for the demo's simulated network")
