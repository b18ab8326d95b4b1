"""Operating the service: health, the bundle in force, tokens, the record."""

from __future__ import annotations

import asyncio
import time
from typing import Annotated, Any

from fastapi import APIRouter, Query, Request
from fastapi.responses import JSONResponse

from ...errors import ForbiddenError, shown
from ...http.deps import CallerDep, IdempotencyKeyHeader, RuntimeDep, require
from ...http.schemas import (
    ChangeCreate,
    IdPath,
    NotReady,
    PolicyPublic,
    Ready,
    TokenCreate,
    TokenPublic,
)
from ...identity.tokens import create_token, revoke_token
from .changes import propose_change
from .common import errors

router = APIRouter(tags=["operations"])
__all__ = ["router"]


#: how long /readyz waits for the database before it answers "not ready"
_READY_WAIT = 3.0
#: a database check answers every /readyz asked while it runs and for this long after it
#: started (so an answer may be this stale): a flood of public calls, or a slow database,
#: costs one check and one thread at a time, not one each
_READY_REUSE = 1.0


async def _readiness(request: Request, rt: Any) -> Any:
    """The replica's readiness, from the check in flight or one started at most
    :data:`_READY_REUSE` ago; :class:`TimeoutError` after :data:`_READY_WAIT`."""
    state = request.app.state
    held = getattr(state, "readiness_check", None)
    now = time.monotonic()
    if held is None or (held[0].done() and now - held[1] > _READY_REUSE):
        held = (asyncio.ensure_future(asyncio.to_thread(rt.readiness)), now)
        state.readiness_check = held
    return await asyncio.wait_for(asyncio.shield(held[0]), _READY_WAIT)


@router.get("/healthz", tags=["cluster"])
async def healthz() -> dict[str, str]:
    """Liveness: the process answers (nothing else is checked). Public; for a load balancer or a supervisor."""
    return {"status": "ok"}


@router.get(
    "/readyz",
    tags=["cluster"],
    responses={503: {"description": "not ready, with the reason", "model": NotReady}},
)
async def readyz(request: Request, rt: RuntimeDep) -> Any:
    """Readiness: the database answers, its schema is at this release's head, a bundle is loaded. 503 with the reason otherwise. Public; a load balancer sends traffic only to a ready replica."""
    try:
        state = await _readiness(request, rt)
    except TimeoutError:
        return JSONResponse(
            {
                "status": "not ready",
                "reason": f"the database did not answer within {_READY_WAIT:g} s",
            },
            status_code=503,
        )
    if not state.ready:
        return JSONResponse({"status": "not ready", "reason": state.reason}, status_code=503)
    leadership = getattr(request.app.state, "leadership", None)
    return Ready(
        status="ready",
        replica=rt.replica.id,
        leader=leadership is not None and leadership.is_leader,
        schema_revision=state.schema or "",
        bundle=rt.digest,
    )


@router.get("/v1/health")
async def health(rt: RuntimeDep) -> dict[str, Any]:
    """Liveness and the bundle in force. Public."""
    return {"status": "ok", "bundle": rt.engine.bundle.ref.to_dict(), "now": rt.now().isoformat()}


def _policy(rt: Any) -> PolicyPublic:
    compiled = rt.engine.bundle
    doc = compiled.document
    return PolicyPublic(
        name=doc.bundle,
        version=doc.version,
        digest=compiled.ref.digest,
        rules=len(doc.rules),
        jurisdictions=sorted(doc.jurisdictions),
    )


@router.get("/v1/policy", responses=errors(401))
def get_policy(rt: RuntimeDep, caller: CallerDep) -> PolicyPublic:
    """The bundle in force: name, version, digest. Roles: operator, partner, user."""
    return _policy(rt)


@router.put(
    "/v1/policy",
    status_code=202,
    responses=errors(401, 403, 409, 413),
    dependencies=[require("operator")],
)
def load_policy(body: ChangeCreate, rt: RuntimeDep, caller: CallerDep) -> dict[str, Any]:
    """Propose a bundle (YAML) to replace the one in force: the same as `POST /v1/policy/changes`. Nothing is in force until a second operator approves the change (`POST /v1/policy/changes/{id}/approve`); the answer (202) is the proposed change, with its diff and replay. Refused whole, with every problem at its line, if invalid. Role: operator."""
    return propose_change(rt, caller, body, "<api>")


@router.post(
    "/v1/tokens",
    status_code=201,
    responses=errors(401, 403, 404, 409, 413),
    dependencies=[require("operator"), IdempotencyKeyHeader],
)
def new_token(body: TokenCreate, rt: RuntimeDep, caller: CallerDep) -> TokenPublic:
    """Create an api token (shown once): an operator token is always the caller's own, for the same person; another operator is added out of band (`meridian admin add-operator`). Role: operator."""
    person = None
    if body.role == "operator":
        if body.person is not None and body.person != caller.person_id:
            raise ForbiddenError(
                f"an operator mints tokens only for themselves, not for `{shown(body.person)}`: "
                "another operator is added out of band (`meridian admin add-operator`)"
            )
        person = caller.person_id
        if person is None:
            raise ForbiddenError("this operator token belongs to no person: it cannot mint one")
    with rt.db.write() as session:
        row, secret = create_token(
            session,
            role=body.role,
            name=body.name,
            partner_id=body.partner,
            account_id=body.account,
            person_id=person if body.role == "operator" else body.person,
            expires_at=body.expires_at,
            default_user_days=rt.settings.user_token_days,
            at=rt.now(),
            actor=caller.actor,
            digest=rt.digest,
        )
        return TokenPublic(
            id=row.id,
            role=row.role,
            name=row.name,
            partner_id=row.partner_id,
            account_id=row.account_id,
            person_id=row.person_id,
            expires_at=row.expires_at,
            token=secret,
        )


@router.delete(
    "/v1/tokens/{token_id}",
    responses=errors(401, 403, 404),
    dependencies=[require("operator")],
)
def delete_token(
    token_id: IdPath, request: Request, rt: RuntimeDep, caller: CallerDep
) -> dict[str, Any]:
    """Revoke an api token: at once here, and on every other replica as it commits (an order). Role: operator."""
    with rt.db.write() as session:
        row = revoke_token(
            session, token_id=token_id, at=rt.now(), actor=caller.actor, digest=rt.digest
        )
        revoked = row.revoked_at
    request.app.state.tokens.clear()
    assert revoked is not None
    return {"id": token_id, "revoked_at": revoked.isoformat()}


@router.get("/v1/records", responses=errors(401, 403), dependencies=[require("operator")])
def list_records(
    rt: RuntimeDep,
    caller: CallerDep,
    action: Annotated[str | None, Query(max_length=50, pattern=r"^[a-z_.]+$")] = None,
    subject: Annotated[str | None, Query(max_length=100, pattern=r"^[A-Za-z0-9_.:\-]+$")] = None,
    after: Annotated[int, Query(ge=-1, le=2**62)] = -1,
    limit: Annotated[int, Query(ge=1, le=500)] = 100,
) -> dict[str, Any]:
    """The record of decisions and changes, oldest first, from the entry after position `after` (default: the first). `seq` is the entry's position in the log (`/v1/log/...`). Role: operator."""
    rows, count = rt.log.records(after=after, action=action, subject=subject, limit=limit)
    data = [r.to_dict() for r in rows]
    return {"data": data, "count": count}
