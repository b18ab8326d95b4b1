"""The Merkle tree behind Meridian's tamper-evident log, as RFC 9162 (Certificate Transparency 2.0)
defines it.

Every entry of the log is hashed to a leaf, ``SHA-256(0x00 || entry)``; two subtrees join under
``SHA-256(0x01 || left || right)``, the prefixes keeping a leaf from passing for a node. The tree
over ``n`` leaves splits at the largest power of two below ``n``, so every tree is a row of
complete subtrees of decreasing size, and its root folds them from the right. A signed checkpoint
commits to one root; an inclusion proof shows an entry sits under it and a consistency proof
shows a later root extends an earlier one, each in O(log n) hashes.

Two ways to hold a tree:

* :class:`RootBuilder` keeps only the roots of the complete subtrees of what was pushed (one a
  set bit of the size), enough to replay an exported log and compare roots with its checkpoints.
* :class:`Tree` keeps every complete subtree, one ``bytearray`` per level, to serve roots and
  proofs for any earlier size: level ``k`` holds, in order, the hash of each complete subtree of
  ``2**k`` leaves. A subtree hash is then one slice, and a root or proof for a size that is not
  a power of two folds the O(log n) stored subtrees along the right edge on the way out.

:func:`verify_inclusion` and :func:`verify_consistency` follow RFC 9162 §2.1.3.2 and §2.1.4.2
step by step and raise :class:`~meridian.errors.ProofError` with one line saying what failed.
Bad arguments to :class:`Tree` (an index or size it does not hold) are the caller's mistake and
raise :class:`~meridian.errors.InputError` instead.

Sizes and indices are plain integers counted from zero, as in the RFC.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from hashlib import sha256

from ..errors import InputError, ProofError, shown

__all__ = [
    "EMPTY_ROOT",
    "RootBuilder",
    "Tree",
    "consistency_ranges",
    "inclusion_ranges",
    "leaf_hash",
    "node_hash",
    "verify_consistency",
    "verify_inclusion",
]

HASH_SIZE = 32
EMPTY_ROOT: bytes = sha256(b"").digest()
_LEAF = b"\x00"
_NODE = b"\x01"


def leaf_hash(entry: bytes) -> bytes:
    """The hash of one log entry as a leaf: ``SHA-256(0x00 || entry)``."""
    return sha256(_LEAF + entry).digest()


def node_hash(left: bytes, right: bytes) -> bytes:
    """The hash of the node over two subtrees: ``SHA-256(0x01 || left || right)``."""
    return sha256(_NODE + left + right).digest()


# -- streaming root ------------------------------------------------------------------------------


class RootBuilder:
    """Streaming root: push leaf hashes one by one; root() of what was pushed so far, O(log n) memory.

    INVARIANT: ``_stack`` holds the roots of the complete subtrees making up the leaves pushed so
    far, largest (leftmost) first: one for each set bit of ``size``, from the highest bit down.
    """

    __slots__ = ("_size", "_stack")

    def __init__(self) -> None:
        self._size = 0
        self._stack: list[bytes] = []

    @property
    def size(self) -> int:
        """How many leaves were pushed."""
        return self._size

    def push(self, leaf: bytes) -> None:
        """Add the next leaf hash (32 bytes)."""
        if len(leaf) != HASH_SIZE:
            raise InputError(f"leaf hash is `{len(leaf)}` bytes long: expected {HASH_SIZE}")
        if leaf.__class__ is not bytes:
            leaf = bytes(leaf)  # a bytearray could change under us later
        size = self._size
        self._size = size + 1
        # Kept lean for speed (a log replay pushes every entry): half the pushes, those onto an
        # even size, only append; the rest merge once per trailing one bit of the old size, each
        # bit a complete subtree the new leaf gives a twin (one merge per push on average).
        if not size & 1:
            self._stack.append(leaf)
            return
        stack = self._stack
        node = sha256(_NODE + stack.pop() + leaf).digest()
        size >>= 1
        while size & 1:
            node = sha256(_NODE + stack.pop() + node).digest()
            size >>= 1
        stack.append(node)

    def root(self) -> bytes:
        """The root of the tree of all leaves pushed so far (:data:`EMPTY_ROOT` if none)."""
        stack = self._stack
        if not stack:
            return EMPTY_ROOT
        node = stack[-1]
        for left in reversed(stack[:-1]):
            node = sha256(_NODE + left + node).digest()
        return node


# -- in-memory tree -------------------------------------------------------------------------------


class Tree:
    """In-memory tree over leaf hashes, kept as one bytearray per level (level k holds the hashes of
    the complete subtrees of 2**k leaves), so 10**6 leaves cost ~64 MB and any root or proof is
    O(log n).

    Not safe to append from one thread while another reads: callers serialise access.
    """

    __slots__ = ("_levels",)

    def __init__(self) -> None:
        # Chosen for speed and memory: one flat bytearray per level rather than a node object
        # (or a bytes object) per hash. A subtree hash is one slice at a computed offset, a bulk
        # extend hashes a level with a list comprehension over slices and joins the result in
        # one go, and 10**6 leaves cost 64 MB rather than several hundred.
        # INVARIANT: level k+1 holds exactly len(level k) // 64 hashes, the hash of each pair of
        # neighbours at level k; so len(level k) // 32 == size >> k.
        self._levels: list[bytearray] = [bytearray()]

    @property
    def size(self) -> int:
        """How many leaves the tree holds."""
        return len(self._levels[0]) >> 5

    def append(self, leaf: bytes) -> None:
        """Add one leaf hash (32 bytes), hashing every subtree it completes."""
        if len(leaf) != HASH_SIZE:
            raise InputError(f"leaf hash is `{len(leaf)}` bytes long: expected {HASH_SIZE}")
        levels = self._levels
        level = levels[0]
        level += leaf
        count = len(level) >> 5
        height = 0
        while not count & 1:
            pair = levels[height][-64:]
            height += 1
            if height == len(levels):
                levels.append(bytearray())
            levels[height] += sha256(_NODE + pair).digest()
            count >>= 1

    def extend(self, leaves: Iterable[bytes]) -> None:
        """Add many leaf hashes at once; much faster than :meth:`append` in a loop."""
        batch = leaves if isinstance(leaves, list | tuple) else list(leaves)
        if not batch:
            return
        if set(map(len, batch)) != {HASH_SIZE}:
            position, length = next((i, len(b)) for i, b in enumerate(batch) if len(b) != HASH_SIZE)
            raise InputError(
                f"leaf hash {position} of the batch is `{length}` bytes long: expected {HASH_SIZE}"
            )
        levels = self._levels
        levels[0] += b"".join(batch)
        height = 0
        while len(levels[height]) >= 64:
            lower = levels[height]
            if height + 1 == len(levels):
                levels.append(bytearray())
            upper = levels[height + 1]
            start, stop = len(upper) * 2, len(lower) & ~63
            if start == stop:
                break
            # One bytes copy of the new part, then a 64-byte slice per pair: the fastest way we
            # found in CPython (~0.4 µs a node, nearly all of it SHA-256 itself).
            with memoryview(lower) as view:
                fresh = bytes(view[start:stop])
            upper += b"".join(
                [sha256(_NODE + fresh[i : i + 64]).digest() for i in range(0, len(fresh), 64)]
            )
            height += 1

    def leaf(self, index: int) -> bytes:
        """The leaf hash at ``index`` (counted from zero)."""
        self._check_index(index, self.size)
        return bytes(self._levels[0][index << 5 : (index + 1) << 5])

    def leaves(self, start: int, stop: int) -> bytes:
        """The leaf hashes ``start`` to ``stop - 1`` (clipped to the tree), 32 bytes each, joined."""
        start, stop = max(0, start), min(stop, self.size)
        if start >= stop:
            return b""
        return bytes(self._levels[0][start << 5 : stop << 5])

    def hashes(self, height: int, start: int, stop: int) -> bytes:
        """The stored hashes ``start`` to ``stop - 1`` of level ``height`` (clipped), joined.

        Hash ``i`` of level ``h`` is ``MTH(D[i * 2**h : (i + 1) * 2**h])``: what a C2SP tile
        of level ``h / 8`` holds.
        """
        if not 0 <= height < len(self._levels):
            return b""
        level = self._levels[height]
        start, stop = max(0, start), min(stop, len(level) >> 5)
        if start >= stop:
            return b""
        return bytes(level[start << 5 : stop << 5])

    def root(self, size: int | None = None) -> bytes:
        """The root of the first ``size`` leaves (all of them by default)."""
        size = self._check_size(size, "tree size")
        return self._range_hash(0, size)

    def inclusion_proof(self, index: int, size: int | None = None) -> list[bytes]:
        """RFC 9162 §2.1.3.1 ``PATH(index, D[0:size])``: the audit path of one leaf, deepest first."""
        size = self._check_size(size, "tree size")
        self._check_index(index, size)
        return [self._range_hash(start, stop) for start, stop in inclusion_ranges(index, size)]

    def consistency_proof(self, first: int, second: int | None = None) -> list[bytes]:
        """RFC 9162 §2.1.4.1 ``PROOF(first, D[0:second])``: that ``second`` extends ``first``.

        Empty when ``first`` is 0 or equals ``second``.
        """
        second = self._check_size(second, "second size")
        first = self._check_size(first, "first size")
        if first > second:
            raise InputError(f"first size `{first}` is larger than the second size {second}")
        if first == 0 or first == second:
            return []
        return [self._range_hash(start, stop) for start, stop in consistency_ranges(first, second)]

    # -- internals ---------------------------------------------------------------------------

    def _check_size(self, size: int | None, what: str) -> int:
        held = self.size
        if size is None:
            return held
        if isinstance(size, bool) or not isinstance(size, int):
            raise InputError(f"{what} `{shown(size)}` is not a whole number")
        if size < 0:
            raise InputError(f"{what} `{size}` is negative")
        if size > held:
            raise InputError(f"{what} `{size}` is larger than the tree's {held} entries")
        return size

    def _check_index(self, index: int, size: int) -> None:
        if isinstance(index, bool) or not isinstance(index, int):
            raise InputError(f"leaf index `{shown(index)}` is not a whole number")
        if not 0 <= index < size:
            raise InputError(f"leaf index `{index}` is outside a tree of {size} entries")

    def _range_hash(self, start: int, stop: int) -> bytes:
        """``MTH(D[start:stop])`` from the stored complete subtrees.

        INVARIANT: ``start`` is a multiple of a power of two at least ``stop - start`` (true of
        every range the RFC recursion reaches), so the greedy aligned blocks below are exactly
        the complete subtrees of ``D[start:stop]``, largest first, and folding them from the
        right is its root.
        """
        if start == stop:
            return EMPTY_ROOT
        levels = self._levels
        blocks: list[bytes] = []
        while start < stop:
            height = (stop - start).bit_length() - 1
            if start:
                height = min(height, (start & -start).bit_length() - 1)
            offset = (start >> height) << 5
            blocks.append(bytes(levels[height][offset : offset + HASH_SIZE]))
            start += 1 << height
        node = blocks[-1]
        for left in reversed(blocks[:-1]):
            node = sha256(_NODE + left + node).digest()
        return node


def inclusion_ranges(index: int, size: int) -> list[tuple[int, int]]:
    """The leaf ranges whose subtree hashes make ``PATH(index, D[0:size])``, deepest first.

    Every range starts at a multiple of a power of two at least its length (RFC 9162's
    recursion only reaches such ranges), so each is a row of stored complete subtrees.
    """
    # Walk down from the root to the leaf, noting the sibling at each step.
    siblings: list[tuple[int, int]] = []
    low, high = 0, size
    while high - low > 1:
        split = low + _largest_power_below(high - low)
        if index < split:
            siblings.append((split, high))
            high = split
        else:
            siblings.append((low, split))
            low = split
    return siblings[::-1]


def consistency_ranges(first: int, second: int) -> list[tuple[int, int]]:
    """The leaf ranges whose subtree hashes make ``PROOF(first, D[0:second])`` (``0 < first <
    second``), in proof order; aligned as in :func:`inclusion_ranges`."""
    # SUBPROOF(m, D[low:high], whole) walked down iteratively; ``whole`` stays true while the
    # subtree reached is still the left edge, whose root the verifier already has.
    siblings: list[tuple[int, int]] = []
    low, high, whole = 0, second, True
    while first - low != high - low:
        split = low + _largest_power_below(high - low)
        if first <= split:
            siblings.append((split, high))
            high = split
        else:
            siblings.append((low, split))
            low = split
            whole = False
    return siblings[::-1] if whole else [(low, high), *siblings[::-1]]


def _largest_power_below(n: int) -> int:
    """The largest power of two strictly smaller than ``n`` (``n >= 2``): where RFC 9162 splits."""
    return 1 << ((n - 1).bit_length() - 1)


# -- verification ---------------------------------------------------------------------------------


def verify_inclusion(
    leaf: bytes, index: int, size: int, proof: Sequence[bytes], root: bytes
) -> None:
    """Check that ``proof`` places ``leaf`` at ``index`` in the tree of ``size`` with ``root``.

    RFC 9162 §2.1.3.2; raises :class:`~meridian.errors.ProofError` saying what failed.
    """
    what = f"inclusion proof for leaf {shown(index)} in a tree of {shown(size)}"
    _check_count(index, "leaf index", what)
    _check_count(size, "tree size", what)
    if size == 0:
        raise ProofError(f"{what}: an empty tree includes no leaf")
    if index >= size:
        raise ProofError(f"{what}: leaf index `{index}` is outside the tree")
    _check_hash(leaf, "the leaf hash", what)
    _check_hash(root, "the root", what)
    _check_path(proof, _inclusion_length(index, size), what)

    # The steps of §2.1.3.2, numbered as there.
    fn, sn = index, size - 1  # 2
    r = bytes(leaf)  # 3
    for p in proof:  # 4
        if sn == 0:  # 4a (unreachable after the length check above; kept as the RFC has it)
            raise ProofError(f"{what}: the proof has more hashes than the tree has levels")
        if fn & 1 or fn == sn:  # 4b
            r = sha256(_NODE + p + r).digest()
            if not fn & 1:
                while fn and not fn & 1:
                    fn >>= 1
                    sn >>= 1
        else:
            r = sha256(_NODE + r + p).digest()
        fn >>= 1  # 4c
        sn >>= 1
    if sn != 0:  # 5
        raise ProofError(f"{what}: the proof has fewer hashes than the tree has levels")
    if r != root:
        raise ProofError(
            f"{what} does not lead to the root: expected `{_short(root)}`, computed `{_short(r)}`"
        )


def verify_consistency(
    first: int, second: int, first_root: bytes, second_root: bytes, proof: Sequence[bytes]
) -> None:
    """Check that ``proof`` shows the tree of ``second`` with ``second_root`` extends the tree of
    ``first`` with ``first_root``.

    RFC 9162 §2.1.4.2. Two cases have an empty proof and no hashing: ``first == second`` (the
    roots must be equal) and ``first == 0`` (``first_root`` must be :data:`EMPTY_ROOT`, the one
    root an empty tree has). Raises :class:`~meridian.errors.ProofError` saying what failed.
    """
    what = f"consistency proof from a tree of {shown(first)} to a tree of {shown(second)}"
    _check_count(first, "first size", what)
    _check_count(second, "second size", what)
    if first > second:
        raise ProofError(f"{what}: the first size `{first}` is larger than the second `{second}`")
    _check_hash(first_root, "the first root", what)
    _check_hash(second_root, "the second root", what)
    if first == 0 or first == second:
        if len(proof):
            raise ProofError(f"{what} has {len(proof)} hashes: expected none")
        if first == 0 and first_root != EMPTY_ROOT:
            raise ProofError(
                f"{what}: the first root `{_short(first_root)}` is not the empty tree's `{_short(EMPTY_ROOT)}`"
            )
        if first == second and first_root != second_root:
            raise ProofError(
                f"{what}: the trees are the same size but their roots differ: `{_short(first_root)}` and `{_short(second_root)}`"
            )
        return
    _check_path(proof, _consistency_length(first, second), what)

    # The steps of §2.1.4.2, numbered as there.
    path = [bytes(p) for p in proof]
    if not path:  # 1 (unreachable after the length check above)
        raise ProofError(f"{what} is empty")
    if first & (first - 1) == 0:  # 2
        path.insert(0, bytes(first_root))
    fn, sn = first - 1, second - 1  # 3
    while fn & 1:  # 4
        fn >>= 1
        sn >>= 1
    fr = sr = path[0]  # 5
    for c in path[1:]:  # 6
        if sn == 0:  # 6a (unreachable after the length check above)
            raise ProofError(f"{what}: the proof has more hashes than the trees have levels")
        if fn & 1 or fn == sn:  # 6b
            fr = sha256(_NODE + c + fr).digest()
            sr = sha256(_NODE + c + sr).digest()
            if not fn & 1:
                while fn and not fn & 1:
                    fn >>= 1
                    sn >>= 1
        else:
            sr = sha256(_NODE + sr + c).digest()
        fn >>= 1  # 6c
        sn >>= 1
    if sn != 0:  # 7
        raise ProofError(f"{what}: the proof has fewer hashes than the trees have levels")
    if fr != first_root:
        raise ProofError(
            f"{what} does not lead to the first root: expected `{_short(first_root)}`, computed `{_short(fr)}`"
        )
    if sr != second_root:
        raise ProofError(
            f"{what} does not lead to the second root: expected `{_short(second_root)}`, computed `{_short(sr)}`"
        )


def _inclusion_length(index: int, size: int) -> int:
    """How many hashes ``PATH(index, D[0:size])`` has: one per level below the root on the way down."""
    # Below the level where index and the last leaf part, the path runs inside complete subtrees
    # (one hash a level); above it, one hash for each left subtree the index passes to the right of.
    inner = (index ^ (size - 1)).bit_length()
    return inner + (index >> inner).bit_count()


def _consistency_length(first: int, second: int) -> int:
    """How many hashes ``PROOF(first, D[0:second])`` has (``0 < first < second``)."""
    # The inclusion path of the first tree's last leaf, less the levels inside the complete
    # subtree that leaf closes, plus that subtree itself unless it is the whole first tree.
    closed = ((first - 1) ^ first).bit_length() - 1
    length = _inclusion_length(first - 1, second) - closed
    return length if first & (first - 1) == 0 else length + 1


def _check_count(value: int, name: str, what: str) -> None:
    if isinstance(value, bool) or not isinstance(value, int):
        raise ProofError(f"{what}: {name} `{shown(value)}` is not a whole number")
    if value < 0:
        raise ProofError(f"{what}: {name} `{value}` is negative")


def _check_hash(value: bytes, name: str, what: str) -> None:
    if not isinstance(value, bytes | bytearray):
        raise ProofError(f"{what}: {name} is not bytes but `{type(value).__name__}`")
    if len(value) != HASH_SIZE:
        raise ProofError(f"{what}: {name} is `{len(value)}` bytes long: expected {HASH_SIZE}")


def _check_path(proof: Sequence[bytes], expected: int, what: str) -> None:
    if isinstance(proof, bytes | bytearray | str):
        raise ProofError(f"{what}: the proof is one `{type(proof).__name__}`, not a list of hashes")
    if len(proof) != expected:
        raise ProofError(f"{what} has {len(proof)} hashes: expected {expected}")
    for position, value in enumerate(proof):
        _check_hash(value, f"proof hash {position}", what)


def _short(digest: bytes) -> str:
    return digest[:8].hex() + "…"
