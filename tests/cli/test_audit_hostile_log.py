"""``meridian audit verify --url`` against a log that lies about its listing: the log is what an
auditor checks, so a page that never ends, or one that is not the listing's shape, is one line
and exit 1 — never a loop without end, never a traceback."""

from __future__ import annotations

import json
import subprocess
import sys
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from meridian.audit.note import NoteSigner


class _Lying(ThreadingHTTPServer):
    page: bytes = b""


class _Handler(BaseHTTPRequestHandler):
    server: _Lying

    def do_GET(self) -> None:
        body = self.server.page
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: object) -> None:
        pass


@pytest.fixture
def lying() -> Iterator[_Lying]:
    server = _Lying(("127.0.0.1", 0), _Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server
    server.shutdown()
    server.server_close()


_NOTE = "log.example/x\n1\n" + "A" * 43 + "=\n\n— log.example/x AAAA\n"


@pytest.mark.parametrize(
    "page",
    [
        {"data": [], "count": 1, "next": 0},  # the same page again, for ever
        {"data": [{"note": _NOTE}], "count": 1, "next": 0},  # and growing
        {"data": [], "count": 1, "next": -5},
        {"data": [], "count": 1, "next": "1"},
        {"data": 5, "next": None},
        {"data": [{"no": "note"}], "next": None},
        {"data": [{"note": 5}], "next": None},
        [],
    ],
    ids=["same-page", "same-page-growing", "backwards", "text", "data", "item", "note", "list"],
)
def test_a_listing_that_lies_is_one_line(tmp_path, lying, page) -> None:
    lying.page = json.dumps(page).encode()
    vkey = NoteSigner("log.example/x", Ed25519PrivateKey.generate()).verifier_key()
    url = f"http://127.0.0.1:{lying.server_address[1]}"
    done = subprocess.run(
        [sys.executable, "-m", "meridian", "audit", "verify", "--url", url, "--key", vkey],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode != 0, done.stdout
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1, done.stderr[-2000:]
    assert lines[0].startswith("error: "), lines
