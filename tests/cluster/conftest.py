"""Control-plane replicas as real processes on one PostgreSQL database.

``fresh_postgres`` is an empty database (no schema: what a first start finds); ``processes``
starts Python processes and kills whatever is left of them when the test ends. Tests using
``processes`` (or the replica harness) are marked ``nodes`` by the root conftest, so they run in
``make test``'s second, serial run.
"""

from __future__ import annotations

import os
import secrets
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

_PG_SKIP = "no PostgreSQL at 127.0.0.1:5432 (set MERIDIAN_TEST_POSTGRES_URL to require one)"


@pytest.fixture
def fresh_postgres(postgres: Any) -> Iterator[str]:
    """The URL of a new, empty PostgreSQL database (dropped afterwards)."""
    if postgres is None:
        pytest.skip(_PG_SKIP)
    name = f"meridian_e_{os.getpid()}_{secrets.token_hex(4)}"
    postgres._exec(f'CREATE DATABASE "{name}"')
    try:
        yield postgres.url(name)
    finally:
        postgres.drop(name)


class Processes:
    """Python processes started by a test; each is killed at the end if it still runs."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory
        self.started: list[subprocess.Popen[str]] = []

    def python(self, code: str, *, env: dict[str, str] | None = None) -> subprocess.Popen[str]:
        """Run ``code`` with this interpreter, its output captured."""
        proc = subprocess.Popen(
            [sys.executable, "-c", code],
            env={**os.environ, **(env or {})},
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            cwd=self.directory,
            start_new_session=True,
        )
        self.started.append(proc)
        return proc

    def command(
        self, args: list[str], *, env: dict[str, str] | None = None, log: Path | None = None
    ) -> subprocess.Popen[str]:
        """Run ``args`` (its output to ``log``, or captured)."""
        out: Any = subprocess.PIPE if log is None else log.open("w")
        proc = subprocess.Popen(
            args,
            env={**os.environ, **(env or {})},
            stdout=out,
            stderr=subprocess.STDOUT if log is not None else subprocess.PIPE,
            text=True,
            cwd=self.directory,
            start_new_session=True,
        )
        self.started.append(proc)
        return proc

    def close(self) -> None:
        for proc in self.started:
            if proc.poll() is None:
                os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(timeout=30)


@pytest.fixture
def processes(tmp_path: Path) -> Iterator[Processes]:
    group = Processes(tmp_path)
    try:
        yield group
    finally:
        group.close()
