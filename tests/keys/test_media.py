"""Meeting keys, sender keys and signed, sealed frames, through the real HKDF, AES-256-GCM and
Ed25519 path.

A frame opens only with its sender's key of its epoch, in its meeting, and is accepted only when
its sender's signing key (from the roster) signed it; any byte changed or any byte missing makes
it fail. A relay can read the header of a sealed frame and nothing else.
"""

from __future__ import annotations

import random

import pytest
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from hypothesis import given
from hypothesis import strategies as st

from meridian.errors import InputError, MeridianError, UnwrapError
from meridian.keys.media import (
    FRAME_GRACE_SECONDS,
    DropReason,
    FrameDroppedError,
    FrameHeader,
    FrameKind,
    SenderKeys,
    SenderRoster,
    meeting_key_from_master,
    open_frame,
    parse_header,
    seal_frame,
    sender_key,
    verify_frame,
)

TRIALS = 1000
MASTER = bytes(range(32))
MEETING = "mtg_7f3a"
SIGNER = Ed25519PrivateKey.generate()


def assert_one_line(error: MeridianError) -> None:
    message = str(error)
    assert message
    assert "\n" not in message
    assert not message.endswith(".")
    assert message[0].islower() or message[0] == "`", message


def hkdf(key: bytes, info: str) -> bytes:
    return HKDF(algorithm=hashes.SHA256(), length=32, salt=None, info=info.encode()).derive(key)


def key_of(sender: str, epoch: int = 0, meeting: str = MEETING) -> bytes:
    return sender_key(meeting_key_from_master(MASTER, meeting, epoch), meeting, sender, epoch)


def seal(
    sender: str = "p_alice",
    *,
    epoch: int = 0,
    kind: FrameKind = FrameKind.MEDIA,
    payload: bytes = b"opus frame",
) -> bytes:
    return seal_frame(
        key_of(sender, epoch),
        meeting=MEETING,
        sender=sender,
        epoch=epoch,
        kind=kind,
        payload=payload,
        signing_key=SIGNER,
    )


def check(key: bytes, frame: bytes, meeting: str = MEETING) -> bytes:
    """What a receiver does: the signature first, then the decryption."""
    verify_frame(SIGNER.public_key(), meeting=meeting, frame=frame)
    return open_frame(key, meeting=meeting, frame=frame)[1]


# -- the key ladder -----------------------------------------------------------------------------


def test_the_key_ladder_follows_the_contract() -> None:
    meeting_key = meeting_key_from_master(MASTER, MEETING, 3)
    assert meeting_key == hkdf(MASTER, "meridian meeting key v1|mtg_7f3a|3")
    assert sender_key(meeting_key, MEETING, "p_bob", 3) == hkdf(
        meeting_key, "meridian sender key v1|mtg_7f3a|p_bob|3"
    )


def test_every_meeting_epoch_and_sender_has_its_own_key() -> None:
    meeting_keys = {
        meeting_key_from_master(MASTER, meeting, epoch)
        for meeting in ("m1", "m2", "m1|2", "m12")
        for epoch in (0, 1, 2, 12, 2**32 - 1)
    }
    assert len(meeting_keys) == 20
    senders = {key_of(sender, epoch) for sender in ("a", "b", "a|0") for epoch in (0, 1)}
    assert len(senders) == 6
    assert meeting_key_from_master(bytes(32), MEETING, 0) != meeting_key_from_master(
        MASTER, MEETING, 0
    )


@pytest.mark.parametrize(
    ("call", "needle"),
    [
        (lambda: meeting_key_from_master(bytes(16), MEETING, 0), "master key must be 32 bytes"),
        (lambda: meeting_key_from_master(MASTER, "", 0), "meeting id ``"),
        (lambda: meeting_key_from_master(MASTER, MEETING, -1), "epoch `-1`"),
        (lambda: sender_key(bytes(31), MEETING, "p", 0), "meeting key must be 32 bytes"),
        (lambda: sender_key(MASTER, MEETING, "x" * 256, 0), "is 256 utf-8 bytes"),
        (lambda: sender_key(MASTER, MEETING, "p", 2**32), "epoch `4294967296`"),
    ],
    ids=[
        "short-master",
        "empty-meeting",
        "negative-epoch",
        "short-meeting-key",
        "long-sender",
        "big-epoch",
    ],
)
def test_derivation_refuses_bad_inputs(call: object, needle: str) -> None:
    assert callable(call)
    with pytest.raises(InputError) as caught:
        call()
    assert needle in str(caught.value)
    assert_one_line(caught.value)


# -- frames -------------------------------------------------------------------------------------


@pytest.mark.parametrize("kind", list(FrameKind), ids=[k.name.lower() for k in FrameKind])
def test_a_frame_has_the_contract_layout_and_opens_by_hand(kind: FrameKind) -> None:
    frame = seal("p_é", epoch=0x01020304, kind=kind, payload=b"hello")
    header = b"MF2" + bytes([kind]) + b"\x01\x02\x03\x04" + b"\x04" + "p_é".encode()
    assert frame.startswith(header)
    assert len(frame) == len(header) + 12 + len(b"hello") + 16 + 64
    nonce, ct = frame[len(header) : len(header) + 12], frame[len(header) + 12 : -64]
    aad = header + MEETING.encode()
    assert AESGCM(key_of("p_é", 0x01020304)).decrypt(nonce, ct, aad) == b"hello"
    # the signature: Ed25519 over header || nonce || ciphertext+tag || meeting
    SIGNER.public_key().verify(frame[-64:], frame[:-64] + MEETING.encode())


def test_a_relay_reads_the_header_and_a_receiver_opens_the_frame() -> None:
    frame = seal("p_alice", epoch=5, kind=FrameKind.CHAT, payload=b"hi all")
    header = parse_header(frame)
    assert header == FrameHeader(kind=FrameKind.CHAT, epoch=5, sender="p_alice")
    assert open_frame(key_of(header.sender, header.epoch), meeting=MEETING, frame=frame) == (
        header,
        b"hi all",
    )


def test_an_empty_payload_seals_and_opens() -> None:
    frame = seal(payload=b"")
    assert open_frame(key_of("p_alice"), meeting=MEETING, frame=frame)[1] == b""


def test_sealing_twice_gives_different_frames() -> None:
    assert seal() != seal()


@pytest.mark.parametrize(
    ("key", "meeting"),
    [
        (key_of("p_bob"), MEETING),  # another sender's key
        (key_of("p_alice", epoch=1), MEETING),  # the next epoch's key
        (key_of("p_alice", meeting="mtg_other"), MEETING),  # another meeting's key
        (key_of("p_alice"), "mtg_other"),  # the right key, opened as another meeting
        (meeting_key_from_master(MASTER, MEETING, 0), MEETING),  # the meeting key itself
    ],
    ids=["other-sender", "other-epoch", "other-meeting-key", "other-meeting", "meeting-key"],
)
def test_a_frame_opens_only_with_its_sender_key_meeting_and_epoch(key: bytes, meeting: str) -> None:
    frame = seal("p_alice", epoch=0)
    assert open_frame(key_of("p_alice"), meeting=MEETING, frame=frame)[1] == b"opus frame"
    with pytest.raises(UnwrapError) as caught:
        open_frame(key, meeting=meeting, frame=frame)
    assert "sealed frame does not open" in str(caught.value)
    assert_one_line(caught.value)


def test_every_single_byte_change_is_refused() -> None:
    """Every position of a frame, each with several values; then 1,000 random changes."""
    rng = random.Random("meridian-frame-flips")
    key = key_of("p_alice", 9)
    frame = seal("p_alice", epoch=9, payload=b"a payload of some length")
    for position in range(len(frame)):
        for delta in (0x01, 0x80, 0xFF, rng.randrange(1, 256)):
            changed = bytearray(frame)
            changed[position] ^= delta
            with pytest.raises(UnwrapError):
                check(key, bytes(changed))
    for _ in range(TRIALS):
        sender = f"p_{rng.randbytes(rng.randrange(1, 8)).hex()}"
        epoch = rng.randrange(2**32)
        payload = rng.randbytes(rng.randrange(0, 200))
        key = key_of(sender, epoch)
        kind = rng.choice(list(FrameKind))
        frame = seal_frame(
            key,
            meeting=MEETING,
            sender=sender,
            epoch=epoch,
            kind=kind,
            payload=payload,
            signing_key=SIGNER,
        )
        assert check(key, frame) == payload
        changed = bytearray(frame)
        changed[rng.randrange(len(changed))] ^= rng.randrange(1, 256)
        with pytest.raises(UnwrapError):
            check(key, bytes(changed))


def test_a_relabelled_header_does_not_open_even_with_the_claimed_key() -> None:
    """Rewriting the sender (and using that sender's key) is caught: the header is bound."""
    frame = seal("p_alice")
    forged = frame.replace(b"\x07p_alice", b"\x07p_mallo", 1)
    assert parse_header(forged).sender == "p_mallo"
    with pytest.raises(UnwrapError):
        open_frame(key_of("p_mallo"), meeting=MEETING, frame=forged)


def test_every_truncation_is_refused() -> None:
    frame = seal(payload=b"xyz")
    for end in range(len(frame)):
        with pytest.raises(UnwrapError):
            check(key_of("p_alice"), frame[:end])
    with pytest.raises(UnwrapError):
        check(key_of("p_alice"), frame + b"\x00")


MALFORMED = {
    "empty": (b"", "does not start with `MF2`"),
    "old-version": (b"MF1\x02" + bytes(104), "does not start with `MF2`"),
    "unknown-kind": (b"MF2\x05" + bytes(104), "unknown kind `5`"),
    "empty-sender": (b"MF2\x01" + bytes(5) + bytes(92), "empty sender id"),
    "not-utf8-sender": (b"MF2\x01" + bytes(4) + b"\x01\xff" + bytes(92), "not utf-8"),
    "truncated-header": (b"MF2\x01\x00", "sealed frame is truncated: 5 bytes"),
    "truncated": (b"MF2\x01" + bytes(4) + b"\x05p_abc" + bytes(91), "truncated"),
    "sender-past-the-end": (b"MF2\x01" + bytes(4) + b"\xff" + b"p", "truncated"),
    "not-bytes": ("MF2", "must be bytes, not `str`"),
}


@pytest.mark.parametrize(("frame", "needle"), list(MALFORMED.values()), ids=list(MALFORMED))
def test_a_malformed_frame_is_refused_by_relay_and_receiver(frame: bytes, needle: str) -> None:
    with pytest.raises(InputError) as caught:
        parse_header(frame)
    assert needle in str(caught.value)
    assert_one_line(caught.value)
    with pytest.raises(UnwrapError) as opened:
        open_frame(key_of("p_alice"), meeting=MEETING, frame=frame)
    assert str(opened.value) == f"sealed frame does not open: {caught.value}"


@pytest.mark.parametrize(
    ("sender", "fits"),
    [("x" * 255, True), ("x" * 256, False), ("€" * 85, True), ("€" * 86, False), ("", False)],
    ids=["255-ascii", "256-ascii", "255-bytes-of-euro", "258-bytes-of-euro", "empty"],
)
def test_a_sender_id_fits_in_255_utf8_bytes(sender: str, fits: bool) -> None:
    key = bytes(32)
    if fits:
        frame = seal_frame(
            key,
            meeting=MEETING,
            sender=sender,
            epoch=0,
            kind=FrameKind.CHAT,
            payload=b"",
            signing_key=SIGNER,
        )
        assert parse_header(frame).sender == sender
        return
    with pytest.raises(InputError) as caught:
        seal_frame(
            key,
            meeting=MEETING,
            sender=sender,
            epoch=0,
            kind=FrameKind.CHAT,
            payload=b"",
            signing_key=SIGNER,
        )
    assert "sender id" in str(caught.value)
    assert_one_line(caught.value)


def test_sealing_refuses_an_unknown_kind_and_a_short_key() -> None:
    with pytest.raises(InputError, match="frame kind `5`"):
        seal_frame(bytes(32), meeting=MEETING, sender="p", epoch=0, kind=5, payload=b"", signing_key=SIGNER)  # type: ignore[arg-type]
    with pytest.raises(InputError, match="sender key must be 32 bytes"):
        seal_frame(
            bytes(16),
            meeting=MEETING,
            sender="p",
            epoch=0,
            kind=FrameKind.CHAT,
            payload=b"",
            signing_key=SIGNER,
        )
    with pytest.raises(InputError, match="signing key must be an Ed25519 private key"):
        seal_frame(bytes(32), meeting=MEETING, sender="p", epoch=0, kind=FrameKind.CHAT, payload=b"", signing_key=b"k")  # type: ignore[arg-type]


@given(
    sender=st.text(min_size=1, max_size=60),
    epoch=st.integers(0, 2**32 - 1),
    kind=st.sampled_from(FrameKind),
    payload=st.binary(max_size=300),
)
def test_any_frame_round_trips(sender: str, epoch: int, kind: FrameKind, payload: bytes) -> None:
    key = bytes(range(32))
    frame = seal_frame(
        key,
        meeting=MEETING,
        sender=sender,
        epoch=epoch,
        kind=kind,
        payload=payload,
        signing_key=SIGNER,
    )
    assert parse_header(frame) == FrameHeader(kind, epoch, sender)
    assert open_frame(key, meeting=MEETING, frame=frame) == (
        FrameHeader(kind, epoch, sender),
        payload,
    )


# -- one participant's keys ---------------------------------------------------------------------


class Clock:
    """A clock the test moves: the grace is judged by it."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def participant_keys(
    *epochs: int, roster: SenderRoster | None = None, clock: Clock | None = None
) -> SenderKeys:
    keys = SenderKeys(MEETING, senders=roster, clock=clock or Clock())
    for epoch in epochs:
        keys.add_epoch(epoch, meeting_key_from_master(MASTER, MEETING, epoch))
    return keys


def pair(*epochs: int, clock: Clock | None = None) -> tuple[SenderKeys, SenderKeys]:
    """alice and bob, each knowing the other's signing key (a roster as the control plane's)."""
    clock = clock or Clock()
    alice = participant_keys(*epochs, clock=clock)
    bob = participant_keys(*epochs, clock=clock)
    for keys in (alice, bob):
        keys.senders.trust("p_alice", alice.verifying_key)
        keys.senders.trust("p_bob", bob.verifying_key)
    return alice, bob


def dropped(keys: SenderKeys, frame: bytes) -> tuple[DropReason, str]:
    with pytest.raises(FrameDroppedError) as caught:
        keys.open(frame)
    assert_one_line(caught.value)
    return caught.value.reason, str(caught.value)


def test_participants_holding_the_same_epochs_read_each_other() -> None:
    alice, bob = pair(0)
    frame = alice.seal(sender="p_alice", kind=FrameKind.CHAT, payload=b"hello bob")
    assert bob.open(frame) == (FrameHeader(FrameKind.CHAT, 0, "p_alice"), b"hello bob")
    # and what they seal is exactly a frame of the contract, signed with alice's key
    verify_frame(alice.verifying_key, meeting=MEETING, frame=frame)
    assert open_frame(key_of("p_alice"), meeting=MEETING, frame=frame)[1] == b"hello bob"


def test_a_frame_sealed_under_another_senders_id_is_dropped_as_a_bad_signature() -> None:
    """The group key lets bob seal a frame that opens as alice's; her signature he cannot make."""
    alice, bob = pair(0)
    carol = participant_keys(0)
    carol.senders.trust("p_alice", alice.verifying_key)
    carol.senders.trust("p_bob", bob.verifying_key)
    forged = bob.seal(sender="p_alice", kind=FrameKind.CHAT, payload=b"i am alice")
    # it opens with the group key: only the signature tells it from alice's own
    assert open_frame(key_of("p_alice"), meeting=MEETING, frame=forged)[1] == b"i am alice"
    assert dropped(carol, forged) == (
        DropReason.BAD_SIGNATURE,
        "sealed frame is not signed by its sender `p_alice`",
    )
    # a genuine signature moved onto a changed frame does not hold either
    genuine = alice.seal(sender="p_alice", kind=FrameKind.CHAT, payload=b"hi")
    assert carol.open(genuine)[1] == b"hi"
    assert dropped(carol, genuine[:-64] + forged[-64:])[0] == DropReason.BAD_SIGNATURE
    # nor does a frame replayed into another meeting
    other = SenderKeys("mtg_other", senders=carol.senders)
    other.add_epoch(0, meeting_key_from_master(MASTER, MEETING, 0))
    assert dropped(other, genuine)[0] == DropReason.BAD_SIGNATURE


def test_a_frame_from_a_sender_not_in_the_roster_is_dropped() -> None:
    _, bob = pair(0)
    stranger = participant_keys(0)
    frame = stranger.seal(sender="p_zed", kind=FrameKind.CHAT, payload=b"hello")
    assert dropped(bob, frame) == (
        DropReason.UNKNOWN_SENDER,
        "sealed frame from `p_zed`, who is not in the roster",
    )


def test_a_sender_dropped_from_the_roster_is_known_for_the_grace_only() -> None:
    clock = Clock()
    alice, bob = pair(0, clock=clock)
    in_flight = alice.seal(sender="p_alice", kind=FrameKind.CHAT, payload=b"bye")
    bob.senders.replace({"p_bob": bob.verifying_key})  # alice left
    assert bob.open(in_flight)[1] == b"bye"
    clock.now += FRAME_GRACE_SECONDS + 0.01
    assert dropped(bob, in_flight)[0] == DropReason.UNKNOWN_SENDER
    assert bob.senders.senders == ("p_bob",)


def test_frames_of_the_previous_epoch_open_for_the_grace_then_are_dropped() -> None:
    clock = Clock()
    alice, bob = pair(0, clock=clock)
    old = alice.seal(sender="p_alice", kind=FrameKind.MEDIA, payload=b"epoch 0")
    bob.add_epoch(1, meeting_key_from_master(MASTER, MEETING, 1))
    clock.now += FRAME_GRACE_SECONDS  # still within the grace
    assert bob.open(old)[1] == b"epoch 0"
    clock.now += 0.01
    assert dropped(bob, old) == (
        DropReason.OLD_EPOCH,
        "sealed frame of epoch `0` is superseded (held: `0, 1`)",
    )


def test_an_epoch_older_than_the_previous_one_is_never_accepted() -> None:
    alice, bob = pair(0)
    old = alice.seal(sender="p_alice", kind=FrameKind.MEDIA, payload=b"epoch 0")
    for epoch in (1, 2):
        bob.add_epoch(epoch, meeting_key_from_master(MASTER, MEETING, epoch))
    # no time has passed, but epoch 0 is two behind: dropped at once
    assert bob.epochs == (1, 2)
    assert dropped(bob, old)[0] == DropReason.OLD_EPOCH


def test_seal_uses_the_newest_epoch_unless_told() -> None:
    keys = participant_keys(2, 7, 5)
    assert keys.latest == 7
    assert keys.epochs == (5, 7)
    assert parse_header(keys.seal(sender="p", kind=FrameKind.CHAT, payload=b"")).epoch == 7
    assert parse_header(keys.seal(sender="p", kind=FrameKind.CHAT, payload=b"", epoch=5)).epoch == 5
    with pytest.raises(InputError, match="no meeting key for epoch `3`"):
        keys.seal(sender="p", kind=FrameKind.CHAT, payload=b"", epoch=3)
    with pytest.raises(InputError, match="no meeting key for epoch `null`"):
        SenderKeys(MEETING).seal(sender="p", kind=FrameKind.CHAT, payload=b"")


def test_an_older_epoch_added_late_is_not_kept() -> None:
    keys = participant_keys(10, 11)
    keys.add_epoch(3, meeting_key_from_master(MASTER, MEETING, 3))
    assert keys.epochs == (10, 11)


def test_a_replaced_epoch_key_forgets_its_cached_sender_keys() -> None:
    alice, bob = pair(0)
    frame = alice.seal(sender="p_alice", kind=FrameKind.CHAT, payload=b"x")
    assert bob.open(frame)[1] == b"x"
    bob.add_epoch(0, bytes(32))  # not the key the frame was sealed under
    assert dropped(bob, frame)[0] == DropReason.UNDECRYPTABLE


def test_a_frame_of_another_meeting_does_not_open_and_the_repr_shows_no_key() -> None:
    other = SenderKeys("mtg_other")
    other.add_epoch(0, meeting_key_from_master(MASTER, "mtg_other", 0))
    receiver = participant_keys(0)
    receiver.senders.trust("p_alice", other.verifying_key)
    with pytest.raises(UnwrapError):
        receiver.open(other.seal(sender="p_alice", kind=FrameKind.CHAT, payload=b"x"))
    with pytest.raises(UnwrapError, match="does not start with `MF2`"):
        participant_keys(0).open(b"junk")
    key = meeting_key_from_master(MASTER, MEETING, 0)
    assert key.hex() not in repr(participant_keys(0))
    assert repr(participant_keys(0)) == "SenderKeys(meeting='mtg_7f3a', epochs=[0])"
