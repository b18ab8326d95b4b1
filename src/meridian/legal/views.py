"""What the API shows of a lawful request: as received, its scope entity by entity, who recorded
and decided it, and what was applied — the records a disclosure hands over are listed by kind,
id and fields, never exported."""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import BaseModel, Field

from ..storage.models import LegalBlock, LegalRequest

__all__ = [
    "ActorPublic",
    "AppliedPublic",
    "ApprovalPublic",
    "BlockPublic",
    "DisclosedPublic",
    "EffectPublic",
    "LegalRequestPublic",
    "LegalRequestsPublic",
    "ScopePublic",
    "to_public",
]

NOT_NOTIFIABLE = "joined without an account: there is no one to send a notice to"


class TargetPublic(BaseModel):
    kind: Literal["account", "meeting", "participants"]
    id: str


class DocumentPublic(BaseModel):
    name: str
    sha256: str
    size: int


class ActorPublic(BaseModel):
    """An operator: its actor (``operator:tok_…``) and its token's name."""

    actor: str
    name: str


class EffectPublic(BaseModel):
    kind: Literal["account", "meeting", "participant"]
    id: str
    country: str
    in_scope: bool
    effect: Literal["suspend", "end", "block", "disclose_content", "disclose_non_content", "none"]
    why: str


class ScopePublic(BaseModel):
    jurisdiction: str
    requested: str
    outcome: Literal["full", "narrowed", "none"]
    effects: list[EffectPublic]


class DisclosedPublic(BaseModel):
    """One record a disclosure hands over: its kind, id and the fields given."""

    kind: Literal["account", "meeting", "participation"]
    id: str
    fields: list[str]


class DisclosuresPublic(BaseModel):
    content: int
    non_content: int


class AppliedPublic(BaseModel):
    """What was applied, as ``legal.applied`` recorded it, with the records disclosed."""

    at: datetime
    outcome: Literal["applied", "narrowed"]
    accounts: list[str]
    participants: list[str]
    meetings_ended: list[str]
    disclosures: DisclosuresPublic
    disclosed: list[DisclosedPublic]
    notice: Literal["sent", "delayed", "none"]
    notice_delay_until: str | None
    not_notifiable: list[str] = Field(description=f"participants who {NOT_NOTIFIABLE}")
    not_notifiable_why: str | None
    effects: list[EffectPublic] = Field(description="the scope computed again at approval")


class BlockPublic(BaseModel):
    id: str
    meeting: str
    jurisdiction: str
    active: bool
    created_at: datetime
    lifted_at: datetime | None


class LegalRequestPublic(BaseModel):
    id: str
    state: Literal["pending", "rejected", "applied"]
    authority: str
    jurisdiction: str
    legal_type: str
    reference: str
    target: TargetPublic
    action: str
    notice_delay_until: datetime | None
    documents: list[DocumentPublic]
    received_at: datetime
    recorded_by: ActorPublic
    scope: ScopePublic = Field(description="the scope computed when the request was received")
    approved_by: ActorPublic | None
    approved_at: datetime | None
    rejected_by: str | None = Field(description="an operator, or `system:meridian`")
    rejected_at: datetime | None
    reason: str | None
    applied: AppliedPublic | None
    blocks: list[BlockPublic]
    notified_at: datetime | None


class LegalRequestsPublic(BaseModel):
    data: list[LegalRequestPublic]
    count: int


class ApprovalPublic(BaseModel):
    """An approved (and applied) request, and the live participants disconnected now."""

    request: LegalRequestPublic
    disconnected: list[str]


def to_public(row: LegalRequest, blocks: list[LegalBlock]) -> LegalRequestPublic:
    applied = None
    if row.applied is not None and row.applied_at is not None:
        applied = AppliedPublic.model_validate(
            {
                **{k: v for k, v in row.applied.items() if k != "notices"},
                "at": row.applied_at,
                "not_notifiable_why": NOT_NOTIFIABLE if row.applied["not_notifiable"] else None,
            }
        )
    approved = None
    if row.approved_by is not None:
        approved = ActorPublic(actor=row.approved_by, name=row.approved_by_name or "")
    return LegalRequestPublic(
        id=row.id,
        state=row.state,
        authority=row.authority,
        jurisdiction=row.jurisdiction,
        legal_type=row.legal_type,
        reference=row.reference,
        target=TargetPublic(kind=row.target_kind, id=row.target_id),
        action=row.action,
        notice_delay_until=row.notice_delay_until,
        documents=[DocumentPublic.model_validate(d) for d in row.documents],
        received_at=row.received_at,
        recorded_by=ActorPublic(actor=row.recorded_by, name=row.recorded_by_name),
        scope=ScopePublic.model_validate(row.scope),
        approved_by=approved,
        approved_at=row.approved_at,
        rejected_by=row.rejected_by,
        rejected_at=row.rejected_at,
        reason=row.reject_reason,
        applied=applied,
        blocks=[
            BlockPublic(
                id=b.id,
                meeting=b.meeting_id,
                jurisdiction=b.jurisdiction,
                active=b.active,
                created_at=b.created_at,
                lifted_at=b.lifted_at,
            )
            for b in blocks
        ],
        notified_at=row.notified_at,
    )
