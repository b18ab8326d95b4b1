"""The meeting page behind HAProxy in front of two control-plane replicas (issue 16): when the
replica serving the page's signalling socket is SIGKILLed, the page joins again by itself
through the other, within 5 s, and the meeting goes on end-to-end encrypted.

The replicas and HAProxy come from tests/cluster/conftest.py (``replicas``), the region nodes
from tests/conftest.py (``nodes``, which check grants against ``grant_key``). Skipped, with the
reason, without a PostgreSQL server or HAProxy.
"""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

import httpx
import pytest
from playwright.sync_api import expect
from sqlalchemy import select
from tests.cluster.conftest import (  # noqa: F401 - the fixtures this module uses
    cluster_database_url,
    processes,
    replicas,
)
from tests.support import eventually
from tests.web.test_meeting import Clients, clients, hear, join_page  # noqa: F401

from meridian.storage.models import Participation

pytestmark = pytest.mark.storage

US_IP, DE_IP = "8.8.8.8", "80.81.192.1"
WAIT = 20  # seconds: a safety net against hanging, never an assertion


def test_the_page_joins_again_through_another_replica_when_its_replica_is_killed(
    replicas: Any,  # noqa: F811 - the fixture imported above
    nodes: Any,
    grant_key: Any,
    browse: Any,
    clients: Clients,  # noqa: F811 - the fixture imported above
) -> None:
    node_urls = ",".join(f"{r}={n.url}" for r, n in sorted(nodes.nodes.items()))
    group = replicas(2, env={"MERIDIAN_GRANT_KEY": str(grant_key), "MERIDIAN_NODE_URLS": node_urls})
    ops = httpx.Client(
        base_url=group.url, headers={"authorization": f"Bearer {group.tokens['operator']}"}
    )
    body = {"type": "organization", "name": "Host", "country": "US"}
    account = ops.post("/v1/accounts", json=body).json()["account"]["id"]
    paid = ops.post("/v1/checkout", json={"account": account, "plan": "pro", "channel": "direct"})
    assert paid.status_code == 201, paid.text
    user = group.token(account, role="user", account_id=account)
    made = httpx.post(
        f"{group.url}/v1/meetings", json={}, headers={"authorization": f"Bearer {user}"}
    )
    assert made.status_code == 201, made.text
    meeting, invite = made.json()["meeting"]["id"], made.json()["invite"]

    page = browse(
        SimpleNamespace(url=group.url), forwarded_for=US_IP, path=f"/meet/{meeting}#k={invite}"
    )
    join_page(page, "Browser guest")
    expect(page.get_by_role("status")).to_contain_text("Connected through the relay in US")
    first = page.locator("#me").inner_text().rsplit("(", 1)[1].rstrip(")")
    de = clients.run(_join(group.url, meeting, invite))  # through HAProxy, like the page
    clients.people.append(de)
    expect(page.locator("#roster")).to_contain_text("Dana")

    # the replica holding the page's signalling socket: its id names its process
    with group.runtime.db.read() as session:
        serving = session.scalar(select(Participation.replica).where(Participation.id == first))
    assert serving is not None
    pid = int(serving.split("_")[-2])
    (index,) = [i for i, r in enumerate(group.replicas) if r.proc is not None and r.proc.pid == pid]
    group.kill(index)

    # back within 5 s, as a new participation, connected through the other replica
    expect(page.get_by_role("status")).to_contain_text(
        "Connected through the relay in US", timeout=5_000
    )
    again = page.locator("#me").inner_text().rsplit("(", 1)[1].rstrip(")")
    assert again != first
    expect(page.locator("#roster")).to_contain_text("Dana", timeout=WAIT * 1000)

    def de_sees_it() -> bool:
        assert again in de.roster, de.roster
        return True

    eventually(de_sees_it, timeout=WAIT, what="DE seeing the page's new participation")
    clients.run(de.send_chat("Still here"))
    expect(page.locator("#chat")).to_contain_text("Dana: Still here", timeout=WAIT * 1000)
    page.get_by_label("Message").fill("So am I")
    page.get_by_role("button", name="Send").click()
    got = clients.run(hear(de, again))
    assert got.text == "So am I"


async def _join(url: str, meeting: str, invite: str) -> Any:
    from meridian.client.participant import Participant

    return await Participant.join(url, meeting, name="Dana", forwarded_for=DE_IP, invite=invite)
