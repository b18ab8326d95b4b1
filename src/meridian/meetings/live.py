"""Live meetings in the control plane: admitting joiners, handing out grants and keys, rotating.

:class:`Signalling` is what the ``/v1/meetings/{id}/signal`` WebSocket talks to. A join is
judged and placed (and recorded) by :func:`~meridian.meetings.service.admit`; the participant
then gets a relay grant for its data centre and its meeting key, wrapped by the key server of
the meeting's key region to the participant's own X25519 public key. When a participant leaves,
the meeting's key epoch moves on and every remaining participant gets the new key.

:meth:`Signalling.remove` takes participants out against their will (an approved lawful
request): the region nodes of the meeting are ordered to drop them (a ``drop`` grant; their
relay closes their connection with :attr:`Close.REMOVED <meridian.wire.Close>` and refuses
them from then on), their signalling socket gets ``removed`` and is closed with the same code,
and the rest of the meeting is left exactly as when someone leaves: told ``left``, given a new
key epoch.

Each participant's frames are signed with its own Ed25519 key, whose public half it sends in
``join``; the control plane lists it in the meeting's roster, which it signs with its grant key
(:func:`~meridian.keys.sign_roster`) and hands out whenever it changes: in ``admitted``, in
``roster``, and as ``members`` to everyone connected (docs/data-plane.md §Roster).

Before any placement a joiner must be let in (:func:`~meridian.meetings.access.enter`): with
the meeting's invite unless it is one of the host account's own users, not while the meeting is
locked, and, when the waiting room is on, only once a host admits it (:meth:`Signalling.decide`,
from the API or from a host's own meeting page); until then it is told ``waiting`` and holds no
participation, grant or key.

Key epochs come from the database and only increase (:func:`~meridian.meetings.access.advance_epoch`):
a new live session takes the next one, and so does each rotation. Rotation after a leave or a
removal is mandatory: if it cannot happen (the key region's key server is down, the database
fails), the meeting is **paused** (everyone told ``paused``, with the reason; clients stop
sending; joins are refused; recorded), the rotation is retried every
:data:`PAUSE_RETRY_SECONDS`, and the meeting ends, recorded, if it still cannot rotate after
:data:`PAUSE_LIMIT_SECONDS`. Nobody keeps sending under a key a leaver holds.

Joins are placed one at a time (one lock for the control plane, and across replicas the
placement lock in the database: :func:`~meridian.meetings.service.count_places`), so capacity is
counted exactly and globally;
each meeting's joins, leaves and rotations are serialised by the meeting's own lock, so a key
epoch never goes to a participant out of order.

Fail closed: a region whose node is not configured, or that the health checker marked down
(:mod:`meridian.meetings.health`), has no room; a key region whose key server
cannot be reached refuses the join (and the participation is closed again); a relay that cannot
be reached to drop a removed participant does not stop the removal (the new key epoch keeps the
participant out of what follows), and is logged and recorded with the removal.

What is said to the nodes goes over HTTP through :class:`~meridian.meetings.nodes.RegionNodes`
(key requests, drop and end orders, links, counters); this module decides what to say.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import secrets
from collections.abc import Awaitable, Callable, Collection
from dataclasses import dataclass, field
from typing import Any

import httpx
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
from sqlalchemy import select, update
from starlette.websockets import WebSocketDisconnect

from .. import wire
from ..audit import Actor, record
from ..errors import (
    ConflictError,
    ForbiddenError,
    InputError,
    KeyServerError,
    NotFoundError,
    shown,
)
from ..identity.tokens import Caller
from ..keys import RosterMember, b64url, from_b64url
from ..keys.grants import Grant, GrantSigner, public_key_b64
from ..runtime import Runtime
from ..storage.models import Meeting, MeetingStatus, Participation, new_id
from ..storage.orders import Received, publish
from .access import advance_epoch, enter
from .blocks import active_blocks, removal_reason
from .nodes import RegionNodes
from .placement import MeetingPlan, Occupancy, links_between
from .receipts import seal
from .regions import region_table
from .service import admit, count_places, end_meeting, get_meeting, leave, meeting_spread

__all__ = ["LiveMeeting", "LiveParticipant", "Signalling"]

log = logging.getLogger("meridian.meetings.live")

Send = Callable[[dict[str, Any]], Awaitable[None]]
#: closes a participant's signalling socket with a close code and reason
Close = Callable[[int, str], Awaitable[None]]

#: how often a paused meeting tries its rotation again, and how long before it is ended instead
PAUSE_RETRY_SECONDS = 2.0
PAUSE_LIMIT_SECONDS = 60.0
#: how many guests may wait for a host in one meeting, and for how long each
MAX_WAITING = 50
WAIT_SECONDS = 600.0
_REASON_BYTES = 123  # the most a WebSocket close reason can carry


@dataclass
class LiveParticipant:
    id: str
    name: str
    dc: str
    country: str
    public_key: bytes
    send: Send
    #: closes its signalling socket (``None``: the door gave no way to, it is only told)
    close: Close | None = None
    #: connected to its relay (it said so): only then is it in the roster others see
    connected: bool = False
    #: the relay grant it was admitted with, re-signed fresh for each renewal
    relay_grant: Grant | None = None
    #: sends it a fresh relay grant before the last one expires (cancelled when it goes)
    renewal: asyncio.Task[None] | None = None
    #: its Ed25519 signing public key (raw, 32 bytes), registered at admission
    signing_key: bytes = b""
    #: one of the host account's own users: hears of the waiting room, may admit and refuse
    host: bool = False
    #: the key epochs it was sent a key of (recorded when it leaves, or in the meeting's seal)
    epochs: list[int] = field(default_factory=list)


@dataclass
class Waiting:
    """A guest in a meeting's waiting room: it holds no participation, grant or key yet."""

    id: str
    name: str
    #: resolved ``True`` (admitted) or ``False`` (refused) by a host's decision
    decided: asyncio.Future[bool]
    #: why it was turned away, when not by a host (the meeting ended)
    reason: str | None = None


@dataclass(frozen=True, slots=True)
class RemoteMember:
    """A participant of the meeting connected through another replica, as the database says."""

    name: str
    signing_key: bytes
    connected: bool


@dataclass
class LiveMeeting:
    id: str
    plan: MeetingPlan
    uses: dict[str, int] = field(default_factory=dict)
    participants: dict[str, LiveParticipant] = field(default_factory=dict)
    epoch: int = 0
    lock: asyncio.Lock = field(default_factory=asyncio.Lock)
    #: the meeting's live session (shared by every replica, from the database): the key server
    #: salts each epoch per session
    session: str = field(default_factory=lambda: "s_" + secrets.token_urlsafe(9))
    #: the sequence number of the last signed roster handed out (receivers never go back); a
    #: counter in the database, shared by every replica
    roster_seq: int = 0
    #: participants connected through other replicas, read from the database before each
    #: signed roster (stale until the next read: an order makes every replica read it again)
    remote: dict[str, RemoteMember] = field(default_factory=dict)
    #: why the meeting is paused (its key could not be rotated), or ``None``
    paused: str | None = None
    retry: asyncio.Task[None] | None = None


def _close_reason(message: str) -> str:
    raw = message.encode("utf-8")
    if len(raw) <= _REASON_BYTES:
        return message
    return raw[: _REASON_BYTES - 3].decode("utf-8", "ignore") + "…"


class Signalling:
    """The control plane's live meetings; :attr:`nodes` is its way to the region nodes."""

    def __init__(
        self,
        rt: Runtime,
        signer: GrantSigner,
        node_urls: dict[str, str],
        *,
        http: httpx.AsyncClient | None = None,
    ) -> None:
        self.rt = rt
        self.signer = signer
        self.nodes = RegionNodes(signer, node_urls, http=http)
        self.meetings: dict[str, LiveMeeting] = {}
        #: per meeting, participants a removal named, with its reason: one still joining when the
        #: removal ran is refused as it registers (its participation was committed before)
        self._barred: dict[str, dict[str, str]] = {}
        self._place_lock = asyncio.Lock()
        #: per meeting, its waiting room: guests waiting for a host, by their participant ids
        self._waiting: dict[str, dict[str, Waiting]] = {}
        self._occupancy: Occupancy | None = None
        self._digest: str | None = None
        #: regions whose node the health checker marked down, and since when (ISO 8601)
        self.down_since: dict[str, str] = {}
        #: seals being made for meetings that just ended (:meth:`sealing` waits for one)
        self._seals: dict[str, asyncio.Task[None]] = {}

    @property
    def node_urls(self) -> dict[str, str]:
        """The region nodes by region code (the client's own: a change here reaches it)."""
        return self.nodes.urls

    def occupancy(self) -> Occupancy:
        """Participants per data centre across live meetings (capacity from the bundle in force)."""
        table = region_table(self.rt.engine.bundle)
        digest = self.rt.digest
        if self._occupancy is None or self._digest != digest:
            fresh = Occupancy(table, down=table.codes - set(self.node_urls))
            for code in self.down_since:
                fresh.set_down(code, True)
            if self._occupancy is not None:
                for code, used in self._occupancy.used.items():
                    if code in fresh.used:
                        fresh.used[code] = used
            self._occupancy, self._digest = fresh, digest
        return self._occupancy

    def count(self) -> None:
        """Count every replica's participants per data centre again (a database read, blocking):
        :meth:`live_load` then shows them, not only the last count this replica placed by."""
        occupancy = self.occupancy()
        with self.rt.db.read() as session:
            count_places(session, occupancy, lock=False)

    def live_load(self) -> dict[str, dict[str, Any]]:
        """Per region: participants carried, capacity, the number of live meetings using it, and
        all their ids (who may see which is :func:`meridian.meetings.regions.datacentre_rows`'s
        to decide)."""
        occ = self.occupancy()
        out: dict[str, dict[str, Any]] = {}
        for code in sorted(occ.capacity):
            using = sorted(m.id for m in self.meetings.values() if m.uses.get(code))
            out[code] = {
                "participants": occ.used[code],
                "capacity": occ.capacity[code],
                "load": round(occ.load(code), 4),
                "node": self.node_urls.get(code),
                "state": "none"
                if code not in self.node_urls
                else ("down" if code in self.down_since else "up"),
                "down_since": self.down_since.get(code),
                "meeting_count": len(using),
                "meetings": using,
            }
        return out

    async def wrapped_key(
        self, meeting: LiveMeeting, participant: LiveParticipant
    ) -> dict[str, Any]:
        """The meeting key of the current epoch, wrapped for ``participant`` by the key server."""
        region = meeting.plan.key_region
        grant = Grant(
            typ="key",
            meeting=meeting.id,
            participant=participant.id,
            dc=region,
            regions=tuple(sorted(meeting.plan.regions)),
            key_region=region,
            epoch=meeting.epoch,
            session=meeting.session,
        )
        return await self.nodes.wrapped_key(grant, participant.public_key)

    async def join(
        self,
        meeting_id: str,
        *,
        name: str,
        public_key: bytes,
        caller: Caller | None,
        client_ip: str | None,
        send: Send,
        close: Close | None = None,
        connect_ip: str | None = None,
        signing_key: bytes,
        invite: str | None = None,
        gone: Awaitable[Any] | None = None,
    ) -> dict[str, Any]:
        """Admit one participant: the ``admitted`` message, or a ``refused`` one.

        First it must be let in (:func:`~meridian.meetings.access.enter`: the ``invite``, the
        lock; refusals raise :class:`ForbiddenError`). When the meeting's waiting room is on it
        is sent ``{"type": "waiting"}`` and waits for a host's decision; ``gone`` (its socket
        closing) ends the wait.

        ``signing_key`` (raw Ed25519 public key, required) is what its frames are signed with: it
        goes in the signed roster everyone gets, which lists every participant admitted and not
        gone.

        The participant is judged by ``client_ip``; its relay grant is bound to ``connect_ip``
        (default: the same), the address its relay will see. They differ only on the demo's
        simulated network, where a browser here is judged as if from elsewhere.

        ``send`` and ``close`` reach its signalling socket; once it is gone, ``send`` raises
        :class:`ConnectionError` or :class:`RuntimeError`, and ``close`` (Starlette's
        ``WebSocket.close``) may also raise ``WebSocketDisconnect``.
        """
        entry = await asyncio.to_thread(
            enter,
            self.rt,
            meeting_id=meeting_id,
            caller=caller,
            invite=invite,
            name=name,
            client_ip=client_ip,
        )
        pid = None
        if entry.wait:
            pid = new_id("p")
            who = caller.actor if caller is not None else Actor("anonymous", client_ip or "-")
            refusal = await self._wait(meeting_id, pid, name, send, gone, who)
            if refusal is not None:
                return {"type": "refused", "code": wire.ErrorCode.FORBIDDEN, "message": refusal}
        async with self._place_lock:
            occupancy = self.occupancy()
            live = self.meetings.get(meeting_id)
            uses = dict(live.uses) if live is not None else {}
            admission = await asyncio.to_thread(
                admit,
                self.rt,
                meeting_id=meeting_id,
                name=name,
                caller=caller,
                client_ip=client_ip,
                occupancy=occupancy,
                uses=uses,
                participant_id=pid,
                # whether this is a new live session (its next epoch, never one used before) is
                # the database's to say: the meeting may be live through another replica
                signing_key=b64url(signing_key),
            )
            placement = admission.placement
            if not placement.allowed:
                return {
                    "type": "refused",
                    "code": wire.ErrorCode.DENIED,
                    "message": placement.reasons[0].message
                    if placement.reasons
                    else "no rule allows this join",
                    "decision": admission.decision,
                }
            assert placement.dc is not None
            assert admission.participation is not None
            live = self.meetings.get(meeting_id)
            assert admission.epoch is not None
            assert admission.session is not None
            if live is None:
                live = LiveMeeting(
                    meeting_id, admission.plan, epoch=admission.epoch, session=admission.session
                )
                self.meetings[meeting_id] = live
            elif admission.new_session:
                live.epoch, live.session = admission.epoch, admission.session
            else:
                live.epoch = max(live.epoch, admission.epoch)
            live.uses = uses
        participant = LiveParticipant(
            admission.participation.id,
            name,
            placement.dc,
            placement.country,
            public_key,
            send,
            close,
            signing_key=signing_key,
            host=entry.host,
        )
        async with live.lock:
            live.participants[participant.id] = participant
            barred = self._barred.get(meeting_id, {}).get(participant.id)
            if barred is not None:
                await self._forget(live, participant)
                raise ForbiddenError(f"removed from the meeting: {barred}")
            if live.paused is not None:
                await self._forget(live, participant)
                raise ConflictError(f"meeting `{meeting_id}` is paused: {live.paused}")
            try:
                key = await self.wrapped_key(live, participant)
            except KeyServerError:
                await self._forget(live, participant)
                raise
            participant.epochs.append(live.epoch)
            # the meeting's spread over every replica: its regions are cascaded wherever their
            # participants are connected through
            links = links_between(admission.spread)
            await self._give_links(live, links)
            grant = Grant(
                typ="relay",
                meeting=meeting_id,
                participant=participant.id,
                dc=placement.dc,
                regions=tuple(sorted(live.plan.regions)),
                key_region=live.plan.key_region,
                links=tuple(links),
                ip=connect_ip if connect_ip is not None else client_ip,
            )
            participant.relay_grant = grant
            participant.renewal = asyncio.get_running_loop().create_task(self._renew(participant))
            # everyone already connected learns the newcomer's signing key now, before its
            # first frame can reach them; the newcomer gets the same roster in `admitted`
            await self._sync_roster(live)
            signed = self.signed_roster(live)
            await self._tell(
                live, {"type": "members", "signed_roster": signed}, exclude=participant.id
            )
            return {
                "type": "admitted",
                "participant": participant.id,
                "meeting": meeting_id,
                "dc": placement.dc,
                "country": placement.country,
                "relay": self.nodes.relay_url(placement.dc),
                "grant": self.signer.sign(grant),
                "notices": list(placement.notices),
                "key": key,
                "roster": self.roster(live, exclude=participant.id),
                "meeting_regions": sorted(live.plan.regions),
                "key_region": live.plan.key_region,
                "links": [list(pair) for pair in links],
                "placement": placement.to_dict(),
                "roster_key": public_key_b64(self.signer.public_key),
                "signed_roster": signed,
            }

    def signed_roster(self, live: LiveMeeting) -> str:
        """The meeting's roster, signed with the grant key: every participant admitted and not
        gone, with its name and signing key. Each call is a newer roster (``seq``)."""
        live.roster_seq += 1
        members = [
            RosterMember(p.id, p.name, Ed25519PublicKey.from_public_bytes(p.signing_key))
            for p in live.participants.values()
        ] + [
            RosterMember(pid, m.name, Ed25519PublicKey.from_public_bytes(m.signing_key))
            for pid, m in live.remote.items()
            if pid not in live.participants
        ]
        return self.signer.sign_roster(
            meeting=live.id, epoch=live.epoch, seq=live.roster_seq, members=members
        )

    @staticmethod
    def roster(live: LiveMeeting, *, exclude: str | None = None) -> list[dict[str, str]]:
        """The participants connected to their relays, as others see them: id and name (those
        through other replicas as last read, :meth:`_sync_roster`)."""
        return [
            {"participant": p.id, "name": p.name}
            for p in live.participants.values()
            if p.connected and p.id != exclude
        ] + [
            {"participant": pid, "name": m.name}
            for pid, m in live.remote.items()
            if m.connected and pid != exclude and pid not in live.participants
        ]

    def _roster_state(self, meeting_id: str) -> tuple[int, dict[str, RemoteMember]]:
        """The meeting's next roster sequence number and its open participations (blocking)."""
        with self.rt.db.write() as session:
            seq = session.execute(
                update(Meeting)
                .where(Meeting.id == meeting_id)
                .values(roster_seq=Meeting.roster_seq + 1)
                .returning(Meeting.roster_seq)
            ).scalar_one_or_none()
            rows = session.execute(
                select(
                    Participation.id,
                    Participation.name,
                    Participation.signing_key,
                    Participation.connected,
                ).where(
                    Participation.meeting_id == meeting_id,
                    Participation.left_at.is_(None),
                    Participation.signing_key.is_not(None),
                )
            ).all()
        members = {}
        for pid, name, key, connected in rows:
            try:
                raw = from_b64url(str(key), "signing key")
            except InputError:
                continue
            if len(raw) == 32:
                members[str(pid)] = RemoteMember(str(name), raw, bool(connected))
        return int(seq or 0), members

    async def _sync_roster(self, live: LiveMeeting) -> None:
        """Read who is in the meeting on every replica, and take the next roster sequence
        number from the database (so a participant that reconnects through another replica
        never sees an older one). Called under the meeting's lock."""
        seq, members = await asyncio.to_thread(self._roster_state, live.id)
        # `signed_roster` adds one: the roster it signs carries the database's number
        live.roster_seq = max(live.roster_seq, seq - 1)
        live.remote = members

    # -- the waiting room --------------------------------------------------------------------

    def waiting(self, meeting_id: str) -> list[dict[str, str]]:
        """The guests waiting in a meeting's waiting room, in the order they came."""
        room = self._waiting.get(meeting_id, {})
        return [{"participant": w.id, "name": w.name} for w in room.values()]

    async def _tell_hosts(self, meeting_id: str) -> None:
        """Tell the hosts connected to the meeting who is waiting now."""
        live = self.meetings.get(meeting_id)
        if live is None:
            return
        message = {"type": "waiting_room", "waiting": self.waiting(meeting_id)}
        for p in list(live.participants.values()):
            if p.host and p.connected:
                with contextlib.suppress(ConnectionError, RuntimeError):
                    await p.send(message)

    async def _wait(
        self,
        meeting_id: str,
        pid: str,
        name: str,
        send: Send,
        gone: Awaitable[Any] | None,
        actor: Actor,
    ) -> str | None:
        """Hold a guest in the waiting room until a host decides: ``None`` when admitted, else
        why not (refused, gone, or not decided within :data:`WAIT_SECONDS`)."""
        room = self._waiting.setdefault(meeting_id, {})
        if len(room) >= MAX_WAITING:
            return f"the waiting room of meeting `{meeting_id}` is full: try again later"
        waiter = Waiting(pid, name, asyncio.get_running_loop().create_future())
        room[pid] = waiter
        await asyncio.to_thread(
            self._record, meeting_id, "meeting.wait", {"participant": pid, "name": name}, actor
        )
        try:
            await send({"type": "waiting", "participant": pid, "meeting": meeting_id})
            await self._tell_hosts(meeting_id)
            waits: set[asyncio.Future[Any]] = {waiter.decided}
            if gone is not None:
                waits.add(asyncio.ensure_future(gone))
            done, _ = await asyncio.wait(
                waits, timeout=WAIT_SECONDS, return_when=asyncio.FIRST_COMPLETED
            )
            if waiter.decided in done:
                if waiter.decided.result():
                    return None
                return waiter.reason or "the host refused your request to join"
            if done:  # its socket closed while it waited
                raise ConnectionError("the guest left the waiting room")
            return f"no host let you in within {WAIT_SECONDS / 60:g} minutes"
        finally:
            if room.get(pid) is waiter:
                del room[pid]
            if not room:
                self._waiting.pop(meeting_id, None)
            await self._tell_hosts(meeting_id)

    async def decide(
        self, meeting_id: str, participant_id: str, *, admit: bool, caller: Caller
    ) -> None:
        """A host admits or refuses one waiting guest (recorded). 404 for a meeting the caller
        may not see or a guest who is not waiting (any more)."""

        def check() -> None:
            with self.rt.db.read() as session:
                get_meeting(session, caller, meeting_id)

        await asyncio.to_thread(check)
        waiter = self._waiting.get(meeting_id, {}).get(participant_id)
        if waiter is None or waiter.decided.done():
            raise NotFoundError(f"no guest `{shown(participant_id)}` is waiting to join")
        await asyncio.to_thread(
            self._record,
            meeting_id,
            "meeting.admit" if admit else "meeting.refuse",
            {"participant": participant_id, "name": waiter.name, "by": str(caller.actor)},
            caller.actor,
        )
        waiter.decided.set_result(admit)

    def _record(
        self, meeting_id: str, action: str, details: dict[str, Any], actor: Actor | None = None
    ) -> None:
        with self.rt.db.write() as session:
            record(
                session,
                actor=actor or Actor("system", "meridian"),
                action=action,
                subject_kind="meeting",
                subject_id=meeting_id,
                at=self.rt.now(),
                bundle_digest=self.rt.digest,
                details=details,
            )

    async def _tell(self, live: LiveMeeting, message: dict[str, Any], *, exclude: str) -> None:
        for p in list(live.participants.values()):
            if p.connected and p.id != exclude:
                try:
                    await p.send(message)
                except (ConnectionError, RuntimeError):
                    continue

    async def connected(self, meeting_id: str, participant_id: str) -> None:
        """A participant says it is connected to its relay: everyone else is told it joined."""
        live = self.meetings.get(meeting_id)
        if live is None:
            return
        async with live.lock:
            participant = live.participants.get(participant_id)
            if participant is None or participant.connected:
                return
            participant.connected = True
            await asyncio.to_thread(self._mark_connected, meeting_id, participant)
            await self._sync_roster(live)
            # Under the meeting's lock: whoever connected before is in this roster, whoever
            # connects after hears `joined`; no one is missed either way.
            roster = {
                "type": "roster",
                "participants": self.roster(live, exclude=participant.id),
                "signed_roster": self.signed_roster(live),
            }
            try:
                await participant.send(roster)
            except (ConnectionError, RuntimeError):
                return
            joined = {"type": "joined", "participant": participant.id, "name": participant.name}
            await self._tell(live, joined, exclude=participant.id)
            if participant.host:
                with contextlib.suppress(ConnectionError, RuntimeError):
                    await participant.send(
                        {"type": "waiting_room", "waiting": self.waiting(meeting_id)}
                    )

    def _rotate_elsewhere(self, meeting_id: str) -> None:
        """Move the meeting's key on if anyone is still in it through another replica."""
        with self.rt.db.read() as session:
            if not meeting_spread(session, meeting_id):
                return
        try:
            advance_epoch(self.rt, meeting_id)
        except Exception:  # the others keep the leaver's key until the next rotation: logged
            log.exception("meeting %s: the next key epoch could not be stored", meeting_id)

    def _mark_connected(self, meeting_id: str, participant: LiveParticipant) -> None:
        """Store that ``participant`` is connected; every other replica tells its own."""
        with self.rt.db.write() as session:
            row = session.get(Participation, participant.id)
            if row is None or row.left_at is not None:
                return
            row.connected = True
            publish(
                session,
                wire.Order.ROSTER,
                meeting=meeting_id,
                joined=participant.id,
                name=participant.name,
            )

    async def _forget(
        self,
        live: LiveMeeting,
        participant: LiveParticipant,
        *,
        removal: dict[str, Any] | None = None,
    ) -> None:
        live.participants.pop(participant.id, None)
        if participant.renewal is not None:
            participant.renewal.cancel()
        async with self._place_lock:
            self.occupancy().release(participant.dc)
            left = live.uses.get(participant.dc, 0) - 1
            if left > 0:
                live.uses[participant.dc] = left
            else:
                live.uses.pop(participant.dc, None)
            # a joiner placed but not yet registered already counts in `uses`: keep the meeting
            if not live.participants and not live.uses and self.meetings.get(live.id) is live:
                del self.meetings[live.id]
        await asyncio.to_thread(
            leave,
            self.rt,
            participation_id=participant.id,
            removal=removal,
            epochs=participant.epochs,
        )

    async def leave(self, meeting_id: str, participant_id: str) -> None:
        """A participant left: free its place and give everyone else a new key epoch."""
        live = self.meetings.get(meeting_id)
        if live is None:
            return
        async with live.lock:
            participant = live.participants.get(participant_id)
            if participant is None:
                return
            # its relay closes its socket and refuses its grants: leaving is leaving everywhere
            await self._drop(
                live,
                [participant],
                "left the meeting",
                code=wire.Close.NORMAL,
                regions=[participant.dc],
            )
            await self._depart(live, [participant])

    async def _depart(
        self,
        live: LiveMeeting,
        gone: list[LiveParticipant],
        *,
        removals: dict[str, dict[str, Any]] | None = None,
    ) -> None:
        """Forget ``gone`` (recorded), tell the rest ``left`` and move them to a new key epoch.

        One epoch for all of ``gone``: none of them holds it. Called under the meeting's lock.
        """
        for participant in gone:
            removal = None if removals is None else removals.get(participant.id)
            await self._forget(live, participant, removal=removal)
        if not live.participants:
            # nobody left here; those connected through other replicas get the next key from
            # there (the order the new epoch sends)
            await asyncio.to_thread(self._rotate_elsewhere, live.id)
            return
        for participant in gone:
            if participant.connected:
                left = {"type": "left", "participant": participant.id}
                await self._tell(live, left, exclude=participant.id)
        # their signing keys leave the roster: receivers keep them only for the frame grace
        await self._sync_roster(live)
        members = {"type": "members", "signed_roster": self.signed_roster(live)}
        await self._tell(live, members, exclude="")
        why = await self._rotate(live)
        if why is None and live.paused is not None:
            await self._resumed(live)
        elif why is not None and live.paused is None:
            await self._pause(live, why, left=[p.id for p in gone])

    async def _rotate(self, live: LiveMeeting) -> str | None:
        """Move everyone left to the meeting's next epoch (taken from the database); ``None``
        when done, else why it could not be (then nobody was sent the new key: the ones who
        would have been are told ``paused``). Called under the meeting's lock."""
        try:
            epoch = await asyncio.to_thread(advance_epoch, self.rt, live.id)
        except Exception as exc:  # any failure to persist the epoch: fail closed
            log.exception("meeting %s: the next key epoch could not be stored", live.id)
            return f"the next key epoch could not be stored: {type(exc).__name__}"
        if epoch < live.epoch:
            return None  # another replica moved the meeting on further already: its keys rule
        live.epoch = epoch
        return await self._hand_keys(live)

    async def _hand_keys(self, live: LiveMeeting) -> str | None:
        """Send every participant here the key of ``live.epoch``; ``None`` when done, else why
        not (nobody was sent it). Called under the meeting's lock."""
        people = list(live.participants.values())
        keys = await asyncio.gather(
            *(self.wrapped_key(live, p) for p in people), return_exceptions=True
        )
        for answer in keys:
            if isinstance(answer, KeyServerError):
                return answer.message
            if isinstance(answer, BaseException):
                raise answer
        for p, key in zip(people, keys, strict=True):
            assert isinstance(key, dict)
            p.epochs.append(live.epoch)
            with contextlib.suppress(ConnectionError, RuntimeError):
                await p.send({"type": "key", **key})
        return None

    async def _pause(self, live: LiveMeeting, why: str, *, left: list[str]) -> None:
        """The key could not be rotated: everyone stops sending until it is (recorded)."""
        live.paused = f"the meeting key could not be rotated: {why}"
        log.warning("meeting %s paused: %s", live.id, live.paused)
        await asyncio.to_thread(
            self._record, live.id, "meeting.pause", {"reason": live.paused, "left": left}
        )
        message = {"type": "paused", "reason": live.paused}
        for p in list(live.participants.values()):
            with contextlib.suppress(ConnectionError, RuntimeError):
                await p.send(message)
        live.retry = asyncio.get_running_loop().create_task(self._resume(live))

    async def _resumed(self, live: LiveMeeting) -> None:
        """The rotation went through after a pause: everyone may send again (recorded)."""
        live.paused = None
        await asyncio.to_thread(self._record, live.id, "meeting.resume", {"epoch": live.epoch})
        resumed = {"type": "resumed", "epoch": live.epoch}
        for p in list(live.participants.values()):
            with contextlib.suppress(ConnectionError, RuntimeError):
                await p.send(resumed)

    async def _resume(self, live: LiveMeeting) -> None:
        """Retry a paused meeting's rotation; end the meeting if it still fails at the limit."""
        deadline = asyncio.get_running_loop().time() + PAUSE_LIMIT_SECONDS
        while asyncio.get_running_loop().time() < deadline:
            await asyncio.sleep(PAUSE_RETRY_SECONDS)
            async with live.lock:
                if self.meetings.get(live.id) is not live or live.paused is None:
                    return
                if not live.participants:
                    live.paused = None
                    return
                if await self._rotate(live) is None:
                    await self._resumed(live)
                    return
        reason = live.paused or "the meeting key could not be rotated"
        log.warning("meeting %s ended: %s", live.id, reason)
        with contextlib.suppress(ConflictError, NotFoundError):
            await asyncio.to_thread(
                end_meeting,
                self.rt,
                caller=None,
                meeting_id=live.id,
                actor=Actor("system", "meridian"),
                reason=reason,
            )
        await self.end(live.id, reason=reason)

    async def remove(
        self, meeting_id: str, participant_ids: Collection[str], *, reason: str
    ) -> list[str]:
        """Disconnect these live participants: their relay drops them, their signalling socket
        is closed with ``reason``, everyone else gets ``left`` and a new key epoch (so the
        removed ones cannot read what follows); their participations are marked left.

        Returns the ids actually removed (unknown or already gone ids are skipped). A region
        node that cannot be reached or refuses the drop order does not stop the removal: it is
        logged (warning) and recorded in each participation's ``meeting.leave`` record under
        ``removal.relay`` (``{"region", "error"}`` instead of ``{"region", "closed"}``).
        """
        if isinstance(participant_ids, str):
            raise TypeError("participant_ids must be a collection of ids, not one id")
        # one still between its admission and its registration is refused when it registers
        self._barred.setdefault(meeting_id, {}).update(dict.fromkeys(participant_ids, reason))
        live = self.meetings.get(meeting_id)
        if live is None:
            return []
        async with live.lock:
            wanted = dict.fromkeys(participant_ids)
            gone = [p for p in live.participants.values() if p.id in wanted]
            if not gone:
                return []
            # relays first: from here on the removed receive nothing more, not even ciphertext
            relays = await self._drop(live, gone, reason)
            for participant in gone:
                await self._dismiss(participant, reason)
            removals = {p.id: {"reason": reason, "relay": relays[p.id]} for p in gone}
            await self._depart(live, gone, removals=removals)
        return [p.id for p in gone]

    async def _drop(
        self,
        live: LiveMeeting,
        gone: list[LiveParticipant],
        reason: str,
        *,
        code: int = 0,
        end: bool = False,
        regions: Collection[str] | None = None,
    ) -> dict[str, dict[str, Any]]:
        """Order each region node that could admit ``gone`` to drop them (``end``: the whole
        meeting); per participant, what its own relay answered: ``{"region", "closed"}``, or
        ``{"region", "error"}``. ``code`` is the close code asked for (default: removed).

        Every node of the meeting's allowed set is told unless ``regions`` says which: any of
        them would accept a relay grant for it.
        """
        for p in gone:
            if p.renewal is not None:
                p.renewal.cancel()  # no fresh grant for anyone dropped
        ids = tuple(sorted(p.id for p in gone))
        allowed = tuple(sorted(live.plan.regions))
        wanted = set(allowed) | {p.dc for p in gone} if regions is None else set(regions)
        targets = sorted(wanted & set(self.node_urls))
        regions = allowed

        async def one(region: str) -> tuple[str, set[str] | str]:
            grant = Grant(
                typ="drop",
                meeting=live.id,
                participant="",
                dc=region,
                regions=regions,
                key_region=live.plan.key_region,
                drop=() if end else ids,
                reason=reason,
                end=end,
                code=code,
            )
            return region, await self.nodes.drop(region, grant)

        answers = dict(await asyncio.gather(*(one(r) for r in targets)))
        for answer in answers.values():
            if isinstance(answer, str):
                log.warning("meeting %s: dropping %s: %s", live.id, ", ".join(ids), answer)
        out: dict[str, dict[str, Any]] = {}
        for p in gone:
            answer = answers.get(p.dc, f"no region node for `{p.dc}` is configured")
            if isinstance(answer, str):
                out[p.id] = {"region": p.dc, "error": answer}
            else:
                out[p.id] = {"region": p.dc, "closed": p.id in answer}
        return out

    @staticmethod
    async def _dismiss(participant: LiveParticipant, reason: str) -> None:
        """Tell a removed participant why, and close its signalling socket."""
        # a Starlette socket already gone raises WebSocketDisconnect on close: nothing to close
        with contextlib.suppress(ConnectionError, RuntimeError, WebSocketDisconnect):
            await participant.send({"type": "removed", "reason": reason})
            if participant.close is not None:
                await participant.close(wire.Close.REMOVED, _close_reason(reason))

    async def end(self, meeting_id: str, *, reason: str | None = None) -> None:
        """End a live meeting: every region node of its allowed set closes all its sockets and
        links and refuses its grants from now on (an end order), then everyone is told (and why,
        when ``reason`` is given)."""
        self._barred.pop(meeting_id, None)
        for waiter in self._waiting.get(meeting_id, {}).values():
            if not waiter.decided.done():
                waiter.reason = "the meeting ended"
                waiter.decided.set_result(False)
        live = self.meetings.pop(meeting_id, None)
        if live is None:
            self._start_seal(meeting_id, {})
            return
        if live.retry is not None and live.retry is not asyncio.current_task():
            live.retry.cancel()
        everyone = list(live.participants.values())
        await self._drop(live, everyone, reason or "the meeting ended", end=True)
        async with self._place_lock:  # their places are free again
            occupancy = self.occupancy()
            for p in live.participants.values():
                occupancy.release(p.dc)
            live.uses.clear()
        for p in list(live.participants.values()):
            try:
                await p.send({"type": "ended", **({"reason": reason} if reason else {})})
            except (ConnectionError, RuntimeError):
                continue
        self._start_seal(meeting_id, {p.id: p.epochs for p in everyone})

    def _start_seal(self, meeting_id: str, epochs: dict[str, list[int]]) -> None:
        """Seal in the background: the end is answered without waiting for every node's
        statement; a receipt asked for meanwhile waits for it (:meth:`sealing`)."""
        task = asyncio.get_running_loop().create_task(self._seal(meeting_id, epochs))
        self._seals[meeting_id] = task
        task.add_done_callback(
            lambda done: (
                self._seals.pop(meeting_id, None) if self._seals.get(meeting_id) is done else None
            )
        )

    async def sealing(self, meeting_id: str) -> None:
        """Wait for the meeting's seal if one is being made now (after its end)."""
        task = self._seals.get(meeting_id)
        if task is not None:
            await asyncio.shield(task)

    async def _seal(self, meeting_id: str, epochs: dict[str, list[int]]) -> None:
        """Seal the ended meeting's receipt (:func:`~meridian.meetings.receipts.seal`): its
        relays were told, so their counters are final. A seal that fails is logged; the
        receipt endpoint seals it when first asked."""
        try:
            await seal(self.rt, self.nodes, meeting_id, epochs)
        except ConflictError:
            return  # not ended in the database (yet): sealed when it is and a receipt is asked
        except Exception:
            log.exception("meeting %s: its receipt could not be sealed", meeting_id)

    def _standing(self, meeting_id: str) -> tuple[bool, int, dict[str, str]]:
        """What the orders about a meeting would have said, read from the database (blocking):
        whether it is still live, its key epoch, and the lawful blocks standing on it (the
        jurisdiction, and the request that made the block)."""
        with self.rt.db.read() as session:
            row = session.get(Meeting, meeting_id)
            if row is None:
                return False, 0, {}
            blocks = {b.jurisdiction: b.request_id for b in active_blocks(session, meeting_id)}
            return row.status == MeetingStatus.LIVE, int(row.epoch), blocks

    async def catch_up(self) -> None:
        """Act on the orders this replica may have missed while it was not listening
        (:meth:`~meridian.storage.orders.OrderListener.on_listening`): for every meeting served
        here, read from the database what they would have said. A meeting ended elsewhere is
        ended here; a participant here from a jurisdiction a lawful block now closes the meeting
        to is removed, as the removal's order would have done; a newer key epoch is handed out;
        the roster is read again. Fail closed: a removal is never lost with its order."""
        for meeting_id in list(self.meetings):
            live = self.meetings.get(meeting_id)
            if live is None:
                continue
            try:
                running, epoch, blocks = await asyncio.to_thread(self._standing, meeting_id)
            except Exception:
                log.exception("meeting %s: could not catch up on missed orders", meeting_id)
                continue
            if not running:
                await self.end(meeting_id)
                continue
            cut: dict[str, list[str]] = {}
            for p in list(live.participants.values()):
                request = blocks.get(p.country)
                if request is not None:
                    cut.setdefault(removal_reason(request, p.country), []).append(p.id)
            for reason, ids in cut.items():
                await self.remove(meeting_id, ids, reason=reason)
            if epoch > live.epoch:
                await self._follow_rotation(meeting_id, epoch)
            await self._follow_roster(meeting_id, {})

    async def follow(self, order: Received) -> None:
        """Act on an order another replica committed (:mod:`meridian.storage.orders`): a
        removal cuts the participants named that are connected through this replica, an end
        ends the meeting for those connected here. This replica's own orders it has acted on
        already, as it committed them."""
        if order.own and not order.data.get("all"):
            return
        meeting = order.data.get("meeting")
        if not isinstance(meeting, str):
            return
        if order.kind is wire.Order.ROSTER:
            await self._follow_roster(meeting, order.data)
        elif order.kind is wire.Order.ROTATE:
            epoch = order.data.get("epoch")
            if isinstance(epoch, int):
                await self._follow_rotation(meeting, epoch)
        elif order.kind is wire.Order.END:
            reason = order.data.get("reason")
            await self.end(meeting, reason=reason if isinstance(reason, str) else None)
        elif order.kind is wire.Order.REMOVE:
            ids = order.data.get("participants")
            reason = order.data.get("reason")
            if isinstance(ids, list) and isinstance(reason, str):
                await self.remove(meeting, [str(i) for i in ids], reason=reason)

    async def _follow_roster(self, meeting_id: str, data: dict[str, Any]) -> None:
        """Someone joined, connected or left through another replica: tell those here (``left``,
        ``joined``) and hand them the signed roster again."""
        live = self.meetings.get(meeting_id)
        if live is None:
            return
        async with live.lock:
            if self.meetings.get(meeting_id) is not live or not live.participants:
                return
            await self._sync_roster(live)
            left = data.get("left")
            for pid in left if isinstance(left, list) else ():
                mine = live.participants.get(str(pid))
                if mine is None:
                    await self._tell(live, {"type": "left", "participant": str(pid)}, exclude="")
                elif data.get("all") and mine.close is not None:
                    # closed as stale while this replica still serves it (its lease lapsed, a
                    # long pause): it is out of the roster and the key, so it joins again
                    with contextlib.suppress(ConnectionError, RuntimeError, WebSocketDisconnect):
                        await mine.close(wire.Close.RESTART, "joining again: this replica lapsed")
            joined = data.get("joined")
            if isinstance(joined, str) and joined not in live.participants:
                message = {"type": "joined", "participant": joined, "name": data.get("name")}
                await self._tell(live, message, exclude="")
            members = {"type": "members", "signed_roster": self.signed_roster(live)}
            await self._tell(live, members, exclude="")

    async def _follow_rotation(self, meeting_id: str, epoch: int) -> None:
        """Another replica moved the meeting's key on: hand those here the new epoch's key
        (pausing the meeting here if the key server cannot be reached)."""
        live = self.meetings.get(meeting_id)
        if live is None:
            return
        async with live.lock:
            if self.meetings.get(meeting_id) is not live or epoch <= live.epoch:
                return
            live.epoch = epoch
            why = await self._hand_keys(live)
            if why is None and live.paused is not None:
                await self._resumed(live)
            elif why is not None and live.paused is None:
                await self._pause(live, why, left=[])

    async def carried(self, meeting_id: str) -> dict[str, dict[str, Any]]:
        """What every region node counted for a meeting (:meth:`RegionNodes.carried`)."""
        return await self.nodes.carried(meeting_id)

    async def _give_links(self, live: LiveMeeting, links: Collection[tuple[str, str]]) -> None:
        """Give each node the meeting uses the ``link`` grants of its cascades (only nodes ever
        hold them: a participant's grant opens no cascade). A node that cannot be reached is
        logged: its participants then hear only their own region."""
        regions = tuple(sorted(live.plan.regions))
        per_node: dict[str, list[Grant]] = {}
        for pair in links:
            for region in pair:
                grant = Grant(
                    typ="link",
                    meeting=live.id,
                    participant="",
                    dc=region,
                    regions=regions,
                    key_region=live.plan.key_region,
                    pair=tuple(sorted(pair)),
                )
                per_node.setdefault(region, []).append(grant)

        await self.nodes.give_links(live.id, per_node)

    async def _renew(self, participant: LiveParticipant) -> None:
        """Send ``participant`` a fresh relay grant every third of a grant's lifetime, which its
        client hands to its relay (``{"type": "renew", "grant"}``); it stops when it goes."""
        grant = participant.relay_grant
        if grant is None:
            return
        every = self.signer.seconds / 3
        while True:
            await asyncio.sleep(every)
            try:
                await participant.send({"type": "renew", "grant": self.signer.sign(grant)})
            except (ConnectionError, RuntimeError):
                return

    async def aclose(self) -> None:
        # seals under way finish first: they need the nodes' client
        await asyncio.gather(*list(self._seals.values()), return_exceptions=True)
        await self.nodes.aclose()
