"""A lawful request as received: its vocabularies, and the strict model intake validates it with.

A request names the requesting authority and its jurisdiction, the legal basis (a type and a
reference), the target (an account, a meeting, or the participants of a meeting), the action
asked for, a delayed-notice order if one was made, and the documents served (by name, SHA-256
and size: Meridian keeps no document contents).

Messages follow the house style: lowercase, no final period, the offending value in backticks.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime
from typing import Annotated, Any, Literal

from pydantic import AfterValidator, AwareDatetime, BaseModel, ConfigDict, Field, Strict

from ..errors import InputError, shown
from ..geography.jurisdictions import check_jurisdiction
from ..text import plain_name, plain_text

__all__ = [
    "ACTIONS",
    "CONTENT_BASES",
    "LEGAL_TYPES",
    "TARGETS_BY_ACTION",
    "TARGET_KINDS",
    "Action",
    "DocumentIn",
    "LegalRequestCreate",
    "LegalType",
    "Lift",
    "Rejection",
    "TargetIn",
    "TargetKind",
    "iso",
]

LegalType = Literal[
    "subpoena", "warrant", "court_order", "emergency", "preservation", "national_security"
]
Action = Literal[
    "suspend_account",
    "end_meeting",
    "block_participants",
    "disclose_content",
    "disclose_non_content",
]
TargetKind = Literal["account", "meeting", "participants"]

LEGAL_TYPES: tuple[LegalType, ...] = (
    "subpoena",
    "warrant",
    "court_order",
    "emergency",
    "preservation",
    "national_security",
)
ACTIONS: tuple[Action, ...] = (
    "suspend_account",
    "end_meeting",
    "block_participants",
    "disclose_content",
    "disclose_non_content",
)
TARGET_KINDS: tuple[TargetKind, ...] = ("account", "meeting", "participants")

#: The legal types that reach content. A search warrant alone: a court order, an emergency or a
#: national-security request without a warrant is narrowed to non-content, however urgent.
CONTENT_BASES: frozenset[str] = frozenset({"warrant"})

#: The targets each action can take. ``participants`` names a meeting and means the people in it
#: (live and past); ``meeting`` means the meeting itself, its host included.
TARGETS_BY_ACTION: dict[str, tuple[TargetKind, ...]] = {
    "suspend_account": ("account",),
    "end_meeting": ("meeting", "participants"),
    "block_participants": ("meeting", "participants"),
    "disclose_content": ("account", "meeting", "participants"),
    "disclose_non_content": ("account", "meeting", "participants"),
}

#: instants a request may name (the bounds the rest of the API uses)
_EARLIEST = datetime(1000, 1, 1, tzinfo=UTC)
_LATEST = datetime(9000, 1, 1, tzinfo=UTC)
_SHA256 = re.compile(r"[0-9a-f]{64}")
_ID = re.compile(r"[A-Za-z0-9_.\-]{1,100}")


def iso(at: datetime) -> str:
    """An aware instant as ISO 8601 UTC with ``Z``, as the record writes instants."""
    text = at.astimezone(UTC).isoformat()
    return text[:-6] + "Z" if text.endswith("+00:00") else text


def _one_of(what: str, values: tuple[str, ...]) -> Any:
    """A string from ``values`` (documented as an enum), refused naming the value sent."""

    def check(value: str) -> str:
        if value not in values:
            raise ValueError(
                f"unknown {what} `{shown(value)}`: expected one of {', '.join(values)}"
            )
        return value

    return AfterValidator(check)


def _enum(values: tuple[str, ...]) -> Any:
    return Field(json_schema_extra={"enum": list(values)})


def _jurisdiction(value: str) -> str:
    try:
        return check_jurisdiction(value)
    except InputError as exc:
        raise ValueError(exc.message) from None


def _sha256(value: str) -> str:
    if not _SHA256.fullmatch(value):
        raise ValueError(
            f"`{shown(value)}` is not a sha-256 digest: expected 64 lowercase hex digits"
        )
    return value


def _ident(value: str) -> str:
    if not _ID.fullmatch(value):
        raise ValueError(f"`{shown(value)}` is not an id: expected letters, digits, `_`, `.`, `-`")
    return value


def _instant(value: datetime) -> datetime:
    try:
        utc = value.astimezone(UTC)
    except OverflowError:
        utc = None
    if utc is None or not _EARLIEST <= utc < _LATEST:
        raise ValueError(
            f"`{shown(value.isoformat())}` is out of range: expected the years 1000 to 9000"
        )
    return utc


Text = Annotated[str, Field(min_length=1, max_length=200), AfterValidator(plain_text)]


class _In(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)


class TargetIn(_In):
    """What the request is about: an account, a meeting, or the participants of a meeting."""

    kind: Annotated[str, _one_of("target kind", TARGET_KINDS), _enum(TARGET_KINDS)]
    id: Annotated[str, AfterValidator(_ident)] = Field(
        description="an account id (`acct_…`) or a meeting id (`mtg_…`)"
    )


class DocumentIn(_In):
    """A document served with the request: its name, SHA-256 and size (contents are not kept)."""

    #: a file name people open: no bidi override may turn ``gpj.exe`` into ``exe.jpg``
    name: Annotated[str, Field(min_length=1, max_length=200), AfterValidator(plain_name)]
    sha256: Annotated[str, AfterValidator(_sha256)]
    size: Annotated[int, Strict(), Field(ge=0, le=2**53 - 1)]


class LegalRequestCreate(_In):
    """A lawful request as an operator records it (``POST /v1/legal-requests``)."""

    authority: Text = Field(description="the requesting authority, as named on the request")
    jurisdiction: Annotated[str, AfterValidator(_jurisdiction)] = Field(
        description="ISO 3166-1 alpha-2: `CN` is mainland China alone (not HK, MO or TW)"
    )
    legal_type: Annotated[str, _one_of("legal type", LEGAL_TYPES), _enum(LEGAL_TYPES)]
    reference: Text = Field(description="the legal reference: case or order number")
    target: TargetIn
    action: Annotated[str, _one_of("action", ACTIONS), _enum(ACTIONS)]
    notice_delay_until: Annotated[AwareDatetime, AfterValidator(_instant)] | None = Field(
        default=None, description="a delayed-notice order: no notice to anyone until then"
    )
    documents: list[DocumentIn] = Field(default_factory=list, max_length=100)

    def check(self) -> None:
        """The rules that span fields: the action must be one the target can take."""
        allowed = TARGETS_BY_ACTION[self.action]
        if self.target.kind not in allowed:
            raise InputError(
                f"action `{self.action}` cannot take a `{self.target.kind}` target: "
                f"expected {' or '.join(f'`{k}`' for k in allowed)}"
            )

    def as_received(self) -> dict[str, Any]:
        """The request as ``legal.received`` records it."""
        return {
            "authority": self.authority,
            "jurisdiction": self.jurisdiction,
            "legal_type": self.legal_type,
            "reference": self.reference,
            "target": {"kind": self.target.kind, "id": self.target.id},
            "action": self.action,
            "notice_delay_until": None
            if self.notice_delay_until is None
            else iso(self.notice_delay_until),
            "documents": [d.model_dump() for d in self.documents],
        }


class Rejection(_In):
    """An operator's rejection of a pending request, with its reason."""

    reason: Annotated[str, Field(min_length=1, max_length=2000), AfterValidator(plain_text)]


class Lift(_In):
    """An operator's lifting of the blocks a request left, with its reason."""

    reason: Annotated[str, Field(min_length=1, max_length=2000), AfterValidator(plain_text)]
