"""The witness's HTTP door (c2sp.org/tlog-witness): ``POST /add-checkpoint`` and the monitoring
``GET /<sha256(origin) hex>/checkpoint``; the rules live in :mod:`meridian.audit.witness`.

Bodies are read to at most :data:`~meridian.audit.witness.MAX_BODY` bytes; every refusal is one
line of text with the status the specification gives it.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response
from starlette.routing import Route

from ..audit.witness import MAX_BODY, Witness

__all__ = ["create_witness_app"]

log = logging.getLogger("meridian.witness")


def create_witness_app(witness: Witness) -> Starlette:
    """The witness's ASGI app over ``witness`` (its state and key)."""
    hashes = {hashlib.sha256(origin.encode()).hexdigest(): origin for origin in witness.logs}

    async def add_checkpoint(request: Request) -> Response:
        body = bytearray()
        async for chunk in request.stream():
            body += chunk
            if len(body) > MAX_BODY:
                return PlainTextResponse("request too large\n", status_code=413)
        answer = await asyncio.to_thread(witness.add_checkpoint, bytes(body))
        if answer.status not in (200, 409):
            log.warning("refused a checkpoint (%d): %s", answer.status, answer.reason)
        return Response(answer.body, status_code=answer.status, media_type=answer.content_type)

    async def checkpoint(request: Request) -> Response:
        origin = hashes.get(request.path_params["origin_hash"])
        latest = None if origin is None else await asyncio.to_thread(witness.latest, origin)
        if latest is None:
            return PlainTextResponse("no checkpoint cosigned for this log\n", status_code=404)
        return PlainTextResponse(latest[1])

    async def key(request: Request) -> Response:
        return PlainTextResponse(witness.cosigner.public.vkey + "\n")

    return Starlette(
        routes=[
            Route("/add-checkpoint", add_checkpoint, methods=["POST"]),
            Route("/key", key, methods=["GET"]),
            Route("/{origin_hash}/checkpoint", checkpoint, methods=["GET"]),
        ]
    )
