"""Control-plane replicas as real ``meridian serve`` processes on one PostgreSQL database.

They share what replicas behind a load balancer share: the database, the grant key (the region
nodes check grants against it), the log's key and the pages' session key; each is its own
process, with its own memory, on its own loopback port. The tests reach each one directly (a
participant "connected through B" is one whose signalling socket is B's).
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

import httpx

from meridian.keyfiles import load_or_create_secret
from meridian.node.cluster import free_port

__all__ = ["CLOCK", "Replica", "Replicas"]

#: the replicas' (and the test's) "now": the built-in 2020 case is in force then
CLOCK = "2021-03-01T10:00:00Z"


@dataclass
class Replica:
    name: str
    url: str
    log: Path
    process: subprocess.Popen[bytes]

    def output(self) -> str:
        return self.log.read_text(errors="replace")[-4000:]


class Replicas:
    """Starts and stops ``meridian serve`` replicas sharing one database and its keys."""

    def __init__(
        self,
        database_url: str,
        directory: Path,
        *,
        grant_key: Path,
        log_key: Path,
        node_urls: Mapping[str, str],
        **settings: str,
    ) -> None:
        self.database_url = database_url
        self.directory = directory
        self.grant_key = grant_key
        self.log_key = log_key
        self.session_key = directory / "session.key"
        # made once here: two replicas starting at once must not both create it
        load_or_create_secret(
            self.session_key, create=True, what="session key", setting="MERIDIAN_SESSION_KEY"
        )
        self.node_urls = dict(node_urls)
        self.settings = settings
        self.running: dict[str, Replica] = {}

    def env(self, port: int) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if not k.startswith("MERIDIAN_")}
        env.update(
            MERIDIAN_DATABASE_URL=self.database_url,
            MERIDIAN_CLOCK=CLOCK,
            MERIDIAN_HOST="127.0.0.1",
            MERIDIAN_PORT=str(port),
            MERIDIAN_GRANT_KEY=str(self.grant_key),
            MERIDIAN_LOG_KEY=str(self.log_key),
            MERIDIAN_SESSION_KEY=str(self.session_key),
            MERIDIAN_NODE_URLS=",".join(f"{r}={u}" for r, u in sorted(self.node_urls.items())),
            MERIDIAN_NODES="none",
            MERIDIAN_TRUSTED_PROXIES="127.0.0.1/32",
            MERIDIAN_RENEW_INTERVAL="0",
        )
        env.update({f"MERIDIAN_{k.upper()}": v for k, v in self.settings.items()})
        return env

    def start(self, *names: str, timeout: float = 120.0) -> list[Replica]:
        """Start one replica per name (all at once) and wait until each answers."""
        started = []
        for name in names:
            port = free_port()
            log = self.directory / f"replica-{name}.log"
            with log.open("wb") as out:
                process = subprocess.Popen(
                    [sys.executable, "-m", "meridian", "serve"],
                    env=self.env(port),
                    stdout=out,
                    stderr=subprocess.STDOUT,
                )
            replica = Replica(name, f"http://127.0.0.1:{port}", log, process)
            self.running[name] = replica
            started.append(replica)
        deadline = time.monotonic() + timeout
        with httpx.Client(timeout=2, trust_env=False) as http:
            for replica in started:
                while True:
                    if replica.process.poll() is not None:
                        raise RuntimeError(f"replica {replica.name} exited: {replica.output()}")
                    try:
                        if http.get(replica.url + "/v1/health").status_code == 200:
                            break
                    except httpx.TransportError:
                        pass
                    if time.monotonic() > deadline:
                        raise RuntimeError(
                            f"replica {replica.name} did not start: {replica.output()}"
                        )
                    time.sleep(0.05)
        return started

    def kill(self, name: str) -> None:
        """SIGKILL a replica: no shutdown, its sockets simply drop."""
        replica = self.running[name]
        replica.process.send_signal(signal.SIGKILL)
        replica.process.wait(timeout=10)

    def stop(self) -> None:
        for replica in self.running.values():
            if replica.process.poll() is None:
                replica.process.terminate()
        for replica in self.running.values():
            try:
                replica.process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                replica.process.kill()
                replica.process.wait()
