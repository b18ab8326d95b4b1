"""Government requests in the browser, end to end, with a live meeting on real region nodes.

A US-hosted meeting has participants in the US, Hong Kong and mainland China (placed by
``X-Forwarded-For`` through the trusted proxy, as in tests/meetings/test_remove.py). Operator 1
records a request from mainland China through the intake form; the scope keeps it to the CN
participant; operator 1 cannot approve it (no button, and a forged POST is refused by the
workflow and recorded); operator 2 approves it, and the CN participant is really cut off while
the others go on.

The participants run on an event loop of their own in a thread: Playwright's sync API cannot
run inside a running asyncio loop.
"""

from __future__ import annotations

import asyncio
import hashlib
import re
import threading
from collections.abc import Callable, Coroutine, Iterator
from typing import Any

import pytest
from playwright.sync_api import expect
from tests.support import eventually

from meridian.client.participant import Participant
from meridian.wire import Close

from .conftest import check_a11y, shot


def a11y(page: Any) -> None:
    """No critical accessibility violation (the harness's rule), and no serious one either."""
    serious = [f"{v['id']}: {v['help']}" for v in check_a11y(page) if v["impact"] == "serious"]
    assert not serious, f"serious accessibility violations on {page.url}: {serious}"


US_IP, HK_IP, CN_IP = "8.8.8.8", "1.64.0.1", "114.114.114.114"
WAIT = 10  # seconds: a safety net against hanging, never an assertion
ORDER = b"%PDF-1.4 order of the court (test document)\n"


class Loop:
    """An asyncio loop in a thread, for the participants; ``run`` waits for one coroutine."""

    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self.thread.start()

    def run(self, coro: Coroutine[Any, Any, Any], timeout: float = 30) -> Any:
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(timeout)

    def close(self) -> None:
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(timeout=10)
        self.loop.close()


@pytest.fixture
def loop() -> Iterator[Loop]:
    running = Loop()
    yield running
    running.close()


def until(check: Callable[[], bool], what: str) -> None:
    eventually(check, timeout=WAIT, what=what)


def us_meeting(plane: Any) -> str:
    """A meeting hosted by a paying US organisation (through the API)."""
    ops = plane.client("operator")
    body = {"type": "organization", "name": "Host", "country": "US"}
    account = ops.post("/v1/accounts", json=body).json()["account"]
    checkout = {"account": account["id"], "plan": "pro", "channel": "direct"}
    assert ops.post("/v1/checkout", json=checkout).status_code == 201
    plane.token(account["id"], role="user", account_id=account["id"])
    r = plane.client(account["id"]).post("/v1/meetings", json={})
    assert r.status_code == 201, r.text
    plane.invites[r.json()["meeting"]["id"]] = r.json()["invite"]
    return str(r.json()["meeting"]["id"])


def join_three(plane: Any, loop: Loop, meeting: str) -> tuple[Participant, ...]:
    async def joined() -> tuple[Participant, ...]:
        people = []
        for name, ip in (("us", US_IP), ("hk", HK_IP), ("cn", CN_IP)):
            people.append(
                await Participant.join(
                    plane.url, meeting, name=name, forwarded_for=ip, invite=plane.invites[meeting]
                )
            )
        for p in people:
            await p.wait_for_others(2, WAIT)
        return tuple(people)

    result: tuple[Participant, ...] = loop.run(joined())
    return result


def record_request(page: Any, meeting: str) -> str:
    """Operator 1 fills in the intake form; returns the new request's id."""
    page.goto("/console/legal")
    page.get_by_role("link", name="Record a request").click()
    page.wait_for_url(re.compile(r"/console/legal/new$"))
    page.get_by_label("Requesting authority").fill("Beijing Municipal Public Security Bureau")
    page.get_by_label("Jurisdiction").fill("CN")
    page.get_by_label("Legal type").select_option("court_order")
    page.get_by_label("Legal reference").fill("BJ-2021-0301")
    page.get_by_label("Action requested").select_option("end_meeting")
    page.get_by_label("Target kind").select_option("meeting")
    page.get_by_label("Target id").fill(meeting)
    page.get_by_label("Documents served").set_input_files(
        {"name": "order.pdf", "mimeType": "application/pdf", "buffer": ORDER}
    )
    a11y(page)
    shot(page, "legal-intake")
    page.get_by_role("button", name="Record the request").click()
    page.wait_for_url(re.compile(r"/console/legal/lr_[A-Za-z0-9]+$"))
    return str(page.url.rsplit("/", 1)[1])


def row_ids(page: Any, caption: str) -> list[str]:
    """The entity ids listed in the scope table with ``caption``."""
    table = page.locator("table.effects").filter(has=page.locator("caption", has_text=caption))
    return table.locator("tbody tr td:nth-child(2)").all_inner_texts()


def test_a_request_from_cn_is_scoped_approved_by_a_second_operator_and_applied(
    plane: Any, nodes: Any, browse: Any, loop: Loop
) -> None:
    meeting = us_meeting(plane)
    us, hk, cn = join_three(plane, loop, meeting)

    # operator 1 records the request; its page shows the scope, entity by entity
    one = browse(plane, "operator")
    lr = record_request(one, meeting)
    expect(one.locator("#state")).to_have_text("pending")
    assert row_ids(one, "Affected: inside mainland China") == [cn.participant]
    assert set(row_ids(one, "Untouched")) == {meeting, us.participant, hk.participant}
    untouched = one.locator("table.effects").filter(has_text="Untouched")
    assert "out of jurisdiction: participant in HK" in untouched.inner_text()
    assert hashlib.sha256(ORDER).hexdigest() in one.locator("dl.facts").inner_text()
    # the recorder sees no Approve button, and why
    expect(one.get_by_role("button", name="Approve")).to_have_count(0)
    expect(one.locator("#second-operator")).to_contain_text("second operator")
    a11y(one)
    shot(one, "legal-scoping")

    # a forged approval from operator 1 (a valid session and csrf token) is refused by the workflow
    with one.expect_response(re.compile(rf"/console/legal/{lr}/approve$")) as answer:
        one.evaluate(
            """(action) => {
                const form = document.createElement("form");
                form.method = "post";
                form.action = action;
                const csrf = document.querySelector("input[name=csrf]").cloneNode();
                form.append(csrf);
                document.body.append(form);
                form.submit();
            }""",
            f"/console/legal/{lr}/approve",
        )
    assert answer.value.status == 403
    one.wait_for_load_state()
    expect(one.get_by_role("alert")).to_have_text(
        re.compile(
            rf"legal request `{lr}` was recorded by this operator, `operator` \(`psn_[0-9a-f]+`\): "
            "a second operator must approve it"
        )
    )
    expect(one.locator("#state")).to_have_text("pending")
    expect(one.locator("tr.trail-legal-approval_refused")).to_have_count(1)
    refused = plane.client("operator").get(
        "/v1/records", params={"action": "legal.approval_refused", "subject": lr}
    )
    assert refused.json()["count"] == 1
    api = plane.client("operator").get(f"/v1/legal-requests/{lr}").json()
    assert api["state"] == "pending"
    assert cn.removed is None

    # operator 2 approves: the CN participant is disconnected, the others stay
    two = browse(plane, "operator2", path=f"/console/legal/{lr}")
    expect(two.locator("#second-operator")).to_have_count(0)
    two.get_by_role("button", name="Approve").click()
    two.wait_for_url(re.compile(rf"/console/legal/{lr}\?done=approved$"))
    expect(two.locator("#state")).to_have_text("applied")
    expect(two.get_by_role("status")).to_contain_text("1 live participant disconnected")
    disconnected = two.locator("table.disconnected tbody tr")
    expect(disconnected).to_have_count(1)
    expect(disconnected).to_contain_text(cn.participant)
    expect(disconnected).to_contain_text("connection closed")
    assert row_ids(two, "Affected: inside mainland China") == [cn.participant]
    expect(two.locator("table.blocks")).to_contain_text("active")
    a11y(two)
    shot(two, "legal-approved")

    # the CN participant is really gone; US and HK go on exchanging messages
    until(lambda: cn.removed is not None, "the CN participant is told it was removed")
    assert f"`{lr}`" in (cn.removed or "")
    signal = cn._signal
    assert signal is not None
    until(lambda: signal.close_code is not None, "its signalling socket closes")
    assert signal.close_code == Close.REMOVED == 4451

    async def talk() -> str:
        await us.send_chat("still here")
        got = await hk.receive(WAIT)
        return str(got.text)

    until(lambda: cn.participant not in us.roster, "US sees the CN participant leave")
    assert loop.run(talk()) == "still here"

    # the API agrees with the page
    api = plane.client("operator").get(f"/v1/legal-requests/{lr}").json()
    assert api["state"] == "applied"
    assert api["recorded_by"]["name"] == "operator"
    assert api["approved_by"]["name"] == "operator2"
    assert api["applied"]["participants"] == [cn.participant]
    assert api["applied"]["outcome"] == "narrowed"
    assert [b["active"] for b in api["blocks"]] == [True]

    # the list shows it applied, and filters by state
    two.goto("/console/legal?state=applied")
    expect(two.get_by_role("link", name=lr)).to_be_visible()
    two.goto("/console/legal?state=pending")
    expect(two.get_by_role("link", name=lr)).to_have_count(0)
    a11y(two)

    # lifting the block: CN may join again
    two.goto(f"/console/legal/{lr}")
    two.get_by_label("Reason for lifting the blocks").fill("the order was withdrawn")
    two.get_by_role("button", name="Lift the blocks").click()
    two.wait_for_url(re.compile(r"done=lifted$"))
    expect(two.locator("table.blocks")).to_contain_text("lifted")
    api = plane.client("operator").get(f"/v1/legal-requests/{lr}").json()
    assert [b["active"] for b in api["blocks"]] == [False]

    async def leave() -> None:
        for p in (us, hk, cn):
            await p.leave()

    loop.run(leave())


def test_a_refused_intake_keeps_what_was_typed_and_says_why(live: Any, browse: Any) -> None:
    page = browse(live, "operator", path="/console/legal/new")
    page.get_by_label("Requesting authority").fill("Some Bureau")
    page.get_by_label("Jurisdiction").fill("CN")
    page.get_by_label("Legal type").select_option("warrant")
    page.get_by_label("Legal reference").fill("W-1")
    page.get_by_label("Action requested").select_option("suspend_account")
    page.get_by_label("Target kind").select_option("account")
    page.get_by_label("Target id").fill("acct_nobody")
    page.get_by_role("button", name="Record the request").click()
    expect(page.get_by_role("alert")).to_have_text("no account `acct_nobody`")
    assert page.get_by_label("Requesting authority").input_value() == "Some Bureau"
    assert page.get_by_label("Target id").input_value() == "acct_nobody"
    # the API refuses the same request the same way
    body = {
        "authority": "Some Bureau",
        "jurisdiction": "CN",
        "legal_type": "warrant",
        "reference": "W-1",
        "action": "suspend_account",
        "target": {"kind": "account", "id": "acct_nobody"},
    }
    api = live.client("operator").post("/v1/legal-requests", json=body)
    assert api.status_code == 404
    assert api.json()["error"]["message"] == "no account `acct_nobody`"
    # a target the action cannot take
    page.get_by_label("Target kind").select_option("meeting")
    page.get_by_role("button", name="Record the request").click()
    expect(page.get_by_role("alert")).to_have_text(
        "action `suspend_account` cannot take a `meeting` target: expected `account`"
    )
    # a jurisdiction that is not one, as the API's model words it
    page.get_by_label("Jurisdiction").fill("XX")
    with page.expect_response(re.compile(r"/console/legal/new$")) as answer:
        page.get_by_role("button", name="Record the request").click()
    assert answer.value.status == 422
    expect(page.get_by_role("alert")).to_have_text(
        "unknown jurisdiction `XX`: expected an ISO 3166-1 alpha-2 code"
    )
    a11y(page)


def test_a_request_with_nothing_in_scope_is_rejected_by_meridian(live: Any, browse: Any) -> None:
    ops = live.client("operator")
    body = {"type": "individual", "name": "Someone", "country": "HK"}
    account = ops.post("/v1/accounts", json=body).json()["account"]["id"]
    page = browse(live, "operator", path="/console/legal/new")
    page.get_by_label("Requesting authority").fill("Shenzhen Bureau")
    page.get_by_label("Jurisdiction").fill("CN")
    page.get_by_label("Legal type").select_option("court_order")
    page.get_by_label("Legal reference").fill("SZ-9")
    page.get_by_label("Action requested").select_option("suspend_account")
    page.get_by_label("Target kind").select_option("account")
    page.get_by_label("Target id").fill(account)
    page.get_by_label("Delayed-notice order").fill("2030-01-01T00:00")
    page.get_by_role("button", name="Record the request").click()
    page.wait_for_url(re.compile(r"/console/legal/lr_"))
    expect(page.locator("#state")).to_have_text("rejected")
    expect(page.locator("dl.facts")).to_contain_text("no notice before 2030-01-01 00:00 UTC")
    expect(page.get_by_text("Meridian itself: nothing was in scope")).to_be_visible()
    assert row_ids(page, "Untouched") == [account]
    expect(page.get_by_role("button", name="Approve")).to_have_count(0)
    lr = page.url.rsplit("/", 1)[1]
    api = ops.get(f"/v1/legal-requests/{lr}").json()
    assert api["rejected_by"] == "system:meridian"
    assert api["notice_delay_until"] == "2030-01-01T00:00:00Z"
    a11y(page)


def test_a_second_operator_can_reject_with_a_reason(live: Any, browse: Any) -> None:
    ops = live.client("operator")
    body = {
        "type": "organization",
        "name": "Someone Ltd.",
        "country": "CN",
        "org_id": "91110000600037341L",
    }
    account = ops.post("/v1/accounts", json=body).json()["account"]["id"]
    request = {
        "authority": "Shanghai Bureau",
        "jurisdiction": "CN",
        "legal_type": "subpoena",
        "reference": "SH-1",
        "action": "disclose_non_content",
        "target": {"kind": "account", "id": account},
    }
    lr = ops.post("/v1/legal-requests", json=request).json()["id"]
    page = browse(live, "operator2", path=f"/console/legal/{lr}")
    assert row_ids(page, "Affected") == [account]
    page.get_by_role("button", name="Reject").click()  # the reason is required: nothing sent
    assert page.url.endswith(f"/console/legal/{lr}")
    page.get_by_label("Reason for rejecting").fill("not served through the treaty channel")
    page.get_by_role("button", name="Reject").click()
    page.wait_for_url(re.compile(r"done=rejected$"))
    expect(page.locator("#state")).to_have_text("rejected")
    expect(page.get_by_text("Reason: not served through the treaty channel")).to_be_visible()
    api = ops.get(f"/v1/legal-requests/{lr}").json()
    assert (api["state"], api["reason"]) == ("rejected", "not served through the treaty channel")
    # approving it now is a conflict, shown on the page as the API answers it
    answer = page.request.post(
        f"/console/legal/{lr}/approve",
        form={"csrf": page.locator("input[name=csrf]").first.get_attribute("value")},
    )
    assert answer.status == 409
    assert f"legal request `{lr}` is already `rejected`" in answer.text()
    a11y(page)


def test_the_legal_pages_are_for_operators(live: Any, browse: Any) -> None:
    page = browse(live, "bizconf")
    assert page.goto("/console/legal").status == 403
    assert page.goto("/console/legal/new").status == 403
    page = browse(live, "operator")
    response = page.goto("/console/legal/lr_nope")
    assert response.status == 404
    expect(page.get_by_role("alert")).to_have_text("no legal request `lr_nope`")


def cn_org(live: Any) -> str:
    body = {
        "type": "organization",
        "name": "Lakeside Ltd.",
        "country": "CN",
        "org_id": "91110000600037341L",
    }
    return str(live.client("operator").post("/v1/accounts", json=body).json()["account"]["id"])


def test_a_token_the_recorder_minted_cannot_approve_either(live: Any, browse: Any) -> None:
    account = cn_org(live)
    request = {
        "authority": "Beijing Bureau",
        "jurisdiction": "CN",
        "legal_type": "court_order",
        "reference": "BJ-7",
        "action": "suspend_account",
        "target": {"kind": "account", "id": account},
    }
    lr = live.client("operator").post("/v1/legal-requests", json=request).json()["id"]
    # the recorder mints itself a token named for someone else: it is still the recorder's
    minted = live.client("operator").post(
        "/v1/tokens", json={"role": "operator", "name": "Second Reviewer"}
    )
    assert minted.status_code == 201, minted.text
    live.tokens["minted"] = minted.json()["token"]
    person = minted.json()["person_id"]
    page = browse(live, "minted", path=f"/console/legal/{lr}")
    expect(page.get_by_role("button", name="Approve")).to_have_count(0)
    expect(page.locator("#second-operator")).to_contain_text(
        f"you recorded it (operator `{person}`)"
    )
    answer = page.request.post(
        f"/console/legal/{lr}/approve",
        form={"csrf": page.locator("input[name=csrf]").first.get_attribute("value")},
    )
    assert answer.status == 403
    assert f"was recorded by this operator, `operator` (`{person}`)" in answer.text()
    assert live.client("operator").get(f"/v1/legal-requests/{lr}").json()["state"] == "pending"


def test_the_list_filters_by_state_and_jurisdiction_as_the_api(live: Any, browse: Any) -> None:
    ops = live.client("operator")
    cn = cn_org(live)
    hk = ops.post(
        "/v1/accounts", json={"type": "individual", "name": "Chan", "country": "HK"}
    ).json()["account"]["id"]
    base = {"legal_type": "subpoena", "reference": "R", "action": "disclose_non_content"}
    for place, account in (("CN", cn), ("HK", hk), ("CN", hk)):
        body = {
            **base,
            "authority": f"{place} authority",
            "jurisdiction": place,
            "target": {"kind": "account", "id": account},
        }
        assert ops.post("/v1/legal-requests", json=body).status_code == 201
    page = browse(live, "operator", path="/console/legal")
    assert page.locator("table.legal-list tbody tr").count() == 3
    page.get_by_label("State").select_option("pending")
    page.get_by_label("Jurisdiction").fill("CN")
    page.get_by_role("button", name="Filter").click()
    page.wait_for_url(re.compile(r"state=pending&jurisdiction=CN"))
    api = ops.get("/v1/legal-requests", params={"state": "pending", "jurisdiction": "CN"}).json()
    shown = page.locator("table.legal-list tbody tr td:first-child").all_inner_texts()
    assert shown == [r["id"] for r in api["data"]]
    assert api["count"] == 1  # the CN request about an HK account was rejected by Meridian
    page.goto("/console/legal?state=rejected")
    assert page.locator("table.legal-list tbody tr").count() == 1
    a11y(page)
    shot(page, "legal-list")
