"""Progress on stderr and the one summary line long commands end with; stdout left as it was.

The commands run through typer's runner, whose stderr is not a terminal: the bar is hidden
unless ``MERIDIAN_PROGRESS=always`` forces it, and then its text shows among escape codes.
Either way stdout must be the same, byte for byte, and stderr must end with one summary line.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from typer.testing import CliRunner

from meridian.audit import SYSTEM, record
from meridian.cli.app import app
from meridian.cli.progress import (
    PROGRESS_ENV,
    bench_cases,
    count,
    duration,
    file_size,
    progress_bar,
    progress_shown,
)
from meridian.errors import InputError

runner = CliRunner()

#: the elapsed time at the end of a summary line
SECONDS = r"(\d+\.\d\d s|\d\.\d s|\d+ s|\d+ min \d\d s)"
_ESCAPES = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]|\r")


def plain(text: str) -> str:
    """``text`` without the terminal's escape codes and carriage returns."""
    return _ESCAPES.sub("", text)


def last_line(stderr: str) -> str:
    return plain(stderr).strip().splitlines()[-1]


# -- the helpers -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("n", "one", "many", "expected"),
    [
        (0, "entry", "entries", "0 entries"),
        (1, "entry", "entries", "1 entry"),
        (1_000_000, "entry", "entries", "1,000,000 entries"),
        (1, "checkpoint", None, "1 checkpoint"),
        (37, "checkpoint", None, "37 checkpoints"),
    ],
    ids=["zero", "one", "thousands", "one-regular", "many-regular"],
)
def test_count(n: int, one: str, many: str | None, expected: str) -> None:
    assert count(n, one, many) == expected


@pytest.mark.parametrize(
    ("seconds", "expected"),
    [(0.043, "0.04 s"), (3.14, "3.1 s"), (42.2, "42 s"), (247, "4 min 07 s")],
    ids=["under-a-second", "seconds", "tens", "minutes"],
)
def test_duration(seconds: float, expected: str) -> None:
    assert duration(seconds) == expected


@pytest.mark.parametrize(
    ("size", "expected"),
    [(812, "812 B"), (12_345, "12.3 kB"), (1_234_567, "1.2 MB"), (340_000_000_000, "340 GB")],
    ids=["bytes", "kilo", "mega", "giga"],
)
def test_file_size(size: int, expected: str) -> None:
    assert file_size(size) == expected


def test_the_bar_shows_on_a_terminal_or_when_forced(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.delenv(PROGRESS_ENV, raising=False)
    monkeypatch.delenv("FORCE_COLOR", raising=False)
    monkeypatch.delenv("TTY_COMPATIBLE", raising=False)
    assert not progress_shown()  # the captured stderr is not a terminal
    monkeypatch.setenv(PROGRESS_ENV, "always")
    assert progress_shown()
    monkeypatch.setenv(PROGRESS_ENV, "never")
    monkeypatch.setenv("FORCE_COLOR", "1")
    assert not progress_shown()
    monkeypatch.setenv(PROGRESS_ENV, "Sometimes")
    with pytest.raises(
        InputError, match="unknown progress display `Sometimes` in MERIDIAN_PROGRESS"
    ):
        progress_shown()


def test_a_hidden_bar_still_counts_and_writes_nothing(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv(PROGRESS_ENV, "never")
    with progress_bar("verifying", unit="entries") as bar:
        bar(65_536, 70_000)
        bar(70_000)
        assert (bar.done, bar.total) == (70_000, 70_000)
        bar.phase("computing", total=3, unit="items")
        assert (bar.done, bar.total) == (0, 3)
    assert capsys.readouterr() == ("", "")


def test_a_benchmark_bar_names_its_cases_and_counts_them(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv(PROGRESS_ENV, "always")
    with bench_cases("bench/x.py", 2) as bar:
        bar.start("appends, sqlite")
        bar.start("verify_export")
    line = bar.summary_line()
    assert re.fullmatch(rf"bench/x\.py: 2 cases in {SECONDS}", line), line
    captured = capsys.readouterr()
    assert captured.out == ""
    shown = plain(captured.err)
    assert "bench/x.py: appends, sqlite" in shown
    assert "bench/x.py: verify_export" in shown
    assert "2/2 cases" in shown


def test_a_bad_setting_is_one_line_and_exit_2(tmp_path: Path) -> None:
    export = tmp_path / "log.jsonl"
    export.write_bytes(b"{}\n")
    result = runner.invoke(
        app, ["audit", "verify", str(export), "--key", "a+b+c"], env={PROGRESS_ENV: "loud"}
    )
    assert result.exit_code == 2
    assert result.stderr == (
        "error: unknown progress display `loud` in MERIDIAN_PROGRESS: "
        "expected `auto`, `always` or `never`\n"
    )
    assert "Traceback" not in result.output


# -- the commands ------------------------------------------------------------------------------

sqlite_only = pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)


@pytest.fixture
def env(database_url: str, tmp_path: Path) -> dict[str, str]:
    return {
        "MERIDIAN_DATABASE_URL": database_url,
        "MERIDIAN_LOG_KEY": str(tmp_path / "log.key"),
    }


def run(env: dict[str, str], *args: str, progress: str = "never"):
    return runner.invoke(app, list(args), env={**env, PROGRESS_ENV: progress})


@pytest.fixture
def logged(runtime) -> None:
    """The test's log with 30 entries (``runtime`` writes the same database as ``env``)."""
    with runtime.db.write() as session:
        for i in range(30):
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


@sqlite_only
@pytest.mark.storage
def test_export_and_verify_end_with_their_summary(env, logged, tmp_path: Path) -> None:
    path = tmp_path / "log.jsonl"
    exported = run(env, "audit", "export", str(path))
    assert exported.exit_code == 0, exported.stderr
    header = json.loads(path.read_bytes().split(b"\n", 1)[0])
    entries, checkpoints = header["entries"], header["checkpoints"]
    assert entries >= 30
    assert exported.stdout.startswith(f"exported {entries} entries and {checkpoints} checkpoints")
    size = file_size(path.stat().st_size)
    assert re.fullmatch(
        rf"export: {entries} entries, {count(checkpoints, 'checkpoint')} → "
        rf"{re.escape(str(path))} \({re.escape(size)}\) in {SECONDS}\n",
        exported.stderr,
    ), exported.stderr

    vkey = run(env, "audit", "key").stdout.strip()
    verified = run(env, "audit", "verify", str(path), "--key", vkey)
    assert verified.exit_code == 0, verified.stderr
    assert verified.stdout.startswith(f"log verified: {entries} entries, {checkpoints} checkpoints")
    assert re.fullmatch(
        rf"verified {entries} entries and {count(checkpoints, 'checkpoint')} in {SECONDS}: ok\n",
        verified.stderr,
    ), verified.stderr


@sqlite_only
@pytest.mark.storage
def test_forced_bars_show_their_text_and_leave_stdout_and_the_file_alone(
    env, logged, tmp_path: Path
) -> None:
    quiet, forced = tmp_path / "quiet.jsonl", tmp_path / "forced.jsonl"
    first = run(env, "audit", "export", str(quiet))
    second = run(env, "audit", "export", str(forced), progress="always")
    assert second.exit_code == 0, second.stderr
    assert quiet.read_bytes() == forced.read_bytes()
    assert second.stdout == first.stdout.replace(str(quiet), str(forced))
    assert "exporting to forced.jsonl" in plain(second.stderr)
    assert last_line(second.stderr).startswith("export: ")

    vkey = run(env, "audit", "key").stdout.strip()
    plain_run = run(env, "audit", "verify", str(quiet), "--key", vkey)
    bar_run = run(env, "audit", "verify", str(quiet), "--key", vkey, progress="always")
    assert bar_run.exit_code == plain_run.exit_code == 0
    assert bar_run.stdout == plain_run.stdout
    shown = plain(bar_run.stderr)
    entries = json.loads(quiet.read_bytes().split(b"\n", 1)[0])["entries"]
    assert "verifying" in shown
    assert f"{entries}/{entries} entries" in shown  # the header's count is the bar's total
    assert re.fullmatch(rf"verified {entries} entries and .* in {SECONDS}: ok", last_line(shown))


@sqlite_only
@pytest.mark.storage
def test_a_failed_verification_ends_with_its_error_not_a_summary(
    env, logged, tmp_path: Path
) -> None:
    path = tmp_path / "log.jsonl"
    assert run(env, "audit", "export", str(path)).exit_code == 0
    vkey = run(env, "audit", "key").stdout.strip()
    lines = path.read_bytes().split(b"\n")
    lines[-2] = lines[-2].replace(b'"i":', b'"j":', 1)
    path.write_bytes(b"\n".join(lines))
    bad = run(env, "audit", "verify", str(path), "--key", vkey)
    assert bad.exit_code == 1
    assert bad.stdout == ""
    err = bad.stderr.strip().splitlines()
    assert err[-1].startswith("error: the log does not verify: ")
    assert all(line.startswith(("problem: ", "error: ")) for line in err)


@pytest.fixture
def seeded(runtime, clock):
    """The demo world, replayed on the test's database."""
    from meridian.demo import seed_demo

    clock.set("2020-08-01T00:00:00Z")
    assert seed_demo(runtime)
    return runtime


@sqlite_only
@pytest.mark.storage
def test_transition_reports_its_phases_and_ends_with_its_counts(env, seeded) -> None:
    args = ("commerce", "transition", "-j", "CN", "--at", "2020-08-23", "--json")
    dry = run(env, *args)
    assert dry.exit_code == 0, dry.stderr
    report = json.loads(dry.stdout)
    counts = report["counts"]
    assert counts["subscription_transfer"] == 1
    expected = (
        f"transition CN at {re.escape(report['at'])}: {report['accounts_examined']} accounts "
        f"examined, {counts['subscription_transfer']} subscription_transfer, "
        f"{counts['open_checkout']} open_checkout, {counts['hosting_lost']} hosting_lost "
    )
    assert re.fullmatch(rf"{expected}\(dry run\) in {SECONDS}\n", dry.stderr), dry.stderr

    forced = run(env, *args, progress="always")
    assert forced.stdout == dry.stdout  # byte for byte, the bar or not
    assert "examining accounts in CN" in plain(forced.stderr)
    assert re.fullmatch(rf"{expected}\(dry run\) in {SECONDS}", last_line(forced.stderr))

    applied = run(env, *args, "--apply", progress="always")
    assert applied.exit_code == 0, applied.stderr
    assert json.loads(applied.stdout)["items"][0]["applied"] is True
    shown = plain(applied.stderr)
    assert "applying the transition in CN" in shown
    assert "1/1 items" in shown
    assert re.fullmatch(rf"{expected}\(applied\) in {SECONDS}", last_line(shown))

    table = run(env, "commerce", "transition", "-j", "CN", "--at", "2020-08-23")
    assert "subscriptions to move to a partner" in table.stdout
    assert re.fullmatch(rf"{expected}\(dry run\) in {SECONDS}\n", table.stderr), table.stderr


@sqlite_only
@pytest.mark.storage
def test_renew_ends_with_what_it_did(env, seeded) -> None:
    at = "2021-08-01T00:00:00+00:00"
    result = run(env, "commerce", "renew", "--at", at, "--json")
    assert result.exit_code == 0, result.stderr
    done = json.loads(result.stdout)
    assert (done["renewed"], done["transfer_required"]) == (4, 1)
    due = len(set(done["subscriptions"]))
    assert re.fullmatch(
        rf"renew: {due} subscriptions due at {re.escape(at)}: 4 renewed, {done['started']} "
        rf"started, 1 transfer_required, {done['ended']} ended in {SECONDS}\n",
        result.stderr,
    ), result.stderr
    again = run(env, "commerce", "renew", "--at", at)
    assert again.stdout == f"renewals at {at}: 0 renewed, 0 started, 0 transfer_required, 0 ended\n"
    assert again.stderr.startswith(f"renew: 0 subscriptions due at {at}: 0 renewed")


# -- the transparency report -------------------------------------------------------------------


@pytest.fixture
def export(tmp_path: Path):
    from tests.cli.test_report import Export
    from tests.reports.test_transparency import june_2020

    log = june_2020()
    return Export(tmp_path, log, middle=len(log) // 2)


def transparency(*args: str, progress: str = "never"):
    return runner.invoke(app, ["report", "transparency", *args], env={PROGRESS_ENV: progress})


def test_transparency_report_ends_with_its_summary(export, tmp_path: Path) -> None:
    period = ["--from", "2020-05-01", "--to", "2020-12-12"]
    size = len(export.entries)
    about = f"6 requests from 2020-05-01 to 2020-12-12, checkpoint size {size}"
    to_stdout = transparency(*period, *export.args())
    assert to_stdout.exit_code == 0, to_stdout.stderr
    assert json.loads(to_stdout.stdout)["requests"]["total"] == 6
    length = file_size(len(to_stdout.stdout.encode()))
    assert re.fullmatch(
        rf"wrote the json report to stdout: {about}, {re.escape(length)} in {SECONDS}\n",
        to_stdout.stderr,
    ), to_stdout.stderr

    forced = transparency(*period, *export.args(), progress="always")
    assert forced.stdout == to_stdout.stdout
    shown = plain(forced.stderr)
    assert "verifying log.jsonl" in shown
    assert f"{size}/{size} entries" in shown

    target = tmp_path / "report.html"
    written = transparency(*period, *export.args(), "-o", str(target))
    assert written.exit_code == 0, written.stderr
    assert written.stdout == ""
    length = file_size(target.stat().st_size)
    assert re.fullmatch(
        rf"wrote `{re.escape(str(target))}`: {about}, {re.escape(length)} in {SECONDS}\n",
        written.stderr,
    ), written.stderr

    verified = transparency("--verify", str(target), *export.args())
    assert verified.exit_code == 0, verified.stderr
    assert verified.stdout.startswith(f"report verified: 6 requests, checkpoint size {size}, ")
    assert re.fullmatch(
        rf"verified `{re.escape(str(target))}` against `{re.escape(str(export.path))}` "
        rf"\({size} entries, 2 checkpoints\) in {SECONDS}: ok\n",
        verified.stderr,
    ), verified.stderr
