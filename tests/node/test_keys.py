"""The key server of a region node over HTTP: it wraps only for its own, allowed meetings."""

from __future__ import annotations

import httpx
import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey

from meridian.errors import UnwrapError
from meridian.keys import KeyContext, WrappedKey, b64url, public_bytes, unwrap_key
from meridian.keys.grants import GrantSigner


def ask(cluster, region: str, body: object) -> httpx.Response:
    return httpx.post(f"{cluster[region].url}/v1/keys", json=body, trust_env=False)


def test_key_server_wraps_the_meeting_key_to_each_participant(cluster, mint, meeting, admin):
    keys = {}
    for who in ("p_alice", "p_bob"):
        private = X25519PrivateKey.generate()
        grant = mint(who, typ="key", epoch=3)
        answer = ask(cluster, "US", {"grant": grant, "public_key": b64url(public_bytes(private))})
        assert answer.status_code == 200, answer.text
        body = answer.json()
        assert (body["region"], body["epoch"], sorted(body["wrapped"])) == (
            "US",
            3,
            ["ct", "epk", "nonce"],
        )
        wrapped = WrappedKey.from_json(body["wrapped"])
        keys[who] = unwrap_key(wrapped, private, KeyContext(meeting, who, "US", 3))
        # wrapped for this participant and this epoch only
        with pytest.raises(UnwrapError):
            unwrap_key(wrapped, private, KeyContext(meeting, who, "US", 4))
        with pytest.raises(UnwrapError):
            unwrap_key(wrapped, X25519PrivateKey.generate(), KeyContext(meeting, who, "US", 3))
    assert keys["p_alice"] == keys["p_bob"]
    assert len(keys["p_alice"]) == 32
    stats = httpx.get(
        f"{cluster['US'].url}/v1/stats/{meeting}", headers=admin, trust_env=False
    ).json()
    assert (stats["keys"], stats["frames_in"]) == (2, 0)


def test_each_epoch_is_another_key(cluster, mint, meeting):
    private = X25519PrivateKey.generate()
    public = b64url(public_bytes(private))
    got = []
    for epoch in (0, 1):
        body = ask(cluster, "US", {"grant": mint(typ="key", epoch=epoch), "public_key": public})
        wrapped = WrappedKey.from_json(body.json()["wrapped"])
        got.append(unwrap_key(wrapped, private, KeyContext(meeting, "p_alice", "US", epoch)))
    assert got[0] != got[1]


PUBLIC = b64url(public_bytes(X25519PrivateKey.generate()))
OTHER_SIGNER = GrantSigner(Ed25519PrivateKey.generate())


@pytest.mark.parametrize(
    ("region", "grant", "public_key", "status", "code", "message"),
    [
        (
            "US",
            {"regions": ("DE", "HK")},
            PUBLIC,
            403,
            "forbidden",
            "region `US` refuses meeting `mtg_",
        ),
        (
            "US",
            {"key_region": "DE"},
            PUBLIC,
            403,
            "forbidden",
            "key server `US` refuses meeting `mtg_",
        ),
        ("DE", {"dc": "DE"}, PUBLIC, 403, "forbidden", "key server `DE` refuses meeting `mtg_"),
        (
            "DE",
            {},
            PUBLIC,
            401,
            "unauthenticated",
            "grant for region `US` presented to region `DE`",
        ),
        ("US", {"by": OTHER_SIGNER}, PUBLIC, 401, "unauthenticated", "invalid grant"),
        ("US", {"now": 0}, PUBLIC, 401, "unauthenticated", "expired grant"),
        ("US", {"typ": "relay"}, PUBLIC, 401, "unauthenticated", "wrong grant: a `relay` grant"),
        ("US", {}, "not base64!", 422, "invalid", "public key `not base64!` is not"),
        ("US", {}, "AAAA", 422, "invalid", "public key must be 32 bytes"),
    ],
    ids=[
        "fenced",
        "not-the-key-region",
        "asked-elsewhere",
        "misdirected",
        "forged",
        "expired",
        "relay-grant",
        "bad-public-key",
        "short-public-key",
    ],
)
def test_key_server_refuses_with_a_meridian_error(
    cluster, mint, meeting, admin, region, grant, public_key, status, code, message
):
    grant = {"typ": "key", **grant}
    answer = ask(cluster, region, {"grant": mint(**grant), "public_key": public_key})
    assert answer.status_code == status
    error = answer.json()["error"]
    assert error["code"] == code
    assert error["message"].startswith(message), error["message"]
    stats = httpx.get(
        f"{cluster[region].url}/v1/stats/{meeting}", headers=admin, trust_env=False
    ).json()
    assert stats["keys"] == 0


@pytest.mark.parametrize(
    "body",
    [{"grant": "x"}, {"public_key": PUBLIC}, ["grant"], {"grant": "x", "public_key": 1}],
    ids=["no-public-key", "no-grant", "not-an-object", "public-key-not-a-string"],
)
def test_key_server_refuses_a_malformed_body(cluster, body):
    answer = ask(cluster, "US", body)
    assert answer.status_code == 422
    assert answer.json()["error"]["code"] == "invalid"
