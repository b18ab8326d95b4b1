"""Who may enter a meeting: its invite, its lock and its waiting room; and its key epochs.

A meeting's **invite** is a random join secret (192 bits) issued to whoever creates the meeting
and shown once; only its SHA-256 is stored. The host (or anyone who may manage the meeting: an
operator, the partner of the host's account) may rotate it, which shows the new secret once and
makes every earlier link useless. The meeting id alone admits nobody.

Who enters how (:func:`enter`)::

    the host account's own users, signed in    always (no invite, lock or waiting room)
    anyone else (operators and partners too)    only with the invite; not while locked;
                                                through the waiting room when it is on

Operators and partners manage meetings but are not in them: letting an operator in without the
invite would let the platform read an end-to-end encrypted meeting unseen. An operator who
rotates the invite to get in breaks the host's link, and the rotation is recorded.

**Epochs.** A meeting's key epoch is stored with it and only ever increases: each live session
(the first join after the meeting was empty, or after the control plane restarted) and each
rotation takes the next one, in a transaction (:func:`advance_epoch`), so no two sessions or
epochs of a meeting share a key context.

Every refusal, waiting-room decision, setting change and rotation is recorded in the log.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlalchemy import update

from ..audit import Actor, record
from ..errors import ConflictError, ForbiddenError, InputError
from ..identity.tokens import Caller
from ..runtime import Runtime
from ..storage.models import Meeting, MeetingStatus
from ..storage.orders import publish
from ..wire import Order
from .invite import invite_matches, new_invite
from .service import get_meeting

__all__ = [
    "INVITE_NEEDED",
    "Entry",
    "advance_epoch",
    "enter",
    "is_host",
    "parse_invite",
    "rotate_invite",
    "set_access",
]

#: the one line a joiner without the meeting's invite is told
INVITE_NEEDED = "this meeting needs its invite link: ask the host"
#: the longest invite accepted from a client (a secret is 32 characters)
MAX_INVITE_CHARS = 200


def parse_invite(value: Any) -> str | None:
    """The ``invite`` a client sent (``None``: none); :class:`InputError` if it is no secret."""
    if value is None or value == "":
        return None
    if not isinstance(value, str) or len(value) > MAX_INVITE_CHARS or not value.isprintable():
        raise InputError(f"`invite` must be text of at most {MAX_INVITE_CHARS} characters")
    return value


def is_host(caller: Caller | None, meeting: Meeting) -> bool:
    """Whether ``caller`` is one of the host account's own signed-in users."""
    return (
        caller is not None
        and caller.role == "user"
        and caller.account_id is not None
        and caller.account_id == meeting.host_account_id
    )


@dataclass(frozen=True, slots=True)
class Entry:
    """How one joiner may enter a live meeting (the refusals raise instead)."""

    meeting: str
    #: one of the host account's own users: it may admit and refuse waiting guests
    host: bool
    #: it must wait until the host admits it
    wait: bool


def enter(
    rt: Runtime,
    *,
    meeting_id: str,
    caller: Caller | None,
    invite: str | None,
    name: str,
    client_ip: str | None,
) -> Entry:
    """Judge whether a joiner may come in at all (before any placement); refusals are recorded.

    Raises :class:`ForbiddenError` without the invite or while the meeting is locked, and
    :class:`ConflictError` once it has ended; an unknown meeting is a 404.
    """
    at = rt.now()
    actor = caller.actor if caller is not None else Actor("anonymous", client_ip or "-")
    with rt.db.write() as session:
        meeting = get_meeting(session, None, meeting_id)
        host = is_host(caller, meeting)
        refusal: str | None = None
        why = ""
        # the invite first: without it, not even whether the meeting has ended is told
        if not host and not invite_matches(meeting.invite_hash, invite):
            refusal, why = INVITE_NEEDED, "invite" if invite is None else "wrong invite"
        elif meeting.status != MeetingStatus.LIVE:
            raise ConflictError(f"meeting `{meeting.id}` has ended")
        elif not host and meeting.locked:
            refusal, why = (
                f"meeting `{meeting.id}` is locked: the host lets nobody new in",
                "locked",
            )
        wait = not host and meeting.waiting_room
        if refusal is not None:
            record(
                session,
                actor=actor,
                action="meeting.refuse",
                subject_kind="meeting",
                subject_id=meeting.id,
                at=at,
                bundle_digest=rt.digest,
                details={"reason": why, "name": name, "ip": client_ip},
            )
    if refusal is not None:
        raise ForbiddenError(refusal)
    return Entry(meeting_id, host, wait)


def rotate_invite(rt: Runtime, *, caller: Caller, meeting_id: str) -> str:
    """Issue the meeting a new invite (the old one stops working); returns it, shown once."""
    at = rt.now()
    secret, digest = new_invite()
    with rt.db.write() as session:
        meeting = get_meeting(session, caller, meeting_id)
        if meeting.status != MeetingStatus.LIVE:
            raise ConflictError(f"meeting `{meeting.id}` has ended")
        meeting.invite_hash = digest
        record(
            session,
            actor=caller.actor,
            action="meeting.invite",
            subject_kind="meeting",
            subject_id=meeting.id,
            at=at,
            bundle_digest=rt.digest,
            details={"by": str(caller.actor)},
        )
    return secret


def set_access(
    rt: Runtime,
    *,
    caller: Caller,
    meeting_id: str,
    locked: bool | None = None,
    waiting_room: bool | None = None,
) -> Meeting:
    """Lock or unlock a live meeting, turn its waiting room on or off (``None``: unchanged)."""
    at = rt.now()
    with rt.db.write() as session:
        meeting = get_meeting(session, caller, meeting_id)
        if meeting.status != MeetingStatus.LIVE:
            raise ConflictError(f"meeting `{meeting.id}` has ended")
        before = {"locked": meeting.locked, "waiting_room": meeting.waiting_room}
        if locked is not None:
            meeting.locked = locked
        if waiting_room is not None:
            meeting.waiting_room = waiting_room
        after = {"locked": meeting.locked, "waiting_room": meeting.waiting_room}
        if after != before:
            record(
                session,
                actor=caller.actor,
                action="meeting.access",
                subject_kind="meeting",
                subject_id=meeting.id,
                at=at,
                bundle_digest=rt.digest,
                details={"before": before, **after},
            )
        session.flush()
        session.refresh(meeting)
        session.expunge(meeting)
    return meeting


def advance_epoch(rt: Runtime, meeting_id: str) -> int:
    """Take the meeting's next key epoch, in one transaction: it is higher than any before.
    Every other replica serving the meeting hands its participants that epoch's key once it
    commits (an order)."""
    with rt.db.write() as session:
        epoch = session.execute(
            update(Meeting)
            .where(Meeting.id == meeting_id)
            .values(epoch=Meeting.epoch + 1)
            .returning(Meeting.epoch)
        ).scalar_one()
        publish(session, Order.ROTATE, meeting=meeting_id, epoch=int(epoch))
    return int(epoch)
