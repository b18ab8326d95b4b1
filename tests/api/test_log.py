"""The log over HTTP: checkpoints, proofs that verify against them, entries for operators only."""

from __future__ import annotations

import base64

import pytest

from meridian.audit.export import entry_line
from meridian.audit.merkle import leaf_hash, verify_consistency, verify_inclusion
from meridian.audit.note import NoteVerifier

pytestmark = pytest.mark.storage


def _b(text: str) -> bytes:
    return base64.b64decode(text)


def _grow(server, n: int) -> None:
    ops = server.client("operator")
    for i in range(n):
        assert ops.post("/v1/tokens", json={"role": "operator", "name": f"t{i}"}).status_code == 201


def test_checkpoints_and_proofs_verify_with_the_published_key(live_factory):
    server = live_factory()
    public, ops = server.client(), server.client("operator")
    vkey = public.get("/v1/log/key").text.strip()
    verifier = NoteVerifier.from_vkey(vkey)
    first = verifier.open(public.get("/v1/log/checkpoint").text)
    _grow(server, 7)
    issued = ops.post("/v1/log/checkpoint")
    assert issued.status_code == 200
    assert issued.headers["content-type"].startswith("text/plain")
    second = verifier.open(issued.text)
    assert second.size > first.size
    assert verifier.open(public.get("/v1/log/checkpoint").text) == second

    for index in (0, first.size, second.size - 1):
        proof = public.get("/v1/log/proof/inclusion", params={"index": index, "size": second.size})
        assert proof.status_code == 200, proof.text
        body = proof.json()
        assert _b(body["root"]) == second.root
        verify_inclusion(
            _b(body["leaf_hash"]), index, second.size, [_b(h) for h in body["proof"]], second.root
        )
    consistency = public.get(
        "/v1/log/proof/consistency", params={"first": first.size, "second": second.size}
    ).json()
    verify_consistency(
        first.size,
        second.size,
        first.root,
        second.root,
        [_b(h) for h in consistency["proof"]],
    )
    listed = public.get("/v1/log/checkpoints").json()
    assert [c["size"] for c in listed["data"]][:2] == [second.size, first.size]

    # The entries are for operators, line by line as in an export, and hash to the proven leaves.
    assert public.get("/v1/log/entries").status_code == 401
    assert server.client("bizconf").get("/v1/log/entries").status_code == 403
    got = ops.get("/v1/log/entries", params={"start": 0, "end": second.size})
    assert got.status_code == 200
    assert got.headers["content-type"].startswith("application/x-ndjson")
    lines = got.content.split(b"\n")[:-1]
    assert len(lines) == second.size
    last = lines[-1]
    entry = last[last.index(b",", last.index(b'"', 3) + 1) + 1 : -1]
    assert last + b"\n" == entry_line(second.size - 1, entry)
    proof = public.get("/v1/log/proof/inclusion", params={"index": second.size - 1}).json()
    assert _b(proof["leaf_hash"]) == leaf_hash(entry)


def test_bad_proof_requests_are_one_line_422s(live_factory):
    server = live_factory()
    public = server.client()
    size = int(public.get("/v1/log/checkpoint").text.split("\n")[1])
    past = public.get("/v1/log/proof/inclusion", params={"index": 10**6})
    assert past.status_code == 422
    message = past.json()["error"]["message"]
    assert "`1000000`" in message
    assert "\n" not in message
    too_big = public.get("/v1/log/proof/consistency", params={"first": 1, "second": 10**9})
    assert too_big.status_code == 422
    assert "`1000000000`" in too_big.json()["error"]["message"]
    backwards = public.get("/v1/log/proof/consistency", params={"first": size, "second": 0})
    assert backwards.status_code == 422
    for params in ({"index": "x"}, {"index": -1}, {}):
        r = public.get("/v1/log/proof/inclusion", params=params)
        assert r.status_code == 422, params


def test_an_entry_edited_in_the_database_is_refused_by_reports_and_proofs(live_factory):
    from sqlalchemy import select, update

    from meridian.storage.models import LogProblem, Record

    server = live_factory()
    public, ops = server.client(), server.client("operator")
    _grow(server, 6)
    signed = ops.post("/v1/log/checkpoint")
    assert signed.status_code == 200
    assert public.get("/v1/reports/transparency").status_code == 200
    db = server.runtime.db
    with db.write() as session:
        victim, data = session.execute(
            select(Record.seq, Record.entry).where(Record.action == "token.create").limit(1)
        ).one()
        forged = bytes(data).replace(b'"token.create"', b'"token.revoke"')
        assert forged != bytes(data)
        session.execute(update(Record).where(Record.seq == victim).values(entry=forged))

    # A report computed now reads every entry and finds it (the report cached at this
    # checkpoint was computed before the edit, from entries that were checked); from then on
    # every report, the cached one too, and every proof is refused.
    for path, params, client in (
        ("/v1/reports/transparency", {"from": "2020-01-01"}, public),
        ("/v1/reports/transparency", {}, public),
        ("/v1/reports/transparency", {"format": "csv"}, public),
        ("/v1/log/proof/inclusion", {"index": 0}, public),
        ("/v1/log/proof/consistency", {"first": 1}, public),
        ("/v1/log/entries", {}, ops),
    ):
        got = client.get(path, params=params)
        assert got.status_code == 503, (path, got.text)
        error = got.json()["error"]
        assert error["code"] == "log_integrity"
        assert error["message"].startswith(f"the log failed its self-check: entry {victim} ")
        assert "reports, proofs and entries are refused" in error["message"]
    assert ops.post("/v1/log/checkpoint").status_code == 503
    with db.read() as session:
        assert [p.position for p in session.scalars(select(LogProblem))] == [victim]


def test_start_up_verifies_the_stored_log_and_records_a_mismatch(live_factory, caplog):
    from sqlalchemy import select, update

    from meridian.storage.models import LogProblem, Record

    first = live_factory()
    _grow(first, 4)
    assert first.client("operator").post("/v1/log/checkpoint").status_code == 200
    assert first.app.state.log_check.problems == ()
    with first.runtime.db.write() as session:
        session.execute(
            update(Record).where(Record.seq == 2).values(entry=b'{"forged":true}')
        )
    with caplog.at_level("ERROR", logger="meridian.server"):
        second = live_factory()  # a restart: the new service checks what it finds
    check = second.app.state.log_check
    assert len(check.problems) == 1
    assert check.problems[0].startswith("entry 2 ")
    assert any("the log failed its self-check: entry 2 " in r.getMessage() for r in caplog.records)
    with second.runtime.db.read() as session:
        assert [p.position for p in session.scalars(select(LogProblem))] == [2]
    got = second.client().get("/v1/log/proof/inclusion", params={"index": 3})
    assert got.status_code == 503
    assert "entry 2 " in got.json()["error"]["message"]
