"""What advisory decisions add to the permanent log: bounded per decision, whatever is asked.

Measured over HTTP from a self-signed-up user (anyone can be one): batches of 1,000 decisions,
either all alike (live traffic) or each as different as the contract allows (a replay instant a
minute apart, a different country each time). The bytes the log's entries take per 1,000
decisions must stay under a bound; before issue 14 each 1,000 took about 90 KB.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import func, select
from tests.support import eventually

from meridian.storage.models import Record

pytestmark = pytest.mark.storage

COUNTRIES = ["US", "DE", "FR", "JP", "BR", "IN", "GB", "CA", "AU", "KR", "CN", "HK", "SG", "ZA"]
#: the bound checked: bytes of log entries per 1,000 advisory decisions, the worst case
BOUND_PER_1000 = 8_000


def _alike(n: int) -> list[dict[str, Any]]:
    return [{"action": "join", "subject": {"type": "individual", "country": "US"}}] * n


def _varied(n: int, offset: int) -> list[dict[str, Any]]:
    start = datetime(2020, 8, 23, tzinfo=UTC)
    return [
        {
            "action": ("join", "host", "purchase")[i % 3],
            "at": (start + timedelta(minutes=offset + i)).isoformat(),
            "subject": {"type": "individual", "country": COUNTRIES[i % len(COUNTRIES)]},
            "resource": {"channel": "direct"},
        }
        for i in range(n)
    ]


def _logged(live: Any, actor: str, expected: int) -> tuple[int, int]:
    """(decisions, bytes) of the advisory entries written for ``actor``, once all are in."""

    def all_in() -> tuple[int, int]:
        with live.runtime.db.read() as session:
            rows = session.execute(
                select(Record.entry).where(
                    Record.action == "decision.advisory", Record.actor.like(f"%{actor}")
                )
            ).all()
        count = sum(_count(entry) for (entry,) in rows)
        assert count >= expected, f"the journal wrote {count} of {expected} decisions"
        return count, sum(len(entry) for (entry,) in rows)

    return eventually(all_in, timeout=30, what=f"{expected} decisions journaled")


def _count(entry: bytes) -> int:
    import json

    return int(json.loads(entry)["details"]["count"])


@pytest.mark.parametrize("shape", ["alike", "varied"])
def test_advisory_decisions_add_a_bounded_number_of_bytes_to_the_log(live, shape):
    signup = live.client().post(
        "/v1/accounts", json={"type": "individual", "name": "Bulk Caller", "country": "US"}
    )
    assert signup.status_code == 201, signup.text
    user = live.client(None, authorization=f"Bearer {signup.json()['token']}")
    with live.runtime.db.read() as session:
        from meridian.identity.tokens import authenticate

        actor = authenticate(session, signup.json()["token"], at=live.clock()).token_id
    calls = 5
    for call in range(calls):
        requests = _alike(1000) if shape == "alike" else _varied(1000, call * 1000)
        r = user.post("/v1/decisions:batch", json={"requests": requests})
        assert r.status_code == 200, r.text[:200]
        assert r.json()["count"] == 1000
    decisions, size = _logged(live, actor, calls * 1000)
    assert decisions == calls * 1000
    per_1000 = size * 1000 // decisions
    print(f"{shape}: {per_1000} bytes of log per 1,000 advisory decisions")
    assert per_1000 <= BOUND_PER_1000, per_1000
    with live.runtime.db.read() as session:
        entries = session.scalar(
            select(func.count()).where(
                Record.action == "decision.advisory", Record.actor.like(f"%{actor}")
            )
        )
    assert entries is not None
    assert entries <= calls
