"""Replay benchmark: 1,000,000 logged decisions judged again under a proposed bundle, against
deciding the same decisions one by one through ``Engine.decide`` in the same run.

Usage::

    .venv/bin/python bench/replay.py            # 1,000,000 logged decisions
    .venv/bin/python bench/replay.py --quick    # 50,000: a smoke run
    .venv/bin/python bench/replay.py --size 200000 --json

What is measured
----------------

A new SQLite database (a temporary folder) is migrated and given ``--accounts`` (2,000) accounts
registered through :func:`meridian.identity.accounts.register`, a quarter of them with a
subscription bought through :func:`meridian.commerce.subscriptions.checkout`, in CN, HK, US and
DE. The log rows are then **generated directly** (logging a million decisions through the API
would take far longer than the replay): ``--templates`` (20,000) gating decisions — sign-ups,
purchases through every channel, renewals, hosting and anonymous joins from CN, HK, US and DE
addresses, each naming one of those accounts or subscriptions, at seeded random instants over
the 30 days around the CN cutover (2020-08-10 to 2020-09-09) — are decided by the built-in
bundle and written as real entries (``entry_object`` + canonical bytes, details as the services
write them); the million rows cycle through them with consecutive log positions, inserted with
Core in batches. Their leaf hashes are those of their bytes, but no checkpoint is made: the log
is not verified here (``bench/audit.py`` measures that).

*Replay*: :func:`meridian.changes.replay.replay_log` over the 30 days, under the built-in bundle
with the CN cutover a week later (reading the rows, rebuilding each request, deciding it,
gathering the report). It must judge every row again (none missing an input).

*Baseline*, same run: the same million decisions decided one by one by
:meth:`Engine.decide` under the proposed bundle, from their requests already parsed
(:class:`~meridian.policy.request.Request` values built once per template): what deciding alone
costs, without the log. The ratio says what reading and rebuilding the log adds.

Target: the replay of 1,000,000 logged decisions under 60 s on this machine.
"""

from __future__ import annotations

import argparse
import json
import random
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import insert

from meridian.audit.entry import entry_bytes, entry_object
from meridian.audit.merkle import leaf_hash
from meridian.changes.replay import replay_log
from meridian.commerce.subscriptions import checkout
from meridian.errors import DeniedError
from meridian.identity.accounts import register
from meridian.identity.tokens import Caller
from meridian.policy.engine import Engine
from meridian.policy.loader import default_bundle_path, load_bundle_text
from meridian.policy.request import parse_request
from meridian.runtime import Runtime
from meridian.settings import Settings
from meridian.storage.models import LogHead, Record

TARGET_SECONDS = 60.0
SEED = 20200823
OPERATOR = Caller("tok_bench", "operator")
START = datetime(2020, 8, 10, tzinfo=UTC)
DAYS = 30
END = START + timedelta(days=DAYS)
VALID_USCC = "91110000600037341L"
IPS = {"CN": "114.114.114.114", "HK": "203.198.7.66", "US": "8.8.8.8", "DE": "80.81.192.1"}
COUNTRIES = ("CN", "CN", "HK", "US", "DE")


def _clock_at(rt: Runtime, at: datetime) -> None:
    rt.clock = lambda: at
    rt.engine.clock = rt.clock


def seed_customers(rt: Runtime, n: int, rng: random.Random) -> tuple[list[tuple[str, str, str | None]], list[tuple[str, str, str, str, str | None]]]:
    """Accounts (id, country, org_id) and subscriptions (id, account, plan, channel, partner)."""
    _clock_at(rt, datetime(2020, 7, 1, 2, tzinfo=UTC))
    accounts: list[tuple[str, str, str | None]] = []
    subs: list[tuple[str, str, str, str, str | None]] = []
    for i in range(n):
        country = COUNTRIES[i % len(COUNTRIES)]
        org = VALID_USCC if country == "CN" else None
        reg = register(rt, caller=OPERATOR, type="organization", name=f"Org {i}", country=country, org_id=org)
        accounts.append((reg.account.id, country, org))
        if i % 4 == 0:
            try:
                sub, _ = checkout(rt, caller=OPERATOR, account_id=reg.account.id, plan="pro", channel="direct")
            except DeniedError:
                continue
            subs.append((sub.id, reg.account.id, "pro", "direct", None))
    return accounts, subs


def templates(engine: Engine, accounts: list[Any], subs: list[Any], n: int, rng: random.Random) -> list[dict[str, Any]]:
    """``n`` logged gating decisions as rows of ``records`` (without ``seq``)."""
    span = int((END - START).total_seconds())
    out: list[dict[str, Any]] = []
    channels = [("direct", None), ("online", None), ("partner", "bizconf")]
    while len(out) < n:
        at = START + timedelta(seconds=rng.randrange(span))
        kind = rng.choice(("register", "purchase", "purchase", "renew", "host", "join"))
        account_id, country, org = rng.choice(accounts)
        subject: dict[str, Any] = {"type": "organization", "country": country}
        if org:
            subject["org_id"] = org
        resource: dict[str, Any] = {}
        details: dict[str, Any] = {}
        actor, subject_kind, subject_id = "operator:psn_bench", "account", account_id
        if kind == "register":
            action, log_action, subject_id = "register", "account.register", None
            details = {"type": "organization", "country": country, "org_id": org}
        elif kind == "purchase":
            action, log_action = "purchase", "subscription.purchase"
            channel, partner = rng.choice(channels)
            subject["plan"] = "pro"
            resource = {"channel": channel} | ({"partner": partner} if partner else {})
            details = {"plan": "pro", "channel": channel, "partner": partner, "term": "month"}
        elif kind == "renew":
            if not subs:
                continue
            sub_id, account_id, plan, channel, partner = rng.choice(subs)
            country, org = next((c, o) for a, c, o in accounts if a == account_id)
            subject = {"type": "organization", "country": country, "plan": plan} | ({"org_id": org} if org else {})
            resource = {"channel": channel}
            action, log_action, subject_kind, subject_id = "renew", "subscription.renew", "subscription", sub_id
            actor = "system:meridian"
        elif kind == "host":
            action, log_action = "host", "meeting.host"
            subject["plan"] = "free"
            details = {"plan": "free", "topic": "bench"}
        else:
            where = rng.choice(list(IPS))
            action, log_action, subject_kind, subject_id = "join", "meeting.join", "meeting", f"mtg_{rng.randrange(1000):04d}"
            subject = {"type": "individual", "ip": IPS[where]}
            actor = f"anonymous:{IPS[where]}"
            details = {"name": "p"}
        wire = {"action": action, "at": at.isoformat(), "subject": subject}
        if resource:
            wire["resource"] = resource
        request = parse_request(wire)
        decision = engine.decide(request)
        data = entry_bytes(
            entry_object(
                at=at,
                recorded_at=at,
                actor=actor,
                action=log_action,
                subject_kind=subject_kind,
                subject_id=subject_id,
                bundle_digest=decision.bundle.digest,
                decision=decision.to_dict(),
                details=details,
            )
        )
        out.append(
            {
                "at": at,
                "recorded_at": at,
                "actor": actor,
                "action": log_action,
                "subject_kind": subject_kind,
                "subject_id": subject_id,
                "bundle_digest": decision.bundle.digest,
                "entry": data,
                "leaf": leaf_hash(data),
                "_request": request,
            }
        )
    return out


def write_rows(rt: Runtime, pool: list[dict[str, Any]], size: int) -> None:
    with rt.db.read() as session:
        first = session.get(LogHead, 1).size  # type: ignore[union-attr]
    batch = 20_000
    with rt.db.engine.begin() as conn:
        for start in range(0, size, batch):
            rows = []
            for i in range(start, min(size, start + batch)):
                row = {k: v for k, v in pool[i % len(pool)].items() if k != "_request"}
                row["seq"] = first + i
                rows.append(row)
            conn.execute(insert(Record), rows)
        conn.execute(LogHead.__table__.update().values(size=first + size))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", type=int, default=1_000_000)
    parser.add_argument("--accounts", type=int, default=2_000)
    parser.add_argument("--templates", type=int, default=20_000)
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args(argv)
    if args.quick:
        args.size, args.accounts, args.templates = 50_000, 200, 2_000
    rng = random.Random(SEED)
    text = default_bundle_path().read_text(encoding="utf-8")
    proposed_text = text.replace("effective: {from: 2020-08-23}", "effective: {from: 2020-08-30}")
    proposed = load_bundle_text(proposed_text, "moved.yaml")
    with tempfile.TemporaryDirectory() as folder:
        settings = Settings(
            database_url=f"sqlite:///{folder}/bench.db",
            renew_interval=0,
            log_key=Path(folder) / "log.key",
        )
        rt = Runtime(settings)
        rt.start()
        started = time.perf_counter()
        accounts, subs = seed_customers(rt, args.accounts, rng)
        pool = templates(rt.engine, accounts, subs, args.templates, rng)
        write_rows(rt, pool, args.size)
        setup = time.perf_counter() - started
        print(f"bench/replay.py: {args.size:,} rows written in {setup:.1f} s", file=sys.stderr)
        with rt.db.read() as session:
            t0 = time.perf_counter()
            report = replay_log(session, proposed, days=DAYS, now=END)
            replay_s = time.perf_counter() - t0
        engine = Engine(proposed, locator=rt.locator)
        requests = [row["_request"] for row in pool]
        t0 = time.perf_counter()
        decide = engine.decide
        for i in range(args.size):
            decide(requests[i % len(requests)])
        baseline_s = time.perf_counter() - t0
        rt.close()
    examined = report.examined
    result = {
        "size": args.size,
        "examined": examined,
        "rejudged": report.rejudged,
        "not_rejudged": report.not_rejudged_count,
        "changed": report.changed_count,
        "replay_s": round(replay_s, 2),
        "replay_per_s": round(examined / replay_s),
        "decide_baseline_s": round(baseline_s, 2),
        "ratio_replay_to_decide": round(replay_s / baseline_s, 1),
        "target_s": TARGET_SECONDS,
        "setup_s": round(setup, 1),
    }
    assert report.not_rejudged_count == 0, report.not_rejudged[:3]
    # the customers were seeded before the window: every row in it is one generated here
    assert report.rejudged == args.size, result
    if args.json:
        print(json.dumps(result))
    else:
        for key, value in result.items():
            print(f"{key:>24}: {value}")
        verdict = "met" if replay_s <= TARGET_SECONDS else "missed"
        print(f"target (replay of {args.size:,} under {TARGET_SECONDS:.0f} s): {verdict}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
