"""Simultaneous first starts on an empty PostgreSQL database: every one starts, the schema and
the built-in bundle are there once."""

from __future__ import annotations

import time
from pathlib import Path

from sqlalchemy import create_engine, text

#: a start-up of the service on the database, held at a barrier so that all begin at once
_START = """
import os, sys, time
from pathlib import Path
from meridian.runtime import Runtime
from meridian.settings import Settings
go = Path({go!r})
rt = Runtime(Settings(database_url={url!r}, renew_interval=0, log_key=Path({key!r})))
while not go.exists():
    time.sleep(0.005)
rt.start()
rt.log.self_check()
rt.close()
print("started")
"""


def test_simultaneous_first_starts_on_an_empty_database(
    fresh_postgres: str, processes, tmp_path: Path
) -> None:
    from meridian.audit.note import load_or_create_log_key

    key = tmp_path / "log.key"
    load_or_create_log_key(key, create=True)  # configured, as in production
    go = tmp_path / "go"
    starts = [
        processes.python(_START.format(go=str(go), url=fresh_postgres, key=str(key)))
        for _ in range(4)
    ]
    time.sleep(3)  # every process has imported Meridian and waits at the barrier
    go.touch()
    results = [(*p.communicate(timeout=120), p.returncode) for p in starts]
    failed = [(code, _error_line(err)) for _, err, code in results if code != 0]
    assert not failed, failed
    assert [out.strip() for out, _, _ in results] == ["started"] * 4

    engine = create_engine(fresh_postgres)
    try:
        with engine.connect() as conn:
            from meridian.storage.migrate import head_revision

            assert conn.execute(text("SELECT version_num FROM alembic_version")).all() == [
                (head_revision(),)
            ]
            bundles = conn.execute(text("SELECT count(*) FROM policy_bundles")).scalar_one()
            loads = conn.execute(
                text("SELECT count(*) FROM records WHERE action = 'policy.load'")
            ).scalar_one()
    finally:
        engine.dispose()
    assert (bundles, loads) == (1, 1)


def _error_line(stderr: str) -> str:
    """The line of a traceback that names the error (the last one naming an exception)."""
    lines = [line for line in stderr.splitlines() if "Error:" in line]
    return lines[-1] if lines else stderr[-300:]
