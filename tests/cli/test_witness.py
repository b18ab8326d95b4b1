"""Witnesses end to end: two real ``meridian witness serve`` processes cosign the live log's
checkpoints; a log that shows them a forked history is refused and says so; a witness that is
down stops nothing, and the quorum check names it."""

from __future__ import annotations

import hashlib
import socket
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import httpx
import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from tests.support import eventually
from typer.testing import CliRunner

from meridian.audit import Actor, record
from meridian.audit.cosignature import Cosigner, WitnessKey, cosignatures, verify_cosignatures
from meridian.audit.note import NoteSigner, NoteVerifier, load_or_create_log_key
from meridian.cli.app import app
from meridian.errors import ProofError
from meridian.keyfiles import load_or_create_ed25519

pytestmark = pytest.mark.storage

ORIGIN = "meridian.localhost/log"
AT = datetime(2020, 6, 4, 12, 0, tzinfo=UTC)
runner = CliRunner()


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass
class WitnessProcess:
    name: str
    vkey: str
    url: str
    process: subprocess.Popen[str]

    def stop(self) -> None:
        self.process.terminate()
        self.process.wait(timeout=30)


def _start_witness(tmp: Path, name: str, log_vkey: str) -> WitnessProcess:
    key = tmp / f"{name.replace('/', '_')}.key"
    vkey = Cosigner(
        name,
        load_or_create_ed25519(key, create=True, what="witness key", setting="-"),
    ).public.vkey
    port = _free_port()
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "meridian",
            "witness",
            "serve",
            "--name",
            name,
            "--key",
            str(key),
            "--log",
            log_vkey,
            "--state",
            str(tmp / f"{port}.db"),
            "--port",
            str(port),
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    url = f"http://127.0.0.1:{port}"

    def up() -> bool:
        assert process.poll() is None, process.communicate()
        try:
            return httpx.get(url + "/key", timeout=2).text.strip() == vkey
        except httpx.HTTPError:
            return False

    eventually(up, timeout=60, what=f"witness {name} answering")
    return WitnessProcess(name, vkey, url, process)


@pytest.fixture
def log_key(tmp_path: Path) -> tuple[Path, str]:
    path = tmp_path / "log.key"
    key = load_or_create_log_key(path, create=True)
    return path, NoteSigner(ORIGIN, key).verifier_key()


@pytest.fixture
def witnesses(tmp_path: Path, log_key: tuple[Path, str]) -> Iterator[list[WitnessProcess]]:
    started = [_start_witness(tmp_path, f"witness.test/w{i}", log_key[1]) for i in (1, 2)]
    yield started
    for w in started:
        if w.process.poll() is None:
            w.stop()


def _grow(rt, n: int, tag: str = "") -> None:
    with rt.db.write() as session:
        for i in range(n):
            record(
                session,
                actor=Actor("test", "witness"),
                action="test.write",
                subject_kind="counter",
                subject_id=f"{tag}{i}",
                at=AT,
                bundle_digest="sha256:" + "0" * 64,
            )


def _serve(live_factory, log_key, witnesses):
    return live_factory(
        log_key=log_key[0],
        checkpoint_interval=0.2,
        witnesses=tuple(f"{w.vkey} {w.url}" for w in witnesses),
        witness_timeout=2.0,
    )


def _cosigned_by(public: httpx.Client, size: int, names: set[str], keys: list[WitnessKey]):
    def check() -> str:
        note = public.get("/log/checkpoint").text
        assert note.split("\n")[1] == str(size), note
        found = {c.witness for c in cosignatures(note, keys).valid}
        assert found == names, found
        return note

    return check


def _verify(server, log_vkey: str, *witness_args: str):
    return runner.invoke(
        app,
        [
            "audit",
            "verify",
            "--url",
            server.url,
            "--token",
            server.tokens["operator"],
            "--key",
            log_vkey,
            *witness_args,
        ],
    )


def test_two_witnesses_cosign_and_a_forked_log_is_refused(
    live_factory, log_key, witnesses, tmp_path
):
    server = _serve(live_factory, log_key, witnesses)
    public = server.client()
    keys = [WitnessKey.from_vkey(w.vkey) for w in witnesses]
    names = {w.name for w in witnesses}
    _grow(server.runtime, 20)
    size = server.runtime.log.sync()
    note = eventually(_cosigned_by(public, size, names, keys), timeout=30)
    assert len(verify_cosignatures(note, keys, quorum=2)) == 2
    assert NoteVerifier.from_vkey(log_key[1]).open(note).size == size
    # each witness serves what it cosigned on its monitoring endpoint
    origin_hash = hashlib.sha256(ORIGIN.encode()).hexdigest()
    held = httpx.get(f"{witnesses[0].url}/{origin_hash}/checkpoint").text
    assert held.split("\n")[1] == str(size)
    # the log grows: the witnesses follow it with consistency proofs
    _grow(server.runtime, 300, "more")
    grown = server.runtime.log.sync()
    eventually(_cosigned_by(public, grown, names, keys), timeout=30)
    report = public.get("/v1/log/witnesses").json()
    assert report["missing"] == []
    assert {w["size"] for w in report["data"]} == {grown}
    ok = _verify(server, log_key[1], "--witness", keys[0].vkey, "--witness", keys[1].vkey)
    assert ok.exit_code == 0, ok.output
    assert f"cosigned at size {grown} by 2 of 2 witnesses" in ok.output

    # A second database under the same key: another history, shown to the same witnesses.
    from meridian.runtime import Runtime
    from meridian.settings import Settings

    fork = Runtime(
        Settings(
            database_url=f"sqlite:///{tmp_path / 'fork.db'}",
            log_key=log_key[0],
            renew_interval=0,
            witnesses=tuple(f"{w.vkey} {w.url}" for w in witnesses),
        )
    )
    fork.start()
    try:
        _grow(fork, grown + 50, "fork")
        forked = fork.log.checkpoint()
        submitted = fork.witnessing.submit()
        assert [s.cosigned for s in submitted] == [False, False]
        for s in submitted:
            assert s.problem is not None
            assert "refused the checkpoint" in s.problem, s.problem
            assert "(422)" in s.problem, s.problem
            assert "does not extend the one cosigned" in s.problem
        assert all(r.refused for r in fork.witnessing.report())
        with pytest.raises(ProofError, match="0 of 1 required"):
            verify_cosignatures(fork.witnessing.cosigned_note(forked), keys, quorum=1)
    finally:
        fork.close()
    # the witnesses still hold the real log, which goes on being cosigned
    _grow(server.runtime, 3, "after")
    eventually(_cosigned_by(public, server.runtime.log.sync(), names, keys), timeout=30)


def test_a_witness_down_stops_nothing_and_the_quorum_names_it(live_factory, log_key, witnesses):
    server = _serve(live_factory, log_key, witnesses)
    public, ops = server.client(), server.client("operator")
    keys = [WitnessKey.from_vkey(w.vkey) for w in witnesses]
    _grow(server.runtime, 5)
    eventually(
        _cosigned_by(public, server.runtime.log.sync(), {w.name for w in witnesses}, keys),
        timeout=30,
    )
    witnesses[1].stop()
    # the log keeps taking changes and signing checkpoints
    assert ops.post("/v1/tokens", json={"role": "operator", "name": "late"}).status_code == 201
    _grow(server.runtime, 7, "down")
    size = server.runtime.log.sync()
    eventually(_cosigned_by(public, size, {witnesses[0].name}, keys), timeout=30)

    def reported() -> dict:
        body = public.get("/v1/log/witnesses").json()
        assert body["missing"] == [witnesses[1].name], body
        w2 = body["data"][1]
        assert "is unreachable" in (w2["problem"] or ""), w2
        assert not w2["refused"]
        return body

    eventually(reported, timeout=30)
    two = _verify(server, log_key[1], "--witness", keys[0].vkey, "--witness", keys[1].vkey)
    assert two.exit_code == 1, two.output
    assert (
        f"cosignature quorum not met: 1 of 2 required: `{witnesses[1].name}` has not cosigned it"
        in two.output
    )
    one = _verify(
        server, log_key[1], "--witness", keys[0].vkey, "--witness", keys[1].vkey, "--quorum", "1"
    )
    assert one.exit_code == 0, one.output
    assert "by 1 of 2 witnesses (witness.test/w1)" in one.output


def test_witness_key_prints_the_cosigner_vkey(tmp_path: Path) -> None:
    key = tmp_path / "w.key"
    got = runner.invoke(app, ["witness", "key", "--name", "w.example/1", "--key", str(key)])
    assert got.exit_code == 0, got.output
    private = load_or_create_ed25519(key, create=False, what="k", setting="-")
    assert isinstance(private, Ed25519PrivateKey)
    assert got.output.strip() == Cosigner("w.example/1", private).public.vkey
    bad = runner.invoke(
        app, ["witness", "serve", "--name", "w.example/1", "--key", str(key), "--log", "nope"]
    )
    assert bad.exit_code == 2
    assert "`nope` is neither a verifier key nor a readable file" in bad.output


@pytest.mark.parametrize(
    ("value", "problem"),
    [
        ("http://127.0.0.1:9301", "is not `<witness key> <url>`"),
        ("a+b+c ftp://x", "must start with http:// or https://"),
    ],
    ids=["no-key", "scheme"],
)
def test_a_malformed_witness_setting_is_refused(value: str, problem: str) -> None:
    from meridian.errors import ConfigurationError
    from meridian.settings import get_settings

    with pytest.raises(ConfigurationError, match=problem):
        get_settings({"MERIDIAN_WITNESSES": value})


def test_a_witness_key_that_does_not_parse_stops_the_start(tmp_path: Path) -> None:
    from meridian.errors import ConfigurationError
    from meridian.runtime import Runtime
    from meridian.settings import Settings

    rt = Runtime(
        Settings(
            database_url=f"sqlite:///{tmp_path / 'm.db'}",
            log_key=tmp_path / "log.key",
            witnesses=("w1.example+00000000+AQ== http://127.0.0.1:9",),
        )
    )
    try:
        with pytest.raises(ConfigurationError, match="MERIDIAN_WITNESSES: witness key"):
            rt.start()
    finally:
        rt.close()
