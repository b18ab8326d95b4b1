"""Tiles against the proof endpoints, and a witness round trip — each with its peer in one run.

Usage::

    .venv/bin/python bench/tiles.py            # a table
    .venv/bin/python bench/tiles.py --json     # one JSON object on stdout
    .venv/bin/python bench/tiles.py --quick    # small sizes: a smoke run

What is measured
----------------

A log of ``--size`` (20,000) entries on SQLite, checkpointed, served by a real ``meridian serve``
process on loopback; the client is this process (one keep-alive ``httpx`` connection, requests
in sequence).

*Served per second*: ``--requests`` (2,000) GETs of random full level-0 tiles
(``/log/tile/0/<N>``, 8 KiB each) against as many GETs of ``/v1/log/proof/inclusion`` for random
entries (the dynamic endpoint a tile replaces). Ratio: tiles/s over proofs/s. The floor, same
run: as many GETs of ``/v1/log/key`` (a constant answer: the service's own cost per request).

*The same reads*: ``--proofs`` (300) inclusion proofs for random entries, each with the root, read
(a) from the proof endpoint, one request each, and (b) from tiles with
:class:`meridian.audit.tiles.TileReader` — a fresh reader per proof (no cache: the worst case,
three tiles a proof at this size), and one reader for all (a client that keeps the tiles it read,
as an HTTP cache would). Every proof from tiles is checked equal to the endpoint's.

*Witness round trip*: a real ``meridian witness serve`` process; ``--checkpoints`` (100) times,
one entry is written, a checkpoint signed, and :meth:`Witnessing.submit` sends it with its
consistency proof and stores the cosignature that comes back. The mean per checkpoint, against
its floor measured in the same run: a GET of the witness's ``/key`` on the same connection (the
HTTP round trip with nothing checked or signed).
"""

from __future__ import annotations

import argparse
import json
import os
import random
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))

from meridian.audit import Actor, record  # noqa: E402
from meridian.audit.cosignature import Cosigner  # noqa: E402
from meridian.audit.tiles import Tile, TileReader  # noqa: E402
from meridian.audit.witnessing import Witnessing, parse_witnesses  # noqa: E402
from meridian.keyfiles import load_or_create_ed25519  # noqa: E402
from meridian.runtime import Runtime  # noqa: E402
from meridian.settings import Settings  # noqa: E402

AT = datetime(2020, 6, 4, 12, 0, tzinfo=UTC)


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _grow(rt: Runtime, n: int) -> None:
    done = 0
    while done < n:
        step = min(5_000, n - done)
        with rt.db.write() as session:
            for i in range(step):
                record(
                    session,
                    actor=Actor("bench", "tiles"),
                    action="bench.write",
                    subject_kind="counter",
                    subject_id=str(done + i),
                    at=AT,
                    bundle_digest="sha256:" + "0" * 64,
                    details={"i": done + i},
                )
        done += step


def _wait(url: str, process: subprocess.Popen[bytes], what: str) -> None:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise SystemExit(f"{what} exited: {process.communicate()}")
        try:
            httpx.get(url, timeout=1)
            return
        except httpx.HTTPError:
            time.sleep(0.1)
    raise SystemExit(f"{what} did not start")


@contextmanager
def _process(args: list[str], env: dict[str, str], url: str, what: str) -> Iterator[None]:
    process = subprocess.Popen(
        [sys.executable, "-m", "meridian", *args],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    try:
        _wait(url, process, what)
        yield
    finally:
        process.terminate()
        process.wait(timeout=30)


def _rate(calls: int, seconds: float) -> float:
    return calls / seconds if seconds > 0 else float("inf")


def measure_served(
    client: httpx.Client, size: int, requests: int, rng: random.Random
) -> dict[str, Any]:
    full = size // 256
    tiles = [f"/log/{Tile(0, rng.randrange(full)).path}" for _ in range(requests)]
    proofs = [rng.randrange(size) for _ in range(requests)]
    for path in tiles[:20]:  # warm both paths
        client.get(path).raise_for_status()
    for index in proofs[:20]:
        client.get("/v1/log/proof/inclusion", params={"index": index, "size": size})
    started = time.perf_counter()
    for path in tiles:
        got = client.get(path)
        assert got.status_code == 200
        assert len(got.content) == 8192
    tile_s = time.perf_counter() - started
    started = time.perf_counter()
    for index in proofs:
        got = client.get("/v1/log/proof/inclusion", params={"index": index, "size": size})
        assert got.status_code == 200
    proof_s = time.perf_counter() - started
    started = time.perf_counter()
    for _ in range(requests):
        client.get("/v1/log/key").raise_for_status()
    floor_s = time.perf_counter() - started
    tiles_per_s, proofs_per_s = _rate(requests, tile_s), _rate(requests, proof_s)
    return {
        "tiles_per_s": tiles_per_s,
        "proofs_per_s": proofs_per_s,
        "floor_per_s": _rate(requests, floor_s),
        "ratio": tiles_per_s / proofs_per_s,
    }


def measure_reads(
    client: httpx.Client, size: int, count: int, rng: random.Random
) -> dict[str, Any]:
    import base64

    indices = [rng.randrange(size) for _ in range(count)]

    def fetch(tile: Tile) -> bytes:
        got = client.get(f"/log/{tile.path}")
        got.raise_for_status()
        return got.content

    started = time.perf_counter()
    served = []
    for index in indices:
        body = client.get("/v1/log/proof/inclusion", params={"index": index, "size": size}).json()
        served.append([base64.b64decode(h) for h in body["proof"]])
    endpoint_s = time.perf_counter() - started

    started = time.perf_counter()
    fetched = 0
    for index, expected in zip(indices, served, strict=True):
        reader = TileReader(size, fetch)
        reader.root()
        assert reader.inclusion_proof(index) == expected
        fetched += reader.fetched
    cold_s = time.perf_counter() - started

    started = time.perf_counter()
    shared = TileReader(size, fetch)
    shared.root()
    for index, expected in zip(indices, served, strict=True):
        assert shared.inclusion_proof(index) == expected
    warm_s = time.perf_counter() - started
    return {
        "endpoint_per_s": _rate(count, endpoint_s),
        "tiles_cold_per_s": _rate(count, cold_s),
        "tiles_cold_fetches_per_proof": fetched / count,
        "tiles_cached_per_s": _rate(count, warm_s),
        "tiles_cached_fetches": shared.fetched,
        "cold_ratio": endpoint_s / cold_s,
        "cached_ratio": endpoint_s / warm_s,
    }


def measure_witness(rt: Runtime, tmp: Path, checkpoints: int) -> dict[str, Any]:
    key = tmp / "w1.key"
    cosigner = Cosigner(
        "bench.witness/w1",
        load_or_create_ed25519(key, create=True, what="witness key", setting="-"),
    )
    port = _free_port()
    url = f"http://127.0.0.1:{port}"
    env = {**os.environ, "PYTHONPATH": str(ROOT / "src")}
    args = [
        "witness", "serve", "--name", cosigner.name, "--key", str(key),
        "--log", rt.log.vkey, "--state", str(tmp / "w1.db"), "--port", str(port),
    ]  # fmt: skip
    with _process(args, env, url + "/key", "the witness"):
        witnessing = Witnessing(rt.log, parse_witnesses([f"{cosigner.public.vkey} {url}"]))
        try:
            first = witnessing.submit()  # from size 0: no proof
            assert [s.cosigned for s in first] == [True], first
            rounds = []
            for _ in range(checkpoints):
                _grow(rt, 1)
                rt.log.checkpoint()
                started = time.perf_counter()
                done = witnessing.submit()
                rounds.append(time.perf_counter() - started)
                assert [s.cosigned for s in done] == [True], done
            http = httpx.Client(timeout=30)
            floors = []
            for _ in range(checkpoints):
                started = time.perf_counter()
                http.get(url + "/key").raise_for_status()
                floors.append(time.perf_counter() - started)
            http.close()
        finally:
            witnessing.close()
    mean, floor = statistics.mean(rounds), statistics.mean(floors)
    return {
        "round_trip_ms": mean * 1000,
        "median_ms": statistics.median(rounds) * 1000,
        "floor_ms": floor * 1000,
        "ratio": mean / floor,
    }


def run(args: argparse.Namespace) -> dict[str, Any]:
    rng = random.Random(18)
    with tempfile.TemporaryDirectory(prefix="bench-tiles-") as folder:
        tmp = Path(folder)
        env = {
            **os.environ,
            "PYTHONPATH": str(ROOT / "src"),
            "MERIDIAN_DATABASE_URL": f"sqlite:///{tmp / 'meridian.db'}",
            "MERIDIAN_NODES": "none",
            "MERIDIAN_LOG_KEY": str(tmp / "log.key"),
            "MERIDIAN_GRANT_KEY": str(tmp / "grant.key"),
            "MERIDIAN_SESSION_KEY": str(tmp / "session.key"),
            "MERIDIAN_CHECKPOINT_INTERVAL": "0",
        }
        env.pop("MERIDIAN_MODE", None)
        rt = Runtime(Settings(database_url=env["MERIDIAN_DATABASE_URL"], log_key=tmp / "log.key"))
        rt.start()
        try:
            _grow(rt, args.size)
            size = rt.log.checkpoint().checkpoint.size
            port = _free_port()
            url = f"http://127.0.0.1:{port}"
            serve = ["serve", "--port", str(port)]
            with (
                _process(serve, env, url + "/log/checkpoint", "meridian serve"),
                httpx.Client(base_url=url, timeout=30) as client,
            ):
                served = measure_served(client, size, args.requests, rng)
                reads = measure_reads(client, size, args.proofs, rng)
            witness = measure_witness(rt, tmp, args.checkpoints)
        finally:
            rt.close()
    return {
        "size": size,
        "requests": args.requests,
        "proofs": args.proofs,
        "checkpoints": args.checkpoints,
        "served": served,
        "reads": reads,
        "witness": witness,
    }


def show(report: dict[str, Any]) -> None:
    s, r, w = report["served"], report["reads"], report["witness"]
    print(f"tiles and proofs, a log of {report['size']:,} entries (SQLite), one client")
    print(f"  served/s   tiles {s['tiles_per_s']:,.0f}   proof endpoint {s['proofs_per_s']:,.0f}"
          f"   ratio {s['ratio']:.2f}   (floor: GET /v1/log/key {s['floor_per_s']:,.0f}/s)")  # fmt: skip
    print(f"  {report['proofs']} inclusion proofs: endpoint {r['endpoint_per_s']:,.0f}/s;"
          f" tiles, no cache {r['tiles_cold_per_s']:,.0f}/s"
          f" ({r['tiles_cold_fetches_per_proof']:.1f} tiles a proof, ratio {r['cold_ratio']:.2f});"
          f" tiles, cached {r['tiles_cached_per_s']:,.0f}/s"
          f" ({r['tiles_cached_fetches']} tiles in all, ratio {r['cached_ratio']:.2f})")  # fmt: skip
    print(f"  witness round trip per checkpoint: {w['round_trip_ms']:.2f} ms mean"
          f" ({w['median_ms']:.2f} median) against an HTTP round trip of {w['floor_ms']:.2f} ms"
          f" (ratio {w['ratio']:.1f}), {report['checkpoints']} checkpoints")  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", type=int, default=20_000)
    parser.add_argument("--requests", type=int, default=2_000)
    parser.add_argument("--proofs", type=int, default=300)
    parser.add_argument("--checkpoints", type=int, default=100)
    parser.add_argument("--json", action="store_true")
    parser.add_argument("--quick", action="store_true")
    args = parser.parse_args()
    if args.quick:
        args.size, args.requests, args.proofs, args.checkpoints = 2_000, 100, 20, 5
    started = time.monotonic()
    report = run(args)
    report["seconds"] = time.monotonic() - started
    if args.json:
        print(json.dumps(report, indent=2))
    else:
        show(report)
    print(f"bench/tiles.py: 3 cases in {report['seconds']:.1f} s", file=sys.stderr)


if __name__ == "__main__":
    main()
