"""``meridian audit``: key, checkpoint, export and verify, on a real database and a live server."""

from __future__ import annotations

import json

import pytest
from typer.testing import CliRunner

from meridian.audit import SYSTEM, record
from meridian.cli.app import app

pytestmark = pytest.mark.storage

runner = CliRunner()


def run(env: dict[str, str], *args: str):
    return runner.invoke(app, list(args), env=env)


@pytest.fixture
def env(database_url, tmp_path):
    return {"MERIDIAN_DATABASE_URL": database_url, "MERIDIAN_LOG_KEY": str(tmp_path / "log.key")}


def _write(runtime, n: int) -> None:
    with runtime.db.write() as session:
        for i in range(n):
            record(
                session,
                actor=SYSTEM,
                action="test.write",
                subject_kind="counter",
                subject_id=str(i),
                at=runtime.now(),
                bundle_digest=runtime.digest,
                details={"i": i},
            )


def test_export_then_verify_then_tamper(env, tmp_path):
    key = run(env, "audit", "key")
    assert key.exit_code == 0, key.stderr
    vkey = key.stdout.strip()
    assert vkey.startswith("meridian.localhost/log+")
    saved = tmp_path / "saved.txt"
    first = run(env, "audit", "checkpoint", "--output", str(saved))
    assert first.exit_code == 0, first.stderr
    assert first.stdout.startswith("meridian.localhost/log\n")

    from meridian.runtime import Runtime
    from meridian.settings import Settings

    rt = Runtime(Settings(database_url=env["MERIDIAN_DATABASE_URL"], log_key=tmp_path / "log.key"))
    rt.start()
    try:
        _write(rt, 25)
    finally:
        rt.close()

    path = tmp_path / "log.jsonl"
    exported = run(env, "audit", "export", str(path))
    assert exported.exit_code == 0, exported.stderr
    assert exported.stdout.startswith("exported ")
    header = json.loads(path.read_bytes().split(b"\n", 1)[0])
    assert header["format"] == "meridian-log/1"

    key_file = tmp_path / "vkey.txt"
    key_file.write_text(vkey + "\n", encoding="utf-8")
    ok = run(env, "audit", "verify", str(path), "--key", str(key_file), "--checkpoint", str(saved))
    assert ok.exit_code == 0, ok.stderr
    assert ok.stdout.startswith(f"log verified: {header['entries']} entries")
    assert "consistent with the saved checkpoint" in ok.stdout

    # One byte changed inside entry 10: located, and exit 1.
    lines = path.read_bytes().split(b"\n")
    at = 1 + header["checkpoints"] + 10
    lines[at] = (
        lines[at].replace(b'"i":', b'"j":', 1) if b'"i":' in lines[at] else lines[at][:-2] + b" }"
    )
    path.write_bytes(b"\n".join(lines))
    bad = run(env, "audit", "verify", str(path), "--key", vkey)
    assert bad.exit_code == 1
    assert "entry 10" in bad.stderr
    assert bad.stderr.strip().splitlines()[-1].startswith("error: the log does not verify")


def test_verify_refuses_bad_input_with_one_line(env, tmp_path):
    missing = run(env, "audit", "verify", str(tmp_path / "none.jsonl"), "--key", "a+b+c")
    assert missing.exit_code == 2
    assert missing.stderr.strip() == f"error: export `{tmp_path / 'none.jsonl'}` does not exist"
    neither = run(env, "audit", "verify", "--key", "a+b+c")
    assert neither.exit_code == 2
    assert "give either an export file or `--url`" in neither.stderr
    nokey = run(env, "audit", "verify", str(tmp_path), "--key", str(tmp_path / "nokey"))
    assert nokey.exit_code == 2
    assert "is neither a verifier key nor a readable file" in nokey.stderr


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
def test_log_key_is_made_in_development_and_required_in_production(env, tmp_path):
    made = run(env, "audit", "key")
    assert made.exit_code == 0, made.stderr
    assert (tmp_path / "log.key").stat().st_mode & 0o777 == 0o600
    missing = run(
        {**env, "MERIDIAN_LOG_KEY": str(tmp_path / "none.key"), "MERIDIAN_MODE": "production"},
        "audit",
        "key",
    )
    assert missing.exit_code == 78
    assert "MERIDIAN_LOG_KEY" in missing.stderr


def test_verify_the_live_service(live_factory, tmp_path):
    server = live_factory()
    ops = server.client("operator")
    for i in range(5):
        assert ops.post("/v1/tokens", json={"role": "operator", "name": f"t{i}"}).status_code == 201
    assert ops.post("/v1/log/checkpoint").status_code == 200
    vkey = server.client().get("/v1/log/key").text.strip()
    env = {"MERIDIAN_TOKEN": server.tokens["operator"]}
    ok = run(env, "audit", "verify", "--url", server.url, "--key", vkey)
    assert ok.exit_code == 0, ok.stderr
    assert ok.stdout.startswith("log verified: ")
    anonymous = run({}, "audit", "verify", "--url", server.url, "--key", vkey)
    assert anonymous.exit_code == 2
    assert "operator token" in anonymous.stderr
