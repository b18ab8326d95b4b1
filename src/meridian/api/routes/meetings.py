"""Meetings: placement, data centres, the account's region setting, meetings and joining them."""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Query, Request, WebSocket, WebSocketDisconnect
from fastapi.concurrency import run_in_threadpool

from ...errors import (
    AuthenticationError,
    ConflictError,
    ForbiddenError,
    InputError,
    MeridianError,
    RateLimitedError,
    shown,
)
from ...http.deps import CallerDep, ClientIpDep, IdempotencyKeyHeader, RuntimeDep
from ...http.errors import error_code
from ...http.network import TrustedProxies, client_ip
from ...http.ratelimit import authenticate_counted, connection_ip, rate_limits
from ...http.schemas import (
    IdPath,
    MeetingAccess,
    MeetingCreate,
    MeetingCreated,
    MeetingInvite,
    MeetingPublic,
    MeetingsPublic,
    RegionSettingPublic,
    RegionsUpdate,
    WaitingPublic,
    check_id,
)
from ...http.session import COOKIE, Session, SessionSeal
from ...identity.accounts import get_account
from ...identity.sessions import session_caller
from ...keys.media import check_signing_key
from ...keys.wrap import check_public_key, from_b64url
from ...meetings import access, receipts, service
from ...meetings.invite import join_link
from ...meetings.lifecycle import end_everywhere
from ...meetings.live import Signalling
from ...meetings.regions import datacentre_rows
from ...meetings.route import PlacementRequest, route_request
from ...text import plain_name
from ...wire import Close
from .common import errors, json_response

router = APIRouter(tags=["meetings"])
__all__ = ["router"]

log = logging.getLogger("meridian.api.meetings")


@router.post("/v1/placements", responses=errors(401))
def placements(body: PlacementRequest, rt: RuntimeDep, _: CallerDep) -> Any:
    """Place a described meeting's participants: data centre per participant, key region, links. Roles: operator, partner, user.

    Changes nothing. `regions` omitted means the host's default set; `load` is each data
    centre's fraction of capacity in use. A refused participant has `decision: deny`, no `dc`,
    and the reasons (a blocked country, no allowed data centre with room, an unknown location).
    """
    return json_response(route_request(rt.engine, body))


@router.get("/v1/datacentres", responses=errors(401))
async def datacentres(request: Request, rt: RuntimeDep, caller: CallerDep) -> Any:
    """The data-centre regions of the bundle in force, with the live load the control plane sees. Roles: operator, partner, user.

    Every caller sees each region's load and how many live meetings use it (`meeting_count`);
    the ids in `meetings` are only those the caller may see: every one for an operator, its
    customers' for a partner, its own account's for a user. Each region's `state` is its node's
    health: `up`, `down` (it failed its health checks; no one is placed there until it answers
    again, `down_since` says since when) or `none` (no node configured). `live_meetings` and
    `live_participants` count the meetings the caller may see that are live, as every page does.
    Each region also gives its `latitude` and `longitude` and whether it is `in_use` (a live
    meeting has a participant on its relay now).
    """
    signalling: Signalling | None = getattr(request.app.state, "signalling", None)
    if signalling is not None:
        await run_in_threadpool(signalling.count)  # every replica's participants, not only ours
    live = signalling.live_load() if signalling is not None else {}
    ids = sorted({m for load in live.values() for m in load["meetings"]})

    def visible() -> set[str]:
        with rt.db.read() as session:
            return service.visible_meetings(session, caller, ids)

    rows = datacentre_rows(rt.engine.bundle, live, visible=await run_in_threadpool(visible))
    out = [row.to_dict() for row in rows]

    def counts() -> service.LiveCounts:
        with rt.db.read() as session:
            return service.live_counts(session, caller)

    now = await run_in_threadpool(counts)
    return json_response(
        {
            "data": out,
            "count": len(out),
            "live_meetings": now.meetings,
            "live_participants": now.participants,
        }
    )


@router.get("/v1/accounts/{account_id}/regions", responses=errors(401, 404))
def get_regions(account_id: IdPath, rt: RuntimeDep, caller: CallerDep) -> RegionSettingPublic:
    """The account's data-centre regions for the meetings it hosts: chosen, default, in effect. Roles: operator, partner (its customers), user (its own)."""

    def read() -> dict[str, Any]:
        with rt.db.read() as session:
            account = get_account(session, caller, account_id)
            return service.region_setting(session, rt, account)

    return RegionSettingPublic(**read())


@router.put("/v1/accounts/{account_id}/regions", responses=errors(401, 403, 404))
def put_regions(
    account_id: IdPath, body: RegionsUpdate, rt: RuntimeDep, caller: CallerDep
) -> RegionSettingPublic:
    """Choose the regions the account's meetings may use (paid plans). Roles: operator, user (its own).

    The home region is always kept. A region outside the account's jurisdiction that needs an
    explicit opt-in (CN, for accounts outside mainland China) must also be listed in `opt_in`;
    the opt-in is recorded with who made it. `regions: null` returns to the default set.
    """
    return RegionSettingPublic(
        **service.set_regions(
            rt, caller=caller, account_id=account_id, regions=body.regions, opt_in=body.opt_in
        )
    )


@router.post(
    "/v1/meetings",
    status_code=201,
    responses=errors(401, 403, 404, 409),
    dependencies=[IdempotencyKeyHeader],
)
def create_meeting(
    body: MeetingCreate, request: Request, rt: RuntimeDep, caller: CallerDep, ip: ClientIpDep
) -> MeetingCreated:
    """Create a meeting. Roles: user (hosts for its own account), operator or partner (names `host`).

    The `host` decision runs now (free accounts in mainland China cannot host after
    2020-05-20). The meeting's allowed regions and key region are fixed from the account's
    region setting; `countries` is an approve list or a deny list of participant countries.
    The answer carries the meeting's `invite` and `join_url`, shown only now: a guest needs
    them to join (`POST /v1/meetings/{id}/invite` issues a new one).
    """
    meeting, decision, invite = service.create_meeting(
        rt,
        caller=caller,
        host_account_id=body.host,
        topic=body.topic,
        countries=None if body.countries is None else body.countries.as_dict(),
        client_ip=ip,
    )
    return MeetingCreated(
        meeting=MeetingPublic.model_validate(meeting),
        decision=decision,
        signal=f"/v1/meetings/{meeting.id}/signal",
        invite=invite,
        join_url=join_link(str(request.base_url), meeting.id, invite),
    )


@router.get("/v1/meetings", responses=errors(401))
def list_meetings(
    rt: RuntimeDep,
    caller: CallerDep,
    status: Literal["live", "ended"] | None = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 50,
    offset: Annotated[int, Query(ge=0, le=10**9)] = 0,
) -> MeetingsPublic:
    """The meetings the caller may see, newest first. Roles: operator (all), partner (its customers'), user (its own)."""
    with rt.db.read() as session:
        rows, count = service.list_meetings(
            session, caller, status=status, limit=limit, offset=offset
        )
        return MeetingsPublic(data=[MeetingPublic.model_validate(r) for r in rows], count=count)


@router.get("/v1/meetings/{meeting_id}", responses=errors(401, 404))
def get_meeting(meeting_id: IdPath, rt: RuntimeDep, caller: CallerDep) -> MeetingPublic:
    """One meeting. Roles: operator, partner (its customers'), user (its own)."""
    with rt.db.read() as session:
        return MeetingPublic.model_validate(service.get_meeting(session, caller, meeting_id))


@router.get("/v1/meetings/{meeting_id}/carried", responses=errors(401, 404))
async def carried(meeting_id: IdPath, request: Request, rt: RuntimeDep, caller: CallerDep) -> Any:
    """What each region node carried for the meeting, read from the nodes' own counters. Roles: operator, partner (its customers'), user (its own).

    Per region: bytes and frames in and out through its relay, keys its key server wrapped,
    participants connected now. A region that carried nothing shows zeros; a node that did not
    answer shows an `error` and no figures.
    """

    def check() -> None:
        with rt.db.read() as session:
            service.get_meeting(session, caller, meeting_id)

    await run_in_threadpool(check)
    signalling: Signalling = request.app.state.signalling
    return json_response({"meeting": meeting_id, "regions": await signalling.carried(meeting_id)})


@router.get("/v1/meetings/{meeting_id}/receipt", responses=errors(401, 404, 409))
async def receipt(meeting_id: IdPath, request: Request, rt: RuntimeDep, caller: CallerDep) -> Any:
    """The meeting's residency receipt: where each participant was placed and what each region node signed it carried, with inclusion proofs against a signed checkpoint. Roles: operator, partner (its customers'), user (its own).

    Only for an ended meeting (a live one is 409: its receipt is sealed when it ends). Check it
    offline with `meridian receipt verify FILE` (docs/audit.md, "Meeting residency receipts").
    """
    live_signalling = getattr(request.app.state, "signalling", None)
    if live_signalling is not None:  # a seal under way (the meeting just ended): wait for it
        await live_signalling.sealing(meeting_id)
    made = await run_in_threadpool(receipts.meeting_receipt, rt, caller, meeting_id)
    if made is None:  # ended but not sealed (no live session ended it here): seal it now
        signalling: Signalling = request.app.state.signalling
        await receipts.seal(rt, signalling.nodes, meeting_id)
        made = await run_in_threadpool(receipts.meeting_receipt, rt, caller, meeting_id)
    if made is None:
        raise ConflictError(f"meeting `{meeting_id}` could not be sealed: try again")
    return json_response(made)


@router.post("/v1/meetings/{meeting_id}/end", responses=errors(401, 404, 409))
async def end_meeting(
    meeting_id: IdPath, request: Request, rt: RuntimeDep, caller: CallerDep
) -> MeetingPublic:
    """End a live meeting; everyone in it is told. Roles: operator, partner (its customers'), user (its own)."""
    signalling: Signalling | None = getattr(request.app.state, "signalling", None)
    meeting = await end_everywhere(
        rt, signalling, meeting_id=meeting_id, caller=caller, actor=caller.actor
    )
    return MeetingPublic.model_validate(meeting)


@router.patch("/v1/meetings/{meeting_id}", responses=errors(401, 404, 409))
def update_meeting(
    meeting_id: IdPath, body: MeetingAccess, rt: RuntimeDep, caller: CallerDep
) -> MeetingPublic:
    """Lock or unlock a live meeting, turn its waiting room on or off. Roles: operator, partner (its customers'), user (its own).

    Locked: nobody new joins but the host account's own users. Waiting room: each guest waits
    until a host admits or refuses it (`/v1/meetings/{id}/waiting`). Recorded as `meeting.access`.
    """
    meeting = access.set_access(
        rt,
        caller=caller,
        meeting_id=meeting_id,
        locked=body.locked,
        waiting_room=body.waiting_room,
    )
    return MeetingPublic.model_validate(meeting)


@router.post("/v1/meetings/{meeting_id}/invite", responses=errors(401, 404, 409))
def rotate_invite(
    meeting_id: IdPath, request: Request, rt: RuntimeDep, caller: CallerDep
) -> MeetingInvite:
    """Issue a live meeting a new invite: earlier join links stop working. Roles: operator, partner (its customers'), user (its own).

    The new invite is shown only in this answer (only its hash is stored); recorded as
    `meeting.invite`. People already in the meeting stay.
    """
    invite = access.rotate_invite(rt, caller=caller, meeting_id=meeting_id)
    return MeetingInvite(
        meeting=meeting_id,
        invite=invite,
        join_url=join_link(str(request.base_url), meeting_id, invite),
    )


@router.get("/v1/meetings/{meeting_id}/waiting", responses=errors(401, 404))
async def waiting(
    meeting_id: IdPath, request: Request, rt: RuntimeDep, caller: CallerDep
) -> WaitingPublic:
    """The guests waiting in the meeting's waiting room, in the order they came. Roles: operator, partner (its customers'), user (its own)."""

    def check() -> None:
        with rt.db.read() as session:
            service.get_meeting(session, caller, meeting_id)

    await run_in_threadpool(check)
    signalling: Signalling = request.app.state.signalling
    guests = signalling.waiting(meeting_id)
    return WaitingPublic.model_validate({"data": guests, "count": len(guests)})


@router.post("/v1/meetings/{meeting_id}/waiting/{participant}/admit", responses=errors(401, 404))
async def admit_waiting(
    meeting_id: IdPath, participant: IdPath, request: Request, caller: CallerDep
) -> Any:
    """Let one waiting guest in: it is then judged and placed like any joiner. Roles: operator, partner (its customers'), user (its own)."""
    signalling: Signalling = request.app.state.signalling
    await signalling.decide(meeting_id, participant, admit=True, caller=caller)
    return json_response({"meeting": meeting_id, "participant": participant, "admitted": True})


@router.post("/v1/meetings/{meeting_id}/waiting/{participant}/refuse", responses=errors(401, 404))
async def refuse_waiting(
    meeting_id: IdPath, participant: IdPath, request: Request, caller: CallerDep
) -> Any:
    """Turn one waiting guest away: it is told so and never gets a key. Roles: operator, partner (its customers'), user (its own)."""
    signalling: Signalling = request.app.state.signalling
    await signalling.decide(meeting_id, participant, admit=False, caller=caller)
    return json_response({"meeting": meeting_id, "participant": participant, "admitted": False})


# -- joining ----------------------------------------------------------------------------------

#: a session cookie came with a handshake from another origin (cross-site WebSocket hijacking)
_FOREIGN = object()


def _browser_session(websocket: WebSocket) -> Session | object | None:
    """The page session a browser's handshake carries (a browser cannot set `Authorization` on a
    WebSocket), opened as the pages open it; :data:`_FOREIGN` if it comes from another origin."""
    seal: SessionSeal | None = getattr(websocket.app.state, "sessions", None)
    cookie = websocket.cookies.get(COOKIE)
    if seal is None or not cookie:
        return None
    scheme = "https" if websocket.url.scheme == "wss" else "http"
    if websocket.headers.get("origin") != f"{scheme}://{websocket.url.netloc}":
        return _FOREIGN  # the cookie would act for its owner on someone else's page
    return seal.open(cookie)


def _demo_address(app: Any, peer: str | None, via: str) -> str | None:
    """The demo network's address in ``via`` (``?from=CN``), for a browser on this machine.

    Only a service started with ``meridian serve --demo`` has a demo network, and it answers only
    callers on loopback, which that service already trusts as a proxy (so they could send the
    same address in ``X-Forwarded-For``; a browser cannot set that header on a WebSocket). The
    address is then judged like any other: the decision's evidence shows it.
    """
    network: dict[str, str] | None = getattr(app.state, "demo_network", None)
    if network is None or peer not in ("127.0.0.1", "::1"):
        return None
    return network.get(via.upper())


@router.websocket("/v1/meetings/{meeting_id}/signal")
async def signal(websocket: WebSocket, meeting_id: str) -> None:
    """Join a meeting: send `{"type": "join", "name", "public_key", "signing_key", "invite"}`; see
    docs/data-plane.md.

    The caller is the `Authorization: Bearer` token, or else (a browser on the meeting page) the
    page session in the cookie, accepted only from this origin; without either, a guest.
    """
    app = websocket.app
    rt = app.state.runtime
    signalling: Signalling = app.state.signalling
    trusted: TrustedProxies = app.state.trusted_proxies
    peer = websocket.client.host if websocket.client else None
    ip = client_ip(peer, websocket.headers.get("x-forwarded-for"), trusted)
    via = websocket.query_params.get("from")
    connect_ip = None
    if via is not None:
        connect_ip = ip  # the relay still sees this machine's own address
        ip = _demo_address(app, peer, via)
    auth = websocket.headers.get("authorization")
    session = None if auth else _browser_session(websocket)
    if session is _FOREIGN:
        await websocket.close(code=Close.FORBIDDEN)  # before accepting: the handshake fails (403)
        return
    await websocket.accept()
    participant: str | None = None

    async def next_text() -> str | None:
        """The next text message (``None`` for a binary one); a disconnect raises."""
        message = await websocket.receive()
        if message["type"] == "websocket.disconnect":
            raise WebSocketDisconnect(message.get("code", Close.NORMAL))
        text: str | None = message.get("text")
        return text

    async def send(message: dict[str, Any]) -> None:
        try:
            await websocket.send_text(json.dumps(message))
        except WebSocketDisconnect as exc:
            raise ConnectionError("the participant is gone") from exc

    try:
        # before anything reads the database: a NUL here is a 500 on PostgreSQL
        check_id(meeting_id, "meeting id")
        if via is not None and ip is None:
            raise InputError(
                f"`from={shown(via)}` is only for the demo's simulated network: a service started "
                "with `meridian serve --demo`, from this machine, and one of its places"
            )
        caller = None
        if isinstance(session, Session):
            try:
                # as the pages: a signed-out session (on any replica) is no session
                caller = await run_in_threadpool(
                    session_caller, rt, session.sid, session.token, app.state.tokens.get
                )
            except (AuthenticationError, ForbiddenError):
                caller = None  # revoked, or its account suspended: as the pages, a guest
        if auth:
            scheme, _, secret = auth.partition(" ")
            if scheme.lower() != "bearer" or not secret.strip():
                raise AuthenticationError(
                    "malformed `Authorization` header: expected `Bearer <token>`"
                )
            caller = await authenticate_counted(websocket, secret.strip())  # failures counted
        try:
            text = await asyncio.wait_for(next_text(), timeout=30)
            first = json.loads(text or "null")
        except (ValueError, TimeoutError):
            raise InputError('expected `{"type": "join", "name", "public_key"}` first') from None
        if not isinstance(first, dict) or first.get("type") != "join":
            raise InputError('expected `{"type": "join", "name", "public_key"}` first')
        # a join counts per token, a guest's per client address (api.ratelimit), before it is
        # judged: a malformed or refused join costs its sender as much as an admitted one
        await rate_limits(app).hit(
            "joins", caller.token_id if caller is not None else connection_ip(websocket)
        )
        name = first.get("name") or "guest"
        if not isinstance(name, str) or len(name) > 200 or not name.isprintable():
            raise InputError("`name` must be printable text of at most 200 characters")
        try:
            plain_name(name)
        except ValueError as exc:
            raise InputError(f"`name`: {exc}") from None
        public_key = check_public_key(from_b64url(first.get("public_key"), "`public_key`"))
        signing_key = check_signing_key(from_b64url(first.get("signing_key"), "`signing_key`"))
        invite = access.parse_invite(first.get("invite"))

        async def gone() -> None:
            """Ends when the socket closes (while its owner waits in the waiting room)."""
            while True:
                await next_text()  # nothing is expected until admitted: ignored

        watcher = asyncio.ensure_future(gone())
        try:
            message = await signalling.join(
                meeting_id,
                name=name,
                public_key=public_key,
                caller=caller,
                client_ip=ip,
                connect_ip=connect_ip,
                signing_key=signing_key,
                send=send,
                close=websocket.close,
                invite=invite,
                gone=watcher,
            )
        finally:
            watcher.cancel()
            with contextlib.suppress(asyncio.CancelledError, WebSocketDisconnect):
                await watcher
        if message["type"] == "admitted":
            participant = message["participant"]  # from here on, leaving must be handled
        await send(message)
        if participant is None:
            await websocket.close(code=Close.FORBIDDEN)
            return
        while True:  # `connected` once the relay said ready; closing the socket is leaving
            try:
                said = json.loads(await next_text() or "null")
            except ValueError:
                continue
            if not isinstance(said, dict):
                continue
            if said.get("type") == "connected":
                await signalling.connected(meeting_id, participant)
            elif said.get("type") in ("admit", "refuse") and caller is not None:
                # a host's own page deciding on a waiting guest, as the API's waiting endpoints
                try:
                    await signalling.decide(
                        meeting_id,
                        str(said.get("participant"))[:100],
                        admit=said["type"] == "admit",
                        caller=caller,
                    )
                except MeridianError as exc:
                    await send({"type": "error", "code": error_code(exc), "message": exc.message})
    except (WebSocketDisconnect, ConnectionError):
        pass
    except MeridianError as exc:
        code = (
            Close.UNAUTHENTICATED
            if isinstance(exc, AuthenticationError)
            else (Close.MALFORMED if isinstance(exc, InputError) else Close.FORBIDDEN)
        )
        refusal: dict[str, Any] = {
            "type": "refused",
            "code": error_code(exc),
            "message": exc.message,
        }
        if isinstance(exc, RateLimitedError):
            code = Close.RATE_LIMITED  # the refusal says `retry_after`
            refusal["retry_after"] = exc.retry_after
        try:
            await send(refusal)
            await websocket.close(code=code)
        except (RuntimeError, ConnectionError, WebSocketDisconnect):
            pass
    finally:
        if participant is not None:
            await signalling.leave(meeting_id, participant)
