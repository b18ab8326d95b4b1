"""Meeting residency receipts: sealed when a meeting ends, served to whoever may see the meeting.

When a meeting ends, :func:`seal` asks every region node for its signed statement of the
meeting's counters and records the **seal** (``meeting.receipt``): the positions of every entry
about the meeting so far, each participant's key epochs, and the statements as the nodes sent
them. :func:`meeting_receipt` then serves the receipt: those entries and the seal, each with its
inclusion proof against a checkpoint that covers them (with the cosignatures of the witnesses
configured, ``MERIDIAN_WITNESSES``), and their summary
(:func:`~meridian.meetings.residency.summarize`). ``meridian receipt verify`` checks it offline.

Who sees a receipt is who sees the meeting (:func:`~meridian.meetings.service.get_meeting`:
the host account's users, the operator, the partner for its customers; anyone else 404). A live
meeting has no receipt yet: asking for one is a :class:`ConflictError` (409) that says so, never
a partial receipt that might later read differently.
"""

from __future__ import annotations

import asyncio
import base64
import json
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from ..audit import SYSTEM, record
from ..errors import ConflictError
from ..identity.tokens import Caller
from ..runtime import Runtime
from ..storage.models import Meeting, MeetingStatus, Record
from .residency import RECEIPT_FORMAT, SEAL_ACTION, summarize
from .service import get_meeting

if TYPE_CHECKING:
    from .nodes import RegionNodes

__all__ = ["meeting_receipt", "record_seal", "seal", "sealed"]


def sealed(rt: Runtime, meeting_id: str) -> bool:
    """Whether the meeting's receipt is sealed (its ``meeting.receipt`` entry is written)."""
    with rt.db.read() as session:
        return _seal_row(session, meeting_id) is not None


def _seal_row(session: Session, meeting_id: str) -> Record | None:
    return session.scalars(
        select(Record)
        .where(
            Record.action == SEAL_ACTION,
            Record.subject_kind == "meeting",
            Record.subject_id == meeting_id,
        )
        .order_by(Record.seq)
        .limit(1)
    ).first()


def record_seal(
    rt: Runtime,
    meeting_id: str,
    nodes: Mapping[str, Mapping[str, Any]],
    epochs: Mapping[str, list[int]],
) -> bool:
    """Record the seal of an ended meeting; ``False`` when it was sealed already.

    ``nodes`` is each region node's statement (or why there is none), ``epochs`` the key epochs
    of the participants still in the meeting when it ended (those who left before have theirs
    in their ``meeting.leave`` entry).
    """
    at = rt.now()
    with rt.db.write() as session:
        # the meeting's row, locked: two sealers (the end, a receipt asked for) write one seal
        meeting = session.scalars(
            select(Meeting).where(Meeting.id == meeting_id).with_for_update()
        ).one()
        if meeting.status == MeetingStatus.LIVE:
            raise ConflictError(f"meeting `{meeting_id}` is live: it is sealed when it ends")
        if _seal_row(session, meeting_id) is not None:
            return False
        positions = list(
            session.scalars(
                select(Record.seq)
                .where(Record.subject_kind == "meeting", Record.subject_id == meeting_id)
                .order_by(Record.seq)
            )
        )
        record(
            session,
            actor=SYSTEM,
            action=SEAL_ACTION,
            subject_kind="meeting",
            subject_id=meeting_id,
            at=at,
            bundle_digest=rt.digest,
            details={
                "entries": positions,
                "epochs": {pid: sorted(set(e)) for pid, e in sorted(epochs.items())},
                "nodes": {region: dict(node) for region, node in sorted(nodes.items())},
            },
        )
    return True


async def seal(
    rt: Runtime,
    nodes: RegionNodes,
    meeting_id: str,
    epochs: Mapping[str, list[int]] | None = None,
) -> bool:
    """Ask every region node for its signed statement of the meeting, then record the seal
    (:func:`record_seal`). Called when the meeting ends, after its relays were told."""
    if await asyncio.to_thread(sealed, rt, meeting_id):
        return False
    statements = await nodes.statements(meeting_id)
    return await asyncio.to_thread(record_seal, rt, meeting_id, statements, epochs or {})


def _b64(digest: bytes) -> str:
    return base64.b64encode(digest).decode("ascii")


def meeting_receipt(rt: Runtime, caller: Caller, meeting_id: str) -> dict[str, Any] | None:
    """The receipt of an ended, sealed meeting the caller may see; ``None`` when it ended but is
    not sealed yet (the caller seals it, then asks again).

    404 for a meeting the caller may not see; 409 for a live one.
    """
    with rt.db.read() as session:
        meeting = get_meeting(session, caller, meeting_id)
        if meeting.status == MeetingStatus.LIVE:
            raise ConflictError(
                f"meeting `{meeting_id}` is live: its receipt is made when it ends (no partial "
                "receipt is given)"
            )
        row = _seal_row(session, meeting_id)
        if row is None:
            return None
        positions = [int(p) for p in row.details.get("entries", [])] + [int(row.seq)]
    log = rt.log
    signed = log.checkpoint()  # issues one when the log grew since the last: it covers the seal
    witnessing = rt.witnessing
    if witnessing.witnesses and not witnessing.lines(signed.checkpoint.size):
        # offered now, so the receipt carries the witnesses' cosignatures; a witness that is
        # down is recorded as such by the submission and the receipt goes out without its line
        witnessing.submit()
        signed = log.latest() or signed  # the one offered (a later one covers the seal too)
    note = witnessing.cosigned_note(signed)
    size = signed.checkpoint.size
    entries: list[dict[str, Any]] = []
    parsed: list[tuple[int, dict[str, Any]]] = []
    for index in positions:
        for position, data in log.entries(index, index + 1):
            _, _, proof, _ = log.inclusion(position, size)
            text = data.decode("utf-8")
            entries.append({"index": position, "entry": text, "proof": [_b64(h) for h in proof]})
            parsed.append((position, json.loads(text)))
    return {
        "format": RECEIPT_FORMAT,
        "meeting": meeting_id,
        "log": {"origin": log.origin, "key": log.vkey, "checkpoint": note},
        "entries": entries,
        "summary": summarize(meeting_id, parsed),
    }
