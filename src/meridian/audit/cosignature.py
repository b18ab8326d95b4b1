"""Witness cosignatures on checkpoints: C2SP ``cosignature/v1`` (c2sp.org/tlog-cosignature).

A witness that has checked a checkpoint is consistent with every earlier one it saw for the same
log adds its own signature line to the note::

    — witness.example/w1 base64(key id || u64 timestamp || Ed25519 signature)

The key id is ``SHA-256(name || 0x0A || 0x04 || public key)[:4]`` (type byte 0x04, so a
witness key can never be mistaken for a log key, type 0x01), and the signed message is the
header line ``cosignature/v1``, a ``time <seconds>`` line with the timestamp, then the whole note
body (the checkpoint with its extension lines, without the signatures). A witness key is given as
a vkey, ``<name>+<8 hex key id>+<base64(0x04 || public key)>``.

:func:`verify_cosignatures` is what a client calls: it checks the note's lines by each trusted
witness and requires ``quorum`` of them; the log's own signature is checked separately, with
:class:`~meridian.audit.note.NoteVerifier`.
"""

from __future__ import annotations

import base64
import hashlib
import struct
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from ..errors import InputError, ProofError, shown
from .note import _b64decode, _name_problem, _split_note

__all__ = [
    "Cosignature",
    "CosignatureCheck",
    "Cosigner",
    "WitnessKey",
    "cosignatures",
    "cosigned_message",
    "verify_cosignatures",
]

#: the signature type byte of a cosignature/v1 key (c2sp.org/tlog-cosignature)
COSIGNATURE_V1 = b"\x04"
_HEADER = b"cosignature/v1\n"
_SIG_PREFIX = "— "
#: the largest timestamp the specification allows (2**63 - 1)
_MAX_TIME = 2**63 - 1


def _raw_public(key: Ed25519PublicKey) -> bytes:
    return key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)


def _key_id(name: str, key: Ed25519PublicKey) -> bytes:
    return hashlib.sha256(name.encode() + b"\n" + COSIGNATURE_V1 + _raw_public(key)).digest()[:4]


def cosigned_message(body: bytes, timestamp: int) -> bytes:
    """What a cosignature/v1 signs: the header, ``time <timestamp>``, then the note body."""
    return _HEADER + b"time %d\n" % timestamp + body


@dataclass(frozen=True, slots=True)
class WitnessKey:
    """A witness's public key under its name, as a client trusts it."""

    name: str
    public_key: Ed25519PublicKey

    @property
    def key_id(self) -> bytes:
        return _key_id(self.name, self.public_key)

    @property
    def vkey(self) -> str:
        """``<name>+<8 hex key id>+<base64(0x04 || public key)>``."""
        encoded = base64.b64encode(COSIGNATURE_V1 + _raw_public(self.public_key)).decode()
        return f"{self.name}+{self.key_id.hex()}+{encoded}"

    @classmethod
    def from_vkey(cls, text: str) -> WitnessKey:
        """The key a vkey names; :class:`InputError` saying why for anything else."""
        if not isinstance(text, str):
            raise InputError("witness key must be text")
        vkey = text.strip()
        where = f"witness key `{shown(vkey)}`"
        parts = vkey.split("+", 2)
        if len(parts) != 3:
            raise InputError(f"{where} is malformed: expected `<name>+<key id>+<key>`")
        name, hex_id, encoded = parts
        problem = _name_problem(name)
        if problem is not None:
            raise InputError(f"{where} is malformed: its name is not usable: {problem}")
        raw = _b64decode(encoded)
        if raw is None or len(raw) != 33 or raw[:1] != COSIGNATURE_V1:
            raise InputError(
                f"{where} is malformed: not a cosignature/v1 key (0x04 and 32 bytes of Ed25519)"
            )
        try:
            key = cls(name, Ed25519PublicKey.from_public_bytes(raw[1:]))
        except ValueError:
            raise InputError(f"{where} is malformed: not an Ed25519 public key") from None
        if key.key_id.hex() != hex_id:
            raise InputError(
                f"{where} is malformed: key id `{shown(hex_id)}` does not match its key "
                f"(`{key.key_id.hex()}`)"
            )
        return key


class Cosigner:
    """A witness's side: cosigns note bodies with its Ed25519 key under its name."""

    def __init__(self, name: str, key: Ed25519PrivateKey) -> None:
        problem = _name_problem(name)
        if problem is not None:
            raise InputError(f"witness name `{shown(name)}` is not usable: {problem}")
        self.name = name
        self._key = key
        self.public = WitnessKey(name, key.public_key())

    def line(self, body: bytes, timestamp: int) -> str:
        """The signature line cosigning the note body ``body`` at ``timestamp`` (POSIX seconds)."""
        if not 0 < timestamp <= _MAX_TIME:
            raise InputError(f"cosignature timestamp `{timestamp}` is out of range")
        signature = self._key.sign(cosigned_message(body, timestamp))
        raw = self.public.key_id + struct.pack(">Q", timestamp) + signature
        return f"{_SIG_PREFIX}{self.name} {base64.b64encode(raw).decode()}\n"


@dataclass(frozen=True, slots=True)
class Cosignature:
    """One witness's valid cosignature on a note: who, and when it signed (POSIX seconds)."""

    witness: str
    timestamp: int


@dataclass(frozen=True, slots=True)
class CosignatureCheck:
    """What :func:`cosignatures` found: the valid cosignatures, and the witnesses with none."""

    valid: tuple[Cosignature, ...]
    #: names of the trusted witnesses whose cosignature is absent
    missing: tuple[str, ...]
    #: names of the trusted witnesses whose line is there but does not verify
    invalid: tuple[str, ...]


def cosignatures(note: str | bytes, witnesses: Iterable[WitnessKey]) -> CosignatureCheck:
    """Check the lines of ``note`` by each trusted witness; lines by other keys are ignored.

    A malformed note is a :class:`ProofError`; a witness's bad line is reported in ``invalid``.
    """
    text, lines = _split_note(note)
    body = text.encode()
    valid: list[Cosignature] = []
    missing: list[str] = []
    invalid: list[str] = []
    for witness in witnesses:
        found: Cosignature | None = None
        bad = False
        for name, encoded in lines:
            raw = _b64decode(encoded)
            if name != witness.name or raw is None or raw[:4] != witness.key_id:
                continue
            if len(raw) != 4 + 8 + 64:
                bad = True
                continue
            (timestamp,) = struct.unpack(">Q", raw[4:12])
            try:
                if timestamp > _MAX_TIME:
                    raise InvalidSignature
                witness.public_key.verify(raw[12:], cosigned_message(body, timestamp))
            except InvalidSignature:
                bad = True
                continue
            if found is None or timestamp > found.timestamp:
                found = Cosignature(witness.name, timestamp)
        if found is not None:
            valid.append(found)
        elif bad:
            invalid.append(witness.name)
        else:
            missing.append(witness.name)
    return CosignatureCheck(tuple(valid), tuple(missing), tuple(invalid))


def verify_cosignatures(
    note: str | bytes, witnesses: Sequence[WitnessKey], *, quorum: int
) -> tuple[Cosignature, ...]:
    """The valid cosignatures on ``note`` by the trusted ``witnesses``, if at least ``quorum``.

    Otherwise a :class:`ProofError` that names the witnesses whose cosignature is missing or
    does not verify. Only cosignatures are checked: open the note with the log's key as well.
    """
    names = [w.name for w in witnesses]
    if len(set(names)) != len(names):
        raise InputError("witness keys must have distinct names")
    if not 0 < quorum <= len(witnesses):
        raise InputError(f"quorum `{quorum}` must be between 1 and the {len(witnesses)} witnesses")
    check = cosignatures(note, witnesses)
    if len(check.valid) >= quorum:
        return check.valid
    reasons = [f"`{shown(n)}` has not cosigned it" for n in check.missing]
    reasons += [f"`{shown(n)}`'s cosignature does not verify" for n in check.invalid]
    raise ProofError(
        f"cosignature quorum not met: {len(check.valid)} of {quorum} required: "
        + "; ".join(reasons)
    )
