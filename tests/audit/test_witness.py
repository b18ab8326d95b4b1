"""A witness's rules (C2SP tlog-witness ``add-checkpoint``): what it cosigns, and the status it
gives each refusal — a wrong signature, an unknown log, a stale old size, a fork."""

from __future__ import annotations

import base64
import threading
from datetime import UTC, datetime

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from meridian.audit.cosignature import Cosigner, verify_cosignatures
from meridian.audit.merkle import Tree, leaf_hash
from meridian.audit.note import Checkpoint, NoteSigner, NoteVerifier
from meridian.audit.witness import Witness

ORIGIN = "log.example/a"
AT = datetime(2026, 12, 3, 12, 0, tzinfo=UTC)


class _Log:
    """A log of numbered entries, signed with one key: enough to make any checkpoint."""

    def __init__(self, signer: NoteSigner, prefix: bytes = b"") -> None:
        self.signer = signer
        self.tree = Tree()
        self.prefix = prefix

    def grow(self, n: int) -> None:
        start = self.tree.size
        self.tree.extend([leaf_hash(self.prefix + b"%d" % i) for i in range(start, start + n)])

    def note(self, size: int | None = None) -> str:
        size = self.tree.size if size is None else size
        return self.signer.sign(Checkpoint(ORIGIN, size, self.tree.root(size), AT))

    def request(self, old: int, size: int | None = None, proof: list[bytes] | None = None) -> bytes:
        size = self.tree.size if size is None else size
        if proof is None:
            proof = [] if old in (0, size) else self.tree.consistency_proof(old, size)
        lines = "".join(base64.b64encode(h).decode() + "\n" for h in proof)
        return f"old {old}\n{lines}\n{self.note(size)}".encode()


@pytest.fixture
def key() -> Ed25519PrivateKey:
    return Ed25519PrivateKey.generate()


@pytest.fixture
def log(key) -> _Log:
    return _Log(NoteSigner(ORIGIN, key))


@pytest.fixture
def witness(tmp_path, log) -> Witness:
    verifier = NoteVerifier.from_vkey(log.signer.verifier_key())
    cosigner = Cosigner("witness.example/w1", Ed25519PrivateKey.generate())
    return Witness(tmp_path / "w.db", cosigner, [verifier], clock=lambda: 1_800_000_000.0)


def test_a_consistent_checkpoint_is_cosigned_and_remembered(witness, log) -> None:
    log.grow(10)
    answer = witness.add_checkpoint(log.request(0))
    assert answer.status == 200, answer.reason
    assert answer.body.startswith("— witness.example/w1 ")
    assert answer.body.endswith("\n")
    valid = verify_cosignatures(log.note() + answer.body, [witness.cosigner.public], quorum=1)
    assert valid[0].timestamp == 1_800_000_000
    assert witness.latest(ORIGIN)[0] == 10
    log.grow(300)
    assert witness.add_checkpoint(log.request(10)).status == 200
    assert witness.latest(ORIGIN)[0] == 310
    # the same checkpoint again is cosigned again; the same size with its proof from itself too
    assert witness.add_checkpoint(log.request(310)).status == 200


def test_a_stale_old_size_is_409_with_the_size_held(witness, log) -> None:
    log.grow(10)
    witness.add_checkpoint(log.request(0))
    log.grow(5)
    answer = witness.add_checkpoint(log.request(0))
    assert (answer.status, answer.body, answer.content_type) == (409, "10\n", "text/x.tlog.size")
    older = witness.add_checkpoint(log.request(3, 8))
    assert (older.status, older.body) == (409, "10\n")


def test_a_forked_checkpoint_is_refused_422_and_kept(witness, log) -> None:
    log.grow(10)
    witness.add_checkpoint(log.request(0))
    fork = _Log(log.signer, prefix=b"other")  # the same key signs another history
    fork.grow(20)
    answer = witness.add_checkpoint(fork.request(10))
    assert answer.status == 422
    assert "does not extend the one cosigned at size 10" in answer.body
    # the same size with another root: a fork too
    same = witness.add_checkpoint(fork.request(10, 10))
    assert same.status == 422
    assert "the log forked" in same.reason
    assert [s for s, _ in witness.refusals(ORIGIN)] == [422, 422]
    assert witness.latest(ORIGIN)[0] == 10


def test_a_wrong_proof_for_a_good_history_is_422(witness, log) -> None:
    log.grow(10)
    witness.add_checkpoint(log.request(0))
    log.grow(10)
    proof = log.tree.consistency_proof(10, 20)
    proof[0] = bytes(32)
    assert witness.add_checkpoint(log.request(10, proof=proof)).status == 422
    assert witness.add_checkpoint(log.request(0, 20, proof=[bytes(32)])).status == 409


def test_a_proof_from_zero_must_be_empty(tmp_path, log) -> None:
    verifier = NoteVerifier.from_vkey(log.signer.verifier_key())
    fresh = Witness(
        tmp_path / "x.db",
        Cosigner("w.example", Ed25519PrivateKey.generate()),
        [verifier],
        clock=lambda: 1.0,
    )
    log.grow(4)
    assert fresh.add_checkpoint(log.request(0, proof=[bytes(32)])).status == 422


def test_an_unknown_log_is_404_and_a_bad_signature_403(witness, log) -> None:
    other = _Log(NoteSigner("log.example/b", Ed25519PrivateKey.generate()))
    other.grow(1)
    body = (
        b"old 0\n\n"
        + other.signer.sign(Checkpoint("log.example/b", 1, other.tree.root(), AT)).encode()
    )
    assert witness.add_checkpoint(body).status == 404
    # the log's name, another key: no trusted signature
    impostor = _Log(NoteSigner(ORIGIN, Ed25519PrivateKey.generate()))
    impostor.grow(1)
    answer = witness.add_checkpoint(impostor.request(0))
    assert answer.status == 403
    assert answer.reason.startswith("unknown key")
    log.grow(1)
    note = log.note()
    flipped = note.replace("\n1\n", "\n2\n")  # the body changed under the log's signature
    assert witness.add_checkpoint(b"old 0\n\n" + flipped.encode()).status == 403


@pytest.mark.parametrize(
    ("body", "problem"),
    [
        (b"", "no blank line"),
        (b"old 01\n\nx", "is not `old <size>`"),
        (b"new 0\n\nx", "is not `old <size>`"),
        (b"old 1\nnot-base64\n\nx", "proof line 1"),
        (
            b"old 1\n" + b"AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=\n" * 64 + b"\nx",
            "at most 63",
        ),
        (b"\xff\n\n", "not UTF-8"),
    ],
    ids=["empty", "leading-zero", "word", "proof", "too-many", "utf8"],
)
def test_a_malformed_request_is_400(witness, body, problem) -> None:
    answer = witness.add_checkpoint(body)
    assert answer.status == 400
    assert problem in answer.reason


def test_an_old_size_beyond_the_checkpoint_is_400(witness, log) -> None:
    log.grow(3)
    answer = witness.add_checkpoint(log.request(5, 3, proof=[]))
    assert answer.status == 400
    assert "old size 5 is larger than the checkpoint's 3" in answer.reason


def test_racing_submissions_never_roll_the_size_back(witness, log) -> None:
    log.grow(10)
    witness.add_checkpoint(log.request(0))
    log.grow(90)
    requests = [log.request(10, size) for size in range(11, 101)]
    answers: list[int] = []

    def send(body: bytes) -> None:
        answers.append(witness.add_checkpoint(body).status)

    threads = [threading.Thread(target=send, args=(b,)) for b in requests]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    # exactly one submission from size 10 wins; every other is told the size now held
    assert answers.count(200) == 1
    assert answers.count(409) == len(requests) - 1
    held = witness.latest(ORIGIN)[0]
    assert 11 <= held <= 100


def test_a_replayed_refusal_is_kept_once_however_often_it_comes(witness, log) -> None:
    # anyone can fetch the log's public checkpoint and send it with a bogus proof: the witness
    # keeps the signed checkpoint it refused (it may prove a fork), but once, or an outsider
    # could grow its state without bound
    log.grow(10)
    witness.add_checkpoint(log.request(0))
    log.grow(10)
    stranger = base64.b64encode(b"\x01\x02\x03\x04" + bytes(64)).decode()
    for n in range(30):
        body = log.request(10, proof=[bytes([n]) * 32])
        if n % 2:  # another signature line the witness does not know: the same checkpoint
            body += f"— stranger.example/{n} {stranger}\n".encode()
        answer = witness.add_checkpoint(body)
        assert answer.status == 422, answer.reason
    assert len(witness.refusals(ORIGIN)) == 1
    # another refused checkpoint is kept too
    log.grow(1)
    assert witness.add_checkpoint(log.request(10, proof=[bytes(32)])).status == 422
    assert len(witness.refusals(ORIGIN)) == 2
