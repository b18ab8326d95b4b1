"""Blocks: a meeting closed to everyone joining from one jurisdiction, by a lawful request.

An approved request that narrows to "the participants in J" leaves a block on the meeting
(meeting, J, request, active). While it is active, a joiner the ``join`` decision places in J is
refused with a reason naming the request; joiners from anywhere else are admitted as before.

INVARIANT: a join and the application of a block never miss each other. The join's check locks
the meeting's row (``FOR UPDATE``; on SQLite every write holds the database's write lock) before
reading the blocks, and applying a request locks the same row before reading who joined: either
the block is committed first and the joiner is refused, or the participation is committed first
and the request, which counts it, removes it.
"""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.orm import Session

from ..geography.jurisdictions import jurisdiction_name
from ..policy.decision import Reason
from ..storage.models import LegalBlock, Meeting
from .placement import Occupancy, Placement, refuse_placed

__all__ = ["active_blocks", "block_reason", "lock_meeting", "refuse_blocked", "removal_reason"]


def lock_meeting(session: Session, meeting_id: str) -> None:
    """Lock the meeting's row until the transaction ends (joins and blocks take turns on it)."""
    session.execute(select(Meeting.id).where(Meeting.id == meeting_id).with_for_update())


def active_blocks(session: Session, meeting_id: str) -> list[LegalBlock]:
    """The blocks standing on a meeting, oldest first."""
    return list(
        session.scalars(
            select(LegalBlock)
            .where(LegalBlock.meeting_id == meeting_id, LegalBlock.active.is_(True))
            .order_by(LegalBlock.created_at, LegalBlock.id)
        )
    )


def block_reason(block: LegalBlock) -> Reason:
    """Why a joiner is refused: the block and the request that made it."""
    place = jurisdiction_name(block.jurisdiction)
    return Reason(
        "legal-block",
        "forbid",
        f"this meeting is closed to participants in {place} by lawful request `{block.request_id}`",
        block.jurisdiction,
    )


def removal_reason(request_id: str, jurisdiction: str) -> str:
    """What a participant removed by a lawful request is told: the request and the place."""
    place = jurisdiction_name(jurisdiction)
    return (
        f"removed by lawful request `{request_id}`: this meeting is closed to participants in "
        f"{place}"
    )


def refuse_blocked(
    session: Session,
    meeting_id: str,
    placement: Placement,
    occupancy: Occupancy,
    uses: dict[str, int],
) -> Placement:
    """``placement``, or a refusal if a block stands on the meeting for the joiner's country.

    An admitted placement that is refused gives its place back (``occupancy`` and ``uses`` are
    the ones :func:`~meridian.meetings.placement.place` counted it in).
    """
    lock_meeting(session, meeting_id)
    block = next(
        (b for b in active_blocks(session, meeting_id) if b.jurisdiction == placement.country),
        None,
    )
    if block is None or not placement.allowed:
        return placement
    return refuse_placed(placement, occupancy, uses, block_reason(block))
