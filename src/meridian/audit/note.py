"""Signed checkpoints: the log's tree heads as C2SP signed notes (c2sp.org/signed-note).

A checkpoint (c2sp.org/tlog-checkpoint) says "the log called ``origin`` had ``size`` entries
and this Merkle root, at this time", and the log's Ed25519 key signs it::

    meridian.example/log
    1200
    CsUYapGGPo4dkMgIAUqom/Xajj7h2fB2MPA3j2jxq2I=
    time 2026-11-28T12:00:00Z

    — meridian.example/log Az3grlgtzPICa5OS8npVmf1Myq/5IZniMp+ZJurmRDeOoRDe4U…

The body is three lines and one extension line for the time; the signature line carries the
key's name and ``base64(key id || Ed25519 signature over the body)``. The key id is the first four
bytes of ``SHA-256(name || 0x0A || 0x01 || public key)``, and a verifier is told the key as a
*vkey*: ``<name>+<8 hex key id>+<base64(0x01 || public key)>``, the form golang.org/x/mod/sumdb/note
reads, so any C2SP tool can check Meridian's checkpoints.

Opening is strict: a note that is not byte for byte what :class:`NoteSigner` would write for
some checkpoint — a control character, a non-canonical base64 character, a fifth body line — is
a :class:`~meridian.errors.ProofError`. Signatures from other keys (a witness's cosignature) are
ignored, as the specification requires, but at least one must be this key's and every one that
claims to be this key's must verify.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import re
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from ..errors import InputError, ProofError, shown
from ..keyfiles import load_or_create_ed25519

__all__ = [
    "Checkpoint",
    "NoteSigner",
    "NoteVerifier",
    "key_id",
    "load_or_create_log_key",
    "peek_checkpoint",
    "public_vkey",
]

#: the signature type byte of an Ed25519 note signature (c2sp.org/signed-note)
_ED25519 = b"\x01"
_SIG_PREFIX = "— "  # em dash U+2014, then a space
#: more signature lines than this make a note malformed (golang.org/x/mod/sumdb/note's limit)
_MAX_SIGNATURES = 100
#: a tree size must fit the uint64 the reference implementation parses it into (int64 here)
_MAX_SIZE = 2**63 - 1
_SIZE = re.compile(r"0|[1-9][0-9]{0,18}")
_TIME = re.compile(r"time ([0-9]{4})-([0-9]{2})-([0-9]{2})T([0-9]{2}):([0-9]{2}):([0-9]{2})Z")
_HEX_ID = re.compile(r"[0-9a-f]{8}")
#: control characters a signed note must not hold (newline aside)
_CONTROL = re.compile(r"[\x00-\x09\x0b-\x1f]")


def _name_problem(name: str) -> str | None:
    """Why ``name`` cannot be a note key name (or a checkpoint origin), or None if it can."""
    if not name:
        return "it is empty"
    if any(ch.isspace() for ch in name):
        return "it contains a space"
    if "+" in name:
        return "it contains `+`"
    if _CONTROL.search(name) or "\x7f" in name:
        return "it contains a control character"
    return None


def _b64decode(text: str) -> bytes | None:
    """Standard padded base64 in its one canonical spelling, or None.

    Re-encoding and comparing refuses the spellings ``b64decode`` tolerates: unused low bits set
    in the last character, which would let a byte flip leave a signature's bytes unchanged.
    """
    try:
        raw = base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError):
        return None
    return raw if base64.b64encode(raw).decode("ascii") == text else None


def _raw_public(key: Ed25519PublicKey) -> bytes:
    return key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)


def key_id(name: str, public_key: Ed25519PublicKey) -> bytes:
    """The 4-byte key id: ``SHA-256(name || 0x0A || 0x01 || public key)[:4]``."""
    material = name.encode() + b"\n" + _ED25519 + _raw_public(public_key)
    return hashlib.sha256(material).digest()[:4]


def public_vkey(name: str, public_key: Ed25519PublicKey) -> str:
    """The verifier key text: ``<name>+<8 hex key id>+<base64(0x01 || public key)>``."""
    problem = _name_problem(name)
    if problem is not None:
        raise InputError(f"log key name `{shown(name)}` is not usable: {problem}")
    encoded = base64.b64encode(_ED25519 + _raw_public(public_key)).decode("ascii")
    return f"{name}+{key_id(name, public_key).hex()}+{encoded}"


@dataclass(frozen=True, slots=True)
class Checkpoint:
    """A tree head: the log ``origin`` had ``size`` entries with Merkle ``root`` at ``time``.

    ``time`` must be timezone-aware; it is kept in UTC to the second, as the body writes it
    (a finer instant is truncated here, so the value is exactly what gets signed).
    """

    origin: str
    size: int
    root: bytes
    time: datetime

    def __post_init__(self) -> None:
        problem = _name_problem(self.origin)
        if problem is not None:
            raise InputError(f"checkpoint origin `{shown(self.origin)}` is not usable: {problem}")
        if isinstance(self.size, bool) or not isinstance(self.size, int):
            raise InputError(f"checkpoint size `{shown(self.size)}` is not an integer")
        if not 0 <= self.size <= _MAX_SIZE:
            raise InputError(f"checkpoint size `{self.size}` is out of range")
        if not isinstance(self.root, bytes) or len(self.root) != 32:
            raise InputError("checkpoint root must be 32 bytes")
        if not isinstance(self.time, datetime):
            raise InputError(f"checkpoint time `{shown(self.time)}` is not a datetime")
        if self.time.tzinfo is None or self.time.utcoffset() is None:
            raise InputError(f"checkpoint time `{self.time.isoformat()}` has no timezone")
        object.__setattr__(self, "time", self.time.astimezone(UTC).replace(microsecond=0))

    def body(self) -> bytes:
        """The note text the log signs: origin, size, base64 root and a ``time`` line."""
        t = self.time
        stamp = (
            f"{t.year:04d}-{t.month:02d}-{t.day:02d}T{t.hour:02d}:{t.minute:02d}:{t.second:02d}Z"
        )
        root = base64.b64encode(self.root).decode("ascii")
        return f"{self.origin}\n{self.size}\n{root}\ntime {stamp}\n".encode()

    @classmethod
    def parse_body(cls, body: bytes) -> Checkpoint:
        """The checkpoint whose :meth:`body` is exactly ``body``, or :class:`ProofError`."""
        try:
            text = body.decode("utf-8")
        except UnicodeDecodeError:
            raise ProofError("malformed checkpoint: not UTF-8") from None
        if not text.endswith("\n"):
            raise ProofError("malformed checkpoint: the body does not end with a newline")
        lines = text[:-1].split("\n")
        if len(lines) != 4:
            raise ProofError(
                f"malformed checkpoint: {len(lines)} body lines, expected 4 "
                "(origin, size, root, time)"
            )
        origin, size_text, root_text, time_text = lines
        problem = _name_problem(origin)
        if problem is not None:
            raise ProofError(f"malformed checkpoint: origin `{shown(origin)}`: {problem}")
        if not _SIZE.fullmatch(size_text) or int(size_text) > _MAX_SIZE:
            raise ProofError(f"malformed checkpoint: size `{shown(size_text)}` is not a tree size")
        root = _b64decode(root_text)
        if root is None or len(root) != 32:
            raise ProofError(
                f"malformed checkpoint: root `{shown(root_text)}` is not a base64 SHA-256 hash"
            )
        match = _TIME.fullmatch(time_text)
        if match is None:
            raise ProofError(
                f"malformed checkpoint: `{shown(time_text)}` is not a `time YYYY-MM-DDTHH:MM:SSZ` line"
            )
        try:
            year, month, day, hour, minute, second = (int(part) for part in match.groups())
            at = datetime(year, month, day, hour, minute, second, tzinfo=UTC)
        except ValueError:
            raise ProofError(f"malformed checkpoint: `{shown(time_text)}` is not a time") from None
        checkpoint = cls(origin=origin, size=int(size_text), root=root, time=at)
        # INVARIANT: what was parsed writes back to the same bytes (no second spelling passes).
        if checkpoint.body() != body:
            raise ProofError("malformed checkpoint: not in canonical form")
        return checkpoint


def _split_note(note: str | bytes) -> tuple[str, list[tuple[str, str]]]:
    """A note's text and its signature lines as ``(name, base64)``; ProofError if malformed.

    Follows golang.org/x/mod/sumdb/note ``Open``: the text ends at the last blank line, and
    everything after it is one or more signature lines.
    """
    if isinstance(note, bytes):
        try:
            note = note.decode("utf-8")
        except UnicodeDecodeError:
            raise ProofError("malformed note: not UTF-8") from None
    if not isinstance(note, str):
        raise ProofError("malformed note: not text")
    if _CONTROL.search(note):
        raise ProofError("malformed note: it contains a control character")
    split = note.rfind("\n\n")
    if split < 0:
        raise ProofError("malformed note: no blank line before the signatures")
    text, signatures = note[: split + 1], note[split + 2 :]
    if not signatures.endswith("\n"):
        raise ProofError("malformed note: the signature lines do not end with a newline")
    lines = signatures[:-1].split("\n")
    if len(lines) > _MAX_SIGNATURES:
        raise ProofError(f"malformed note: more than {_MAX_SIGNATURES} signatures")
    parsed: list[tuple[str, str]] = []
    for number, line in enumerate(lines, 1):
        if not line.startswith(_SIG_PREFIX):
            raise ProofError(f"malformed note: signature line {number} does not start with `— `")
        name, space, encoded = line[len(_SIG_PREFIX) :].partition(" ")
        if not space or _name_problem(name) is not None:
            raise ProofError(f"malformed note: signature line {number} has no valid key name")
        parsed.append((name, encoded))
    return text, parsed


def peek_checkpoint(note: str | bytes) -> Checkpoint:
    """The checkpoint a note carries, WITHOUT checking any signature.

    Only for ordering or display of notes that are verified elsewhere (the export writer sorts
    checkpoints by it); trusting its result is the bug :meth:`NoteVerifier.open` exists to avoid.
    """
    text, _ = _split_note(note)
    return Checkpoint.parse_body(text.encode())


class NoteSigner:
    """The log's side: signs checkpoints with its Ed25519 key under the key name ``name``."""

    def __init__(self, name: str, key: Ed25519PrivateKey) -> None:
        problem = _name_problem(name)
        if problem is not None:
            raise InputError(f"log key name `{shown(name)}` is not usable: {problem}")
        self.name = name
        self._key = key
        self.key_id = key_id(name, key.public_key())

    def verifier_key(self) -> str:
        """The vkey a verifier is given: ``<name>+<8 hex key id>+<base64(0x01 || key)>``."""
        return public_vkey(self.name, self._key.public_key())

    def sign_text(self, text: bytes) -> str:
        """Any note text (ending in a newline), signed: the text, a blank line, one signature."""
        if not text.endswith(b"\n"):
            raise InputError("a note's text must end with a newline")
        signature = base64.b64encode(self.key_id + self._key.sign(text)).decode("ascii")
        return f"{text.decode()}\n{_SIG_PREFIX}{self.name} {signature}\n"

    def sign(self, checkpoint: Checkpoint) -> str:
        """``checkpoint`` as a signed note; its origin must be this key's name."""
        if checkpoint.origin != self.name:
            raise InputError(
                f"checkpoint origin `{shown(checkpoint.origin)}` is not the log key's name "
                f"`{shown(self.name)}`"
            )
        return self.sign_text(checkpoint.body())


class NoteVerifier:
    """Anyone's side: opens notes signed by one trusted key (given as a vkey)."""

    def __init__(self, name: str, public_key: Ed25519PublicKey) -> None:
        problem = _name_problem(name)
        if problem is not None:
            raise InputError(f"log key name `{shown(name)}` is not usable: {problem}")
        self.name = name
        self.public_key = public_key
        self.key_id = key_id(name, public_key)

    @classmethod
    def from_vkey(cls, text: str) -> NoteVerifier:
        """The verifier for a vkey ``<name>+<8 hex key id>+<base64(0x01 || key)>``.

        Surrounding whitespace (a newline from a file) is ignored; anything else that is not
        exactly that form is an :class:`InputError`.
        """
        if not isinstance(text, str):
            raise InputError("log verifier key must be text")
        vkey = text.strip()
        where = f"log verifier key `{shown(vkey)}`"
        parts = vkey.split("+", 2)  # the base64 key may itself hold `+`
        if len(parts) != 3:
            raise InputError(f"{where} is malformed: expected `<name>+<key id>+<key>`")
        name, hex_id, encoded = parts
        problem = _name_problem(name)
        if problem is not None:
            raise InputError(f"{where} is malformed: its name is not usable: {problem}")
        if not _HEX_ID.fullmatch(hex_id):
            raise InputError(f"{where} is malformed: the key id is not 8 lowercase hex digits")
        raw = _b64decode(encoded)
        if raw is None:
            raise InputError(f"{where} is malformed: the key is not canonical base64")
        if len(raw) != 33 or raw[:1] != _ED25519:
            raise InputError(f"{where} is malformed: not an Ed25519 key (0x01 and 32 bytes)")
        try:
            public_key = Ed25519PublicKey.from_public_bytes(raw[1:])
        except ValueError:
            raise InputError(f"{where} is malformed: not an Ed25519 public key") from None
        verifier = cls(name, public_key)
        if verifier.key_id.hex() != hex_id:
            raise InputError(
                f"{where} is malformed: key id `{hex_id}` does not match its key "
                f"(`{verifier.key_id.hex()}`)"
            )
        return verifier

    def verifier_key(self) -> str:
        return public_vkey(self.name, self.public_key)

    def open_text(self, note: str | bytes) -> bytes:
        """The text of ``note`` once this key's signature on it verifies, or :class:`ProofError`."""
        text, signatures = _split_note(note)
        body = text.encode()
        verified = False
        for name, encoded in signatures:
            raw = _b64decode(encoded)
            if raw is None or len(raw) < 5:
                raise ProofError(f"malformed note: signature by `{shown(name)}` is not base64")
            if name != self.name or raw[:4] != self.key_id:
                continue  # another key's signature (a witness, a rotated key): ignored
            try:
                self.public_key.verify(raw[4:], body)
            except InvalidSignature:
                raise ProofError(
                    f"bad signature: the note's signature by `{shown(self.name)}` does not verify"
                ) from None
            verified = True
        if not verified:
            raise ProofError(
                f"unknown key: the note carries no signature by "
                f"`{shown(self.name)}+{self.key_id.hex()}`"
            )
        return body

    def open(self, note: str | bytes) -> Checkpoint:
        """The checkpoint in ``note``, signed by this key and with this key's name as origin.

        Any failure is a :class:`ProofError` whose message starts with what failed: ``malformed
        note``, ``malformed checkpoint``, ``unknown key``, ``bad signature`` or ``origin mismatch``.
        """
        checkpoint = Checkpoint.parse_body(self.open_text(note))
        if checkpoint.origin != self.name:
            raise ProofError(
                f"origin mismatch: checkpoint origin `{shown(checkpoint.origin)}` is not "
                f"the log key's name `{shown(self.name)}`"
            )
        return checkpoint


def load_or_create_log_key(path: Path, *, create: bool) -> Ed25519PrivateKey:
    """The log's checkpoint-signing key from ``path`` (PEM, PKCS#8, mode 0600).

    With ``create`` (development mode) a missing key is generated; otherwise a missing key is a
    :class:`ConfigurationError`: production never invents one.
    """
    return load_or_create_ed25519(
        path, create=create, what="log signing key", setting="MERIDIAN_LOG_KEY"
    )
