"""Region nodes as child processes on loopback: a local data plane for development and tests.

Each node is a real ``meridian node`` process with its own key store, on a free loopback port,
knowing every other node as a cascade peer. ``LocalCluster`` starts them all, waits until each
answers ``/healthz``, and stops them (SIGTERM, then SIGKILL) when it is closed::

    with LocalCluster(["US", "DE"], control_key=public_key_b64(signer.public_key),
                      directory=tmp) as cluster:
        cluster["US"].relay_url    # ws://127.0.0.1:<port>/v1/relay
"""

from __future__ import annotations

import socket
import subprocess
import sys
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType

import httpx

from ..errors import ConfigurationError

__all__ = ["LocalCluster", "RunningNode", "free_port"]


def free_port(host: str = "127.0.0.1") -> int:
    """A port nothing listens on right now (another process may still take it first)."""
    with socket.socket() as sock:
        sock.bind((host, 0))
        port: int = sock.getsockname()[1]
        return port


@dataclass
class RunningNode:
    """One node process of a :class:`LocalCluster`."""

    region: str
    url: str
    store: Path
    log: Path
    process: subprocess.Popen[bytes]

    @property
    def relay_url(self) -> str:
        return self.url.replace("http://", "ws://", 1) + "/v1/relay"

    @property
    def cascade_url(self) -> str:
        return self.url.replace("http://", "ws://", 1) + "/v1/cascade"


class LocalCluster:
    """Start one node per region; ``trusted_proxies`` for all of them or per region."""

    def __init__(
        self,
        regions: Sequence[str],
        *,
        control_key: str,
        directory: Path,
        trusted_proxies: Sequence[str] | Mapping[str, Sequence[str]] = (),
        host: str = "127.0.0.1",
        python: str = sys.executable,
    ) -> None:
        self.regions = tuple(regions)
        self.control_key = control_key
        self.directory = directory
        self.host = host
        self.python = python
        self._trusted = trusted_proxies
        self.nodes: dict[str, RunningNode] = {}
        #: the ``Authorization`` header for the nodes' counters, when whoever started the
        #: cluster holds the control plane's key and set it (``/healthz`` needs none)
        self.admin: dict[str, str] = {}

    def __getitem__(self, region: str) -> RunningNode:
        return self.nodes[region]

    def trusted(self, region: str) -> tuple[str, ...]:
        if isinstance(self._trusted, Mapping):
            return tuple(self._trusted.get(region, ()))
        return tuple(self._trusted)

    def start(self, timeout: float = 120.0) -> LocalCluster:
        """Start every node and wait until each is healthy; stops them all if one fails.

        A node that exits is reported at once; the timeout only bounds nodes still starting,
        which on a busy two-core machine (13 Python processes importing at once) took over 30 s.
        """
        urls = {r: f"http://{self.host}:{free_port(self.host)}" for r in self.regions}
        try:
            for region, url in urls.items():
                self.nodes[region] = self._spawn(region, url, urls)
            self._wait(timeout)
        except BaseException:
            self.stop()
            raise
        return self

    def _spawn(self, region: str, url: str, urls: Mapping[str, str]) -> RunningNode:
        store = self.directory / region
        store.mkdir(parents=True, exist_ok=True)
        log = self.directory / f"{region}.log"
        args = [
            self.python,
            "-m",
            "meridian",
            "node",
            "--region",
            region,
            "--host",
            self.host,
            "--port",
            url.rsplit(":", 1)[1],
            "--store",
            str(store / "keys"),
            "--control-key",
            self.control_key,
            "--exit-with-parent",
        ]
        for network in self.trusted(region):
            args += ["--trusted-proxy", network]
        for peer, peer_url in urls.items():
            if peer != region:
                args += ["--peer", f"{peer}={peer_url}"]
        with log.open("wb") as out:
            # the child writes to a file, never a pipe nobody reads, so it can never block on it
            process = subprocess.Popen(args, stdout=out, stderr=subprocess.STDOUT)  # noqa: S603
        return RunningNode(region, url, store / "keys", log, process)

    def _wait(self, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        waiting = dict(self.nodes)
        with httpx.Client(timeout=2, trust_env=False) as http:
            while waiting:
                for region, node in list(waiting.items()):
                    if node.process.poll() is not None:
                        raise ConfigurationError(
                            f"region node `{region}` exited with {node.process.returncode}: "
                            + node.log.read_text(errors="replace").strip()[-2000:]
                        )
                    try:
                        if http.get(node.url + "/healthz").status_code == 200:
                            del waiting[region]
                    except httpx.TransportError:
                        pass
                if waiting and time.monotonic() > deadline:
                    raise ConfigurationError(
                        f"region nodes `{', '.join(waiting)}` not healthy after {timeout:g} s"
                    )
                if waiting:
                    time.sleep(0.02)

    def stop(self) -> None:
        """Stop every node: SIGTERM, and SIGKILL for any still running 10 s later."""
        for node in self.nodes.values():
            if node.process.poll() is None:
                node.process.terminate()
        for node in self.nodes.values():
            try:
                node.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                node.process.kill()
                node.process.wait()

    def restart(self, region: str, timeout: float = 120.0) -> RunningNode:
        """Start ``region``'s node again, at the same address and key store (after it stopped or
        was killed), and wait until it is healthy."""
        old = self.nodes[region]
        if old.process.poll() is None:
            old.process.terminate()
            old.process.wait(timeout=10)
        urls = {r: n.url for r, n in self.nodes.items()}
        self.nodes[region] = self._spawn(region, old.url, urls)
        waiting, self.nodes = self.nodes, {region: self.nodes[region]}
        try:
            self._wait(timeout)
        finally:
            self.nodes = waiting
        return self.nodes[region]

    def __enter__(self) -> LocalCluster:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()
