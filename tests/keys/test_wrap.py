"""Key wrapping through the real X25519 + HKDF-SHA256 + AES-256-GCM path.

A wrapped key opens for its recipient and its exact context, and for nothing else: another
participant, meeting, region or epoch, another private key, or any one byte changed. Each of
those is tried on 1,000 fresh wraps from a seeded generator, each wrap first shown to open.
"""

from __future__ import annotations

import json
import random
from collections.abc import Callable
from dataclasses import replace

import pytest
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey, X25519PublicKey
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from hypothesis import given
from hypothesis import strategies as st

from meridian.errors import InputError, MeridianError, UnwrapError
from meridian.keys.wrap import (
    KeyContext,
    WrappedKey,
    b64url,
    from_b64url,
    public_bytes,
    unwrap_key,
    wrap_key,
)

TRIALS = 1000
REGIONS = ["AU", "LA", "CA", "CN", "DE", "HK", "IN", "IE", "TY", "MX", "NL", "SG", "US"]
UNWRAP_FAILED = "wrapped key does not open: wrong recipient, context or bytes"


def assert_one_line(error: MeridianError) -> None:
    """Meridian's message style: one line, lowercase start, no final period."""
    message = str(error)
    assert message
    assert "\n" not in message
    assert not message.endswith(".")
    assert message[0].islower() or message[0] == "`", message


def flip(data: bytes, rng: random.Random) -> bytes:
    """``data`` with one byte changed (xor with a non-zero value) at a random position."""
    changed = bytearray(data)
    changed[rng.randrange(len(changed))] ^= rng.randrange(1, 256)
    return bytes(changed)


def other(rng: random.Random, make: Callable[[], str], current: str) -> str:
    while (value := make()) == current:
        pass
    return value


def random_context(rng: random.Random) -> KeyContext:
    return KeyContext(
        meeting=f"mtg_{rng.randbytes(6).hex()}",
        participant=f"p_{rng.randbytes(6).hex()}",
        region=rng.choice(REGIONS),
        epoch=rng.choice([0, 1, rng.randrange(2**32)]),
    )


def near_id(rng: random.Random, value: str) -> str:
    """Either a fresh id or ``value`` with one character changed, appended or dropped."""
    chars = list(value)
    match rng.randrange(4):
        case 0:
            chars[rng.randrange(len(chars))] = rng.choice("0123456789abcdef_X")
        case 1:
            chars.append(rng.choice("0123456789abcdef"))
        case 2:
            del chars[-1]
        case _:
            return f"{value.split('_')[0]}_{rng.randbytes(6).hex()}"
    return "".join(chars)


# Each mutation takes a valid (wrapped, private key, context) and returns one that must fail.
Trial = tuple[WrappedKey, X25519PrivateKey, KeyContext]


def _participant(rng: random.Random, w: WrappedKey, k: X25519PrivateKey, c: KeyContext) -> Trial:
    return (
        w,
        k,
        replace(c, participant=other(rng, lambda: near_id(rng, c.participant), c.participant)),
    )


def _meeting(rng: random.Random, w: WrappedKey, k: X25519PrivateKey, c: KeyContext) -> Trial:
    return w, k, replace(c, meeting=other(rng, lambda: near_id(rng, c.meeting), c.meeting))


def _region(rng: random.Random, w: WrappedKey, k: X25519PrivateKey, c: KeyContext) -> Trial:
    return w, k, replace(c, region=other(rng, lambda: rng.choice(REGIONS), c.region))


def _epoch(rng: random.Random, w: WrappedKey, k: X25519PrivateKey, c: KeyContext) -> Trial:
    # the next epoch half the time: a rotation is the case that matters most
    candidates = [c.epoch + 1, c.epoch - 1, rng.randrange(2**32)]
    epoch = rng.choice([e for e in candidates if 0 <= e < 2**32 and e != c.epoch])
    return w, k, replace(c, epoch=epoch)


def _recipient(rng: random.Random, w: WrappedKey, k: X25519PrivateKey, c: KeyContext) -> Trial:
    return w, X25519PrivateKey.from_private_bytes(rng.randbytes(32)), c


def _epk(rng: random.Random, w: WrappedKey, k: X25519PrivateKey, c: KeyContext) -> Trial:
    return replace(w, epk=flip(w.epk, rng)), k, c


def _nonce(rng: random.Random, w: WrappedKey, k: X25519PrivateKey, c: KeyContext) -> Trial:
    return replace(w, nonce=flip(w.nonce, rng)), k, c


def _ct(rng: random.Random, w: WrappedKey, k: X25519PrivateKey, c: KeyContext) -> Trial:
    return replace(w, ct=flip(w.ct, rng)), k, c


MUTATIONS = {
    "another-participant": _participant,
    "another-meeting": _meeting,
    "another-region": _region,
    "another-epoch": _epoch,
    "another-recipient-key": _recipient,
    "a-byte-of-epk": _epk,
    "a-byte-of-nonce": _nonce,
    "a-byte-of-ct": _ct,
}


@pytest.mark.parametrize("name", list(MUTATIONS), ids=list(MUTATIONS))
def test_a_wrapped_key_opens_for_its_context_and_nothing_else(name: str) -> None:
    mutate = MUTATIONS[name]
    rng = random.Random(f"meridian-wrap-{name}")
    for _ in range(TRIALS):
        private = X25519PrivateKey.from_private_bytes(rng.randbytes(32))
        context = random_context(rng)
        key = rng.randbytes(32)
        wrapped = wrap_key(key, public_bytes(private), context)
        assert unwrap_key(wrapped, private, context) == key
        bad_wrapped, bad_private, bad_context = mutate(rng, wrapped, private, context)
        assert (bad_wrapped, bad_context) != (wrapped, context) or bad_private is not private
        with pytest.raises(UnwrapError) as caught:
            unwrap_key(bad_wrapped, bad_private, bad_context)
        assert str(caught.value) == UNWRAP_FAILED


def test_the_ignored_top_bit_of_epk_still_changes_the_wrapping_key() -> None:
    """X25519 masks bit 255 of a u-coordinate, so this `epk` gives the same shared secret:
    only hashing the exact `epk` bytes into the HKDF salt makes it fail."""
    private = X25519PrivateKey.generate()
    context = KeyContext("mtg_a", "p_a", "US", 0)
    wrapped = wrap_key(bytes(32), public_bytes(private), context)
    twin = wrapped.epk[:31] + bytes([wrapped.epk[31] ^ 0x80])
    ephemeral_view = X25519PublicKey.from_public_bytes
    assert private.exchange(ephemeral_view(twin)) == private.exchange(ephemeral_view(wrapped.epk))
    with pytest.raises(UnwrapError):
        unwrap_key(replace(wrapped, epk=twin), private, context)


def test_a_low_order_epk_does_not_open() -> None:
    private = X25519PrivateKey.generate()
    context = KeyContext("mtg_a", "p_a", "US", 0)
    wrapped = wrap_key(bytes(32), public_bytes(private), context)
    with pytest.raises(UnwrapError) as caught:
        unwrap_key(replace(wrapped, epk=bytes(32)), private, context)
    assert str(caught.value) == UNWRAP_FAILED


def test_wrapping_follows_the_contract_step_by_step() -> None:
    """Open a wrap by hand from docs/data-plane.md §Keys, without calling unwrap_key."""
    private = X25519PrivateKey.generate()
    recipient = public_bytes(private)
    context = KeyContext("mtg_ü", "p_1", "DE", 7)
    key = bytes(range(32))
    wrapped = wrap_key(key, recipient, context)
    shared = private.exchange(X25519PublicKey.from_public_bytes(wrapped.epk))
    aes_key = HKDF(
        algorithm=hashes.SHA256(),
        length=32,
        salt=wrapped.epk + recipient,
        info=b"meridian key wrap v1",
    ).derive(shared)
    aad = '{"epoch":7,"meeting":"mtg_ü","participant":"p_1","region":"DE"}'.encode()
    assert AESGCM(aes_key).decrypt(wrapped.nonce, wrapped.ct, aad) == key
    assert (len(wrapped.epk), len(wrapped.nonce), len(wrapped.ct)) == (32, 12, 48)


def test_each_wrap_uses_a_fresh_ephemeral_key_and_nonce() -> None:
    private = X25519PrivateKey.generate()
    context = KeyContext("mtg_a", "p_a", "US", 0)
    first, second = (wrap_key(bytes(32), public_bytes(private), context) for _ in range(2))
    assert first.epk != second.epk
    assert first.nonce != second.nonce
    assert first.ct != second.ct


def test_the_associated_data_is_canonical_json() -> None:
    context = KeyContext(meeting="mtg_1", participant='p_"é', region="US", epoch=42)
    assert context.aad() == (
        b'{"epoch":42,"meeting":"mtg_1","participant":"p_\\"\xc3\xa9","region":"US"}'
    )


@given(
    meeting=st.text(min_size=1),
    participant=st.text(min_size=1),
    region=st.text(min_size=1, max_size=3),
    epoch=st.integers(0, 2**32 - 1),
)
def test_any_context_round_trips_and_its_aad_reads_back(
    meeting: str, participant: str, region: str, epoch: int
) -> None:
    context = KeyContext(meeting, participant, region, epoch)
    fields = json.loads(context.aad())
    assert fields == {
        "epoch": epoch,
        "meeting": meeting,
        "participant": participant,
        "region": region,
    }
    assert list(fields) == sorted(fields)
    private = X25519PrivateKey.generate()
    wrapped = wrap_key(b"k" * 32, public_bytes(private), context)
    assert unwrap_key(WrappedKey.from_json(wrapped.to_json()), private, context) == b"k" * 32


@pytest.mark.parametrize(
    ("fields", "needle"),
    [
        ({"epoch": -1}, "epoch `-1`"),
        ({"epoch": 2**32}, "epoch `4294967296`"),
        ({"epoch": True}, "epoch `true`"),
        ({"epoch": "1"}, "epoch `1`"),
        ({"meeting": ""}, "meeting id ``"),
        ({"participant": "p_\ud800"}, "participant id"),
        ({"region": None}, "region `null`"),
    ],
    ids=["negative", "too-big", "bool", "string-epoch", "empty", "lone-surrogate", "none"],
)
def test_a_context_refuses_what_cannot_be_bound(fields: dict[str, object], needle: str) -> None:
    base: dict[str, object] = {"meeting": "mtg_a", "participant": "p_a", "region": "US", "epoch": 0}
    with pytest.raises(InputError) as caught:
        KeyContext(**{**base, **fields})  # type: ignore[arg-type]
    assert needle in str(caught.value)
    assert_one_line(caught.value)


# -- the wire form ------------------------------------------------------------------------------


def test_the_wire_form_is_unpadded_base64url_and_round_trips() -> None:
    wrapped = wrap_key(
        bytes(32), public_bytes(X25519PrivateKey.generate()), KeyContext("m", "p", "US", 0)
    )
    wire = wrapped.to_json()
    assert set(wire) == {"epk", "nonce", "ct"}
    assert all("=" not in v and "+" not in v and "/" not in v for v in wire.values())
    assert (len(wire["epk"]), len(wire["nonce"]), len(wire["ct"])) == (43, 16, 64)
    assert WrappedKey.from_json(json.loads(json.dumps(wire))) == wrapped


def _wire() -> dict[str, object]:
    return {"epk": b64url(bytes(32)), "nonce": b64url(bytes(12)), "ct": b64url(bytes(48))}


MALFORMED: dict[str, tuple[object, str]] = {
    "not-an-object": ("epk", "wrapped key must be an object"),
    "a-list": ([1, 2, 3], "wrapped key must be an object"),
    "null": (None, "wrapped key must be an object"),
    "missing-epk": ({"nonce": "AAAA", "ct": "AAAA"}, "wrapped key is missing `epk`"),
    "unknown-field": ({**_wire(), "v": 2}, "wrapped key has unknown field `v`"),
    "number": ({**_wire(), "nonce": 12}, "wrapped key `nonce` must be a base64url string"),
    "bad-characters": ({**_wire(), "epk": "!!!!"}, "is not unpadded base64url"),
    "padded": ({**_wire(), "nonce": b64url(bytes(12))[:-2] + "=="}, "is not unpadded base64url"),
    "standard-alphabet": ({**_wire(), "ct": "+/" + b64url(bytes(48))[2:]}, "is not unpadded"),
    "impossible-length": ({**_wire(), "epk": "A" * 41}, "is not unpadded base64url"),
    "stray-bits": ({**_wire(), "epk": "A" * 42 + "B"}, "not canonical unpadded base64url"),
    "short-epk": ({**_wire(), "epk": b64url(bytes(31))}, "`epk` must be 32 bytes, not 31"),
    "long-nonce": ({**_wire(), "nonce": b64url(bytes(13))}, "`nonce` must be 12 bytes, not 13"),
    "short-ct": ({**_wire(), "ct": b64url(bytes(47))}, "`ct` must be 48 bytes, not 47"),
    "empty-ct": ({**_wire(), "ct": ""}, "`ct` must be 48 bytes, not 0"),
}


@pytest.mark.parametrize(("data", "needle"), list(MALFORMED.values()), ids=list(MALFORMED))
def test_a_malformed_wire_form_is_refused_in_one_line(data: object, needle: str) -> None:
    with pytest.raises(InputError) as caught:
        WrappedKey.from_json(data)
    assert needle in str(caught.value)
    assert_one_line(caught.value)


@given(st.binary(max_size=80))
def test_base64url_round_trips_and_has_one_spelling(data: bytes) -> None:
    text = b64url(data)
    assert from_b64url(text) == data
    assert "=" not in text


@pytest.mark.parametrize(
    ("key", "public", "needle"),
    [
        (bytes(31), public_bytes(X25519PrivateKey.generate()), "key to wrap must be 32 bytes"),
        (bytes(32), bytes(31), "public key must be 32 bytes"),
        (bytes(32), "not bytes", "public key must be 32 bytes of x25519, not `str`"),
        (bytes(32), bytes(32), "is a low-order x25519 point"),
        (bytes(32), b"\x01" + bytes(31), "is a low-order x25519 point"),
    ],
    ids=["short-key", "short-public-key", "str-public-key", "zero-point", "order-4-point"],
)
def test_wrapping_refuses_a_bad_key_or_recipient(key: bytes, public: bytes, needle: str) -> None:
    with pytest.raises(InputError) as caught:
        wrap_key(key, public, KeyContext("m", "p", "US", 0))
    assert needle in str(caught.value).lower()
    assert_one_line(caught.value)
