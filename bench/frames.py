"""What signing and verifying every frame costs a participant, against sealing alone.

Every MF2 frame is sealed (AES-256-GCM under the sender key) and then signed by its sender
(Ed25519); a receiver checks the signature against the signed roster before it opens the frame
(docs/data-plane.md §Frames). Timed here in-process, in the same run, for a chat-sized and a
media-sized payload:

- ``seal only`` (the baseline): the AES-256-GCM sealing of a frame, as MF1 did it (a fresh
  nonce, ``AESGCM(key).encrypt`` over the header and the meeting);
- ``seal + sign``: :func:`meridian.keys.seal_frame`, which also signs;
- ``open only``: :func:`meridian.keys.open_frame` (decryption, no signature check);
- ``verify + open``: :meth:`meridian.keys.SenderKeys.open`, what a receiver runs on every frame
  (epoch and roster checks, Ed25519 verification, decryption; the sender key cached).

Median of 5 rounds of 5,000 frames each; µs per frame.

    .venv/bin/python bench/frames.py
"""

from __future__ import annotations

import os
import statistics
import sys
import time
from collections.abc import Callable

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from meridian.keys import FrameKind, SenderKeys, open_frame, seal_frame, sender_key

FRAMES = 5_000
ROUNDS = 5
MEETING = "mtg_bench0000"
SENDER = "p_bench0000"
SIZES = {"chat (64 B)": 64, "media (1,000 B)": 1000}


def _per_frame(call: Callable[[], object]) -> float:
    start = time.perf_counter()
    for _ in range(FRAMES):
        call()
    return (time.perf_counter() - start) / FRAMES * 1e6


def _case(size: int) -> dict[str, float]:
    meeting_key = os.urandom(32)
    key = sender_key(meeting_key, MEETING, SENDER, 0)
    signing = Ed25519PrivateKey.generate()
    payload = os.urandom(size)
    header = b"MF2" + bytes([FrameKind.MEDIA]) + bytes(4) + bytes([len(SENDER)]) + SENDER.encode()
    aad = header + MEETING.encode()

    def seal_only() -> bytes:
        nonce = os.urandom(12)
        return header + nonce + AESGCM(key).encrypt(nonce, payload, aad)

    def seal_sign() -> bytes:
        return seal_frame(
            key,
            meeting=MEETING,
            sender=SENDER,
            epoch=0,
            kind=FrameKind.MEDIA,
            payload=payload,
            signing_key=signing,
        )

    frame = seal_sign()
    receiver = SenderKeys(MEETING)
    receiver.add_epoch(0, meeting_key)
    receiver.senders.trust(SENDER, signing.public_key())
    assert receiver.open(frame)[1] == payload

    cases: dict[str, Callable[[], object]] = {
        "seal only": seal_only,
        "seal + sign": seal_sign,
        "open only": lambda: open_frame(key, meeting=MEETING, frame=frame),
        "verify + open": lambda: receiver.open(frame),
    }
    rounds: dict[str, list[float]] = {name: [] for name in cases}
    for _ in range(ROUNDS):
        for name, call in cases.items():
            rounds[name].append(_per_frame(call))
    return {name: statistics.median(times) for name, times in rounds.items()}


def main() -> None:
    print(f"frame signing and verifying, µs per frame (median of {ROUNDS} rounds of {FRAMES:,})")
    for label, size in SIZES.items():
        t = _case(size)
        print(f"  {label}")
        print(f"    seal only (baseline):  {t['seal only']:7.2f}")
        print(
            f"    seal + sign:           {t['seal + sign']:7.2f}  (+{t['seal + sign'] - t['seal only']:.2f},"
            f" x{t['seal + sign'] / t['seal only']:.1f})"
        )
        print(f"    open only:             {t['open only']:7.2f}")
        print(
            f"    verify + open:         {t['verify + open']:7.2f}  (+{t['verify + open'] - t['open only']:.2f},"
            f" x{t['verify + open'] / t['open only']:.1f})"
        )
    print(f"bench/frames.py: {len(SIZES)} sizes, 4 cases, {ROUNDS} rounds", file=sys.stderr)


if __name__ == "__main__":
    main()
