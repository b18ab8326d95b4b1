"""``meridian serve`` start-up as a real process: it says "serving" only once it listens, and a
busy port or an unreachable database is one line and an exit code, never a traceback."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

ROOT = Path(__file__).resolve().parents[2]


def _env(tmp_path: Path, **extra: str) -> dict[str, str]:
    env = {
        **os.environ,
        "PYTHONPATH": str(ROOT / "src"),
        "MERIDIAN_DATABASE_URL": f"sqlite:///{tmp_path / 'meridian.db'}",
        "MERIDIAN_NODES": "none",
        "MERIDIAN_LOG_KEY": str(tmp_path / "log.key"),
        "MERIDIAN_GRANT_KEY": str(tmp_path / "grant.key"),
        "MERIDIAN_SESSION_KEY": str(tmp_path / "session.key"),
        "NO_COLOR": "1",
        **extra,
    }
    env.pop("MERIDIAN_MODE", None)
    return env


def _serve(tmp_path: Path, *args: str, **env: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "meridian", "serve", *args],
        cwd=tmp_path,
        env=_env(tmp_path, **env),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


@pytest.fixture
def held_port() -> Iterator[int]:
    """A port another process (this test) is listening on."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen()
        yield sock.getsockname()[1]


def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def test_a_busy_port_is_one_line_and_an_exit_code(tmp_path: Path, held_port: int) -> None:
    proc = _serve(tmp_path, "--port", str(held_port))
    out, err = proc.communicate(timeout=60)
    assert proc.returncode == 78, (out, err)
    assert "serving" not in out
    assert err.strip().splitlines() == [
        f"error: cannot listen on `127.0.0.1:{held_port}`: the address is already in use "
        "(another process holds it: stop it or choose another --port)"
    ], err


def test_an_unreachable_database_is_one_line_and_an_exit_code(tmp_path: Path) -> None:
    port = _closed_port()
    url = f"postgresql+psycopg://meridian:s3cret@127.0.0.1:{port}/meridian"
    proc = _serve(tmp_path, "--port", str(_closed_port()), MERIDIAN_DATABASE_URL=url)
    out, err = proc.communicate(timeout=60)
    assert proc.returncode == 75, (out, err)
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    assert lines[0].startswith(
        f"error: cannot reach the database `postgresql+psycopg://meridian:***@127.0.0.1:{port}/meridian`: "
    ), lines[0]
    assert "s3cret" not in err
    assert "serving" not in out


def test_serving_is_said_once_the_port_answers(tmp_path: Path) -> None:
    port = _closed_port()
    proc = _serve(tmp_path, "--port", str(port))
    try:
        assert proc.stdout is not None
        deadline = time.monotonic() + 60
        lines = []
        for line in proc.stdout:
            lines.append(line)
            if line.startswith("serving:"):
                break
            assert time.monotonic() < deadline, lines
        else:
            pytest.fail(f"serve exited without serving: {lines} {proc.stderr.read() if proc.stderr else ''}")
        # at once, no retry: the line means the socket is listening and start-up is done
        r = httpx.get(f"http://127.0.0.1:{port}/v1/health", timeout=10)
        assert r.status_code == 200
    finally:
        proc.terminate()
        proc.wait(timeout=30)
