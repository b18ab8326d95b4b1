"""Three replicas behind HAProxy (docs/haproxy.cfg): traffic reaches each ready replica, a dead
one is taken out by its /readyz check, and one started again is taken back."""

from __future__ import annotations

from typing import Any

import httpx
from tests.support import eventually


def _replica_behind(url: str) -> str | None:
    try:
        r = httpx.get(f"{url}/readyz", timeout=5)
    except httpx.HTTPError:
        return None
    return str(r.json()["replica"]) if r.status_code == 200 else None


def test_haproxy_spreads_requests_and_routes_around_a_killed_replica(replicas: Any) -> None:
    group = replicas(3)
    seen: set[str] = set()

    def all_three() -> set[str]:
        replica = _replica_behind(group.url)
        if replica is not None:
            seen.add(replica)
        return seen if len(seen) == 3 else set()

    eventually(all_three, timeout=20, what="requests through HAProxy reaching all three replicas")
    ids = {i: group.ready(i)["replica"] for i in range(3)}
    assert set(ids.values()) == seen

    group.kill(1)

    # two failed checks 500 ms apart take it out; until then a request may still be sent there
    def only_survivors() -> bool:
        answers = [_replica_behind(group.url) for _ in range(12)]
        return None not in answers and ids[1] not in answers

    eventually(only_survivors, timeout=15, what="HAProxy taking the killed replica out")

    group.start(1)
    back: set[str] = set()

    def taken_back() -> bool:
        replica = _replica_behind(group.url)
        if replica is not None:
            back.add(replica)
        return len(back) == 3

    eventually(taken_back, timeout=30, what="HAProxy taking the restarted replica back")


def test_the_client_address_reaches_the_replicas_through_haproxy(replicas: Any) -> None:
    from sqlalchemy import select

    from meridian.storage.models import Record

    group = replicas(1)
    # The test stands in for a client in Germany the way the demo does: its loopback address is
    # a trusted proxy here, so the replica reads the hop before HAProxy's, 5.9.0.1. (In
    # production HAProxy appends the real client's address, which no replica trusts.)
    r = httpx.post(
        f"{group.url}/v1/accounts",
        json={"type": "individual", "name": "Through the proxy", "country": "DE"},
        headers={"x-forwarded-for": "5.9.0.1"},  # a self sign-up: judged by where it comes from
        timeout=10,
    )
    assert r.status_code == 201, r.text
    with group.runtime.db.read() as session:
        entry = session.scalars(
            select(Record).where(Record.action == "account.create").order_by(Record.seq.desc())
        ).first()
    assert entry is not None
    assert entry.actor == "anonymous:5.9.0.1"
