"""Witness cosignatures (C2SP cosignature/v1): the form, the quorum, and every way one is wrong."""

from __future__ import annotations

import base64
import hashlib
import struct
from datetime import UTC, datetime

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from meridian.audit.cosignature import (
    Cosigner,
    WitnessKey,
    cosignatures,
    cosigned_message,
    verify_cosignatures,
)
from meridian.audit.note import Checkpoint, NoteSigner, NoteVerifier
from meridian.errors import InputError, ProofError

ORIGIN = "meridian.example/log"
AT = datetime(2026, 12, 3, 12, 0, 0, tzinfo=UTC)


SIGNER = NoteSigner(ORIGIN, Ed25519PrivateKey.generate())


@pytest.fixture(scope="module")
def note() -> str:
    return SIGNER.sign(Checkpoint(ORIGIN, 7, hashlib.sha256(b"r").digest(), AT))


def _body(note: str) -> bytes:
    return note[: note.rfind("\n\n") + 1].encode()


def test_a_cosignature_line_is_the_specifications_bytes(note: str) -> None:
    key = Ed25519PrivateKey.generate()
    witness = Cosigner("witness.example/w1", key)
    line = witness.line(_body(note), 1_700_000_000)
    name, _, encoded = line.removeprefix("— ").removesuffix("\n").partition(" ")
    raw = base64.b64decode(encoded)
    public = key.public_key().public_bytes(
        serialization.Encoding.Raw, serialization.PublicFormat.Raw
    )
    assert name == "witness.example/w1"
    # key id: SHA-256(name || \n || 0x04 || key)[:4]; then the big-endian u64 time, then 64 bytes
    assert raw[:4] == hashlib.sha256(b"witness.example/w1\n\x04" + public).digest()[:4]
    assert struct.unpack(">Q", raw[4:12]) == (1_700_000_000,)
    message = b"cosignature/v1\ntime 1700000000\n" + _body(note)
    assert cosigned_message(_body(note), 1_700_000_000) == message
    key.public_key().verify(raw[12:], message)
    assert len(raw) == 76
    typed = base64.b64encode(b"\x04" + public).decode()
    assert witness.public.vkey == f"witness.example/w1+{raw[:4].hex()}+{typed}"


def test_a_quorum_of_cosignatures_verifies_and_the_log_signature_still_does(note: str) -> None:
    one, two = (Cosigner(f"w{i}.example", Ed25519PrivateKey.generate()) for i in (1, 2))
    cosigned = note + one.line(_body(note), 100) + two.line(_body(note), 101)
    keys = [WitnessKey.from_vkey(one.public.vkey), WitnessKey.from_vkey(two.public.vkey)]
    valid = verify_cosignatures(cosigned, keys, quorum=2)
    assert [(c.witness, c.timestamp) for c in valid] == [("w1.example", 100), ("w2.example", 101)]


def test_a_missing_witness_is_named(note: str) -> None:
    one, two = (Cosigner(f"w{i}.example", Ed25519PrivateKey.generate()) for i in (1, 2))
    cosigned = note + one.line(_body(note), 100)
    with pytest.raises(ProofError, match=r"1 of 2 required: `w2.example` has not cosigned it"):
        verify_cosignatures(cosigned, [one.public, two.public], quorum=2)
    assert len(verify_cosignatures(cosigned, [one.public, two.public], quorum=1)) == 1


def test_a_cosignature_over_another_checkpoint_does_not_verify(note: str) -> None:
    one = Cosigner("w1.example", Ed25519PrivateKey.generate())
    other = note.replace("\n7\n", "\n8\n")
    forged = note + one.line(_body(other), 100)
    check = cosignatures(forged, [one.public])
    assert check.invalid == ("w1.example",)
    assert not check.valid
    with pytest.raises(ProofError, match=r"`w1.example`'s cosignature does not verify"):
        verify_cosignatures(forged, [one.public], quorum=1)


def test_a_changed_timestamp_does_not_verify(note: str) -> None:
    one = Cosigner("w1.example", Ed25519PrivateKey.generate())
    line = one.line(_body(note), 100)
    raw = bytearray(base64.b64decode(line.split(" ")[2]))
    raw[11] ^= 1
    changed = f"— w1.example {base64.b64encode(bytes(raw)).decode()}\n"
    assert cosignatures(note + changed, [one.public]).invalid == ("w1.example",)


def test_a_log_key_line_under_the_witness_name_is_not_a_cosignature(note: str) -> None:
    key = Ed25519PrivateKey.generate()
    # the same key as a log (type 0x01) signs under the witness's name: a different key id
    as_log = NoteSigner("w1.example", key).sign_text(_body(note))
    line = as_log.splitlines()[-1] + "\n"
    assert cosignatures(note + line, [Cosigner("w1.example", key).public]).missing == (
        "w1.example",
    )


def test_the_log_verifier_opens_a_cosigned_note(note: str) -> None:
    one = Cosigner("w1.example", Ed25519PrivateKey.generate())
    cosigned = note + one.line(_body(note), 100)
    assert NoteVerifier.from_vkey(SIGNER.verifier_key()).open(cosigned).size == 7


@pytest.mark.parametrize(
    ("vkey", "problem"),
    [
        ("w1.example", r"expected `<name>\+<key id>\+<key>`"),
        ("w1.example+00000000+AQ==", "not a cosignature/v1 key"),
        ("w 1+00000000+BA==", "its name is not usable"),
    ],
    ids=["no-parts", "wrong-type", "space-in-name"],
)
def test_a_malformed_witness_key_is_refused(vkey: str, problem: str) -> None:
    with pytest.raises(InputError, match=problem):
        WitnessKey.from_vkey(vkey)


def test_a_witness_key_with_the_wrong_key_id_is_refused() -> None:
    good = Cosigner("w1.example", Ed25519PrivateKey.generate()).public.vkey
    name, _, key = good.split("+", 2)
    with pytest.raises(InputError, match="does not match its key"):
        WitnessKey.from_vkey(f"{name}+00000000+{key}")


def test_an_impossible_quorum_is_refused(note: str) -> None:
    one = Cosigner("w1.example", Ed25519PrivateKey.generate())
    with pytest.raises(InputError, match="quorum `2` must be between 1 and the 1 witnesses"):
        verify_cosignatures(note, [one.public], quorum=2)
