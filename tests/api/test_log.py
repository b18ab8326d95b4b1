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
