"""The log pages: checkpoints, verifying the live log, inclusion and consistency proofs, entries.

What the pages show must be what the public ``/v1/log/…`` endpoints serve, and "verify" must
catch an entry altered in the database behind the service's back.
"""

from __future__ import annotations

import re
from typing import Any

from playwright.sync_api import expect
from sqlalchemy import update

from meridian.storage.models import Record

from .conftest import check_a11y, shot


def a11y(page: Any) -> None:
    """No critical accessibility violation (the harness's rule), and no serious one either."""
    serious = [f"{v['id']}: {v['help']}" for v in check_a11y(page) if v["impact"] == "serious"]
    assert not serious, f"serious accessibility violations on {page.url}: {serious}"


def grow(live: Any, accounts: int) -> int:
    """Write a few entries (sign-ups through the API), sign a checkpoint; the signed size."""
    ops = live.client("operator")
    for n in range(accounts):
        body = {"type": "individual", "name": f"Person {n}", "country": "DE"}
        assert ops.post("/v1/accounts", json=body).status_code == 201
    note = ops.post("/v1/log/checkpoint")
    assert note.status_code == 200
    return int(note.text.split("\n")[1])


def test_the_log_page_lists_the_apis_checkpoints_and_the_key(live: Any, browse: Any) -> None:
    grow(live, 3)
    grow(live, 2)
    size = grow(live, 1)
    page = browse(live, "operator", path="/console/log")
    listed = live.client().get("/v1/log/checkpoints").json()
    shown = [
        (int(r.locator(".cp-size").inner_text()), r.locator(".cp-root").inner_text())
        for r in page.locator("table.checkpoints tbody tr").all()
    ]
    assert shown == [(c["size"], c["root"]) for c in listed["data"]]
    assert shown[0][0] == size
    assert len(shown) >= 3
    assert page.locator("#vkey").inner_text() == live.client().get("/v1/log/key").text.strip()
    assert page.locator("#latest-note").inner_text().strip() == listed["data"][0]["note"].strip()
    assert page.locator("table.checkpoints").get_by_text("verifies").count() == len(shown)
    assert page.locator("#log-size").inner_text().replace(",", "") == str(live.runtime.log.sync())
    a11y(page)
    shot(page, "console-log")
    # signing a checkpoint from the page: the log grew (the sign-in itself is not an entry)
    grow(live, 1)
    page.reload()
    page.get_by_role("button", name="Sign a checkpoint now").click()
    page.wait_for_url(re.compile(r"done=checkpoint"))
    latest = live.client().get("/v1/log/checkpoints").json()["data"][0]
    assert page.locator(".cp-size").first.inner_text() == str(latest["size"])


def test_checkpoints_come_in_pages_newest_first(live: Any, browse: Any) -> None:
    # one checkpoint per size: the log grows by one entry between them
    for _ in range(24):
        grow(live, 1)
    listed = live.client().get("/v1/log/checkpoints").json()
    page = browse(live, "operator", path="/console/log")
    assert page.locator("table.checkpoints tbody tr").count() == 20
    page.get_by_role("link", name="Older").click()
    page.wait_for_url(re.compile(r"page=2$"))
    times = page.locator("table.checkpoints tbody tr td:nth-child(3)").all_inner_texts()
    roots = page.locator(".cp-root").all_inner_texts()
    assert roots == [c["root"] for c in listed["data"][20:]]
    assert len(times) == listed["count"] - 20
    a11y(page)


def test_verify_says_ok_and_an_inclusion_proof_matches_the_api(live: Any, browse: Any) -> None:
    first = grow(live, 2)
    size = grow(live, 3)
    page = browse(live, "operator", path="/console/log")
    page.get_by_role("button", name="Verify the live log").click()
    page.wait_for_url(re.compile(r"/console/log/verify"))
    expect(page.locator("#verdict")).to_contain_text("ok: the log verifies")
    assert f"the latest at size {size:,}" in page.locator("#verdict").inner_text()
    a11y(page)
    shot(page, "console-log-verified")

    k = size - 4
    page.goto("/console/log")
    page.get_by_label("Entry index").first.fill(str(k))
    page.get_by_role("button", name="Prove inclusion").click()
    page.wait_for_url(re.compile(rf"/console/log/proof\?index={k}"))
    api = live.client().get("/v1/log/proof/inclusion", params={"index": k, "size": size}).json()
    expect(page.locator("#verdict")).to_contain_text(f"verified: entry {k} is in the tree of")
    assert page.locator("#proof-tree-size").inner_text() == str(size) == str(api["size"])
    assert page.locator("#leaf-hash").inner_text() == api["leaf_hash"]
    assert page.locator("#signed-root").inner_text() == api["root"]
    assert page.locator("#audit-path .proof-hash").all_inner_texts() == api["proof"]
    # the browser hashed the path itself and reached the signed root
    expect(page.locator("#browser-result")).to_have_text(
        f"Verified by your browser: the path leads to the root {api['root']}."
    )
    assert page.locator("#browser-steps li").count() == len(api["proof"]) + 1
    a11y(page)
    shot(page, "console-log-inclusion")

    # the entry as the log hashes it: the API's entry line carries the same bytes
    page.get_by_role("link", name=str(k), exact=True).click()
    page.wait_for_url(re.compile(rf"/console/log/entry\?index={k}$"))
    line = live.client("operator").get("/v1/log/entries", params={"start": k, "end": k + 1})
    assert line.text.startswith(f"[{k},")
    assert line.text.rstrip("\n")[len(f'[{k},"') + 64 + 2 : -1] == page.locator(
        "#canonical"
    ).inner_text()
    assert page.locator("#entry-leaf").inner_text() == api["leaf_hash"]
    a11y(page)

    # a consistency proof between the two checkpoints
    page.goto(f"/console/log/consistency?first={first}&second={size}")
    api = live.client().get(
        "/v1/log/proof/consistency", params={"first": first, "second": size}
    ).json()
    expect(page.locator("#verdict")).to_contain_text(
        f"verified: the tree of {size} entries extends the tree of {first}"
    )
    assert page.locator("ol.path code").all_inner_texts() == api["proof"]
    a11y(page)


def test_an_entry_altered_in_the_database_is_found_by_verify(live: Any, browse: Any) -> None:
    size = grow(live, 4)
    # rewrite where one sign-up came from: DE becomes CN
    with live.runtime.db.read() as session:
        *_, (k, original) = [
            (r.seq, r.entry)
            for r in session.query(Record).where(Record.action == "account.register")
        ]
    assert k < size
    forged = original.replace(b'"country":"DE"', b'"country":"CN"')
    assert forged != original
    with live.runtime.db.write() as session:
        session.execute(update(Record).where(Record.seq == k).values(entry=forged))
    page = browse(live, "operator", path="/console/log/verify")
    expect(page.get_by_role("alert")).to_contain_text("the log does not verify")
    problems = page.locator("ol.problems li").all_inner_texts()
    # the entry no longer hashes to the leaf stored with it, and the signed root breaks
    assert any(p.startswith(f"entry {k}: leaf hash recorded") for p in problems), problems
    assert any(f"(size {size}): signed root" in p for p in problems), problems
    # the entry page reads the entry, finds it changed, and refuses to show it as an entry of
    # the log, naming it (the log checks itself: docs/audit.md)
    response = page.goto(f"/console/log/entry?index={k}")
    assert response is not None
    assert response.status == 503
    expect(page.get_by_role("alert").first).to_contain_text(
        f"the log failed its self-check: entry {k} "
    )
    a11y(page)
    shot(page, "console-log-tampered")


def test_bad_proof_requests_are_refused_on_the_page(live: Any, browse: Any) -> None:
    size = grow(live, 1)
    page = browse(live, "operator")
    response = page.goto(f"/console/log/proof?index={size + 5}")
    assert response.status == 422
    expect(page.get_by_role("alert")).to_contain_text(f"entry `{size + 5}` is outside a log of")
    response = page.goto(f"/console/log/entry?index={size + 100}")
    assert response.status == 422
    response = page.goto("/console/log/consistency?first=5&second=2")
    api = live.client().get("/v1/log/proof/consistency", params={"first": 5, "second": 2})
    assert response.status == api.status_code == 422
    expect(page.get_by_role("alert")).to_have_text(api.json()["error"]["message"])
    a11y(page)


def test_the_log_pages_are_for_operators(live: Any, browse: Any) -> None:
    page = browse(live, "bizconf")
    for path in ("/console/log", "/console/log/verify", "/console/log/entry?index=0"):
        assert page.goto(path).status == 403


def test_an_edited_entry_is_named_on_the_log_page_and_refused_by_the_proof_and_report_pages(
    live: Any, browse: Any
) -> None:
    size = grow(live, 3)
    victim = size - 2
    with live.runtime.db.write() as session:
        session.execute(
            update(Record).where(Record.seq == victim).values(entry=b'{"forged":true}')
        )
    page = browse(live, "operator", path="/console/log")
    # not noticed yet: reading the log's size and checkpoints reads no entry. The report page
    # reads them all, finds the edit, and refuses, naming the entry.
    report = page.goto("/console/report")
    assert report is not None
    assert report.status == 503
    expect(page.get_by_role("alert")).to_contain_text(f"entry {victim} ")
    for path in (f"/console/log/proof?index=0&size={size}", "/console/log/consistency?first=1"):
        response = page.goto(path)
        assert response is not None
        assert response.status == 503, path
        expect(page.get_by_role("alert").first).to_contain_text(f"entry {victim} ")
    response = page.goto("/console/log")
    assert response is not None
    assert response.status == 503
    alert = page.locator("#log-problems")
    expect(alert).to_contain_text("The log failed its self-check")
    expect(alert.locator(".problem-where")).to_have_text(f"entry {victim}")
    a11y(page)
    overview = page.goto("/console")
    assert overview is not None
    expect(page.locator("#log-problems")).to_contain_text(f"entry {victim}")
