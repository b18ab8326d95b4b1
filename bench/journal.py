"""What advisory decisions add to the log: bytes per 1,000 decisions, the tally against the list.

Usage::

    .venv/bin/python bench/journal.py            # one JSON object on stdout
    .venv/bin/python bench/journal.py --calls 20

The same decisions (real ones, from the engine of the built-in bundle) are journaled twice into
one new SQLite database, through :func:`meridian.audit.record` as the journal writes them: once
as entries before issue 14 wrote them (``{"count", "decisions": [summary, ...]}``, the
baseline) and once as the journal writes them now (:func:`meridian.http.journal.tally`). Two
shapes of ``--calls`` (5) calls of 1,000 decisions each: ``alike`` (live traffic: one action,
one country, judged now) and ``varied`` (each decision as different as the contract allows: 3
actions, 14 countries, a minute apart). The figure is the bytes of the log's entries (the
``entry`` column: what the log keeps for ever and exports) per 1,000 decisions, and the writer's
CPU time per 1,000 decisions to build each entry's details.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

COUNTRIES = ["US", "DE", "FR", "JP", "BR", "IN", "GB", "CA", "AU", "KR", "CN", "HK", "SG", "ZA"]


def _requests(shape: str, n: int, offset: int) -> list[dict[str, Any]]:
    if shape == "alike":
        return [{"action": "join", "subject": {"type": "individual", "country": "US"}}] * n
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


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calls", type=int, default=5)
    args = parser.parse_args(argv)

    from sqlalchemy import func, select

    from meridian.audit import Actor, record
    from meridian.http.journal import summary, tally
    from meridian.policy.request import parse_request
    from meridian.runtime import Runtime
    from meridian.settings import Settings
    from meridian.storage.models import Record

    out: dict[str, Any] = {"calls": args.calls, "per_call": 1000, "shapes": {}}
    with tempfile.TemporaryDirectory() as folder:
        rt = Runtime(
            Settings(
                database_url=f"sqlite:///{Path(folder) / 'bench.db'}",
                renew_interval=0,
                log_key=Path(folder) / "log.key",
            )
        )
        rt.start()
        for shape in ("alike", "varied"):
            row: dict[str, Any] = {}
            for form in ("list", "tally"):
                actor = Actor("user", f"tok_{shape}_{form}")
                cpu = 0.0
                for call in range(args.calls):
                    decisions = [
                        rt.engine.decide(parse_request(r))
                        for r in _requests(shape, 1000, call * 1000)
                    ]
                    started = time.perf_counter()
                    summaries = [summary(d) for d in decisions]
                    details = (
                        {"count": len(summaries), "decisions": summaries}
                        if form == "list"
                        else tally(summaries)
                    )
                    cpu += time.perf_counter() - started
                    with rt.db.write() as session:
                        record(
                            session,
                            actor=actor,
                            action="decision.advisory",
                            subject_kind="decisions",
                            subject_id=None,
                            at=decisions[-1].at,
                            bundle_digest=rt.digest,
                            details=details,
                        )
                with rt.db.read() as session:
                    size = session.scalar(
                        select(func.sum(func.length(Record.entry))).where(
                            Record.actor == str(actor)
                        )
                    )
                row[form] = {
                    "bytes_per_1000": round((size or 0) / args.calls),
                    "details_ms_per_1000": round(cpu * 1000 / args.calls, 3),
                }
            row["ratio"] = round(row["tally"]["bytes_per_1000"] / row["list"]["bytes_per_1000"], 4)
            out["shapes"][shape] = row
        rt.close()
    json.dump(out, sys.stdout, indent=2)
    print()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
