"""The log under concurrent gated writes from several replicas: gapless, each write once, verified."""

from __future__ import annotations

import threading
from typing import Any

import httpx
from sqlalchemy import func, select, text

from meridian.storage.models import Record


def _gapless(rt: Any) -> tuple[int, int]:
    """``(entries, head)``, asserting positions are exactly 0..n-1 and the head says n."""
    with rt.db.read() as session:
        count, low, high = session.execute(
            select(func.count(), func.min(Record.seq), func.max(Record.seq))
        ).one()
        head = session.execute(text("SELECT size FROM log_head")).scalar_one()
    assert (count, low, high) == (head, 0, head - 1)
    return count, head


def test_32_writers_across_three_replicas_give_a_gapless_log_that_verifies(replicas: Any) -> None:
    group = replicas(3)
    rt = group.runtime
    before, _ = _gapless(rt)
    headers = {"authorization": f"Bearer {group.tokens['operator']}"}
    made: list[list[str]] = [[] for _ in range(32)]
    failures: list[str] = []

    def writer(i: int) -> None:
        # each writer its own connection through HAProxy: spread over the three replicas
        with httpx.Client(base_url=group.url, headers=headers, timeout=60) as client:
            for n in range(8):
                body = {"type": "individual", "name": f"writer {i}.{n}", "country": "US"}
                r = client.post("/v1/accounts", json=body)
                if r.status_code != 201:
                    failures.append(r.text)
                    return
                made[i].append(r.json()["account"]["id"])

    threads = [threading.Thread(target=writer, args=(i,)) for i in range(32)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert failures == []
    accounts = [a for m in made for a in m]
    assert len(set(accounts)) == 32 * 8
    count, _ = _gapless(rt)
    with rt.db.read() as session:
        created = dict(
            session.execute(
                select(Record.subject_id, func.count())
                .where(Record.action == "account.create")
                .group_by(Record.subject_id)
            ).all()
        )
    assert all(created.get(a) == 1 for a in accounts)
    assert count >= before + 32 * 8
    # the replicas served it from more than one process
    with rt.db.read() as session:
        assert session.execute(text("SELECT count(*) FROM replicas")).scalar_one() == 3
    check = rt.log.self_check(full=True)
    assert check.problems == ()
    assert rt.log.checkpoint().checkpoint.size == count
