"""What the API reads and writes, named by where it is used: ``XCreate``, ``XPublic``, ``XsPublic``.

Every string a client sends is checked before it reaches storage: no control characters and no
lone surrogates (PostgreSQL refuses NUL; UTF-8 cannot encode a lone surrogate), bounded length.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime
from typing import Annotated, Any, Literal

from pydantic import AfterValidator, AwareDatetime, BaseModel, ConfigDict, Field

from ..errors import InputError, shown
from ..geography.jurisdictions import check_jurisdiction
from ..text import plain_name, plain_text

__all__ = [
    "AccountCreate",
    "AccountPublic",
    "AccountsPublic",
    "CheckoutCreate",
    "CheckoutPublic",
    "ContactUpdate",
    "CountryListIn",
    "EntitlementsPublic",
    "ErrorPublic",
    "IdPath",
    "Instant",
    "MeetingAccess",
    "MeetingCreate",
    "MeetingCreated",
    "MeetingInvite",
    "MeetingPublic",
    "MeetingsPublic",
    "Name",
    "NotReady",
    "NoticePublic",
    "NoticesPublic",
    "PartnerChoice",
    "PartnerPublic",
    "PartnersPublic",
    "PlanPublic",
    "PlansPublic",
    "PolicyLoad",
    "PolicyPublic",
    "Ready",
    "Region",
    "RegionSettingPublic",
    "RegionsUpdate",
    "RegistrationPublic",
    "RenewalRun",
    "Review",
    "SubscriptionPublic",
    "SubscriptionsPublic",
    "TokenCreate",
    "TokenPublic",
    "WaitingGuest",
    "WaitingPublic",
    "check_id",
    "check_instant",
]


def _country(value: str) -> str:
    try:
        return check_jurisdiction(value.upper())
    except InputError as exc:
        raise ValueError(exc.message) from None


#: instants a client may name: far enough from the ends of :class:`datetime` that converting to
#: UTC, adding a subscription term or renewing for years never overflows
EARLIEST = datetime(1000, 1, 1, tzinfo=UTC)
LATEST = datetime(9000, 1, 1, tzinfo=UTC)


def check_instant(value: datetime) -> datetime:
    """``value`` if it lies in [:data:`EARLIEST`, :data:`LATEST`), else a ``ValueError``."""
    try:
        utc = value.astimezone(UTC)
    except OverflowError:
        utc = None
    if utc is None or not EARLIEST <= utc < LATEST:
        raise ValueError("is out of range: expected an instant between the years 1000 and 9000")
    return value


Text = Annotated[str, Field(min_length=1, max_length=200), AfterValidator(plain_text)]
LongText = Annotated[str, Field(min_length=1, max_length=2000), AfterValidator(plain_text)]
Ident = Annotated[str, Field(min_length=1, max_length=100, pattern=r"^[A-Za-z0-9_.\-]+$")]
Email = Annotated[
    str, Field(max_length=320, pattern=r"^[^@\s]+@[^@\s]+$"), AfterValidator(plain_text)
]
Country = Annotated[str, Field(min_length=2, max_length=2), AfterValidator(_country)]
#: a path parameter naming an object: short, no characters a database would choke on
IdPath = Annotated[str, Field(min_length=1, max_length=100, pattern=r"^[A-Za-z0-9_.\-]+$")]
_ID_PATH = re.compile(r"[A-Za-z0-9_.\-]{1,100}")


def check_id(value: str, what: str) -> str:
    """``value`` if it is an :data:`IdPath`, else :class:`InputError` naming it (for parameters
    FastAPI does not validate, such as a WebSocket's path)."""
    if _ID_PATH.fullmatch(value) is None:
        raise InputError(
            f"invalid {what} `{shown(value)}`: expected at most 100 letters, digits, `_`, `.` or `-`"
        )
    return value


Instant = Annotated[AwareDatetime, AfterValidator(check_instant)]
#: a name people read (an account's, a token's, a meeting's topic): text without invisible or
#: bidirectional control characters (:func:`meridian.text.plain_name`)
Name = Annotated[str, Field(min_length=1, max_length=200), AfterValidator(plain_name)]


class _In(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)


class _Out(BaseModel):
    model_config = ConfigDict(from_attributes=True)


class Ready(_Out):
    """A ready replica (``GET /readyz``): which one, its schema revision, the bundle in force."""

    status: str
    replica: str
    #: whether this replica runs the jobs that run once (meridian.cluster.leader)
    leader: bool
    schema_revision: str
    bundle: str


class NotReady(_Out):
    """A replica that is not ready (``GET /readyz``, 503), and the first reason why."""

    status: str
    reason: str


class ErrorDetail(BaseModel):
    code: str
    message: str
    fields: list[dict[str, str]] | None = None
    decision: dict[str, Any] | None = None


class ErrorPublic(BaseModel):
    """Every error response: a code, one line, and for some the failing fields or the decision."""

    error: ErrorDetail


class AccountCreate(_In):
    """Sign-up: ``type``, ``name`` and ``country`` always; ``org_id`` for an organisation."""

    type: Literal["individual", "organization"]
    name: Name
    country: Country
    org_id: (
        Annotated[str, Field(min_length=1, max_length=64), AfterValidator(plain_text)] | None
    ) = None
    email: Email | None = None


class AccountPublic(_Out):
    id: str
    type: str
    name: str
    email: str | None
    country: str
    plan: str
    home_region: str
    status: Literal["active", "pending_review", "rejected", "suspended"]
    org_id: str | None
    org_id_status: str | None
    partner_id: str | None
    created_at: datetime


class AccountsPublic(BaseModel):
    data: list[AccountPublic]
    count: int


class RegistrationPublic(BaseModel):
    """A new account, the decision that admitted it, and for a self sign-up its user token."""

    account: AccountPublic
    decision: dict[str, Any]
    token: str | None = Field(
        description="shown once: the new account's user api token (a self sign-up); `null` "
        "otherwise, and on a replay of the same `Idempotency-Key` (no token is stored)"
    )


class Review(_In):
    approve: bool
    note: LongText | None = None


class CheckoutCreate(_In):
    account: Ident
    plan: Ident
    channel: Ident
    partner: Ident | None = None
    term: Literal["month", "year"] = "month"
    starts_at: Instant | None = Field(
        default=None, description="a later start (an open checkout); default: now"
    )


class SubscriptionPublic(_Out):
    id: str
    account_id: str
    plan: str
    channel: str
    partner_id: str | None
    status: Literal["pending", "active", "transfer_required", "transferred", "ended"]
    term: str
    period_start: datetime
    period_end: datetime
    chosen_partner_id: str | None
    replaces_id: str | None
    bundle_digest: str
    created_at: datetime


class SubscriptionsPublic(BaseModel):
    data: list[SubscriptionPublic]
    count: int


class CheckoutPublic(BaseModel):
    subscription: SubscriptionPublic
    decision: dict[str, Any]


class PartnerChoice(_In):
    partner: Ident


class PartnerWindowPublic(BaseModel):
    from_: datetime | None = Field(alias="from")
    until: datetime | None


class PartnerPublic(BaseModel):
    id: str
    name: str
    jurisdictions: list[str]
    effective: PartnerWindowPublic
    status: str
    contact: str | None


class PartnersPublic(BaseModel):
    data: list[PartnerPublic]
    count: int


class ContactUpdate(_In):
    #: at most 300 characters: the column's size (``partners.contact``)
    contact: Annotated[str, Field(min_length=1, max_length=300), AfterValidator(plain_text)] | None


class PlanPublic(BaseModel):
    id: str
    name: str
    paid: bool
    may_host: bool
    max_participants: int
    meeting_minutes: int | None


class PlansPublic(BaseModel):
    data: list[PlanPublic]
    count: int


class EntitlementsPublic(BaseModel):
    account: str
    at: str
    plan: str
    subscription: str | None
    may_host: bool
    may_join: bool
    max_participants: int
    meeting_minutes: int | None
    host_decision: dict[str, Any]


class NoticePublic(_Out):
    id: str
    account_id: str
    kind: str
    message: str
    subject_id: str | None
    created_at: datetime
    sent_at: datetime | None


class NoticesPublic(BaseModel):
    data: list[NoticePublic]
    count: int


class TokenCreate(_In):
    role: Literal["operator", "partner", "user"]
    name: Name
    partner: Ident | None = None
    account: Ident | None = None
    person: Ident | None = Field(
        default=None,
        description="an operator token's person: only the caller's own (the default)",
    )
    expires_at: Instant | None = Field(
        default=None,
        description="when the token stops working; a user token's default is "
        "MERIDIAN_USER_TOKEN_DAYS (90) days from now, others' never",
    )


class TokenPublic(BaseModel):
    id: str
    role: str
    name: str
    partner_id: str | None
    account_id: str | None
    person_id: str | None = Field(default=None, description="the operator person it belongs to")
    expires_at: datetime | None = None
    token: str | None = Field(
        description="shown once, on this response: `null` on a replay of the same "
        "`Idempotency-Key`, since no secret is stored; a lost secret is revoked and minted again"
    )


class PolicyLoad(_In):
    yaml: Annotated[str, Field(min_length=1, max_length=1_000_000)]


class PolicyPublic(BaseModel):
    name: str
    version: str
    digest: str
    rules: int
    jurisdictions: list[str]


class RenewalRun(_In):
    at: Instant | None = Field(default=None, description="default: the service's now")


Region = Annotated[str, Field(min_length=2, max_length=2, pattern=r"^[A-Z]{2}$")]


class CountryListIn(_In):
    """An approve list or a deny list of participant countries (give one, not both)."""

    approve: list[Country] | None = Field(default=None, max_length=300)
    deny: list[Country] | None = Field(default=None, max_length=300)

    def as_dict(self) -> dict[str, list[str]] | None:
        if self.approve is not None and self.deny is not None:
            raise InputError("`countries`: give `approve` or `deny`, not both")
        if self.approve is not None:
            return {"approve": self.approve}
        if self.deny is not None:
            return {"deny": self.deny}
        return None


class MeetingCreate(_In):
    topic: Name = "Meeting"
    #: the hosting account; a user token hosts for its own account and may leave it out
    host: IdPath | None = None
    countries: CountryListIn | None = None


class MeetingPublic(_Out):
    id: str
    host_account_id: str
    topic: str
    host_country: str
    regions: list[str]
    key_region: str
    countries: dict[str, list[str]] | None
    status: Literal["live", "ended"]
    created_at: datetime
    ended_at: datetime | None
    #: nobody new joins but the host account's own users
    locked: bool = False
    #: each guest waits until a host admits it
    waiting_room: bool = False


class MeetingsPublic(BaseModel):
    data: list[MeetingPublic]
    count: int


class MeetingCreated(BaseModel):
    meeting: MeetingPublic
    decision: dict[str, Any]
    signal: str = Field(description="the WebSocket path participants join through")
    invite: str | None = Field(
        description="the meeting's join secret, shown only now (stored hashed): `null` on a "
        "replay of the same `Idempotency-Key`, since no secret is kept; rotate it to get a new one"
    )
    join_url: str | None = Field(
        description="the join link to share: the meeting page with the invite (`null` on a replay)"
    )


class MeetingAccess(_In):
    """Lock or unlock a meeting, turn its waiting room on or off (omitted: unchanged)."""

    locked: bool | None = None
    waiting_room: bool | None = None


class MeetingInvite(BaseModel):
    meeting: str
    invite: str = Field(
        description="the new join secret, shown only now; earlier links stop working"
    )
    join_url: str


class WaitingGuest(BaseModel):
    participant: str
    name: str


class WaitingPublic(BaseModel):
    data: list[WaitingGuest]
    count: int


class RegionsUpdate(_In):
    """The regions an account's meetings may use; ``null`` returns to the default set."""

    regions: list[Region] | None = Field(max_length=64)
    opt_in: list[Region] = Field(default=[], max_length=64)


class RegionSettingPublic(BaseModel):
    account: str
    plan: str
    home_region: str
    chosen: list[str] | None
    opt_in: list[str]
    default: list[str]
    regions: list[str]
