"""``meridian serve --workers N``: N processes on one port, each a replica; refused on SQLite."""

from __future__ import annotations

import os
import signal
import sys
from pathlib import Path
from typing import Any

import httpx
import pytest
from tests.cluster.conftest import free_port
from tests.support import eventually
from typer.testing import CliRunner

from meridian.cli import app
from meridian.cluster import alive_replica_ids, replica_states
from meridian.storage import Database

runner = CliRunner()


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
def test_workers_on_sqlite_are_refused_in_one_line(database_url: str) -> None:
    result = runner.invoke(
        app,
        ["serve", "--workers", "2"],
        env={"MERIDIAN_DATABASE_URL": database_url, "MERIDIAN_NODES": "none"},
    )
    assert result.exit_code == 78
    assert result.stderr.strip() == (
        "error: `--workers 2` needs PostgreSQL: SQLite is the embedded database of one process "
        "(set MERIDIAN_DATABASE_URL to postgresql+psycopg://…, or serve one worker)"
    )
    assert result.stdout == ""


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
def test_zero_workers_is_refused(database_url: str) -> None:
    result = runner.invoke(
        app,
        ["serve", "--workers", "0"],
        env={"MERIDIAN_DATABASE_URL": database_url, "MERIDIAN_NODES": "none"},
    )
    assert result.exit_code == 2
    assert result.stderr.strip() == "error: `--workers 0`: expected 1 to 64 worker processes"


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
def test_a_worker_fd_that_is_not_a_listening_socket_is_refused_in_one_line(
    database_url: str, tmp_path: Path
) -> None:
    # --worker-fd is the supervisor's, but a flag all the same: a bad one is a one-line error,
    # not a traceback (OSError: bad file descriptor / socket operation on non-socket)
    closed = os.open(tmp_path / "gone", os.O_CREAT | os.O_RDONLY)
    os.close(closed)
    not_a_socket = os.open(tmp_path / "file", os.O_CREAT | os.O_RDONLY)
    try:
        for fd in (closed, not_a_socket):
            result = runner.invoke(
                app,
                ["serve", "--worker-fd", str(fd)],
                env={"MERIDIAN_DATABASE_URL": database_url, "MERIDIAN_NODES": "none"},
            )
            assert result.exit_code == 2, result.output
            assert result.stderr.strip() == (
                f"error: `--worker-fd {fd}` is not a listening socket this process inherited"
            )
    finally:
        os.close(not_a_socket)


def test_two_workers_are_two_replicas_on_one_port(
    processes: Any, cluster_database_url: str, tmp_path: Path
) -> None:
    port = free_port()
    log = tmp_path / "serve.log"
    env = {
        "MERIDIAN_DATABASE_URL": cluster_database_url,
        "MERIDIAN_NODES": "none",
        "MERIDIAN_LOG_KEY": str(tmp_path / "log.key"),
        "MERIDIAN_GRANT_KEY": str(tmp_path / "grant.key"),
        "MERIDIAN_SESSION_KEY": str(tmp_path / "session.key"),
        "MERIDIAN_RENEW_INTERVAL": "0",
    }
    serve = processes.command(
        [sys.executable, "-m", "meridian", "serve", "--workers", "2", "--port", str(port)],
        env=env,
        log=log,
    )
    eventually(lambda: "serving:" in log.read_text(), timeout=90, what=f"serving in {log}")
    text = log.read_text()
    assert "workers:  2 (pids " in text
    db = Database(cluster_database_url)
    try:
        with db.read() as session:
            alive = alive_replica_ids(session)
            states = {s.id: s for s in replica_states(session)}
        assert len(alive) == 2
        pids = {states[i].pid for i in alive}
        assert serve.pid not in pids  # the command itself is no replica: its workers are
        # the kernel hands connections to both; each answers as its own replica
        seen: set[str] = set()

        def both() -> set[str]:
            with httpx.Client(timeout=5) as client:  # a new connection each time
                seen.add(client.get(f"http://127.0.0.1:{port}/readyz").json()["replica"])
            return seen if len(seen) == 2 else set()

        assert eventually(both, timeout=30, what="answers from both workers") == alive
        leaders = []
        for _ in range(40):
            with httpx.Client(timeout=5) as client:
                body = client.get(f"http://127.0.0.1:{port}/readyz").json()
            if body["leader"]:
                leaders.append(body["replica"])
        assert len(set(leaders)) == 1  # one of the two leads

        # SIGTERM stops the workers too, and their leases end with them
        os.kill(serve.pid, signal.SIGTERM)
        serve.wait(timeout=60)
        with db.read() as session:
            assert alive_replica_ids(session) == set()
        for pid in pids:
            with pytest.raises(ProcessLookupError):
                os.kill(pid, 0)
    finally:
        db.dispose()
