"""The service's commands: ``serve``, ``policy load``, ``admin …`` and ``commerce …``.

``admin add-operator`` is the only way to add an operator (a person): out of band, on the
database, never through an operator's token.

They act on the database named by ``MERIDIAN_DATABASE_URL`` (default: SQLite in ``./var/``),
through the same service functions as the HTTP API, and record who acted as ``cli:<user>``.
"""

from __future__ import annotations

import errno
import getpass
import json
import signal
import socket
from collections.abc import Callable
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console

from ..audit import Actor
from ..errors import ConfigurationError, InputError, shown
from ..node.cluster import LocalCluster
from ..settings import Settings, get_settings
from .app import ClockOption, app, door, policy_app
from .progress import count, duration, progress_bar, summary

__all__ = ["MAX_WORKERS", "admin_app", "commerce_app"]

#: the most worker processes ``serve --workers`` starts
MAX_WORKERS = 64

admin_app = typer.Typer(help="Operators, tokens and other operator tasks.", no_args_is_help=True)
commerce_app = typer.Typer(help="Renewals and market transitions.", no_args_is_help=True)
app.add_typer(admin_app, name="admin")
app.add_typer(commerce_app, name="commerce")

DatabaseOption = Annotated[
    str | None,
    typer.Option(
        "--database",
        help="SQLAlchemy URL (default: sqlite:///var/meridian.db).",
        envvar="MERIDIAN_DATABASE_URL",
        show_envvar=True,
    ),
]


def _actor() -> Actor:
    try:
        who = getpass.getuser()
    except (KeyError, OSError):
        who = "unknown"
    return Actor("cli", who)


def _runtime(database: str | None, clock: str | None = None):  # type: ignore[no-untyped-def]
    from ..runtime import Runtime

    settings = get_settings().with_changes(database_url=database, clock=clock)
    rt = Runtime(settings)
    rt.start()
    return rt


@app.command()
@door
def serve(
    host: Annotated[
        str | None, typer.Option(help="Address to listen on (default 127.0.0.1).")
    ] = None,
    port: Annotated[int | None, typer.Option(help="Port (default 8000).")] = None,
    database: DatabaseOption = None,
    clock: ClockOption = None,
    demo: Annotated[
        bool,
        typer.Option(
            "--demo",
            help="On a new database, create the demo world (the 2020 case) and print tokens to try it.",
        ),
    ] = False,
    workers: Annotated[
        int,
        typer.Option(
            "--workers",
            help="Worker processes on the one port, each a replica of the control plane "
            "(PostgreSQL only; default 1).",
        ),
    ] = 1,
    worker_fd: Annotated[int | None, typer.Option("--worker-fd", hidden=True)] = None,
) -> None:
    """Serve the HTTP API (OpenAPI at /docs) on the database, creating and migrating it if needed."""
    import uvicorn

    from ..runtime import Runtime
    from ..server import create_app

    settings: Settings = get_settings().with_changes(
        host=host, port=port, database_url=database, clock=clock
    )
    if demo and settings.mode == "production":
        raise ConfigurationError(
            "`--demo` is refused in production (MERIDIAN_MODE=production): "
            "the demo seeds accounts and prints operator tokens"
        )
    if not 1 <= workers <= MAX_WORKERS:
        raise InputError(f"`--workers {workers}`: expected 1 to {MAX_WORKERS} worker processes")
    if workers > 1 and settings.database_url.startswith("sqlite"):
        raise ConfigurationError(
            f"`--workers {workers}` needs PostgreSQL: SQLite is the embedded database of one "
            "process (set MERIDIAN_DATABASE_URL to postgresql+psycopg://…, or serve one worker)"
        )
    console = Console(soft_wrap=True)
    if demo and not settings.trusted_proxies:
        # The demo places loopback clients in countries the way production places clients
        # behind a load balancer: through X-Forwarded-For from a trusted proxy (this machine).
        settings = settings.with_changes(trusted_proxies=("127.0.0.1/32",))
    if worker_fd is not None:
        # one worker of `serve --workers N`, started by the command below on its socket
        from .workers import serve_worker

        serve_worker(settings, worker_fd, demo=demo)
        return
    # Listen first: a busy port is refused before the database is touched, and "serving" below
    # is said only once the server is up on this socket.
    sock = _listen(settings.host, settings.port)
    rt = Runtime(settings)
    rt.start()
    # uvicorn re-raises SIGTERM once it has shut down; as an exception it lets the region
    # nodes below be stopped on the way out instead of the process dying at once.
    signal.signal(signal.SIGTERM, _exit_on_signal)
    cluster = _start_nodes(settings, sorted(rt.engine.bundle.document.datacentres), console)
    try:
        if cluster is not None:
            settings = settings.with_changes(
                node_urls={region: node.url for region, node in cluster.nodes.items()}
            )
            rt.settings = settings
        if demo:
            _demo(rt, console)
        url = f"http://{settings.host}:{settings.port}"
        console.print(
            f"Meridian {rt.engine.bundle.ref.name} {rt.engine.bundle.ref.version} ({rt.digest[:19]}…)"
        )
        console.print(f"database: {settings.database_url}")
        if settings.trusted_proxies:
            console.print(
                f"trusted proxies (X-Forwarded-For): {', '.join(settings.trusted_proxies)}"
            )

        def serving() -> None:
            console.print(f"serving:  [bold]{url}[/bold]   API docs: {url}/docs   stop: Ctrl-C")
            if demo:
                console.print(
                    f"console:  open [bold]{url}/login[/bold] and paste the operator token above "
                    "(partners and hosts: their tokens; anyone: /signup, /report)"
                )

        if workers > 1:
            from .workers import supervise

            supervise(rt, settings, sock, workers, demo=demo, on_started=serving, console=console)
            return
        app = create_app(runtime=rt)
        if demo:
            from ..demo import DEMO_IPS

            # the meeting page may connect "as if from" one of the demo's places (loopback only)
            app.state.demo_network = DEMO_IPS
        config = uvicorn.Config(
            app,
            log_level="warning",
            access_log=False,
            # Meridian reads X-Forwarded-For itself, only from MERIDIAN_TRUSTED_PROXIES; uvicorn's
            # own rewriting (on by default for 127.0.0.1) would let any local caller forge its IP.
            proxy_headers=False,
        )
        if not _run_server(config, sock, serving):
            # start-up failed (uvicorn logged why); as uvicorn.run, exit 3
            raise typer.Exit(3)
    finally:
        sock.close()
        if cluster is not None:
            console.print("stopping region nodes…")
            cluster.stop()


def _listen(host: str, port: int) -> socket.socket:
    """A socket listening on ``host:port``, or one line saying why not."""
    shown_at = f"[{host}]:{port}" if ":" in host else f"{host}:{port}"
    try:
        family, kind, proto, _, address = socket.getaddrinfo(
            host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE
        )[0]
        sock = socket.socket(family, kind, proto)
    except (OSError, UnicodeError) as exc:
        raise ConfigurationError(f"cannot listen on `{shown(shown_at)}`: {_why(exc)}") from None
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(address)
        sock.listen(2048)
    except OSError as exc:
        sock.close()
        raise ConfigurationError(f"cannot listen on `{shown(shown_at)}`: {_why(exc)}") from None
    sock.set_inheritable(True)
    return sock


def _why(exc: BaseException) -> str:
    if isinstance(exc, OSError) and exc.errno == errno.EADDRINUSE:
        return "the address is already in use (another process holds it: stop it or choose another --port)"
    if isinstance(exc, OSError) and exc.errno == errno.EACCES:
        return "permission denied (ports below 1024 need privileges: choose another --port)"
    if isinstance(exc, OSError) and exc.errno == errno.EADDRNOTAVAIL:
        return "no such address on this machine (choose another --host)"
    if isinstance(exc, socket.gaierror):
        return f"unknown host: {exc.strerror}".lower()
    text = getattr(exc, "strerror", None) or str(exc)
    return text[:1].lower() + text[1:]


def _run_server(config: Any, sock: socket.socket, on_started: Callable[[], None]) -> bool:
    """Serve on ``sock`` until stopped, calling ``on_started`` once start-up is done (the app's
    lifespan has run and the socket accepts); ``False`` if start-up failed."""
    import uvicorn

    class Server(uvicorn.Server):
        async def startup(self, sockets: list[socket.socket] | None = None) -> None:
            await super().startup(sockets)
            if self.started and not self.should_exit:
                on_started()

    server = Server(config)
    server.run(sockets=[sock])
    return bool(server.started)


def _exit_on_signal(signum: int, _frame: object) -> None:
    raise SystemExit(128 + signum)


def _start_nodes(settings: Settings, codes: list[str], console: Console) -> LocalCluster | None:
    """Start the local region nodes ``settings.nodes`` names, unless nodes are known by URL."""
    from ..keys.grants import load_or_create_signing_key, public_key_b64

    if settings.node_urls or settings.nodes in (("none",), ()):
        return None
    if settings.nodes == ("all",):
        regions = codes
    else:
        unknown = [r for r in settings.nodes if r not in codes]
        if unknown:
            raise InputError(
                f"unknown data-centre region `{shown(unknown[0])}` in MERIDIAN_NODES: "
                f"expected `all`, `none` or some of {', '.join(codes)}"
            )
        regions = sorted(set(settings.nodes))
    key = load_or_create_signing_key(settings.grant_key, create=settings.mode == "development")
    cluster = LocalCluster(
        regions,
        control_key=public_key_b64(key.public_key()),
        directory=settings.node_store,
        trusted_proxies=settings.trusted_proxies,
    )
    with console.status(f"starting {len(regions)} region nodes ({', '.join(regions)})…"):
        cluster.start()
    for region, node in cluster.nodes.items():
        console.print(
            f"region node {region}: {node.url}   "
            f"(metrics: {node.url}/metrics, with a `meridian scrape-token` credential)"
        )
    return cluster


def _demo(rt, console: Console) -> None:  # type: ignore[no-untyped-def]
    """Seed the demo world (once) and print fresh tokens, revoking every earlier demo token."""
    from ..demo import DEMO_HOSTS, DEMO_OPERATORS, demo_tokens, save_demo_tokens, seed_demo

    seed_demo(rt, console.print)
    tokens, revoked = demo_tokens(rt, _actor())
    save_demo_tokens(tokens)
    if revoked:
        console.print(f"revoked the {revoked} tokens of the previous demo start")
    console.print(
        f"operator token: [bold]{tokens['operator']}[/bold]  ({DEMO_OPERATORS['operator']}; "
        "also in var/operator.token)"
    )
    console.print(
        f"second operator: [bold]{tokens['operator2']}[/bold]  "
        f"({DEMO_OPERATORS['operator2']}, another person; also in var/operator2.token; "
        "approves what the first records)"
    )
    console.print(f"bizconf token:  [bold]{tokens['bizconf']}[/bold]  (also in var/bizconf.token)")
    for name in DEMO_HOSTS:
        if name in tokens:
            console.print(f"{name} token: {DEMO_HOSTS[name]} in var/{name}.token")


@policy_app.command("load")
@door
def policy_load(
    file: Annotated[Path, typer.Argument(help="The bundle YAML to put in force.")],
    database: DatabaseOption = None,
) -> None:
    """Validate a bundle and put it in force; refused whole, with every problem, if invalid.

    A running service picks it up within its poll interval (MERIDIAN_POLICY_POLL_INTERVAL).
    """
    from ..policy.loader import load_bundle_text, read_bundle_file
    from ..policy.store import activate_bundle

    text = read_bundle_file(file)
    loaded = load_bundle_text(text, str(file))
    rt = _runtime(database)
    try:
        with rt.db.write() as session:
            changed = activate_bundle(session, loaded, text, actor=_actor(), at=rt.now())
    finally:
        rt.close()
    doc = loaded.document
    state = "now in force" if changed else "already in force"
    typer.echo(f"ok: bundle `{doc.bundle}` version `{doc.version}` {state}: {loaded.digest}")


@admin_app.command("add-operator")
@door
def add_operator_command(
    name: Annotated[str, typer.Argument(help="The person's name, as the log and pages show it.")],
    email: Annotated[str | None, typer.Option(help="How to reach them.")] = None,
    database: DatabaseOption = None,
) -> None:
    """Add an operator (a person) and print their first token, once (it is stored only hashed).

    Operators are added only here, out of band: an operator's token can mint more tokens for
    its own person, never for another, so two people are always two people.
    """
    from ..identity.people import add_operator

    rt = _runtime(database)
    try:
        with rt.db.write() as session:
            person, token, secret = add_operator(
                session, name=name, email=email, at=rt.now(), actor=_actor(), digest=rt.digest
            )
    finally:
        rt.close()
    typer.echo(secret)
    typer.echo(f"added operator `{person.name}` {person.id}, first token {token.id}", err=True)


@admin_app.command("list-operators")
@door
def list_operators_command(database: DatabaseOption = None) -> None:
    """List the operators: id, name, email, live tokens, and whether removed."""
    from ..identity.people import list_operators

    rt = _runtime(database)
    try:
        with rt.db.read() as session:
            rows = list_operators(session)
            lines = [
                f"{p.id}  {p.name}{f' <{p.email}>' if p.email else ''}  "
                f"{n} token{'' if n == 1 else 's'}"
                + (f"  removed {p.disabled_at.isoformat()}" if p.disabled_at else "")
                for p, n in rows
            ]
    finally:
        rt.close()
    for line in lines:
        typer.echo(line)
    if not lines:
        typer.echo("no operators: add one with `meridian admin add-operator NAME`", err=True)


@admin_app.command("remove-operator")
@door
def remove_operator_command(
    person: Annotated[str, typer.Argument(help="The operator's id (psn_…).")],
    database: DatabaseOption = None,
) -> None:
    """Remove an operator: every token of theirs is revoked (a running service stops accepting
    them within a few seconds), and they can have no new one."""
    from ..identity.people import remove_operator

    rt = _runtime(database)
    try:
        with rt.db.write() as session:
            row, revoked = remove_operator(
                session, person_id=person, at=rt.now(), actor=_actor(), digest=rt.digest
            )
            name = row.name
    finally:
        rt.close()
    typer.echo(
        f"removed operator {person} (`{name}`): {revoked} token{'' if revoked == 1 else 's'} revoked"
    )


@admin_app.command("create-token")
@door
def create_token_command(
    role: Annotated[str, typer.Option(help="operator, partner or user.")],
    name: Annotated[str, typer.Option(help="What the token is for.")] = "cli",
    operator: Annotated[
        str | None,
        typer.Option(help="The operator (psn_…) an operator token belongs to (add-operator)."),
    ] = None,
    partner: Annotated[
        str | None, typer.Option(help="The partner a partner token acts for.")
    ] = None,
    account: Annotated[str | None, typer.Option(help="The account a user token acts for.")] = None,
    expires_at: Annotated[
        str | None,
        typer.Option(
            "--expires-at",
            help="When the token stops working (ISO 8601 with a zone); a user token's default "
            "is MERIDIAN_USER_TOKEN_DAYS (90) days.",
        ),
    ] = None,
    database: DatabaseOption = None,
) -> None:
    """Create an API token and print it (it is stored only hashed: this is the one time it shows)."""
    from ..clock import parse_instant
    from ..identity.tokens import create_token
    from ..text import plain_name

    until = None if expires_at is None else parse_instant(expires_at, "--expires-at")
    try:
        plain_name(name)
    except ValueError as exc:
        raise InputError(f"invalid token name `{shown(name)}`: {exc}") from None
    rt = _runtime(database)
    try:
        with rt.db.write() as session:
            row, secret = create_token(
                session,
                role=role,
                name=name,
                person_id=operator,
                partner_id=partner,
                account_id=account,
                expires_at=until,
                default_user_days=rt.settings.user_token_days,
                at=rt.now(),
                actor=_actor(),
                digest=rt.digest,
            )
    finally:
        rt.close()
    typer.echo(secret)
    whose = f" for operator {row.person_id}" if row.person_id else ""
    until_text = f", expires {row.expires_at.isoformat()}" if row.expires_at else ""
    typer.echo(f"created {row.role} token {row.id}{whose}{until_text}", err=True)


@admin_app.command("grant-key")
@door
def grant_key() -> None:
    """Print the public key region nodes need (`meridian node --control-key`) to check grants.

    It is the public half of MERIDIAN_GRANT_KEY (default var/grant.key), which is made on first
    use in development mode and must be provided in production.
    """
    from ..keys.grants import load_or_create_signing_key, public_key_b64

    settings = get_settings()
    key = load_or_create_signing_key(settings.grant_key, create=settings.mode == "development")
    typer.echo(public_key_b64(key.public_key()))


@admin_app.command("revoke-token")
@door
def revoke_token_command(
    token_id: Annotated[
        str, typer.Argument(help="The token's id (tok_…), as create-token printed it.")
    ],
    database: DatabaseOption = None,
) -> None:
    """Revoke an API token; a running service stops accepting it within a few seconds."""
    from ..identity.tokens import revoke_token

    rt = _runtime(database)
    try:
        with rt.db.write() as session:
            row = revoke_token(
                session, token_id=token_id, at=rt.now(), actor=_actor(), digest=rt.digest
            )
            when = row.revoked_at
    finally:
        rt.close()
    typer.echo(f"revoked {token_id} at {when.isoformat() if when else '?'}")


@commerce_app.command("renew")
@door
def renew(
    at: Annotated[
        str | None, typer.Option("--at", help="Renew what is due at this instant (default: now).")
    ] = None,
    database: DatabaseOption = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print the summary as JSON.")] = False,
) -> None:
    """Renew every subscription due at --at through the `renew` decision."""
    from ..clock import parse_instant
    from ..commerce.renewal import renew_due

    rt = _runtime(database)
    try:
        instant = rt.now() if at is None else parse_instant(at, "--at")
        with progress_bar("renewing", unit="subscriptions") as bar:
            result = renew_due(rt, instant, actor=_actor(), progress=bar)
    finally:
        rt.close()
    if as_json:
        typer.echo(json.dumps(result.to_dict(), indent=2))
    else:
        typer.echo(
            f"renewals at {instant.isoformat()}: {result.renewed} renewed, "
            f"{result.started} started, {result.transfer_required} transfer_required, "
            f"{result.ended} ended"
        )
    summary(
        f"renew: {count(bar.done, 'subscription')} due at {instant.isoformat()}: "
        f"{result.renewed} renewed, {result.started} started, "
        f"{result.transfer_required} transfer_required, {result.ended} ended "
        f"in {duration(bar.seconds)}"
    )


@commerce_app.command("transition")
@door
def transition(
    jurisdiction: Annotated[
        str, typer.Option("--jurisdiction", "-j", help="The jurisdiction that changes.")
    ],
    at: Annotated[
        str, typer.Option("--at", help="A date (local midnight there) or an ISO 8601 instant.")
    ],
    apply: Annotated[
        bool,
        typer.Option("--apply", help="Mark what is touched and queue notices (default: dry run)."),
    ] = False,
    database: DatabaseOption = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print the report as JSON.")] = False,
) -> None:
    """List every account and subscription a change at --at touches; --apply to act on it."""
    from ..commerce.instants import local_instant
    from ..commerce.transition import plan_transition
    from ..geography.jurisdictions import check_jurisdiction
    from . import render

    code = check_jurisdiction(jurisdiction.upper())
    # what the bar says in each of plan_transition's phases, and what it counts
    phases = {
        "examining": (f"examining accounts in {code}", "accounts"),
        "applying": (f"applying the transition in {code}", "items"),
    }
    rt = _runtime(database)
    try:
        instant = local_instant(rt.engine, code, at, "--at")
        with progress_bar(f"reading accounts in {code}") as bar:
            report = plan_transition(
                rt,
                jurisdiction=code,
                at=instant,
                apply=apply,
                actor=_actor(),
                progress=bar,
                phase=lambda name, total: bar.phase(
                    phases[name][0], total=total, unit=phases[name][1]
                ),
            )
    finally:
        rt.close()
    if as_json:
        typer.echo(json.dumps(report, indent=2, ensure_ascii=False))
    else:
        render.transition(Console(), report)
    counts = ", ".join(f"{n} {kind}" for kind, n in report["counts"].items())
    summary(
        f"transition {code} at {instant.isoformat()}: "
        f"{count(report['accounts_examined'], 'account')} examined, {counts} "
        f"({'applied' if apply else 'dry run'}) in {duration(bar.seconds)}"
    )
