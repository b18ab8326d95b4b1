"""Lawful requests: intake, scoping by jurisdiction, two-person approval, blocks, notices.

The pure parts are re-exported here; :mod:`.workflow` (the database and the record) is imported
where it is used, so that :mod:`meridian.meetings.service` can check blocks at join time without
a cycle.
"""

from ..meetings.blocks import active_blocks, block_reason, refuse_blocked
from .model import (
    ACTIONS,
    CONTENT_BASES,
    LEGAL_TYPES,
    TARGETS_BY_ACTION,
    LegalRequestCreate,
    Rejection,
)
from .scoping import AccountFacts, Effect, MeetingFacts, ParticipantFacts, Scope, ScopeAsk, scope

__all__ = [
    "ACTIONS",
    "CONTENT_BASES",
    "LEGAL_TYPES",
    "TARGETS_BY_ACTION",
    "AccountFacts",
    "Effect",
    "LegalRequestCreate",
    "MeetingFacts",
    "ParticipantFacts",
    "Rejection",
    "Scope",
    "ScopeAsk",
    "active_blocks",
    "block_reason",
    "refuse_blocked",
    "scope",
]
