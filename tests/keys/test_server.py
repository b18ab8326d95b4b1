"""The key server: grants in, wrapped meeting keys out, fenced to its own region.

Grants are minted with a real Ed25519 signer and checked by the real verifier; keys come from a
real store in ``tmp_path`` and are unwrapped by the participant's real X25519 key.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey

from meridian.errors import ConfigurationError, FenceError, GrantError, InputError, UnwrapError
from meridian.keys.grants import Grant, GrantSigner, GrantVerifier
from meridian.keys.server import KeyServer
from meridian.keys.store import MasterKeyStore
from meridian.keys.wrap import KeyContext, WrappedKey, public_bytes, unwrap_key

Mint = Callable[..., str]


@pytest.fixture
def signer() -> GrantSigner:
    return GrantSigner(Ed25519PrivateKey.generate())


@pytest.fixture
def mint(signer: GrantSigner) -> Mint:
    """A key grant for `US` in meeting `mtg_1` to participant `p_1`, with any claim changed."""

    def make(*, now: float | None = None, by: GrantSigner | None = None, **changes: Any) -> str:
        claims: dict[str, Any] = {
            "typ": "key",
            "meeting": "mtg_1",
            "participant": "p_1",
            "dc": "US",
            "regions": ("DE", "US"),
            "key_region": "US",
            "epoch": 0,
            "session": "s_1",
            **changes,
        }
        return (by or signer).sign(Grant(**claims), now=now)

    return make


def key_server(region: str, store: MasterKeyStore, signer: GrantSigner) -> KeyServer:
    return KeyServer(region, store, GrantVerifier(signer.public_key, region))


@pytest.fixture
def server(tmp_path: Path, signer: GrantSigner) -> KeyServer:
    return key_server("US", MasterKeyStore.open(tmp_path / "us"), signer)


@pytest.fixture
def participant() -> X25519PrivateKey:
    return X25519PrivateKey.generate()


def test_a_key_grant_gets_the_meeting_key_wrapped_to_the_participant(
    server: KeyServer, mint: Mint, participant: X25519PrivateKey
) -> None:
    issued = server.issue(mint(epoch=3), public_bytes(participant))
    assert set(issued) == {"region", "epoch", "wrapped"}
    assert (issued["region"], issued["epoch"]) == ("US", 3)
    assert set(issued["wrapped"]) == {"epk", "nonce", "ct"}
    wrapped = WrappedKey.from_json(issued["wrapped"])
    key = unwrap_key(wrapped, participant, KeyContext("mtg_1", "p_1", "US", 3))
    assert key == server.store.epoch_key("mtg_1", 3, "s_1")[0]
    assert server.keys_issued == {"mtg_1": 1}
    assert server.refusals == {}


def test_the_wrapped_key_is_for_its_participant_and_epoch_only(
    server: KeyServer, mint: Mint, participant: X25519PrivateKey
) -> None:
    wrapped = WrappedKey.from_json(
        server.issue(mint(epoch=3), public_bytes(participant))["wrapped"]
    )
    for context in (
        KeyContext("mtg_1", "p_2", "US", 3),
        KeyContext("mtg_1", "p_1", "US", 4),
        KeyContext("mtg_1", "p_1", "DE", 3),
        KeyContext("mtg_2", "p_1", "US", 3),
    ):
        with pytest.raises(UnwrapError):
            unwrap_key(wrapped, participant, context)
    with pytest.raises(UnwrapError):
        unwrap_key(wrapped, X25519PrivateKey.generate(), KeyContext("mtg_1", "p_1", "US", 3))


def test_epochs_give_different_keys_and_participants_share_one(
    server: KeyServer, mint: Mint
) -> None:
    def key_for(participant: str, epoch: int) -> bytes:
        private = X25519PrivateKey.generate()
        issued = server.issue(mint(participant=participant, epoch=epoch), public_bytes(private))
        context = KeyContext("mtg_1", participant, "US", epoch)
        return unwrap_key(WrappedKey.from_json(issued["wrapped"]), private, context)

    assert key_for("p_1", 0) == key_for("p_2", 0)
    assert key_for("p_1", 0) != key_for("p_1", 1)
    assert server.keys_issued == {"mtg_1": 4}


def test_key_servers_with_their_own_stores_give_their_own_keys(
    tmp_path: Path, signer: GrantSigner, mint: Mint, participant: X25519PrivateKey
) -> None:
    """Locality: a meeting's key depends on which region's store made it."""
    us = key_server("US", MasterKeyStore.open(tmp_path / "us"), signer)
    de = key_server("DE", MasterKeyStore.open(tmp_path / "de"), signer)
    public = public_bytes(participant)
    from_us = us.issue(mint(), public)
    from_de = de.issue(mint(dc="DE", key_region="DE"), public)
    key_us = unwrap_key(
        WrappedKey.from_json(from_us["wrapped"]), participant, KeyContext("mtg_1", "p_1", "US", 0)
    )
    key_de = unwrap_key(
        WrappedKey.from_json(from_de["wrapped"]), participant, KeyContext("mtg_1", "p_1", "DE", 0)
    )
    assert key_us != key_de
    assert (us.keys_issued, de.keys_issued) == ({"mtg_1": 1}, {"mtg_1": 1})


def test_a_grant_whose_regions_exclude_this_region_is_fenced(
    server: KeyServer, mint: Mint, participant: X25519PrivateKey
) -> None:
    with pytest.raises(FenceError) as caught:
        server.issue(mint(regions=("DE", "IE"), key_region="US"), public_bytes(participant))
    assert str(caught.value).startswith("region `US` refuses meeting `mtg_1`")
    assert server.keys_issued == {}
    assert server.refusals == {"fence": 1}


def test_a_grant_keyed_in_another_region_is_fenced(
    server: KeyServer, mint: Mint, participant: X25519PrivateKey
) -> None:
    with pytest.raises(FenceError) as caught:
        server.issue(mint(key_region="DE"), public_bytes(participant))
    assert str(caught.value) == "key server `US` refuses meeting `mtg_1`: its key region is `DE`"
    assert caught.value.http_status == 403
    assert server.keys_issued == {}
    assert server.refusals == {"fence": 1}


GRANT_REFUSALS: dict[str, tuple[dict[str, Any], str]] = {
    "forged": ({"by": "other-signer"}, "invalid grant: signature verification failed"),
    "expired": ({"now": "an-hour-ago"}, "expired grant"),
    "relay-typ": ({"typ": "relay", "ip": "192.0.2.1"}, "wrong grant: a `relay` grant"),
    "for-another-region": ({"dc": "DE"}, "grant for region `DE` presented to region `US`"),
}


@pytest.mark.parametrize(
    ("changes", "needle"), list(GRANT_REFUSALS.values()), ids=list(GRANT_REFUSALS)
)
def test_a_bad_grant_is_refused(
    server: KeyServer,
    mint: Mint,
    participant: X25519PrivateKey,
    changes: dict[str, Any],
    needle: str,
) -> None:
    if changes.get("by") == "other-signer":
        changes = {"by": GrantSigner(Ed25519PrivateKey.generate())}
    if changes.get("now") == "an-hour-ago":
        changes = {"now": time.time() - 3600}
    with pytest.raises(GrantError) as caught:
        server.issue(mint(**changes), public_bytes(participant))
    assert needle in str(caught.value)
    assert caught.value.http_status == 401
    assert server.keys_issued == {}
    assert server.refusals == {"grant": 1}


@pytest.mark.parametrize("token", ["", "not.a.jwt", "x" * 50], ids=["empty", "garbage", "junk"])
def test_a_missing_or_garbled_grant_is_refused(
    server: KeyServer, participant: X25519PrivateKey, token: str
) -> None:
    with pytest.raises(GrantError):
        server.issue(token, public_bytes(participant))
    assert server.refusals == {"grant": 1}


@pytest.mark.parametrize(
    ("public_key", "needle"),
    [
        (bytes(31), "public key must be 32 bytes of x25519, not `31`"),
        (bytes(33), "not `33`"),
        ("a string", "not `str`"),
        (bytes(32), "low-order x25519 point"),
    ],
    ids=["short", "long", "str", "low-order"],
)
def test_a_bad_public_key_is_refused(
    server: KeyServer, mint: Mint, public_key: bytes, needle: str
) -> None:
    with pytest.raises(InputError) as caught:
        server.issue(mint(), public_key)
    assert needle in str(caught.value).lower()
    assert caught.value.http_status == 422
    assert server.keys_issued == {}
    assert server.refusals == {"input": 1}


def test_the_grant_is_checked_before_the_public_key(server: KeyServer) -> None:
    with pytest.raises(GrantError):
        server.issue("", b"short")
    assert server.refusals == {"grant": 1}


def test_refusals_and_issues_are_counted_apart(
    server: KeyServer, mint: Mint, participant: X25519PrivateKey
) -> None:
    public = public_bytes(participant)
    server.issue(mint(), public)
    server.issue(mint(meeting="mtg_2"), public)
    server.issue(mint(meeting="mtg_2"), public)
    with pytest.raises(FenceError):
        server.issue(mint(key_region="DE"), public)
    with pytest.raises(GrantError):
        server.issue("", public)
    assert server.keys_issued == {"mtg_1": 1, "mtg_2": 2}
    assert server.refusals == {"fence": 1, "grant": 1}


def test_a_verifier_for_another_region_is_a_configuration_error(
    tmp_path: Path, signer: GrantSigner
) -> None:
    store = MasterKeyStore.open(tmp_path)
    with pytest.raises(
        ConfigurationError, match="key server `US` is given a grant verifier for region `DE`"
    ):
        KeyServer("US", store, GrantVerifier(signer.public_key, "DE"))


def test_the_server_repr_shows_no_key(server: KeyServer) -> None:
    master = server.store.path.read_bytes()
    assert master.hex() not in repr(server)
    assert repr(server).startswith("KeyServer(region='US'")


# -- fresh randomness in every epoch's key ------------------------------------------------------


def _key_token(private: Ed25519PrivateKey, *, epoch: int, session: str, who: str = "p_1") -> str:
    """A key grant written claim by claim, with the control plane's session of the meeting."""
    import jwt

    now = int(time.time())
    claims = {
        "iss": "meridian-control",
        "typ": "key",
        "mtg": "mtg_1",
        "sub": who,
        "dc": "US",
        "regions": ["DE", "US"],
        "key_region": "US",
        "epoch": epoch,
        "ses": session,
        "iat": now,
        "exp": now + 60,
    }
    return jwt.encode(claims, private, algorithm="EdDSA")


def _unwrapped(server: KeyServer, token: str, who: str = "p_1") -> bytes:
    private = X25519PrivateKey.generate()
    issued = server.issue(token, public_bytes(private))
    wrapped = WrappedKey.from_json(issued["wrapped"])
    return unwrap_key(wrapped, private, KeyContext("mtg_1", who, "US", issued["epoch"]))


def test_an_epochs_key_is_the_same_for_everyone_in_it_and_after_a_key_server_restart(
    tmp_path: Path,
):
    private = Ed25519PrivateKey.generate()
    signer = GrantSigner(private)
    first = key_server("US", MasterKeyStore.open(tmp_path / "us"), signer)
    alice = _unwrapped(first, _key_token(private, epoch=4, session="s_a"))
    bob = _unwrapped(first, _key_token(private, epoch=4, session="s_a", who="p_2"), "p_2")
    restarted = key_server("US", MasterKeyStore.open(tmp_path / "us"), signer)
    carol = _unwrapped(restarted, _key_token(private, epoch=4, session="s_a", who="p_3"), "p_3")
    assert alice == bob == carol


def test_a_repeated_epoch_number_in_a_new_session_is_a_new_key(tmp_path: Path):
    private = Ed25519PrivateKey.generate()
    signer = GrantSigner(private)
    store = tmp_path / "us"
    server = key_server("US", MasterKeyStore.open(store), signer)
    old = _unwrapped(server, _key_token(private, epoch=0, session="s_old"))
    new = _unwrapped(server, _key_token(private, epoch=0, session="s_new"))
    # the same numbers with a fresh store (the same master key): still not the old key
    (store / "epochs.db").unlink()
    again = _unwrapped(
        key_server("US", MasterKeyStore.open(store), signer),
        _key_token(private, epoch=0, session="s_old"),
    )
    assert len({old, new, again}) == 3
    # the salts are the store's, readable by the key server's user only
    assert ((store / "epochs.db").stat().st_mode & 0o777) == 0o600


def test_an_epoch_lower_than_one_issued_is_refused(tmp_path: Path):
    private = Ed25519PrivateKey.generate()
    server = key_server("US", MasterKeyStore.open(tmp_path / "us"), GrantSigner(private))
    _unwrapped(server, _key_token(private, epoch=5, session="s_a"))
    for session in ("s_a", "s_b"):
        with pytest.raises(FenceError) as refused:
            _unwrapped(server, _key_token(private, epoch=4, session=session))
        assert refused.value.message == (
            "key server `US` refuses epoch `4` of meeting `mtg_1`: epoch `5` was issued already"
        )
    restarted = key_server("US", MasterKeyStore.open(tmp_path / "us"), GrantSigner(private))
    with pytest.raises(FenceError):
        _unwrapped(restarted, _key_token(private, epoch=0, session="s_c"))


def test_a_key_grant_without_a_session_is_refused(tmp_path: Path):
    private = Ed25519PrivateKey.generate()
    server = key_server("US", MasterKeyStore.open(tmp_path / "us"), GrantSigner(private))
    with pytest.raises(GrantError) as refused:
        _unwrapped(server, _key_token(private, epoch=0, session=""))
    assert refused.value.message == "invalid grant: a `key` grant names no session"
