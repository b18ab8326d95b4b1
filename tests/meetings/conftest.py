"""Real region nodes and a control plane that uses them, for the end-to-end meeting tests.

Each test module gets its own four nodes (CN, DE, HK, US), each a process of its own, trusting
loopback as a proxy so participants can be placed by ``X-Forwarded-For``.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from meridian.meetings.grants import load_or_create_signing_key, public_key_b64
from meridian.node.cluster import LocalCluster

REGIONS = ["CN", "DE", "HK", "US"]


@pytest.fixture(scope="module")
def grant_key(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The control plane's grant key, which the nodes check grants against."""
    path = tmp_path_factory.mktemp("control") / "grant.key"
    load_or_create_signing_key(path, create=True)
    return path


@pytest.fixture(scope="module")
def nodes(tmp_path_factory: pytest.TempPathFactory, grant_key: Path) -> Iterator[LocalCluster]:
    key = load_or_create_signing_key(grant_key, create=False)
    cluster = LocalCluster(
        REGIONS,
        control_key=public_key_b64(key.public_key()),
        directory=tmp_path_factory.mktemp("nodes"),
        trusted_proxies=["127.0.0.1/32"],
    )
    with cluster:
        yield cluster


@pytest.fixture
def plane(live_factory: Any, nodes: LocalCluster, grant_key: Path) -> Any:
    """The control plane on loopback, told where the nodes are, loopback trusted as a proxy."""
    live = live_factory(
        grant_key=grant_key,
        node_urls={r: n.url for r, n in nodes.nodes.items()},
        trusted_proxies=("127.0.0.1/32",),
    )
    live.clock.set("2021-03-01T10:00:00Z")
    return live
