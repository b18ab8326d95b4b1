"""Meetings in the database: the region setting, creating and ending meetings, admitting joiners.

Who sees what (enforced here, not in the HTTP layer)::

    operator   every meeting and account setting
    partner    meetings hosted by accounts it manages
    user       meetings its own account hosts; its own account's setting

Every change and every join decision is recorded in the transaction that makes it.
"""

from __future__ import annotations

import secrets
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import ColumnElement, func, select, true, update
from sqlalchemy import text as sql_text
from sqlalchemy.orm import Session

from ..audit import Actor, record
from ..cluster import lease_expired
from ..commerce.plans import current_subscription
from ..errors import ConflictError, DeniedError, ForbiddenError, InputError, NotFoundError, shown
from ..gate import ask, deny_message, public_decision, with_contacts
from ..identity.accounts import get_account
from ..identity.tokens import Caller
from ..runtime import Runtime
from ..storage.models import Account, AccountStatus, Meeting, MeetingStatus, Participation, new_id
from ..storage.orders import publish
from ..storage.paging import page
from ..wire import Order
from .blocks import refuse_blocked
from .invite import new_invite
from .limits import refuse_full
from .placement import CountryList, MeetingPlan, Occupancy, Placement, place, plan_meeting
from .regions import RegionTable, region_table

__all__ = [
    "Admission",
    "LiveCounts",
    "account_plan",
    "admit",
    "close_meeting",
    "close_stale",
    "count_places",
    "create_meeting",
    "end_meeting",
    "get_meeting",
    "leave",
    "list_meetings",
    "live_counts",
    "meeting_filter",
    "meeting_plan",
    "meeting_spread",
    "region_setting",
    "set_regions",
    "visible_meetings",
]


def account_plan(session: Session, rt: Runtime, account: Account, at: datetime) -> tuple[str, bool]:
    """The plan ``account`` holds at ``at`` and whether it is paid (a plan the bundle no longer
    lists counts as free: fail closed)."""
    sub = current_subscription(session, account.id, at)
    plan_id = sub.plan if sub is not None else "free"
    plan = rt.engine.bundle.document.plans.get(plan_id)
    return plan_id, bool(plan is not None and plan.paid)


def region_setting(session: Session, rt: Runtime, account: Account) -> dict[str, Any]:
    """The account's region setting as the API shows it: chosen, opted in, and what applies now."""
    at = rt.now()
    table = region_table(rt.engine.bundle)
    plan_id, paid = account_plan(session, rt, account, at)
    allowed = table.allowed_set(
        account.country,
        paid=paid,
        chosen=account.meeting_regions,
        opted_in=account.regions_opt_in or (),
    )
    return {
        "account": account.id,
        "plan": plan_id,
        "home_region": table.home(account.country),
        "chosen": account.meeting_regions,
        "opt_in": account.regions_opt_in or [],
        "default": sorted(table.default_set(account.country)),
        "regions": sorted(allowed),
    }


def set_regions(
    rt: Runtime,
    *,
    caller: Caller,
    account_id: str,
    regions: Sequence[str] | None,
    opt_in: Sequence[str] = (),
) -> dict[str, Any]:
    """Choose the regions the account's meetings may use (``None``: back to the default set).

    Operators and the account's own users only; paid plans only. The home region is always
    kept. An opt-in region outside the account's jurisdiction (CN for everyone outside mainland
    China) must be named in ``opt_in`` as well: that opt-in is recorded with who made it.
    """
    if caller.role == "partner":
        raise ForbiddenError("a partner cannot change an account's data-centre regions")
    at = rt.now()
    table = region_table(rt.engine.bundle)
    with rt.db.write() as session:
        account = get_account(session, caller, account_id)
        _, paid = account_plan(session, rt, account, at)
        if not paid:
            raise ForbiddenError(
                f"account `{account.id}` is on a free plan: its meetings use the default regions"
            )
        opted = table.check_regions(opt_in, field="opt_in")
        for region in opted:
            if regions is None or region not in regions:
                raise InputError(f"`opt_in` names `{region}`, which is not in `regions`")
            if not table.needs_opt_in(region, account.country):
                raise InputError(
                    f"region `{region}` needs no opt-in for an account in `{account.country}`"
                )
        chosen = None if regions is None else table.check_regions(regions)
        allowed = table.allowed_set(account.country, paid=True, chosen=chosen, opted_in=opted)
        before = {"chosen": account.meeting_regions, "opt_in": account.regions_opt_in}
        newly = sorted(set(opted) - set(account.regions_opt_in or ()))
        account.meeting_regions = None if chosen is None else sorted(allowed)
        account.regions_opt_in = [r for r in opted if r in allowed] or None
        account.updated_at = at
        record(
            session,
            actor=caller.actor,
            action="account.regions",
            subject_kind="account",
            subject_id=account.id,
            at=at,
            bundle_digest=rt.digest,
            details={
                "before": before,
                "chosen": account.meeting_regions,
                "opt_in": account.regions_opt_in,
                "opted_in_now": newly,
                "by": str(caller.actor),
            },
        )
        return region_setting(session, rt, account)


def meeting_filter(caller: Caller) -> ColumnElement[bool]:
    """The SQL condition for the meetings ``caller`` may see."""
    if caller.role == "operator":
        return true()
    if caller.role == "partner":
        return Meeting.host_account_id.in_(
            select(Account.id).where(Account.partner_id == caller.partner_id)
        )
    return Meeting.host_account_id == caller.account_id


def get_meeting(session: Session, caller: Caller | None, meeting_id: str) -> Meeting:
    """One meeting the caller may see (``None``: the control plane itself), or 404."""
    query = select(Meeting).where(Meeting.id == meeting_id)
    if caller is not None:
        query = query.where(meeting_filter(caller))
    row = session.scalars(query).first()
    if row is None:
        raise NotFoundError(f"no meeting `{shown(meeting_id)}`")
    return row


def visible_meetings(session: Session, caller: Caller, ids: Sequence[str]) -> set[str]:
    """Which of these meeting ids ``caller`` may see (operators all; see the module's table)."""
    if not ids:
        return set()
    query = select(Meeting.id).where(Meeting.id.in_(list(ids)), meeting_filter(caller))
    return set(session.scalars(query))


def list_meetings(
    session: Session,
    caller: Caller,
    *,
    status: str | None = None,
    limit: int = 50,
    offset: int = 0,
) -> tuple[list[Meeting], int]:
    where = [meeting_filter(caller)]
    if status:
        where.append(Meeting.status == status)
    order = (Meeting.created_at.desc(), Meeting.id)
    return page(session, Meeting, where, order, limit=limit, offset=offset)


@dataclass(frozen=True, slots=True)
class LiveCounts:
    """How many meetings are live and how many participants are in them, for one caller."""

    meetings: int
    participants: int


def live_counts(session: Session, caller: Caller) -> LiveCounts:
    """The one count of live meetings every page and endpoint shows.

    A meeting is live from its creation until it ends (its host, an operator, the plan's
    minutes, or being empty for ``meeting_empty_timeout``): its ``status`` is ``live``. Its
    participants are its participations admitted and not yet left. Scoped as
    :func:`list_meetings` is.
    """
    live = [meeting_filter(caller), Meeting.status == MeetingStatus.LIVE]
    meetings = session.scalar(select(func.count()).select_from(Meeting).where(*live))
    participants = session.scalar(
        select(func.count())
        .select_from(Participation)
        .join(Meeting, Meeting.id == Participation.meeting_id)
        .where(*live, Participation.left_at.is_(None))
    )
    return LiveCounts(int(meetings or 0), int(participants or 0))


def meeting_plan(meeting: Meeting) -> MeetingPlan:
    """The plan stored with a meeting (fixed when it was created)."""
    return MeetingPlan(
        meeting.host_country,
        frozenset(meeting.regions),
        meeting.key_region,
        CountryList.parse(meeting.countries),
    )


def create_meeting(
    rt: Runtime,
    *,
    caller: Caller,
    host_account_id: str | None,
    topic: str,
    countries: dict[str, Any] | None,
    client_ip: str | None,
) -> tuple[Meeting, dict[str, Any], str]:
    """Create a meeting hosted by an account, if the ``host`` decision allows it now.

    A user hosts for its own account; an operator (or a partner, for a customer) names the
    account. The meeting's allowed regions and key region are fixed now from the account's
    setting and the bundle in force. Returns the meeting, the decision and its invite (the join
    secret, shown only now: only its hash is stored).
    """
    at = rt.now()
    engine = rt.engine
    table = region_table(engine.bundle)
    country_list = CountryList.parse(countries)
    account_id = host_account_id or caller.account_id
    if account_id is None:
        raise InputError("missing field `host`: name the account that hosts the meeting")
    with rt.db.write() as session:
        account = get_account(session, caller, account_id)
        plan_id, paid = account_plan(session, rt, account, at)
        _, decision = ask(
            engine,
            action="host",
            at=at,
            subject={
                "type": account.type,
                "id": account.id,
                "country": account.country,
                "plan": plan_id,
                "org_id": account.org_id,
                "ip": client_ip if caller.role == "user" else None,
            },
        )
        plan = engine.bundle.document.plans.get(plan_id)
        refused = not decision.allowed or plan is None or not plan.may_host
        if account.status != AccountStatus.ACTIVE:
            raise ConflictError(f"account `{account.id}` is `{account.status}`: it cannot host")
        record(
            session,
            actor=caller.actor,
            action="meeting.host",
            subject_kind="account",
            subject_id=account.id,
            at=at,
            bundle_digest=decision.bundle.digest,
            decision=decision,
            details={"plan": plan_id, "topic": topic},
        )
        decided = with_contacts(session, decision)
        public = decided.to_dict()
        if refused:
            message = (
                deny_message(decision)
                if not decision.allowed
                else f"plan `{plan_id}` does not include hosting in the bundle in force"
            )
            failure: DeniedError | None = DeniedError(message, decided)
        else:
            failure = None
            invite, invite_hash = new_invite()
            mplan = plan_meeting(
                table,
                host_country=account.country,
                paid=paid,
                at=at,
                chosen=account.meeting_regions,
                opted_in=account.regions_opt_in or (),
                countries=country_list,
            )
            meeting = Meeting(
                id=new_id("mtg"),
                host_account_id=account.id,
                topic=topic,
                host_country=account.country,
                regions=sorted(mplan.regions),
                key_region=mplan.key_region,
                countries=country_list.to_dict(),
                status=MeetingStatus.LIVE,
                bundle_digest=decision.bundle.digest,
                created_at=at,
                ended_at=None,
                invite_hash=invite_hash,
                locked=False,
                waiting_room=False,
                epoch=0,
            )
            session.add(meeting)
            session.flush()
            record(
                session,
                actor=caller.actor,
                action="meeting.create",
                subject_kind="meeting",
                subject_id=meeting.id,
                at=at,
                bundle_digest=decision.bundle.digest,
                details={
                    "host": account.id,
                    "regions": meeting.regions,
                    "key_region": meeting.key_region,
                    "countries": meeting.countries,
                },
            )
    if failure is not None:
        raise failure
    return meeting, public, invite


def end_meeting(
    rt: Runtime,
    *,
    caller: Caller | None,
    meeting_id: str,
    actor: Actor,
    reason: str | None = None,
) -> Meeting:
    """End a live meeting (its host, an operator, or the control plane; ``reason`` is recorded
    in the ``meeting.end`` details when given)."""
    at = rt.now()
    with rt.db.write() as session:
        meeting = get_meeting(session, caller, meeting_id)
        if meeting.status != MeetingStatus.LIVE:
            raise ConflictError(f"meeting `{meeting.id}` has already ended")
        details = None if reason is None else {"reason": reason}
        close_meeting(session, meeting, at=at, actor=actor, digest=rt.digest, details=details)
    return meeting


def close_meeting(
    session: Session,
    meeting: Meeting,
    *,
    at: datetime,
    actor: Actor,
    digest: str,
    details: dict[str, Any] | None = None,
) -> None:
    """Mark a live ``meeting`` ended, with everyone in it gone, in ``session``'s transaction;
    every replica ends it for those connected through it once this commits (an order)."""
    meeting.status = MeetingStatus.ENDED
    reason = (details or {}).get("reason")
    publish(
        session, Order.END, meeting=meeting.id, reason=reason if isinstance(reason, str) else None
    )
    meeting.ended_at = at
    for p in session.scalars(
        select(Participation).where(
            Participation.meeting_id == meeting.id, Participation.left_at.is_(None)
        )
    ):
        p.left_at = at
    record(
        session,
        actor=actor,
        action="meeting.end",
        subject_kind="meeting",
        subject_id=meeting.id,
        at=at,
        bundle_digest=digest,
        details=details,
    )


@dataclass(frozen=True, slots=True)
class Admission:
    """The outcome of one join: the placement and, when admitted, the participation."""

    meeting: Meeting
    plan: MeetingPlan
    placement: Placement
    participation: Participation | None
    decision: dict[str, Any] | None
    #: the meeting's key epoch as the joiner was admitted (a new session's is newly taken)
    epoch: int | None = None
    #: the meeting's participants per region across every replica, the joiner included
    spread: dict[str, int] = field(default_factory=dict)
    #: the live session every replica asks the key server for keys of (``None``: refused)
    session: str | None = None
    #: the joiner started that session (nobody was in the meeting on any replica)
    new_session: bool = False


#: the PostgreSQL advisory lock every replica places joiners under (the first 8 bytes of
#: SHA-256 of "meridian.meetings.place", as a signed integer)
_PLACE_LOCK = int.from_bytes(bytes.fromhex("1f7c2d2b2438af02"), "big", signed=True)


def count_places(session: Session, occupancy: Occupancy, *, lock: bool = True) -> None:
    """Set ``occupancy`` to what every replica's live meetings hold now: the open
    participations of live meetings per data centre, read in ``session``'s transaction.

    With ``lock`` (to place a joiner), on PostgreSQL it first takes the placement lock
    (released at commit), so two replicas never both count the last place as free; a SQLite
    write transaction holds the database's write lock from its start already.
    """
    if lock and session.get_bind().dialect.name == "postgresql":
        session.execute(sql_text("SELECT pg_advisory_xact_lock(:key)"), {"key": _PLACE_LOCK})
    rows = session.execute(
        select(Participation.dc, func.count())
        .join(Meeting, Meeting.id == Participation.meeting_id)
        .where(Participation.left_at.is_(None), Meeting.status == MeetingStatus.LIVE)
        .group_by(Participation.dc)
    )
    counted = {str(dc): int(n) for dc, n in rows}
    for code in occupancy.used:
        occupancy.used[code] = counted.get(code, 0)


def meeting_spread(session: Session, meeting_id: str) -> dict[str, int]:
    """The meeting's open participations per data centre, whichever replica admitted them."""
    rows = session.execute(
        select(Participation.dc, func.count())
        .where(Participation.meeting_id == meeting_id, Participation.left_at.is_(None))
        .group_by(Participation.dc)
    )
    return {str(dc): int(n) for dc, n in rows if n}


def admit(
    rt: Runtime,
    *,
    meeting_id: str,
    name: str,
    caller: Caller | None,
    client_ip: str | None,
    occupancy: Occupancy,
    uses: dict[str, int],
    table: RegionTable | None = None,
    participant_id: str | None = None,
    new_session: bool = False,
    signing_key: str | None = None,
) -> Admission:
    """Judge and place one joiner of a live meeting, and record it (allowed or refused).

    The participant's location is its connection address (``client_ip``) and nothing else. The
    caller's account, when a token was sent, gives the subject's type and plan. An admitted
    joiner starting a new live session (nobody is in the meeting on any replica, or
    ``new_session`` forces one) takes the meeting's next key epoch and a new session name in
    the same transaction (:attr:`Admission.epoch`, :attr:`Admission.session`): a session never
    reuses an earlier one's keys, and every replica serving the meeting uses the same session
    and epochs. ``signing_key`` (base64url) is the joiner's, for the roster every replica
    signs.

    Capacity is global: ``occupancy`` is counted again from the database, under the placement
    lock, in the transaction that records the join (:func:`count_places`), so replicas sharing
    the database never admit more than a data centre holds. The joiner is placed against the
    meeting's spread over every replica (:attr:`Admission.spread`); ``uses``, this replica's
    own count per region, gains the joiner when it is admitted.
    """
    at = rt.now()
    engine = rt.engine
    table = table or region_table(engine.bundle)
    with rt.db.write() as session:
        meeting = get_meeting(session, None, meeting_id)
        if meeting.status != MeetingStatus.LIVE:
            raise ConflictError(f"meeting `{meeting.id}` has ended")
        subject: dict[str, Any] = {"ip": client_ip}
        account_id = caller.account_id if caller is not None else None
        if account_id is not None:
            account = session.get(Account, account_id)
            if account is not None:
                subject["type"] = account.type
                subject["plan"] = account_plan(session, rt, account, at)[0]
        mplan = meeting_plan(meeting)
        pid = participant_id or new_id("p")
        count_places(session, occupancy)
        spread = meeting_spread(session, meeting.id)
        fresh = new_session or not spread or meeting.session is None
        placement = place(engine, table, mplan, pid, subject, at, occupancy, spread)
        # a block left by a lawful request refuses joiners from its jurisdiction, naming it
        placement = refuse_blocked(session, meeting.id, placement, occupancy, spread)
        # the host's plan holds so many at once: one more is refused, naming the plan
        placement = refuse_full(session, rt, meeting, placement, occupancy, spread, at)
        assert placement.join is not None
        record(
            session,
            actor=caller.actor if caller is not None else Actor("anonymous", client_ip or "-"),
            action="meeting.join",
            subject_kind="meeting",
            subject_id=meeting.id,
            at=at,
            bundle_digest=placement.join.bundle.digest,
            decision=placement.join,
            details={**placement.to_dict(), "name": name},
        )
        participation = None
        public = None
        epoch = None
        if placement.allowed and fresh:
            # in SQL (`epoch = epoch + 1`), so two writers can never take the same epoch
            meeting.epoch = Meeting.epoch + 1
            meeting.session = "s_" + secrets.token_urlsafe(9)
            session.flush()
            epoch = int(meeting.epoch)
        elif placement.allowed:
            epoch = int(meeting.epoch)
        if placement.allowed:
            assert placement.dc is not None
            uses[placement.dc] = uses.get(placement.dc, 0) + 1
            participation = Participation(
                replica=rt.replica.id,
                id=pid,
                meeting_id=meeting.id,
                account_id=account_id,
                name=name,
                ip=client_ip,
                country=placement.country,
                dc=placement.dc,
                joined_at=at,
                left_at=None,
                signing_key=signing_key,
            )
            session.add(participation)
            # every other replica serving the meeting hands out its roster with the newcomer
            publish(session, Order.ROSTER, meeting=meeting.id)
        else:
            public = public_decision(session, placement.join)
            public["decision"] = "deny"
            public["reasons"] = [r.to_dict() for r in placement.reasons]
    return Admission(
        meeting,
        mplan,
        placement,
        participation,
        public,
        epoch,
        spread,
        meeting.session if placement.allowed else None,
        fresh and placement.allowed,
    )


def leave(
    rt: Runtime,
    *,
    participation_id: str,
    removal: dict[str, Any] | None = None,
    epochs: Sequence[int] = (),
) -> None:
    """Mark a participant as gone (its signalling socket closed, or ``removal`` says why it was
    removed: recorded in the details under ``removal``); ``epochs`` are the key epochs it held,
    recorded for the meeting's residency receipt."""
    at = rt.now()
    with rt.db.write() as session:
        p = session.get(Participation, participation_id)
        if p is None or p.left_at is not None:
            return
        p.left_at = at
        # every other replica serving the meeting tells its participants and signs the roster
        publish(session, Order.ROSTER, meeting=p.meeting_id, left=[p.id])
        details: dict[str, Any] = {"participant": p.id, "dc": p.dc}
        if epochs:
            details["epochs"] = sorted(set(epochs))
        if removal is not None:
            details["removal"] = removal
        record(
            session,
            actor=Actor("participant", p.id),
            action="meeting.leave",
            subject_kind="meeting",
            subject_id=p.meeting_id,
            at=at,
            bundle_digest=rt.digest,
            details=details,
        )


def close_stale(rt: Runtime, *, starting: bool = False) -> int:
    """Close (and record) the open participations whose replica is gone: their signalling
    sockets went with it. Returns how many.

    A replica is gone when its lease has expired (:func:`~meridian.cluster.lease_expired`), so
    a replica starting never closes what another live replica serves. On SQLite there is one
    process: at its start (``starting``) every participation not its own is from a process that
    stopped, whatever its lease says. A participation from before replicas (no replica named)
    is gone too. Every replica still serving the meeting is told (an order per meeting), so its
    roster drops them and its key moves on.
    """
    at = rt.now()
    with rt.db.write() as session:
        open_rows = list(
            session.scalars(
                select(Participation)
                .where(Participation.left_at.is_(None))
                .order_by(Participation.joined_at, Participation.id)
            )
        )
        serving = {p.replica for p in open_rows if p.replica is not None}
        own = rt.replica.id
        if starting and session.get_bind().dialect.name != "postgresql":
            gone = serving - {own}
        else:
            gone = {r for r in serving if r != own and lease_expired(session, r)}
        stale = [p for p in open_rows if p.replica is None or p.replica in gone]
        for p in stale:
            p.left_at = at
        for meeting_id in sorted({p.meeting_id for p in stale}):
            ids = [p.id for p in stale if p.meeting_id == meeting_id]
            # they held the meeting's key: it moves on, and every replica ("all", this one
            # too) tells its own participants and hands them the new key
            epoch = session.execute(
                update(Meeting)
                .where(Meeting.id == meeting_id)
                .values(epoch=Meeting.epoch + 1)
                .returning(Meeting.epoch)
            ).scalar_one()
            publish(session, Order.ROSTER, meeting=meeting_id, left=ids, all=True)
            publish(session, Order.ROTATE, meeting=meeting_id, epoch=int(epoch), all=True)
        if stale:
            record(
                session,
                actor=Actor("system", "meridian"),
                action="meeting.leave",
                subject_kind="participation",
                subject_id=None,
                at=at,
                bundle_digest=rt.digest,
                details={
                    "reason": "the control-plane replica serving them stopped: "
                    "their live connections were lost",
                    "replicas": sorted({p.replica or "-" for p in stale}),
                    "participations": [p.id for p in stale],
                },
            )
    return len(stale)
