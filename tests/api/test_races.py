"""Races over HTTP: concurrent checkpoints and concurrent bundle loads against real servers.

Two servers share one database (as two replicas would), and eight threads released together by
a barrier call them at once, on SQLite and on PostgreSQL.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any

import pytest
from sqlalchemy import func, select
from typer.testing import CliRunner

from meridian.cli.app import app
from meridian.policy.loader import default_bundle_path
from meridian.storage.models import Checkpoint, PolicyBundle, Record

pytestmark = pytest.mark.storage

THREADS = 8


def _together(calls: list[Callable[[], Any]]) -> list[Any]:
    """Run every call in a thread of its own, released at the same instant; their results."""
    barrier = threading.Barrier(len(calls))
    results: list[Any] = [None] * len(calls)
    errors: list[BaseException] = []

    def run(i: int) -> None:
        try:
            barrier.wait(timeout=30)
            results[i] = calls[i]()
        except BaseException as exc:  # noqa: BLE001 - reported below, in the test's thread
            errors.append(exc)

    threads = [threading.Thread(target=run, args=(i,)) for i in range(len(calls))]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)
    assert not any(t.is_alive() for t in threads), "a call never returned"
    assert not errors, errors
    return results


def test_concurrent_checkpoints_give_one_per_size_and_the_log_verifies(live_factory):
    first = live_factory()
    second = live_factory()
    servers = [first, second]
    ops = [s.client("operator") for s in servers]
    for round_ in range(3):
        assert (
            ops[0].post("/v1/tokens", json={"role": "operator", "name": f"r{round_}"}).status_code
            == 201
        )
        responses = _together(
            [lambda c=ops[i % 2]: c.post("/v1/log/checkpoint") for i in range(THREADS)]
        )
        assert [r.status_code for r in responses] == [200] * THREADS, [r.text for r in responses]
        # every caller is answered with the one checkpoint at the log's size
        assert len({r.text for r in responses}) == 1
    with first.runtime.db.read() as session:
        sizes = session.scalars(select(Checkpoint.size)).all()
    assert len(sizes) == len(set(sizes)), sorted(sizes)

    vkey = first.client().get("/v1/log/key").text.strip()
    result = CliRunner().invoke(
        app,
        ["audit", "verify", "--url", first.url, "--key", vkey],
        env={"MERIDIAN_TOKEN": first.tokens["operator"]},
    )
    assert result.exit_code == 0, result.output
    assert result.stdout.startswith("log verified: ")


def test_concurrent_bundle_loads_leave_exactly_one_in_force(live_factory):
    first = live_factory()
    second = live_factory()
    ops = [s.client("operator") for s in (first, second)]
    text = default_bundle_path().read_text(encoding="utf-8")
    for round_ in range(3):
        versions = [f"race.{round_}.{i}" for i in range(THREADS)]
        bodies = [text.replace('version: "2020.12.18"', f'version: "{v}"') for v in versions]
        # every change proposed against the same bundle in force, then all approved at once,
        # on both replicas: one comes into force, the others find their base gone
        changes = []
        for body in bodies:
            proposed = ops[0].post("/v1/policy/changes", json={"yaml": body, "days": 1})
            assert proposed.status_code == 201, proposed.text
            changes.append(proposed.json())
        approvers = [s.client("operator2") for s in (first, second)]
        responses = _together(
            [
                lambda c=approvers[i % 2], ch=changes[i]: c.post(
                    f"/v1/policy/changes/{ch['id']}/approve", json={"diff": ch["diff_digest"]}
                )
                for i in range(THREADS)
            ]
        )
        codes = sorted(r.status_code for r in responses)
        assert codes == [200] + [409] * (THREADS - 1), [r.text for r in responses]
        with first.runtime.db.read() as session:
            active = session.scalars(select(PolicyBundle).where(PolicyBundle.active)).all()
            last_load = session.scalars(
                select(Record).where(Record.action == "policy.load").order_by(Record.seq.desc())
            ).first()
            loads = session.scalar(
                select(func.count()).select_from(Record).where(Record.action == "policy.load")
            )
        assert len(active) == 1, [a.version for a in active]
        assert active[0].version in versions
        # the bundle in force is the one the log says was loaded last, and each load names the
        # one it replaced: the loads form one chain
        assert last_load is not None
        assert last_load.subject_id == active[0].digest
        assert loads == 1 + (round_ + 1)
    with first.runtime.db.read() as session:
        chain = [
            r.details["previous"]
            for r in session.scalars(
                select(Record).where(Record.action == "policy.load").order_by(Record.seq)
            )
        ]
        subjects = [
            r.subject_id
            for r in session.scalars(
                select(Record).where(Record.action == "policy.load").order_by(Record.seq)
            )
        ]
    assert chain[1:] == subjects[:-1]
