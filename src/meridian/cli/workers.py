"""``meridian serve --workers N``: N worker processes on one listening socket, each a replica.

The command itself migrates the database, puts a bundle in force, starts the local region nodes
and makes sure the keys exist, binds the port, then starts N workers
(``meridian serve --worker-fd FD``, the socket inherited): each builds its own app, registers
its own replica lease and tries for the lead (:mod:`meridian.cluster`), and the kernel hands
each new connection to one of them. The command watches its workers: one that dies is started
again (a worker that dies within :data:`EARLY_EXIT` seconds of its start means start-up itself
fails, and the command stops with exit 3 instead of looping). SIGTERM or Ctrl-C stops them all
(SIGTERM, then SIGKILL after 30 s).

PostgreSQL only: SQLite is the embedded database of one process (``serve`` refuses N > 1).
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable
from typing import TYPE_CHECKING

import typer
from rich.console import Console

from ..errors import InputError
from ..settings import Settings

if TYPE_CHECKING:
    from ..runtime import Runtime

__all__ = ["EARLY_EXIT", "serve_worker", "supervise"]

#: a worker that exits this soon after starting failed its start-up: not started again
EARLY_EXIT = 5.0
#: how long the workers have to stop after SIGTERM before they are killed
STOP_WAIT = 30.0


def serve_worker(settings: Settings, fd: int, *, demo: bool) -> None:
    """Serve on the inherited listening socket ``fd`` as one replica, until stopped."""
    import uvicorn

    from ..runtime import Runtime
    from ..server import create_app

    refused = InputError(f"`--worker-fd {fd}` is not a listening socket this process inherited")
    try:
        sock = socket.socket(fileno=fd)
    except OSError:
        raise refused from None
    try:
        listening = sock.getsockopt(socket.SOL_SOCKET, socket.SO_ACCEPTCONN)
    except OSError:
        listening = 0
    if not listening:
        sock.detach()  # not ours to close
        raise refused
    rt = Runtime(settings)
    rt.start()
    app = create_app(runtime=rt)
    if demo:
        from ..demo import DEMO_IPS

        app.state.demo_network = DEMO_IPS
    config = uvicorn.Config(
        app, log_level="warning", access_log=False, proxy_headers=False, lifespan="on"
    )
    server = uvicorn.Server(config)
    server.run(sockets=[sock])
    if not server.started:
        raise typer.Exit(3)


def _worker_env(settings: Settings) -> dict[str, str]:
    """The environment a worker reads its settings from: this command's, as it resolved them."""
    env = dict(os.environ)
    env["MERIDIAN_DATABASE_URL"] = settings.database_url
    env["MERIDIAN_HOST"] = settings.host
    env["MERIDIAN_PORT"] = str(settings.port)
    env["MERIDIAN_NODES"] = "none"  # the command started the local nodes, once, for all
    if settings.clock is not None:
        env["MERIDIAN_CLOCK"] = settings.clock
    if settings.trusted_proxies:
        env["MERIDIAN_TRUSTED_PROXIES"] = ",".join(settings.trusted_proxies)
    if settings.node_urls:
        env["MERIDIAN_NODE_URLS"] = ",".join(f"{r}={u}" for r, u in settings.node_urls.items())
    return env


def _prepare_keys(rt: Runtime, settings: Settings) -> None:
    """Read (in development, create) every key now, once: N workers must not race to make them."""
    from ..keyfiles import load_or_create_secret
    from ..keys.grants import load_or_create_signing_key

    create = settings.mode == "development"
    _ = rt.log  # the log's signing key
    load_or_create_signing_key(settings.grant_key, create=create)
    load_or_create_secret(
        settings.session_key, create=create, what="session key", setting="MERIDIAN_SESSION_KEY"
    )


def _registered(rt: Runtime, pids: set[int]) -> int:
    """How many of the workers ``pids`` hold a live replica lease (they are serving then)."""
    from sqlalchemy import select

    from ..cluster import database_now
    from ..storage.models import Replica

    with rt.db.read() as session:
        now = database_now(session)
        rows = session.scalars(
            select(Replica.pid).where(Replica.pid.in_(pids), Replica.expires_at > now)
        )
        return len(set(rows))


def supervise(
    rt: Runtime,
    settings: Settings,
    sock: socket.socket,
    workers: int,
    *,
    demo: bool,
    on_started: Callable[[], None],
    console: Console,
) -> None:
    """Start ``workers`` workers on ``sock`` and keep them running until this process stops."""
    _prepare_keys(rt, settings)
    env = _worker_env(settings)
    fd = sock.fileno()
    argv = [sys.executable, "-m", "meridian", "serve", "--worker-fd", str(fd)]
    if demo:
        argv.append("--demo")

    def spawn() -> tuple[subprocess.Popen[bytes], float]:
        # argv is this interpreter and this command, never input
        return subprocess.Popen(argv, env=env, pass_fds=(fd,)), time.monotonic()  # noqa: S603

    procs = [spawn() for _ in range(workers)]
    try:
        announced = False
        while True:
            for i, (proc, started) in enumerate(procs):
                code = proc.poll()
                if code is None:
                    continue
                if time.monotonic() - started < EARLY_EXIT:
                    console.print(
                        f"worker {i + 1} (pid {proc.pid}) exited with {code} during its "
                        "start-up: stopping"
                    )
                    raise typer.Exit(3)
                console.print(f"worker {i + 1} (pid {proc.pid}) exited with {code}: restarting it")
                procs[i] = spawn()
            if not announced and _registered(rt, {p.pid for p, _ in procs}) == workers:
                console.print(
                    f"workers:  {workers} (pids {', '.join(str(p.pid) for p, _ in procs)})"
                )
                on_started()
                announced = True
            time.sleep(0.2)
    finally:
        for proc, _ in procs:
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
        deadline = time.monotonic() + STOP_WAIT
        for proc, _ in procs:
            try:
                proc.wait(timeout=max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        rt.close()
