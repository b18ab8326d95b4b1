"""The log over HTTP: signed checkpoints, inclusion and consistency proofs, the entries.

Checkpoints, proofs and the verifier key are public: they say nothing about anyone, and let
anyone check that an entry they were shown is in the log and that the log only ever grew. The
entries themselves name accounts and addresses, so reading them takes an operator token (an
auditor gets them that way, or as an export).

Hashes travel in standard base64, as in checkpoints.
"""

from __future__ import annotations

import asyncio
import base64
from typing import Annotated

from fastapi import APIRouter, Query, Response

from ...audit.export import entry_line
from ...http.deps import CallerDep, RuntimeDep, require
from .common import errors, json_response

router = APIRouter(tags=["log"])
__all__ = ["router"]

#: the most entries one ``GET /v1/log/entries`` returns
MAX_ENTRIES = 1000
_SIZE = Query(ge=0, le=2**62)
_NOTE = "text/plain; charset=utf-8"


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


@router.get("/v1/log/checkpoint", responses={200: {"content": {_NOTE: {}}}})
async def get_checkpoint(rt: RuntimeDep) -> Response:
    """The latest signed checkpoint (C2SP signed note: origin, size, root, time, signature). Public."""
    latest = await asyncio.to_thread(rt.log.latest)
    if latest is None:
        latest = await asyncio.to_thread(rt.log.checkpoint)
    return Response(latest.note, media_type=_NOTE)


@router.post(
    "/v1/log/checkpoint",
    responses={**errors(401, 403), 200: {"content": {_NOTE: {}}}},
    dependencies=[require("operator")],
)
async def issue_checkpoint(rt: RuntimeDep, caller: CallerDep) -> Response:
    """Issue a checkpoint now if the log grew since the last one; the latest either way. Role: operator."""
    signed = await asyncio.to_thread(rt.log.checkpoint)
    return Response(signed.note, media_type=_NOTE)


@router.get("/v1/log/checkpoints")
async def list_checkpoints(
    rt: RuntimeDep,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
    offset: Annotated[int, Query(ge=0, le=2**62)] = 0,
) -> Response:
    """A page of the checkpoints issued, newest first: size, root, time and the signed note. Public.

    Thinned as they age: every checkpoint of the last day, then one an hour for a week, then one
    a day (`MERIDIAN_CHECKPOINT_KEEP_ALL`, `MERIDIAN_CHECKPOINT_KEEP_HOURLY`); `count` is how
    many are listed in all, `next` the `offset` of the next page (null on the last).
    """
    signed, count = await asyncio.to_thread(rt.log.thinned, rt.thinning, offset=offset, limit=limit)
    data = [
        {
            "size": s.checkpoint.size,
            "root": _b64(s.checkpoint.root),
            "time": s.checkpoint.time.isoformat().replace("+00:00", "Z"),
            "note": s.note,
        }
        for s in signed
    ]
    following = offset + len(data)
    return json_response(
        {"data": data, "count": count, "next": following if following < count else None}
    )


@router.get("/v1/log/key", responses={200: {"content": {_NOTE: {}}}})
async def get_key(rt: RuntimeDep) -> Response:
    """The verifier key of the log's checkpoints (``name+keyid+base64``). Public.

    Check it against a copy obtained some other way before trusting what it verifies.
    """
    return Response(rt.log.vkey + "\n", media_type=_NOTE)


@router.get("/v1/log/proof/inclusion", responses=errors())
async def inclusion_proof(
    rt: RuntimeDep,
    index: Annotated[int, _SIZE],
    size: Annotated[int | None, _SIZE] = None,
) -> Response:
    """Proof that entry `index` is in the tree of `size` entries (default: the whole log). Public.

    The `proof` is RFC 9162's audit path; `leaf_hash` is SHA-256(0x00 || entry).
    """
    at_size, leaf, proof, root = await asyncio.to_thread(rt.log.inclusion, index, size)
    return json_response(
        {
            "index": index,
            "size": at_size,
            "leaf_hash": _b64(leaf),
            "root": _b64(root),
            "proof": [_b64(h) for h in proof],
        }
    )


@router.get("/v1/log/proof/consistency", responses=errors())
async def consistency_proof(
    rt: RuntimeDep,
    first: Annotated[int, _SIZE],
    second: Annotated[int | None, _SIZE] = None,
) -> Response:
    """Proof that the tree of `first` entries is a prefix of the tree of `second` (default: the whole log). Public."""
    at_second, proof, first_root, second_root = await asyncio.to_thread(
        rt.log.consistency, first, second
    )
    return json_response(
        {
            "first": first,
            "second": at_second,
            "first_root": _b64(first_root),
            "second_root": _b64(second_root),
            "proof": [_b64(h) for h in proof],
        }
    )


@router.get(
    "/v1/log/entries",
    responses={**errors(401, 403), 200: {"content": {"application/x-ndjson": {}}}},
    dependencies=[require("operator")],
)
async def get_entries(
    rt: RuntimeDep,
    caller: CallerDep,
    start: Annotated[int, _SIZE] = 0,
    end: Annotated[int | None, _SIZE] = None,
) -> Response:
    """Entries `start` to `end - 1` (at most 1000), one per line as in an export: `[index,"leaf hash hex",entry]`. Role: operator."""
    size = await asyncio.to_thread(rt.log.sync)
    stop = min(size, start + MAX_ENTRIES if end is None else min(end, start + MAX_ENTRIES))
    lines = await asyncio.to_thread(
        lambda: [entry_line(i, data) for i, data in rt.log.entries(start, stop)]
    )

    return Response(
        b"".join(lines), media_type="application/x-ndjson", headers={"X-Log-Size": str(size)}
    )
