"""Plan limits of a meeting: how many may take part at once, and for how long.

The limits are those of the plan the meeting's host account holds at the instant (an upgrade
during a meeting applies to it at once), as the bundle in force lists them. A plan the bundle no
longer lists counts as ``free`` (as :func:`~meridian.meetings.service.account_plan` does); if the
bundle lists no ``free`` plan either, nobody is admitted (fail closed).

``max_participants`` is checked at admission, under the meeting's row lock, against the
participations still open (admitted and not yet left): :func:`refuse_full`. ``meeting_minutes``
is counted from the meeting's creation by the meeting timer (:mod:`meridian.meetings.lifecycle`).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from ..policy.decision import Reason
from ..runtime import Runtime
from ..storage.models import Account, Meeting, Participation
from .placement import Occupancy, Placement, refuse_placed

__all__ = ["PlanLimits", "host_limits", "open_participants", "refuse_full"]


@dataclass(frozen=True, slots=True)
class PlanLimits:
    """The limits a meeting runs under: the host's plan and what the bundle says it allows."""

    plan: str
    #: participants at once (0: the plan is unknown to the bundle, nobody is admitted)
    max_participants: int
    #: minutes from the meeting's creation; ``None``: no limit
    meeting_minutes: int | None

    def full_message(self) -> str:
        if self.max_participants == 0:
            return f"plan `{self.plan}` is not in the bundle in force: nobody can join its meetings"
        noun = "participant" if self.max_participants == 1 else "participants"
        return (
            f"the `{self.plan}` plan allows {self.max_participants} {noun} per meeting: "
            "this meeting is full"
        )

    def minutes_message(self) -> str:
        return f"the `{self.plan}` plan allows {self.meeting_minutes} minutes per meeting"


def host_limits(session: Session, rt: Runtime, meeting: Meeting, at: datetime) -> PlanLimits:
    """The limits of ``meeting`` at ``at``: those of its host's plan then."""
    from .service import account_plan  # service imports this module

    plans = rt.engine.bundle.document.plans
    account = session.get(Account, meeting.host_account_id)
    plan_id = "free" if account is None else account_plan(session, rt, account, at)[0]
    if plan_id not in plans:
        plan_id = "free"
    plan = plans.get(plan_id)
    if plan is None:
        return PlanLimits(plan_id, 0, None)
    return PlanLimits(plan_id, plan.max_participants, plan.meeting_minutes)


def open_participants(session: Session, meeting_id: str) -> int:
    """Participations of the meeting admitted and not yet left."""
    count = session.scalar(
        select(func.count())
        .select_from(Participation)
        .where(Participation.meeting_id == meeting_id, Participation.left_at.is_(None))
    )
    return int(count or 0)


def refuse_full(
    session: Session,
    rt: Runtime,
    meeting: Meeting,
    placement: Placement,
    occupancy: Occupancy,
    uses: dict[str, int],
    at: datetime,
) -> Placement:
    """``placement``, or a refusal naming the plan when the meeting already holds its plan's
    ``max_participants``. A refused placement gives its place back (``occupancy``, ``uses``).

    Call it under the meeting's row lock (as :func:`~meridian.meetings.blocks.refuse_blocked`
    takes it), before the joiner's participation is added.
    """
    if not placement.allowed:
        return placement
    limits = host_limits(session, rt, meeting, at)
    if open_participants(session, meeting.id) < limits.max_participants:
        return placement
    reason = Reason("plan-participants", "forbid", limits.full_message(), placement.country)
    return refuse_placed(placement, occupancy, uses, reason)
