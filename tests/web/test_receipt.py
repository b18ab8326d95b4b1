"""The ended meeting's page checks its residency receipt in the browser (WebCrypto Ed25519 and
SHA-256) and says where the meeting went; a tampered receipt is shown as not verified; the
receipt downloads as a file that ``meridian receipt verify`` reads."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from typing import Any

import pytest
from playwright.sync_api import expect
from tests.web.conftest import check_a11y
from tests.web.test_meeting import HK_IP, US_IP, Clients, create_meeting, host


@pytest.fixture
def clients() -> Iterator[Clients]:
    c = Clients()
    yield c
    c.close()


def hold_and_end(plane: Any, clients: Clients) -> str:
    """ana in the US and bo in Hong Kong say hello, then the host ends the meeting."""
    account = host(plane)
    meeting = create_meeting(plane, account)["id"]
    ana = clients.join(plane, meeting, "ana", US_IP)
    bo = clients.join(plane, meeting, "bo", HK_IP)
    clients.run(ana.wait_for_others(1, timeout=10))
    clients.run(ana.send_chat("hello"))
    clients.run(bo.receive(timeout=10))
    end = plane.client(account).post(f"/v1/meetings/{meeting}/end")
    assert end.status_code == 200, end.text
    return meeting


def test_the_hosts_page_verifies_the_receipt_and_a_tampered_one_is_not(
    plane, nodes, browse, clients, tmp_path
):
    meeting = hold_and_end(plane, clients)
    account = plane.client("operator").get(f"/v1/meetings/{meeting}").json()["host_account_id"]
    page = browse(plane, account, path=f"/meet/{meeting}")
    result = page.locator("#receipt-result")
    expect(result).to_have_text("verified: carried only in HK, US; keys only from US")
    check_a11y(page)
    with page.expect_download() as download:
        page.get_by_role("link", name="Download the receipt").click()
    saved = tmp_path / "receipt.json"
    download.value.save_as(saved)
    assert download.value.suggested_filename == f"receipt-{meeting}.json"
    receipt = json.loads(saved.read_text(encoding="utf-8"))
    assert receipt["meeting"] == meeting
    assert receipt["summary"]["carried_in"] == ["HK", "US"]

    # the same page, served a receipt whose bo was moved to the US after the fact
    tampered = browse(plane, account)

    def move_bo(route: Any) -> None:
        body = route.fetch().json()
        for item in body["entries"]:
            if '"name":"bo"' in item["entry"]:
                item["entry"] = item["entry"].replace('"dc":"HK"', '"dc":"US"')
                moved = item["index"]
        body["summary"]["carried_in"] = ["US"]
        route.fulfill(json=body)
        tampered.moved = moved  # type: ignore[attr-defined]

    tampered.route(re.compile(r".*/receipt\.json$"), move_bo)
    tampered.goto(f"/meet/{meeting}")
    expect(tampered.locator("#receipt-result")).to_have_text(
        re.compile(r"^not verified: entry \d+ is not in the signed log")
    )
    assert tampered.locator("#receipt").get_attribute("data-verified") == "no"
    assert f"entry {tampered.moved} " in tampered.locator("#receipt-result").inner_text()

    # a guest sees no receipt, and the receipt itself is not found for it
    guest = browse(plane, path=f"/meet/{meeting}")
    expect(guest.locator("#receipt")).to_have_count(0)
    assert guest.request.get(f"/meet/{meeting}/receipt.json").status == 404
