"""``meridian node``: run one region node (relay and key server) for one data-centre region."""

from __future__ import annotations

import logging
import os
import signal
import threading
import time
from pathlib import Path
from typing import Annotated

import typer

from ..errors import InputError, shown
from .app import app, door

__all__ = ["node", "parse_peer"]

_EPILOG = """Example (two regions on one machine, sharing the control plane's public key K):

    meridian node --region US --port 9113 --control-key K --peer DE=http://127.0.0.1:9104
    meridian node --region DE --port 9104 --control-key K --peer US=http://127.0.0.1:9113
"""


def parse_peer(text: str) -> tuple[str, str]:
    """``DE=http://127.0.0.1:9104`` as ``("DE", "http://127.0.0.1:9104")``."""
    region, sep, url = text.partition("=")
    region = region.strip().upper()
    url = url.strip().rstrip("/")
    if not sep or not region or not url.startswith(("http://", "https://", "ws://", "wss://")):
        raise InputError(
            f"peer `{shown(text)}` is not REGION=URL: expected e.g. `DE=http://127.0.0.1:9104`"
        )
    return region, url


@app.command(epilog=_EPILOG)
@door
def node(
    region: Annotated[
        str, typer.Option("--region", "-r", help="The data-centre region this node serves.")
    ],
    control_key: Annotated[
        str,
        typer.Option(
            "--control-key",
            help="The control plane's Ed25519 public key (raw, unpadded base64url).",
            envvar="MERIDIAN_CONTROL_KEY",
            show_envvar=True,
        ),
    ],
    host: Annotated[str, typer.Option(help="Address to listen on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port to listen on.")] = 9113,
    store: Annotated[
        Path | None,
        typer.Option(help="Key store directory (default var/regions/<REGION>); made if missing."),
    ] = None,
    trusted_proxy: Annotated[
        list[str] | None,
        typer.Option(
            "--trusted-proxy",
            help="A network whose X-Forwarded-For the relay believes (repeatable).",
        ),
    ] = None,
    peer: Annotated[
        list[str] | None,
        typer.Option("--peer", help="A peer region's node, REGION=URL, for cascades (repeatable)."),
    ] = None,
    exit_with_parent: Annotated[
        bool,
        typer.Option(
            "--exit-with-parent",
            help="Stop when the process that started this node is gone (how `meridian serve` "
            "runs local nodes: none outlives it, even if it is killed).",
        ),
    ] = False,
) -> None:
    """Run a region node: the relay (/v1/relay, /v1/cascade) and key server (/v1/keys)."""
    import uvicorn

    from ..node import NodeConfig, create_node_app
    from ..node.relay import MAX_FRAME_BYTES

    code = region.strip().upper()
    config = NodeConfig(
        region=code,
        store=store if store is not None else Path("var") / "regions" / code,
        control_key=control_key.strip(),
        host=host,
        port=port,
        trusted_proxies=tuple(trusted_proxy or ()),
        peers=dict(parse_peer(p) for p in peer or ()),
    )
    node_app = create_node_app(config)
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s: %(name)s: %(message)s")
    typer.echo(f"region node {code} listening on {config.url}")
    if exit_with_parent:
        _watch_parent()
    uvicorn.run(
        node_app,
        host=host,
        port=port,
        log_level="warning",
        access_log=False,
        # the relay reads X-Forwarded-For itself, only from --trusted-proxy networks
        proxy_headers=False,
        ws="websockets-sansio",
        ws_max_size=MAX_FRAME_BYTES,
        ws_per_message_deflate=False,  # sealed frames do not compress
    )


def _watch_parent() -> None:
    """Send this process SIGTERM (a graceful stop) once its parent has gone."""
    parent = os.getppid()

    def watch() -> None:
        while os.getppid() == parent:
            time.sleep(0.5)
        os.kill(os.getpid(), signal.SIGTERM)

    threading.Thread(target=watch, name="parent-watch", daemon=True).start()


@app.command("scrape-token")
@door
def scrape_token(
    days: Annotated[
        int,
        typer.Option(min=1, max=366, help="How many days the credential is good for."),
    ] = 30,
    region: Annotated[
        str,
        typer.Option(
            "--region", "-r", help="The one region node it opens (default `*`: every node)."
        ),
    ] = "*",
    grant_key: Annotated[
        Path | None,
        typer.Option(
            help="The control plane's grant-signing key (default: MERIDIAN_GRANT_KEY, or "
            "var/grant.key).",
        ),
    ] = None,
) -> None:
    """Print an `admin` credential for region nodes' counters (/metrics, /v1/stats), e.g. for
    Prometheus: send it as `Authorization: Bearer <token>` (docs/data-plane.md)."""
    from ..geography.regions import REGIONS
    from ..keys.grants import ANY_REGION, GrantSigner, load_or_create_signing_key
    from ..settings import get_settings

    code = region.strip().upper()
    if code != ANY_REGION and code not in REGIONS:
        raise InputError(
            f"unknown region `{shown(region)}`: expected `*` or one of {', '.join(REGIONS)}"
        )
    path = grant_key if grant_key is not None else get_settings().grant_key
    signer = GrantSigner(load_or_create_signing_key(path, create=False))
    typer.echo(signer.admin(code, seconds=days * 86400))
