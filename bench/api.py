"""HTTP benchmark: ``POST /v1/decisions`` against a no-op endpoint of the same app, same run.

Usage::

    .venv/bin/python bench/api.py                      # rich table
    .venv/bin/python bench/api.py --json               # one JSON object on stdout
    .venv/bin/python bench/api.py --seconds 1 --rounds 2 --connections 16

While it runs, a bar on stderr follows its rounds (warm-ups included), redrawn only between
them: no thread runs beside a timed section. It ends with one line on stderr, ``bench/api.py: 24
rounds in …`` (24 by default).

What is measured
----------------

The service runs as a real, separate process: ``create_app(runtime=...)`` under uvicorn on
127.0.0.1 (one worker, uvicorn's defaults otherwise: uvloop and httptools when installed;
``proxy_headers=False``, no access log, log level warning), on a new SQLite database in a
temporary folder, with an operator token made for the run. The load generator runs in this
process: a small HTTP/1.1 keep-alive client on raw asyncio sockets (uvloop when installed), with
a fixed number of connections, each sending its next request as soon as the previous answer has
arrived (a closed loop). Each request's latency runs from the write of its bytes to the last byte
of its answer.

* ``noop``: ``POST /v1/noop``, the app's baseline: the same authentication and body read as a
  decision, then ``{"ok": true}``. It receives the same bodies as ``decisions``.
* ``decisions``: ``POST /v1/decisions`` with one request each, from ``bench/_workload.py`` (the
  decision benchmark's seeded mix), serialised to JSON bytes before timing.
* ``batch``: ``POST /v1/decisions:batch`` with ``--batch-size`` (100) requests per call; its
  throughput is reported as calls/s and decisions/s.
* ``ceiling``: the same client against a bare asyncio server in another process that answers
  every request with fixed bytes, no framework: what the load generator itself can drive. When
  it is far above the app's figures the client is not what limits them.

Each endpoint first gets a warm-up (requests from another seed), then ``--rounds`` timed rounds,
interleaved (noop, decisions, batch, noop, decisions, batch, ...) so that a noisy moment touches
all of them. A round stops after ``--seconds`` or ``--max-requests`` requests, whichever comes
first. The figures are the median over the rounds; the CPU time the server process and this
process used during each round is read too (``/proc``), to show which side was saturated. Every
answer must be 200; the decision answers of a sample are checked against the same engine run in
this process.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import platform
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

if TYPE_CHECKING:
    # imported in main() only: the server processes (`--serve`) import this file too
    from meridian.cli.progress import CaseBar

DEFAULT_CONNECTIONS = 32
DEFAULT_ROUNDS = 5
DEFAULT_SECONDS = 1.8
DEFAULT_MAX_REQUESTS = 200_000
DEFAULT_WARMUP_SECONDS = 1.0
DEFAULT_REQUESTS = 20_000
DEFAULT_BATCH_SIZE = 100
DEFAULT_SEED = 20200823
CHECKED = 200  # decisions compared with the in-process engine, per endpoint
START_TIMEOUT = 60.0
ROUND_GRACE = 30.0

#: The targets: the decision endpoint keeps this share of the no-op endpoint's requests/s, and
#: ``:batch`` with 100 requests per call reaches this many decisions/s.
TARGET_RATIO = 0.70
TARGET_BATCH_DECISIONS = 100_000

Row = dict[str, Any]


# -- the servers (each runs in its own process: ``bench/api.py --serve app|raw DIR``) -----------


def _listen() -> socket.socket:
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    sock.listen(1024)
    sock.set_inheritable(True)
    return sock


def _announce(directory: Path, info: dict[str, Any]) -> None:
    """Tell the bench how to reach this server (written whole, then renamed into place)."""
    tmp = directory / "server.json.tmp"
    tmp.write_text(json.dumps(info))
    tmp.replace(directory / "server.json")


def serve_app(directory: Path, profile: Path | None) -> None:
    """Meridian's app under uvicorn, on a new SQLite database in ``directory``."""
    import uvicorn

    from meridian.audit import SYSTEM
    from meridian.identity.people import add_operator
    from meridian.runtime import Runtime
    from meridian.server import create_app
    from meridian.settings import Settings

    # the bench's one token sends far more than a caller may (rate_decisions): the limiter is
    # still counted on every call, at a limit the bench cannot reach
    rt = Runtime(
        Settings(
            database_url=f"sqlite:///{directory / 'bench.db'}",
            renew_interval=0,
            rate_decisions="1000000000/minute",
        )
    )
    rt.start()
    with rt.db.write() as session:
        _, _, secret = add_operator(
            session, name="bench", at=rt.now(), actor=SYSTEM, digest=rt.digest
        )
    config = uvicorn.Config(
        create_app(runtime=rt),
        log_level="warning",
        access_log=False,
        proxy_headers=False,
        workers=1,
    )
    server = uvicorn.Server(config)
    sock = _listen()
    _announce(
        directory,
        {
            "port": sock.getsockname()[1],
            "token": secret,
            "loop": _loop_name(),
            "http": _http_name(),
        },
    )
    profiler = None
    if profile is not None:
        import cProfile

        profiler = cProfile.Profile()
        profiler.enable()
    try:
        server.run(sockets=[sock])
    finally:
        if profiler is not None:
            profiler.disable()
            profiler.dump_stats(str(profile))


def _loop_name() -> str:
    try:
        import uvloop  # noqa: F401
    except ImportError:
        return "asyncio"
    return "uvloop"


def _http_name() -> str:
    try:
        import httptools  # noqa: F401
    except ImportError:
        return "h11"
    return "httptools"


_RAW_ANSWER = (
    b'HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: 11\r\n\r\n{"ok":true}'
)


class _RawServer(asyncio.Protocol):
    """Reads each request (headers and ``Content-Length`` body) and answers fixed bytes."""

    def __init__(self) -> None:
        self.buffer = bytearray()
        self.transport: asyncio.Transport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]

    def data_received(self, data: bytes) -> None:
        buffer = self.buffer
        buffer += data
        while True:
            end = buffer.find(b"\r\n\r\n")
            if end < 0:
                return
            total = end + 4 + _content_length(buffer, end)
            if len(buffer) < total:
                return
            del buffer[:total]
            assert self.transport is not None
            self.transport.write(_RAW_ANSWER)


def serve_raw(directory: Path) -> None:
    """The calibration server: no framework, fixed answers."""

    async def main() -> None:
        sock = _listen()
        server = await asyncio.get_running_loop().create_server(_RawServer, sock=sock)
        await serve_until_signalled(server, sock, directory)

    _run(main())


async def serve_until_signalled(
    server: asyncio.AbstractServer, sock: socket.socket, directory: Path
) -> None:
    """Announce a calibration server's port in ``directory`` and serve until SIGINT or SIGTERM."""
    loop = asyncio.get_running_loop()
    _announce(directory, {"port": sock.getsockname()[1], "token": "-", "loop": _loop_name()})
    stop = asyncio.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    async with server:
        await stop.wait()


def _run(coroutine: Any) -> Any:
    try:
        import uvloop
    except ImportError:
        return asyncio.run(coroutine)
    return uvloop.run(coroutine)


# -- the load generator ------------------------------------------------------------------------


def _content_length(buffer: bytearray, end: int) -> int:
    head = bytes(buffer[:end]).lower()
    at = head.find(b"content-length:")
    if at < 0:
        return 0
    stop = head.find(b"\r\n", at)
    return int(head[at + 15 : stop if stop >= 0 else len(head)])


class _Client(asyncio.Protocol):
    """One keep-alive connection; one request in flight at a time."""

    def __init__(self) -> None:
        self.buffer = bytearray()
        self.transport: asyncio.Transport | None = None
        self.waiter: asyncio.Future[tuple[int, bytes]] | None = None
        self.keep_body = False

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]

    def data_received(self, data: bytes) -> None:
        buffer = self.buffer
        buffer += data
        end = buffer.find(b"\r\n\r\n")
        if end < 0:
            return
        total = end + 4 + _content_length(buffer, end)
        if len(buffer) < total:
            return
        status = int(buffer[9:12])
        body = bytes(buffer[end + 4 : total]) if self.keep_body else b""
        del buffer[:total]
        waiter, self.waiter = self.waiter, None
        if waiter is not None and not waiter.done():
            waiter.set_result((status, body))

    def connection_lost(self, exc: Exception | None) -> None:
        waiter, self.waiter = self.waiter, None
        if waiter is not None and not waiter.done():
            waiter.set_exception(ConnectionError(f"server closed the connection: {exc}"))

    async def send(self, payload: bytes) -> tuple[int, bytes]:
        assert self.transport is not None
        waiter: asyncio.Future[tuple[int, bytes]] = asyncio.get_running_loop().create_future()
        self.waiter = waiter
        self.transport.write(payload)
        return await waiter


def http_request(path: str, port: int, token: str, body: bytes) -> bytes:
    """The whole request as bytes, built once before timing."""
    head = (
        f"POST {path} HTTP/1.1\r\nhost: 127.0.0.1:{port}\r\nauthorization: Bearer {token}\r\n"
        f"content-type: application/json\r\ncontent-length: {len(body)}\r\n\r\n"
    )
    return head.encode() + body


@dataclass
class Round:
    """What one timed run against one endpoint gave."""

    requests: int = 0
    seconds: float = 0.0
    latencies_ns: list[int] = field(default_factory=list)
    bad: dict[int, int] = field(default_factory=dict)
    server_cpu: float | None = None
    client_cpu: float = 0.0


class LoadGenerator:
    """A fixed pool of keep-alive connections to one server."""

    def __init__(self, port: int, connections: int) -> None:
        self.port = port
        self.size = connections
        self.clients: list[_Client] = []

    async def open(self) -> None:
        loop = asyncio.get_running_loop()
        for _ in range(self.size):
            _, client = await loop.create_connection(_Client, "127.0.0.1", self.port)
            assert client.transport is not None
            sock = client.transport.get_extra_info("socket")
            if sock is not None:
                sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            self.clients.append(client)

    def close(self) -> None:
        for client in self.clients:
            if client.transport is not None:
                client.transport.close()
        self.clients = []

    async def run(
        self, payloads: Sequence[bytes], seconds: float, limit: int, server_pid: int | None
    ) -> Round:
        """Send ``payloads`` (cycled) on every connection until ``seconds`` or ``limit`` is up."""
        clock = time.perf_counter_ns
        result = Round()
        latencies = result.latencies_ns
        bad = result.bad
        state = {"next": 0}
        deadline = clock() + int(seconds * 1e9)
        count = len(payloads)

        async def worker(client: _Client) -> None:
            while True:
                i = state["next"]
                if i >= limit or clock() >= deadline:
                    return
                state["next"] = i + 1
                start = clock()
                status, _ = await client.send(payloads[i % count])
                latencies.append(clock() - start)
                if status != 200:
                    bad[status] = bad.get(status, 0) + 1

        server_before = _cpu_seconds(server_pid)
        client_before = time.process_time()
        began = clock()
        # Bounded even if the server stops answering: a round past its time by ROUND_GRACE
        # seconds fails the run.
        await asyncio.wait_for(
            asyncio.gather(*(worker(c) for c in self.clients)), seconds + ROUND_GRACE
        )
        result.seconds = (clock() - began) / 1e9
        result.client_cpu = (time.process_time() - client_before) / result.seconds
        server_after = _cpu_seconds(server_pid)
        if server_before is not None and server_after is not None:
            result.server_cpu = (server_after - server_before) / result.seconds
        result.requests = len(latencies)
        return result

    async def answers(self, payloads: Sequence[bytes]) -> list[tuple[int, bytes]]:
        """Send each payload once, in order, on one connection, and keep the answers."""
        client = self.clients[0]
        client.keep_body = True
        try:
            return [await client.send(p) for p in payloads]
        finally:
            client.keep_body = False


def _cpu_seconds(pid: int | None) -> float | None:
    """User and system CPU time of process ``pid`` (all its threads), from ``/proc``."""
    if pid is None:
        return None
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return None
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


# -- running a server --------------------------------------------------------------------------


@dataclass
class Server:
    process: subprocess.Popen[bytes]
    port: int
    token: str
    info: dict[str, Any]

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGINT)
            try:
                self.process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()


def start_server(kind: str, directory: Path, profile: Path | None = None) -> Server:
    """Start ``bench/api.py --serve kind`` and wait until it listens."""
    command = [sys.executable, str(Path(__file__).resolve()), "--serve", kind, str(directory)]
    if profile is not None:
        command += ["--profile-to", str(profile)]
    process = subprocess.Popen(command, stdin=subprocess.DEVNULL)
    announced = directory / "server.json"
    deadline = time.monotonic() + START_TIMEOUT
    while not announced.exists():
        if process.poll() is not None:
            raise RuntimeError(f"the {kind} server exited with {process.returncode}")
        if time.monotonic() > deadline:
            process.kill()
            raise RuntimeError(f"the {kind} server did not start in {START_TIMEOUT:g} s")
        time.sleep(0.05)
    info = json.loads(announced.read_text())
    _wait_listening(info["port"], deadline)
    return Server(process, info["port"], info["token"], info)


def _wait_listening(port: int, deadline: float) -> None:
    while True:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=1):
                return
        except OSError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.05)


# -- the run -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Options:
    connections: int = DEFAULT_CONNECTIONS
    rounds: int = DEFAULT_ROUNDS
    seconds: float = DEFAULT_SECONDS
    max_requests: int = DEFAULT_MAX_REQUESTS
    warmup_seconds: float = DEFAULT_WARMUP_SECONDS
    requests: int = DEFAULT_REQUESTS
    batch_size: int = DEFAULT_BATCH_SIZE
    seed: int = DEFAULT_SEED
    ceiling: bool = True
    profile: Path | None = None


@dataclass(frozen=True)
class Bodies:
    """Every body the run sends, as JSON bytes, and what the engine in this process answers."""

    single: list[bytes]
    warm_single: list[bytes]
    batch: list[bytes]
    warm_batch: list[bytes]
    expected: list[dict[str, Any]]  # the decisions of the first CHECKED single bodies


def build_bodies(options: Options) -> Bodies:
    from _workload import build_workload
    from meridian.policy import Engine, compile_bundle, load_bundle

    bundle = compile_bundle(load_bundle())
    workload = build_workload(bundle, options.requests, options.seed)
    warmup = build_workload(bundle, min(2_000, options.requests), options.seed + 1)
    engine = Engine(bundle)
    expected = [engine.decide(r).to_dict() for r in workload.parsed[:CHECKED]]

    def dumps(value: Any) -> bytes:
        return json.dumps(value, separators=(",", ":")).encode()

    def batches(wire: list[dict[str, Any]]) -> list[bytes]:
        size = options.batch_size
        return [
            dumps({"requests": wire[i : i + size]}) for i in range(0, len(wire) - size + 1, size)
        ] or [dumps({"requests": wire[:size]})]

    return Bodies(
        single=[dumps(w) for w in workload.wire],
        warm_single=[dumps(w) for w in warmup.wire],
        batch=batches(workload.wire),
        warm_batch=batches(warmup.wire),
        expected=expected,
    )


ENDPOINTS = {"noop": "/v1/noop", "decisions": "/v1/decisions", "batch": "/v1/decisions:batch"}


def planned_rounds(options: Options) -> int:
    """How many rounds a run times: a warm-up and ``rounds`` for each endpoint (and the ceiling)."""
    endpoints = len(ENDPOINTS) + (1 if options.ceiling else 0)
    return endpoints * (1 + options.rounds)


async def _measure_app(
    server: Server, bodies: Bodies, options: Options, bar: CaseBar
) -> dict[str, Any]:
    def requests(path: str, payloads: list[bytes]) -> list[bytes]:
        return [http_request(path, server.port, server.token, b) for b in payloads]

    timed = {
        "noop": requests(ENDPOINTS["noop"], bodies.single),
        "decisions": requests(ENDPOINTS["decisions"], bodies.single),
        "batch": requests(ENDPOINTS["batch"], bodies.batch),
    }
    warm = {
        "noop": requests(ENDPOINTS["noop"], bodies.warm_single),
        "decisions": requests(ENDPOINTS["decisions"], bodies.warm_single),
        "batch": requests(ENDPOINTS["batch"], bodies.warm_batch),
    }
    generator = LoadGenerator(server.port, options.connections)
    await generator.open()
    try:
        checks = await _check_answers(generator, server, bodies)
        pid = server.process.pid
        for name in timed:
            bar.start(f"{name}, warm-up")
            await generator.run(warm[name], options.warmup_seconds, options.max_requests, pid)
        rounds: dict[str, list[Round]] = {name: [] for name in timed}
        for number in range(1, options.rounds + 1):
            for name, payloads in timed.items():
                bar.start(f"{name}, round {number} of {options.rounds}")
                rounds[name].append(
                    await generator.run(payloads, options.seconds, options.max_requests, pid)
                )
    finally:
        generator.close()
    return {"rounds": rounds, "checks": checks}


async def _check_answers(generator: LoadGenerator, server: Server, bodies: Bodies) -> Row:
    """The first decisions, one at a time and as one batch, must equal this process's engine's."""
    single = [
        http_request(ENDPOINTS["decisions"], server.port, server.token, b)
        for b in bodies.single[:CHECKED]
    ]
    answers = await generator.answers(single)
    singles_agree = all(
        status == 200 and json.loads(body) == want
        for (status, body), want in zip(answers, bodies.expected, strict=True)
    )
    batch_body = b'{"requests":[' + b",".join(bodies.single[:CHECKED]) + b"]}"
    [(status, body)] = await generator.answers(
        [http_request(ENDPOINTS["batch"], server.port, server.token, batch_body)]
    )
    batch_agree = status == 200 and json.loads(body)["decisions"] == bodies.expected
    noop = await generator.answers(
        [http_request(ENDPOINTS["noop"], server.port, server.token, bodies.single[0])]
    )
    return {
        "checked": len(bodies.expected),
        "decisions_agree": singles_agree,
        "batch_agree": batch_agree,
        "noop_ok": noop[0] == (200, b'{"ok":true}'),
    }


async def _measure_ceiling(
    server: Server, bodies: Bodies, options: Options, bar: CaseBar
) -> list[Round]:
    payloads = [http_request("/", server.port, server.token, b) for b in bodies.single]
    generator = LoadGenerator(server.port, options.connections)
    await generator.open()
    try:
        pid = server.process.pid
        bar.start("ceiling, warm-up")
        await generator.run(payloads, options.warmup_seconds, options.max_requests, pid)
        rounds = []
        for number in range(1, options.rounds + 1):
            bar.start(f"ceiling, round {number} of {options.rounds}")
            rounds.append(await generator.run(payloads, options.seconds, options.max_requests, pid))
        return rounds
    finally:
        generator.close()


def _percentile(ordered: Sequence[int], q: float) -> float:
    """The ``q`` quantile by the nearest-rank method."""
    rank = max(1, -(-len(ordered) * q // 1))
    return float(ordered[int(rank) - 1])


def summarise(rounds: list[Round], per_call: int = 1) -> Row:
    """The median over rounds of requests/s, p50 and p99, and each round's own figures."""
    each = []
    for r in rounds:
        ordered = sorted(r.latencies_ns)
        each.append(
            {
                "requests": r.requests,
                "seconds": round(r.seconds, 3),
                "rps": round(r.requests / r.seconds, 1) if r.seconds else 0.0,
                "p50_ms": round(_percentile(ordered, 0.50) / 1e6, 3) if ordered else None,
                "p99_ms": round(_percentile(ordered, 0.99) / 1e6, 3) if ordered else None,
                "server_cpu": None if r.server_cpu is None else round(r.server_cpu, 2),
                "server_cpu_us": None
                if r.server_cpu is None or not r.requests
                else round(r.server_cpu * r.seconds / r.requests * 1e6, 1),
                "client_cpu": round(r.client_cpu, 2),
                "non_200": {str(k): v for k, v in r.bad.items()},
            }
        )
    row: Row = {
        "rps": round(statistics.median(e["rps"] for e in each), 1),
        "p50_ms": _median_of(each, "p50_ms"),
        "p99_ms": _median_of(each, "p99_ms"),
        "server_cpu": _median_of(each, "server_cpu"),
        "server_cpu_us": _median_of(each, "server_cpu_us"),
        "client_cpu": _median_of(each, "client_cpu"),
        "requests": sum(e["requests"] for e in each),
        "non_200": sum(sum(e["non_200"].values()) for e in each),
        "rounds": each,
    }
    if per_call != 1:
        row["per_call"] = per_call
        row["decisions_per_s"] = round(row["rps"] * per_call, 1)
    return row


def _median_of(rows: list[Row], key: str) -> float | None:
    values = [r[key] for r in rows if r[key] is not None]
    return round(statistics.median(values), 3) if values else None


def run_benchmark(options: Options, bar: CaseBar) -> dict[str, Any]:
    """Start the servers, run every round, and return the report (the ``--json`` object)."""
    bodies = build_bodies(options)
    endpoints: dict[str, Row] = {}
    with tempfile.TemporaryDirectory(prefix="meridian-bench-") as tmp:
        app_dir = Path(tmp, "app")
        app_dir.mkdir()
        server = start_server("app", app_dir, options.profile)
        try:
            measured = _run(_measure_app(server, bodies, options, bar))
        finally:
            server.stop()
        rounds = measured["rounds"]
        endpoints["noop"] = summarise(rounds["noop"])
        endpoints["decisions"] = summarise(rounds["decisions"])
        endpoints["batch"] = summarise(rounds["batch"], options.batch_size)
        if options.ceiling:
            raw_dir = Path(tmp, "raw")
            raw_dir.mkdir()
            raw = start_server("raw", raw_dir)
            try:
                endpoints["ceiling"] = summarise(_run(_measure_ceiling(raw, bodies, options, bar)))
            finally:
                raw.stop()
    noop, decisions, batch = endpoints["noop"], endpoints["decisions"], endpoints["batch"]
    return {
        "endpoints": endpoints,
        "ratio": round(decisions["rps"] / noop["rps"], 3) if noop["rps"] else None,
        "batch_decisions_per_s": batch.get("decisions_per_s"),
        "checks": measured["checks"],
        "server": {
            "loop": server.info.get("loop"),
            "http": server.info.get("http"),
            "workers": 1,
            "database": "sqlite (temporary)",
        },
        "load": {
            "connections": options.connections,
            "rounds": options.rounds,
            "seconds_per_round": options.seconds,
            "max_requests_per_round": options.max_requests,
            "warmup_seconds": options.warmup_seconds,
            "distinct_requests": len(bodies.single),
            "batch_size": options.batch_size,
            "client_loop": _loop_name(),
        },
        "profiled": options.profile is not None,
        "machine": machine_info(),
    }


# -- the machine -------------------------------------------------------------------------------


#: the packages whose versions the HTTP benchmark reports
PACKAGES = (
    "meridian",
    "fastapi",
    "starlette",
    "pydantic",
    "uvicorn",
    "uvloop",
    "httptools",
    "orjson",
)


def machine_info(packages: tuple[str, ...] = PACKAGES) -> dict[str, Any]:
    """Where and with what the figures were measured (the service benchmarks share it)."""
    from decisions import _cpu_model, _ram_gb, _version

    return {
        "cpu": _cpu_model(),
        "cores": os.cpu_count(),
        "ram_gb": _ram_gb(),
        "python": platform.python_version(),
        "implementation": platform.python_implementation(),
        "platform": platform.platform(),
        "packages": {p: _version(p) for p in packages},
        "date": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
    }


# -- output ------------------------------------------------------------------------------------


def targets(report: dict[str, Any]) -> list[tuple[str, bool | None]]:
    ratio = report["ratio"]
    batch = report["batch_decisions_per_s"]
    return [
        (
            f"decisions keep ≥ {TARGET_RATIO:.0%} of noop's requests/s",
            None if ratio is None else ratio >= TARGET_RATIO,
        ),
        (
            f":batch ≥ {TARGET_BATCH_DECISIONS:,} decisions/s",
            None if batch is None else batch >= TARGET_BATCH_DECISIONS,
        ),
    ]


def _all_good(report: dict[str, Any]) -> bool:
    checks = report["checks"]
    return (
        checks["decisions_agree"]
        and checks["batch_agree"]
        and checks["noop_ok"]
        and all(row["non_200"] == 0 for row in report["endpoints"].values())
    )


def render_table(report: dict[str, Any]) -> None:
    """Print the report as a rich table, with the targets under it."""
    from rich.console import Console
    from rich.table import Table

    load = report["load"]
    table = Table(
        title=(
            f"HTTP API: {load['connections']} connections, median of {load['rounds']} rounds "
            f"of ≤ {load['seconds_per_round']:g} s"
        )
    )
    headers = (
        "endpoint",
        "requests/s",
        "decisions/s",
        "p50 ms",
        "p99 ms",
        "÷ noop",
        "server CPU",
        "client CPU",
        "requests",
    )
    for header in headers:
        table.add_column(header, justify="left" if header == "endpoint" else "right")
    noop_rps = report["endpoints"]["noop"]["rps"]
    labels = {
        "noop": "POST /v1/noop",
        "decisions": "POST /v1/decisions",
        "batch": f"POST /v1/decisions:batch ×{load['batch_size']}",
        "ceiling": "ceiling (bare asyncio server)",
    }
    for name, row in report["endpoints"].items():
        per_call = row.get("per_call", 1)
        decided = "" if name in ("noop", "ceiling") else f"{row['rps'] * per_call:,.0f}"
        table.add_row(
            labels[name],
            f"{row['rps']:,.0f}",
            decided,
            f"{row['p50_ms']:.2f}",
            f"{row['p99_ms']:.2f}",
            f"{row['rps'] / noop_rps:.2f}" if noop_rps and name != "batch" else "",
            "" if row["server_cpu"] is None else f"{row['server_cpu']:.0%}",
            f"{row['client_cpu']:.0%}",
            f"{row['requests']:,}",
        )
    console = Console(width=max(Console().width, 120))
    console.print(table)
    machine, server = report["machine"], report["server"]
    console.print(
        f"{machine['cpu']}, {machine['cores']} cores, {machine['ram_gb']} GB, Python "
        f"{machine['python']}; server: uvicorn, 1 worker, {server['loop']} + {server['http']}; "
        f"client: raw asyncio sockets on {load['client_loop']}"
    )
    checks = report["checks"]
    console.print(
        f"answers: {checks['checked']} decisions checked against the engine in this process: "
        f"single {'agree' if checks['decisions_agree'] else 'DISAGREE'}, batch "
        f"{'agrees' if checks['batch_agree'] else 'DISAGREES'}; non-200 answers: "
        f"{sum(r['non_200'] for r in report['endpoints'].values())}"
    )
    console.print(f"decisions ÷ noop requests/s: {report['ratio']:.2f}")
    if report.get("profiled"):
        console.print("the app server ran under cProfile: these figures are not the service's")
    for label, met in targets(report):
        verdict = "n/a" if met is None else ("met" if met else "NOT met")
        console.print(f"target {label}: {verdict}")


def main(argv: Sequence[str] | None = None) -> int:
    """Run the benchmark and print a table (default) or the JSON report."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--connections", type=int, default=DEFAULT_CONNECTIONS)
    parser.add_argument("--rounds", type=int, default=DEFAULT_ROUNDS, help="timed rounds each")
    parser.add_argument(
        "--seconds", type=float, default=DEFAULT_SECONDS, help="longest timed round, seconds"
    )
    parser.add_argument(
        "--max-requests", type=int, default=DEFAULT_MAX_REQUESTS, help="most requests per round"
    )
    parser.add_argument("--warmup-seconds", type=float, default=DEFAULT_WARMUP_SECONDS)
    parser.add_argument(
        "--requests", type=int, default=DEFAULT_REQUESTS, help="distinct decision requests"
    )
    parser.add_argument("--batch-size", type=int, default=DEFAULT_BATCH_SIZE)
    parser.add_argument("--seed", type=int, default=DEFAULT_SEED, help="seed of the workload")
    parser.add_argument("--no-ceiling", action="store_true", help="skip the bare-server ceiling")
    parser.add_argument(
        "--profile-to",
        type=Path,
        help="run the app server under cProfile and write its stats here (slows it down)",
    )
    parser.add_argument("--json", action="store_true", help="print the report as JSON")
    parser.add_argument("--serve", nargs=2, metavar=("KIND", "DIR"), help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.serve:
        kind, directory = args.serve
        if kind == "app":
            serve_app(Path(directory), args.profile_to)
        else:
            serve_raw(Path(directory))
        return 0
    if args.connections < 1 or args.rounds < 1 or args.seconds <= 0 or args.max_requests < 1:
        parser.error("--connections, --rounds, --seconds and --max-requests must be positive")
    if not 1 <= args.batch_size <= 1000 or args.requests < args.batch_size:
        parser.error("--batch-size must be 1 to 1000 and at most --requests")
    if args.requests < CHECKED:
        parser.error(f"--requests must be at least {CHECKED}")
    options = Options(
        connections=args.connections,
        rounds=args.rounds,
        seconds=args.seconds,
        max_requests=args.max_requests,
        warmup_seconds=args.warmup_seconds,
        requests=args.requests,
        batch_size=args.batch_size,
        seed=args.seed,
        ceiling=not args.no_ceiling,
        profile=args.profile_to.resolve() if args.profile_to else None,
    )
    from meridian.cli.progress import bench_cases, summary

    with bench_cases("bench/api.py", planned_rounds(options), unit="round") as bar:
        report = run_benchmark(options, bar)
    if args.json:
        print(json.dumps(report))
    else:
        render_table(report)
    summary(bar.summary_line())
    return 0 if _all_good(report) else 1


if __name__ == "__main__":
    with contextlib.suppress(KeyboardInterrupt):
        sys.exit(main())
