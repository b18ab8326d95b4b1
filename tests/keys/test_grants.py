"""Grants: what a region node accepts, and what it refuses on its own."""

from __future__ import annotations

import time

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from meridian.errors import ConfigurationError, FenceError, GrantError
from meridian.keys.grants import (
    Grant,
    GrantSigner,
    GrantVerifier,
    load_or_create_signing_key,
    public_key_b64,
    public_key_from_b64,
)

KEY = Ed25519PrivateKey.generate()
SIGNER = GrantSigner(KEY)


def grant(**changes):
    fields = {
        "typ": "relay",
        "meeting": "mtg_1",
        "participant": "p_1",
        "dc": "US",
        "regions": ("DE", "US"),
        "key_region": "US",
        "links": (("DE", "US"),),
        "ip": "8.8.8.8",
    }
    fields.update(changes)
    return Grant(**fields)


def test_a_grant_round_trips_through_the_public_key_as_nodes_are_told_it():
    verifier = GrantVerifier(public_key_from_b64(public_key_b64(SIGNER.public_key)), "US")
    checked = verifier.verify(SIGNER.sign(grant()), typ="relay")
    assert (checked.meeting, checked.participant, checked.regions, checked.links, checked.ip) == (
        "mtg_1",
        "p_1",
        ("DE", "US"),
        (("DE", "US"),),
        "8.8.8.8",
    )


# Tokens are made when each test runs (a grant is good for 60 s; collection may be long before).
@pytest.mark.parametrize(
    ("make", "typ", "message"),
    [
        (lambda: None, "relay", "missing grant"),
        (lambda: "not-a-jwt", "relay", "invalid grant"),
        (lambda: GrantSigner(Ed25519PrivateKey.generate()).sign(grant()), "relay", "invalid grant"),
        (lambda: SIGNER.sign(grant(), now=time.time() - 3600), "relay", "expired grant"),
        (lambda: SIGNER.sign(grant()), "key", "wrong grant"),
        (
            lambda: SIGNER.sign(grant(dc="DE")),
            "relay",
            "grant for region `DE` presented to region `US`",
        ),
    ],
    ids=["missing", "garbage", "forged", "expired", "wrong-type", "wrong-region"],
)
def test_refusals(make, typ, message):
    with pytest.raises(GrantError, match=message):
        GrantVerifier(SIGNER.public_key, "US").verify(make(), typ=typ)


def test_a_node_outside_the_allowed_set_refuses_even_a_good_grant_addressed_to_it():
    token = SIGNER.sign(grant(dc="CN"))  # a (mistaken or malicious) grant naming CN
    with pytest.raises(FenceError, match="region `CN` refuses meeting `mtg_1`"):
        GrantVerifier(SIGNER.public_key, "CN").verify(token, typ="relay")


def test_the_signing_key_is_created_only_in_development(tmp_path):
    path = tmp_path / "grant.key"
    with pytest.raises(ConfigurationError, match="does not exist"):
        load_or_create_signing_key(path, create=False)
    key = load_or_create_signing_key(path, create=True)
    assert path.stat().st_mode & 0o777 == 0o600
    again = load_or_create_signing_key(path, create=False)
    assert public_key_b64(again.public_key()) == public_key_b64(key.public_key())
    path.write_text("not a key")
    with pytest.raises(ConfigurationError, match="not a PEM private key"):
        load_or_create_signing_key(path, create=False)
