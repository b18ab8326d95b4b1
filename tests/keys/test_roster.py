"""The signed roster: accepted only as the control plane signed it, for its meeting."""

from __future__ import annotations

import base64
import json

import jwt
import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from meridian.keys import (
    RosterError,
    RosterMember,
    sign_roster,
    signing_public_bytes,
    verify_roster,
)
from meridian.keys.grants import Grant, GrantSigner

CONTROL = Ed25519PrivateKey.generate()
MEETING = "mtg_7f3a"
ALICE, MALLORY = Ed25519PrivateKey.generate(), Ed25519PrivateKey.generate()
MEMBERS = (
    RosterMember("p_alice", "alice", ALICE.public_key()),
    RosterMember("p_mallory", "mallory", MALLORY.public_key()),
)


def b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def signed(**changes: object) -> str:
    fields: dict[str, object] = {"meeting": MEETING, "epoch": 3, "seq": 7, "members": MEMBERS}
    fields.update(changes)
    return sign_roster(CONTROL, **fields)  # type: ignore[arg-type]


def test_a_roster_signed_by_the_control_plane_is_read_back() -> None:
    roster = verify_roster(CONTROL.public_key(), signed(), meeting=MEETING)
    assert (roster.meeting, roster.epoch, roster.seq) == (MEETING, 3, 7)
    assert roster.names() == {"p_alice": "alice", "p_mallory": "mallory"}
    keys = {p: signing_public_bytes(k) for p, k in roster.keys().items()}
    assert keys == {
        "p_alice": signing_public_bytes(ALICE),
        "p_mallory": signing_public_bytes(MALLORY),
    }


def tampered() -> str:
    """mallory rewrites alice's signing key to her own, keeping the control plane's signature."""
    head, payload, signature = signed().split(".")
    claims = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
    claims["members"][0]["signing_key"] = b64(signing_public_bytes(MALLORY))
    return ".".join([head, b64(json.dumps(claims).encode()), signature])


@pytest.mark.parametrize(
    ("token", "needle"),
    [
        (tampered, "roster refused: not signed by the control plane (signature verification"),
        (
            lambda: sign_roster(MALLORY, meeting=MEETING, epoch=3, seq=8, members=MEMBERS),
            "roster refused: not signed by the control plane",
        ),
        (lambda: signed(meeting="mtg_other"), "it is for meeting `mtg_other`, not `mtg_7f3a`"),
        (
            lambda: GrantSigner(CONTROL).sign(
                Grant(
                    typ="relay", meeting=MEETING, participant="p", dc="US", regions=("US",),
                    key_region="US",
                )
            ),
            "roster refused: not signed by the control plane (token is missing the",
        ),
        (
            lambda: jwt.encode(
                {"iss": "meridian-control", "typ": "roster", "mtg": MEETING, "epoch": 0,
                 "seq": 1, "members": [{"participant": "p", "name": "x", "signing_key": "AA"}]},
                CONTROL, algorithm="EdDSA",
            ),
            "roster refused: malformed",
        ),
        (lambda: "", "missing roster"),
        (lambda: None, "missing roster"),
    ],
    ids=["tampered", "other-key", "other-meeting", "a-grant", "bad-member-key", "empty", "none"],
)
def test_a_roster_not_signed_by_the_control_plane_for_this_meeting_is_refused(
    token: object, needle: str
) -> None:
    assert callable(token)
    with pytest.raises(RosterError) as caught:
        verify_roster(CONTROL.public_key(), token(), meeting=MEETING)
    assert needle in str(caught.value)
    assert "\n" not in str(caught.value)
