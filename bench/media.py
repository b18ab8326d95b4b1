"""Media through the relay: video-sized sealed frames at 30 fps, against the bare forwarder.

Usage::

    .venv/bin/python bench/media.py              # a table
    .venv/bin/python bench/media.py --json       # one JSON object on stdout
    .venv/bin/python bench/media.py --rounds 1 --seconds 2

What is measured
----------------

The forwarders of bench/relay.py, as separate processes on 127.0.0.1, one at a time: ``relay``,
a real ``meridian node --region US`` (grant checks, layers, counters), and ``bare``, the peer the
target is set against (uvicorn with the same WebSocket stack, no FastAPI, no check, no count).

The load is what a call sends, paced, not a closed loop: each sender sends 30 frames a second,
sealed before timing (:func:`~meridian.keys.seal_frame`, kind ``VIDEO_HIGH``) with sizes from 1 to
20 KB (a 20 KB keyframe every 30th frame, the rest spread between 1 and 8 KB: about 5 KB on
average, 1.2 Mbit/s). Two shapes: ``1→1`` (``--meetings-1`` meetings of one sender and one
receiver at once) and ``1→9`` (``--meetings-9`` meetings of one sender and nine receivers). The
clients are the ``websockets`` asyncio client in this process (at this rate it is not the side
that sets the pace: its CPU share is shown).

Each frame's nonce identifies it; the receiver looks up when it was sent, so latency is send to
arrival through the forwarder, both ends on this machine's clock. Per forwarder and shape,
medians over ``--rounds`` rounds of ``--seconds``: frames/s delivered, latency p50 and p99 (ms),
and the forwarder's CPU seconds per frame delivered (``/proc``). The relay's figures are set
against the bare forwarder's of the same round: frames/s ratio, and added latency (relay minus
bare, p50 and p99). The targets (issue 17): ratio ≥ 0.5, p99 added ≤ 5 ms at this load.

From the relay's CPU per delivered frame of the ``1→9`` shape: how many 1.5 Mbit/s streams one
core forwards (a stream of frames averaging the load's size), and so how many participants of
10-person calls where everyone sends (each receives nine streams) a core carries.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

FPS = 30
SIZES = [20_000 if i % 30 == 0 else 1000 + (i * 2357) % 7000 for i in range(90)]
STREAM_BITS = 1_500_000
CALL = 10  # participants of a call in the capacity figure, each sending
TARGET_RATIO = 0.5
TARGET_ADDED_P99_MS = 5.0
REGION = "US"


def sealed_frames(meeting: str) -> list[bytes]:
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    from meridian.keys import FrameKind, seal_frame, sender_key

    key = sender_key(os.urandom(32), meeting, "p_sender", 1)
    signing = Ed25519PrivateKey.generate()
    return [
        seal_frame(
            key,
            meeting=meeting,
            sender="p_sender",
            epoch=1,
            kind=FrameKind.VIDEO_HIGH,
            payload=os.urandom(size - 120),
            signing_key=signing,
        )
        for size in SIZES
    ]


def _nonce(frame: bytes) -> bytes:
    end = 9 + frame[8]
    return frame[end : end + 12]


async def one_meeting(
    url: str, grant: Any, frames: list[bytes], receivers: int, seconds: float
) -> dict[str, Any]:
    """One sender at FPS and ``receivers`` receivers; latencies (ms) and frames delivered."""
    from websockets.asyncio.client import connect

    async def join(who: str) -> Any:
        conn = await connect(url, proxy=None, compression=None, max_size=2**24)
        await conn.send(json.dumps({"grant": grant(who)}))
        ready = json.loads(await conn.recv())
        assert ready["type"] == "ready", ready
        return conn

    sender = await join("p_sender")
    listeners = [await join(f"p_r{i}") for i in range(receivers)]
    sent_at: dict[bytes, float] = {}
    latencies: list[float] = []
    delivered = 0
    done = asyncio.Event()

    async def receive(conn: Any) -> None:
        nonlocal delivered
        while not done.is_set():
            try:
                frame = await asyncio.wait_for(conn.recv(), 0.5)
            except TimeoutError:
                continue
            at = time.perf_counter()
            sent = sent_at.get(_nonce(frame))
            if sent is not None:
                latencies.append((at - sent) * 1000)
            delivered += 1

    tasks = [asyncio.create_task(receive(c)) for c in listeners]
    await asyncio.sleep(0.2)
    start = time.perf_counter()
    n = 0
    while (now := time.perf_counter()) - start < seconds:
        frame = frames[n % len(frames)]
        sent_at[_nonce(frame)] = now
        await sender.send(frame)
        n += 1
        await asyncio.sleep(max(0.0, start + n / FPS - time.perf_counter()))
    await asyncio.sleep(0.5)  # what is in flight arrives
    done.set()
    await asyncio.gather(*tasks)
    elapsed = time.perf_counter() - start
    for conn in (sender, *listeners):
        await conn.close()
    return {"sent": n, "delivered": delivered, "latencies": latencies, "seconds": elapsed}


async def one_round(
    urls: dict[str, Any], shapes: dict[int, int], seconds: float, pids: dict[str, int]
) -> dict[str, Any]:
    from relay import _cpu

    out: dict[str, Any] = {}
    for receivers, meetings in shapes.items():
        for kind, (url_of, grant) in urls.items():
            cpu0 = _cpu(pids[kind])
            client0 = time.process_time()
            results = await asyncio.gather(
                *(
                    one_meeting(
                        url_of(f"mtg_media_{receivers}_{m}"),
                        grant(f"mtg_media_{receivers}_{m}"),
                        FRAMES[f"mtg_media_{receivers}_{m}"],
                        receivers,
                        seconds,
                    )
                    for m in range(meetings)
                )
            )
            cpu1 = _cpu(pids[kind])
            lat = sorted(x for r in results for x in r["latencies"])
            delivered = sum(r["delivered"] for r in results)
            span = max(r["seconds"] for r in results)
            out[f"{kind} 1→{receivers}"] = {
                "frames_s": delivered / span,
                "expected": sum(r["sent"] for r in results) * receivers,
                "delivered": delivered,
                "p50": lat[len(lat) // 2] if lat else None,
                "p99": lat[min(len(lat) - 1, int(len(lat) * 0.99))] if lat else None,
                "cpu_per_frame": None
                if cpu0 is None or cpu1 is None or not delivered
                else (cpu1 - cpu0) / delivered,
                "client_cpu_share": (time.process_time() - client0) / span,
            }
    return out


FRAMES: dict[str, list[bytes]] = {}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--seconds", type=float, default=4.0)
    parser.add_argument("--meetings-1", type=int, default=8, help="1→1 meetings at once")
    parser.add_argument("--meetings-9", type=int, default=2, help="1→9 meetings at once")
    parser.add_argument("--json", action="store_true")
    options = parser.parse_args()
    sys.path.insert(0, str(Path(__file__).resolve().parent))

    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    from meridian.keys.grants import Grant, GrantSigner, public_key_b64
    from meridian.node.cluster import LocalCluster
    from relay import start_forwarder

    shapes = {1: options.meetings_1, 9: options.meetings_9}
    for receivers, meetings in shapes.items():
        for m in range(meetings):
            FRAMES[f"mtg_media_{receivers}_{m}"] = sealed_frames(f"mtg_media_{receivers}_{m}")
    signer = GrantSigner(Ed25519PrivateKey.generate())

    def granter(meeting: str) -> Any:
        def grant(who: str) -> str:
            return signer.sign(
                Grant(
                    typ="relay",
                    meeting=meeting,
                    participant=who,
                    dc=REGION,
                    regions=(REGION,),
                    key_region=REGION,
                    ip="127.0.0.1",
                ),
                seconds=3600,
            )

        return grant

    started = time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())
    with tempfile.TemporaryDirectory(prefix="meridian-bench-media-") as tmp:
        cluster = LocalCluster(
            [REGION], control_key=public_key_b64(signer.public_key), directory=Path(tmp, "nodes")
        )
        cluster.start()
        bare = start_forwarder("bare", Path(tmp, "bare"))
        try:
            node = cluster[REGION]
            urls = {
                "relay": (lambda _m: node.relay_url, granter),
                "bare": (lambda m: f"ws://127.0.0.1:{bare.port}/{m}", granter),
            }
            pids = {"relay": node.process.pid, "bare": bare.pid}
            rounds = [
                asyncio.run(one_round(urls, shapes, options.seconds, pids))
                for _ in range(options.rounds)
            ]
        finally:
            bare.stop()
            cluster.stop()
    report = summarise(rounds, shapes, started)
    if options.json:
        print(json.dumps(report, indent=2))
    else:
        show(report)


def _median(rounds: list[dict[str, Any]], case: str, field: str) -> float | None:
    values = [r[case][field] for r in rounds if r[case][field] is not None]
    return statistics.median(values) if values else None


def summarise(rounds: list[dict[str, Any]], shapes: dict[int, int], started: str) -> dict[str, Any]:
    cases: dict[str, Any] = {}
    for case in rounds[0]:
        cases[case] = {
            f: _median(rounds, case, f)
            for f in ("frames_s", "p50", "p99", "cpu_per_frame", "client_cpu_share")
        }
        cases[case]["lost"] = sum(r[case]["expected"] - r[case]["delivered"] for r in rounds)
    compared = {}
    for receivers in shapes:
        relay, bare = cases[f"relay 1→{receivers}"], cases[f"bare 1→{receivers}"]
        compared[f"1→{receivers}"] = {
            "ratio": relay["frames_s"] / bare["frames_s"],
            "added_p50_ms": relay["p50"] - bare["p50"],
            "added_p99_ms": relay["p99"] - bare["p99"],
        }
    mean_bytes = statistics.mean(SIZES)
    stream_fps = STREAM_BITS / 8 / mean_bytes
    cpu = cases["relay 1→9"]["cpu_per_frame"]
    streams = None if not cpu else 1 / (cpu * stream_fps)
    return {
        "started": started,
        "cpus": os.cpu_count(),
        "load": {"fps": FPS, "mean_frame_bytes": round(mean_bytes), "shapes": shapes},
        "cases": cases,
        "compared": compared,
        "capacity": {
            "stream_mbit_s": STREAM_BITS / 1e6,
            "stream_frames_s": round(stream_fps, 1),
            "relay_cpu_us_per_frame": None if not cpu else round(cpu * 1e6, 1),
            "streams_per_core": None if streams is None else round(streams),
            f"participants_per_core_in_{CALL}_person_calls": None
            if streams is None
            else round(streams / (CALL - 1)),
        },
    }


def show(report: dict[str, Any]) -> None:
    print(f"bench/media.py, {report['started']}, {report['cpus']} CPUs, {report['load']}")
    print(
        f"{'case':14} {'frames/s':>9} {'p50 ms':>8} {'p99 ms':>8} {'cpu µs/frame':>13} {'lost':>5}"
    )
    for case, c in report["cases"].items():
        cpu = "-" if c["cpu_per_frame"] is None else f"{c['cpu_per_frame'] * 1e6:.1f}"
        print(
            f"{case:14} {c['frames_s']:9.0f} {c['p50']:8.2f} {c['p99']:8.2f} {cpu:>13} {c['lost']:5}"
        )
    for shape, c in report["compared"].items():
        print(
            f"relay ÷ bare {shape}: frames/s {c['ratio']:.2f} (target ≥ {TARGET_RATIO}); added "
            f"latency p50 {c['added_p50_ms']:.2f} ms, p99 {c['added_p99_ms']:.2f} ms "
            f"(target ≤ {TARGET_ADDED_P99_MS} ms)"
        )
    print(f"capacity: {report['capacity']}")


if __name__ == "__main__":
    main()
