"""Pages: the tamper-evident log — its size and signed checkpoints, verifying it, its proofs.

Every decision and change Meridian makes is an entry of one append-only Merkle log (RFC 9162),
and checkpoints sign its root from time to time (``docs/audit.md``). These pages show what the
public ``/v1/log/…`` endpoints serve — checkpoints, the verifier key, inclusion and consistency
proofs — checked here as an auditor would check them, and what only operators may read: the
entries themselves.

"Verify the live log" does what ``meridian audit verify --url`` does: it takes every stored
checkpoint and every entry they cover, recomputes each entry's hash and the tree, and checks every
checkpoint's signature and root with :func:`meridian.audit.verify.verify_entries`. The entry lines
it checks carry the leaf hash the database stored when each entry was written, so an entry
altered afterwards is named (its bytes no longer hash to its leaf) as well as every signed root
it breaks.
"""

from __future__ import annotations

import base64
import time
from dataclasses import dataclass
from datetime import datetime
from typing import Annotated, Any

import orjson
from fastapi import APIRouter, Query, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from starlette.concurrency import run_in_threadpool

from ...audit.merkle import leaf_hash, verify_consistency, verify_inclusion
from ...audit.verify import VerifyResult, verify_entries
from ...errors import InputError, MeridianError, NotFoundError, ProofError, shown
from ...runtime import Runtime
from ..deps import CsrfChecked, Viewer, page_for
from ..render import render

router = APIRouter(include_in_schema=False)
__all__ = ["router"]

OperatorPage = Annotated[Viewer, page_for("operator")]

#: checkpoints per page of the list
PER_PAGE = 20
#: the latest entries shown on the log page
RECENT = 12
#: a number typed in a form: may be empty (then the default), else a count
_COUNT = Query(max_length=20)
_MAX = 2**62


def _count(value: str | None, name: str) -> int | None:
    """A form's number field: ``None`` when left empty, else a count (``InputError`` if not)."""
    if value is None or not value.strip():
        return None
    text = value.strip()
    if not text.isdigit() or int(text) > _MAX:
        raise InputError(f"`{name}` must be a whole number of entries, not `{shown(text)}`")
    return int(text)


def b64(data: bytes) -> str:
    """A hash as the API and checkpoints write it: standard base64."""
    return base64.b64encode(data).decode("ascii")


@dataclass(frozen=True, slots=True)
class CheckpointView:
    """One stored checkpoint as listed: what its note says, and whether its signature holds."""

    size: int
    root: str
    time: datetime | None
    note: str
    problem: str | None


def _checkpoints(rt: Runtime, offset: int, limit: int) -> tuple[list[CheckpointView], int]:
    """A page of the checkpoints issued, newest first (as ``GET /v1/log/checkpoints``), each
    opened with the log's verifier key; and how many were issued."""
    stored, count = rt.log.stored_checkpoints(offset=offset, limit=limit, thinning=rt.thinning)
    return [CheckpointView(c.size, b64(c.root), c.time, c.note, c.problem) for c in stored], count


@router.get("/console/log", response_class=HTMLResponse)
def log_page(
    request: Request,
    viewer: OperatorPage,
    page: Annotated[int, Query(ge=1, le=1_000_000)] = 1,
    done: Annotated[str, Query(max_length=20)] = "",
) -> Response:
    """The log's size, its latest checkpoints, the verifier key, and the tools to check it."""
    rt: Runtime = request.app.state.runtime
    size = rt.log.sync()
    problems = rt.log.problems()
    checkpoints, count = _checkpoints(rt, (page - 1) * PER_PAGE, PER_PAGE)
    latest = checkpoints[0] if page == 1 and checkpoints else None
    if latest is None:
        newest, _ = _checkpoints(rt, 0, 1)
        latest = newest[0] if newest else None
    return render(
        request,
        "console/log.html",
        {
            "size": size,
            "origin": rt.log.origin,
            "vkey": rt.log.vkey,
            "checkpoints": checkpoints,
            "count": count,
            "latest": latest,
            "page": page,
            "pages": max(1, -(-count // PER_PAGE)),
            "recent": rt.log.recent_entries(RECENT),
            "done": done,
            "log_problems": problems,
        },
        # a log that failed its self-check is not served as if it were whole
        status=503 if problems else 200,
        active="log",
    )


@router.post("/console/log/checkpoint", dependencies=[CsrfChecked])
async def issue_checkpoint(request: Request, viewer: OperatorPage) -> Response:
    """Sign a checkpoint now if the log grew (as ``POST /v1/log/checkpoint``)."""
    rt: Runtime = request.app.state.runtime
    await run_in_threadpool(rt.log.checkpoint)
    return RedirectResponse("/console/log?done=checkpoint", status_code=303)


# -- verifying the live log --------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class LiveCheck:
    """What verifying the live log found, and what it did not look at."""

    result: VerifyResult
    #: entries written since the latest checkpoint: not signed yet, so not verifiable yet
    unsigned: int
    seconds: float


def verify_live(rt: Runtime) -> LiveCheck:
    """Recompute the tree from the stored entries and check every stored checkpoint against it."""
    started = time.monotonic()
    size = rt.log.sync()
    stored = rt.log.checkpoint_notes()
    result = verify_entries(list(stored.notes), rt.log.stored_lines(stored.signed), rt.log.vkey)
    return LiveCheck(result, max(0, size - stored.signed), time.monotonic() - started)


@router.get("/console/log/verify", response_class=HTMLResponse)
async def verify_page(request: Request, viewer: OperatorPage) -> Response:
    """Verify the live log: every entry, the tree, every checkpoint's signature and root."""
    rt: Runtime = request.app.state.runtime
    check = await run_in_threadpool(verify_live, rt)
    return render(
        request,
        "console/log_verify.html",
        {"check": check, "r": check.result, "b64": b64, "vkey": rt.log.vkey},
        status=200,
        active="log",
    )


# -- proofs and entries ------------------------------------------------------------------------


def _latest_size(rt: Runtime) -> int:
    latest = rt.log.latest()
    return rt.log.sync() if latest is None else latest.checkpoint.size


def _signed_root(rt: Runtime, size: int) -> tuple[bytes | None, str | None]:
    """The root a checkpoint signed at exactly ``size`` entries, and its note (or Nones)."""
    try:
        signed = rt.log.find(size)
    except NotFoundError:
        return None, None
    return signed.checkpoint.root, signed.note


def _entry(rt: Runtime, index: int) -> bytes:
    for _, data in rt.log.entries(index, index + 1):
        return data
    raise NotFoundError(f"no entry `{index}`: the log has {rt.log.sync()} entries")


def _inclusion(rt: Runtime, index: int, size: int | None) -> dict[str, Any]:
    """Entry ``index``'s audit path in the tree of ``size`` (default: the latest checkpoint's),
    checked against the root signed at that size."""
    at = _latest_size(rt) if size is None else size
    at, leaf, proof, root = rt.log.inclusion(index, at)
    signed_root, note = _signed_root(rt, at)
    entry = _entry(rt, index)
    problem = None
    try:
        verify_inclusion(leaf, index, at, proof, signed_root if signed_root is not None else root)
    except ProofError as exc:
        problem = exc.message
    return {
        "index": index,
        "size": at,
        "leaf": b64(leaf),
        "entry_leaf": b64(leaf_hash(entry)),
        "proof": [b64(h) for h in proof],
        "root": b64(root),
        "signed_root": None if signed_root is None else b64(signed_root),
        "note": note,
        "problem": problem,
        "entry": entry.decode("utf-8", "replace"),
    }


def _sizes(rt: Runtime) -> list[int]:
    """Sizes at which checkpoints were signed, newest first (the proof forms offer them)."""
    return list(rt.log.checkpoint_sizes(50))


@router.get("/console/log/proof", response_class=HTMLResponse)
async def inclusion_page(
    request: Request,
    viewer: OperatorPage,
    index: Annotated[str | None, _COUNT] = None,
    size: Annotated[str | None, _COUNT] = None,
) -> Response:
    """An entry's inclusion proof, every hash shown, verified against the signed root."""
    rt: Runtime = request.app.state.runtime
    proof, error, status = None, None, 200
    try:
        at = _count(index, "index")
        if at is not None:
            proof = await run_in_threadpool(_inclusion, rt, at, _count(size, "size"))
    except MeridianError as exc:
        error, status = exc.message, exc.http_status
    sizes = await run_in_threadpool(_sizes, rt)
    return render(
        request,
        "console/log_proof.html",
        {"proof": proof, "error": error, "index": index, "size": size, "sizes": sizes},
        status=status,
        active="log",
    )


def _consistency(rt: Runtime, first: int, second: int | None) -> dict[str, Any]:
    """The proof that the tree of ``first`` entries is a prefix of the tree of ``second``,
    checked against the roots signed at those sizes where there are such checkpoints."""
    at = _latest_size(rt) if second is None else second
    at, proof, first_root, second_root = rt.log.consistency(first, at)
    signed_first, _ = _signed_root(rt, first)
    signed_second, _ = _signed_root(rt, at)
    problem = None
    try:
        verify_consistency(
            first,
            at,
            signed_first if signed_first is not None else first_root,
            signed_second if signed_second is not None else second_root,
            proof,
        )
    except ProofError as exc:
        problem = exc.message
    return {
        "first": first,
        "second": at,
        "first_root": b64(first_root),
        "second_root": b64(second_root),
        "signed_first": None if signed_first is None else b64(signed_first),
        "signed_second": None if signed_second is None else b64(signed_second),
        "proof": [b64(h) for h in proof],
        "problem": problem,
    }


@router.get("/console/log/consistency", response_class=HTMLResponse)
async def consistency_page(
    request: Request,
    viewer: OperatorPage,
    first: Annotated[str | None, _COUNT] = None,
    second: Annotated[str | None, _COUNT] = None,
) -> Response:
    """A consistency proof between two sizes of the log: it only ever grew."""
    rt: Runtime = request.app.state.runtime
    proof, error, status = None, None, 200
    try:
        start = _count(first, "first")
        if start is not None:
            proof = await run_in_threadpool(_consistency, rt, start, _count(second, "second"))
    except MeridianError as exc:
        error, status = exc.message, exc.http_status
    sizes = await run_in_threadpool(_sizes, rt)
    return render(
        request,
        "console/log_consistency.html",
        {"proof": proof, "error": error, "first": first, "second": second, "sizes": sizes},
        status=status,
        active="log",
    )


def _entry_view(rt: Runtime, index: int) -> dict[str, Any]:
    size = rt.log.sync()
    if index >= size:
        raise InputError(f"entry `{index}` is outside a log of {size} entries")
    entry = _entry(rt, index)
    stored = rt.log.stored_leaf(index)
    try:
        pretty = orjson.dumps(orjson.loads(entry), option=orjson.OPT_INDENT_2).decode()
    except orjson.JSONDecodeError:
        pretty = None
    return {
        "index": index,
        "size": size,
        "canonical": entry.decode("utf-8", "replace"),
        "pretty": pretty,
        "bytes": len(entry),
        "leaf": b64(leaf_hash(entry)),
        "stored_leaf": None if stored is None else b64(stored),
    }


@router.get("/console/log/entry", response_class=HTMLResponse)
async def entry_page(
    request: Request,
    viewer: OperatorPage,
    index: Annotated[str | None, _COUNT] = None,
) -> Response:
    """Entry ``index`` as the log hashes it (canonical JSON), its leaf hash, a link to its proof."""
    rt: Runtime = request.app.state.runtime
    entry, error, status = None, None, 200
    try:
        at = _count(index, "index")
        if at is not None:
            entry = await run_in_threadpool(_entry_view, rt, at)
    except MeridianError as exc:
        error, status = exc.message, exc.http_status
    return render(
        request,
        "console/log_entry.html",
        {"entry": entry, "error": error, "index": index},
        status=status,
        active="log",
    )
