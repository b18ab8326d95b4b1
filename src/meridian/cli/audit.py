"""``meridian audit …``: export the log, verify it (an export or the live service), checkpoints.

``export`` and ``checkpoint`` act on the database named by ``MERIDIAN_DATABASE_URL``;
``verify`` needs only the file (or the service's URL) and the log's public key.
"""

from __future__ import annotations

import io
import json
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import httpx
import typer

from ..errors import (
    ConfigurationError,
    InputError,
    LogFailedError,
    MeridianError,
    NotFoundError,
    ProofError,
    shown,
)
from .app import app, door
from .progress import Bar, count, duration, file_size, progress_bar, summary
from .service import DatabaseOption, _runtime

if TYPE_CHECKING:
    from ..audit.cosignature import WitnessKey

__all__ = ["audit_app", "declared_entries"]

audit_app = typer.Typer(
    help="The tamper-evident log: export it, verify it, issue checkpoints.", no_args_is_help=True
)
app.add_typer(audit_app, name="audit")

#: the longest header line read for a bar's total (a real one is under 200 bytes)
_HEADER_LIMIT = 4096

KeyOption = Annotated[
    str,
    typer.Option(
        "--key",
        help="The log's verifier key (`name+keyid+base64`), or a file holding it. Obtain it "
        "from the operator out of band; `meridian audit key` prints it.",
        envvar="MERIDIAN_LOG_VKEY",
        show_envvar=True,
    ),
]


def read_vkey(value: str) -> str:
    """A verifier key given as text or as the path of a file holding it."""
    text = value.strip()
    if "+" not in text:
        path = Path(text)
        if not path.is_file():
            raise InputError(f"`{shown(value, 300)}` is neither a verifier key nor a readable file")
        text = path.read_text(encoding="utf-8").strip()
    return text


@audit_app.command("key")
@door
def key_command(database: DatabaseOption = None) -> None:
    """Print the verifier key of the log's checkpoints (give it to auditors)."""
    rt = _runtime(database)
    try:
        typer.echo(rt.log.vkey)
    finally:
        rt.close()


@audit_app.command("checkpoint")
@door
def checkpoint_command(
    database: DatabaseOption = None,
    output: Annotated[
        Path | None, typer.Option("--output", "-o", help="Also save the signed note to this file.")
    ] = None,
) -> None:
    """Issue a signed checkpoint if the log grew since the last one, and print the latest."""
    rt = _runtime(database)
    try:
        signed = rt.log.checkpoint()
    finally:
        rt.close()
    if output is not None:
        output.write_text(signed.note, encoding="utf-8")
    typer.echo(signed.note, nl=False)


@audit_app.command("export")
@door
def export_command(
    path: Annotated[Path, typer.Argument(help="The file to write (JSON Lines).")],
    database: DatabaseOption = None,
) -> None:
    """Write the log up to a fresh checkpoint, with every checkpoint, to PATH (atomically)."""
    from ..audit.export import write_export

    rt = _runtime(database)
    try:
        log = rt.log
        with progress_bar("checkpointing the log") as bar:
            signed = log.checkpoint()
            size = signed.checkpoint.size
            kept, _ = log.thinned(rt.thinning, up_to=size)
            notes = rt.witnessing.cosigned_notes(s.note for s in reversed(kept))
            bar.phase(f"exporting to {path.name}", total=size, unit="entries")
            write_export(
                path,
                origin=log.origin,
                checkpoints=notes,
                entries=log.entries(0, size),
                count=size,
                progress=bar,
            )
    finally:
        rt.close()
    typer.echo(
        f"exported {size} entries and {len(notes)} checkpoints to {path} "
        f"(root {signed.checkpoint.root.hex()[:16]}…)"
    )
    summary(
        f"export: {count(size, 'entry', 'entries')}, {count(len(notes), 'checkpoint')} → "
        f"{path} ({file_size(path.stat().st_size)}) in {duration(bar.seconds)}"
    )


def declared_entries(source: Path | bytes) -> int | None:
    """The entry count an export's header declares, for a bar's total (None if unreadable).

    Only a display hint: verification checks the header against the entries it reads.
    """
    from ..audit.export import parse_header_line

    try:
        with io.BytesIO(source) if isinstance(source, bytes) else source.open("rb") as stream:
            first = stream.readline(_HEADER_LIMIT)
        return parse_header_line(first).entries
    except (OSError, ValueError):
        return None


def _fetch_cosigned(url: str) -> str:
    """The checkpoint a live service serves with its witnesses' cosignatures (/log/checkpoint)."""
    base = url.rstrip("/")
    try:
        got = httpx.get(base + "/log/checkpoint", timeout=60)
        got.raise_for_status()
    except httpx.HTTPError as exc:
        raise ConfigurationError(f"cannot read the log at `{shown(base)}`: {exc}") from None
    return got.text


def _latest_note(path: Path) -> str:
    """The note of an export's latest checkpoint (by size, then time), for its cosignatures."""
    from ..audit.export import open_export
    from ..audit.note import peek_checkpoint

    with open_export(path) as export:
        notes = export.checkpoints
    if not notes:
        raise InputError(f"export `{shown(str(path), 300)}` holds no checkpoint")

    def order(note: str) -> tuple[int, str]:
        try:
            checkpoint = peek_checkpoint(note)
        except MeridianError:
            return (-1, "")
        return (checkpoint.size, checkpoint.time.isoformat())

    return max(notes, key=order)


def _quorum(note: str, witnesses: list[WitnessKey], quorum: int) -> tuple[str | None, str]:
    """The quorum problem of ``note`` (or ``None``), and the summary's words for it."""
    from ..audit.cosignature import verify_cosignatures
    from ..audit.note import peek_checkpoint

    try:
        size = peek_checkpoint(note).size
        valid = verify_cosignatures(note, witnesses, quorum=quorum)
    except ProofError as exc:
        return f"checkpoint: {exc.message}", ""
    names = ", ".join(c.witness for c in valid)
    return (
        None,
        f", cosigned at size {size} by {len(valid)} of {len(witnesses)} witnesses ({names})",
    )


#: the most checkpoints a listing may hold (thinned, a log keeps far fewer): past it, it lies
_MAX_LISTED = 1_000_000


def _listed_page(listed: httpx.Response, offset: int, notes: list[str]) -> int | None:
    """Add one page of ``GET /v1/log/checkpoints`` to ``notes``; the next page's offset.

    The log is what is being checked: a page that is not the listing's shape, or a ``next``
    that does not move forward past what the page held, is a :class:`ProofError`, never a loop.
    """
    where = f"the log's checkpoint listing at offset {offset}"
    try:
        page = listed.json()
    except ValueError:
        raise ProofError(f"{where} is not JSON") from None
    data = page.get("data") if isinstance(page, dict) else None
    if not isinstance(data, list) or not all(
        isinstance(c, dict) and isinstance(c.get("note"), str) for c in data
    ):
        raise ProofError(f"{where} is not a list of checkpoints (`data`, each with a `note`)")
    notes += [c["note"] for c in data]
    following = page.get("next")
    if following is None:
        return None
    if (
        not isinstance(following, int)
        or isinstance(following, bool)
        or not data
        or following != offset + len(data)
    ):
        raise ProofError(f"{where}: its `next` `{shown(following)}` does not follow the page")
    if len(notes) > _MAX_LISTED:
        raise ProofError(f"{where}: the listing holds more than {_MAX_LISTED:,} checkpoints")
    return following


def _fetch_live(url: str, token: str | None, bar: Bar) -> bytes:
    """The live service's log as export bytes: its checkpoints and every entry they cover."""
    base = url.rstrip("/")
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    try:
        with httpx.Client(base_url=base, headers=headers, timeout=60) as client:
            notes: list[str] = []
            offset: int | None = 0
            while offset is not None:  # the checkpoints listed (thinned), a page at a time
                listed = client.get("/v1/log/checkpoints", params={"limit": 1000, "offset": offset})
                listed.raise_for_status()
                offset = _listed_page(listed, offset, notes)
            notes.reverse()
            if not notes:
                raise NotFoundError(f"`{shown(base)}` has issued no checkpoint yet")
            from ..audit.note import peek_checkpoint

            latest = peek_checkpoint(notes[-1])
            size, origin = latest.size, latest.origin
            lines: list[bytes] = []
            bar.phase(f"fetching {base}", total=size, unit="entries")
            while len(lines) < size:
                got = client.get("/v1/log/entries", params={"start": len(lines), "end": size})
                if got.status_code in (401, 403):
                    raise InputError("reading the entries takes an operator token: pass `--token`")
                got.raise_for_status()
                # lines end with "\n" only (splitlines would also cut at other breaks)
                page = [line + b"\n" for line in got.content.split(b"\n")[:-1]]
                if not page:
                    break
                lines.extend(page)
                bar(len(lines))
    except httpx.HTTPError as exc:
        raise ConfigurationError(f"cannot read the log at `{shown(base)}`: {exc}") from None
    header = json.dumps(
        {
            "checkpoints": len(notes),
            "entries": len(lines),
            "format": "meridian-log/1",
            "origin": origin,
        },
        sort_keys=True,
        separators=(",", ":"),
        ensure_ascii=False,
    )
    out = [header.encode() + b"\n"]
    out += [
        json.dumps(
            {"checkpoint": n}, sort_keys=True, separators=(",", ":"), ensure_ascii=False
        ).encode()
        + b"\n"
        for n in notes
    ]
    return b"".join(out) + b"".join(lines)


@audit_app.command("verify")
@door
def verify_command(
    key: KeyOption,
    path: Annotated[
        Path | None, typer.Argument(help="An export written by `meridian audit export`.")
    ] = None,
    url: Annotated[
        str | None,
        typer.Option("--url", help="Verify the live service at this URL instead of a file."),
    ] = None,
    token: Annotated[
        str | None,
        typer.Option("--token", help="Operator token (with --url).", envvar="MERIDIAN_TOKEN"),
    ] = None,
    checkpoint: Annotated[
        Path | None,
        typer.Option(
            "--checkpoint",
            help="A checkpoint saved earlier: the log must be consistent with it.",
        ),
    ] = None,
    witness: Annotated[
        list[str] | None,
        typer.Option(
            "--witness",
            help="A witness's key (`name+keyid+base64`, type 0x04, or a file holding it) whose "
            "cosignature counts; repeatable. The latest checkpoint (with --url: the one "
            "/log/checkpoint serves) must carry --quorum of them.",
        ),
    ] = None,
    quorum: Annotated[
        int | None,
        typer.Option(
            "--quorum",
            min=1,
            help="How many of the --witness keys must have cosigned (default: all).",
        ),
    ] = None,
) -> None:
    """Check every entry, the tree, every checkpoint's signature, consistency with a saved
    checkpoint, and (with --witness) a quorum of witness cosignatures.

    Exit 0 when all holds; otherwise each problem is printed on its own line (where: the entry
    index or checkpoint; what was expected and what was found) and the exit code is 1.
    """
    from ..audit.cosignature import WitnessKey
    from ..audit.verify import verify_export

    if (path is None) == (url is None):
        raise InputError("give either an export file or `--url`")
    vkey = read_vkey(key)
    witnesses = [WitnessKey.from_vkey(read_vkey(text)) for text in witness or ()]
    if quorum is not None and not witnesses:
        raise InputError("`--quorum` needs at least one `--witness`")
    if quorum is not None and quorum > len(witnesses):
        raise InputError(f"quorum `{quorum}` is more than the {len(witnesses)} witnesses given")
    saved = None
    if checkpoint is not None:
        if not checkpoint.is_file():
            raise InputError(f"checkpoint file `{shown(str(checkpoint), 300)}` does not exist")
        saved = checkpoint.read_text(encoding="utf-8")
    if path is not None and not path.is_file():
        raise InputError(f"export `{shown(str(path), 300)}` does not exist")
    with progress_bar("verifying" if url is None else "fetching") as bar:
        source: Path | bytes
        cosigned = None
        if url is not None:
            if witnesses:
                cosigned = _fetch_cosigned(url)
            source = _fetch_live(url, token, bar)
        else:
            assert path is not None
            source = path
            if witnesses:
                cosigned = _latest_note(path)
        bar.phase("verifying", total=declared_entries(source), unit="entries")
        result = verify_export(
            source, vkey, saved_checkpoint=saved, cosigned_checkpoint=cosigned, progress=bar
        )
    problems = list(result.problems)
    witnessed = ""
    if witnesses:
        assert cosigned is not None
        need = len(witnesses) if quorum is None else quorum
        problem, witnessed = _quorum(cosigned, witnesses, need)
        if problem is not None:
            problems.append(problem)
    if problems:
        # a failure ends with its error line (the door's), not with a summary
        for problem in problems:
            typer.echo(f"problem: {problem}", err=True)
        raise LogFailedError(len(problems))
    latest = result.latest
    typer.echo(
        f"log verified: {result.entries} entries, {result.checkpoints} checkpoints"
        + (f", latest at size {latest.size} signed {latest.time.isoformat()}" if latest else "")
        + (", consistent with the saved checkpoint" if saved is not None else "")
        + witnessed
    )
    summary(
        f"verified {count(result.entries, 'entry', 'entries')} and "
        f"{count(result.checkpoints, 'checkpoint')} in {duration(bar.seconds)}: ok"
    )
