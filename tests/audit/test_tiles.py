"""The log as C2SP tiles: paths, the spec's definition of a tile, and proofs rebuilt from tiles
that equal the log's own, at many tree sizes (0, 1, 255, 256, 257, … 65,536 and past it)."""

from __future__ import annotations

import hashlib
from datetime import UTC, datetime

import pytest
from sqlalchemy import update

from meridian.audit import Actor, record
from meridian.audit.merkle import EMPTY_ROOT, Tree, leaf_hash, verify_consistency, verify_inclusion
from meridian.audit.tiles import (
    TILE_WIDTH,
    Tile,
    TileReader,
    bundle_items,
    entry_bundle,
    parse_tile_path,
    read_tile,
    tile_width,
)
from meridian.errors import InputError, LogTamperedError, NotFoundError, ProofError
from meridian.storage.models import Record

AT = datetime(2020, 6, 4, 12, 0, tzinfo=UTC)


def _grow(db, n: int, *, per_transaction: int = 5_000) -> None:
    done = 0
    while done < n:
        step = min(per_transaction, n - done)
        with db.write() as session:
            for i in range(step):
                record(
                    session,
                    actor=Actor("test", "tiles"),
                    action="test.write",
                    subject_kind="counter",
                    subject_id=str(done + i),
                    at=AT,
                    bundle_digest="sha256:" + "0" * 64,
                )
        done += step


def _mth(leaves: list[bytes]) -> bytes:
    """RFC 6962 §2.1 MTH, written as the definition reads (recursive, no stored levels)."""
    if not leaves:
        return EMPTY_ROOT
    if len(leaves) == 1:
        return leaves[0]
    k = 1 << ((len(leaves) - 1).bit_length() - 1)
    return hashlib.sha256(b"\x01" + _mth(leaves[:k]) + _mth(leaves[k:])).digest()


# -- paths ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("tile", "path"),
    [
        (Tile(0, 0), "tile/0/000"),
        (Tile(0, 1234067), "tile/0/x001/x234/067"),
        (Tile(2, 1234067, 5), "tile/2/x001/x234/067.p/5"),
        (Tile(None, 0, 1), "tile/entries/000.p/1"),
        (Tile(1, 999), "tile/1/999"),
        (Tile(1, 1000), "tile/1/x001/000"),
        (Tile(None, 255, 255), "tile/entries/255.p/255"),
    ],
    ids=lambda v: v if isinstance(v, str) else "",
)
def test_tile_paths_are_the_specifications(tile: Tile, path: str) -> None:
    assert tile.path == path
    assert parse_tile_path(path) == tile


@pytest.mark.parametrize(
    ("path", "problem"),
    [
        ("tile/0", "is not `tile/<level>/<index>"),
        ("tiles/0/000", "is not `tile/<level>/<index>"),
        ("tile/64/000", "level `64` is not `entries` or 0 to 63"),
        ("tile/01/000", "level `01`"),
        ("tile/-1/000", "level `-1`"),
        ("tile/0/0", "groups of three digits"),
        ("tile/0/0000", "groups of three digits"),
        ("tile/0/001/234", "groups of three digits"),
        ("tile/0/x000/234", "not in canonical form: expected `tile/0/234`"),
        ("tile/0/000.p/256", "partial width `256` is not 1 to 255"),
        ("tile/0/000.p/0", "partial width `0`"),
        ("tile/0/000.p/05", "partial width `05`"),
        ("tile/0/000.p", "groups of three digits"),
        ("tile/0/000.p/1/2", "groups of three digits"),
        ("tile/0/abc", "groups of three digits"),
        ("tile/7/x999/x999/x999/x999/x999/x999/999", "starts beyond any tree size"),
    ],
)
def test_a_bad_tile_path_is_refused_with_what_is_wrong(path: str, problem: str) -> None:
    with pytest.raises(InputError, match=problem.replace("(", r"\(").replace(")", r"\)")) as exc:
        parse_tile_path(path)
    assert exc.value.message.startswith(f"tile path `{path}`")


def test_the_specifications_example_of_a_tree_of_70000() -> None:
    # "273 full level 0 tiles, one partial level 0 tile of width 112, one full level 1 tile,
    # one partial level 1 tile of width 17, and one partial level 2 tile of width 1"
    size = 70_000
    assert [tile_width(0, n, size) for n in (0, 272, 273, 274)] == [256, 256, 112, 0]
    assert [tile_width(1, n, size) for n in (0, 1)] == [256, 17]
    assert [tile_width(2, n, size) for n in (0, 1)] == [1, 0]
    assert tile_width(3, 0, size) == 0
    # "a tree of size 256 will be represented by a full level 0 tile and a partial level 1
    # tile of width 1"
    assert (tile_width(0, 0, 256), tile_width(0, 1, 256), tile_width(1, 0, 256)) == (256, 0, 1)


def test_entry_bundles_are_uint16_length_prefixed() -> None:
    assert entry_bundle([b"ab", b""]) == b"\x00\x02ab\x00\x00"
    assert bundle_items(b"\x00\x02ab\x00\x00") == [b"ab", b""]
    with pytest.raises(ProofError, match="item 0 is cut off"):
        bundle_items(b"\x00\x03ab")
    with pytest.raises(ProofError, match="length prefix is cut off"):
        bundle_items(b"\x00\x02ab\x00")


# -- tiles against the definition ------------------------------------------------------------


@pytest.mark.parametrize("size", [1, 255, 256, 257, 511, 65_535, 65_536, 65_537, 70_000])
def test_every_tile_is_the_definitions_hashes(size: int) -> None:
    """Tile n of level l holds MTH(D[(n*256 + i) * 256**l : (n*256 + i + 1) * 256**l])."""
    leaves = [leaf_hash(b"%d" % i) for i in range(size)]
    tree = Tree()
    tree.extend(leaves)
    level = 0
    while size >> (8 * level):
        span = 256**level
        for n in range((size >> (8 * level)) // TILE_WIDTH + 1):
            width = tile_width(level, n, size)
            if not width:
                continue
            got = tree.hashes(8 * level, n * 256, n * 256 + width)
            # the definition computed directly for the first, the last and a middle hash
            for i in sorted({0, width // 2, width - 1}):
                start = (n * 256 + i) * span
                if span <= 256:
                    expected = _mth(leaves[start : start + span])
                else:  # a level-2 hash: MTH of 65,536 leaves, from the level-1 hashes below
                    expected = _mth(
                        [tree.hashes(8, j, j + 1) for j in range(start // 256, (start + span) // 256)]
                    )
                assert got[i * 32 : (i + 1) * 32] == expected, (size, level, n, i)
        level += 1


# -- the live log's tiles --------------------------------------------------------------------


def _reader(log, size: int) -> TileReader:
    return TileReader(size, lambda tile: read_tile(log, tile))


def test_an_empty_log_has_no_tiles(log) -> None:
    signed = log.checkpoint()
    assert signed.checkpoint.size == 0
    assert _reader(log, 0).root() == EMPTY_ROOT == signed.checkpoint.root
    with pytest.raises(NotFoundError, match=r"tile `tile/0/000.p/1` is not in the log: its latest"):
        read_tile(log, Tile(0, 0, 1))


@pytest.mark.parametrize("sizes", [(1, 2, 255, 256, 257, 300, 511, 512, 513, 600)])
def test_proofs_from_tiles_are_the_logs_proofs(log, db, sizes: tuple[int, ...]) -> None:
    previous = []
    for size in sizes:
        _grow(db, size - log.sync())
        signed = log.checkpoint().checkpoint
        assert signed.size == size
        reader = _reader(log, size)
        assert reader.root() == signed.root
        for index in sorted({0, 1, size // 2, 255, 256, size - 1} & set(range(size))):
            _, leaf, proof, root = log.inclusion(index, size)
            assert reader.leaf(index) == leaf
            assert reader.inclusion_proof(index) == proof
            verify_inclusion(reader.leaf(index), index, size, reader.inclusion_proof(index), root)
        for first in [*previous, 0, size]:
            _, proof, first_root, second_root = log.consistency(first, size)
            assert reader.consistency_proof(first) == proof
            assert reader.first_root(first) == first_root
            verify_consistency(first, size, first_root, second_root, proof)
        previous.append(size)
        # the bundle of entries holds each entry's leaf hash, equal to the level-0 tile's
        last = size // 256
        width = tile_width(0, last, size) or 256
        last -= 0 if tile_width(0, last, size) else 1
        hashes = read_tile(log, Tile(0, last, width))
        items = bundle_items(read_tile(log, Tile(None, last, width)))
        assert items == [hashes[i : i + 32] for i in range(0, len(hashes), 32)]
        # a tile the signed tree does not have yet is refused, naming it
        wider = size % 256 + 1
        with pytest.raises(NotFoundError, match="is not in the log"):
            read_tile(log, Tile(0, size // 256, wider if wider < 256 else 256))


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
def test_a_log_past_65536_entries_is_tiled_to_level_2(log, db) -> None:
    for size in (65_536, 65_537, 66_000):
        _grow(db, size - log.sync(), per_transaction=20_000)
        signed = log.checkpoint().checkpoint
        reader = _reader(log, size)
        assert reader.root() == signed.root
        for index in (0, 65_535, size - 1):
            assert reader.inclusion_proof(index) == log.inclusion(index, size)[2]
        for first in (1, 256, 65_535, 65_536):
            assert reader.consistency_proof(first) == log.consistency(first, size)[1]
        assert len(read_tile(log, Tile(2, 0, 1))) == 32
        # a client reads a handful of tiles, not the log
        assert reader.fetched < 12


def test_a_partial_tile_narrower_than_the_tree_holds_is_its_prefix(log, db) -> None:
    _grow(db, 300)
    log.checkpoint()
    full = read_tile(log, Tile(0, 0))
    assert read_tile(log, Tile(0, 0, 7)) == full[: 7 * 32]
    assert read_tile(log, Tile(0, 1, 44)) == b"".join(
        log.inclusion(i, 300)[1] for i in range(256, 300)
    )


def test_tiles_follow_only_the_signed_tree(log, db) -> None:
    _grow(db, 10)
    log.checkpoint()
    _grow(db, 5)  # integrated, not yet signed
    assert len(read_tile(log, Tile(0, 0, 10))) == 320
    with pytest.raises(NotFoundError):
        read_tile(log, Tile(0, 0, 11))
    log.checkpoint()
    assert len(read_tile(log, Tile(0, 0, 15))) == 480


def test_tiles_are_refused_once_the_stored_log_was_changed(log, db) -> None:
    _grow(db, 10)
    log.checkpoint()
    with db.write() as session:
        session.execute(
            update(Record).where(Record.seq == 3).values(leaf=hashlib.sha256(b"x").digest())
        )
    log.self_check()
    with pytest.raises(LogTamperedError):
        read_tile(log, Tile(0, 0, 10))


def test_a_tile_of_the_wrong_length_is_a_proof_error() -> None:
    reader = TileReader(3, lambda tile: b"\x00" * 64)
    with pytest.raises(ProofError, match=r"tile `tile/0/000.p/3` is 64 bytes long: expected 96"):
        reader.root()


def test_an_index_of_thousands_of_digits_is_refused_before_it_is_read() -> None:
    # Python refuses to read an integer of more than 4,300 digits (a ValueError, a 500 at the
    # door); no tile index has more than 17 digits, so a longer one is refused as out of range
    path = "tile/0/" + "x001/" * 1500 + "000"
    with pytest.raises(InputError, match="starts beyond any tree size") as exc:
        parse_tile_path(path)
    assert "\n" not in exc.value.message
    assert len(exc.value.message) < 500
