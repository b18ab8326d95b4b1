"""Shared test set-up: the Hypothesis profile, databases on both backends, and live servers.

Storage and API tests take the ``database_url`` fixture and so run twice: on SQLite (a new file
per test, copied from a template migrated once per session) and on PostgreSQL (a new database
per test, cloned from a migrated template). Under ``pytest-xdist`` each worker has its own
templates, temporary folders and database names. The
PostgreSQL server is the one named by ``MERIDIAN_TEST_POSTGRES_URL`` (``.ci/run`` sets it); when
that variable is unset, the local default is tried and its tests are skipped if nothing answers.
When it is set, an unreachable server fails the run instead.

Markers follow from the fixtures a test uses (:func:`pytest_collection_modifyitems`): ``browser``
(it drives Chromium), ``nodes`` (it starts region nodes, each a process of its own) and
``postgres`` (its PostgreSQL run). ``make test-fast`` leaves those out, and ``slow``.
"""

from __future__ import annotations

import asyncio
import os
import secrets
import shutil
import socket
import threading
import time
from collections.abc import Callable, Coroutine, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

import httpx
import pytest
from hypothesis import settings

if TYPE_CHECKING:
    from meridian.node.cluster import LocalCluster

# Deterministic and without timing: examples are the same on every run, no example database is
# written, and a slow machine (CI shares one) never turns into a "deadline exceeded" failure.
settings.register_profile("meridian", deadline=None, database=None, derandomize=True)
settings.load_profile("meridian")

_PG_DEFAULT = "postgresql+psycopg://postgres@127.0.0.1:5432/test"
_PG_ENV = "MERIDIAN_TEST_POSTGRES_URL"


# -- markers ---------------------------------------------------------------------------------

#: fixtures that start region node processes (a fixture yielding a ``LocalCluster`` is one too),
#: or control-plane replicas as processes of their own (tests/cluster/conftest.py)
_NODE_FIXTURES = frozenset({"nodes", "cluster", "processes", "replicas"})


def _starts_nodes(fixturedefs: Any) -> bool:
    for fixturedef in fixturedefs:
        returns = getattr(fixturedef.func, "__annotations__", {}).get("return", "")
        if "LocalCluster" in str(returns):
            return True
    return False


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Mark each test by what it starts: ``browser``, ``nodes``, ``postgres``."""
    for item in items:
        names = set(getattr(item, "fixturenames", ()))
        info = getattr(item, "_fixtureinfo", None)
        defs = [d for n in names for d in (info.name2fixturedefs.get(n, ()) if info else ())]
        if "browser" in names:
            item.add_marker(pytest.mark.browser)
        if names & _NODE_FIXTURES or _starts_nodes(defs):
            item.add_marker(pytest.mark.nodes)
        callspec = getattr(item, "callspec", None)
        if callspec is not None and "postgresql" in callspec.params.values():
            item.add_marker(pytest.mark.postgres)


# -- clocks ------------------------------------------------------------------------------------


class SetClock:
    """A clock a test moves by hand (a plain callable: the seam the service reads time through)."""

    def __init__(self, at: str | datetime = "2026-01-15T09:00:00Z") -> None:
        self.at = _instant(at)

    def set(self, at: str | datetime) -> None:
        self.at = _instant(at)

    def __call__(self) -> datetime:
        return self.at


def _instant(at: str | datetime) -> datetime:
    if isinstance(at, datetime):
        return at.astimezone(UTC)
    return datetime.fromisoformat(at.replace("Z", "+00:00")).astimezone(UTC)


@pytest.fixture
def clock() -> SetClock:
    return SetClock()


# -- databases ---------------------------------------------------------------------------------


class _Postgres:
    """Creates a migrated template once, then one database per test cloned from it."""

    def __init__(self, url: str) -> None:
        from sqlalchemy import create_engine
        from sqlalchemy.engine import make_url

        self.base = make_url(url)
        self.admin = create_engine(
            self.base.set(database="postgres"), isolation_level="AUTOCOMMIT", pool_size=1
        )
        self.template: str | None = None

    def _exec(self, sql: str) -> None:
        from sqlalchemy import text

        with self.admin.connect() as conn:
            conn.execute(text(sql))

    def new(self) -> str:
        if self.template is None:
            from meridian.storage import Database, migrate

            name = f"meridian_tpl_{os.getpid()}_{secrets.token_hex(3)}"
            self._exec(f'CREATE DATABASE "{name}"')
            db = Database(self.base.set(database=name).render_as_string(hide_password=False))
            migrate(db)
            db.dispose()
            self.template = name
        name = f"meridian_t_{os.getpid()}_{secrets.token_hex(4)}"
        self._exec(f'CREATE DATABASE "{name}" TEMPLATE "{self.template}"')
        return name

    def url(self, name: str) -> str:
        return self.base.set(database=name).render_as_string(hide_password=False)

    def drop(self, name: str) -> None:
        self._exec(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')

    def close(self) -> None:
        if self.template is not None:
            self.drop(self.template)
        self.admin.dispose()


def _reachable(url: str) -> bool:
    from sqlalchemy.engine import make_url

    u = make_url(url)
    try:
        with socket.create_connection((u.host or "127.0.0.1", u.port or 5432), timeout=2):
            return True
    except OSError:
        return False


@pytest.fixture(scope="session")
def postgres() -> Iterator[_Postgres | None]:
    url = os.environ.get(_PG_ENV)
    if url is None:
        if not _reachable(_PG_DEFAULT):
            yield None
            return
        url = _PG_DEFAULT
    elif not _reachable(url):
        pytest.fail(f"{_PG_ENV} is set but nothing answers at {url}")
    server = _Postgres(url)
    yield server
    server.close()


@pytest.fixture(scope="session")
def sqlite_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A SQLite database migrated to the head, once per session (per xdist worker)."""
    from meridian.storage import Database, migrate

    path = tmp_path_factory.mktemp("template") / "meridian.db"
    db = Database(f"sqlite:///{path}")
    migrate(db)
    db.dispose()  # the last connection closed: the WAL is checkpointed into the file
    return path


def sqlite_copy(template: Path, directory: Path) -> str:
    """The URL of a new SQLite database in ``directory``: a copy of the migrated ``template``."""
    path = directory / "meridian.db"
    shutil.copyfile(template, path)
    path.chmod(0o600)
    return f"sqlite:///{path}"


@pytest.fixture(params=["sqlite", "postgresql"])
def database_url(
    request: pytest.FixtureRequest,
    tmp_path: Path,
    postgres: _Postgres | None,
    sqlite_template: Path,
) -> Iterator[str]:
    """A fresh database URL, migrated to the head: once on SQLite, once on PostgreSQL."""
    if request.param == "sqlite":
        yield sqlite_copy(sqlite_template, tmp_path)
        return
    if postgres is None:
        pytest.skip(f"no PostgreSQL at {_PG_DEFAULT} (set {_PG_ENV} to require one)")
    name = postgres.new()
    try:
        yield postgres.url(name)
    finally:
        postgres.drop(name)


@pytest.fixture
def runtime(database_url: str, clock: SetClock, tmp_path: Any) -> Iterator[Any]:
    """A started :class:`Runtime` on a fresh database, its clock in the test's hands."""
    from meridian.runtime import Runtime
    from meridian.settings import Settings

    settings = Settings(database_url=database_url, renew_interval=0, log_key=tmp_path / "log.key")
    rt = Runtime(settings, clock=clock)
    rt.start()
    yield rt
    rt.close()


# -- live servers ------------------------------------------------------------------------------


@dataclass
class Live:
    """A real server on loopback, with tokens for an operator, two partners, and a second operator."""

    url: str
    runtime: Any
    clock: SetClock
    tokens: dict[str, str] = field(default_factory=dict)
    #: each meeting's invite (its join secret), by meeting id, as the tests' helpers created them
    invites: dict[str, str] = field(default_factory=dict)
    _clients: list[httpx.Client] = field(default_factory=list)
    #: the served app, and the event loop it runs on
    app: Any = None
    loop: asyncio.AbstractEventLoop | None = None

    async def on_server(self, coro: Coroutine[Any, Any, Any], timeout: float = 30) -> Any:
        """Await ``coro`` run on the server's own event loop (where its live state lives)."""
        assert self.loop is not None
        future = asyncio.run_coroutine_threadsafe(coro, self.loop)
        return await asyncio.wait_for(asyncio.wrap_future(future), timeout)

    def client(self, who: str | None = None, **headers: str) -> httpx.Client:
        """An HTTP client acting as ``who`` (a key of ``tokens``, or ``None``: no token)."""
        if who is not None:
            headers["authorization"] = f"Bearer {self.tokens[who]}"
        c = httpx.Client(base_url=self.url, headers=headers, timeout=30)
        self._clients.append(c)
        return c

    def token(self, name: str, **fields: Any) -> str:
        """Create and remember a token (``role``, and ``partner_id`` or ``account_id``)."""
        from meridian.audit import SYSTEM
        from meridian.identity.people import add_operator, find_operator
        from meridian.identity.tokens import create_token

        with self.runtime.db.write() as session:
            if fields.get("role") == "operator" and "person_id" not in fields:
                # an operator token is a person's: the person of this name, made if new
                person = find_operator(session, name)
                if person is None:
                    _, _, secret = add_operator(
                        session,
                        name=name,
                        at=self.clock(),
                        actor=SYSTEM,
                        digest=self.runtime.digest,
                    )
                    self.tokens[name] = secret
                    return secret
                fields["person_id"] = person.id
            _, secret = create_token(
                session,
                at=self.clock(),
                actor=SYSTEM,
                digest=self.runtime.digest,
                name=name,
                **fields,
            )
        self.tokens[name] = secret
        return secret


def serve(app: Any) -> tuple[str, Callable[[], None]]:
    """Serve an ASGI app with uvicorn on a loopback port in a thread; returns its URL and a stop."""
    url, stop, _ = serve_on_loop(app)
    return url, stop


def serve_on_loop(app: Any) -> tuple[str, Callable[[], None], asyncio.AbstractEventLoop]:
    """:func:`serve`, also returning the server's event loop (to run coroutines on it)."""
    import uvicorn

    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    server = uvicorn.Server(
        uvicorn.Config(
            app, log_level="warning", lifespan="on", access_log=False, proxy_headers=False
        )
    )
    loop = asyncio.new_event_loop()
    thread = threading.Thread(
        target=lambda: loop.run_until_complete(server.serve(sockets=[sock])), daemon=True
    )
    thread.start()
    deadline = time.monotonic() + 30
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            raise RuntimeError("the test server did not start")
        time.sleep(0.01)

    def stop() -> None:
        server.should_exit = True
        thread.join(timeout=30)
        loop.close()
        sock.close()

    return f"http://127.0.0.1:{port}", stop, loop


@pytest.fixture
def live_factory(
    database_url: str, clock: SetClock, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Callable[..., Live]]:
    """Serve the app on loopback over the test's database, with settings of the test's choosing."""
    from meridian.runtime import Runtime
    from meridian.server import create_app
    from meridian.settings import Settings

    started: list[tuple[Live, Callable[[], None]]] = []
    # One log key per test: servers sharing a database share the log, and so its signing key.
    log_key = tmp_path_factory.mktemp("log") / "log.key"

    def start(**settings: Any) -> Live:
        config = {
            "renew_interval": 0,
            "trusted_proxies": ("10.0.0.0/8",),
            "grant_key": tmp_path_factory.mktemp("grant") / "grant.key",
            "log_key": log_key,
            "session_key": log_key.with_name("session.key"),
            **settings,
        }
        rt = Runtime(Settings(database_url=database_url, **config), clock=clock)
        rt.start()
        app = create_app(runtime=rt)
        url, stop, loop = serve_on_loop(app)
        server = Live(url, rt, clock, app=app, loop=loop)
        started.append((server, stop))
        server.token("operator", role="operator")
        server.token("operator2", role="operator")
        server.token("bizconf", role="partner", partner_id="bizconf")
        server.token("suirui", role="partner", partner_id="suirui-zhumu")
        return server

    yield start
    for server, stop in started:
        for c in server._clients:
            c.close()
        stop()


@pytest.fixture
def live(live_factory: Callable[..., Live]) -> Live:
    """The app served on loopback over a fresh database, with operator and partner tokens."""
    return live_factory()


# -- region nodes and a control plane that uses them (meeting and page tests) ---------------------
# Each test module gets its own four nodes (CN, DE, HK, US), each a process of its own, trusting
# loopback as a proxy so participants can be placed by ``X-Forwarded-For``.

REGIONS = ["CN", "DE", "HK", "US"]


@pytest.fixture(scope="module")
def grant_key(tmp_path_factory: pytest.TempPathFactory) -> Any:
    """The control plane's grant key, which the nodes check grants against."""
    from meridian.keys.grants import load_or_create_signing_key

    path = tmp_path_factory.mktemp("control") / "grant.key"
    load_or_create_signing_key(path, create=True)
    return path


@pytest.fixture(scope="module")
def nodes(tmp_path_factory: pytest.TempPathFactory, grant_key: Any) -> Iterator[LocalCluster]:
    from meridian.keys.grants import GrantSigner, load_or_create_signing_key, public_key_b64
    from meridian.node.cluster import LocalCluster

    key = load_or_create_signing_key(grant_key, create=False)
    cluster = LocalCluster(
        REGIONS,
        control_key=public_key_b64(key.public_key()),
        directory=tmp_path_factory.mktemp("nodes"),
        trusted_proxies=["127.0.0.1/32"],
    )
    signer = GrantSigner(key)
    cluster.admin = {"Authorization": f"Bearer {signer.admin(seconds=3 * 3600)}"}
    with cluster:
        yield cluster


@pytest.fixture
def plane(live_factory: Any, nodes: Any, grant_key: Any) -> Any:
    """The control plane on loopback, told where the nodes are, loopback trusted as a proxy."""
    live = live_factory(
        grant_key=grant_key,
        node_urls={r: n.url for r, n in nodes.nodes.items()},
        trusted_proxies=("127.0.0.1/32",),
    )
    live.clock.set("2021-03-01T10:00:00Z")
    return live
