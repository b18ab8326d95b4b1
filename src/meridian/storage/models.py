"""The tables: SQLAlchemy 2.0 declarative models, one per stored noun.

Instants are stored in UTC and always come back timezone-aware (:class:`UtcDateTime`), on SQLite
as on PostgreSQL. Identifiers are short prefixed strings (``acct_…``, ``sub_…``) made by
:func:`new_id`, so a log line says what kind of thing it names.
"""

from __future__ import annotations

import secrets
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any, ClassVar

import orjson
from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    DateTime,
    Dialect,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    String,
    Text,
    TypeDecorator,
    UniqueConstraint,
    false,
)
from sqlalchemy import text as sql_text
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

__all__ = [
    "Account",
    "AccountStatus",
    "Base",
    "Checkpoint",
    "CheckpointCosignature",
    "IdempotencyKey",
    "LegalBlock",
    "LegalRequest",
    "LogHead",
    "LogProblem",
    "LogVerified",
    "Meeting",
    "MeetingStatus",
    "Notice",
    "Participation",
    "Partner",
    "Person",
    "PolicyBundle",
    "PolicyChange",
    "PolicyChangeState",
    "Record",
    "Replica",
    "Subscription",
    "SubscriptionStatus",
    "Token",
    "UtcDateTime",
    "WebSession",
    "WitnessState",
    "new_id",
]


def new_id(prefix: str) -> str:
    """A fresh identifier such as ``acct_3f9c0a1b7e2d4c65`` (64 random bits)."""
    return f"{prefix}_{secrets.token_hex(8)}"


class AccountStatus(StrEnum):
    """Where an account stands (stored as its value in ``accounts.status``)."""

    ACTIVE = "active"
    PENDING_REVIEW = "pending_review"
    REJECTED = "rejected"
    SUSPENDED = "suspended"


class SubscriptionStatus(StrEnum):
    """Where a subscription stands (stored as its value in ``subscriptions.status``)."""

    PENDING = "pending"
    ACTIVE = "active"
    TRANSFER_REQUIRED = "transfer_required"
    TRANSFERRED = "transferred"
    ENDED = "ended"


class PolicyChangeState(StrEnum):
    """Where a proposed bundle change stands (``meridian.changes.workflow`` moves it)."""

    PROPOSED = "proposed"
    APPROVED = "approved"
    REFUSED = "refused"
    ACTIVE = "active"
    SUPERSEDED = "superseded"  # was in force; a later change replaced it
    ROLLED_BACK = "rolled_back"


class MeetingStatus(StrEnum):
    """Whether a meeting runs (stored as its value in ``meetings.status``)."""

    LIVE = "live"
    ENDED = "ended"


class UtcDateTime(TypeDecorator[datetime]):
    """An aware instant, stored as UTC; naive values are refused rather than guessed."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime: Meridian stores aware instants only")
        value = value.astimezone(UTC)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


_NAMING = {
    "ix": "ix_%(table_name)s_%(column_0_N_name)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=_NAMING)
    type_annotation_map: ClassVar[dict[Any, Any]] = {
        datetime: UtcDateTime(),
        dict[str, Any]: JSON(),
        list[Any]: JSON(),
    }


class PolicyBundle(Base):
    """A policy bundle as loaded: its source text and digest; one is in force at a time."""

    __tablename__ = "policy_bundles"

    digest: Mapped[str] = mapped_column(String(80), primary_key=True)
    name: Mapped[str] = mapped_column(String(100))
    version: Mapped[str] = mapped_column(String(64))
    source: Mapped[str] = mapped_column(String(500))
    text: Mapped[str] = mapped_column(Text)
    loaded_at: Mapped[datetime]
    loaded_by: Mapped[str] = mapped_column(String(100))
    active: Mapped[bool] = mapped_column(Boolean, default=False, index=True)

    # INVARIANT: at most one bundle is in force; the database holds it (migration 0007)
    __table_args__ = (
        Index(
            "uq_policy_bundles_active",
            "active",
            unique=True,
            sqlite_where=sql_text("active"),
            postgresql_where=sql_text("active"),
        ),
    )


class PolicyChange(Base):
    """A proposed change of the bundle in force, with what it changes, and who moved it when.

    The proposed bundle's text is a :class:`PolicyBundle` row (not in force until activated).
    ``base_digest`` is the bundle in force when it was proposed: the diff and the replay compare
    against it, so a change is never approved or activated over another base. Every move is a
    conditional UPDATE on ``state`` (``meridian.changes.workflow``): two replicas activating the
    same change at once record it once.
    """

    __tablename__ = "policy_changes"

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    state: Mapped[str] = mapped_column(String(20), index=True)
    bundle_digest: Mapped[str] = mapped_column(ForeignKey("policy_bundles.digest"))
    base_digest: Mapped[str] = mapped_column(String(80))
    diff_digest: Mapped[str] = mapped_column(String(80))
    diff: Mapped[dict[str, Any]] = mapped_column(JSON)
    replay: Mapped[dict[str, Any]] = mapped_column(JSON)
    #: invariants the proposed bundle breaks, each with its counterexample (empty: none)
    broken: Mapped[list[Any]] = mapped_column(JSON)
    note: Mapped[str] = mapped_column(String(500))
    #: the instant it is to come into force (``None``: as soon as it is approved)
    activate_at: Mapped[datetime | None] = mapped_column(index=True)
    proposed_by: Mapped[str] = mapped_column(String(100))
    proposed_by_name: Mapped[str] = mapped_column(String(200))
    proposed_at: Mapped[datetime]
    decided_by: Mapped[str | None] = mapped_column(String(100))
    decided_at: Mapped[datetime | None]
    reason: Mapped[str | None] = mapped_column(String(500))
    previous_digest: Mapped[str | None] = mapped_column(String(80))
    activated_by: Mapped[str | None] = mapped_column(String(100))
    activated_at: Mapped[datetime | None]
    rolled_back_by: Mapped[str | None] = mapped_column(String(100))
    rolled_back_at: Mapped[datetime | None]


class Partner(Base):
    """An authorised local partner, mirrored from the bundle in force; the contact is the operator's."""

    __tablename__ = "partners"

    id: Mapped[str] = mapped_column(String(100), primary_key=True)
    name: Mapped[str] = mapped_column(String(200))
    jurisdictions: Mapped[list[Any]]
    effective_from: Mapped[datetime | None]
    effective_until: Mapped[datetime | None]
    status: Mapped[str] = mapped_column(String(20))
    contact: Mapped[str | None] = mapped_column(String(300))
    updated_at: Mapped[datetime]


class Account(Base):
    """An individual's or an organisation's account."""

    __tablename__ = "accounts"

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    type: Mapped[str] = mapped_column(String(20))  # individual | organization
    name: Mapped[str] = mapped_column(String(200))
    email: Mapped[str | None] = mapped_column(String(320))
    country: Mapped[str] = mapped_column(String(8), index=True)
    plan: Mapped[str] = mapped_column(String(100))
    home_region: Mapped[str] = mapped_column(String(4))
    #: active | pending_review | rejected | suspended
    status: Mapped[str] = mapped_column(String(20), index=True)
    #: the organisation's registration number, normalised (a USCC in upper case)
    org_id: Mapped[str | None] = mapped_column(String(100))
    org_id_status: Mapped[str | None] = mapped_column(String(20))
    #: the partner that manages this customer; ``None`` for a direct customer
    partner_id: Mapped[str | None] = mapped_column(ForeignKey("partners.id"), index=True)
    #: the data-centre regions chosen for meetings it hosts; ``None`` means the default set
    meeting_regions: Mapped[list[Any] | None] = mapped_column(JSON, nullable=True)
    #: the opt-in regions explicitly added (each also recorded with who added it)
    regions_opt_in: Mapped[list[Any] | None] = mapped_column(JSON, nullable=True)
    created_at: Mapped[datetime]
    updated_at: Mapped[datetime]


class Meeting(Base):
    """A meeting: its host, and where it may go, fixed when it was created."""

    __tablename__ = "meetings"

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    host_account_id: Mapped[str] = mapped_column(ForeignKey("accounts.id"), index=True)
    topic: Mapped[str] = mapped_column(String(200))
    host_country: Mapped[str] = mapped_column(String(8))
    #: the allowed regions and the key region, as placement computed them at creation
    regions: Mapped[list[Any]]
    key_region: Mapped[str] = mapped_column(String(4))
    #: ``{"approve": [...]}``, ``{"deny": [...]}`` or ``None``
    countries: Mapped[dict[str, Any] | None] = mapped_column(JSON, nullable=True)
    #: live | ended
    status: Mapped[str] = mapped_column(String(10), index=True)
    bundle_digest: Mapped[str] = mapped_column(String(80))
    created_at: Mapped[datetime]
    ended_at: Mapped[datetime | None]
    #: SHA-256 (hex) of the meeting's join secret; the secret itself is shown once, to its host
    #: (``None``: no invite admits anyone, only the host account's own users may join)
    invite_hash: Mapped[str | None] = mapped_column(String(64), nullable=True, default=None)
    #: nobody new joins but the host account's own users
    locked: Mapped[bool] = mapped_column(Boolean, default=False)
    #: each guest waits until the host admits or refuses it
    waiting_room: Mapped[bool] = mapped_column(Boolean, default=False)
    #: the last key epoch handed out: only ever increases (a new session or rotation takes + 1)
    epoch: Mapped[int] = mapped_column(Integer, default=0)
    #: the live session every replica asks the key server for this meeting's keys of (a new
    #: one when the meeting is live again after being empty)
    session: Mapped[str | None] = mapped_column(String(40), default=None)
    #: the sequence number of the last signed roster handed out (receivers never go back)
    roster_seq: Mapped[int] = mapped_column(Integer, default=0)


class Participation(Base):
    """One participant's time in a meeting: where it joined from and which region carried it."""

    __tablename__ = "participations"

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    meeting_id: Mapped[str] = mapped_column(ForeignKey("meetings.id"), index=True)
    account_id: Mapped[str | None] = mapped_column(ForeignKey("accounts.id"), index=True)
    name: Mapped[str] = mapped_column(String(200))
    ip: Mapped[str | None] = mapped_column(String(64))
    #: the country the join was judged under, at join time
    country: Mapped[str] = mapped_column(String(8), index=True)
    dc: Mapped[str] = mapped_column(String(4))
    joined_at: Mapped[datetime]
    left_at: Mapped[datetime | None]
    #: the control-plane replica serving its signalling socket (``None``: from before replicas)
    replica: Mapped[str | None] = mapped_column(String(100), index=True, default=None)
    #: its Ed25519 signing public key, base64url (what the signed roster lists)
    signing_key: Mapped[str | None] = mapped_column(String(64), default=None)
    #: its relay said it is connected: only then do the others see it in the roster
    connected: Mapped[bool] = mapped_column(Boolean, default=False)


class Token(Base):
    """An API token, kept only as its SHA-256; the token itself is shown once, at creation."""

    __tablename__ = "tokens"

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    hash: Mapped[str] = mapped_column(String(64), unique=True)
    role: Mapped[str] = mapped_column(String(20))  # operator | partner | user
    name: Mapped[str] = mapped_column(String(200))
    account_id: Mapped[str | None] = mapped_column(ForeignKey("accounts.id"))
    partner_id: Mapped[str | None] = mapped_column(ForeignKey("partners.id"))
    created_at: Mapped[datetime]
    revoked_at: Mapped[datetime | None]
    #: the operator person an operator token belongs to (every operator token has one)
    person_id: Mapped[str | None] = mapped_column(ForeignKey("people.id"), index=True)
    #: when the token stops working (``None``: when revoked)
    expires_at: Mapped[datetime | None]
    #: minted by ``meridian serve --demo``: the next demo start revokes it
    demo: Mapped[bool] = mapped_column(Boolean, default=False, server_default=false())


class Subscription(Base):
    """A paid plan bought through one channel (and partner), for a period."""

    __tablename__ = "subscriptions"
    __table_args__ = (Index("ix_subscriptions_status_period_end", "status", "period_end"),)

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    account_id: Mapped[str] = mapped_column(ForeignKey("accounts.id"), index=True)
    plan: Mapped[str] = mapped_column(String(100))
    channel: Mapped[str] = mapped_column(String(100))
    partner_id: Mapped[str | None] = mapped_column(ForeignKey("partners.id"), index=True)
    #: pending | active | transfer_required | transferred | ended
    status: Mapped[str] = mapped_column(String(20))
    term: Mapped[str] = mapped_column(String(10))  # month | year
    period_start: Mapped[datetime]
    period_end: Mapped[datetime]
    #: the partner the customer chose to take over a ``transfer_required`` subscription
    chosen_partner_id: Mapped[str | None] = mapped_column(ForeignKey("partners.id"), index=True)
    #: the subscription this one took over (a partner taking over a direct one)
    replaces_id: Mapped[str | None] = mapped_column(ForeignKey("subscriptions.id"))
    bundle_digest: Mapped[str] = mapped_column(String(80))
    created_at: Mapped[datetime]
    updated_at: Mapped[datetime]


class Notice(Base):
    """A message queued for an account holder (a transition, a refused renewal)."""

    __tablename__ = "notices"

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    account_id: Mapped[str] = mapped_column(ForeignKey("accounts.id"), index=True)
    kind: Mapped[str] = mapped_column(String(50))
    message: Mapped[str] = mapped_column(Text)
    subject_id: Mapped[str | None] = mapped_column(String(40))
    created_at: Mapped[datetime]
    sent_at: Mapped[datetime | None]


class Record(Base):
    """One entry of the log: a decision or a state change, written with the change itself.

    ``seq`` is the entry's position in the Merkle log (from 0, no gaps: positions are handed
    out by :class:`LogHead` under one lock). ``entry`` is the canonical JSON the log hashes and
    ``leaf`` its RFC 9162 leaf hash. The columns beside them repeat a few fields of ``entry``
    so the record can be searched; the decision and the details live in ``entry`` alone (read
    them as :attr:`decision` and :attr:`details`), so nothing is stored twice.
    """

    __tablename__ = "records"

    seq: Mapped[int] = mapped_column(
        BigInteger().with_variant(Integer, "sqlite"), primary_key=True, autoincrement=False
    )
    #: the instant the action was judged at (the service clock's "now", or a replayed instant)
    at: Mapped[datetime]
    recorded_at: Mapped[datetime]
    actor: Mapped[str] = mapped_column(String(100))
    action: Mapped[str] = mapped_column(String(50), index=True)
    subject_kind: Mapped[str] = mapped_column(String(30))
    subject_id: Mapped[str | None] = mapped_column(String(100), index=True)
    bundle_digest: Mapped[str] = mapped_column(String(80))
    #: the entry exactly as the log hashes it (canonical JSON, UTF-8)
    entry: Mapped[bytes] = mapped_column(LargeBinary)
    #: SHA-256(0x00 || entry)
    leaf: Mapped[bytes] = mapped_column(LargeBinary(32))

    @property
    def content(self) -> dict[str, Any]:
        """The entry, parsed."""
        value: dict[str, Any] = orjson.loads(self.entry)
        return value

    @property
    def decision(self) -> dict[str, Any] | None:
        """The decision recorded, if the action was decided by the policy."""
        value: dict[str, Any] | None = self.content["decision"]
        return value

    @property
    def details(self) -> dict[str, Any]:
        value: dict[str, Any] = self.content["details"]
        return value


class LogHead(Base):
    """The log's size: one row, updated in every transaction that appends, which serialises them."""

    __tablename__ = "log_head"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    size: Mapped[int] = mapped_column(BigInteger().with_variant(Integer, "sqlite"))


class Checkpoint(Base):
    """A signed checkpoint of the log: its size and root at a time, as a C2SP signed note."""

    __tablename__ = "checkpoints"

    id: Mapped[int] = mapped_column(
        BigInteger().with_variant(Integer, "sqlite"), primary_key=True, autoincrement=True
    )
    #: one checkpoint per size (migration 0007): a second signer at the same size gets the first
    size: Mapped[int] = mapped_column(
        BigInteger().with_variant(Integer, "sqlite"), index=True, unique=True
    )
    root: Mapped[bytes] = mapped_column(LargeBinary(32))
    issued_at: Mapped[datetime]
    note: Mapped[str] = mapped_column(Text)


class LogVerified(Base):
    """How far the stored log was last verified (one row): start-up checks only what follows.

    ``size`` entries were found to hash to their stored leaves and the tree of those leaves to
    have ``root``, which matched the signed checkpoint at that size.
    """

    __tablename__ = "log_verified"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    size: Mapped[int] = mapped_column(BigInteger().with_variant(Integer, "sqlite"))
    root: Mapped[bytes] = mapped_column(LargeBinary(32))
    verified_at: Mapped[datetime]


class LogProblem(Base):
    """A place where the stored log is not what it committed to, as found by a self-check.

    While one is unresolved the service refuses reports, proofs and entries, and signs no
    checkpoint. ``position`` is the entry's (``None`` when only a range is known, given in
    ``message``); a start-up check that finds the log whole again sets ``resolved_at``.
    """

    __tablename__ = "log_problems"

    id: Mapped[int] = mapped_column(
        BigInteger().with_variant(Integer, "sqlite"), primary_key=True, autoincrement=True
    )
    found_at: Mapped[datetime]
    position: Mapped[int | None] = mapped_column(BigInteger().with_variant(Integer, "sqlite"))
    kind: Mapped[str] = mapped_column(String(30))
    message: Mapped[str] = mapped_column(Text)
    resolved_at: Mapped[datetime | None] = mapped_column(index=True)


class CheckpointCosignature(Base):
    """A witness's cosignature line on the checkpoint at ``size`` (C2SP cosignature/v1).

    Kept as the witness returned it, checked with the witness's configured key before it is
    stored; ``/log/checkpoint`` appends these lines to the checkpoint's note.
    """

    __tablename__ = "checkpoint_cosignatures"
    __table_args__ = (UniqueConstraint("size", "witness"),)

    id: Mapped[int] = mapped_column(
        BigInteger().with_variant(Integer, "sqlite"), primary_key=True, autoincrement=True
    )
    size: Mapped[int] = mapped_column(BigInteger().with_variant(Integer, "sqlite"), index=True)
    witness: Mapped[str] = mapped_column(String(200))
    #: when the witness says it cosigned (POSIX seconds)
    timestamp: Mapped[int] = mapped_column(BigInteger)
    line: Mapped[str] = mapped_column(Text)
    received_at: Mapped[datetime]


class WitnessState(Base):
    """What the log knows of one configured witness: the size it last cosigned, and the last
    problem submitting to it (down, or a refusal) — ``None`` once it cosigns again."""

    __tablename__ = "witness_states"

    witness: Mapped[str] = mapped_column(String(200), primary_key=True)
    #: the size of the latest checkpoint the witness holds for this log, as far as known
    size: Mapped[int] = mapped_column(BigInteger().with_variant(Integer, "sqlite"))
    checked_at: Mapped[datetime]
    problem: Mapped[str | None] = mapped_column(Text)
    #: the witness refused a checkpoint as inconsistent (it may be proof of a fork)
    refused: Mapped[bool] = mapped_column(Boolean, default=False)


class IdempotencyKey(Base):
    """A POST's ``Idempotency-Key``: in flight, or done with its response stored byte for byte."""

    __tablename__ = "idempotency_keys"

    caller: Mapped[str] = mapped_column(String(100), primary_key=True)
    key: Mapped[str] = mapped_column(String(255), primary_key=True)
    method: Mapped[str] = mapped_column(String(10))
    path: Mapped[str] = mapped_column(String(500))
    fingerprint: Mapped[str] = mapped_column(String(64))
    state: Mapped[str] = mapped_column(String(10))  # in_flight | done
    status_code: Mapped[int | None]
    body: Mapped[bytes | None] = mapped_column(LargeBinary)  # never a token (api.idempotency)
    created_at: Mapped[datetime] = mapped_column(index=True)  # the purge's range
    lease_until: Mapped[datetime]


class LegalRequest(Base):
    """A lawful request: as received, its scope, who recorded and decided it, what was applied.

    ``state`` is ``pending`` until a second operator approves it (then ``applied``) or anyone
    rejects it (``rejected``; Meridian rejects a request with nothing in scope itself). The
    document contents are never stored: only their names, SHA-256 digests and sizes.
    """

    __tablename__ = "legal_requests"

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    authority: Mapped[str] = mapped_column(String(200))
    jurisdiction: Mapped[str] = mapped_column(String(8), index=True)
    legal_type: Mapped[str] = mapped_column(String(30))
    reference: Mapped[str] = mapped_column(String(200))
    target_kind: Mapped[str] = mapped_column(String(20))  # account | meeting | participants
    target_id: Mapped[str] = mapped_column(String(100), index=True)
    action: Mapped[str] = mapped_column(String(30))
    notice_delay_until: Mapped[datetime | None]
    #: ``[{"name", "sha256", "size"}]``
    documents: Mapped[list[Any]]
    #: pending | rejected | applied
    state: Mapped[str] = mapped_column(String(20), index=True)
    #: the scope computed at intake, as ``legal.scoped`` recorded it
    scope: Mapped[dict[str, Any]]
    received_at: Mapped[datetime]
    #: the recording operator: its actor (``operator:tok_…``) and its token's name
    recorded_by: Mapped[str] = mapped_column(String(100))
    recorded_by_name: Mapped[str] = mapped_column(String(200))
    approved_by: Mapped[str | None] = mapped_column(String(100))
    approved_by_name: Mapped[str | None] = mapped_column(String(200))
    approved_at: Mapped[datetime | None]
    rejected_by: Mapped[str | None] = mapped_column(String(100))
    rejected_at: Mapped[datetime | None]
    reject_reason: Mapped[str | None] = mapped_column(Text)
    #: what was applied, as ``legal.applied`` recorded it, with the scope at approval
    applied: Mapped[dict[str, Any] | None] = mapped_column(JSON, nullable=True)
    applied_at: Mapped[datetime | None]
    #: sent | delayed | none (no one to notify); ``None`` until applied
    notice: Mapped[str | None] = mapped_column(String(10), index=True)
    notified_at: Mapped[datetime | None]


class LegalBlock(Base):
    """A block on a meeting: no one joining from ``jurisdiction`` is admitted while it is active."""

    __tablename__ = "legal_blocks"

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    meeting_id: Mapped[str] = mapped_column(ForeignKey("meetings.id"), index=True)
    jurisdiction: Mapped[str] = mapped_column(String(8))
    request_id: Mapped[str] = mapped_column(ForeignKey("legal_requests.id"), index=True)
    active: Mapped[bool] = mapped_column(Boolean)
    created_at: Mapped[datetime]
    lifted_at: Mapped[datetime | None]


class Person(Base):
    """An operator: one person, created out of band (``meridian admin add-operator``).

    Each operator token belongs to one person; the two-person rule compares people, and the
    log names the person (``operator:psn_…``), whichever of their tokens acted.
    """

    __tablename__ = "people"

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    role: Mapped[str] = mapped_column(String(20))  # operator
    name: Mapped[str] = mapped_column(String(200))
    email: Mapped[str | None] = mapped_column(String(320))
    created_at: Mapped[datetime]
    #: set when the person is removed: their tokens stop working
    disabled_at: Mapped[datetime | None]


class WebSession(Base):
    """A signed-in browser session of the pages; signing out ends it here, for every replica.

    ``id`` is the SHA-256 of the session id sealed in the cookie (the id itself is not stored).
    """

    __tablename__ = "web_sessions"

    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    token_id: Mapped[str] = mapped_column(ForeignKey("tokens.id"), index=True)
    created_at: Mapped[datetime]
    expires_at: Mapped[datetime] = mapped_column(index=True)
    ended_at: Mapped[datetime | None]


class Replica(Base):
    """A control-plane process on this database, and how long its lease runs.

    A replica inserts its row at start-up and renews ``expires_at`` on every heartbeat; a
    replica whose lease has run out is dead to the others (its live connections are gone), even
    if its row remains. Instants are the database server's (``now()`` on PostgreSQL), so hosts
    whose clocks differ still agree on whose lease has expired.
    """

    __tablename__ = "replicas"

    id: Mapped[str] = mapped_column(String(100), primary_key=True)
    host: Mapped[str] = mapped_column(String(255))
    pid: Mapped[int] = mapped_column(Integer)
    started_at: Mapped[datetime]
    heartbeat_at: Mapped[datetime]
    expires_at: Mapped[datetime] = mapped_column(index=True)
