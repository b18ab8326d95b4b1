"""``meridian report transparency``: from an export or the database, and --verify byte for byte."""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from tests.reports.test_transparency import PERIOD, june_2020, request
from typer.testing import CliRunner

import meridian.cli.report  # noqa: F401  (registers `report` on the app)
from meridian.audit.export import write_export
from meridian.audit.merkle import RootBuilder, leaf_hash
from meridian.audit.note import Checkpoint, NoteSigner
from meridian.cli.app import app
from meridian.reports.compute import compute_report
from meridian.reports.model import StatedCheckpoint
from meridian.reports.render import render

runner = CliRunner()
ORIGIN = "meridian.test/log"


class Export:
    """An export of ``entries`` on disk, signed at two sizes, and its verifier key in a file."""

    def __init__(self, directory: Path, entries: list[bytes], middle: int) -> None:
        self.entries = entries
        self.signer = NoteSigner(ORIGIN, Ed25519PrivateKey.generate())
        self.notes = [self.sign(middle, 0), self.sign(len(entries), 1)]
        self.path = directory / "log.jsonl"
        write_export(
            self.path,
            origin=ORIGIN,
            checkpoints=self.notes,
            entries=enumerate(entries),
            count=len(entries),
        )
        self.vkey = self.signer.verifier_key()
        self.key_file = directory / "log.vkey"
        self.key_file.write_text(self.vkey + "\n", encoding="utf-8")

    def sign(self, size: int, hours: int) -> str:
        builder = RootBuilder()
        for item in self.entries[:size]:
            builder.push(leaf_hash(item))
        at = datetime(2020, 12, 18, tzinfo=UTC) + timedelta(hours=hours)
        return self.signer.sign(Checkpoint(ORIGIN, size, builder.root(), at))

    def args(self) -> list[str]:
        return ["--log", str(self.path), "--key", str(self.key_file)]


@pytest.fixture
def export(tmp_path: Path) -> Export:
    log = june_2020()
    return Export(tmp_path, log, middle=len(log) // 2)


def report(*args: str) -> tuple[int, str, str]:
    result = runner.invoke(app, ["report", "transparency", *args])
    return result.exit_code, result.stdout, result.stderr


FROM_TO = ["--from", "2020-05-01", "--to", "2020-12-12"]


# -- writing -----------------------------------------------------------------------------------


def test_from_an_export_at_its_latest_checkpoint(export: Export) -> None:
    code, out, err = report(*FROM_TO, *export.args())
    assert code == 0, err
    doc = json.loads(out)
    assert doc["checkpoint"]["size"] == len(export.entries)
    assert doc["checkpoint"]["note"] == export.notes[-1]
    assert doc["requests"]["total"] == 6
    assert doc["requests"]["by_outcome"] == {
        "applied": 3,
        "narrowed": 1,
        "pending": 1,
        "rejected": 1,
    }


def test_default_period_is_first_to_last_request(export: Export) -> None:
    code, out, _ = report(*export.args())
    assert code == 0
    assert json.loads(out)["period"] == {"from": "2020-04-30", "to": "2020-12-13"}


@pytest.mark.parametrize("name", ["r.json", "r.csv", "r.html"])
def test_output_file_takes_its_format_from_its_extension(
    export: Export, tmp_path: Path, name: str
) -> None:
    target = tmp_path / name
    code, out, err = report(*FROM_TO, *export.args(), "--output", str(target))
    assert code == 0, err
    assert out == ""
    assert f"wrote `{target}`: 6 requests from 2020-05-01 to 2020-12-12" in err
    data = target.read_bytes()
    fmt = name.rsplit(".", 1)[1]
    assert data.startswith({"json": b"{", "csv": b"dimension,", "html": b"<!DOCTYPE"}[fmt])


def test_the_key_may_be_given_as_text(export: Export) -> None:
    code, out, _ = report(*FROM_TO, "--log", str(export.path), "--key", export.vkey)
    assert code == 0
    assert json.loads(out)["checkpoint"]["origin"] == ORIGIN


# -- verifying ---------------------------------------------------------------------------------


@pytest.mark.parametrize("fmt", ["json", "csv", "html"])
def test_a_report_recomputes_byte_for_byte(export: Export, tmp_path: Path, fmt: str) -> None:
    target = tmp_path / f"report.{fmt}"
    assert report(*FROM_TO, *export.args(), "-o", str(target))[0] == 0
    code, out, err = report("--verify", str(target), *export.args())
    assert code == 0, err
    root = json.loads(report(*FROM_TO, *export.args())[1])["checkpoint"]["root"]
    assert out == (
        f"report verified: 6 requests, checkpoint size {len(export.entries)}, root {root}\n"
    )


def test_a_report_at_an_earlier_checkpoint_verifies(export: Export, tmp_path: Path) -> None:
    from meridian.audit.note import NoteVerifier

    note = export.notes[0]
    earlier = StatedCheckpoint.of(NoteVerifier.from_vkey(export.vkey).open(note), note)
    data = render(compute_report(export.entries, earlier, PERIOD), "csv")
    target = tmp_path / "early.csv"
    target.write_bytes(data)
    code, out, err = report("--verify", str(target), *export.args())
    assert code == 0, err
    assert f"checkpoint size {earlier.size}," in out


def _alter(path: Path, find: bytes, replace: bytes) -> None:
    data = path.read_bytes()
    assert data.count(find) >= 1
    path.write_bytes(data.replace(find, replace, 1))


@pytest.mark.parametrize(
    ("fmt", "find", "replace"),
    [
        ("json", b'"accounts":3', b'"accounts":2'),
        ("csv", b"outcome,rejected,1", b"outcome,rejected,0"),
        ("html", b'<td class="n">6</td>', b'<td class="n">7</td>'),
    ],
    ids=["json", "csv", "html"],
)
def test_a_report_altered_by_one_byte_fails_naming_the_line(
    export: Export, tmp_path: Path, fmt: str, find: bytes, replace: bytes
) -> None:
    target = tmp_path / f"report.{fmt}"
    assert report(*FROM_TO, *export.args(), "-o", str(target))[0] == 0
    lines = target.read_bytes().decode().split("\n")
    number, changed = next((n, x) for n, x in enumerate(lines, 1) if find.decode() in x)
    column = changed.index(find.decode()) + next(
        i for i, (a, b) in enumerate(zip(find, replace, strict=True)) if a != b
    )
    _alter(target, find, replace)
    code, out, err = report("--verify", str(target), *export.args())
    assert (code, out) == (1, "")
    assert err.startswith(
        f"error: report `{target}` does not match the log: "
        f"differs at line {number}, column {column + 1}: expected `"
    )
    assert find.decode() in err
    assert replace.decode() in err
    assert len(err.splitlines()) == 1


def test_a_report_stating_another_checkpoint_size_fails(export: Export, tmp_path: Path) -> None:
    target = tmp_path / "report.json"
    assert report(*FROM_TO, *export.args(), "-o", str(target))[0] == 0
    size = len(export.entries)
    _alter(target, f'"size":{size}'.encode(), b'"size":7')
    code, _, err = report("--verify", str(target), *export.args())
    assert code == 1
    assert "checkpoint size `7`, which is not one of the export's checkpoints" in err


@pytest.mark.parametrize(
    "tamper",
    [
        lambda data: data.replace(b'"legal_type":"warrant"', b'"legal_type":"subpoena"', 1),
        lambda data: data[: data.rindex(b"[")],  # the last entry dropped
    ],
    ids=["entry-changed", "entry-dropped"],
)
def test_a_tampered_export_fails_listing_its_problems(
    export: Export, tmp_path: Path, tamper: Callable[[bytes], bytes]
) -> None:
    target = tmp_path / "report.json"
    assert report(*FROM_TO, *export.args(), "-o", str(target))[0] == 0
    export.path.write_bytes(tamper(export.path.read_bytes()))
    for args in (["--verify", str(target)], FROM_TO):
        code, out, err = report(*args, *export.args())
        assert code == 1
        assert out == ""
        lines = err.splitlines()
        assert lines[0] == f"error: export `{export.path}` does not verify:"
        assert len(lines) >= 2
        assert all(x.startswith("error: ") for x in lines)


def test_another_key_does_not_open_the_export(export: Export) -> None:
    other = NoteSigner(ORIGIN, Ed25519PrivateKey.generate()).verifier_key()
    code, _, err = report(*FROM_TO, "--log", str(export.path), "--key", other)
    assert code == 1
    assert "does not verify" in err


# -- errors ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("args", "code", "message"),
    [
        (
            ["--from", "2020-12-12", "--to", "2020-05-01"],
            2,
            "error: `--from` `2020-12-12` is after `--to` `2020-05-01`",
        ),
        (["--from", "May 1"], 2, "error: invalid date `May 1` for `--from`: expected YYYY-MM-DD"),
        (["--format", "pdf"], 2, "error: unknown report format `pdf` for `--format`"),
        (["--verify", "r.json"], 2, "error: `--verify` needs `--log` and `--key`"),
        (["--log", "x.jsonl"], 2, "error: `--log` needs `--key`"),
        (["--log", "nowhere.jsonl", "--key", "k"], 1, "error: no log export at `nowhere.jsonl`"),
    ],
    ids=["reversed", "bad-date", "bad-format", "verify-alone", "log-alone", "no-export"],
)
def test_errors_are_one_line_with_their_exit_code(
    args: list[str], code: int, message: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    got, out, err = report(*args)
    assert (got, out) == (code, "")
    assert err.startswith(message)
    assert len(err.splitlines()) == 1


def test_verify_takes_the_period_from_the_report(export: Export, tmp_path: Path) -> None:
    code, _, err = report("--verify", str(tmp_path / "r.json"), "--from", "2020-05-01")
    assert code == 2
    assert (
        err == "error: `--from` cannot be used with `--verify`: the report states its own period\n"
    )


# -- from the service's database ---------------------------------------------------------------


def test_from_the_database_then_verified_against_its_export(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from meridian.audit import Actor, record
    from meridian.runtime import Runtime
    from meridian.settings import Settings

    url = f"sqlite:///{tmp_path / 'meridian.db'}"
    monkeypatch.setenv("MERIDIAN_LOG_KEY", str(tmp_path / "log.key"))
    monkeypatch.setenv("MERIDIAN_DATABASE_URL", url)
    rt = Runtime(Settings(database_url=url, renew_interval=0, log_key=tmp_path / "log.key"))
    rt.start()
    try:
        with rt.db.write() as session:
            for raw in request(
                "lr_db", "2020-06-04T09:00:00Z", outcome="applied", meetings=("mtg_1",)
            ):
                e = json.loads(raw)
                record(
                    session,
                    actor=Actor("operator", "tok_1"),
                    action=e["action"],
                    subject_kind="legal_request",
                    subject_id="lr_db",
                    at=datetime.fromisoformat(e["at"]),
                    bundle_digest=rt.digest,
                    details=e["details"],
                )
        target = tmp_path / "report.html"
        code, _, err = report("-o", str(target))
        assert code == 0, err
        assert "1 requests from 2020-06-04 to 2020-06-04" in err
        log = rt.log
        size = log.checkpoint().checkpoint.size
        write_export(
            tmp_path / "log.jsonl",
            origin=log.origin,
            checkpoints=[s.note for s in log.checkpoints()],
            entries=log.entries(0, size),
            count=size,
        )
        vkey = log.vkey
    finally:
        rt.close()
    code, out, err = report(
        "--verify", str(target), "--log", str(tmp_path / "log.jsonl"), "--key", vkey
    )
    assert code == 0, err
    assert out.startswith(f"report verified: 1 requests, checkpoint size {size}, root ")
