"""Control-plane replicas as real processes on one PostgreSQL database, behind real HAProxy.

``fresh_postgres`` is an empty database (no schema: what a first start finds); ``processes``
starts processes and kills whatever is left of them when the test ends; ``replicas(count=3)``
starts a set of ``meridian serve`` replicas on a fresh migrated database, sharing their keys,
behind HAProxy configured from ``docs/haproxy.cfg`` (:class:`Replicas`). Tests using
``processes`` or ``replicas`` are marked ``nodes`` by the root conftest, so they run in
``make test``'s second, serial run. Without PostgreSQL they are skipped, with the reason.
"""

from __future__ import annotations

import os
import re
import secrets
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
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


# -- replicas of the control plane, as processes, and HAProxy in front of them ----------------

ROOT = Path(__file__).resolve().parents[2]
HAPROXY = Path("/usr/sbin/haproxy")
#: what the harness leaves out of docs/haproxy.cfg: syslog (none here), and its servers
_NOT_HERE = re.compile(r"^\s*(log\b|option httplog|server\b)")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@dataclass
class ReplicaProcess:
    """One ``meridian serve`` process of the set."""

    name: str
    port: int
    log: Path
    proc: subprocess.Popen[str] | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def output(self) -> str:
        return self.log.read_text(errors="replace") if self.log.exists() else ""


class Replicas:
    """``count`` control-plane replicas (``meridian serve``, each its own process) on one
    PostgreSQL database, sharing their keys, optionally behind HAProxy (``url``).

    ``runtime`` is a :class:`~meridian.runtime.Runtime` in the test's own process on the same
    database (to make tokens, read rows); ``tokens["operator"]`` is an operator's token.
    """

    def __init__(
        self,
        processes: Processes,
        database_url: str,
        directory: Path,
        *,
        count: int,
        env: dict[str, str],
        haproxy: bool,
    ) -> None:
        from meridian.audit.note import load_or_create_log_key
        from meridian.keyfiles import load_or_create_secret
        from meridian.keys.grants import load_or_create_signing_key
        from meridian.runtime import Runtime
        from meridian.settings import Settings

        self.processes = processes
        self.database_url = database_url
        self.directory = directory
        keys = directory / "keys"
        keys.mkdir(mode=0o700)
        self.keys = {
            "MERIDIAN_LOG_KEY": keys / "log.key",
            "MERIDIAN_GRANT_KEY": keys / "grant.key",
            "MERIDIAN_SESSION_KEY": keys / "session.key",
        }
        load_or_create_log_key(self.keys["MERIDIAN_LOG_KEY"], create=True)
        load_or_create_signing_key(self.keys["MERIDIAN_GRANT_KEY"], create=True)
        load_or_create_secret(
            self.keys["MERIDIAN_SESSION_KEY"], create=True, what="session key", setting="-"
        )
        self.env = {
            "MERIDIAN_DATABASE_URL": database_url,
            "MERIDIAN_NODES": "none",
            "MERIDIAN_NODE_STORE": str(directory / "regions"),
            "MERIDIAN_TRUSTED_PROXIES": "127.0.0.1/32",
            "MERIDIAN_RENEW_INTERVAL": "0",
            "MERIDIAN_CHECKPOINT_INTERVAL": "1",
            "MERIDIAN_REPLICA_LEASE": "3",
            "MERIDIAN_LEADER_RETRY": "0.5",
            "MERIDIAN_RATE_SIGNUP_AUTHENTICATED": "1000000/minute",
            "MERIDIAN_RATE_JOINS": "1000000/minute",
            "MERIDIAN_RATE_DECISIONS": "100000000/minute",
            "MERIDIAN_PROGRESS": "never",
            **{name: str(path) for name, path in self.keys.items()},
            **env,
        }
        settings = Settings(
            database_url=database_url,
            renew_interval=0,
            log_key=self.keys["MERIDIAN_LOG_KEY"],
            grant_key=self.keys["MERIDIAN_GRANT_KEY"],
        )
        self.runtime = Runtime(settings)
        self.runtime.start()
        self.tokens: dict[str, str] = {}
        self.token("operator", role="operator")
        self.replicas = [
            ReplicaProcess(f"cp{i + 1}", free_port(), directory / f"cp{i + 1}.log")
            for i in range(count)
        ]
        for i in range(count):
            self.start(i, wait=False)
        for i in range(count):
            self.wait_ready(i)
        self.proxy: subprocess.Popen[str] | None = None
        self.proxy_port = 0
        if haproxy:
            self._start_haproxy()

    @property
    def url(self) -> str:
        """HAProxy's address (the service as its users see it)."""
        assert self.proxy is not None, "this set was started without HAProxy"
        return f"http://127.0.0.1:{self.proxy_port}"

    def token(self, name: str, **fields: Any) -> str:
        """Create and remember a token (an operator's, a partner's, a user's), as tests/conftest."""
        from meridian.audit import SYSTEM
        from meridian.identity.people import add_operator
        from meridian.identity.tokens import create_token

        rt = self.runtime
        with rt.db.write() as session:
            if fields.get("role") == "operator" and "person_id" not in fields:
                _, _, secret = add_operator(
                    session, name=name, at=rt.now(), actor=SYSTEM, digest=rt.digest
                )
            else:
                _, secret = create_token(
                    session, at=rt.now(), actor=SYSTEM, digest=rt.digest, name=name, **fields
                )
        self.tokens[name] = secret
        return secret

    def start(self, index: int, *, wait: bool = True) -> ReplicaProcess:
        """Start replica ``index`` (again, after a kill: on the same port)."""
        replica = self.replicas[index]
        replica.proc = self.processes.command(
            [sys.executable, "-m", "meridian", "serve", "--port", str(replica.port)],
            env=self.env,
            log=replica.log,
        )
        if wait:
            self.wait_ready(index)
        return replica

    def wait_ready(self, index: int, timeout: float = 90) -> None:
        replica = self.replicas[index]
        deadline = time.monotonic() + timeout
        last = "no answer"
        while time.monotonic() < deadline:
            assert replica.proc is not None
            if replica.proc.poll() is not None:
                raise AssertionError(
                    f"replica {replica.name} exited {replica.proc.returncode}: "
                    f"{replica.output()[-2000:]}"
                )
            try:
                r = httpx.get(f"{replica.url}/readyz", timeout=2)
                if r.status_code == 200:
                    return
                last = r.text
            except httpx.HTTPError as exc:
                last = repr(exc)
            time.sleep(0.1)
        raise AssertionError(f"replica {replica.name} not ready within {timeout} s: {last}")

    def kill(self, index: int) -> None:
        """SIGKILL replica ``index``: no clean stop, its connections cut by the kernel."""
        proc = self.replicas[index].proc
        assert proc is not None
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(timeout=30)

    def ready(self, index: int) -> dict[str, Any] | None:
        """Replica ``index``'s ``/readyz`` answer, or ``None`` if it does not answer 200."""
        try:
            r = httpx.get(f"{self.replicas[index].url}/readyz", timeout=2)
        except httpx.HTTPError:
            return None
        return r.json() if r.status_code == 200 else None

    def leaders(self) -> list[str]:
        """The names of the running replicas that say they lead."""
        out = []
        for i, replica in enumerate(self.replicas):
            if replica.proc is not None and replica.proc.poll() is None:
                state = self.ready(i)
                if state is not None and state["leader"]:
                    out.append(replica.name)
        return out

    def haproxy_config(self) -> str:
        """docs/haproxy.cfg with this set's port and servers, and no syslog."""
        lines = []
        for line in (ROOT / "docs" / "haproxy.cfg").read_text().splitlines():
            if _NOT_HERE.match(line):
                continue
            if line.strip().startswith("maxconn"):
                # a test's open-file limit may be below the 2 x maxconn HAProxy asks for
                line = "    maxconn 2000"
            if line.strip() == "bind :80":
                line = line.replace(":80", f"127.0.0.1:{self.proxy_port}")
            lines.append(line)
            if line.strip().startswith("default-server"):
                # checked twice as often as the documented 1 s: tests wait less for a verdict
                lines[-1] = line.replace("inter 1s", "inter 500ms")
                lines.extend(f"    server {r.name} 127.0.0.1:{r.port} check" for r in self.replicas)
        return "\n".join(lines) + "\n"

    def _start_haproxy(self) -> None:
        if not HAPROXY.exists():
            pytest.skip(f"no HAProxy at {HAPROXY} (Debian's haproxy package; .ci/run installs it)")
        self.proxy_port = free_port()
        config = self.directory / "haproxy.cfg"
        config.write_text(self.haproxy_config())
        self.proxy = self.processes.command(
            [str(HAPROXY), "-db", "-f", str(config)], log=self.directory / "haproxy.log"
        )
        deadline = time.monotonic() + 30
        while True:
            try:
                if httpx.get(f"{self.url}/readyz", timeout=2).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            if self.proxy.poll() is not None or time.monotonic() > deadline:
                raise AssertionError(
                    "haproxy did not serve: " + (self.directory / "haproxy.log").read_text()
                )
            time.sleep(0.1)

    def close(self) -> None:
        self.runtime.close()


@pytest.fixture
def cluster_database_url(postgres: Any) -> Iterator[str]:
    """A fresh, migrated PostgreSQL database for a set of replicas (they need a server)."""
    if postgres is None:
        pytest.skip(_PG_SKIP)
    name = postgres.new()
    try:
        yield postgres.url(name)
    finally:
        postgres.drop(name)


@pytest.fixture
def replicas(
    processes: Processes, cluster_database_url: str, tmp_path: Path
) -> Iterator[Callable[..., Replicas]]:
    """Start a set: ``replicas(count=3, env={...}, haproxy=True)``; everything stops at the end."""
    made: list[Replicas] = []

    def start(
        count: int = 3, *, env: dict[str, str] | None = None, haproxy: bool = True
    ) -> Replicas:
        directory = tmp_path / f"set{len(made)}"
        directory.mkdir()
        made.append(
            Replicas(
                processes,
                cluster_database_url,
                directory,
                count=count,
                env=env or {},
                haproxy=haproxy,
            )
        )
        return made[-1]

    try:
        yield start
    finally:
        for group in made:
            group.close()
