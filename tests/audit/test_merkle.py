"""The RFC 9162 Merkle tree: known answers, every proof at small sizes, random proofs in a tree of
a million leaves, tampered proofs, bad arguments, and agreement with pymerkle.

Leaves are deterministic throughout: leaf ``i`` is ``leaf_hash(i.to_bytes(8, "big"))``, so all
hashes in a proof are distinct and a swapped or repeated hash is always a different proof.
"""

from __future__ import annotations

import functools
import random
from collections.abc import Callable, Iterator, Sequence
from hashlib import sha256
from typing import Any

import pytest
from pymerkle import (  # type: ignore[import-untyped]
    ConsistencyProof,
    InclusionProof,
    InmemoryTree,
    InvalidProof,
)
from pymerkle import verify_consistency as pm_verify_consistency
from pymerkle import verify_inclusion as pm_verify_inclusion
from pymerkle.core import (  # type: ignore[import-untyped]
    _consistency_path_layout,
    _inclusion_path_layout,
)

from meridian.audit import merkle
from meridian.audit.merkle import (
    EMPTY_ROOT,
    RootBuilder,
    Tree,
    leaf_hash,
    node_hash,
    verify_consistency,
    verify_inclusion,
)
from meridian.errors import InputError, ProofError

MILLION = 10**6
SMALL = 256


def _leaf(i: int) -> bytes:
    return leaf_hash(i.to_bytes(8, "big"))


SMALL_LEAVES = [_leaf(i) for i in range(SMALL)]


@pytest.fixture(scope="module")
def small() -> Tree:
    tree = Tree()
    tree.extend(SMALL_LEAVES)
    return tree


@pytest.fixture(scope="module")
def million() -> Tree:
    tree = Tree()
    tree.extend(_leaf(i) for i in range(MILLION))
    return tree


# -- an independent model: RFC 9162 §2.1 read literally --------------------------------------------


def _split(n: int) -> int:
    """The largest power of two smaller than n, found the slow way."""
    k = 1
    while k * 2 < n:
        k *= 2
    return k


@functools.cache
def _mth(lo: int, hi: int) -> bytes:
    """MTH(D[lo:hi]) over SMALL_LEAVES, by the RFC's recursion."""
    if hi - lo == 0:
        return sha256(b"").digest()
    if hi - lo == 1:
        return SMALL_LEAVES[lo]
    k = _split(hi - lo)
    return sha256(b"\x01" + _mth(lo, lo + k) + _mth(lo + k, hi)).digest()


def _rfc_path(m: int, lo: int, hi: int) -> list[tuple[int, int]]:
    """The leaf ranges of PATH(m, D[lo:hi]), in proof order."""
    if hi - lo == 1:
        return []
    k = _split(hi - lo)
    if m < k:
        return [*_rfc_path(m, lo, lo + k), (lo + k, hi)]
    return [*_rfc_path(m - k, lo + k, hi), (lo, lo + k)]


def _rfc_subproof(m: int, lo: int, hi: int, whole: bool) -> list[tuple[int, int]]:
    """The leaf ranges of SUBPROOF(m, D[lo:hi], b), in proof order."""
    if m == hi - lo:
        return [] if whole else [(lo, hi)]
    k = _split(hi - lo)
    if m <= k:
        return [*_rfc_subproof(m, lo, lo + k, whole), (lo + k, hi)]
    return [*_rfc_subproof(m - k, lo + k, hi, False), (lo, lo + k)]


def _rfc_proof(first: int, second: int) -> list[tuple[int, int]]:
    return _rfc_subproof(first, 0, second, True) if first > 0 else []


# -- known answers: the RFC 6962 vectors Certificate Transparency implementations share ----------

CT_ENTRIES = [
    b"",
    b"\x00",
    b"\x10",
    b"\x20\x21",
    b"\x30\x31",
    b"\x40\x41\x42\x43",
    b"\x50\x51\x52\x53\x54\x55\x56\x57",
    b"\x60\x61\x62\x63\x64\x65\x66\x67\x68\x69\x6a\x6b\x6c\x6d\x6e\x6f",
]
CT_ROOTS = {
    0: "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
    1: "6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d",
    2: "fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125",
    3: "aeb6bcfe274b70a14fb067a5e5578264db0fa9b51af5e0ba159158f329e06e77",
    4: "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
    5: "4e3bbb1f7b478dcfe71fb631631519a3bca12c9aefca1612bfce4c13a86264d4",
    6: "76e67dadbcdf1e10e1b74ddc608abd2f98dfb16fbce75277b5232a127f2087ef",
    7: "ddb89be403809e325750d3d263cd78929c2942b7942a34b77e122c9594a74c8c",
    8: "5dc9da79a70659a9ad559cb701ded9a2ab9d823aad2f4960cfe370eff4604328",
}
# (index counted from zero, tree size, proof)
CT_INCLUSION = [
    (0, 1, []),
    (
        0,
        8,
        [
            "96a296d224f285c67bee93c30f8a309157f0daa35dc5b87e410b78630a09cfc7",
            "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
            "6b47aaf29ee3c2af9af889bc1fb9254dabd31177f16232dd6aab035ca39bf6e4",
        ],
    ),
    (
        5,
        8,
        [
            "bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b",
            "ca854ea128ed050b41b35ffc1b87b8eb2bde461e9e3b5596ece6b9d5975a0ae0",
            "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
        ],
    ),
    (2, 3, ["fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125"]),
    (
        1,
        5,
        [
            "6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d",
            "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
            "bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b",
        ],
    ),
]
# (first size, second size, proof)
CT_CONSISTENCY = [
    (1, 1, []),
    (
        1,
        8,
        [
            "96a296d224f285c67bee93c30f8a309157f0daa35dc5b87e410b78630a09cfc7",
            "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
            "6b47aaf29ee3c2af9af889bc1fb9254dabd31177f16232dd6aab035ca39bf6e4",
        ],
    ),
    (
        6,
        8,
        [
            "0ebc5d3437fbe2db158b9f126a1d118e308181031d0a949f8dededebc558ef6a",
            "ca854ea128ed050b41b35ffc1b87b8eb2bde461e9e3b5596ece6b9d5975a0ae0",
            "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
        ],
    ),
    (
        2,
        5,
        [
            "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
            "bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b",
        ],
    ),
]


@pytest.fixture(scope="module")
def ct_tree() -> Tree:
    tree = Tree()
    for entry in CT_ENTRIES:
        tree.append(leaf_hash(entry))
    return tree


def test_module_exports_exactly_the_intended_names() -> None:
    assert sorted(merkle.__all__) == [
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


def test_hashes_carry_the_rfc_9162_prefixes() -> None:
    assert EMPTY_ROOT.hex() == CT_ROOTS[0]
    assert leaf_hash(b"abc") == sha256(b"\x00abc").digest()
    left, right = _leaf(1), _leaf(2)
    assert node_hash(left, right) == sha256(b"\x01" + left + right).digest()
    assert node_hash(left, right) != node_hash(right, left)


@pytest.mark.parametrize("size", sorted(CT_ROOTS), ids=lambda size: f"size-{size}")
def test_known_roots(ct_tree: Tree, size: int) -> None:
    builder = RootBuilder()
    for entry in CT_ENTRIES[:size]:
        builder.push(leaf_hash(entry))
    assert ct_tree.root(size).hex() == CT_ROOTS[size]
    assert builder.root().hex() == CT_ROOTS[size]
    assert builder.size == size


@pytest.mark.parametrize(
    ("index", "size", "expected"), CT_INCLUSION, ids=[f"{i}-in-{n}" for i, n, _ in CT_INCLUSION]
)
def test_known_inclusion_proofs(ct_tree: Tree, index: int, size: int, expected: list[str]) -> None:
    proof = ct_tree.inclusion_proof(index, size)
    assert [h.hex() for h in proof] == expected
    root = bytes.fromhex(CT_ROOTS[size])
    verify_inclusion(leaf_hash(CT_ENTRIES[index]), index, size, proof, root)


@pytest.mark.parametrize(
    ("first", "second", "expected"),
    CT_CONSISTENCY,
    ids=[f"{m}-to-{n}" for m, n, _ in CT_CONSISTENCY],
)
def test_known_consistency_proofs(
    ct_tree: Tree, first: int, second: int, expected: list[str]
) -> None:
    proof = ct_tree.consistency_proof(first, second)
    assert [h.hex() for h in proof] == expected
    roots = bytes.fromhex(CT_ROOTS[first]), bytes.fromhex(CT_ROOTS[second])
    verify_consistency(first, second, *roots, proof)


# -- every proof at every size up to 256 ----------------------------------------------------------


def test_every_root_up_to_256_matches_the_rfc_recursion_and_the_root_builder(small: Tree) -> None:
    builder = RootBuilder()
    assert small.root(0) == builder.root() == EMPTY_ROOT
    for size in range(1, SMALL + 1):
        builder.push(SMALL_LEAVES[size - 1])
        assert small.root(size) == builder.root() == _mth(0, size), size
        assert builder.size == size
    assert small.root() == small.root(SMALL)
    assert small.size == SMALL
    assert [small.leaf(i) for i in range(SMALL)] == SMALL_LEAVES


def test_every_inclusion_proof_up_to_256_is_the_rfc_path_and_verifies(small: Tree) -> None:
    for size in range(1, SMALL + 1):
        root = small.root(size)
        for index in range(size):
            proof = small.inclusion_proof(index, size)
            assert proof == [_mth(lo, hi) for lo, hi in _rfc_path(index, 0, size)], (index, size)
            verify_inclusion(SMALL_LEAVES[index], index, size, proof, root)


def test_every_consistency_proof_up_to_256_is_the_rfc_proof_and_verifies(small: Tree) -> None:
    roots = [small.root(size) for size in range(SMALL + 1)]
    for second in range(SMALL + 1):
        for first in range(second + 1):
            proof = small.consistency_proof(first, second)
            assert proof == [_mth(lo, hi) for lo, hi in _rfc_proof(first, second)], (first, second)
            verify_consistency(first, second, roots[first], roots[second], proof)
    assert small.consistency_proof(100) == small.consistency_proof(100, SMALL)


def test_append_extend_and_generators_build_the_same_tree(small: Tree) -> None:
    rng = random.Random(7)
    tree = Tree()
    position = 0
    while position < SMALL:
        step = rng.choice([0, 1, 1, 2, 3, 7, 16, 33])
        chunk = SMALL_LEAVES[position : position + step]
        if step == 1:
            tree.append(chunk[0])
        elif step % 2:
            tree.extend(iter(chunk))
        else:
            tree.extend(tuple(chunk))
        position += len(chunk)
        assert tree.root() == small.root(position)
    for size in (1, 5, 100, 255, 256):
        assert tree.inclusion_proof(size - 1, size) == small.inclusion_proof(size - 1, size)
        assert tree.consistency_proof(1, size) == small.consistency_proof(1, size)


def test_root_builder_root_does_not_disturb_later_pushes() -> None:
    watched, quiet = RootBuilder(), RootBuilder()
    for leaf in SMALL_LEAVES[:77]:
        watched.root()
        watched.push(leaf)
        watched.root()
        quiet.push(leaf)
    assert watched.root() == quiet.root() == _mth(0, 77)
    mutable = bytearray(SMALL_LEAVES[77])
    watched.push(mutable)  # type: ignore[arg-type]  # outside the signature, and copied
    mutable[0] ^= 1
    assert watched.root() == _mth(0, 78)


def test_an_empty_tree() -> None:
    tree = Tree()
    tree.extend([])
    assert tree.size == 0
    assert tree.root() == EMPTY_ROOT
    assert tree.consistency_proof(0) == []
    verify_consistency(0, 0, EMPTY_ROOT, EMPTY_ROOT, [])


# -- a million leaves --------------------------------------------------------------------------


def test_random_inclusion_proofs_in_a_million_leaves(million: Tree) -> None:
    rng = random.Random(9162)
    pairs = [(0, MILLION), (MILLION - 1, MILLION), (524_287, 524_288), (524_288, 524_289)]
    for _ in range(300):
        size = rng.randint(1, MILLION)
        pairs.append((rng.randrange(size), size))
    for index, size in pairs:
        proof = million.inclusion_proof(index, size)
        verify_inclusion(_leaf(index), index, size, proof, million.root(size))


def test_random_consistency_proofs_in_a_million_leaves(million: Tree) -> None:
    rng = random.Random(6962)
    pairs = [(1, MILLION), (MILLION - 1, MILLION), (524_288, MILLION), (MILLION, MILLION)]
    for _ in range(300):
        second = rng.randint(1, MILLION)
        pairs.append((rng.randint(1, second), second))
    for first, second in pairs:
        proof = million.consistency_proof(first, second)
        verify_consistency(first, second, million.root(first), million.root(second), proof)


def test_roots_in_a_million_leaves_match_the_root_builder(million: Tree) -> None:
    checkpoints = {1, 2, 3, 1000, 65_536, 65_537, 524_287, 777_777, MILLION}
    builder = RootBuilder()
    push = builder.push
    for i in range(MILLION):
        push(_leaf(i))
        if i + 1 in checkpoints:
            assert builder.root() == million.root(i + 1), i + 1
    assert builder.size == million.size == MILLION
    assert million.leaf(MILLION - 1) == _leaf(MILLION - 1)


# -- tampering ---------------------------------------------------------------------------------

OTHER = sha256(b"some other hash").digest()


def _flip(digest: bytes, position: int, bit: int) -> bytes:
    changed = bytearray(digest)
    changed[position] ^= 1 << bit
    return bytes(changed)


def _hash_tampers(proof: Sequence[bytes], rng: random.Random | None) -> Iterator[list[bytes]]:
    """Changed copies of ``proof``: each byte flipped (every byte, or one random bit a hash with
    ``rng``), each hash dropped, a hash added at each end and in the middle, neighbours swapped."""
    proof = list(proof)
    for j, digest in enumerate(proof):
        if rng is None:
            for position in range(len(digest)):
                yield [*proof[:j], _flip(digest, position, position % 8), *proof[j + 1 :]]
        else:
            yield [*proof[:j], _flip(digest, rng.randrange(32), rng.randrange(8)), *proof[j + 1 :]]
        yield [*proof[:j], *proof[j + 1 :]]
        if j + 1 < len(proof):
            yield [*proof[:j], proof[j + 1], digest, *proof[j + 2 :]]
    yield [*proof, OTHER]
    yield [OTHER, *proof]
    yield [*proof[: len(proof) // 2], OTHER, *proof[len(proof) // 2 :]]
    if proof:
        yield [*proof, proof[-1]]
        yield [proof[0], *proof]


def _inclusion_tampers(
    tree: Tree, index: int, size: int, rng: random.Random | None
) -> Iterator[tuple[str, tuple[Any, ...]]]:
    """Arguments to verify_inclusion that must fail, each with what was changed."""
    leaf, proof, root = tree.leaf(index), tree.inclusion_proof(index, size), tree.root(size)
    for tampered in _hash_tampers(proof, rng):
        yield "proof", (leaf, index, size, tampered, root)
    for other in {index - 1, index + 1, index ^ 1, index ^ 2, size, -1} - {index}:
        yield f"index {other}", (leaf, other, size, proof, root)
    # A size alone can pass: the proofs for (index, n) and (index, n + 1) may coincide (index 0
    # in 3 and in 4, say), and the root is what pins the size. So a nearby size comes with its
    # own root; only sizes that change the proof's length come with the genuine root.
    for other in {size * 2, size // 2} - {size}:
        yield f"size {other}", (leaf, index, other, proof, root)
    for other in {size - 1, size + 1} & set(range(1, tree.size + 1)):
        yield f"size and root of {other}", (leaf, index, other, proof, tree.root(other))
    yield "leaf", (tree.leaf((index + 1) % tree.size), index, size, proof, root)
    yield "root", (leaf, index, size, proof, OTHER)
    yield "empty root", (leaf, index, size, proof, EMPTY_ROOT)
    yield "short root", (leaf, index, size, proof, root[:31])
    yield "long leaf", (leaf + b"\x00", index, size, proof, root)


def _consistency_tampers(
    tree: Tree, first: int, second: int, rng: random.Random | None
) -> Iterator[tuple[str, tuple[Any, ...]]]:
    """Arguments to verify_consistency that must fail (``0 < first < second``)."""
    proof = tree.consistency_proof(first, second)
    first_root, second_root = tree.root(first), tree.root(second)
    for tampered in _hash_tampers(proof, rng):
        yield "proof", (first, second, first_root, second_root, tampered)
    yield "empty proof", (first, second, first_root, second_root, [])
    for other in {first - 1, first + 1, first ^ 2} - {first}:
        yield f"first {other}", (other, second, first_root, second_root, proof)
    for other in {second * 2, second // 2} - {second}:
        yield f"second {other}", (first, other, first_root, second_root, proof)
    for other in {second - 1, second + 1} & set(range(1, tree.size + 1)):
        yield (
            f"second size and root of {other}",
            (first, other, first_root, tree.root(other), proof),
        )
    yield "first root", (first, second, OTHER, second_root, proof)
    yield "second root", (first, second, first_root, OTHER, proof)
    yield "swapped roots", (first, second, second_root, first_root, proof)
    yield "other first root", (first, second, tree.root(first - 1), second_root, proof)


def _assert_refused(check: Callable[..., None], what: str, args: tuple[Any, ...]) -> None:
    with pytest.raises(ProofError) as caught:
        check(*args)
    message = str(caught.value)
    assert "\n" not in message, (what, message)
    assert message[0].islower(), (what, message)


def test_tampered_inclusion_proofs_are_rejected(small: Tree) -> None:
    rng = random.Random(1)
    for size in range(1, SMALL + 1):
        indices = range(size) if size <= 24 else sorted(rng.sample(range(size), 6))
        for index in indices:
            every_byte = size <= 24 or size in (127, 128, 129, 256)
            for what, args in _inclusion_tampers(small, index, size, None if every_byte else rng):
                _assert_refused(verify_inclusion, f"{what} ({index} in {size})", args)


def test_tampered_consistency_proofs_are_rejected(small: Tree) -> None:
    rng = random.Random(2)
    for second in range(2, SMALL + 1):
        firsts = range(1, second) if second <= 24 else sorted(rng.sample(range(1, second), 6))
        for first in firsts:
            every_byte = second <= 24 or second in (127, 128, 129, 256)
            for what, args in _consistency_tampers(
                small, first, second, None if every_byte else rng
            ):
                _assert_refused(verify_consistency, f"{what} ({first} to {second})", args)


def test_tampered_proofs_in_a_million_leaves_are_rejected(million: Tree) -> None:
    rng = random.Random(3)
    for index, size in [(0, MILLION), (MILLION - 1, MILLION), (123_456, 654_321)]:
        for what, args in _inclusion_tampers(million, index, size, rng):
            _assert_refused(verify_inclusion, what, args)
    for first, second in [(1, MILLION), (MILLION - 1, MILLION), (123_456, 654_321)]:
        for what, args in _consistency_tampers(million, first, second, rng):
            _assert_refused(verify_consistency, what, args)


# -- what the verifiers say --------------------------------------------------------------------


def test_a_proof_that_misses_the_root_names_both_hashes(small: Tree) -> None:
    proof = small.inclusion_proof(5, 9)
    with pytest.raises(ProofError) as caught:
        verify_inclusion(small.leaf(5), 5, 9, proof, OTHER)
    assert str(caught.value) == (
        "inclusion proof for leaf 5 in a tree of 9 does not lead to the root: "
        f"expected `{OTHER[:8].hex()}…`, computed `{small.root(9)[:8].hex()}…`"
    )


@pytest.mark.parametrize(
    ("index", "size", "proof", "leaf", "root", "message"),
    [
        (0, 0, [], SMALL_LEAVES[0], EMPTY_ROOT, "an empty tree includes no leaf"),
        (3, 3, [OTHER], SMALL_LEAVES[0], OTHER, "leaf index `3` is outside the tree"),
        (-1, 3, [OTHER], SMALL_LEAVES[0], OTHER, "leaf index `-1` is negative"),
        (0, -3, [], SMALL_LEAVES[0], OTHER, "tree size `-3` is negative"),
        (0, 4, [OTHER], SMALL_LEAVES[0], OTHER, "has 1 hashes: expected 2"),
        (0, 2, [OTHER[:31]], SMALL_LEAVES[0], OTHER, "proof hash 0 is `31` bytes long"),
        (0, 2, [OTHER], b"", OTHER, "the leaf hash is `0` bytes long: expected 32"),
        (0, 2, [OTHER], SMALL_LEAVES[0], OTHER * 2, "the root is `64` bytes long"),
        (0, 2, OTHER, SMALL_LEAVES[0], OTHER, "the proof is one `bytes`, not a list of hashes"),
        (0, 2, ["ab" * 16], SMALL_LEAVES[0], OTHER, "proof hash 0 is not bytes but `str`"),
        ("0", 2, [OTHER], SMALL_LEAVES[0], OTHER, "leaf index `0` is not a whole number"),
    ],
)
def test_malformed_inclusion_claims_are_refused(
    index: Any, size: Any, proof: Any, leaf: bytes, root: bytes, message: str
) -> None:
    with pytest.raises(ProofError, match=message.replace("(", r"\(")) as caught:
        verify_inclusion(leaf, index, size, proof, root)
    assert str(caught.value).startswith("inclusion proof for leaf ")


@pytest.mark.parametrize(
    ("first", "second", "first_root", "second_root", "proof", "message"),
    [
        (3, 2, OTHER, OTHER, [], "the first size `3` is larger than the second `2`"),
        (2, 2, OTHER, OTHER, [OTHER], "has 1 hashes: expected none"),
        (2, 2, OTHER, EMPTY_ROOT, [], "the trees are the same size but their roots differ"),
        (0, 5, EMPTY_ROOT, OTHER, [OTHER], "has 1 hashes: expected none"),
        (0, 5, OTHER, OTHER, [], "is not the empty tree's `e3b0c44298fc1c14…`"),
        (0, 0, OTHER, OTHER, [], "is not the empty tree's"),
        (-1, 5, OTHER, OTHER, [], "first size `-1` is negative"),
        (1, 5, OTHER, OTHER[:4], [OTHER] * 3, "the second root is `4` bytes long"),
        (1, 5, OTHER, OTHER, [OTHER] * 2, "has 2 hashes: expected 3"),
        (3, 8, OTHER, OTHER, [], "has 0 hashes: expected 4"),
    ],
)
def test_malformed_consistency_claims_are_refused(
    first: int, second: int, first_root: bytes, second_root: bytes, proof: Any, message: str
) -> None:
    with pytest.raises(ProofError, match=message) as caught:
        verify_consistency(first, second, first_root, second_root, proof)
    assert str(caught.value).startswith("consistency proof from a tree of ")


def test_trivial_consistency_needs_no_hashes() -> None:
    verify_consistency(0, 7, EMPTY_ROOT, OTHER, [])
    verify_consistency(7, 7, OTHER, OTHER, [])
    verify_consistency(0, 0, EMPTY_ROOT, EMPTY_ROOT, [])


# -- what the tree refuses ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (lambda t: t.leaf(12), "leaf index `12` is outside a tree of 10 entries"),
        (lambda t: t.leaf(-1), "leaf index `-1` is outside a tree of 10 entries"),
        (lambda t: t.root(11), "tree size `11` is larger than the tree's 10 entries"),
        (lambda t: t.root(-2), "tree size `-2` is negative"),
        (lambda t: t.inclusion_proof(10), "leaf index `10` is outside a tree of 10 entries"),
        (lambda t: t.inclusion_proof(4, 4), "leaf index `4` is outside a tree of 4 entries"),
        (lambda t: t.inclusion_proof(0, 0), "leaf index `0` is outside a tree of 0 entries"),
        (lambda t: t.inclusion_proof(0, 11), "tree size `11` is larger than the tree's 10 entries"),
        (lambda t: t.inclusion_proof(1.5), "leaf index `1.5` is not a whole number"),
        (lambda t: t.consistency_proof(5, 3), "first size `5` is larger than the second size 3"),
        (lambda t: t.consistency_proof(11), "first size `11` is larger than the tree's 10 entries"),
        (lambda t: t.consistency_proof(-1), "first size `-1` is negative"),
        (lambda t: t.consistency_proof(1, 12), "second size `12` is larger than the tree's 10"),
        (lambda t: t.append(b"short"), "leaf hash is `5` bytes long: expected 32"),
        (lambda t: t.extend([OTHER, OTHER * 2]), "leaf hash 1 of the batch is `64` bytes long"),
    ],
)
def test_bad_arguments_to_the_tree_are_input_errors(
    call: Callable[[Tree], object], message: str
) -> None:
    tree = Tree()
    tree.extend(SMALL_LEAVES[:10])
    with pytest.raises(InputError, match=message) as caught:
        call(tree)
    assert "\n" not in str(caught.value)
    assert tree.size == 10  # a refused append or extend adds nothing
    assert tree.root() == _mth(0, 10)


def test_root_builder_refuses_a_bad_leaf() -> None:
    with pytest.raises(InputError, match="leaf hash is `33` bytes long: expected 32"):
        RootBuilder().push(OTHER + b"\x00")


# -- agreement with pymerkle -------------------------------------------------------------------
# What "agrees" means is spelled out in test_agrees_with_pymerkle_at_every_size_up_to_256.


def _pymerkle(count: int) -> Any:
    tree = InmemoryTree(algorithm="sha256")
    for i in range(count):
        tree.append_entry(i.to_bytes(8, "big"))
    return tree


@pytest.fixture(scope="module")
def pm_small() -> Any:
    return _pymerkle(SMALL)


@pytest.fixture(scope="module")
def pm_large() -> tuple[Any, Tree]:
    tree = Tree()
    tree.extend(_leaf(i) for i in range(2000))
    return _pymerkle(2000), tree


def _rfc_from_pymerkle(proof: Any, first: int, second: int, hash_pair: Any) -> list[bytes]:
    """Our consistency proof, rebuilt from a pymerkle consistency proof's hashes."""
    _, _, ranges = _consistency_path_layout(first, second)
    known: dict[tuple[int, int], bytes] = dict(zip(ranges, proof.path, strict=True))

    def mth(lo: int, hi: int) -> bytes:
        if (lo, hi) in known:
            return known[(lo, hi)]
        assert hi - lo > 1, f"range {lo}..{hi} is not in pymerkle's path"
        k = _split(hi - lo)
        return bytes(hash_pair(mth(lo, lo + k), mth(lo + k, hi)))

    return [mth(lo, hi) for lo, hi in _rfc_proof(first, second)]


def _ours_accepts(check: Callable[..., None], *args: Any) -> bool:
    try:
        check(*args)
    except ProofError:
        return False
    return True


def _pm_accepts_inclusion(leaf: Any, index: Any, size: Any, path: list[bytes], root: Any) -> bool:
    """pymerkle's verdict on our claim, its proof labelled with the claimed index and size."""
    try:
        rule, _ = _inclusion_path_layout(index + 1, size) if 0 <= index < size else ([], [])
        proof = InclusionProof("sha256", True, size, index + 1, rule, [leaf, *path])
        pm_verify_inclusion(leaf, root, proof, index=index + 1, size=size)
    except InvalidProof:
        return False
    return True


def _pm_accepts_consistency(
    first: Any, second: Any, first_root: Any, second_root: Any, pm_proof: Any
) -> bool:
    """pymerkle's verdict on a claim, its genuine proof relabelled with the claimed sizes."""
    try:
        proof = ConsistencyProof(
            "sha256", True, second, first, pm_proof.rule, pm_proof.subset, pm_proof.path
        )
        pm_verify_consistency(first_root, second_root, proof, prior_size=first, later_size=second)
    except InvalidProof:
        return False
    return True


def test_pymerkle_hashes_like_rfc_9162(pm_small: Any) -> None:
    assert (pm_small.leaf_prefix, pm_small.node_prefix) == (b"\x00", b"\x01")
    assert pm_small.hash_buff(b"abc") == leaf_hash(b"abc")
    assert pm_small.hash_pair(OTHER, EMPTY_ROOT) == node_hash(OTHER, EMPTY_ROOT)
    assert _pymerkle(0).get_root() == EMPTY_ROOT


def _check_agreement(pm: Any, ours: Tree, index: int, first: int, size: int) -> None:
    """Roots, one inclusion and one consistency proof in a tree of ``size``: the same on both sides."""
    root = ours.root(size)
    assert pm.get_root(size) == root, size
    pm_inclusion = pm.prove_inclusion(index + 1, size)
    proof = ours.inclusion_proof(index, size)
    assert pm_inclusion.path == [ours.leaf(index), *proof], (index, size)
    pm_verify_inclusion(ours.leaf(index), root, pm_inclusion, index=index + 1, size=size)
    verify_inclusion(ours.leaf(index), index, size, proof, root)

    first_root = ours.root(first)
    pm_consistency = pm.prove_consistency(first, size)
    proof = ours.consistency_proof(first, size)
    assert proof == _rfc_from_pymerkle(pm_consistency, first, size, pm.hash_pair), (first, size)
    pm_verify_consistency(first_root, root, pm_consistency, prior_size=first, later_size=size)
    verify_consistency(first, size, first_root, root, proof)


@pytest.mark.slow  # every tree size against pymerkle: about 20 s
def test_agrees_with_pymerkle_at_every_size_up_to_256(pm_small: Any, small: Tree) -> None:
    """pymerkle 7.0.0 (``InmemoryTree``, sha256, security on: its defaults) hashes leaves and nodes
    with the 0x00 and 0x01 prefixes of RFC 9162 and counts leaves from one. Agreement, precisely:

    * roots: for every size, pymerkle's ``get_root`` equals ours (the empty tree included);
    * inclusion: pymerkle's path is the leaf hash followed by the RFC 9162 audit path, so ours
      must equal ``path[1:]`` hash for hash;
    * consistency: pymerkle proves "first" extends to "second" with the leaf hash at ``first``
      and that leaf's inclusion path, a different shape from RFC 9162's PROOF (never the same
      hashes when ``first < second``). Every range of the RFC 9162 proof is either a range of
      pymerkle's path (as pymerkle's own layout function names them) or the node over two such
      ranges, hashed with pymerkle's ``hash_pair``; ours must equal the proof so rebuilt;
    * verdicts (genuine proofs here; tampered ones in test_tampered_proofs_are_rejected_by_both):
      pymerkle's verifier accepts exactly when ours does. Tampering with our inclusion proof or
      with the claim (index, sizes, roots, leaf) is carried to pymerkle's proof as it is;
      tampering with a hash of pymerkle's path is carried to ours through the mappings above.
      Our consistency proofs cannot be turned into pymerkle's (they fold hashes pymerkle keeps
      apart), so their hashes are tampered with on pymerkle's side only, and one such tamper is
      the single place the verdicts differ, by design: the hash of the first tree when its size
      is a power of two, which RFC 9162 leaves out of the proof (the verifier holds that root
      already), so pymerkle rejects it and ours is not affected.
    """
    assert pm_small.get_root(0) == small.root(0)
    for size in range(1, SMALL + 1):
        for position in range(1, size + 1):
            # position - 1 walks every leaf, position every first size (1..size)
            _check_agreement(pm_small, small, position - 1, position, size)


def test_agrees_with_pymerkle_at_random_sizes_up_to_2000(pm_large: tuple[Any, Tree]) -> None:
    pm, ours = pm_large
    rng = random.Random(2000)
    for _ in range(300):
        size = rng.randint(1, 2000)
        _check_agreement(pm, ours, rng.randrange(size), rng.randint(1, size), size)


def _pm_accepts_path(leaf: bytes, root: bytes, proof: Any, index: int, size: int) -> bool:
    try:
        pm_verify_inclusion(leaf, root, proof, index=index + 1, size=size)
    except InvalidProof:
        return False
    return True


def _inclusion_verdicts_agree(pm: Any, ours: Tree, index: int, size: int) -> None:
    rng = random.Random(index * 1000 + size)
    # our side's tampering, carried to pymerkle as the same claim
    for what, (leaf, i, n, path, root) in _inclusion_tampers(ours, index, size, rng):
        ours_ok = _ours_accepts(verify_inclusion, leaf, i, n, path, root)
        pm_ok = _pm_accepts_inclusion(leaf, i, n, path, root)
        assert (ours_ok, pm_ok) == (False, False), (what, index, size)
    # pymerkle's side: each hash of its path changed, dropped, or one added; its path is the
    # leaf hash then the audit path, so ours is given those two parts
    genuine = pm.prove_inclusion(index + 1, size)
    leaf, root = ours.leaf(index), ours.root(size)
    for tampered in _hash_tampers(genuine.path, rng):
        proof = InclusionProof("sha256", True, size, index + 1, genuine.rule, tampered)
        pm_ok = _pm_accepts_path(leaf, root, proof, index, size)
        ours_ok = bool(tampered) and _ours_accepts(
            verify_inclusion, tampered[0], index, size, tampered[1:], root
        )
        assert (ours_ok, pm_ok) == (False, False), (index, size, tampered)


def _consistency_verdicts_agree(pm: Any, ours: Tree, first: int, second: int) -> None:
    rng = random.Random(first * 1000 + second)
    genuine = pm.prove_consistency(first, second)
    first_root, second_root = ours.root(first), ours.root(second)
    # the claim tampered on both sides alike (our proof, their proof)
    proof = ours.consistency_proof(first, second)
    claims = [
        (first + 1, second, first_root, second_root),
        (first - 1, second, first_root, second_root),
        (first, second * 2, first_root, second_root),
        (first, second // 2, first_root, second_root),
        (first, second, OTHER, second_root),
        (first, second, first_root, OTHER),
        (first, second, second_root, first_root),
    ]
    for m, n, r1, r2 in claims:
        ours_ok = _ours_accepts(verify_consistency, m, n, r1, r2, proof)
        pm_ok = _pm_accepts_consistency(m, n, r1, r2, genuine)
        assert (ours_ok, pm_ok) == (False, False), (first, second, m, n)
    # pymerkle's side: one bit of each hash of its path flipped
    ranges = _consistency_path_layout(first, second)[2]
    for j, digest in enumerate(genuine.path):
        path = [
            *genuine.path[:j],
            _flip(digest, rng.randrange(32), rng.randrange(8)),
            *genuine.path[j + 1 :],
        ]
        tampered = ConsistencyProof(
            "sha256", True, second, first, genuine.rule, genuine.subset, path
        )
        assert not _pm_accepts_consistency(first, second, first_root, second_root, tampered)
        mapped = _rfc_from_pymerkle(tampered, first, second, pm.hash_pair)
        ours_ok = _ours_accepts(verify_consistency, first, second, first_root, second_root, mapped)
        assert ours_ok == (ranges[j] == (0, first)), (first, second, ranges[j])


def test_tampered_proofs_are_rejected_by_both(pm_small: Any, small: Tree) -> None:
    rng = random.Random(4)
    for size in range(1, SMALL + 1):
        sample = range(size) if size <= 32 else rng.sample(range(size), 3)
        for index in sample:
            _inclusion_verdicts_agree(pm_small, small, index, size)
            if index > 0:
                _consistency_verdicts_agree(pm_small, small, index, size)
