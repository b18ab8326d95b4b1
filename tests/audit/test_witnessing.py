"""The log's side of witnessing against a hostile witness: whatever a witness answers — a 409
with a size that is no number, a size beyond any tree, an endless body — the submission is
recorded as failed with one line, the log's memory stays bounded, and nothing raises."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from meridian.audit import Actor, record
from meridian.audit.cosignature import Cosigner
from meridian.audit.witnessing import WitnessEndpoint, Witnessing

AT = datetime(2026, 12, 3, 12, 0, tzinfo=UTC)
#: what the hostile witness sends as a long body: 64 MiB, in 64 KiB writes
_LONG = 64 * 1024 * 1024
_CHUNK = 64 * 1024


class _Hostile(ThreadingHTTPServer):
    answer: tuple[int, bytes] | None = None  # None: the long body
    sent = 0


class _Handler(BaseHTTPRequestHandler):
    server: _Hostile

    def do_POST(self) -> None:
        self.rfile.read(int(self.headers.get("Content-Length", "0")))
        answer = self.server.answer
        if answer is not None:
            status, body = answer
            self.send_response(status)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)
            return
        self.send_response(200)
        self.send_header("Content-Length", str(_LONG))
        self.end_headers()
        chunk = b"x" * _CHUNK
        try:
            while self.server.sent < _LONG:
                self.wfile.write(chunk)
                self.server.sent += _CHUNK
        except OSError:
            pass  # the log stopped reading: what this test wants

    def log_message(self, format: str, *args: object) -> None:
        pass


@pytest.fixture
def hostile() -> Iterator[_Hostile]:
    server = _Hostile(("127.0.0.1", 0), _Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server
    server.shutdown()
    server.server_close()


def _witnessing(log, db, server: _Hostile) -> Witnessing:
    with db.write() as session:
        for i in range(3):
            record(
                session,
                actor=Actor("test", "witnessing"),
                action="test.write",
                subject_kind="counter",
                subject_id=str(i),
                at=AT,
                bundle_digest="sha256:" + "0" * 64,
            )
    log.checkpoint()
    key = Cosigner("hostile.example/w", Ed25519PrivateKey.generate()).public
    url = f"http://127.0.0.1:{server.server_address[1]}"
    return Witnessing(log, [WitnessEndpoint(key, url)], timeout=10)


@pytest.mark.parametrize(
    "held",
    ["\u00b2", "9" * 5000, "99999999999999999999", "-1"],
    ids=["superscript", "thousands-of-digits", "beyond-int64", "negative"],
)
def test_a_409_with_a_size_that_is_no_size_is_a_recorded_failure(log, db, hostile, held) -> None:
    hostile.answer = (409, held.encode() + b"\n")
    witnessing = _witnessing(log, db, hostile)
    try:
        [submission] = witnessing.submit()
    finally:
        witnessing.close()
    assert not submission.cosigned
    assert submission.problem is not None
    assert "\n" not in submission.problem
    assert len(submission.problem) < 500
    [report] = witnessing.report()
    assert report.problem == submission.problem


def test_an_endless_answer_is_not_read_to_its_end(log, db, hostile) -> None:
    hostile.answer = None
    witnessing = _witnessing(log, db, hostile)
    try:
        [submission] = witnessing.submit()
    finally:
        witnessing.close()
    assert not submission.cosigned
    # the log reads a few KiB of it; what the kernel buffers aside, the witness could not
    # push its 64 MiB through
    assert hostile.sent < _LONG // 4, hostile.sent
