"""Live meetings in the control plane: admitting joiners, handing out grants and keys, rotating.

:class:`Signalling` is what the ``/v1/meetings/{id}/signal`` WebSocket talks to. A join is
judged and placed (and recorded) by :func:`~meridian.meetings.service.admit`; the participant
then gets a relay grant for its data centre and its meeting key, wrapped by the key server of
the meeting's key region to the participant's own X25519 public key. When a participant leaves,
the meeting's key epoch moves on and every remaining participant gets the new key.

:meth:`Signalling.remove` takes participants out against their will (an approved lawful
request): the region nodes of the meeting are ordered to drop them (a ``drop`` grant; their
relay closes their connection with :data:`CLOSE_REMOVED` and refuses them from then on), their
signalling socket gets ``removed`` and is closed with the same code, and the rest of the
meeting is left exactly as when someone leaves: told ``left``, given a new key epoch.

Each participant's frames are signed with its own Ed25519 key, whose public half it sends in
``join``; the control plane lists it in the meeting's roster, which it signs with its grant key
(:func:`~meridian.keys.sign_roster`) and hands out whenever it changes: in ``admitted``, in
``roster``, and as ``members`` to everyone connected (docs/data-plane.md §Roster).

Joins are placed one at a time (one lock for the control plane) so capacity is counted exactly;
each meeting's joins, leaves and rotations are serialised by the meeting's own lock, so a key
epoch never goes to a participant out of order.

Fail closed: a region whose node is not configured, or that the health checker marked down
(:mod:`meridian.meetings.health`), has no room; a key region whose key server
cannot be reached refuses the join (and the participation is closed again); a relay that cannot
be reached to drop a removed participant does not stop the removal (the new key epoch keeps the
participant out of what follows), and is logged and recorded with the removal.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import logging
import secrets
import time
from collections.abc import Awaitable, Callable, Collection
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import quote

import httpx
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
from starlette.websockets import WebSocketDisconnect

from ..errors import ConfigurationError, ForbiddenError, MeridianError, shown
from ..identity.tokens import Caller
from ..keys import RosterMember
from ..runtime import Runtime
from .grants import Grant, GrantSigner, public_key_b64
from .placement import MeetingPlan, Occupancy, links_between
from .regions import region_table
from .service import admit, leave

__all__ = ["CLOSE_REMOVED", "KeyServerError", "LiveMeeting", "LiveParticipant", "Signalling"]

log = logging.getLogger("meridian.meetings.live")

Send = Callable[[dict[str, Any]], Awaitable[None]]
#: closes a participant's signalling socket with a close code and reason
Close = Callable[[int, str], Awaitable[None]]

#: the close code of a removed participant's sockets, signalling and relay alike (HTTP 451,
#: unavailable for legal reasons; 44xx codes mirror HTTP statuses)
CLOSE_REMOVED = 4451
#: how long a region node has to answer a drop order before the removal goes on without it
DROP_TIMEOUT_SECONDS = 5.0
_REASON_BYTES = 123  # the most a WebSocket close reason can carry


class KeyServerError(MeridianError):
    """Raised when the key server of a meeting's key region cannot give a key: the join fails."""

    exit_code = 69  # EX_UNAVAILABLE
    http_status = 503


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


@dataclass
class LiveMeeting:
    id: str
    plan: MeetingPlan
    uses: dict[str, int] = field(default_factory=dict)
    participants: dict[str, LiveParticipant] = field(default_factory=dict)
    epoch: int = 0
    lock: asyncio.Lock = field(default_factory=asyncio.Lock)
    #: this control plane's session of the meeting: the key server salts each epoch per session
    session: str = field(default_factory=lambda: "s_" + secrets.token_urlsafe(9))
    #: the sequence number of the last signed roster handed out (receivers never go back)
    roster_seq: int = 0


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _close_reason(message: str) -> str:
    raw = message.encode("utf-8")
    if len(raw) <= _REASON_BYTES:
        return message
    return raw[: _REASON_BYTES - 3].decode("utf-8", "ignore") + "…"


def _refusal(response: httpx.Response) -> str:
    """What a region node said when it refused (Meridian's error body), or its status."""
    try:
        return str(response.json()["error"]["message"])
    except (ValueError, KeyError, TypeError):
        return f"status {response.status_code}"


class Signalling:
    """The control plane's live meetings, and its way to the region nodes."""

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
        self.node_urls = dict(node_urls)
        self.http = http or httpx.AsyncClient(timeout=10.0)
        self.meetings: dict[str, LiveMeeting] = {}
        #: per meeting, participants a removal named, with its reason: one still joining when the
        #: removal ran is refused as it registers (its participation was committed before)
        self._barred: dict[str, dict[str, str]] = {}
        self._place_lock = asyncio.Lock()
        self._occupancy: Occupancy | None = None
        self._digest: str | None = None
        #: regions whose node the health checker marked down, and since when (ISO 8601)
        self.down_since: dict[str, str] = {}
        #: the admin credential the nodes' counters are read with, and when it was signed
        self._admin: tuple[float, str] | None = None

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

    def relay_url(self, region: str) -> str:
        base = self.node_urls[region]
        return "ws" + base.removeprefix("http") + "/v1/relay"

    def live_load(self) -> dict[str, dict[str, Any]]:
        """Per region: participants carried, capacity, and the meetings using it."""
        occ = self.occupancy()
        out: dict[str, dict[str, Any]] = {}
        for code in sorted(occ.capacity):
            meetings = sorted(m.id for m in self.meetings.values() if m.uses.get(code))
            out[code] = {
                "participants": occ.used[code],
                "capacity": occ.capacity[code],
                "load": round(occ.load(code), 4),
                "node": self.node_urls.get(code),
                "state": "none"
                if code not in self.node_urls
                else ("down" if code in self.down_since else "up"),
                "down_since": self.down_since.get(code),
                "meetings": meetings,
            }
        return out

    async def wrapped_key(
        self, meeting: LiveMeeting, participant: LiveParticipant
    ) -> dict[str, Any]:
        """The meeting key of the current epoch, wrapped for ``participant`` by the key server."""
        region = meeting.plan.key_region
        base = self.node_urls.get(region)
        if base is None:
            raise KeyServerError(f"no key server for region `{region}` is configured")
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
        body = {"grant": self.signer.sign(grant), "public_key": _b64(participant.public_key)}
        try:
            response = await self.http.post(f"{base}/v1/keys", json=body)
        except httpx.HTTPError as exc:
            raise KeyServerError(f"key server `{region}` is unreachable: {exc}") from exc
        if response.status_code != 200:
            raise KeyServerError(f"key server `{region}` refused: {_refusal(response)}")
        try:
            data = response.json()
            if not isinstance(data, dict) or "wrapped" not in data:
                raise ValueError("no `wrapped` key")
        except ValueError as exc:
            raise KeyServerError(f"key server `{region}` sent a malformed answer: {exc}") from exc
        return data

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
    ) -> dict[str, Any]:
        """Admit one participant: the ``admitted`` message, or a ``refused`` one.

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
            )
            placement = admission.placement
            if not placement.allowed:
                return {
                    "type": "refused",
                    "code": "denied",
                    "message": placement.reasons[0].message
                    if placement.reasons
                    else "no rule allows this join",
                    "decision": admission.decision,
                }
            assert placement.dc is not None
            assert admission.participation is not None
            live = self.meetings.get(meeting_id)
            if live is None:
                live = self.meetings[meeting_id] = LiveMeeting(meeting_id, admission.plan)
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
        )
        async with live.lock:
            live.participants[participant.id] = participant
            barred = self._barred.get(meeting_id, {}).get(participant.id)
            if barred is not None:
                await self._forget(live, participant)
                raise ForbiddenError(f"removed from the meeting: {barred}")
            try:
                key = await self.wrapped_key(live, participant)
            except KeyServerError:
                await self._forget(live, participant)
                raise
            links = links_between(live.uses)
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
                "relay": self.relay_url(placement.dc),
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
        ]
        return self.signer.sign_roster(
            meeting=live.id, epoch=live.epoch, seq=live.roster_seq, members=members
        )

    @staticmethod
    def roster(live: LiveMeeting, *, exclude: str | None = None) -> list[dict[str, str]]:
        """The participants connected to their relays, as others see them: id and name."""
        return [
            {"participant": p.id, "name": p.name}
            for p in live.participants.values()
            if p.connected and p.id != exclude
        ]

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
        await asyncio.to_thread(leave, self.rt, participation_id=participant.id, removal=removal)

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
                live, [participant], "left the meeting", code=1000, regions=[participant.dc]
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
            return
        for participant in gone:
            if participant.connected:
                left = {"type": "left", "participant": participant.id}
                await self._tell(live, left, exclude=participant.id)
        live.epoch += 1
        # their signing keys leave the roster: receivers keep them only for the frame grace
        members = {"type": "members", "signed_roster": self.signed_roster(live)}
        await self._tell(live, members, exclude="")
        await asyncio.gather(
            *(self._rekey(live, p) for p in list(live.participants.values())),
        )

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
            url = f"{self.node_urls[region]}/v1/relay/{quote(live.id, safe='')}/drop"
            try:
                response = await self.http.post(
                    url, json={"grant": self.signer.sign(grant)}, timeout=DROP_TIMEOUT_SECONDS
                )
            except httpx.HTTPError as exc:
                return (
                    region,
                    f"region node `{region}` is unreachable: {str(exc) or type(exc).__name__}",
                )
            if response.status_code != 200:
                return region, f"region node `{region}` refused the drop: {_refusal(response)}"
            try:
                closed = response.json()["dropped"]
                return region, {str(p) for p in closed}
            except (ValueError, KeyError, TypeError):
                return region, f"region node `{region}` sent a malformed answer to the drop"

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
                await participant.close(CLOSE_REMOVED, _close_reason(reason))

    async def _rekey(self, live: LiveMeeting, participant: LiveParticipant) -> None:
        try:
            key = await self.wrapped_key(live, participant)
            await participant.send({"type": "key", **key})
        except (KeyServerError, ConnectionError, RuntimeError):
            # The participant is gone or the key server failed: it cannot read on; its own
            # socket closing removes it.
            return

    async def end(self, meeting_id: str, *, reason: str | None = None) -> None:
        """End a live meeting: every region node of its allowed set closes all its sockets and
        links and refuses its grants from now on (an end order), then everyone is told."""
        self._barred.pop(meeting_id, None)
        live = self.meetings.pop(meeting_id, None)
        if live is None:
            return
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

    async def carried(self, meeting_id: str) -> dict[str, dict[str, Any]]:
        """What every region node counted for a meeting: bytes, frames, keys, participants.

        Read from the nodes themselves; a node that does not answer is reported as such, with
        no figures (never as zeros).
        """

        headers = {"Authorization": f"Bearer {self.admin_credential()}"}

        async def one(region: str, base: str) -> tuple[str, dict[str, Any]]:
            try:
                response = await self.http.get(
                    f"{base}/v1/stats/{quote(meeting_id, safe='')}", headers=headers
                )
                response.raise_for_status()
                data: dict[str, Any] = response.json()
            except (httpx.HTTPError, ValueError) as exc:
                return region, {"error": f"region node `{region}` did not answer: {exc}"}
            data.pop("meeting", None)
            data.pop("region", None)
            return region, data

        pairs = await asyncio.gather(*(one(r, u) for r, u in sorted(self.node_urls.items())))
        return dict(pairs)

    def admin_credential(self) -> str:
        """The control plane's ``admin`` credential for the nodes' counters, re-signed when half
        its lifetime has passed."""
        now = time.monotonic()
        if self._admin is None or now - self._admin[0] > self.signer.seconds / 2:
            self._admin = (now, self.signer.admin())
        return self._admin[1]

    async def _give_links(self, live: LiveMeeting, links: Collection[tuple[str, str]]) -> None:
        """Give each node the meeting uses the ``link`` grants of its cascades (only nodes ever
        hold them: a participant's grant opens no cascade). A node that cannot be reached is
        logged: its participants then hear only their own region."""
        regions = tuple(sorted(live.plan.regions))
        per_node: dict[str, list[str]] = {}
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
                per_node.setdefault(region, []).append(self.signer.sign(grant))

        async def one(region: str, grants: list[str]) -> None:
            base = self.node_urls.get(region)
            if base is None:
                return
            url = f"{base}/v1/relay/{quote(live.id, safe='')}/links"
            try:
                response = await self.http.post(
                    url, json={"grants": grants}, timeout=DROP_TIMEOUT_SECONDS
                )
            except httpx.HTTPError as exc:
                log.warning("meeting %s: links to %s: %s", live.id, region, exc)
                return
            if response.status_code != 200:
                log.warning(
                    "meeting %s: region node %s refused its links: %s",
                    live.id,
                    region,
                    _refusal(response),
                )

        await asyncio.gather(*(one(r, g) for r, g in sorted(per_node.items())))

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
        await self.http.aclose()


def check_nodes(node_urls: dict[str, str], codes: frozenset[str]) -> None:
    """Refuse node URLs for regions the bundle does not list (a typo must not go unnoticed)."""
    for region in node_urls:
        if region not in codes:
            raise ConfigurationError(
                f"node url given for `{shown(region)}`, which is not a data-centre region"
            )
