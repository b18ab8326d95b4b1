"""Region nodes as real processes (US, DE, HK, CN) sharing one control-plane key, and grants.

US, DE and CN believe X-Forwarded-For from 127.0.0.1 (so a loopback test client can stand in
any country); HK trusts no proxy. Each test uses its own meeting id, so the nodes are shared by
the whole session.
"""

from __future__ import annotations

import secrets
import time
from collections.abc import Callable, Iterator
from typing import Any

import jwt
import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from meridian.keys.grants import Grant, GrantSigner, public_key_b64
from meridian.node.cluster import LocalCluster


@pytest.fixture(scope="session")
def control_private() -> Ed25519PrivateKey:
    """The control plane's private grant key (for tokens a test writes claim by claim)."""
    return Ed25519PrivateKey.generate()


@pytest.fixture(scope="session")
def signer(control_private: Ed25519PrivateKey) -> GrantSigner:
    """The control plane's grant signer: the nodes hold its public key."""
    return GrantSigner(control_private)


@pytest.fixture(scope="session")
def admin(control_private: Ed25519PrivateKey) -> dict[str, str]:
    """The ``Authorization`` header of an ``admin`` credential good at every node for an hour."""
    now = int(time.time())
    claims = {
        "iss": "meridian-control",
        "typ": "admin",
        "mtg": "",
        "sub": "test",
        "dc": "*",
        "regions": [],
        "iat": now,
        "exp": now + 3600,
        "jti": secrets.token_hex(8),
    }
    return {"Authorization": "Bearer " + jwt.encode(claims, control_private, algorithm="EdDSA")}


@pytest.fixture(scope="session")
def cluster(
    tmp_path_factory: pytest.TempPathFactory, signer: GrantSigner
) -> Iterator[LocalCluster]:
    nodes = LocalCluster(
        ["US", "DE", "HK", "CN"],
        control_key=public_key_b64(signer.public_key),
        directory=tmp_path_factory.mktemp("nodes"),
        trusted_proxies={"US": ["127.0.0.1/32"], "DE": ["127.0.0.1/32"], "CN": ["127.0.0.1/32"]},
    )
    with nodes:
        yield nodes


@pytest.fixture
def meeting() -> str:
    return f"mtg_{secrets.token_hex(6)}"


@pytest.fixture
def mint(signer: GrantSigner, meeting: str) -> Callable[..., str]:
    """A grant for the test's meeting, US and DE linked, unless told otherwise."""

    def make(
        participant: str = "p_alice",
        *,
        dc: str = "US",
        typ: str = "relay",
        regions: tuple[str, ...] = ("DE", "US"),
        key_region: str = "US",
        links: tuple[tuple[str, str], ...] = (("DE", "US"),),
        ip: str | None = "127.0.0.1",
        epoch: int = 0,
        session: str = "s_test",
        now: float | None = None,
        by: GrantSigner | None = None,
        **changes: Any,
    ) -> str:
        grant = Grant(
            typ=typ,  # type: ignore[arg-type]
            meeting=changes.get("meeting", meeting),
            participant=participant,
            dc=dc,
            regions=regions,
            key_region=key_region,
            links=links,
            ip=ip,
            epoch=epoch,
            session=session,
        )
        return (by or signer).sign(grant, now=time.time() if now is None else now)

    return make


@pytest.fixture
def give_links(
    cluster: LocalCluster, signer: GrantSigner, meeting: str
) -> Callable[..., dict[str, list[str]]]:
    """Give nodes the link grants of the test's meeting, as the control plane does on placing a
    participant: each region of ``regions`` gets a grant per link to each other one."""

    def give(regions: tuple[str, ...] = ("DE", "US"), allowed: tuple[str, ...] | None = None):
        import httpx

        allowed = allowed or regions
        out = {}
        for region in regions:
            grants = [
                signer.sign(
                    Grant(
                        typ="link",
                        meeting=meeting,
                        participant="",
                        dc=region,
                        regions=tuple(sorted(allowed)),
                        key_region="",
                        pair=tuple(sorted((region, peer))),
                    )
                )
                for peer in regions
                if peer != region
            ]
            answer = httpx.post(
                f"{cluster[region].url}/v1/relay/{meeting}/links",
                json={"grants": grants},
                trust_env=False,
            )
            assert answer.status_code == 200, answer.text
            out[region] = answer.json()["peers"]
        return out

    return give
