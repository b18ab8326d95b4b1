"""A real participant: signalling with the control plane, its key, and sealed frames over a relay.

Joining follows docs/data-plane.md §Signalling::

    participant ──{"type": "join", "name", "public_key", "invite"}──▶ control plane
                ◀──{"type": "waiting", …}  (only with a waiting room: until a host decides)
                ◀──{"type": "refused", …}  (DeniedError, with the decision)
                ◀──{"type": "admitted", "participant", "dc", "relay", "grant", "notices", "key"}
    participant ──{"grant"}──▶ relay ──{"type": "ready"}──▶ participant

The key arrives wrapped to a fresh X25519 key pair made for this join; it is unwrapped for the
exact context (meeting, participant, key region, epoch). The join also carries the public half
of a fresh Ed25519 signing key: every frame this participant sends is signed with it, and the
control plane lists it in the roster it signs (``signed_roster``, checked against its
``roster_key``, or a key pinned with ``control_key``). Every frame received is checked against
that roster before it is opened; what is dropped is counted in :attr:`Participant.dropped`
(``bad_signature``, ``unknown_sender``, ``old_epoch``). The signalling socket stays open: later
``key`` messages (rotations), rosters and ``ended`` arrive on it, and closing it is leaving.

A participant the control plane removes gets ``{"type": "removed", "reason"}`` and both its
sockets closed with code 4451: :attr:`Participant.removed` holds the reason, :attr:`ended` says
``removed from the meeting: <reason>``, and the ``on_notice`` given to :meth:`Participant.join`
hears that one line.

``{"type": "paused", "reason"}`` (the meeting key could not be rotated after someone left) stops
this participant sending (:attr:`Participant.paused`) until ``{"type": "resumed"}``.

A participant whose control-plane replica goes away (its signalling socket drops without a
close from the control plane: the process was killed, or restarts) joins again by itself
through the next control-plane address it was given (or the same one, behind a load balancer),
for up to :data:`REJOIN_SECONDS`: a new participation, with the same keys and name, on a new
relay connection; :attr:`Participant.rejoins` counts them. A removal, a refusal or the end of
the meeting is never retried.

The relay part stands alone (:meth:`Participant.connect_relay`), so it can be driven with
hand-made grants and keys, without a control plane.

A participant composes three parts: what the control plane says (:mod:`.signalling`), the two
WebSockets and what their refusals and close codes stand for (:mod:`.sockets`), and its keys
and the frames it opens (:class:`~meridian.client.keys.FrameKeys`, which it is).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey
from websockets.asyncio.client import ClientConnection
from websockets.exceptions import ConnectionClosed

from ..errors import ConflictError, InputError, MeridianError, RosterError, shown
from ..keys import FrameKind, SenderKeys, b64url, public_bytes, signing_public_bytes
from ..wire import Close
from .keys import _END, FrameKeys, Received, _roster_key
from .signalling import _WAIT_SECONDS, Admission, _admission, _refusal, signal_url
from .sockets import (
    _closed_error,
    _connect,
    _headers,
    _next_message,
    _removed,
)

__all__ = ["REJOIN_SECONDS", "Participant"]

log = logging.getLogger("meridian.client")

#: how long a participant whose control-plane replica went away tries to join again
REJOIN_SECONDS = 5.0
#: close codes that say the control plane's process went away, not that it sent us off: no
#: close frame (1006), going away (1001), an internal error (1011), restarting (1012)
_LOST = frozenset({1001, 1006, 1011, 1012})


@dataclass(frozen=True, slots=True)
class _Joining:
    """What a join was made with: enough to make it again through another replica."""

    controls: tuple[str, ...]
    meeting: str
    name: str
    token: str | None
    forwarded_for: str | None
    invite: str | None


class Participant(FrameKeys):
    """One participant of one meeting: its relay connection, keys and (when joined) signalling."""

    def __init__(self, meeting: str, participant: str, keys: SenderKeys) -> None:
        super().__init__(meeting, participant, keys)
        self.dc: str | None = None
        self.admission: Admission | None = None
        #: why the participant is no longer in the meeting, once it is not
        self.ended: str | None = None
        #: the reason the control plane gave when it removed this participant
        self.removed: str | None = None
        #: ``warning`` messages from the control plane (the plan's minutes running out), in order
        self.warnings: list[dict[str, Any]] = []
        #: the region whose node went down while it carried this participant (join again)
        self.region_down: str | None = None
        #: why the meeting is paused (nothing is sent until it resumes), or ``None``
        self.paused: str | None = None
        self.on_key: Callable[[int], None] | None = None
        self.on_notice: Callable[[str], None] | None = None
        self._relay: ClientConnection | None = None
        self._signal: ClientConnection | None = None
        self._tasks: list[asyncio.Task[None]] = []
        #: the others connected to the meeting, by participant id: their names
        self.roster: dict[str, str] = {}
        self._roster_changed = asyncio.Event()
        #: how many times it joined again after its control-plane replica went away
        self.rejoins = 0
        #: relay connections a join again left behind (their end is not this participant's)
        self._replaced: set[ClientConnection] = set()
        self._joining: _Joining | None = None
        self._signing: Ed25519PrivateKey | None = None

    def name_of(self, participant: str) -> str:
        """The name a participant gave, or its id when it is not (or no longer) in the roster."""
        return self.roster.get(participant) or self._signed_names.get(participant, participant)

    async def sender_name(self, participant: str, wait: float = 2.0) -> str:
        """The name of a frame's sender, waiting up to ``wait`` seconds for the roster to name it.

        A newcomer's first frame comes through the relay, its name through signalling: the frame
        can arrive first.
        """
        deadline = asyncio.get_running_loop().time() + wait
        while participant not in self.roster and self.ended is None:
            left = deadline - asyncio.get_running_loop().time()
            if left <= 0:
                break
            self._roster_changed.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._roster_changed.wait(), left)
        return self.name_of(participant)

    async def wait_for_others(self, count: int, timeout: float | None = None) -> None:
        """Wait until at least ``count`` others are connected (:class:`TimeoutError` if not)."""

        async def wait() -> None:
            while len(self.roster) < count:
                if self.ended is not None:
                    raise EOFError(self.ended)
                self._roster_changed.clear()
                await self._roster_changed.wait()

        await asyncio.wait_for(wait(), timeout)

    def _update_roster(self, message: dict[str, Any]) -> None:
        kind = message.get("type")
        who = message.get("participant")
        if not isinstance(who, str):
            return
        if kind == "joined":
            self.roster[who] = str(message.get("name") or who)
        elif kind == "left":
            self.roster.pop(who, None)
        self._roster_changed.set()

    def __repr__(self) -> str:
        return f"Participant(meeting={self.meeting!r}, participant={self.participant!r}, dc={self.dc!r})"

    @property
    def epoch(self) -> int | None:
        """The newest key epoch held: the one frames are sealed with."""
        return self.keys.latest

    # -- joining --------------------------------------------------------------------------

    @classmethod
    async def join(
        cls,
        control_url: str | Sequence[str],
        meeting: str,
        *,
        name: str,
        token: str | None = None,
        forwarded_for: str | None = None,
        on_notice: Callable[[str], None] | None = None,
        on_key: Callable[[int], None] | None = None,
        control_key: Ed25519PublicKey | None = None,
        invite: str | None = None,
    ) -> Participant:
        """Join ``meeting`` through the control plane at ``control_url`` and connect to its relay.

        ``invite`` is the meeting's join secret (the ``k`` of its join link): without it only
        the host account's own users get in. In a waiting room, ``on_notice`` hears that it is
        waiting, and the join returns once a host admits it.

        Notices are given to ``on_notice`` before the relay is connected, and a removal when it
        happens (one line with its reason); ``on_key`` hears of each key rotation. Raises
        :class:`DeniedError` (with the decision) when the control plane refuses, the relay's
        refusal (:class:`GrantError`, :class:`FenceError`) if it refuses, and
        :class:`RosterError` if the roster is not signed by the control plane: by
        ``control_key`` when it is given (pinned), else by the ``roster_key`` of ``admitted``.

        ``control_url`` may be several addresses of the same control plane (its replicas): the
        join goes through the first, and a join again after a replica went away through the
        next one (see the module text).
        """
        private = X25519PrivateKey.generate()
        signing = Ed25519PrivateKey.generate()
        controls = (control_url,) if isinstance(control_url, str) else tuple(control_url)
        if not controls:
            raise InputError("no control-plane address to join through")
        joining = _Joining(controls, meeting, name, token, forwarded_for, invite)
        signal, answer = await _handshake(joining, controls[0], private, signing, on_notice)
        try:
            admission, key = _admission(answer)
            keys = SenderKeys(admission.meeting, signing_key=signing)
            joined = cls(admission.meeting, admission.participant, keys)
            joined._control_key = _roster_key(answer.get("roster_key"), control_key)
            joined._apply_roster(answer.get("signed_roster"))
            joined._private = private
            joined._signing = signing
            joined._joining = joining
            joined.admission = admission
            joined.on_key = on_key
            joined.on_notice = on_notice
            joined._add_key(key)
            for notice in admission.notices:
                if on_notice is not None:
                    on_notice(notice)
            for entry in answer.get("roster") or ():
                if isinstance(entry, dict):
                    joined._update_roster({"type": "joined", **entry})
            # forwarded_for only: the bearer token is the control plane's, never a relay's
            await joined._attach_relay(admission.relay, admission.grant, forwarded_for)
            # now others may count on this participant hearing them
            await signal.send(json.dumps({"type": "connected"}))
        except BaseException:
            await signal.close()
            raise
        joined._signal = signal
        joined._tasks.append(asyncio.get_running_loop().create_task(joined._listen(signal)))
        return joined

    @classmethod
    async def connect_relay(
        cls,
        relay_url: str,
        grant: str,
        meeting: str,
        participant_id: str,
        keys: SenderKeys,
        *,
        forwarded_for: str | None = None,
    ) -> Participant:
        """Connect to a relay with a grant and keys obtained elsewhere (no signalling).

        With no control plane there is no signed roster: this participant's signing key is
        added to ``keys.senders`` as ``participant_id``, so participants made this way that
        share one :class:`~meridian.keys.SenderRoster` (hand-made meetings, tests) know each
        other, and no one else.
        """
        keys.senders.trust(participant_id, keys.verifying_key)
        joined = cls(meeting, participant_id, keys)
        await joined._attach_relay(relay_url, grant, forwarded_for)
        return joined

    async def _attach_relay(self, url: str, grant: str, forwarded_for: str | None) -> None:
        relay = await _connect(url, "relay", _headers(None, forwarded_for))
        try:
            await relay.send(json.dumps({"grant": grant}))
            ready = await _next_message(relay, "relay")
            if ready.get("type") != "ready":
                raise InputError(
                    f"the relay answered `{shown(ready.get('type'))}` to a grant: expected `ready`"
                )
        except BaseException:
            await relay.close()
            raise
        self.dc = str(ready.get("dc"))
        self._relay = relay
        self._tasks.append(asyncio.get_running_loop().create_task(self._read(relay)))

    # -- frames ---------------------------------------------------------------------------

    async def send_chat(self, text: str) -> None:
        """Send one chat line to everyone else in the meeting."""
        await self._send(FrameKind.CHAT, text.encode("utf-8"))

    async def send_media(self, size: int) -> None:
        """Send one synthetic media frame of ``size`` random bytes."""
        await self._send(FrameKind.MEDIA, os.urandom(size))

    async def choose_layer(self, layer: str) -> None:
        """Ask the relay for the ``high`` or ``low`` video quality (the default is ``high``)."""
        if layer not in ("high", "low"):
            raise InputError(f"video layer `{shown(layer)}` is not `high` or `low`")
        if self._relay is None or self.ended is not None:
            raise InputError(f"not in meeting `{shown(self.meeting)}`: {self.ended or 'no relay'}")
        try:
            await self._relay.send(json.dumps({"type": "layer", "layer": layer}))
        except ConnectionClosed as exc:
            raise _closed_error(exc, "relay") from None

    async def _send(self, kind: FrameKind, payload: bytes) -> None:
        await self.send_frame(self.keys.seal(sender=self.participant, kind=kind, payload=payload))

    async def send_frame(self, frame: bytes) -> None:
        """Send a frame that is already sealed, as it is (the relay forwards it unchanged)."""
        if self._relay is None or self.ended is not None:
            raise InputError(f"not in meeting `{shown(self.meeting)}`: {self.ended or 'no relay'}")
        if self.paused is not None:
            raise ConflictError(f"meeting `{shown(self.meeting)}` is paused: {self.paused}")
        try:
            await self._relay.send(frame)
        except ConnectionClosed as exc:
            raise _closed_error(exc, "relay") from None

    async def receive(self, timeout: float | None = None) -> Received:
        """The next frame from another participant, opened.

        :class:`TimeoutError` if none arrives within ``timeout`` seconds; :class:`EOFError` once
        the relay connection has ended (:attr:`ended` says why) and every frame was received.
        """
        item = await asyncio.wait_for(self._inbox.get(), timeout)
        if item is _END:
            self._inbox.put_nowait(_END)  # every later call ends too
            raise EOFError(self.ended or "the relay connection ended")
        assert isinstance(item, Received)
        return item

    async def _read(self, relay: ClientConnection) -> None:
        try:
            async for frame in relay:
                if isinstance(frame, bytes):
                    self._open(frame)
        except ConnectionClosed as exc:
            if exc.rcvd is not None and exc.rcvd.code == Close.REMOVED:
                self._was_removed(exc.rcvd.reason or "no reason given")
            elif exc.rcvd is not None and exc.rcvd.code == Close.ENDED:
                # the relay's end order usually comes before signalling's `ended`; when it comes
                # after, the reason signalling gave is kept
                if self.ended is None or not self.ended.startswith("the meeting ended"):
                    self.ended = "the meeting ended"
            elif self.ended is None:
                self.ended = _closed_error(exc, "relay").message
        finally:
            # one a join again left behind says nothing: the new relay connection carries on
            if not (relay is not self._relay and self._relay_replaced(relay)):
                if self.ended is None:
                    code = relay.close_code
                    self.ended = f"the relay closed the connection (code {code})"
                self._inbox.put_nowait(_END)

    async def _listen(self, signal: ClientConnection) -> None:
        """Key rotations and the end of the meeting, from the signalling socket."""
        try:
            async for text in signal:
                try:
                    message = json.loads(text)
                except ValueError:
                    continue
                if not isinstance(message, dict):
                    continue
                if "signed_roster" in message:
                    try:
                        self._apply_roster(message["signed_roster"])
                    except RosterError as exc:
                        self.rosters_refused += 1
                        log.warning("roster not applied: %s", exc)
                if message.get("type") == "key":
                    try:
                        self._add_key(message)
                    except MeridianError as exc:
                        log.warning("key rotation not applied: %s", exc)
                        continue
                    if self.on_key is not None:
                        self.on_key(int(message["epoch"]))
                elif message.get("type") in ("joined", "left"):
                    self._update_roster(message)
                elif message.get("type") == "roster":
                    for entry in message.get("participants") or ():
                        if isinstance(entry, dict):
                            self._update_roster({"type": "joined", **entry})
                elif message.get("type") == "renew":
                    await self._renew_relay(message.get("grant"))
                elif message.get("type") == "paused":
                    self.paused = str(message.get("reason") or "the key could not be rotated")
                    if self.on_notice is not None:
                        self.on_notice(f"meeting paused: {self.paused}")
                elif message.get("type") == "resumed":
                    self.paused = None
                    if self.on_notice is not None:
                        self.on_notice("meeting resumed")
                elif message.get("type") == "ended":
                    why = message.get("reason")
                    self.ended = "the meeting ended" + (f": {why}" if why else "")
                    self._roster_changed.set()
                    break
                elif message.get("type") == "warning":
                    self.warnings.append(message)
                    if self.on_notice is not None:
                        self.on_notice(str(message.get("message") or "warning"))
                elif message.get("type") == "region_down":
                    self.region_down = str(message.get("dc") or "")
                    self.ended = str(
                        message.get("message") or f"region node `{self.region_down}` is down"
                    )
                    break
                elif message.get("type") == "removed":
                    self._was_removed(str(message.get("reason") or "no reason given"))
                    break
        except ConnectionClosed as exc:
            if exc.rcvd is not None and exc.rcvd.code == Close.REMOVED:
                self._was_removed(exc.rcvd.reason or "no reason given")
            elif self.ended is None and (exc.rcvd is None or exc.rcvd.code in _LOST):
                # the replica went away (not the control plane sending us off): join again
                if await self._rejoin(signal):
                    return
                self.ended = "the control plane went away and no replica took the participant back"
        if self.ended is None:
            self.ended = "the control plane closed the signalling connection"
        self._roster_changed.set()
        if self._relay is not None:
            await self._relay.close()

    def _relay_replaced(self, relay: ClientConnection) -> bool:
        return relay in self._replaced

    async def _rejoin(self, lost: ClientConnection) -> bool:
        """Join again through the next control-plane address (then the others, in turn) for
        up to :data:`REJOIN_SECONDS`; ``True`` once in again. A refusal is final."""
        joining, signing = self._joining, self._signing
        if joining is None or signing is None or self._private is None:
            return False
        loop = asyncio.get_running_loop()
        deadline = loop.time() + REJOIN_SECONDS
        old = self._relay
        if old is not None:
            self._replaced.add(old)
            self._relay = None
            await old.close()
        start = 1
        while loop.time() < deadline:
            for n in range(len(joining.controls)):
                url = joining.controls[(start + n) % len(joining.controls)]
                try:
                    signal, answer = await _handshake(
                        joining, url, self._private, signing, self.on_notice
                    )
                except (OSError, TimeoutError):
                    continue
                except MeridianError as exc:
                    if isinstance(exc, ConflictError | InputError) or "unreachable" in str(exc):
                        continue  # that replica is not serving (yet): try the next
                    self.ended = f"joining again was refused: {exc.message}"
                    return False
                try:
                    admission, key = _admission(answer)
                    self.participant = admission.participant
                    self.admission = admission
                    self._apply_roster(answer.get("signed_roster"))
                    self._add_key(key)
                    self.roster.clear()
                    for entry in answer.get("roster") or ():
                        if isinstance(entry, dict):
                            self._update_roster({"type": "joined", **entry})
                    fwd = joining.forwarded_for
                    await self._attach_relay(admission.relay, admission.grant, fwd)
                    await signal.send(json.dumps({"type": "connected"}))
                except (MeridianError, OSError, ConnectionClosed) as exc:
                    await signal.close()
                    log.warning("joining again through %s failed: %s", url, exc)
                    continue
                self._signal = signal
                self.rejoins += 1
                if self.on_notice is not None:
                    self.on_notice(
                        f"the control plane went away: joined again as {self.participant}"
                    )
                self._tasks.append(loop.create_task(self._listen(signal)))
                self._roster_changed.set()
                return True
            start = 0
            await asyncio.sleep(0.2)
        return False

    async def _renew_relay(self, grant: object) -> None:
        """Hand a fresh relay grant from signalling to the relay, before the last one expires
        (the relay ends the session when its grant expires unrenewed)."""
        if self._relay is None or not isinstance(grant, str):
            return
        with contextlib.suppress(ConnectionClosed):
            await self._relay.send(json.dumps({"type": "renew", "grant": grant}))

    def _was_removed(self, reason: str) -> None:
        """The control plane removed this participant (its relay or signalling says so first):
        say why, once."""
        first = self.removed is None
        # a close reason may have been cut short (123 bytes): the `removed` message has it all
        if first or len(reason) > len(self.removed or ""):
            self.removed = reason
            self.ended = _removed(reason)
        if first and self.on_notice is not None:
            self.on_notice(_removed(reason))

    # -- leaving --------------------------------------------------------------------------

    async def leave(self) -> None:
        """Leave: close the relay connection and the signalling socket (which is leaving)."""
        if self.ended is None:
            self.ended = "left"
        for conn in (self._relay, self._signal):
            if conn is not None:
                await conn.close()
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)

    async def __aenter__(self) -> Participant:
        return self

    async def __aexit__(self, *_: object) -> None:
        await self.leave()


async def _handshake(
    joining: _Joining,
    control_url: str,
    private: X25519PrivateKey,
    signing: Ed25519PrivateKey,
    on_notice: Callable[[str], None] | None,
) -> tuple[ClientConnection, dict[str, Any]]:
    """Open the signalling socket at ``control_url`` and say ``join``: the socket and the
    ``admitted`` answer (a refusal raises, the socket closed)."""
    headers = _headers(joining.token, joining.forwarded_for)
    signal = await _connect(signal_url(control_url, joining.meeting), "control plane", headers)
    try:
        join: dict[str, Any] = {
            "type": "join",
            "name": joining.name,
            "public_key": b64url(public_bytes(private)),
            "signing_key": b64url(signing_public_bytes(signing)),
        }
        if joining.invite:
            join["invite"] = joining.invite
        await signal.send(json.dumps(join))
        answer = await _next_message(signal, "control plane")
        while answer.get("type") == "waiting":
            if on_notice is not None:
                on_notice("waiting for the host to let you in")
            answer = await _next_message(signal, "control plane", _WAIT_SECONDS)
        if answer.get("type") == "refused":
            raise _refusal(answer)
        if answer.get("type") != "admitted":
            raise InputError(
                f"the control plane answered `{shown(answer.get('type'))}` to a join: "
                "expected `admitted` or `refused`"
            )
    except BaseException:
        await signal.close()
        raise
    return signal, answer
