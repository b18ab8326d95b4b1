"""The log as C2SP tiles (c2sp.org/tlog-tiles) under ``/log``: the checkpoint, tiles, bundles.

Public and static: a full tile never changes, so it is cacheable for a year by any HTTP cache;
a partial tile and the checkpoint change as the log grows, so they are cached for seconds. The
domain (:mod:`meridian.audit.tiles`) says what a tile holds; this door only parses the path and
sets the headers.
"""

from __future__ import annotations

import asyncio

from fastapi import APIRouter, Response

from ...audit.tiles import parse_tile_path, read_tile
from ...http.deps import RuntimeDep
from .common import errors, json_response

router = APIRouter(tags=["tiles"])
__all__ = ["router"]

_NOTE = "text/plain; charset=utf-8"
_BYTES = "application/octet-stream"
#: a full tile or bundle: its bytes are fixed forever
IMMUTABLE = "public, max-age=31536000, immutable"
#: a partial tile: it may be replaced by the full one (and pruned), so kept briefly
PARTIAL = "public, max-age=60"
#: the checkpoint: a new one every MERIDIAN_CHECKPOINT_INTERVAL seconds at most
CHECKPOINT = "public, max-age=5"
_PUBLIC = {"Access-Control-Allow-Origin": "*"}


@router.get("/log/checkpoint", responses={200: {"content": {_NOTE: {}}}})
async def tiled_checkpoint(rt: RuntimeDep) -> Response:
    """The latest checkpoint (C2SP signed note) with the witnesses' cosignatures it gathered. Public."""
    note = await asyncio.to_thread(rt.witnessing.cosigned_note)
    return Response(note, media_type=_NOTE, headers={"Cache-Control": CHECKPOINT, **_PUBLIC})


@router.get("/log/tile/{path:path}", responses={**errors(404), 200: {"content": {_BYTES: {}}}})
async def tile(rt: RuntimeDep, path: str) -> Response:
    """A tile `<L>/<N>[.p/<W>]` or an entry bundle `entries/<N>[.p/<W>]` of the tree of the latest checkpoint. Public.

    Entry bundles carry each entry's leaf hash, a commitment to it, never the entry.
    """
    wanted = parse_tile_path(f"tile/{path}")
    data = await asyncio.to_thread(read_tile, rt.log, wanted)
    cache = IMMUTABLE if wanted.full else PARTIAL
    return Response(data, media_type=_BYTES, headers={"Cache-Control": cache, **_PUBLIC})


@router.get("/v1/log/witnesses")
async def witnesses(rt: RuntimeDep) -> Response:
    """Each configured witness: the size it holds, whether it cosigned the latest checkpoint, and the last problem submitting to it. Public."""
    report = await asyncio.to_thread(rt.witnessing.report)
    latest = await asyncio.to_thread(rt.log.latest)
    return json_response(
        {
            "size": None if latest is None else latest.checkpoint.size,
            "data": [w.to_dict() for w in report],
            "missing": [w.witness for w in report if not w.cosigned_latest],
        }
    )
