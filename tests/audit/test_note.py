"""Signed checkpoints: the C2SP signed-note form, checked against the reference implementation's
published example, and every way a note can be wrong."""

from __future__ import annotations

import base64
import hashlib
import stat
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from meridian.audit.note import (
    Checkpoint,
    NoteSigner,
    NoteVerifier,
    key_id,
    load_or_create_log_key,
    peek_checkpoint,
    public_vkey,
)
from meridian.errors import ConfigurationError, InputError, ProofError

# The example of golang.org/x/mod/sumdb/note's note_test.go (TestSign, TestNewVerifier): its
# private key is PRIVATE+KEY+PeterNeumann+c74f20a3+<base64(0x01 || Ed25519 seed)>.
GO_SEED = base64.b64decode("AYEKFALVFGyNhPJEMzD1QIDr+Y7hfZx09iUvxdXHKDFz")[1:]
GO_VKEY = "PeterNeumann+c74f20a3+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW"
GO_TEXT = (
    b"If you think cryptography is the answer to your problem,\n"
    b"then you don't know what your problem is.\n"
)
GO_NOTE = (
    GO_TEXT.decode() + "\n— PeterNeumann x08go/ZJkuBS9UG/SffcvIAQxVBtiFupLLr8pAcElZInNIuGUgYN1FFY"
    "C2pZSNXgKvqfqdngotpRZb6KE6RyyBwJnAM=\n"
)
# Its second key, for a foreign signature on the same text (TestOpen).
ENOCH_VKEY = "EnochRoot+af0cfe78+ATtqJ7zOtqQtYqOo0CpvDXNlMhV3HeJDpjrASKGLWdop"
ENOCH_SIG = (
    "— EnochRoot rwz+eBzmZa0SO3NbfRGzPCpDckykFXSdeX+MNtCOXm2/5n2tiOHp+vAF1aGrQ5ovTG01oOTGwnWL"
    "ox33WWd1RvMc+QQ=\n"
)

ORIGIN = "meridian.example/log"
ROOT = hashlib.sha256(b"a root").digest()
AT = datetime(2026, 11, 28, 12, 30, 5, tzinfo=UTC)


@pytest.fixture(scope="module")
def signer() -> NoteSigner:
    return NoteSigner(ORIGIN, Ed25519PrivateKey.generate())


@pytest.fixture(scope="module")
def verifier(signer: NoteSigner) -> NoteVerifier:
    return NoteVerifier.from_vkey(signer.verifier_key())


def checkpoint(size: int = 1200, root: bytes = ROOT, at: datetime = AT) -> Checkpoint:
    return Checkpoint(origin=ORIGIN, size=size, root=root, time=at)


# -- the reference example -------------------------------------------------------------------


def test_key_id_and_vkey_match_the_reference_example() -> None:
    key = Ed25519PrivateKey.from_private_bytes(GO_SEED)
    public = key.public_key().public_bytes(
        serialization.Encoding.Raw, serialization.PublicFormat.Raw
    )
    # By hand: SHA-256(name || 0x0A || 0x01 || public key), first four bytes.
    assert hashlib.sha256(b"PeterNeumann\n\x01" + public).digest()[:4].hex() == "c74f20a3"
    assert key_id("PeterNeumann", key.public_key()).hex() == "c74f20a3"
    assert NoteSigner("PeterNeumann", key).verifier_key() == GO_VKEY
    assert public_vkey("PeterNeumann", key.public_key()) == GO_VKEY


def test_signing_reproduces_the_reference_note_byte_for_byte() -> None:
    signer = NoteSigner("PeterNeumann", Ed25519PrivateKey.from_private_bytes(GO_SEED))
    assert signer.sign_text(GO_TEXT) == GO_NOTE
    assert NoteVerifier.from_vkey(GO_VKEY).open_text(GO_NOTE) == GO_TEXT


def test_foreign_signatures_are_ignored_but_one_of_ours_is_required() -> None:
    peter = NoteVerifier.from_vkey(GO_VKEY)
    assert peter.open_text(GO_NOTE + ENOCH_SIG) == GO_TEXT
    enoch_only = GO_TEXT.decode() + "\n" + ENOCH_SIG
    assert NoteVerifier.from_vkey(ENOCH_VKEY).open_text(enoch_only) == GO_TEXT
    with pytest.raises(ProofError, match=r"^unknown key: .*PeterNeumann\+c74f20a3"):
        peter.open_text(enoch_only)


# -- checkpoints -------------------------------------------------------------------------------


def test_body_is_the_checkpoint_form_with_a_time_line() -> None:
    body = checkpoint().body()
    root = base64.b64encode(ROOT).decode()
    assert body == f"{ORIGIN}\n1200\n{root}\ntime 2026-11-28T12:30:05Z\n".encode()
    assert Checkpoint.parse_body(body) == checkpoint()


def test_time_is_kept_in_utc_to_the_second() -> None:
    paris = timezone(timedelta(hours=1))
    at = datetime(2026, 11, 28, 13, 30, 5, 999_999, tzinfo=paris)
    assert checkpoint(at=at).time == AT
    assert checkpoint(at=at).time.tzinfo is UTC
    with pytest.raises(InputError, match="no timezone"):
        checkpoint(at=datetime(2026, 11, 28, 12, 30, 5))


@pytest.mark.parametrize(
    ("size", "root", "message"),
    [
        (-1, ROOT, "out of range"),
        (2**63, ROOT, "out of range"),
        (True, ROOT, "not an integer"),
        (1, ROOT[:31], "32 bytes"),
    ],
    ids=["negative", "too-large", "bool", "short-root"],
)
def test_checkpoint_fields_are_checked(size: int, root: bytes, message: str) -> None:
    with pytest.raises(InputError, match=message):
        checkpoint(size=size, root=root)


def test_checkpoint_origin_must_be_a_key_name() -> None:
    for origin in ["", "a b", "a+b", "a\x01b", "a\u2003b"]:
        with pytest.raises(InputError, match="origin"):
            Checkpoint(origin=origin, size=0, root=ROOT, time=AT)


GOOD_ROOT = base64.b64encode(ROOT).decode()
# The root's base64 with unused low bits set in its last character: decodes to the same bytes.
LAX_ROOT = GOOD_ROOT[:-2] + chr(ord(GOOD_ROOT[-2]) + 1) + "="
BAD_BODIES = {
    "no-final-newline": f"{ORIGIN}\n1\n{GOOD_ROOT}\ntime 2026-11-28T12:30:05Z",
    "no-time": f"{ORIGIN}\n1\n{GOOD_ROOT}\n",
    "extra-line": f"{ORIGIN}\n1\n{GOOD_ROOT}\ntime 2026-11-28T12:30:05Z\nmore\n",
    "blank-line": f"{ORIGIN}\n1\n{GOOD_ROOT}\n\ntime 2026-11-28T12:30:05Z\n",
    "leading-zero": f"{ORIGIN}\n01\n{GOOD_ROOT}\ntime 2026-11-28T12:30:05Z\n",
    "signed-size": f"{ORIGIN}\n+1\n{GOOD_ROOT}\ntime 2026-11-28T12:30:05Z\n",
    "arabic-digit": f"{ORIGIN}\n\u0661\n{GOOD_ROOT}\ntime 2026-11-28T12:30:05Z\n",
    "huge-size": f"{ORIGIN}\n{2**64}\n{GOOD_ROOT}\ntime 2026-11-28T12:30:05Z\n",
    "lax-base64": f"{ORIGIN}\n1\n{LAX_ROOT}\ntime 2026-11-28T12:30:05Z\n",
    "unpadded": f"{ORIGIN}\n1\n{GOOD_ROOT[:-1]}\ntime 2026-11-28T12:30:05Z\n",
    "short-root": f"{ORIGIN}\n1\n{base64.b64encode(ROOT[:31]).decode()}\ntime 2026-11-28T12:30:05Z\n",
    "space-in-origin": f"a b\n1\n{GOOD_ROOT}\ntime 2026-11-28T12:30:05Z\n",
    "fractional-time": f"{ORIGIN}\n1\n{GOOD_ROOT}\ntime 2026-11-28T12:30:05.5Z\n",
    "offset-time": f"{ORIGIN}\n1\n{GOOD_ROOT}\ntime 2026-11-28T12:30:05+00:00\n",
    "impossible-date": f"{ORIGIN}\n1\n{GOOD_ROOT}\ntime 2026-02-30T12:30:05Z\n",
    "other-extension": f"{ORIGIN}\n1\n{GOOD_ROOT}\nwhen 2026-11-28T12:30:05Z\n",
}


@pytest.mark.parametrize("body", BAD_BODIES.values(), ids=BAD_BODIES.keys())
def test_parse_body_refuses_anything_but_the_exact_form(body: str) -> None:
    assert LAX_ROOT != GOOD_ROOT
    assert base64.b64decode(LAX_ROOT) == ROOT
    with pytest.raises(ProofError, match=r"^malformed checkpoint: "):
        Checkpoint.parse_body(body.encode())


def test_parse_body_refuses_invalid_utf8() -> None:
    with pytest.raises(ProofError, match="not UTF-8"):
        Checkpoint.parse_body(b"\xff" + checkpoint().body())


# -- signing and opening -----------------------------------------------------------------------


def test_sign_and_open_round_trip(signer: NoteSigner, verifier: NoteVerifier) -> None:
    note = signer.sign(checkpoint())
    body, signature = note.split("\n\n")
    assert body.encode() + b"\n" == checkpoint().body()
    name, encoded = signature.removeprefix("— ").removesuffix("\n").split(" ")
    assert name == ORIGIN
    raw = base64.b64decode(encoded)
    assert len(raw) == 4 + 64
    assert raw[:4] == signer.key_id == verifier.key_id
    assert verifier.open(note) == checkpoint()
    assert verifier.open(note.encode()) == checkpoint()
    assert peek_checkpoint(note) == checkpoint()


def test_vkey_form(signer: NoteSigner) -> None:
    name, hex_id, encoded = signer.verifier_key().split("+", 2)
    assert name == ORIGIN
    assert hex_id == signer.key_id.hex()
    raw = base64.b64decode(encoded)
    assert raw[:1] == b"\x01"
    assert len(raw) == 33
    assert NoteVerifier.from_vkey(signer.verifier_key() + "\n").verifier_key() == (
        signer.verifier_key()
    )


def test_every_single_byte_flip_of_a_note_is_refused(
    signer: NoteSigner, verifier: NoteVerifier
) -> None:
    note = signer.sign(checkpoint()).encode()
    tried = 0
    for position in range(len(note)):
        for flip in (1, 2, 4, 8, 16, 32, 64, 128, 0xFF, 0x5A):
            mutated = bytearray(note)
            mutated[position] ^= flip
            with pytest.raises(ProofError):
                verifier.open(bytes(mutated))
            tried += 1
    assert tried == 10 * len(note)


def test_a_note_from_another_key_is_refused(verifier: NoteVerifier) -> None:
    other = NoteSigner(ORIGIN, Ed25519PrivateKey.generate())
    with pytest.raises(ProofError, match=r"^unknown key: .*meridian\.example/log\+"):
        verifier.open(other.sign(checkpoint()))


def test_a_note_under_another_name_is_refused(verifier: NoteVerifier) -> None:
    other = NoteSigner("other.example/log", Ed25519PrivateKey.generate())
    text = checkpoint().body()
    with pytest.raises(ProofError, match=r"^unknown key: "):
        verifier.open(other.sign_text(text))


def test_a_bad_signature_from_our_key_is_refused(
    signer: NoteSigner, verifier: NoteVerifier
) -> None:
    note = signer.sign(checkpoint())
    body, signature = note.split("\n\n")
    prefix, encoded = signature.rsplit(" ", 1)
    raw = bytearray(base64.b64decode(encoded))
    raw[10] ^= 1  # the signature, not the key id
    forged = f"{body}\n\n{prefix} {base64.b64encode(bytes(raw)).decode()}\n"
    with pytest.raises(ProofError, match=r"^bad signature: "):
        verifier.open(forged)
    # A correct signature of ours next to it does not save the note.
    with pytest.raises(ProofError, match=r"^bad signature: "):
        verifier.open(note + forged.split("\n\n")[1])


def test_an_origin_other_than_the_key_name_is_refused(
    signer: NoteSigner, verifier: NoteVerifier
) -> None:
    foreign = Checkpoint(origin="other.example/log", size=1, root=ROOT, time=AT)
    with pytest.raises(InputError, match="origin"):
        signer.sign(foreign)
    with pytest.raises(ProofError, match=r"^origin mismatch: "):
        verifier.open(signer.sign_text(foreign.body()))


def test_a_checkpoint_changed_under_its_signature_is_refused(
    signer: NoteSigner, verifier: NoteVerifier
) -> None:
    note = signer.sign(checkpoint())
    signature = note.split("\n\n")[1]
    for changed in [
        checkpoint(size=1201),
        checkpoint(root=bytes(32)),
        checkpoint(at=AT.replace(second=6)),
    ]:
        with pytest.raises(ProofError, match=r"^bad signature: "):
            verifier.open(changed.body().decode() + "\n" + signature)


def test_missing_and_extra_lines_are_refused(signer: NoteSigner, verifier: NoteVerifier) -> None:
    note = signer.sign(checkpoint())
    body, signature = note.split("\n\n")
    cases = {
        "no signature": body + "\n",
        "no blank line": body + "\n" + signature,
        "blank line, no signature": body + "\n\n",
        "no final newline": note[:-1],
        "line after the signature": note + "and more\n",
        "blank line after the signature": note + "\n",
        "line before the body": "first\n" + note,
        "body line dropped": body.split("\n", 1)[1] + "\n\n" + signature,
        "extension added": body + "\nextra\n\n" + signature,
    }
    for name, text in cases.items():
        with pytest.raises(ProofError) as caught:
            verifier.open(text)
        message = str(caught.value)
        assert "\n" not in message, name
        assert message.split(":")[0] in {"malformed note", "unknown key", "bad signature"}, name


def test_malformed_notes_are_refused(verifier: NoteVerifier) -> None:
    for note in ["", "\n", "\n\n", "a\n\n— \n", "a\n\n— x y\n", 17]:
        with pytest.raises(ProofError):
            verifier.open(note)  # type: ignore[arg-type]
    with pytest.raises(ProofError, match="more than 100 signatures"):
        verifier.open(GO_NOTE + ENOCH_SIG * 100)


# -- verifier keys -----------------------------------------------------------------------------


BAD_VKEYS = {
    "empty": "",
    "two-parts": "PeterNeumann+c74f20a3",
    "four-parts": GO_VKEY + "+x",
    "bad-name": "Peter Neumann+c74f20a3+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW",
    "short-id": "PeterNeumann+c74f20a+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW",
    "upper-id": "PeterNeumann+C74F20A3+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW",
    "wrong-id": "PeterNeumann+c74f20a4+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW",
    "wrong-name": "PeterNeuman+c74f20a3+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW",
    "not-base64": "PeterNeumann+c74f20a3+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10T!",
    "wrong-type": "PeterNeumann+c74f20a3+"
    + base64.b64encode(b"\x02" + base64.b64decode(GO_VKEY.split("+")[2])[1:]).decode(),
    "short-key": "PeterNeumann+c74f20a3+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy",
}


@pytest.mark.parametrize("vkey", BAD_VKEYS.values(), ids=BAD_VKEYS.keys())
def test_malformed_vkeys_are_input_errors(vkey: str) -> None:
    with pytest.raises(InputError, match=r"^log verifier key `.*` is malformed: ") as caught:
        NoteVerifier.from_vkey(vkey)
    assert "\n" not in str(caught.value)


def test_a_vkey_whose_key_holds_a_plus_sign() -> None:
    seed = 0
    while "+" not in public_vkey(ORIGIN, key_for(seed).public_key()).split("+", 2)[2]:
        seed += 1
    signer = NoteSigner(ORIGIN, key_for(seed))
    verifier = NoteVerifier.from_vkey(signer.verifier_key())
    assert verifier.key_id == signer.key_id
    assert verifier.open(signer.sign(checkpoint())) == checkpoint()


def key_for(seed: int) -> Ed25519PrivateKey:
    return Ed25519PrivateKey.from_private_bytes(hashlib.sha256(b"%d" % seed).digest())


def test_every_mangling_of_a_vkey_is_refused() -> None:
    # As the reference implementation's TestNewVerifier: every proper substring, every byte bumped.
    for start in range(len(GO_VKEY) + 1):
        for stop in range(start + 1, len(GO_VKEY) + 1):
            if (start, stop) != (0, len(GO_VKEY)) and GO_VKEY[start:stop].strip() != GO_VKEY:
                with pytest.raises(InputError):
                    NoteVerifier.from_vkey(GO_VKEY[start:stop])
    for position in range(len(GO_VKEY)):
        bumped = GO_VKEY[:position] + chr(ord(GO_VKEY[position]) + 1) + GO_VKEY[position + 1 :]
        with pytest.raises(InputError):
            NoteVerifier.from_vkey(bumped)


def test_key_names_are_checked() -> None:
    key = Ed25519PrivateKey.generate()
    for name in ["", "a b", "a+b", "tab\there"]:
        with pytest.raises(InputError, match="log key name"):
            NoteSigner(name, key)


# -- the key file ------------------------------------------------------------------------------


def test_a_missing_key_is_created_only_when_asked(tmp_path: Path) -> None:
    path = tmp_path / "keys" / "log.pem"
    with pytest.raises(ConfigurationError, match="MERIDIAN_LOG_KEY") as caught:
        load_or_create_log_key(path, create=False)
    assert not path.exists()
    assert str(caught.value).startswith(f"log signing key `{path}` does not exist")
    created = load_or_create_log_key(path, create=True)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert [p.name for p in path.parent.iterdir()] == ["log.pem"]
    again = load_or_create_log_key(path, create=False)
    assert public_vkey("n", again.public_key()) == public_vkey("n", created.public_key())
    assert load_or_create_log_key(path, create=True) is not created  # read, not regenerated
    assert public_vkey("n", load_or_create_log_key(path, create=True).public_key()) == (
        public_vkey("n", created.public_key())
    )


def test_an_unusable_key_file_is_a_configuration_error(tmp_path: Path) -> None:
    garbage = tmp_path / "garbage.pem"
    garbage.write_text("not a key\n")
    with pytest.raises(ConfigurationError, match="not a PEM private key"):
        load_or_create_log_key(garbage, create=True)
    ecdsa = tmp_path / "ecdsa.pem"
    ecdsa.write_bytes(
        ec.generate_private_key(ec.SECP256R1()).private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    with pytest.raises(ConfigurationError, match="not an Ed25519 key"):
        load_or_create_log_key(ecdsa, create=True)
