"""The log as C2SP tiles (c2sp.org/tlog-tiles): static, cacheable pieces of the Merkle tree.

Instead of answering each proof request, a tiled log publishes its tree as *tiles*: the tile
``N`` of level ``L`` holds the 256 consecutive hashes ``MTH(D[(N*256 + i) * 256**L :
(N*256 + i + 1) * 256**L])``, ``i`` from 0 to 255 — at level 0 the leaf hashes, at level 1 the
roots of full level-0 tiles, and so on (a tile is a subtree of height 8). A client that has a
checkpoint fetches the few tiles it needs and computes any root or proof itself
(:class:`TileReader`). The rightmost tile of each level is usually *partial*: a tree of size
``s`` has ``floor(s / 256**L) mod 256`` hashes in it, served under ``.p/<width>``.

Paths spell the index in groups of three digits, all but the last prefixed with ``x``: tile 1,234,067
of level 0 is ``tile/0/x001/x234/067``, its partial form of 5 hashes ``tile/0/x001/x234/067.p/5``.
Entry bundles (``tile/entries/<N>[.p/<W>]``) are sequences of entries, each prefixed with its
length as a big-endian uint16.

Meridian's entries name accounts and addresses and are read only by operators, so the public
entry bundle does not carry them: each item is the entry's 32-byte leaf hash,
``SHA-256(0x00 || entry)``, a commitment to it (``docs/audit.md``, "Tiles"). Anyone shown an
entry can hash it and find it in the bundle; nobody learns an entry from the bundle.

Tiles are served for the tree of the latest checkpoint only: what is signed, never what is not.
"""

from __future__ import annotations

import re
import struct
from collections.abc import Callable
from dataclasses import dataclass
from hashlib import sha256

from ..errors import InputError, NotFoundError, ProofError, shown
from .log import AuditLog
from .merkle import EMPTY_ROOT, HASH_SIZE, consistency_ranges, inclusion_ranges

__all__ = [
    "TILE_HEIGHT",
    "TILE_WIDTH",
    "Tile",
    "TileReader",
    "bundle_items",
    "entry_bundle",
    "parse_tile_path",
    "read_tile",
    "tile_width",
]

#: a tile is a subtree of this height: 2**8 = 256 hashes wide
TILE_HEIGHT = 8
TILE_WIDTH = 1 << TILE_HEIGHT
#: the highest level a tile path may name (c2sp.org/tlog-tiles)
_MAX_LEVEL = 63
#: a tree size fits 63 bits, so no tile index may start beyond it
_MAX_LEAVES = 2**63
#: an index below 2**55 (a tile of 256 leaves starting below 2**63) has at most six groups
_MAX_GROUPS = 6
_LEVEL = re.compile(r"0|[1-9][0-9]?")
_WIDTH = re.compile(r"[1-9][0-9]{0,2}")
_GROUP = re.compile(r"x[0-9]{3}")
_LAST = re.compile(r"[0-9]{3}")
_NODE = b"\x01"


@dataclass(frozen=True, slots=True)
class Tile:
    """One tile: ``level`` (``None`` for an entry bundle), ``index`` and ``width`` (256 if full)."""

    level: int | None
    index: int
    width: int = TILE_WIDTH

    @property
    def full(self) -> bool:
        return self.width == TILE_WIDTH

    @property
    def path(self) -> str:
        """``tile/<L>/<N>[.p/<W>]`` (or ``tile/entries/…``), as served under the log's prefix."""
        digits = f"{self.index:03d}"
        digits = "0" * (-len(digits) % 3) + digits
        groups = [digits[i : i + 3] for i in range(0, len(digits), 3)]
        encoded = "/".join([*("x" + g for g in groups[:-1]), groups[-1]])
        level = "entries" if self.level is None else str(self.level)
        suffix = "" if self.full else f".p/{self.width}"
        return f"tile/{level}/{encoded}{suffix}"


def parse_tile_path(path: str) -> Tile:
    """The tile a path after the log's prefix names (``tile/0/x001/234.p/5``).

    Only the one canonical spelling is accepted (no leading ``x000`` group, no leading zeros in
    a level or a width, a width below 256); anything else is an :class:`InputError` naming it.
    """
    where = f"tile path `{shown(path)}`"
    parts = path.split("/")
    if len(parts) < 3 or parts[0] != "tile":
        raise InputError(f"{where} is not `tile/<level>/<index>[.p/<width>]`")
    level_text, rest = parts[1], parts[2:]
    if level_text == "entries":
        level: int | None = None
    elif _LEVEL.fullmatch(level_text) and int(level_text) <= _MAX_LEVEL:
        level = int(level_text)
    else:
        raise InputError(f"{where}: level `{shown(level_text)}` is not `entries` or 0 to 63")
    width = TILE_WIDTH
    if rest[-1:] and len(rest) >= 2 and rest[-2].endswith(".p"):
        width_text = rest[-1]
        if not _WIDTH.fullmatch(width_text) or not 1 <= int(width_text) < TILE_WIDTH:
            raise InputError(f"{where}: partial width `{shown(width_text)}` is not 1 to 255")
        width = int(width_text)
        rest = [*rest[:-2], rest[-2][:-2]]
    if not _LAST.fullmatch(rest[-1]) or not all(_GROUP.fullmatch(g) for g in rest[:-1]):
        raise InputError(
            f"{where}: the index is not groups of three digits, all but the last after `x`"
        )
    if len(rest) > _MAX_GROUPS:  # before int(): Python refuses to read 4,300 digits or more
        raise InputError(f"{where}: the tile starts beyond any tree size")
    index = int("".join(g.removeprefix("x") for g in rest))
    tile = Tile(level, index, width)
    if tile.path != path:
        raise InputError(f"{where} is not in canonical form: expected `{tile.path}`")
    height = TILE_HEIGHT * (level or 0)
    if (index * TILE_WIDTH) << height >= _MAX_LEAVES:
        raise InputError(f"{where}: the tile starts beyond any tree size")
    return tile


def tile_width(level: int, index: int, size: int) -> int:
    """How many hashes tile ``index`` of ``level`` has in a tree of ``size`` (0 to 256)."""
    held = size >> (TILE_HEIGHT * level)
    return max(0, min(TILE_WIDTH, held - index * TILE_WIDTH))


def entry_bundle(items: list[bytes]) -> bytes:
    """An entry bundle: each item prefixed with its length as a big-endian uint16."""
    return b"".join(struct.pack(">H", len(item)) + item for item in items)


def bundle_items(data: bytes) -> list[bytes]:
    """The items of an entry bundle; :class:`ProofError` if it does not parse exactly."""
    items: list[bytes] = []
    position = 0
    while position < len(data):
        if position + 2 > len(data):
            raise ProofError("malformed entry bundle: a length prefix is cut off")
        (length,) = struct.unpack_from(">H", data, position)
        position += 2
        if position + length > len(data):
            raise ProofError(f"malformed entry bundle: item {len(items)} is cut off")
        items.append(data[position : position + length])
        position += length
    return items


class TileReader:
    """A client's view of a tiled log at one checkpoint ``size``: roots and proofs from tiles.

    ``fetch`` returns the bytes of a tile (``GET <prefix>/<tile.path>``); the reader asks only
    for tiles a tree of ``size`` has, at the width it has them, and keeps those it read. A tile
    of the wrong length is a :class:`ProofError`; the root computed must then be compared with
    the checkpoint's (:meth:`root`), which is what makes every hash read from tiles trusted.
    """

    def __init__(self, size: int, fetch: Callable[[Tile], bytes]) -> None:
        if size < 0:
            raise InputError(f"tree size `{size}` is negative")
        self.size = size
        self._fetch = fetch
        self._tiles: dict[tuple[int, int], bytes] = {}
        #: how many tiles were fetched (a client's cost)
        self.fetched = 0

    def _tile(self, level: int, index: int) -> bytes:
        key = (level, index)
        data = self._tiles.get(key)
        if data is None:
            width = tile_width(level, index, self.size)
            tile = Tile(level, index, width)
            data = self._fetch(tile)
            self.fetched += 1
            if len(data) != width * HASH_SIZE:
                raise ProofError(
                    f"tile `{tile.path}` is {len(data)} bytes long: expected {width * HASH_SIZE}"
                )
            self._tiles[key] = data
        return data

    def hash_at(self, height: int, index: int) -> bytes:
        """``MTH(D[index * 2**height : (index + 1) * 2**height])``, a complete subtree's hash."""
        if (index + 1) << height > self.size:
            raise InputError(
                f"no complete subtree {index} of height {height} in a tree of {self.size}"
            )
        level, rest = divmod(height, TILE_HEIGHT)
        first = index << rest
        tile_index, offset = divmod(first, TILE_WIDTH)
        data = self._tile(level, tile_index)
        row = [
            data[(offset + i) * HASH_SIZE : (offset + i + 1) * HASH_SIZE] for i in range(1 << rest)
        ]
        while len(row) > 1:
            row = [sha256(_NODE + row[i] + row[i + 1]).digest() for i in range(0, len(row), 2)]
        return row[0]

    def range_hash(self, start: int, stop: int) -> bytes:
        """``MTH(D[start:stop])`` for a range RFC 9162's recursion reaches (aligned)."""
        if start == stop:
            return EMPTY_ROOT
        blocks: list[bytes] = []
        while start < stop:
            height = (stop - start).bit_length() - 1
            if start:
                height = min(height, (start & -start).bit_length() - 1)
            blocks.append(self.hash_at(height, start >> height))
            start += 1 << height
        node = blocks[-1]
        for left in reversed(blocks[:-1]):
            node = sha256(_NODE + left + node).digest()
        return node

    def root(self) -> bytes:
        """The root of the tree of ``size``: compare it with the checkpoint's."""
        return self.range_hash(0, self.size)

    def leaf(self, index: int) -> bytes:
        """The leaf hash of entry ``index``."""
        return self.hash_at(0, index)

    def inclusion_proof(self, index: int) -> list[bytes]:
        """RFC 9162 ``PATH(index, D[0:size])``, computed from tiles."""
        if not 0 <= index < self.size:
            raise InputError(f"entry `{index}` is outside a log of {self.size} entries")
        return [self.range_hash(a, b) for a, b in inclusion_ranges(index, self.size)]

    def consistency_proof(self, first: int) -> list[bytes]:
        """RFC 9162 ``PROOF(first, D[0:size])``, computed from tiles."""
        if not 0 <= first <= self.size:
            raise InputError(f"first size `{first}` is outside a log of {self.size} entries")
        if first in (0, self.size):
            return []
        return [self.range_hash(a, b) for a, b in consistency_ranges(first, self.size)]

    def first_root(self, first: int) -> bytes:
        """The root of the first ``first`` leaves (any ``first`` up to ``size``)."""
        if not 0 <= first <= self.size:
            raise InputError(f"size `{first}` is outside a log of {self.size} entries")
        # The tree of ``first`` is a row of aligned complete subtrees, all stored in these tiles.
        return self.range_hash(0, first)


def read_tile(log: AuditLog, tile: Tile) -> bytes:
    """The bytes of ``tile`` in the tree of ``log``'s latest checkpoint.

    A tile that tree does not have (yet) is a :class:`NotFoundError` naming it; a partial tile
    narrower than what the tree now holds at that index is served (its hashes never change). An
    entry bundle holds each entry's leaf hash (see the module's docstring), never the entry.
    Refused like every proof while the log has failed its self-check.
    """
    height = TILE_HEIGHT * (tile.level or 0)
    start = tile.index * TILE_WIDTH
    size, hashes = log.signed_hashes(height, start, start + tile.width)
    if len(hashes) != tile.width * HASH_SIZE:
        raise NotFoundError(
            f"tile `{tile.path}` is not in the log: its latest checkpoint has {size} entries"
        )
    if tile.level is not None:
        return hashes
    return entry_bundle([hashes[i : i + HASH_SIZE] for i in range(0, len(hashes), HASH_SIZE)])
