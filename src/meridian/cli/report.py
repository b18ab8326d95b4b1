"""``meridian report …``: reports computed from the log alone, and checking them.

``report transparency`` writes the transparency report on government requests, from the
service's database (the default) or offline from an export (``--log EXPORT --key VKEY``).
``--verify REPORT`` recomputes a report from an export and compares it byte for byte.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from ..errors import (
    ExportFailedError,
    InputError,
    LogIntegrityError,
    NotFoundError,
    ProofError,
    shown,
)
from ..reports.compute import report_from_log
from ..reports.model import FORMATS, ReportFormat, TransparencyReport, parse_day, parse_format
from ..reports.render import render
from ..reports.verify import (
    ExportSource,
    first_difference,
    open_verified_export,
    recompute_report,
    report_from_export,
)
from .app import app, door
from .audit import declared_entries
from .progress import Bar, count, duration, file_size, progress_bar, summary
from .service import DatabaseOption, _runtime

__all__ = ["report_app", "transparency"]

report_app = typer.Typer(
    help="Reports computed from the log alone: anyone with an export can recompute them.",
    no_args_is_help=True,
)
app.add_typer(report_app, name="report")

_EPILOG = """\
Examples:

    meridian report transparency --from 2020-05-01 --to 2020-12-12 --format html -o report.html
    meridian report transparency --log log.jsonl --key log.vkey -o report.csv
    meridian report transparency --verify report.html --log log.jsonl --key log.vkey

The period is of requests received (dates inclusive, UTC); by default, from the first request
in the log to the last. The report is computed at the log's latest signed checkpoint and states
it, so --verify can recompute it from any export holding that checkpoint.

Exit codes: 0 written or verified; 1 the report or the export does not verify (each problem on
stderr); 2 bad input; 78 the log's signing key is missing.
"""


def _read_key(key: str) -> str:
    """``--key``: a verifier key, or the path of a file holding one."""
    path = Path(key)
    if "+" not in key or path.is_file():
        try:
            return path.read_text(encoding="utf-8").strip()
        except FileNotFoundError:
            raise NotFoundError(f"no verifier key file at `{shown(key)}`") from None
        except (OSError, UnicodeDecodeError) as exc:
            raise InputError(f"cannot read verifier key `{shown(key)}`: {exc}") from None
    return key.strip()


def _read_bytes(path: Path, what: str) -> bytes:
    try:
        return path.read_bytes()
    except FileNotFoundError:
        raise NotFoundError(f"no {what} at `{shown(str(path))}`") from None
    except OSError as exc:
        raise InputError(
            f"cannot read {what} `{shown(str(path))}`: {exc.strerror or exc}"
        ) from None


def _export(log: Path, key: str | None, bar: Bar) -> ExportSource:
    """The export at ``log``, verified with ``key`` (the bar shows the verification)."""
    if key is None:
        raise InputError("`--log` needs `--key`: the log's verifier key, or a file holding it")
    data = _read_bytes(log, "log export")
    vkey = _read_key(key)
    bar.phase(f"verifying {log.name}", total=declared_entries(data), unit="entries")
    try:
        return open_verified_export(data, vkey, progress=bar)
    except LogIntegrityError as exc:
        raise ExportFailedError(log, exc) from None


def _format_for(filename: str) -> ReportFormat | None:
    """The format a file's extension names (``.json``, ``.csv``, ``.html``/``.htm``), if any."""
    suffix = filename.rsplit(".", 1)[-1].lower() if "." in filename else ""
    if suffix == "htm":
        return "html"
    return next((fmt for fmt in FORMATS if fmt == suffix), None)


def _format(fmt: str | None, path: Path | None) -> ReportFormat:
    if fmt is not None:
        return parse_format(fmt)
    named = None if path is None else _format_for(path.name)
    return named or "json"


def _verify(report_path: Path, fmt: ReportFormat, log: Path | None, key: str | None) -> None:
    if log is None:
        raise InputError("`--verify` needs `--log` and `--key`: the export to recompute it from")
    with progress_bar(f"reading {log.name}") as bar:
        source = _export(log, key, bar)
        data = _read_bytes(report_path, "report")
        bar.phase(f"recomputing {report_path.name}")
        report = recompute_report(source, data, fmt)
    mismatch = first_difference(render(report, fmt), data)
    if mismatch is not None:
        raise ProofError(f"report `{report_path}` does not match the log: {mismatch}")
    typer.echo(
        f"report verified: {report.requests} requests, checkpoint size {report.checkpoint.size}, "
        f"root {report.checkpoint.root_b64}"
    )
    summary(
        f"verified `{report_path}` against `{log}` "
        f"({count(len(source.entries), 'entry', 'entries')}, "
        f"{count(len(source.checkpoints), 'checkpoint')}) in {duration(bar.seconds)}: ok"
    )


@report_app.command("transparency", epilog=_EPILOG)
@door
def transparency(
    start: Annotated[
        str | None,
        typer.Option("--from", help="First day of the period, YYYY-MM-DD (UTC, inclusive)."),
    ] = None,
    end: Annotated[
        str | None,
        typer.Option("--to", help="Last day of the period, YYYY-MM-DD (UTC, inclusive)."),
    ] = None,
    fmt: Annotated[
        str | None,
        typer.Option(
            "--format",
            help="json, csv or html (default: by the extension of --output or --verify, else json).",
        ),
    ] = None,
    output: Annotated[
        Path | None, typer.Option("--output", "-o", help="Write here instead of to stdout.")
    ] = None,
    log: Annotated[
        Path | None,
        typer.Option("--log", help="Compute offline from this export of the log (needs --key)."),
    ] = None,
    key: Annotated[
        str | None,
        typer.Option("--key", help="The log's verifier key (name+id+key), or a file holding it."),
    ] = None,
    verify: Annotated[
        Path | None,
        typer.Option(
            "--verify",
            help="Recompute this report from --log and compare it byte for byte.",
        ),
    ] = None,
    database: DatabaseOption = None,
) -> None:
    """The transparency report on government requests: counts by jurisdiction, type and outcome."""
    if verify is not None:
        for given, name in ((start, "--from"), (end, "--to"), (output, "--output")):
            if given is not None:
                raise InputError(
                    f"`{name}` cannot be used with `--verify`: the report states its own period"
                )
        _verify(verify, _format(fmt, verify), log, key)
        return
    report_format = _format(fmt, output)
    first = None if start is None else parse_day(start, "--from")
    last = None if end is None else parse_day(end, "--to")
    if first is not None and last is not None and first > last:
        raise InputError(f"`--from` `{start}` is after `--to` `{end}`")
    report: TransparencyReport
    with progress_bar("reading the log") as bar:
        if log is not None:
            source = _export(log, key, bar)
            bar.phase("computing the report")
            report = report_from_export(source, start=first, end=last)
        else:
            rt = _runtime(database)
            try:
                report = report_from_log(rt.log, start=first, end=last)
            finally:
                rt.close()
        data = render(report, report_format)
    wrote = (
        f"{report.requests} requests from {report.period.start} to {report.period.end}, "
        f"checkpoint size {report.checkpoint.size}"
    )
    if output is None:
        typer.echo(data, nl=False)
        summary(
            f"wrote the {report_format} report to stdout: {wrote}, {file_size(len(data))} "
            f"in {duration(bar.seconds)}"
        )
        return
    try:
        output.write_bytes(data)
    except OSError as exc:
        raise InputError(f"cannot write `{shown(str(output))}`: {exc.strerror or exc}") from None
    summary(f"wrote `{output}`: {wrote}, {file_size(len(data))} in {duration(bar.seconds)}")
