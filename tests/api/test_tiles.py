"""The tiled log over HTTP: ``/log/checkpoint`` and ``/log/tile/…``, proofs rebuilt from tiles
alone equal to the proof endpoints', cache headers, and bad paths refused with one line."""

from __future__ import annotations

import base64
from datetime import UTC, datetime

import httpx
import pytest

from meridian.audit import Actor, record
from meridian.audit.merkle import leaf_hash, verify_consistency, verify_inclusion
from meridian.audit.note import NoteVerifier
from meridian.audit.tiles import Tile, TileReader, bundle_items

pytestmark = pytest.mark.storage

AT = datetime(2020, 6, 4, 12, 0, tzinfo=UTC)


def _b(text: str) -> bytes:
    return base64.b64decode(text)


def _grow_to(server, size: int) -> None:
    now = server.runtime.log.sync()
    with server.runtime.db.write() as session:
        for i in range(now, size):
            record(
                session,
                actor=Actor("test", "tiles"),
                action="test.write",
                subject_kind="counter",
                subject_id=str(i),
                at=AT,
                bundle_digest="sha256:" + "0" * 64,
            )


def _fetch(public: httpx.Client):
    def fetch(tile: Tile) -> bytes:
        got = public.get(f"/log/{tile.path}")
        assert got.status_code == 200, (tile.path, got.text)
        assert got.headers["content-type"] == "application/octet-stream"
        return got.content

    return fetch


def test_proofs_from_tiles_alone_are_the_proof_endpoints(live_factory):
    server = live_factory()
    public, ops = server.client(), server.client("operator")
    verifier = NoteVerifier.from_vkey(public.get("/v1/log/key").text)
    sizes = []
    for size in (255, 256, 257, 300, 512, 700):
        _grow_to(server, size)
        assert ops.post("/v1/log/checkpoint").status_code == 200
        got = public.get("/log/checkpoint")
        assert got.headers["content-type"] == "text/plain; charset=utf-8"
        assert got.headers["cache-control"] == "public, max-age=5"
        checkpoint = verifier.open(got.text)
        assert checkpoint.size == size
        reader = TileReader(size, _fetch(public))
        assert reader.root() == checkpoint.root
        for index in sorted({0, 254, 255, size // 2, size - 1} & set(range(size))):
            served = public.get("/v1/log/proof/inclusion", params={"index": index, "size": size})
            body = served.json()
            assert reader.leaf(index) == _b(body["leaf_hash"])
            assert reader.inclusion_proof(index) == [_b(h) for h in body["proof"]]
            verify_inclusion(
                reader.leaf(index), index, size, reader.inclusion_proof(index), checkpoint.root
            )
        for first in sizes:
            served = public.get(
                "/v1/log/proof/consistency", params={"first": first, "second": size}
            ).json()
            assert reader.consistency_proof(first) == [_b(h) for h in served["proof"]]
            assert reader.first_root(first) == _b(served["first_root"])
            proof = reader.consistency_proof(first)
            verify_consistency(first, size, reader.first_root(first), checkpoint.root, proof)
        sizes.append(size)


def test_tiles_are_public_immutable_when_full_and_bundles_carry_leaf_hashes(live_factory):
    server = live_factory()
    public, ops = server.client(), server.client("operator")
    _grow_to(server, 300)
    ops.post("/v1/log/checkpoint")
    full = public.get("/log/tile/0/000")
    assert full.status_code == 200
    assert len(full.content) == 8192
    assert full.headers["cache-control"] == "public, max-age=31536000, immutable"
    assert full.headers["access-control-allow-origin"] == "*"
    partial = public.get("/log/tile/0/001.p/44")
    assert len(partial.content) == 44 * 32
    assert partial.headers["cache-control"] == "public, max-age=60"
    assert len(public.get("/log/tile/1/000.p/1").content) == 32
    bundle = public.get("/log/tile/entries/001.p/44")
    assert bundle.status_code == 200
    items = bundle_items(bundle.content)
    assert items == [partial.content[i : i + 32] for i in range(0, 44 * 32, 32)]
    # each item is the leaf hash of the entry an operator reads; the entry itself is not there
    lines = ops.get("/v1/log/entries", params={"start": 299, "end": 300}).content
    entry = lines[lines.index(b",", lines.index(b'"', 5) + 1) + 1 : -2]
    assert items[-1] == leaf_hash(entry)
    assert entry not in bundle.content


@pytest.mark.parametrize(
    ("path", "status", "message"),
    [
        ("tile/0/x000/001", 422, "tile path `tile/0/x000/001` is not in canonical form"),
        ("tile/64/000", 422, "level `64` is not `entries` or 0 to 63"),
        ("tile/0/000.p/300", 422, "partial width `300` is not 1 to 255"),
        ("tile/0/12", 422, "groups of three digits"),
        ("tile/0/000.p/9", 404, "tile `tile/0/000.p/9` is not in the log: its latest checkpoint"),
        ("tile/0/x001/000", 404, "is not in the log"),
        ("tile/entries/001", 404, "is not in the log"),
        ("tile/0/" + "x001/" * 1500 + "000", 422, "starts beyond any tree size"),
    ],
    ids=["x000", "level", "width", "digits", "beyond", "far", "bundle", "long"],
)
def test_a_bad_tile_path_is_a_one_line_4xx(live_factory, path, status, message):
    server = live_factory()
    _grow_to(server, 5)
    server.client("operator").post("/v1/log/checkpoint")
    got = server.client().get(f"/log/{path}")
    assert got.status_code == status, got.text
    error = got.json()["error"]["message"]
    assert message in error
    assert "\n" not in error


def test_checkpoints_are_listed_by_page(live_factory):
    server = live_factory()
    public, ops = server.client(), server.client("operator")
    for size in (10, 20, 30):
        _grow_to(server, size)
        ops.post("/v1/log/checkpoint")
    first = public.get("/v1/log/checkpoints", params={"limit": 2}).json()
    count = first["count"]
    assert count >= 3
    assert [c["size"] for c in first["data"]] == [30, 20]
    assert first["next"] == 2
    rest = public.get("/v1/log/checkpoints", params={"limit": 1000, "offset": 2}).json()
    assert rest["data"][0]["size"] == 10
    assert rest["next"] is None
    assert len(rest["data"]) == count - 2
