"""The meeting lifecycle: one way to end a meeting, and the timer that ends them on its own.

:func:`end_everywhere` is the one end path: the meeting is marked ended and recorded
(:func:`~meridian.meetings.service.end_meeting`), then everyone in it is told and every relay
ordered to drop them (:meth:`~meridian.meetings.live.Signalling.end`). The API's
``POST /v1/meetings/{id}/end``, the host's "End meeting" button, ``meridian meeting end`` and the
timer all call it.

The meeting timer (:class:`MeetingTimer`) looks at the live meetings every
``meeting_check_interval`` seconds of real time and compares the **service's clock** (a set
clock in tests and replays) with:

- the host plan's ``meeting_minutes``, counted from the meeting's creation: ``meeting_warning``
  seconds before the end, each participant gets ``{"type": "warning", "code": "time_limit",
  "message", "ends_at"}`` once (one who joins later gets it on the next look); at the end the
  meeting is ended with the reason (``the `free` plan allows 40 minutes per meeting``);
- ``meeting_empty_timeout``: a meeting with nobody in it (no participation still open) since its
  last participant left, or since its creation when nobody ever joined, is ended after that long
  (``the meeting was empty for 10 minutes``).

Both ends are recorded as ``meeting.end`` by ``system:meridian`` with ``details.reason``.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Literal

from sqlalchemy import func, select

from ..audit import SYSTEM, Actor
from ..errors import ConflictError, NotFoundError
from ..identity.tokens import Caller
from ..runtime import Runtime
from ..storage.models import Meeting, MeetingStatus, Participation
from .limits import PlanLimits, host_limits
from .service import end_meeting

if TYPE_CHECKING:
    from .live import Signalling

__all__ = ["Due", "MeetingTimer", "due_meetings", "end_everywhere"]

log = logging.getLogger("meridian.meetings.lifecycle")

#: how many live meetings one look of the timer reads at most (the oldest first)
BATCH = 10_000


async def end_everywhere(
    rt: Runtime,
    signalling: Signalling | None,
    *,
    meeting_id: str,
    caller: Caller | None,
    actor: Actor,
    reason: str | None = None,
) -> Meeting:
    """End a live meeting: recorded, then everyone told and every relay told to drop them.

    ``caller`` scopes it as :func:`~meridian.meetings.service.end_meeting` does (``None``: the
    control plane itself); a meeting already ended is a :class:`ConflictError`.
    """
    meeting = await asyncio.to_thread(
        end_meeting, rt, caller=caller, meeting_id=meeting_id, actor=actor, reason=reason
    )
    if signalling is not None:
        await signalling.end(meeting.id, reason=reason)
    return meeting


@dataclass(frozen=True, slots=True)
class Due:
    """A live meeting the timer acts on: to warn (``time_limit`` near) or to end."""

    meeting: str
    kind: Literal["time_limit", "empty"]
    reason: str
    #: when it ends (or ended), by the service's clock
    ends_at: datetime


def _minutes(seconds: float) -> str:
    minutes = seconds / 60
    text = f"{minutes:g}" if minutes == int(minutes) else f"{minutes:.1f}"
    return f"{text} minute{'' if minutes == 1 else 's'}"


def due_meetings(
    rt: Runtime, at: datetime, *, empty_after: timedelta, warn_before: timedelta
) -> tuple[list[Due], list[Due]]:
    """The live meetings to warn and to end at ``at``: ``(warn, end)``."""
    warn: list[Due] = []
    end: list[Due] = []
    with rt.db.read() as session:
        meetings = list(
            session.scalars(
                select(Meeting)
                .where(Meeting.status == MeetingStatus.LIVE)
                .order_by(Meeting.created_at, Meeting.id)
                .limit(BATCH)
            )
        )
        if not meetings:
            return warn, end
        ids = [m.id for m in meetings]
        open_rows = session.execute(
            select(Participation.meeting_id, func.count())
            .where(Participation.meeting_id.in_(ids), Participation.left_at.is_(None))
            .group_by(Participation.meeting_id)
        ).all()
        present = {meeting_id: int(n) for meeting_id, n in open_rows}
        left_rows = session.execute(
            select(Participation.meeting_id, func.max(Participation.left_at))
            .where(Participation.meeting_id.in_(ids))
            .group_by(Participation.meeting_id)
        ).all()
        last_left = {meeting_id: last for meeting_id, last in left_rows}
        by_host: dict[str, PlanLimits] = {}  # one plan look-up per host account and look
        for meeting in meetings:
            limits = by_host.get(meeting.host_account_id)
            if limits is None:
                limits = by_host[meeting.host_account_id] = host_limits(session, rt, meeting, at)
            if limits.meeting_minutes is not None:
                ends_at = meeting.created_at + timedelta(minutes=limits.meeting_minutes)
                if at >= ends_at:
                    reason = f"{limits.minutes_message()}: this meeting reached its limit"
                    end.append(Due(meeting.id, "time_limit", reason, ends_at))
                    continue
                if at >= ends_at - warn_before:
                    left = ends_at - at
                    reason = (
                        f"this meeting ends in {_minutes(round(left.total_seconds()))} "
                        f"(at {ends_at:%H:%M} UTC): {limits.minutes_message()}"
                    )
                    warn.append(Due(meeting.id, "time_limit", reason, ends_at))
            if present.get(meeting.id, 0) == 0:
                since = last_left.get(meeting.id) or meeting.created_at
                since = max(since, meeting.created_at)
                if at - since >= empty_after:
                    reason = f"the meeting was empty for {_minutes(empty_after.total_seconds())}"
                    end.append(Due(meeting.id, "empty", reason, since + empty_after))
    return warn, end


class MeetingTimer:
    """Warns of and ends meetings by their plan's minutes, and ends empty ones."""

    def __init__(
        self,
        rt: Runtime,
        signalling: Signalling,
        *,
        empty_after: timedelta,
        warn_before: timedelta,
        ends: Callable[[], bool] | None = None,
    ) -> None:
        self.rt = rt
        #: whether this replica ends meetings (the leader: an end is decided once for the
        #: service); every replica warns its own participants
        self.ends = ends
        self.signalling = signalling
        self.empty_after = empty_after
        self.warn_before = warn_before
        #: per meeting, the participants already warned
        self._warned: dict[str, set[str]] = {}

    async def tick(self) -> list[str]:
        """One look: warn who is due a warning, end what is due; the meetings ended."""
        at = self.rt.now()
        warn, end = await asyncio.to_thread(
            due_meetings, self.rt, at, empty_after=self.empty_after, warn_before=self.warn_before
        )
        for due in warn:
            await self._warn(due)
        ended: list[str] = []
        if end and self.ends is not None and not await asyncio.to_thread(self.ends):
            end = []
        for due in end:
            try:
                await end_everywhere(
                    self.rt,
                    self.signalling,
                    meeting_id=due.meeting,
                    caller=None,
                    actor=SYSTEM,
                    reason=due.reason,
                )
            except (ConflictError, NotFoundError):
                continue  # ended meanwhile by someone else
            log.info("meeting %s ended: %s", due.meeting, due.reason)
            ended.append(due.meeting)
        live = set(self.signalling.meetings)
        for meeting_id in list(self._warned):
            if meeting_id not in live:
                del self._warned[meeting_id]
        return ended

    async def _warn(self, due: Due) -> None:
        live = self.signalling.meetings.get(due.meeting)
        if live is None:
            return
        warned = self._warned.setdefault(due.meeting, set())
        message = {
            "type": "warning",
            "code": due.kind,
            "message": due.reason,
            "ends_at": due.ends_at.isoformat(),
        }
        for p in list(live.participants.values()):
            if p.id in warned:
                continue
            try:
                await p.send(message)
            except (ConnectionError, RuntimeError):
                continue
            warned.add(p.id)

    async def run(self, interval: float) -> None:
        """Look every ``interval`` seconds, for ever (cancel the task to stop)."""
        while True:
            try:
                await self.tick()
            except Exception:
                log.exception("the meeting timer failed")
            await asyncio.sleep(interval)
