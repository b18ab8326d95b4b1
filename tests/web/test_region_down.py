"""A page whose region node dies: it is told, lists nobody, and joining again places it elsewhere.

The module starts its own two region nodes (DE, US) and kills one with SIGKILL, which the shared
``nodes`` of tests/conftest.py must never see.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import expect
from tests.conftest import Live
from tests.web.test_meeting import DE_IP, US_IP, create_meeting, host, invited, join_page

from meridian.keys.grants import load_or_create_signing_key, public_key_b64
from meridian.node.cluster import LocalCluster

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def own_nodes(tmp_path_factory: pytest.TempPathFactory, grant_key: Path) -> Iterator[LocalCluster]:
    key = load_or_create_signing_key(grant_key, create=False)
    cluster = LocalCluster(
        ["DE", "US"],
        control_key=public_key_b64(key.public_key()),
        directory=tmp_path_factory.mktemp("region-down-nodes"),
        trusted_proxies=["127.0.0.1/32"],
    )
    with cluster:
        yield cluster


@pytest.fixture
def plane(live_factory: Callable[..., Live], own_nodes: LocalCluster, grant_key: Path) -> Live:
    live = live_factory(
        grant_key=grant_key,
        node_urls={r: n.url for r, n in own_nodes.nodes.items()},
        trusted_proxies=("127.0.0.1/32",),
        node_check_interval=0.2,
        node_failures=2,
    )
    live.clock.set("2021-03-01T10:00:00Z")
    return live


def test_a_page_on_a_node_that_dies_is_told_and_joins_again_elsewhere(
    plane: Live, own_nodes: LocalCluster, browse: Any
) -> None:
    mid = create_meeting(plane, host(plane, country="DE"))["id"]  # may use DE and US
    kept = browse(plane, forwarded_for=DE_IP, path=invited(plane, mid))
    join_page(kept, "Dieter")
    expect(kept.get_by_role("status")).to_contain_text("Connected through the relay in DE")
    page = browse(plane, forwarded_for=US_IP, path=invited(plane, mid))
    join_page(page, "Ana")
    expect(page.get_by_role("status")).to_contain_text("Connected through the relay in US")
    expect(page.locator("#roster")).to_contain_text("Dieter")

    own_nodes["US"].process.kill()
    own_nodes["US"].process.wait()

    expect(page.get_by_role("alert")).to_contain_text(
        "Your data centre US went down: region node `US` is down: "
        "join again to be placed in another region"
    )
    expect(page.get_by_role("status")).to_have_text("Disconnected: the region node US is down.")
    expect(page.locator("#roster li")).to_have_count(0)
    expect(kept.locator("#roster")).not_to_contain_text("Ana")

    page.get_by_role("button", name="Join again").click()
    join_page(page, "Ana")
    expect(page.get_by_role("status")).to_contain_text("Connected through the relay in DE")
    expect(kept.locator("#roster")).to_contain_text("Ana")
