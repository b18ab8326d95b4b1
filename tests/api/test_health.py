"""``/healthz`` (liveness) and ``/readyz`` (readiness), what a load balancer asks each replica."""

from __future__ import annotations

import time
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest
from sqlalchemy import create_engine, text
from tests.support import eventually

from meridian.runtime import Runtime
from meridian.settings import Settings
from meridian.storage.migrate import head_revision


def test_healthz_answers_while_the_process_runs(live: Any) -> None:
    r = live.client().get("/healthz")
    assert (r.status_code, r.json()) == (200, {"status": "ok"})


def test_readyz_names_the_replica_the_schema_and_the_bundle(live: Any) -> None:
    r = live.client().get("/readyz")
    assert r.status_code == 200
    assert r.json() == {
        "status": "ready",
        "replica": live.runtime.replica.id,
        "leader": True,  # the one replica on its database leads
        "schema_revision": head_revision(),
        "bundle": live.runtime.digest,
    }


def test_readyz_is_503_when_the_schema_is_not_at_the_head(live: Any) -> None:
    with live.runtime.db.engine.begin() as conn:
        conn.execute(text("UPDATE alembic_version SET version_num = '0008'"))
    r = live.client().get("/readyz")
    assert r.status_code == 503
    assert r.json() == {
        "status": "not ready",
        "reason": f"the database schema is at `0008`, this release needs `{head_revision()}`",
    }
    # liveness is not readiness: the process still answers
    assert live.client().get("/healthz").status_code == 200


def test_readyz_is_503_when_the_database_refuses_connections(
    postgres: Any, live_factory: Any, database_url: str
) -> None:
    if not database_url.startswith("postgresql"):
        pytest.skip("SQLite has no server to stop answering; the PostgreSQL run covers it")
    live = live_factory()
    name = database_url.rsplit("/", 1)[1]
    admin = create_engine(postgres.url("postgres"), isolation_level="AUTOCOMMIT")
    try:
        with admin.connect() as conn:
            conn.execute(text(f'ALTER DATABASE "{name}" ALLOW_CONNECTIONS false'))
            conn.execute(
                text("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = :n"),
                {"n": name},
            )
        r = live.client().get("/readyz")
        assert r.status_code == 503
        assert r.json()["status"] == "not ready"
        assert r.json()["reason"].startswith("the database does not answer: ")
        assert "is not currently accepting connections" in r.json()["reason"]
        assert name not in r.json()["reason"]  # /readyz is public: no part of the url
    finally:
        with admin.connect() as conn:
            conn.execute(text(f'ALTER DATABASE "{name}" ALLOW_CONNECTIONS true'))
        admin.dispose()
    # ready again once a check runs after it (an answer is reused for up to a second)
    eventually(
        lambda: live.client().get("/readyz").status_code == 200,
        timeout=10,
        what="/readyz ready again after the database accepts connections",
    )


def test_a_runtime_not_started_is_not_ready(database_url: str, tmp_path: Any) -> None:
    rt = Runtime(Settings(database_url=database_url, log_key=tmp_path / "log.key"))
    try:
        state = rt.readiness()
    finally:
        rt.close()
    assert (state.ready, state.reason) == (False, "no policy bundle is loaded yet")


def test_readyz_and_healthz_are_in_the_openapi(live: Any) -> None:
    paths = live.client().get("/openapi.json").json()["paths"]
    assert set(paths["/readyz"]["get"]["responses"]) >= {"200", "503"}
    assert "/healthz" in paths


@pytest.mark.postgres
def test_readyz_names_no_part_of_the_database_url(postgres: Any, tmp_path: Any) -> None:
    # /readyz is public: the reason says what failed, never the database's host, port, user,
    # password or name (the driver's own message carries them)
    if postgres is None:
        pytest.skip("no PostgreSQL at 127.0.0.1:5432 (set MERIDIAN_TEST_POSTGRES_URL)")
    urls = {
        "role": "postgresql+psycopg://r2_secret_role:hunter2pw@127.0.0.1:5432/test",
        "database": "postgresql+psycopg://postgres:hunter2pw@127.0.0.1:5432/r2_secret_db",
        "server": "postgresql+psycopg://postgres:hunter2pw@127.0.0.9:5999/r2_secret_db",
    }
    reasons = {}
    for what, url in urls.items():
        rt = Runtime(Settings(database_url=url, log_key=tmp_path / "log.key"))
        try:
            state = rt.readiness()
        finally:
            rt.close()
        assert state.ready is False
        assert state.reason is not None
        reasons[what] = state.reason
    for reason in reasons.values():
        assert reason.startswith("the database does not answer: ")
        for part in ("r2_secret_role", "hunter2pw", "r2_secret_db", "127.0.0", "5432", "5999"):
            assert part not in reason, reason
    # what failed is still said
    assert "does not exist" in reasons["role"]
    assert "does not exist" in reasons["database"]
    assert "refused" in reasons["server"]


def test_a_flood_of_readyz_costs_the_database_one_check_at_a_time(live: Any) -> None:
    # /readyz is public: each call was a database round trip on a thread of its own, so a
    # flood (or a slow database) tied up every worker thread; calls while one check runs, and
    # for a second after, share its answer
    rt = live.runtime
    real = rt.readiness
    calls = []

    def counted() -> Any:
        calls.append(time.monotonic())
        time.sleep(0.3)  # a slow database: the flood arrives while the check runs
        return real()

    rt.readiness = counted
    try:
        with ThreadPoolExecutor(max_workers=16) as pool:
            codes = list(pool.map(lambda _: live.client().get("/readyz").status_code, range(48)))
    finally:
        del rt.readiness
    assert codes == [200] * 48
    assert 1 <= len(calls) <= 3, f"{len(calls)} database checks for 48 calls"
