"""``meridian receipt verify FILE``: check a meeting's residency receipt offline.

Needs only the file, the log's verifier key, the region nodes' public keys and, optionally, the
witnesses' keys with a quorum; it asks no service anything (docs/audit.md, "Meeting residency
receipts").
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Any

import typer

from ..errors import InputError, ProofError, shown
from .app import app, door
from .audit import KeyOption, read_vkey

__all__ = ["parse_node_key", "receipt_app"]

receipt_app = typer.Typer(
    help="Meeting residency receipts: where a meeting went, checked offline.",
    no_args_is_help=True,
)
app.add_typer(receipt_app, name="receipt")

#: the largest receipt read (a meeting of 1,000 participants makes about 3 MB)
_MAX_BYTES = 64 * 1024 * 1024


def parse_node_key(text: str) -> tuple[str, str]:
    """``US=KEY`` as ``("US", "KEY")``."""
    region, sep, key = text.partition("=")
    region, key = region.strip().upper(), key.strip()
    if not sep or not region or not key:
        raise InputError(
            f"node key `{shown(text)}` is not REGION=KEY: expected e.g. `US=<base64url key>`"
        )
    return region, key


def _node_keys_file(path: Path) -> dict[str, str]:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise InputError(f"node keys `{shown(str(path), 300)}` cannot be read: {exc}") from None
    except (ValueError, RecursionError):
        raise InputError(f"node keys `{shown(str(path), 300)}` is not JSON") from None
    if not isinstance(data, dict) or not all(
        isinstance(k, str) and isinstance(v, str) for k, v in data.items()
    ):
        raise InputError(
            f'node keys `{shown(str(path), 300)}` must be an object `{{"US": "<key>", …}}`'
        )
    return {k.upper(): v for k, v in data.items()}


def _read_receipt(path: Path) -> Any:
    if not path.is_file():
        raise InputError(f"receipt `{shown(str(path), 300)}` does not exist")
    if path.stat().st_size > _MAX_BYTES:
        raise InputError(f"receipt `{shown(str(path), 300)}` is larger than 64 MiB")
    try:
        return json.loads(path.read_bytes())
    except (ValueError, RecursionError):  # RecursionError: nested deeper than json can read
        raise ProofError(f"receipt `{shown(str(path), 300)}` is not JSON") from None


@receipt_app.command("verify")
@door
def verify_command(
    path: Annotated[Path, typer.Argument(help="A receipt (GET /v1/meetings/{id}/receipt).")],
    key: KeyOption,
    node_key: Annotated[
        list[str] | None,
        typer.Option(
            "--node-key",
            help="A region node's public key, REGION=KEY (`GET /v1/node/key` on the node; "
            "repeatable).",
        ),
    ] = None,
    node_keys: Annotated[
        Path | None,
        typer.Option("--node-keys", help='A JSON file of node keys: {"US": "<key>", …}.'),
    ] = None,
    witness: Annotated[
        list[str] | None,
        typer.Option("--witness", help="A witness's verifier key (repeatable)."),
    ] = None,
    quorum: Annotated[
        int | None,
        typer.Option("--quorum", help="How many of the witnesses must have cosigned."),
    ] = None,
) -> None:
    """Check a meeting's receipt: the signed checkpoint, every entry's inclusion proof, every
    node's signed statement, and that its summary is what its entries say; then say which
    regions carried the meeting and which gave its keys.

    Exit 0 when it verifies; otherwise one line naming what is wrong, and exit 1.
    """
    from ..audit.cosignature import WitnessKey, verify_cosignatures
    from ..meetings.residency import verify_receipt

    trusted = _node_keys_file(node_keys) if node_keys is not None else {}
    trusted.update(parse_node_key(k) for k in node_key or ())
    witnesses = [WitnessKey.from_vkey(w) for w in witness or ()]
    if quorum is not None and not witnesses:
        raise InputError("`--quorum` needs the witnesses' keys: give them with `--witness`")
    cosigned: list[int] = []

    def check_cosignatures(note: str) -> None:
        valid = verify_cosignatures(note, witnesses, quorum=quorum or len(witnesses))
        cosigned.append(len(valid))

    data = _read_receipt(path)
    check = verify_receipt(
        data,
        log_key=read_vkey(key),
        node_keys=trusted,
        cosignatures=check_cosignatures if witnesses else None,
    )
    if check.outside:
        raise ProofError(
            f"the receipt verifies, but meeting `{check.meeting}` went outside its allowed "
            f"regions ({', '.join(check.allowed)}): {', '.join(check.outside)}"
        )
    witnessed = f", cosigned by {cosigned[0]} of {len(witnesses)} witnesses" if cosigned else ""
    typer.echo(
        f"receipt of meeting {check.meeting}: {check.participants} participants, "
        f"{check.entries} log entries, in the log of {check.size} entries{witnessed}"
    )
    typer.echo(f"verified: {check.where()}")
