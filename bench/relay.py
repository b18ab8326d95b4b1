"""Relay benchmark: 1 KB sealed frames through one real relay, against a bare forwarder, same run.

Usage::

    .venv/bin/python bench/relay.py                    # rich table
    .venv/bin/python bench/relay.py --json             # one JSON object on stdout
    .venv/bin/python bench/relay.py --rounds 3 --seconds 1 --receivers 1 4 --no-ceiling
    .venv/bin/python bench/relay.py --client websockets    # the websockets asyncio client

While it runs, a bar on stderr follows its rounds (warm-ups included), redrawn only between
them: no thread runs beside a timed section. It ends with one line on stderr, ``bench/relay.py:
36 rounds in …`` (36 by default).

What is measured
----------------

Three forwarders run as separate processes on 127.0.0.1, one at a time under load:

* ``relay``: a real ``meridian node --region US`` process, started with
  :class:`~meridian.node.cluster.LocalCluster`: uvicorn with ``ws="websockets-sansio"``, FastAPI,
  the grant check, per-socket outboxes and per-meeting counters, the node as it ships. It holds
  the public key of a :class:`~meridian.keys.grants.GrantSigner` made for the run. Every
  participant connects to ``/v1/relay``, sends ``{"grant": ...}`` (a relay grant for US, its
  address 127.0.0.1) and waits for ``{"type": "ready"}``.
* ``bare``: the peer the target is set against. A minimal forwarder on the same WebSocket stack
  as the node: uvicorn with ``ws="websockets-sansio"``, the same ``ws_max_size``, no
  per-message deflate, the same loop (uvicorn's ``auto``: uvloop when installed), log level
  warning, and a bare ASGI app with no FastAPI, no grant check and no counting. It accepts,
  reads one text message, answers ``{"type":"ready"}``, then sends each binary message to every
  other connection of the same room (the URL path), awaiting each send in turn.
* ``tcp``: context only, NOT the target's peer. A raw asyncio TCP forwarder (asyncio streams,
  4-byte big-endian length prefix, no WebSocket at all): a ceiling for a Python forwarder on
  this machine, and a check of how far the client can go past the WebSocket forwarders.

The load is one meeting per forwarder and shape, with one sender and ``R`` receivers
(``--receivers``, default ``1`` and ``4``). ``1→1`` is the cost of one hop (one read, one
write per frame); ``1→4`` is a small call, each frame read once and written four times. Frames
are sealed once before timing (:func:`~meridian.keys.seal_frame`, a real sender key, 1024 bytes
on the wire as one binary message) and the same bytes are sent every time. The sender keeps at
most ``--window`` (64) frames in flight, counted against the slowest receiver: a closed loop with
a window, so no queue grows without bound and the relay's 32 MB "too slow" limit is never near.

The clients run in this process, on one event loop (uvloop when installed). By default they are
lean, because the ``websockets`` asyncio client costs about as much CPU per frame as the
forwarders do, so it, not the forwarder, would set the pace (``--client websockets`` shows it).
A lean participant does its opening handshake and its grant/ready exchange with websockets' own
sans-I/O ``ClientProtocol``; after ``ready`` the sender writes the frame serialised and masked
before timing (16 serialisations with their own random masks, cycled, one ``write`` per frame),
and the receivers parse the forwarder's unmasked frames themselves, answering pings. The ``tcp``
ceiling gets the same kind of client for its own framing. With ``--pin`` (the default when there
are at least two CPUs) the forwarders are pinned to one CPU and this process to another, so each
side has a core of its own and the scheduler does not move them between rounds.

Each forwarder and shape first gets a warm-up (``--warmup-seconds``), then ``--rounds`` timed
rounds, interleaved (relay, bare, tcp for each shape, then again) so that a noisy moment touches
all of them. A round sends for ``--seconds``, then waits until every receiver has every frame;
its time runs from the first send to the last arrival. Figures are medians over the rounds:
frames/s delivered (summed over receivers), MB/s delivered (10^6 bytes of WebSocket payload),
frames/s sent, and the ratio relay ÷ bare of the median frames/s. The CPU time of the forwarder
process and of this process is read per round (``/proc``, all threads) to show which side
saturated, and gives the forwarder's CPU µs per delivered frame.

Checks: every receiver must get every frame, byte for byte equal to what was sent, and no
connection may close or carry anything else; a round that loses or changes a frame, or cannot
deliver them all within ``ROUND_GRACE`` seconds, fails the run (exit status 1) and is reported
as failed, not as fast. The relay's own counters (``GET /v1/stats/{meeting}``, read before the
participants leave) must equal what was sent and delivered, warm-up included, and show every
participant connected.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import functools
import json
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

DEFAULT_RECEIVERS = (1, 4)
DEFAULT_ROUNDS = 5
DEFAULT_SECONDS = 1.2
DEFAULT_WARMUP_SECONDS = 0.5
DEFAULT_WINDOW = 64
FRAME_BYTES = 1024  # the sealed frame, as one binary WebSocket message
START_TIMEOUT = 60.0
ROUND_GRACE = 10.0  # seconds a round may take past --seconds to deliver what is in flight
REGION = "US"
SENDER = "p_sender"
READY = '{"type":"ready"}'
WIRE_VARIANTS = 16  # masked serialisations of the frame the lean sender cycles through

if TYPE_CHECKING:
    # imported in main() only: the forwarder processes (`--serve`) import this file too
    from meridian.cli.progress import CaseBar

CLIENTS = ("lean", "websockets")

#: a side using this share of a core or more is the one that sets the pace
SATURATED = 0.85

#: The target: the relay delivers at least this share of the bare forwarder's frames/s.
TARGET_RATIO = 0.5

SERVERS = ("relay", "bare", "tcp")
LABELS = {
    "relay": "relay (meridian node)",
    "bare": "bare (uvicorn + sansio)",
    "tcp": "ceiling: raw TCP, not the peer",
}

Row = dict[str, Any]
Send = Callable[[dict[str, Any]], Awaitable[None]]


# -- the forwarders (each runs in its own process: ``bench/relay.py --serve bare|tcp DIR``) ----


class BareForwarder:
    """A bare ASGI app: accept, one text message, ready, then forward binary messages."""

    def __init__(self) -> None:
        self.rooms: dict[str, list[Send]] = {}

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Send) -> None:
        if scope["type"] == "lifespan":
            while True:
                message = await receive()
                if message["type"] == "lifespan.startup":
                    await send({"type": "lifespan.startup.complete"})
                elif message["type"] == "lifespan.shutdown":
                    await send({"type": "lifespan.shutdown.complete"})
                    return
        if scope["type"] != "websocket":
            await send({"type": "http.response.start", "status": 404, "headers": []})
            await send({"type": "http.response.body", "body": b""})
            return
        await receive()  # websocket.connect
        await send({"type": "websocket.accept"})
        first = await receive()
        if first["type"] != "websocket.receive" or first.get("text") is None:
            await send({"type": "websocket.close", "code": 4400})
            return
        await send({"type": "websocket.send", "text": READY})
        room = self.rooms.setdefault(scope["path"], [])
        room.append(send)
        try:
            while True:
                message = await receive()
                frame = message.get("bytes")
                if frame is None:
                    if message["type"] == "websocket.disconnect":
                        return
                    continue
                out = {"type": "websocket.send", "bytes": frame}
                for other in room:
                    if other is not send:
                        with contextlib.suppress(OSError, RuntimeError):
                            await other(out)
        finally:
            room.remove(send)


def serve_bare(directory: Path) -> None:
    """The bare forwarder under uvicorn, configured as ``meridian node`` configures it."""
    import uvicorn

    from api import _announce, _listen, _loop_name
    from meridian.node.relay import MAX_FRAME_BYTES

    config = uvicorn.Config(
        BareForwarder(),
        log_level="warning",
        access_log=False,
        proxy_headers=False,
        ws="websockets-sansio",
        ws_max_size=MAX_FRAME_BYTES,
        ws_per_message_deflate=False,
    )
    server = uvicorn.Server(config)
    sock = _listen()
    _announce(directory, {"port": sock.getsockname()[1], "token": "-", "loop": _loop_name()})
    server.run(sockets=[sock])


def serve_tcp(directory: Path) -> None:
    """The ceiling: length-prefixed frames over asyncio streams, no WebSocket, no framework."""
    from api import _listen, _run, serve_until_signalled

    rooms: dict[bytes, list[asyncio.StreamWriter]] = {}

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        room = rooms.setdefault((await reader.readline()).strip(), [])
        writer.write(READY.encode() + b"\n")
        await writer.drain()
        room.append(writer)
        try:
            while True:
                head = await reader.readexactly(4)
                data = head + await reader.readexactly(int.from_bytes(head, "big"))
                others = [w for w in room if w is not writer]
                for other in others:
                    other.write(data)
                for other in others:
                    await other.drain()
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        finally:
            room.remove(writer)
            writer.close()

    async def main() -> None:
        sock = _listen()
        server = await asyncio.start_server(handle, sock=sock)
        await serve_until_signalled(server, sock, directory)

    _run(main())


@dataclass
class Process:
    """A forwarder process: where it listens, and how to stop it."""

    name: str
    pid: int
    port: int
    stop: Callable[[], None]
    info: dict[str, Any] = field(default_factory=dict)


def start_forwarder(kind: str, directory: Path) -> Process:
    """Start ``bench/relay.py --serve kind DIR`` and wait until it listens."""
    from api import _wait_listening

    directory.mkdir(parents=True, exist_ok=True)
    command = [sys.executable, str(Path(__file__).resolve()), "--serve", kind, str(directory)]
    process = subprocess.Popen(command, stdin=subprocess.DEVNULL)
    announced = directory / "server.json"
    deadline = time.monotonic() + START_TIMEOUT
    while not announced.exists():
        if process.poll() is not None:
            raise RuntimeError(f"the {kind} forwarder exited with {process.returncode}")
        if time.monotonic() > deadline:
            process.kill()
            raise RuntimeError(f"the {kind} forwarder did not start in {START_TIMEOUT:g} s")
        time.sleep(0.05)
    info = json.loads(announced.read_text())
    _wait_listening(info["port"], deadline)

    def stop() -> None:
        if process.poll() is None:
            process.send_signal(signal.SIGINT)
            try:
                process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()

    return Process(kind, process.pid, info["port"], stop, info)


# -- the clients -------------------------------------------------------------------------------


@dataclass
class Round:
    """What one timed run of one forwarder and shape gave."""

    receivers: int
    sent: int = 0
    delivered: int = 0
    corrupt: int = 0
    seconds: float = 0.0
    server_cpu: float | None = None
    client_cpu: float = 0.0
    error: str | None = None

    @property
    def expected(self) -> int:
        return self.sent * self.receivers

    @property
    def ok(self) -> bool:
        return self.error is None and self.corrupt == 0 and self.delivered == self.expected


class Meeting:
    """One sender and its receivers on one forwarder; the receivers count what they get.

    Subclasses connect the participants and send one frame, either at once (``write``, the lean
    clients) or as a coroutine (``send``, the ``websockets`` client).
    """

    lean = True

    def __init__(self, frame: bytes, receivers: int) -> None:
        self.frame = frame
        self.counts = [0] * receivers
        self.corrupt = 0
        self.error: str | None = None
        self.waiter: asyncio.Future[None] | None = None
        self.warmup_sent = 0

    async def open(self) -> None:
        raise NotImplementedError

    def write(self) -> asyncio.Future[None] | None:
        """Send one frame now; a future to wait for before the next one if the socket is full."""
        raise NotImplementedError

    async def send(self) -> None:
        raise NotImplementedError

    def close(self) -> None:
        raise NotImplementedError

    def arrived(self, index: int, message: object) -> None:
        self.counts[index] += 1
        if message != self.frame:
            self.corrupt += 1
        waiter = self.waiter
        if waiter is not None and not waiter.done():
            waiter.set_result(None)

    def failed(self, why: str) -> None:
        if self.error is None:
            self.error = why
        waiter = self.waiter
        if waiter is not None and not waiter.done():
            waiter.set_result(None)

    async def _wait(self, deadline: float) -> None:
        self.waiter = asyncio.get_running_loop().create_future()
        try:
            await asyncio.wait_for(self.waiter, max(0.0, deadline - time.monotonic()))
        finally:
            self.waiter = None

    async def run(self, seconds: float, window: int, pid: int | None) -> Round:
        """Send for ``seconds`` with at most ``window`` frames in flight; wait for every frame."""
        counts = self.counts
        for i in range(len(counts)):
            counts[i] = 0
        self.corrupt = 0
        result = Round(receivers=len(counts))
        clock = time.perf_counter
        lean = self.lean
        sent = 0
        slowest = 0
        server_before = _cpu(pid)
        client_before = time.process_time()
        began = clock()
        stop = began + seconds
        grace = time.monotonic() + seconds + ROUND_GRACE
        try:
            while clock() < stop and self.error is None:
                if sent - slowest >= window:
                    slowest = min(counts)
                    while sent - slowest >= window and self.error is None:
                        await self._wait(grace)
                        slowest = min(counts)
                if lean:
                    full = self.write()
                    sent += 1
                    if full is not None:
                        await asyncio.wait_for(full, max(0.0, grace - time.monotonic()))
                else:
                    await self.send()
                    sent += 1
            while min(counts) < sent and self.error is None:
                await self._wait(grace)
        except TimeoutError:
            self.failed(f"frames still missing {ROUND_GRACE:g} s after the round")
        except (OSError, ConnectionError, RuntimeError) as exc:
            self.failed(f"send failed: {exc!r}")
        result.seconds = clock() - began
        result.client_cpu = (time.process_time() - client_before) / result.seconds
        server_after = _cpu(pid)
        if server_before is not None and server_after is not None:
            result.server_cpu = (server_after - server_before) / result.seconds
        result.sent = sent
        result.delivered = sum(counts)
        result.corrupt = self.corrupt
        result.error = self.error
        return result


class _Lean(asyncio.Protocol):
    """One lean participant connection: a greeting exchanged, then frames parsed by hand.

    ``on_frame(payload)`` is called for each message that arrives after the greeting;
    ``on_error(why)`` when the connection fails or the forwarder sends what it should not.
    """

    def __init__(self, on_frame: Callable[[bytes], None], on_error: Callable[[str], None]) -> None:
        self.on_frame = on_frame
        self.on_error = on_error
        self.transport: asyncio.Transport | None = None
        self.buffer = bytearray()
        self.fast = False
        self.greeted: asyncio.Future[str] = asyncio.get_running_loop().create_future()
        self.drained: asyncio.Future[None] | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]

    def connection_lost(self, exc: Exception | None) -> None:
        why = f"connection lost: {exc!r}" if exc else "connection closed"
        if not self.greeted.done():
            self.greeted.set_exception(ConnectionError(why))
        self.on_error(why)
        self._resume()

    def pause_writing(self) -> None:
        self.drained = asyncio.get_running_loop().create_future()

    def resume_writing(self) -> None:
        self._resume()

    def _resume(self) -> None:
        drained, self.drained = self.drained, None
        if drained is not None and not drained.done():
            drained.set_result(None)

    def data_received(self, data: bytes) -> None:
        if self.fast:
            self.buffer += data
            self.parse()
        else:
            self.greeting(data)

    def greeting(self, data: bytes) -> None:
        raise NotImplementedError

    def parse(self) -> None:
        raise NotImplementedError


class _LeanWebSocket(_Lean):
    """A WebSocket participant: the handshake and the grant/ready exchange by websockets' own
    sans-I/O :class:`~websockets.client.ClientProtocol`; after ``ready`` it writes frames
    serialised before timing and parses the forwarder's (unmasked) frames itself, answering
    pings."""

    def __init__(
        self,
        url: str,
        first: str,
        on_frame: Callable[[bytes], None],
        on_error: Callable[[str], None],
    ) -> None:
        from websockets.client import ClientProtocol
        from websockets.uri import parse_uri

        from meridian.node.relay import MAX_FRAME_BYTES

        super().__init__(on_frame, on_error)
        self.first = first
        self.protocol = ClientProtocol(parse_uri(url), max_size=MAX_FRAME_BYTES)

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        super().connection_made(transport)
        self.protocol.send_request(self.protocol.connect())
        self._flush()

    def _flush(self) -> None:
        assert self.transport is not None
        for chunk in self.protocol.data_to_send():
            if chunk:
                self.transport.write(chunk)

    def greeting(self, data: bytes) -> None:
        from websockets.frames import Frame, Opcode
        from websockets.http11 import Response

        self.protocol.receive_data(data)
        for event in self.protocol.events_received():
            if isinstance(event, Response):
                if self.protocol.handshake_exc is not None:
                    self.greeted.set_exception(
                        ConnectionError(f"handshake refused: {self.protocol.handshake_exc}")
                    )
                    return
                self.protocol.send_text(self.first.encode())
            elif isinstance(event, Frame) and not self.greeted.done():
                if event.opcode is Opcode.TEXT:
                    self.fast = True  # nothing else comes until the sender sends
                    self.greeted.set_result(bytes(event.data).decode())
                elif event.opcode is Opcode.CLOSE:
                    self.greeted.set_exception(
                        ConnectionError(f"refused: {self.protocol.close_rcvd}")
                    )
        self._flush()

    def parse(self) -> None:
        buffer = self.buffer
        end = len(buffer)
        at = 0
        on_frame = self.on_frame
        while end - at >= 2:
            size = buffer[at + 1]
            head = 2
            if size == 126:
                if end - at < 4:
                    break
                size = (buffer[at + 2] << 8) | buffer[at + 3]
                head = 4
            elif size == 127:
                if end - at < 10:
                    break
                size = int.from_bytes(buffer[at + 2 : at + 10], "big")
                head = 10
            elif size > 125:
                self.on_error("the forwarder sent a masked frame")
                return
            stop = at + head + size
            if stop > end:
                break
            first = buffer[at]
            if first == 0x82:  # FIN, binary
                on_frame(buffer[at + head : stop])
            else:
                self._control(first, bytes(buffer[at + head : stop]))
            at = stop
        del buffer[:at]

    def _control(self, first: int, payload: bytes) -> None:
        from websockets.frames import Frame, Opcode

        opcode = first & 0x0F
        if opcode == Opcode.PING.value:
            assert self.transport is not None
            self.transport.write(Frame(Opcode.PONG, payload).serialize(mask=True))
        elif opcode != Opcode.PONG.value:
            self.on_error(f"the forwarder sent a frame with first byte {first:#x}")


class _LeanTcp(_Lean):
    """A participant of the raw TCP forwarder: a room line, ``ready``, then length-prefixed."""

    def __init__(
        self, room: bytes, on_frame: Callable[[bytes], None], on_error: Callable[[str], None]
    ) -> None:
        super().__init__(on_frame, on_error)
        self.room = room

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        super().connection_made(transport)
        assert self.transport is not None
        self.transport.write(self.room + b"\n")

    def greeting(self, data: bytes) -> None:
        self.buffer += data
        line = self.buffer.find(b"\n")
        if line >= 0:
            answer = bytes(self.buffer[:line]).decode()
            del self.buffer[: line + 1]
            self.fast = True
            self.greeted.set_result(answer)

    def parse(self) -> None:
        buffer = self.buffer
        end = len(buffer)
        at = 0
        on_frame = self.on_frame
        while end - at >= 4:
            stop = at + 4 + int.from_bytes(buffer[at : at + 4], "big")
            if stop > end:
                break
            on_frame(buffer[at + 4 : stop])
            at = stop
        del buffer[:at]


class LeanMeeting(Meeting):
    """Participants on lean connections: the WebSocket forwarders' or the TCP forwarder's."""

    def __init__(
        self,
        frame: bytes,
        receivers: int,
        port: int,
        wire: Sequence[bytes],
        connection: Callable[[Callable[[bytes], None], Callable[[str], None]], _Lean],
    ) -> None:
        super().__init__(frame, receivers)
        self.port = port
        self.wire = list(wire)
        self.next_wire = 0
        self.connection = connection
        self.connections: list[_Lean] = []

    async def _join(self, on_frame: Callable[[bytes], None]) -> _Lean:
        loop = asyncio.get_running_loop()
        _, conn = await loop.create_connection(
            lambda: self.connection(on_frame, self.failed), "127.0.0.1", self.port
        )
        self.connections.append(conn)
        answer = await asyncio.wait_for(conn.greeted, 10)
        if json.loads(answer).get("type") != "ready":
            raise RuntimeError(f"the forwarder answered {answer!r} instead of ready")
        return conn

    async def open(self) -> None:
        def unexpected(_: bytes) -> None:
            self.failed("the forwarder sent the sender its own frame")

        self.sender = await self._join(unexpected)
        for i in range(len(self.counts)):
            await self._join(functools.partial(self.arrived, i))

    def write(self) -> asyncio.Future[None] | None:
        transport = self.sender.transport
        assert transport is not None
        wire = self.wire
        transport.write(wire[self.next_wire])
        self.next_wire = (self.next_wire + 1) % len(wire)
        return self.sender.drained

    def close(self) -> None:
        for conn in self.connections:
            if conn.transport is not None:
                conn.transport.close()


def lean_websocket_meeting(
    frame: bytes, receivers: int, port: int, url: str, grants: Callable[[str], str]
) -> LeanMeeting:
    """A meeting of lean WebSocket participants; the sender's frames masked before timing."""
    from websockets.frames import Frame, Opcode

    # a few serialisations of the frame, each with its own random mask, cycled
    wire = [Frame(Opcode.BINARY, frame).serialize(mask=True) for _ in range(WIRE_VARIANTS)]
    names = iter([SENDER] + [f"p_receiver{i}" for i in range(receivers)])

    def connection(on_frame: Callable[[bytes], None], on_error: Callable[[str], None]) -> _Lean:
        first = json.dumps({"grant": grants(next(names))})
        return _LeanWebSocket(url, first, on_frame, on_error)

    return LeanMeeting(frame, receivers, port, wire, connection)


def lean_tcp_meeting(frame: bytes, receivers: int, port: int, room: str) -> LeanMeeting:
    def connection(on_frame: Callable[[bytes], None], on_error: Callable[[str], None]) -> _Lean:
        return _LeanTcp(room.encode(), on_frame, on_error)

    wire = [len(frame).to_bytes(4, "big") + frame]
    return LeanMeeting(frame, receivers, port, wire, connection)


class WebSocketMeeting(Meeting):
    """Participants with the ``websockets`` asyncio client (``--client websockets``)."""

    lean = False

    def __init__(
        self, frame: bytes, receivers: int, url: str, grants: Callable[[str], str]
    ) -> None:
        super().__init__(frame, receivers)
        self.url = url
        self.grants = grants
        self.conns: list[Any] = []
        self.tasks: list[asyncio.Task[None]] = []

    async def _join(self, participant: str) -> Any:
        from websockets.asyncio.client import connect

        from meridian.node.relay import MAX_FRAME_BYTES

        conn = await connect(self.url, proxy=None, compression=None, max_size=MAX_FRAME_BYTES)
        self.conns.append(conn)
        await conn.send(json.dumps({"grant": self.grants(participant)}))
        answer = json.loads(await asyncio.wait_for(conn.recv(), 10))
        if not isinstance(answer, dict) or answer.get("type") != "ready":
            raise RuntimeError(f"{self.url} answered {answer!r} instead of ready")
        return conn

    async def open(self) -> None:
        self.sender = await self._join(SENDER)
        for i in range(len(self.counts)):
            conn = await self._join(f"p_receiver{i}")
            self.tasks.append(asyncio.create_task(self._receive(i, conn)))

    async def _receive(self, index: int, conn: Any) -> None:
        from websockets.exceptions import ConnectionClosed

        arrived = self.arrived
        try:
            async for message in conn:
                arrived(index, message)
        except ConnectionClosed as exc:
            self.failed(f"receiver {index} closed: {exc}")
        else:
            self.failed(f"receiver {index} closed")

    async def send(self) -> None:
        await self.sender.send(self.frame)

    def close(self) -> None:
        for task in self.tasks:
            task.cancel()
        for conn in self.conns:
            conn.transport.close()


def _cpu(pid: int | None) -> float | None:
    from api import _cpu_seconds

    return _cpu_seconds(pid)


# -- the run -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Options:
    receivers: tuple[int, ...] = DEFAULT_RECEIVERS
    rounds: int = DEFAULT_ROUNDS
    seconds: float = DEFAULT_SECONDS
    warmup_seconds: float = DEFAULT_WARMUP_SECONDS
    window: int = DEFAULT_WINDOW
    ceiling: bool = True
    client: str = "lean"
    pin: bool = True


def sealed_frame(meeting: str) -> bytes:
    """One media frame of exactly :data:`FRAME_BYTES`, sealed with a real sender key."""
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    from meridian.keys import FrameKind, seal_frame, sender_key

    key = sender_key(os.urandom(32), meeting, SENDER, 0)
    signing = Ed25519PrivateKey.generate()  # frames are signed by their sender (MF2)

    def seal(size: int) -> bytes:
        return seal_frame(
            key,
            meeting=meeting,
            sender=SENDER,
            epoch=0,
            kind=FrameKind.MEDIA,
            payload=bytes(size),
            signing_key=signing,
        )

    overhead = len(seal(0))
    frame = seal(FRAME_BYTES - overhead)
    assert len(frame) == FRAME_BYTES
    return frame


def shape(receivers: int) -> str:
    return f"1→{receivers}"


def planned_rounds(options: Options) -> int:
    """How many rounds a run sends: a warm-up and ``rounds`` per server and meeting shape."""
    servers = len(SERVERS) - (0 if options.ceiling else 1)
    return servers * len(options.receivers) * (1 + options.rounds)


async def _measure(
    meetings: dict[tuple[str, int], Meeting],
    pids: dict[str, int],
    options: Options,
    counters: Callable[[], Awaitable[dict[int, Row]]],
    bar: CaseBar,
) -> tuple[dict[tuple[str, int], list[Round]], dict[int, Row]]:
    for meeting in meetings.values():
        await meeting.open()
    for (name, receivers), meeting in meetings.items():
        bar.start(f"{name} {shape(receivers)}, warm-up")
        warmup = await meeting.run(options.warmup_seconds, options.window, pids[name])
        if not warmup.ok:
            raise RuntimeError(f"{name} failed its warm-up: {warmup.error or 'frames lost'}")
        meeting.warmup_sent = warmup.sent
    rounds: dict[tuple[str, int], list[Round]] = {key: [] for key in meetings}
    for number in range(1, options.rounds + 1):
        for key, meeting in meetings.items():
            bar.start(f"{key[0]} {shape(key[1])}, round {number} of {options.rounds}")
            rounds[key].append(await meeting.run(options.seconds, options.window, pids[key[0]]))
    counted = await counters()  # while everyone is still connected
    for meeting in meetings.values():
        meeting.close()
    return rounds, counted


def summarise(rounds: list[Round]) -> Row:
    """The median over rounds, and each round's own figures."""
    each = []
    for r in rounds:
        each.append(
            {
                "sent": r.sent,
                "delivered": r.delivered,
                "expected": r.expected,
                "corrupt": r.corrupt,
                "ok": r.ok,
                "error": r.error,
                "seconds": round(r.seconds, 3),
                "frames_per_s": round(r.delivered / r.seconds, 1) if r.seconds else 0.0,
                "sent_per_s": round(r.sent / r.seconds, 1) if r.seconds else 0.0,
                "mb_per_s": round(r.delivered * FRAME_BYTES / r.seconds / 1e6, 2)
                if r.seconds
                else 0.0,
                "server_cpu": None if r.server_cpu is None else round(r.server_cpu, 2),
                "server_cpu_us": None
                if r.server_cpu is None or not r.delivered
                else round(r.server_cpu * r.seconds / r.delivered * 1e6, 2),
                "client_cpu": round(r.client_cpu, 2),
            }
        )
    server_cpu, client_cpu = _median_of(each, "server_cpu"), _median_of(each, "client_cpu")
    return {
        "frames_per_s": _median_of(each, "frames_per_s"),
        "mb_per_s": _median_of(each, "mb_per_s"),
        "sent_per_s": _median_of(each, "sent_per_s"),
        "server_cpu": server_cpu,
        "server_cpu_us": _median_of(each, "server_cpu_us"),
        "client_cpu": client_cpu,
        "saturated": _saturated(server_cpu, client_cpu),
        "sent": sum(e["sent"] for e in each),
        "delivered": sum(e["delivered"] for e in each),
        "expected": sum(e["expected"] for e in each),
        "corrupt": sum(e["corrupt"] for e in each),
        "ok": all(e["ok"] for e in each),
        "rounds": each,
    }


def _saturated(server_cpu: float | None, client_cpu: float | None) -> str:
    """Which side set the pace: the one near a full core (neither: the machine was busy)."""
    server = server_cpu is not None and server_cpu >= SATURATED
    client = client_cpu is not None and client_cpu >= SATURATED
    if server and client:
        return "both"
    return "server" if server else "client" if client else "neither"


def _median_of(rows: list[Row], key: str) -> float | None:
    values = [r[key] for r in rows if r[key] is not None]
    return round(statistics.median(values), 3) if values else None


def run_benchmark(options: Options, bar: CaseBar) -> dict[str, Any]:
    """Start the forwarders, run every round, and return the report (the ``--json`` object)."""
    import httpx
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    from meridian.keys.grants import Grant, GrantSigner, public_key_b64
    from meridian.node.cluster import LocalCluster

    load_before = _loadavg()
    signer = GrantSigner(Ed25519PrivateKey.generate())
    servers = [s for s in SERVERS if options.ceiling or s != "tcp"]
    with tempfile.TemporaryDirectory(prefix="meridian-bench-relay-") as tmp:
        cluster = LocalCluster(
            [REGION], control_key=public_key_b64(signer.public_key), directory=Path(tmp, "nodes")
        )
        processes: dict[str, Process] = {}
        try:
            cluster.start()
            node = cluster[REGION]
            processes["relay"] = Process("relay", node.process.pid, 0, cluster.stop)
            for kind in servers[1:]:
                processes[kind] = start_forwarder(kind, Path(tmp, kind))
            meetings: dict[tuple[str, int], Meeting] = {}
            ids: dict[int, str] = {}
            for receivers in options.receivers:
                meeting_id = ids[receivers] = f"mtg_bench_{receivers}"
                frame = sealed_frame(meeting_id)

                def grant(participant: str, meeting_id: str = meeting_id) -> str:
                    return signer.sign(
                        Grant(
                            typ="relay",
                            meeting=meeting_id,
                            participant=participant,
                            dc=REGION,
                            regions=(REGION,),
                            key_region=REGION,
                            ip="127.0.0.1",
                        ),
                        # the relay ends a session when its grant expires: one lasts the run
                        seconds=3600,
                    )

                for kind in ("relay", "bare"):
                    if kind not in processes:
                        continue
                    if kind == "relay":
                        url, port = node.relay_url, int(node.url.rsplit(":", 1)[1])
                    else:
                        port = processes[kind].port
                        url = f"ws://127.0.0.1:{port}/{meeting_id}"
                    if options.client == "lean":
                        meetings[kind, receivers] = lean_websocket_meeting(
                            frame, receivers, port, url, grant
                        )
                    else:
                        meetings[kind, receivers] = WebSocketMeeting(frame, receivers, url, grant)
                if "tcp" in processes:
                    meetings["tcp", receivers] = lean_tcp_meeting(
                        frame, receivers, processes["tcp"].port, meeting_id
                    )
            pids = {name: p.pid for name, p in processes.items()}
            pinned = _pin(pids.values()) if options.pin else None

            async def relay_counters() -> dict[int, Row]:
                admin = {"Authorization": f"Bearer {signer.admin()}"}  # counters need it
                async with httpx.AsyncClient(timeout=5, trust_env=False, headers=admin) as http:
                    return {
                        receivers: (await http.get(f"{node.url}/v1/stats/{ids[receivers]}")).json()
                        for receivers in options.receivers
                    }

            rounds, counted = _run_client(_measure(meetings, pids, options, relay_counters, bar))
            # uvicorn's loop="auto", as `meridian node` and the bare forwarder run it
            relay_loop = _loop_name()
        finally:
            for process in reversed(processes.values()):
                process.stop()  # the relay's stops the cluster
    shapes: dict[str, Row] = {}
    for receivers in options.receivers:
        rows = {name: summarise(rounds[name, receivers]) for name in servers}
        relay, bare = rows["relay"], rows.get("bare")
        # what the relay counted for the meeting: the warm-up round included
        sent_total = _all_sent(rounds["relay", receivers], meetings["relay", receivers])
        stats = counted[receivers]
        shapes[shape(receivers)] = {
            "receivers": receivers,
            "servers": rows,
            "ratio": round(relay["frames_per_s"] / bare["frames_per_s"], 3)
            if bare and bare["frames_per_s"]
            else None,
            # CPU per delivered frame, relay ÷ bare: the cost side of the same comparison
            "cpu_ratio": round(relay["server_cpu_us"] / bare["server_cpu_us"], 3)
            if bare and relay["server_cpu_us"] and bare["server_cpu_us"]
            else None,
            "relay_counters": {
                "frames_in": stats.get("frames_in"),
                "frames_out": stats.get("frames_out"),
                "bytes_out": stats.get("bytes_out"),
                "participants": stats.get("participants"),
                "agree": stats.get("frames_in") == sent_total
                and stats.get("frames_out") == sent_total * receivers
                and stats.get("bytes_out") == sent_total * receivers * FRAME_BYTES
                and stats.get("participants") == 1 + receivers,
            },
        }
    return {
        "shapes": shapes,
        "load": {
            "frame_bytes": FRAME_BYTES,
            "receivers": list(options.receivers),
            "window": options.window,
            "rounds": options.rounds,
            "seconds_per_round": options.seconds,
            "warmup_seconds": options.warmup_seconds,
            "client": options.client,
            "client_process": "this one, one event loop",
            "pinned": pinned,
            "client_loop": _loop_name(),
            "loadavg_before": load_before,
            "loadavg_after": _loadavg(),
        },
        "server": {"loop": relay_loop, "ws": "websockets-sansio"},
        "machine": machine_info(),
    }


def _pin(pids: Any) -> dict[str, int] | None:
    """Forwarders on one CPU, this process (the clients) on another: each side has its own core,
    and the scheduler does not move them around between rounds. None if there are not two."""
    if not hasattr(os, "sched_setaffinity"):
        return None
    cpus = sorted(os.sched_getaffinity(0))
    if len(cpus) < 2:
        return None
    for pid in pids:
        os.sched_setaffinity(pid, {cpus[0]})
    os.sched_setaffinity(0, {cpus[1]})
    return {"forwarders": cpus[0], "client": cpus[1]}


def _loadavg() -> list[float] | None:
    """The machine's 1, 5 and 15 minute load averages: others' work shows here."""
    try:
        return [float(x) for x in Path("/proc/loadavg").read_text().split()[:3]]
    except (OSError, ValueError):
        return None


def _all_sent(rounds: list[Round], meeting: Meeting) -> int:
    """Frames the relay's sender sent over the run: the timed rounds and the warm-up."""
    return sum(r.sent for r in rounds) + meeting.warmup_sent


def _loop_name() -> str:
    from api import _loop_name as name

    return name()


def _run_client(coroutine: Any) -> Any:
    from api import _run

    return _run(coroutine)


# -- the machine -------------------------------------------------------------------------------


def machine_info() -> dict[str, Any]:
    """Where and with what the figures were measured."""
    from api import machine_info as shared

    return shared(("meridian", "fastapi", "starlette", "uvicorn", "uvloop", "websockets"))


# -- output ------------------------------------------------------------------------------------


def targets(report: dict[str, Any]) -> list[tuple[str, bool | None]]:
    out: list[tuple[str, bool | None]] = []
    for name, row in report["shapes"].items():
        ratio = row["ratio"]
        out.append(
            (
                f"{name}: relay ≥ {TARGET_RATIO:.0%} of the bare forwarder's frames/s",
                None if ratio is None else ratio >= TARGET_RATIO,
            )
        )
    return out


def all_good(report: dict[str, Any]) -> bool:
    return all(
        server["ok"] and row["relay_counters"]["agree"]
        for row in report["shapes"].values()
        for server in row["servers"].values()
    )


def render_table(report: dict[str, Any]) -> None:
    """Print the report as a rich table, with the checks and targets under it."""
    from rich.console import Console
    from rich.table import Table

    load = report["load"]
    table = Table(
        title=(
            f"Relay: {load['frame_bytes']}-byte sealed frames, window {load['window']}, "
            f"median of {load['rounds']} rounds of {load['seconds_per_round']:g} s"
        )
    )
    headers = (
        "shape",
        "forwarder",
        "frames/s delivered",
        "MB/s",
        "÷ bare",
        "server CPU",
        "server µs/frame",
        "client CPU",
        "delivered",
    )
    for header in headers:
        table.add_column(header, justify="left" if header in ("shape", "forwarder") else "right")
    for name, row in report["shapes"].items():
        bare = row["servers"].get("bare")
        for server, s in row["servers"].items():
            ratio = (
                f"{s['frames_per_s'] / bare['frames_per_s']:.2f}"
                if bare and bare["frames_per_s"]
                else ""
            )
            delivered = (
                f"{s['delivered']:,}/{s['expected']:,}"
                if s["ok"]
                else f"FAILED {s['delivered']:,}/{s['expected']:,}"
            )
            table.add_row(
                name,
                LABELS[server],
                f"{s['frames_per_s']:,.0f}",
                f"{s['mb_per_s']:.1f}",
                ratio,
                "" if s["server_cpu"] is None else f"{s['server_cpu']:.0%}",
                "" if s["server_cpu_us"] is None else f"{s['server_cpu_us']:.1f}",
                f"{s['client_cpu']:.0%}",
                delivered,
            )
    console = Console(width=max(Console().width, 140))
    console.print(table)
    machine = report["machine"]
    console.print(
        f"{machine['cpu']}, {machine['cores']} cores, {machine['ram_gb']} GB, Python "
        f"{machine['python']}; forwarders: uvicorn + {report['server']['ws']} on "
        f"{report['server']['loop']}; client: {load['client']} in this process on "
        f"{load['client_loop']}; "
        + (
            f"forwarders pinned to CPU {pinned['forwarders']}, client to CPU {pinned['client']}"
            if (pinned := load["pinned"])
            else "not pinned"
        )
    )
    for name, row in report["shapes"].items():
        counters = row["relay_counters"]
        console.print(
            f"{name}: relay ÷ bare: frames/s {row['ratio']}, CPU per frame {row['cpu_ratio']}; "
            f"relay counters: frames in {counters['frames_in']:,}, out "
            f"{counters['frames_out']:,}, participants {counters['participants']}: "
            f"{'agree' if counters['agree'] else 'DISAGREE'} with what was sent and delivered"
        )
        for server, s in row["servers"].items():
            for r in s["rounds"]:
                if r["error"]:
                    console.print(f"{name} {server}: {r['error']}")
            if s["saturated"] != "server":
                console.print(
                    f"{name} {server}: the forwarder used {s['server_cpu']:.0%} of a core and "
                    f"this process {s['client_cpu']:.0%}: "
                    + {
                        "client": "the client set the pace",
                        "both": "both sides were near a full core",
                    }.get(
                        s["saturated"],
                        "neither saturated; was the machine busy? "
                        f"(load average {load['loadavg_before']} → {load['loadavg_after']})",
                    )
                )
    for label, met in targets(report):
        verdict = "n/a" if met is None else ("met" if met else "NOT met")
        console.print(f"target {label}: {verdict}")


def main(argv: Sequence[str] | None = None) -> int:
    """Run the benchmark and print a table (default) or the JSON report."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--receivers",
        type=int,
        nargs="+",
        default=list(DEFAULT_RECEIVERS),
        help="receivers per meeting, one shape each (default: 1 4)",
    )
    parser.add_argument("--rounds", type=int, default=DEFAULT_ROUNDS, help="timed rounds each")
    parser.add_argument(
        "--seconds", type=float, default=DEFAULT_SECONDS, help="sending time of a round, seconds"
    )
    parser.add_argument("--warmup-seconds", type=float, default=DEFAULT_WARMUP_SECONDS)
    parser.add_argument(
        "--window", type=int, default=DEFAULT_WINDOW, help="most frames in flight per meeting"
    )
    parser.add_argument(
        "--client",
        choices=CLIENTS,
        default="lean",
        help="lean: hand-parsed frames after a websockets sans-I/O handshake (default); "
        "websockets: the websockets asyncio client",
    )
    parser.add_argument("--no-ceiling", action="store_true", help="skip the raw TCP ceiling")
    parser.add_argument(
        "--pin",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="forwarders on one CPU, the clients on another (default when there are two)",
    )
    parser.add_argument("--json", action="store_true", help="print the report as JSON")
    parser.add_argument("--serve", nargs=2, metavar=("KIND", "DIR"), help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.serve:
        kind, directory = args.serve
        if kind == "bare":
            serve_bare(Path(directory))
        else:
            serve_tcp(Path(directory))
        return 0
    if args.rounds < 1 or args.seconds <= 0 or args.window < 1 or args.warmup_seconds < 0:
        parser.error("--rounds, --seconds and --window must be positive")
    if not args.receivers or any(r < 1 for r in args.receivers):
        parser.error("--receivers must be positive")
    options = Options(
        receivers=tuple(dict.fromkeys(args.receivers)),
        rounds=args.rounds,
        seconds=args.seconds,
        warmup_seconds=args.warmup_seconds,
        window=args.window,
        ceiling=not args.no_ceiling,
        client=args.client,
        pin=args.pin,
    )
    from meridian.cli.progress import bench_cases, summary

    with bench_cases("bench/relay.py", planned_rounds(options), unit="round") as bar:
        report = run_benchmark(options, bar)
    if args.json:
        print(json.dumps(report))
    else:
        render_table(report)
    summary(bar.summary_line())
    return 0 if all_good(report) else 1


if __name__ == "__main__":
    with contextlib.suppress(KeyboardInterrupt):
        sys.exit(main())
