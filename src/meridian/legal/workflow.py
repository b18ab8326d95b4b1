"""The lawful-request workflow: record, scope, approve or reject, apply, notify.

States::

    pending ──approve (a second operator)──▶ applied
       │                                       (blocks, suspensions, ended meetings, disclosures;
       │                                        notices now, or when a delayed-notice order ends)
       └──reject (any operator; or Meridian, when nothing is in scope)──▶ rejected

An applied request's blocks stand until an operator lifts them (``legal.lifted``); the request
stays ``applied``.

Every step is recorded with :func:`meridian.audit.record` in the transaction that makes it, as
``legal.received``, ``legal.scoped``, ``legal.approved`` | ``legal.rejected``, ``legal.applied``
and ``legal.notified`` (subject ``legal_request``, the request's id); the transparency report is
computed from these entries alone.

Two people, always: the operator who recorded a request cannot approve it. Operators are people
(:mod:`meridian.identity.people`), and "the same operator" is the same person, whichever of
their tokens acts (a token an operator mints over the API is theirs). A request recorded before
people existed names its token, which is resolved to the token's person; and, failing closed,
a person of the same name (compared case-insensitively) counts as the same operator too. A
refused self-approval is itself recorded. Nothing is applied
without an approval, and the scope is computed again at the instant of approval: whoever joined
meanwhile is counted, and a request with nothing left in scope is rejected then.

Operators only: every function here refuses any other role.
"""

from __future__ import annotations

import asyncio
from collections.abc import Collection
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Protocol

from sqlalchemy import select
from sqlalchemy.orm import Session

from ..audit import SYSTEM, Actor, record
from ..errors import ConflictError, ForbiddenError, NotFoundError, shown
from ..geography.jurisdictions import jurisdiction_name
from ..identity.people import operator_in_office
from ..identity.tokens import Caller
from ..meetings.blocks import lock_meeting, removal_reason
from ..meetings.service import close_meeting
from ..runtime import Runtime
from ..storage.models import (
    Account,
    AccountStatus,
    LegalBlock,
    LegalRequest,
    Meeting,
    MeetingStatus,
    Notice,
    Participation,
    Person,
    Token,
    new_id,
)
from ..storage.orders import publish
from ..storage.paging import page
from ..wire import Order
from .model import LegalRequestCreate, iso
from .scoping import (
    AccountFacts,
    Effect,
    MeetingFacts,
    ParticipantFacts,
    Scope,
    ScopeAsk,
    scope,
)

__all__ = [
    "DISCLOSED_FIELDS",
    "Applied",
    "Approval",
    "ForgetsTokens",
    "LiveMeetings",
    "approve",
    "approve_and_apply",
    "blocks_of",
    "disconnect",
    "get_request",
    "lift",
    "list_requests",
    "notify_due",
    "receive",
    "reject",
    "same_person",
]

#: What a non-content disclosure hands over of each kind of record (field names, listed in the
#: request's view; Meridian exports nothing itself). There is no content to hand over: meetings
#: are end-to-end encrypted and Meridian never holds their media or messages.
DISCLOSED_FIELDS: dict[str, tuple[str, ...]] = {
    "account": ("type", "name", "email", "country", "status", "org_id", "created_at"),
    "meeting": ("host_account_id", "topic", "regions", "created_at", "ended_at"),
    "participation": ("name", "ip", "country", "dc", "joined_at", "left_at"),
}
_KIND = "legal_request"


class LiveMeetings(Protocol):
    """The control plane's live meetings as applying a request uses them (``Signalling``)."""

    async def remove(
        self, meeting_id: str, participant_ids: Collection[str], *, reason: str
    ) -> list[str]: ...

    async def end(self, meeting_id: str) -> None: ...


class ForgetsTokens(Protocol):
    """What remembers authenticated API tokens (a door's token cache), told to forget them all."""

    def clear(self) -> None: ...


@dataclass(frozen=True, slots=True)
class Approval:
    """An applied request, and what the live meetings must still be told once it is committed."""

    request: LegalRequest
    #: the meeting whose live participants in the jurisdiction are disconnected, if any
    meeting_id: str | None
    #: the live participations to disconnect (their data-plane connections close)
    remove: tuple[str, ...]
    #: whether the meeting was ended (everyone in it is told)
    ended: bool
    reason: str


# -- reading -------------------------------------------------------------------------------


def _operator(session: Session, caller: Caller) -> tuple[Actor, str]:
    """The caller as an operator in office (:func:`~meridian.identity.people.operator_in_office`)."""
    return operator_in_office(
        session, caller, may="handle lawful requests", work="lawful requests are handled by people"
    )


def get_request(session: Session, request_id: str, *, lock: bool = False) -> LegalRequest:
    """One lawful request, or 404 (locked until the transaction ends, with ``lock``)."""
    query = select(LegalRequest).where(LegalRequest.id == request_id)
    row = session.scalars(query.with_for_update() if lock else query).first()
    if row is None:
        raise NotFoundError(f"no legal request `{shown(request_id)}`")
    return row


def list_requests(
    session: Session,
    *,
    state: str | None = None,
    jurisdiction: str | None = None,
    limit: int = 50,
    offset: int = 0,
) -> tuple[list[LegalRequest], int]:
    """A page of lawful requests, newest first, and how many match in all."""
    where = []
    if state:
        where.append(LegalRequest.state == state)
    if jurisdiction:
        where.append(LegalRequest.jurisdiction == jurisdiction)
    order = (LegalRequest.received_at.desc(), LegalRequest.id)
    return page(session, LegalRequest, where, order, limit=limit, offset=offset)


def blocks_of(session: Session, request_id: str) -> list[LegalBlock]:
    """The blocks a request left, active or lifted."""
    return list(
        session.scalars(
            select(LegalBlock).where(LegalBlock.request_id == request_id).order_by(LegalBlock.id)
        )
    )


def _subject(session: Session, kind: str, target_id: str) -> AccountFacts | MeetingFacts:
    """What Meridian knows of a target, for scoping."""
    if kind == "account":
        account = session.get(Account, target_id)
        if account is None:
            raise NotFoundError(f"no account `{shown(target_id)}`")
        return AccountFacts(account.id, account.country)
    meeting = session.get(Meeting, target_id)
    if meeting is None:
        raise NotFoundError(f"no meeting `{shown(target_id)}`")
    host = session.get(Account, meeting.host_account_id)
    assert host is not None  # a foreign key
    participations = session.scalars(
        select(Participation)
        .where(Participation.meeting_id == meeting.id)
        .order_by(Participation.joined_at, Participation.id)
    )
    return MeetingFacts(
        meeting.id,
        AccountFacts(host.id, host.country),
        meeting.host_country,
        meeting.status == MeetingStatus.LIVE,
        tuple(
            ParticipantFacts(p.id, p.country, p.account_id, p.left_at is None)
            for p in participations
        ),
    )


def _scope(session: Session, row: LegalRequest) -> Scope:
    ask = ScopeAsk(row.jurisdiction, row.legal_type, row.action, row.target_kind)
    return scope(ask, _subject(session, row.target_kind, row.target_id))


def _record(
    session: Session,
    rt: Runtime,
    row: LegalRequest,
    action: str,
    at: datetime,
    actor: Actor,
    details: dict[str, Any],
) -> None:
    record(
        session,
        actor=actor,
        action=action,
        subject_kind=_KIND,
        subject_id=row.id,
        at=at,
        bundle_digest=rt.digest,
        details=details,
    )


def _reject(
    session: Session, rt: Runtime, row: LegalRequest, at: datetime, by: Actor, reason: str
) -> None:
    row.state = "rejected"
    row.rejected_by = str(by)
    row.rejected_at = at
    row.reject_reason = reason
    _record(session, rt, row, "legal.rejected", at, by, {"by": str(by), "reason": reason})


# -- the steps -----------------------------------------------------------------------------


def receive(rt: Runtime, *, caller: Caller, body: LegalRequestCreate) -> LegalRequest:
    """Record a lawful request and its scope; reject it at once if nothing is in scope.

    The target must exist (404 otherwise). The request waits for a second operator's approval.
    """
    body.check()
    at = rt.now()
    with rt.db.write() as session:
        actor, name = _operator(session, caller)
        subject = _subject(session, body.target.kind, body.target.id)
        ask = ScopeAsk(body.jurisdiction, body.legal_type, body.action, body.target.kind)
        scoped = scope(ask, subject)
        row = LegalRequest(
            id=new_id("lr"),
            authority=body.authority,
            jurisdiction=body.jurisdiction,
            legal_type=body.legal_type,
            reference=body.reference,
            target_kind=body.target.kind,
            target_id=body.target.id,
            action=body.action,
            notice_delay_until=body.notice_delay_until,
            documents=[d.model_dump() for d in body.documents],
            state="pending",
            scope=scoped.to_dict(),
            received_at=at,
            recorded_by=str(actor),
            recorded_by_name=name,
        )
        session.add(row)
        received = {"request": body.as_received(), "recorded_by": str(actor)}
        _record(session, rt, row, "legal.received", at, actor, received)
        _record(session, rt, row, "legal.scoped", at, SYSTEM, scoped.to_dict())
        if scoped.outcome == "none":
            _reject(session, rt, row, at, SYSTEM, scoped.why)
        session.flush()
        return row


def reject(rt: Runtime, *, caller: Caller, request_id: str, reason: str) -> LegalRequest:
    """Reject a pending request (any operator, the one who recorded it included)."""
    at = rt.now()
    with rt.db.write() as session:
        actor, _ = _operator(session, caller)
        row = get_request(session, request_id, lock=True)
        if row.state != "pending":
            raise ConflictError(f"legal request `{row.id}` is already `{row.state}`")
        _reject(session, rt, row, at, actor, reason)
        return row


def same_person(
    session: Session, caller: Caller, recorded_by: str, recorded_by_name: str
) -> str | None:
    """Why ``caller`` counts as the operator who recorded a request, in words, if it does.

    ``recorded_by`` is the recorder's actor: ``operator:psn_…``, or ``operator:tok_…`` for a
    request recorded before operators were people (resolved to that token's person).
    """
    role, _, who = recorded_by.partition(":")
    person = who
    if role == "operator" and who.startswith("tok_"):
        token = session.get(Token, who)
        person = "" if token is None or token.person_id is None else token.person_id
    if person == caller.person_id or who == caller.token_id:
        return f"this operator, `{shown(recorded_by_name)}` (`{caller.person_id}`)"
    me = None if caller.person_id is None else session.get(Person, caller.person_id)
    if me is not None and me.name.casefold() == recorded_by_name.casefold():
        return f"an operator of the same name, `{shown(me.name)}`"
    return None


def approve(rt: Runtime, *, caller: Caller, request_id: str) -> Approval:
    """Approve a pending request as the second operator, and apply it in the same transaction.

    The scope is computed again now. Raises :class:`ForbiddenError` for the operator who recorded
    the request (the refusal is recorded), :class:`ConflictError` for a request no longer
    pending, or one with nothing left in scope (which is then rejected, and recorded so).
    """
    at = rt.now()
    failure: ForbiddenError | ConflictError | None = None
    approval: Approval | None = None
    with rt.db.write() as session:
        actor, name = _operator(session, caller)
        row = get_request(session, request_id, lock=True)
        if row.state != "pending":
            raise ConflictError(
                f"legal request `{row.id}` is already `{row.state}`: it cannot be approved"
            )
        same = same_person(session, caller, row.recorded_by, row.recorded_by_name)
        if same is not None:
            message = (
                f"legal request `{row.id}` was recorded by {same}: "
                "a second operator must approve it"
            )
            details = {"by": str(actor), "reason": message}
            _record(session, rt, row, "legal.approval_refused", at, actor, details)
            failure = ForbiddenError(message)
        else:
            if row.target_kind != "account":
                lock_meeting(session, row.target_id)
            scoped = _scope(session, row)
            if scoped.outcome == "none":
                why = f"at approval, {scoped.why}"
                _reject(session, rt, row, at, SYSTEM, why)
                failure = ConflictError(f"legal request `{row.id}` was rejected: {why}")
            else:
                row.approved_by, row.approved_by_name, row.approved_at = str(actor), name, at
                _record(session, rt, row, "legal.approved", at, actor, {"by": str(actor)})
                approval = _apply(session, rt, row, scoped, at, actor)
    if failure is not None:
        raise failure
    assert approval is not None
    return approval


def _apply(
    session: Session, rt: Runtime, row: LegalRequest, scoped: Scope, at: datetime, actor: Actor
) -> Approval:
    """Put an approved scope into effect and record ``legal.applied`` (and notices)."""
    affected = scoped.affected()
    suspended: list[str] = []
    ended: list[str] = []
    for e in affected:
        if e.effect == "suspend":
            account = session.get(Account, e.id, with_for_update=True)
            assert account is not None
            account.status = AccountStatus.SUSPENDED
            account.updated_at = at
            suspended.append(account.id)
            # every replica forgets the callers it remembered once this commits
            publish(session, Order.SUSPEND, account=account.id)
            _record_change(session, rt, row, "account.suspend", "account", e.id, at, actor)
        elif e.kind == "meeting" and e.effect == "end":
            _end_meeting(session, rt, row, e.id, at, actor)
            ended.append(e.id)
    blocked = [e for e in affected if e.effect == "block"]
    if blocked:
        session.add(
            LegalBlock(
                id=new_id("blk"),
                meeting_id=row.target_id,
                jurisdiction=row.jurisdiction,
                request_id=row.id,
                active=True,
                created_at=at,
                lifted_at=None,
            )
        )
    disclosed = [_disclosed(e, row) for e in affected if e.effect.startswith("disclose_")]
    people = _people(session, row, affected)
    not_notifiable = [e.id for e in affected if e.kind == "participant" and e.account_id is None]
    delayed = row.notice_delay_until is not None and row.notice_delay_until > at
    notice = "none" if not people else ("delayed" if delayed else "sent")
    details: dict[str, Any] = {
        "outcome": "applied" if scoped.outcome == "full" else "narrowed",
        "accounts": list(people),
        "participants": [e.id for e in affected if e.kind == "participant"],
        "meetings_ended": ended,
        # Meridian holds no content to hand over, so a content disclosure counts none of it
        "disclosures": {"content": 0, "non_content": len(disclosed)},
        "notice": notice,
        "notice_delay_until": None
        if row.notice_delay_until is None
        else iso(row.notice_delay_until),
        # participants who joined without an account: there is no one to send a notice to
        "not_notifiable": not_notifiable,
        # the scope as computed at approval, entity by entity (what was applied)
        "effects": [e.to_dict() for e in scoped.effects],
    }
    _record(session, rt, row, "legal.applied", at, actor, details)
    row.state = "applied"
    row.applied_at = at
    row.notice = notice
    row.applied = {
        **details,
        "disclosed": disclosed,
        "notices": {account: _message(row, what) for account, what in people.items()},
    }
    if notice == "sent":
        _notify(session, rt, row, at, delayed=False)
    live = tuple(e.id for e in blocked if e.live)
    approval = Approval(
        request=row,
        meeting_id=row.target_id if row.target_kind != "account" else None,
        remove=live,
        ended=bool(ended),
        reason=removal_reason(row.id, row.jurisdiction),
    )
    if approval.remove and approval.meeting_id is not None:
        # every replica cuts those connected through it, once (and only if) this commits;
        # this one does so itself (disconnect) for its own
        publish(
            session,
            Order.REMOVE,
            meeting=approval.meeting_id,
            participants=list(approval.remove),
            reason=approval.reason,
        )
    return approval


def _record_change(
    session: Session,
    rt: Runtime,
    row: LegalRequest,
    action: str,
    kind: str,
    subject_id: str,
    at: datetime,
    actor: Actor,
) -> None:
    record(
        session,
        actor=actor,
        action=action,
        subject_kind=kind,
        subject_id=subject_id,
        at=at,
        bundle_digest=rt.digest,
        details={"request": row.id},
    )


def _end_meeting(
    session: Session, rt: Runtime, row: LegalRequest, meeting_id: str, at: datetime, actor: Actor
) -> None:
    # In this transaction: the meeting ends if and only if the request is applied.
    meeting = session.get(Meeting, meeting_id)
    assert meeting is not None
    assert meeting.status == MeetingStatus.LIVE  # scoping said so, under the meeting's lock
    close_meeting(
        session, meeting, at=at, actor=actor, digest=rt.digest, details={"request": row.id}
    )


def _disclosed(e: Effect, row: LegalRequest) -> dict[str, Any]:
    kind = "participation" if e.kind == "participant" else e.kind
    return {"kind": kind, "id": e.id, "fields": list(DISCLOSED_FIELDS[kind])}


def _people(session: Session, row: LegalRequest, affected: list[Effect]) -> dict[str, list[str]]:
    """Each account an applied effect reaches, with what happened to it (in order)."""
    out: dict[str, list[str]] = {}
    place = jurisdiction_name(row.jurisdiction)
    for e in affected:
        if e.kind == "account":
            what = (
                f"account `{e.id}` was suspended"
                if e.effect == "suspend"
                else f"the records of account `{e.id}` were disclosed (non-content)"
            )
            out.setdefault(e.id, []).append(what)
        elif e.kind == "meeting":
            meeting = session.get(Meeting, e.id)
            assert meeting is not None
            what = (
                f"meeting `{e.id}` that it hosts was ended"
                if e.effect == "end"
                else f"the records of meeting `{e.id}` that it hosts were disclosed (non-content)"
            )
            out.setdefault(meeting.host_account_id, []).append(what)
        elif e.account_id is not None:
            meeting_id = row.target_id
            if e.effect == "end":
                what = f"meeting `{meeting_id}` it took part in was ended"
            elif e.effect == "block":
                what = f"it was removed from meeting `{meeting_id}` and cannot join it from {place}"
            else:
                what = f"the record of its participation `{e.id}` in meeting `{meeting_id}` was disclosed (non-content)"
            out.setdefault(e.account_id, []).append(what)
    return out


def _message(row: LegalRequest, what: list[str]) -> str:
    place = jurisdiction_name(row.jurisdiction)
    return (
        f"{'; '.join(what)}: at a lawful request from {place} "
        f"({row.legal_type.replace('_', ' ')} `{row.reference}` of {row.authority}; "
        f"Meridian request `{row.id}`)"
    )


def _notify(
    session: Session, rt: Runtime, row: LegalRequest, at: datetime, *, delayed: bool
) -> None:
    """Queue each affected account's notice and record ``legal.notified``."""
    assert row.applied is not None
    notices: dict[str, str] = row.applied["notices"]
    for account_id, message in notices.items():
        session.add(
            Notice(
                id=new_id("ntc"),
                account_id=account_id,
                kind="legal.request",
                message=message,
                subject_id=row.id,
                created_at=at,
                sent_at=None,
            )
        )
    row.notice = "sent"
    row.notified_at = at
    details = {"accounts": list(notices), "delayed": delayed}
    _record(session, rt, row, "legal.notified", at, SYSTEM, details)


def lift(rt: Runtime, *, caller: Caller, request_id: str, reason: str) -> LegalRequest:
    """End the blocks an applied request left (any operator): its jurisdiction may join again.

    Raises :class:`ConflictError` when the request has no block standing.
    """
    at = rt.now()
    with rt.db.write() as session:
        actor, _ = _operator(session, caller)
        row = get_request(session, request_id, lock=True)
        standing = [b for b in blocks_of(session, row.id) if b.active]
        if not standing:
            raise ConflictError(f"legal request `{row.id}` has no block standing")
        for block in standing:
            lock_meeting(session, block.meeting_id)
            block.active = False
            block.lifted_at = at
        details = {"by": str(actor), "reason": reason, "blocks": [b.id for b in standing]}
        _record(session, rt, row, "legal.lifted", at, actor, details)
        return row


def notify_due(rt: Runtime) -> int:
    """Send the notices whose delayed-notice order has ended by now; returns how many requests.

    Run at start-up and with the renewal job; each request in its own transaction, under a row
    lock, so two runners never notify twice.
    """
    at = rt.now()
    with rt.db.read() as session:
        due = list(
            session.scalars(
                select(LegalRequest.id)
                .where(
                    LegalRequest.notice == "delayed",
                    LegalRequest.notice_delay_until <= at,
                )
                .order_by(LegalRequest.notice_delay_until, LegalRequest.id)
            )
        )
    done = 0
    for request_id in due:
        with rt.db.write() as session:
            row = get_request(session, request_id, lock=True)
            if row.notice != "delayed":
                continue
            _notify(session, rt, row, at, delayed=True)
            done += 1
    return done


async def disconnect(live: LiveMeetings | None, approval: Approval) -> list[str]:
    """Tell the live meetings what an approval changed: disconnect the removed participants, or
    end the meeting. Returns the participations actually disconnected.

    ``None`` (no region nodes) means no one is connected, so there is no one to tell.
    """
    if live is None or approval.meeting_id is None:
        return []
    removed: list[str] = []
    if approval.remove:
        removed = await live.remove(approval.meeting_id, approval.remove, reason=approval.reason)
    if approval.ended:
        await live.end(approval.meeting_id)
    return removed


@dataclass(frozen=True, slots=True)
class Applied:
    """An approval and what followed it: the live participations actually disconnected."""

    approval: Approval
    disconnected: tuple[str, ...]


async def approve_and_apply(
    rt: Runtime,
    *,
    caller: Caller,
    request_id: str,
    tokens: ForgetsTokens | None,
    live: LiveMeetings | None,
) -> Applied:
    """Approve a pending request (:func:`approve`) and do what must follow once it is committed.

    Every remembered token is forgotten, so a suspended account's user tokens stop working now
    rather than when a cache next expires; then the live meetings are told (:func:`disconnect`):
    the participants in the jurisdiction are disconnected, or the meeting is ended. A refused
    approval raises before anything follows. Every door that approves calls this, and only this.
    """
    approval = await asyncio.to_thread(approve, rt, caller=caller, request_id=request_id)
    if tokens is not None:
        tokens.clear()
    disconnected = await disconnect(live, approval)
    return Applied(approval, tuple(disconnected))
