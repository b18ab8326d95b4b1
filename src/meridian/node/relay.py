"""The relay of a region node: rooms of participant sockets, and cascade links between regions.

A room is one meeting on this relay: its local participants and its cascade links, at most one
link used per peer region (docs/data-plane.md §Relay). Forwarding::

    frame from a local participant ──▶ every other local participant
                                   └─▶ each linked peer region, once
    frame from a cascade link      ──▶ every local participant (never another link: the links
                                       of a meeting form a full mesh, no second hop is needed)

Frames are sealed by participants and forwarded unchanged; the relay reads nothing but their
length and holds no meeting key. Every socket has its own :class:`Outbox` and writer task, so a
slow receiver delays only itself; one that falls :data:`BACKLOG_LIMIT` bytes behind is closed.

Refusals close the socket with the code of the error's class: 4400 malformed (:class:`InputError`),
4401 grant problems (:class:`GrantError`), 4403 fenced out (:class:`FenceError`), 4410 the
meeting ended (:class:`EndedError`), 4451 removed (:class:`RemovedError`).

Who may open what:

- ``/v1/relay`` takes a participant's ``relay`` grant, once (its ``jti`` is remembered until it
  expires), and keeps the socket only until the grant expires, unless the participant renews
  it on the socket with ``{"type": "renew", "grant": <a fresh relay grant>}`` (same meeting,
  participant and region, itself used once).
- ``/v1/cascade`` takes only a ``link`` grant, which only nodes hold: the control plane gives
  each node the links of a meeting (:meth:`Relay.add_links`) when it places a participant
  there. A participant's grant is refused at the cascade door (4401).

A drop order (a ``drop`` grant, :meth:`Relay.drop`) closes the named participants' sockets (with
the order's close code: 4451 removed, 1000 left), takes them out of the room so nothing more
reaches them and nothing they send is forwarded, and remembers them: their grants are refused
afterwards. An end order (a ``drop`` grant with ``end``) does that to the whole meeting: every
socket and link of it is closed (4410), and its relay and link grants are refused afterwards.

INVARIANT: rooms, outboxes and counters are touched only from the node's event-loop thread.
"""

from __future__ import annotations

import asyncio
import contextlib
import heapq
import ipaddress
import json
import logging
import time
from collections import deque
from collections.abc import Awaitable, Callable, Coroutine, Mapping
from dataclasses import dataclass, field
from typing import Any

import jwt
from starlette.websockets import WebSocket, WebSocketDisconnect
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed, InvalidHandshake, InvalidURI

from ..errors import (
    EndedError,
    FenceError,
    GrantError,
    InputError,
    MeridianError,
    RemovedError,
    shown,
)
from ..http.network import TrustedProxies, client_ip
from ..keys.grants import GRANT_SECONDS, Grant, GrantVerifier
from ..keys.media import FRAME_MAGIC, FrameKind
from ..wire import Close
from .counters import MeetingCounters, NodeCounters

__all__ = [
    "BACKLOG_LIMIT",
    "EVERY_LAYER",
    "LAYERS",
    "MAX_FRAME_BYTES",
    "VIDEO_HIGH",
    "VIDEO_LOW",
    "Link",
    "Member",
    "Outbox",
    "Relay",
    "Room",
    "close_code",
    "media_kind",
]

log = logging.getLogger("meridian.node")

#: close codes a drop order may ask for: removed (the default), left, ended
_DROP_CODES = frozenset({Close.REMOVED, Close.NORMAL, Close.ENDED})
#: the largest frame a relay accepts, from a participant or a peer
MAX_FRAME_BYTES = 16 * 1024 * 1024
#: bytes waiting for one socket before it is closed as too slow
BACKLOG_LIMIT = 32 * 1024 * 1024
#: how long a new socket has to send its grant, and a peer to answer a cascade
GRANT_WAIT_SECONDS = 10.0
CASCADE_TIMEOUT_SECONDS = 5.0
_REASON_BYTES = 123  # the most a WebSocket close reason can carry
#: the kind bytes of media frames (docs/data-plane.md §Frames): everything but chat
_MEDIA_KINDS = frozenset(int(k) for k in FrameKind if k.is_media)
VIDEO_HIGH = int(FrameKind.VIDEO_HIGH)
VIDEO_LOW = int(FrameKind.VIDEO_LOW)
#: an outbox that takes every video quality: a cascade link
EVERY_LAYER = 0
#: the qualities a participant may ask its relay for (``{"type": "layer", "layer": …}``)
LAYERS = {"high": VIDEO_HIGH, "low": VIDEO_LOW}

SendBytes = Callable[[bytes], Awaitable[None]]


def media_kind(frame: bytes) -> int:
    """The kind byte of ``frame`` if it is a sealed media frame, else 0.

    Read from the cleartext header only (the relay opens nothing): a frame that is not ``MF2``
    or is chat is forwarded like any other, and not counted as media.
    """
    if len(frame) > 3 and frame[3] in _MEDIA_KINDS and frame.startswith(FRAME_MAGIC):
        return frame[3]
    return 0


def close_code(exc: MeridianError) -> Close:
    """The WebSocket close code of a refusal."""
    if isinstance(exc, EndedError):
        return Close.ENDED
    if isinstance(exc, RemovedError):
        # dropped, or refused after being dropped; the reason is the removal's
        return Close.REMOVED
    if isinstance(exc, FenceError):
        return Close.FORBIDDEN
    if isinstance(exc, GrantError):
        return Close.UNAUTHENTICATED
    return Close.MALFORMED


def _reason(message: str) -> str:
    raw = message.encode("utf-8")
    if len(raw) <= _REASON_BYTES:
        return message
    return raw[: _REASON_BYTES - 3].decode("utf-8", "ignore") + "…"


class Outbox:
    """Frames waiting to go out on one socket, written in order by :meth:`run` (one task)."""

    __slots__ = (
        "_backlog",
        "_counters",
        "_frames",
        "_on_overflow",
        "_ready",
        "_send",
        "closed",
        "layer",
    )

    def __init__(
        self,
        send: SendBytes,
        counters: MeetingCounters,
        on_overflow: Callable[[], None],
        *,
        layer: int = VIDEO_HIGH,
    ) -> None:
        self._send = send
        self._counters = counters
        self._on_overflow = on_overflow
        self._frames: deque[bytes] = deque()
        self._ready = asyncio.Event()
        self._backlog = 0
        self.closed = False
        #: the video quality this socket takes (a :class:`FrameKind` value), or
        #: :data:`EVERY_LAYER` (a cascade link: the peer relay chooses for its own participants)
        self.layer = layer

    def put(self, frame: bytes) -> None:
        """Queue ``frame`` (the hot path: no await, no lock)."""
        if self.closed:
            return
        self._frames.append(frame)
        self._backlog += len(frame)
        if self._backlog > BACKLOG_LIMIT:
            self.closed = True
            self._frames.clear()
            self._on_overflow()
            return
        self._ready.set()

    def shut(self) -> None:
        """Take no more frames and drop those waiting; :meth:`run` ends after its current write."""
        self.closed = True
        self._frames.clear()
        self._backlog = 0
        self._ready.set()

    async def run(self) -> None:
        """Write queued frames until cancelled or the socket fails."""
        frames, counters = self._frames, self._counters
        try:
            while not self.closed:
                await self._ready.wait()
                self._ready.clear()
                while frames:
                    frame = frames.popleft()
                    self._backlog -= len(frame)
                    await self._send(frame)
                    counters.bytes_out += len(frame)
                    counters.frames_out += 1
                    if media_kind(frame):
                        counters.media_bytes_out += len(frame)
                        counters.media_frames_out += 1
        except (OSError, RuntimeError, WebSocketDisconnect, ConnectionClosed):
            pass  # the socket is gone; its reader sees that and leaves
        finally:
            self.closed = True


@dataclass(eq=False)
class Link:
    """One cascade link of a room to a peer region's relay, opened by either side."""

    peer: str
    outbox: Outbox
    close: Callable[[], Coroutine[Any, Any, None]]
    inbound: bool


@dataclass(eq=False)
class Member:
    """One participant's socket in a room."""

    participant: str
    outbox: Outbox
    ws: WebSocket
    #: dropped by order of the control plane: what it still sends is not forwarded
    dropped: bool = False
    #: the grant it was admitted with (or last renewed with): its expiry ends the session
    grant: Grant | None = None
    expiry: asyncio.TimerHandle | None = None


@dataclass(eq=False)
class Room:
    """One meeting on this relay."""

    meeting: str
    counters: MeetingCounters
    locals: list[Outbox] = field(default_factory=list)
    members: list[Member] = field(default_factory=list)
    #: the link each frame goes out on, per peer region: the first one this room had
    links: dict[str, Link] = field(default_factory=dict)
    every_link: list[Link] = field(default_factory=list)
    opening: dict[str, asyncio.Task[None]] = field(default_factory=dict)

    def from_local(self, source: Outbox, frame: bytes) -> None:
        kind = self._count(frame)
        if kind < VIDEO_HIGH:
            for out in self.locals:
                if out is not source:
                    out.put(frame)
        else:
            # one video quality per receiver: the one it asked for
            for out in self.locals:
                if out is not source and out.layer == kind:
                    out.put(frame)
        # every quality goes over each link: the peer relay picks for its own participants
        for link in self.links.values():
            link.outbox.put(frame)

    def from_cascade(self, frame: bytes) -> None:
        kind = self._count(frame)
        for out in self.locals:
            if kind < VIDEO_HIGH or out.layer == kind:
                out.put(frame)

    def _count(self, frame: bytes) -> int:
        """Count ``frame`` in; its media kind (0 when it is not media)."""
        counters = self.counters
        size = len(frame)
        counters.bytes_in += size
        counters.frames_in += 1
        kind = media_kind(frame)
        if kind:
            counters.media_bytes_in += size
            counters.media_frames_in += 1
        return kind

    def add_link(self, link: Link) -> None:
        self.every_link.append(link)
        self.links.setdefault(link.peer, link)

    def remove_link(self, link: Link) -> None:
        if link in self.every_link:
            self.every_link.remove(link)
        if self.links.get(link.peer) is link:
            del self.links[link.peer]
            for other in self.every_link:
                if other.peer == link.peer:
                    self.links[link.peer] = other
                    break

    def detach_links(self) -> list[Link]:
        """Every link of the room, which forgets them all."""
        links, self.every_link = self.every_link, []
        self.links = {}
        return links


def _same_address(granted: str | None, seen: str | None) -> bool:
    if granted is None or seen is None:
        return False
    try:
        a, b = ipaddress.ip_address(granted), ipaddress.ip_address(seen)
    except ValueError:
        return False
    if isinstance(a, ipaddress.IPv6Address) and a.ipv4_mapped is not None:
        a = a.ipv4_mapped
    if isinstance(b, ipaddress.IPv6Address) and b.ipv4_mapped is not None:
        b = b.ipv4_mapped
    return a == b


def _claimed_region(token: object) -> str:
    """The ``dc`` a token claims, read without checking it (the verifier checks it next)."""
    if not isinstance(token, str):
        return ""
    try:
        claims = jwt.decode(token, options={"verify_signature": False})
    except jwt.PyJWTError:
        return ""
    dc = claims.get("dc")
    return dc if isinstance(dc, str) else ""


def cascade_url(base: str) -> str:
    """The cascade endpoint of a peer whose base URL is ``base`` (``http(s)://`` or ``ws(s)://``)."""
    base = base.rstrip("/")
    if base.startswith("https://"):
        base = "wss://" + base[len("https://") :]
    elif base.startswith("http://"):
        base = "ws://" + base[len("http://") :]
    return base + "/v1/cascade"


class Relay:
    """The rooms of one region's relay, and its cascade links to peer regions."""

    def __init__(
        self,
        region: str,
        verifier: GrantVerifier,
        counters: NodeCounters,
        *,
        trusted: TrustedProxies,
        peers: Mapping[str, str],
    ) -> None:
        self.region = region
        self.verifier = verifier
        self.counters = counters
        self.trusted = trusted
        self.peers = dict(peers)
        self.rooms: dict[str, Room] = {}
        #: per meeting, the participants dropped by order: until when they are refused, and why
        self.dropped: dict[str, dict[str, tuple[float, str]]] = {}
        #: meetings ended by order: until when their grants are refused, and why
        self.ended: dict[str, tuple[float, str]] = {}
        #: per meeting, per peer region: the latest link grant the control plane gave this node
        self.link_grants: dict[str, dict[str, tuple[str, Grant]]] = {}
        #: relay grants already used (``jti``), until they expire; and their expiries in order
        self._used: dict[str, float] = {}
        self._used_order: list[tuple[float, str]] = []
        self._tasks: set[asyncio.Task[Any]] = set()

    # -- participants ---------------------------------------------------------------------

    async def serve_participant(self, ws: WebSocket) -> None:
        """``/v1/relay``: admit one participant with its grant, then forward its frames."""
        await ws.accept()
        try:
            token = await _first_grant(ws)
            grant = self._admit(ws, token)
        except MeridianError as exc:
            await _refuse(ws, exc)
            return
        except _GoneError:
            return
        # INVARIANT: no await from the check above to joining the room, so a drop order either
        # finds this member or was remembered before the check
        room = self._room(grant.meeting)
        outbox = Outbox(ws.send_bytes, room.counters, lambda: self._too_slow(ws))
        member = Member(grant.participant, outbox, ws, grant=grant)
        self._expire_at(room, member, grant)
        writer = self._spawn(outbox.run())
        room.locals.append(outbox)
        room.members.append(member)
        room.counters.participants += 1
        try:
            await self._open_links(room)
            await ws.send_text(json.dumps({"type": "ready", "dc": self.region}))
            receive = ws.receive
            while True:
                message = await receive()
                if member.dropped:
                    break
                frame = message.get("bytes")
                if frame is not None:
                    room.from_local(outbox, frame)
                elif message["type"] == "websocket.disconnect":
                    break
                else:
                    try:
                        self._control(ws, room, member, message.get("text"))
                    except MeridianError as exc:
                        member.dropped = True
                        self._leave(room, member)
                        await _refuse(ws, exc)
                        break
        except (OSError, RuntimeError, WebSocketDisconnect):
            pass  # the participant went away mid-send
        finally:
            writer.cancel()
            if member.expiry is not None:
                member.expiry.cancel()
            self._leave(room, member)

    def _admit(self, ws: WebSocket, token: object) -> Grant:
        """The checked relay grant of a new socket, now used (its ``jti`` is remembered)."""
        grant = self.verifier.verify(token, typ="relay")
        self._check_address(ws, grant)
        self._check_not_ended(grant.meeting)
        self._check_not_dropped(grant)
        self._use(grant)
        return grant

    def _use(self, grant: Grant) -> None:
        """Mark a relay grant used: it opens one socket (or renews one) once."""
        now = time.time()
        used, order = self._used, self._used_order
        while order and order[0][0] <= now:
            _, old = heapq.heappop(order)
            used.pop(old, None)
        if not grant.jti:
            raise GrantError("invalid grant: it has no `jti`, so it could be used twice")
        if grant.jti in used:
            raise GrantError("grant already used: ask the control plane for a new one")
        used[grant.jti] = float(grant.expires)
        heapq.heappush(order, (float(grant.expires), grant.jti))

    def _control(self, ws: WebSocket, room: Room, member: Member, text: object) -> None:
        """A text message after ``ready``: a renewal, ``{"type": "renew", "grant": …}``, or the
        video quality the participant takes, ``{"type": "layer", "layer": "high" | "low"}``."""
        try:
            body = json.loads(text) if isinstance(text, str) else None
        except ValueError:
            body = None
        kind = body.get("type") if isinstance(body, dict) else None
        if isinstance(body, dict) and kind == "layer":
            layer = body.get("layer")
            if not isinstance(layer, str) or layer not in LAYERS:
                raise InputError(f"video layer `{shown(layer)}` is not `high` or `low`")
            member.outbox.layer = LAYERS[layer]
            return
        if not isinstance(body, dict) or kind != "renew":
            raise InputError(
                'expected binary frames, `{"type": "renew", "grant": "<token>"}` or '
                '`{"type": "layer", "layer": "high"}` after `ready`'
            )
        self._renew(ws, room, member, body)

    def _renew(self, ws: WebSocket, room: Room, member: Member, body: dict[str, Any]) -> None:
        """A renewal: a fresh relay grant for the same meeting, participant and region."""
        grant = self.verifier.verify(body.get("grant"), typ="relay")
        held = member.grant
        if held is None or (grant.meeting, grant.participant) != (held.meeting, held.participant):
            raise GrantError("a renewal must be for the same meeting, participant and region")
        self._check_address(ws, grant)
        self._check_not_ended(grant.meeting)
        self._check_not_dropped(grant)
        self._use(grant)
        member.grant = grant
        self._expire_at(room, member, grant)

    def _expire_at(self, room: Room, member: Member, grant: Grant) -> None:
        """(Re)arm the timer that ends ``member``'s session when its grant expires."""
        if member.expiry is not None:
            member.expiry.cancel()
        loop = asyncio.get_running_loop()
        delay = max(grant.expires - time.time(), 0.0)
        member.expiry = loop.call_later(delay, self._expired, room, member)

    def _expired(self, room: Room, member: Member) -> None:
        if member.dropped:
            return
        member.dropped = True
        member.outbox.shut()
        self._leave(room, member)
        why = "expired grant: ask the control plane for a new one"
        self._spawn(_quietly(member.ws.close(Close.UNAUTHENTICATED, why)))

    def _check_address(self, ws: WebSocket, grant: Grant) -> None:
        peer = ws.client.host if ws.client else None
        forwarded = ", ".join(ws.headers.getlist("x-forwarded-for")) or None
        seen = client_ip(peer, forwarded, self.trusted)
        if not _same_address(grant.ip, seen):
            raise GrantError(
                f"grant for address `{shown(grant.ip)}` presented from `{shown(seen)}`"
            )

    def _check_not_ended(self, meeting: str) -> None:
        ended = self.ended.get(meeting)
        if ended is not None and time.time() < ended[0]:
            raise EndedError(ended[1])

    def _check_not_dropped(self, grant: Grant) -> None:
        dropped = self.dropped.get(grant.meeting, {}).get(grant.participant)
        if dropped is not None and time.time() < dropped[0]:
            raise RemovedError(dropped[1])

    async def drop(self, grant: Grant) -> list[str]:
        """Carry out a drop order (a checked ``drop`` grant): close the named participants'
        sockets here with :attr:`Close.REMOVED` and refuse their grants from now on. Returns
        the ids that had a socket here.

        They are remembered until one grant lifetime after the order expires. INVARIANT: the
        control plane signs the order after every grant of theirs (a participant id is never
        granted again once removed), so by then each of their grants has expired.
        """
        now = time.time()
        self._prune(now)
        if grant.end:
            return await self.end(grant)
        reason = grant.reason or "removed from the meeting"
        code = grant.code if grant.code in _DROP_CODES else Close.REMOVED
        until = float(grant.expires + max(grant.lifetime, GRANT_SECONDS))
        remembered = self.dropped.setdefault(grant.meeting, {})
        for participant in grant.drop:
            before = remembered.get(participant, (0.0, reason))[0]
            remembered[participant] = (max(before, until), reason)
        room = self.rooms.get(grant.meeting)
        if room is None:
            return []
        targets = set(grant.drop)
        members = [m for m in room.members if m.participant in targets]
        for member in members:
            member.dropped = True
            member.outbox.shut()
            self._leave(room, member)
        await asyncio.gather(*(_quietly(m.ws.close(code, _reason(reason))) for m in members))
        for member in members:
            log.warning(
                "meeting %s: participant %s dropped by order: %s",
                grant.meeting,
                member.participant,
                reason,
            )
        return sorted({m.participant for m in members})

    async def end(self, grant: Grant) -> list[str]:
        """Carry out an end order (a checked ``drop`` grant with ``end``): close every socket
        and link of the meeting here (4410) and refuse its grants, relay and link, from now on
        (until one grant lifetime after the order expires). Returns the participants closed."""
        reason = grant.reason or "the meeting ended"
        until = float(grant.expires + max(grant.lifetime, GRANT_SECONDS))
        before = self.ended.get(grant.meeting, (0.0, reason))[0]
        self.ended[grant.meeting] = (max(before, until), reason)
        self.link_grants.pop(grant.meeting, None)
        room = self.rooms.get(grant.meeting)
        if room is None:
            return []
        members = list(room.members)
        for member in members:
            member.dropped = True
            member.outbox.shut()
            if member.expiry is not None:
                member.expiry.cancel()
        room.members.clear()
        room.locals.clear()
        room.counters.participants = 0
        links = room.detach_links()
        for task in list(room.opening.values()):
            task.cancel()
        self._forget(room)
        closing = [_quietly(m.ws.close(Close.ENDED, _reason(reason))) for m in members]
        closing += [_quietly(link.close()) for link in links]
        await asyncio.gather(*closing)
        log.warning("meeting %s: ended by order: %d sockets closed", grant.meeting, len(members))
        return sorted({m.participant for m in members})

    def _prune(self, now: float) -> None:
        for meeting, (until, _) in list(self.ended.items()):
            if until <= now:
                del self.ended[meeting]
        for meeting, remembered in list(self.dropped.items()):
            for participant, (until, _) in list(remembered.items()):
                if until <= now:
                    del remembered[participant]
            if not remembered:
                del self.dropped[meeting]

    def _leave(self, room: Room, member: Member) -> None:
        if member in room.members:
            room.members.remove(member)
        if member.outbox in room.locals:
            room.locals.remove(member.outbox)
            room.counters.participants -= 1
        if room.locals:
            return
        # the last local participant left: the meeting's cascades go with it
        for link in room.detach_links():
            self._spawn(_quietly(link.close()))
        self._forget(room)

    def _too_slow(self, ws: WebSocket) -> None:
        self._spawn(
            _quietly(ws.close(Close.TOO_SLOW, "too slow: the relay's backlog for you is full"))
        )

    # -- cascades -------------------------------------------------------------------------

    async def serve_cascade(self, ws: WebSocket) -> None:
        """``/v1/cascade``: accept a link from a peer relay for one meeting, then carry frames."""
        await ws.accept()
        try:
            token = await _first_grant(ws)
            # the opener presents the link grant the control plane gave it, addressed to itself
            opener = _claimed_region(token)
            grant = self.verifier.verify(token, typ="link", for_region=opener)
            self._check_not_ended(grant.meeting)
            pair = tuple(sorted((opener, self.region)))
            if opener == self.region or grant.pair != pair:
                raise FenceError(
                    f"region `{self.region}` refuses a cascade from `{shown(opener)}` for meeting "
                    f"`{shown(grant.meeting)}`: the link is not one of the meeting's"
                )
            if opener not in grant.regions:
                raise FenceError(
                    f"region `{self.region}` refuses a cascade from `{shown(opener)}` for meeting "
                    f"`{shown(grant.meeting)}`: `{shown(opener)}` is not one of its allowed regions"
                )
        except MeridianError as exc:
            await _refuse(ws, exc)
            return
        except _GoneError:
            return
        room = self._room(grant.meeting)
        link = Link(
            peer=opener,
            outbox=Outbox(
                ws.send_bytes, room.counters, lambda: self._too_slow(ws), layer=EVERY_LAYER
            ),
            close=lambda: ws.close(Close.NORMAL, "no participants left"),
            inbound=True,
        )
        room.add_link(link)
        writer = self._spawn(link.outbox.run())
        try:
            await ws.send_text(json.dumps({"type": "ready", "dc": self.region}))
            receive = ws.receive
            while True:
                message = await receive()
                frame = message.get("bytes")
                if frame is not None:
                    room.from_cascade(frame)
                elif message["type"] == "websocket.disconnect":
                    break
        except (OSError, RuntimeError, WebSocketDisconnect):
            pass
        finally:
            writer.cancel()
            room.remove_link(link)
            self._forget_if_idle(room)

    def add_links(self, meeting: str, tokens: list[object]) -> list[str]:
        """Keep the link grants the control plane gives this node for ``meeting`` (each
        ``typ=link``, addressed to this region, naming this region in its pair); open the
        ones the room lacks if it has participants. Returns the peers it may now link to.

        All or nothing: one bad grant refuses them all (:class:`GrantError`, :class:`FenceError`).
        """
        self._check_not_ended(meeting)
        checked: list[tuple[str, str, Grant]] = []
        for token in tokens:
            grant = self.verifier.verify(token, typ="link")
            if grant.meeting != meeting:
                raise GrantError(
                    f"grant for meeting `{shown(grant.meeting)}` presented for meeting "
                    f"`{shown(meeting)}`"
                )
            peers = [r for r in grant.pair if r != self.region]
            if len(grant.pair) != 2 or len(peers) != 1 or peers[0] not in grant.regions:
                raise FenceError(
                    f"region `{self.region}` refuses link `{shown('-'.join(grant.pair))}` of "
                    f"meeting `{shown(meeting)}`: not a link from this region to an allowed one"
                )
            checked.append((peers[0], str(token), grant))
        now = time.time()
        held = self.link_grants.setdefault(meeting, {})
        for peer, token, grant in checked:
            if peer not in held or held[peer][1].expires <= grant.expires:
                held[peer] = (token, grant)
        for peer, (_, grant) in list(held.items()):
            if grant.expires <= now:
                del held[peer]
        room = self.rooms.get(meeting)
        if room is not None and room.locals:
            self._spawn(self._open_links(room))
        return sorted(held)

    async def _open_links(self, room: Room) -> None:
        """Open the links the control plane gave this node for the room's meeting that the
        room does not have yet (a link grant still good is needed to open one)."""
        now = time.time()
        held = self.link_grants.get(room.meeting, {})
        waits = [
            self._link_to(room, peer, token)
            for peer, (token, grant) in sorted(held.items())
            if peer not in room.links and grant.expires > now
        ]
        if waits:
            await asyncio.gather(*waits)

    async def _link_to(self, room: Room, peer: str, token: str) -> None:
        task = room.opening.get(peer)
        if task is None:
            task = room.opening[peer] = self._spawn(self._open_link(room, peer, token))
            task.add_done_callback(lambda _: room.opening.pop(peer, None))
        # shielded: a participant leaving mid-open must not cancel the link others wait for
        await asyncio.shield(task)

    async def _open_link(self, room: Room, peer: str, token: str) -> None:
        base = self.peers.get(peer)
        if base is None:
            log.warning(
                "meeting %s: no address for peer region %s: frames will not reach it",
                room.meeting,
                peer,
            )
            return
        try:
            conn = await connect(
                cascade_url(base),
                open_timeout=CASCADE_TIMEOUT_SECONDS,
                compression=None,  # sealed frames do not compress
                max_size=MAX_FRAME_BYTES,
                proxy=None,
                user_agent_header=f"meridian-relay/{self.region}",
            )
        except (OSError, TimeoutError, InvalidHandshake, InvalidURI) as exc:
            log.warning("meeting %s: cannot open a cascade to %s: %s", room.meeting, peer, exc)
            return
        try:
            await conn.send(json.dumps({"grant": token}))
            reply = json.loads(await asyncio.wait_for(conn.recv(), CASCADE_TIMEOUT_SECONDS))
            if not isinstance(reply, dict) or reply.get("type") != "ready":
                raise ValueError(f"unexpected answer {shown(reply)}")
        except ConnectionClosed as exc:
            why = exc.rcvd.reason if exc.rcvd else "closed"
            log.warning("meeting %s: region %s refused the cascade: %s", room.meeting, peer, why)
            return
        except (OSError, TimeoutError, ValueError) as exc:
            log.warning("meeting %s: cascade to %s failed: %s", room.meeting, peer, exc)
            await conn.close()
            return
        if self.rooms.get(room.meeting) is not room:  # everyone left while the link opened
            await conn.close()
            return
        link = Link(
            peer=peer,
            outbox=Outbox(
                conn.send, room.counters, lambda: self._close_slow_link(conn), layer=EVERY_LAYER
            ),
            close=conn.close,
            inbound=False,
        )
        room.add_link(link)
        self._spawn(self._carry(room, link, conn))

    def _close_slow_link(self, conn: ClientConnection) -> None:
        self._spawn(
            _quietly(conn.close(Close.TOO_SLOW, "too slow: the relay's backlog for you is full"))
        )

    async def _carry(self, room: Room, link: Link, conn: ClientConnection) -> None:
        """Forward what a link this relay opened brings in, until it closes."""
        writer = self._spawn(link.outbox.run())
        try:
            async for frame in conn:
                if isinstance(frame, bytes):
                    room.from_cascade(frame)
        except ConnectionClosed:
            pass
        finally:
            writer.cancel()
            room.remove_link(link)
            self._forget_if_idle(room)

    # -- rooms and tasks ------------------------------------------------------------------

    def _room(self, meeting: str) -> Room:
        room = self.rooms.get(meeting)
        if room is None:
            room = self.rooms[meeting] = Room(meeting, self.counters.meeting(meeting))
        return room

    def _forget(self, room: Room) -> None:
        if self.rooms.get(room.meeting) is room:
            del self.rooms[room.meeting]

    def _forget_if_idle(self, room: Room) -> None:
        if not room.locals and not room.every_link and not room.opening:
            self._forget(room)

    def _spawn(self, coro: Coroutine[Any, Any, Any]) -> asyncio.Task[Any]:
        task = asyncio.get_running_loop().create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return task

    async def close(self) -> None:
        """Close every cascade link and stop every task (the node is shutting down)."""
        for room in list(self.rooms.values()):
            for link in room.detach_links():
                await _quietly(link.close())
        self.rooms.clear()
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)


class _GoneError(Exception):
    """The socket closed before it said anything."""


async def _first_grant(ws: WebSocket) -> object:
    """The ``grant`` of the first message, ``{"grant": "<jwt>"}``."""
    try:
        message = await asyncio.wait_for(ws.receive(), GRANT_WAIT_SECONDS)
    except TimeoutError:
        raise InputError(
            f'no grant within {GRANT_WAIT_SECONDS:g} s: send `{{"grant": "<token>"}}` first'
        ) from None
    if message["type"] == "websocket.disconnect":
        raise _GoneError
    text = message.get("text")
    if text is None:
        raise InputError('the first message must be the text `{"grant": "<token>"}`')
    try:
        body = json.loads(text)
    except ValueError:
        raise InputError(
            f'the first message `{shown(text)}` is not JSON: send `{{"grant": "<token>"}}`'
        ) from None
    if not isinstance(body, dict):
        raise InputError(
            f'the first message `{shown(text)}` is not an object: send `{{"grant": "<token>"}}`'
        )
    return body.get("grant")


async def _quietly(closing: Awaitable[None]) -> None:
    """Close a socket that may already be gone."""
    with contextlib.suppress(OSError, RuntimeError, WebSocketDisconnect, ConnectionClosed):
        await closing


async def _refuse(ws: WebSocket, exc: MeridianError) -> None:
    with contextlib.suppress(OSError, RuntimeError, WebSocketDisconnect):
        await ws.close(close_code(exc), _reason(exc.message))
