"""``meridian witness``: run a C2SP witness for any log, and print its key."""

from __future__ import annotations

import logging
import time
from pathlib import Path
from typing import Annotated

import typer

from ..audit.cosignature import Cosigner
from ..errors import InputError
from ..keyfiles import load_or_create_ed25519
from .app import app, door
from .audit import read_vkey

__all__ = ["witness_app"]

witness_app = typer.Typer(
    help="A witness: cosigns each checkpoint of the logs it follows once it is consistent with "
    "the last (C2SP tlog-witness).",
    no_args_is_help=True,
)
app.add_typer(witness_app, name="witness")

NameOption = Annotated[
    str,
    typer.Option(
        "--name",
        help="The witness's name in its cosignatures, e.g. `witness.example.org/w1`.",
        envvar="MERIDIAN_WITNESS_NAME",
        show_envvar=True,
    ),
]
WitnessKeyOption = Annotated[
    Path,
    typer.Option(
        "--key",
        help="The witness's Ed25519 signing key (PEM); created there if missing.",
        envvar="MERIDIAN_WITNESS_KEY",
        show_envvar=True,
    ),
]

_EPILOG = """Example (a witness of Meridian's log, whose verifier key `meridian audit key` prints):

    meridian witness key --name witness.example/w1 --key var/w1.key
    meridian witness serve --name witness.example/w1 --key var/w1.key \\
        --log "$(meridian audit key)" --state var/w1.db --port 9301

Give the log the line `meridian witness key` printed and the URL: MERIDIAN_WITNESSES="<key> http://127.0.0.1:9301".
"""


def _cosigner(name: str, key: Path) -> Cosigner:
    private = load_or_create_ed25519(
        key, create=True, what="witness signing key", setting="MERIDIAN_WITNESS_KEY"
    )
    return Cosigner(name, private)


@witness_app.command("key")
@door
def key_command(name: NameOption, key: WitnessKeyOption) -> None:
    """Print the witness's verifier key (`name+keyid+base64`, type 0x04), creating the key if missing."""
    typer.echo(_cosigner(name, key).public.vkey)


@witness_app.command("serve", epilog=_EPILOG)
@door
def serve_command(
    name: NameOption,
    key: WitnessKeyOption,
    log: Annotated[
        list[str],
        typer.Option(
            "--log",
            help="The verifier key of a log to follow (`origin+keyid+base64`, or a file); "
            "repeatable.",
        ),
    ],
    state: Annotated[
        Path,
        typer.Option(help="The witness's state (SQLite): the latest size and root per log."),
    ] = Path("var/witness.db"),
    host: Annotated[str, typer.Option(help="Address to listen on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port to listen on.")] = 9301,
) -> None:
    """Serve POST /add-checkpoint (C2SP tlog-witness) and GET /<origin hash>/checkpoint."""
    import uvicorn

    from ..audit.note import NoteVerifier
    from ..audit.witness import Witness
    from ..witness import create_witness_app

    logs = [NoteVerifier.from_vkey(read_vkey(text)) for text in log]
    if len({v.name for v in logs}) != len(logs):
        raise InputError("each `--log` must be a different log (origin)")
    cosigner = _cosigner(name, key)
    witness = Witness(state, cosigner, logs, clock=time.time)
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s: %(name)s: %(message)s")
    typer.echo(f"witness {cosigner.public.vkey} listening on http://{host}:{port}")
    uvicorn.run(
        create_witness_app(witness),
        host=host,
        port=port,
        log_level="warning",
        access_log=False,
        proxy_headers=False,
    )
