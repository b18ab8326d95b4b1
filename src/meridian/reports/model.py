"""The transparency report on government requests: the frozen values and their vocabulary.

A report covers the lawful requests *received* in a period (the ``at`` of each request's
``legal.received`` entry, dates inclusive, in UTC) and what had become of them at one signed
checkpoint: only the log's first ``checkpoint.size`` entries are read, and the report states
that checkpoint (origin, size, root, time and the signed note itself). Anyone holding an export
of the log can therefore recompute the report and compare it byte for byte
(:func:`meridian.reports.verify.recompute_report`).

It holds counts only: jurisdictions, legal types, actions, outcomes and totals. No account id,
participation id, meeting id, name, authority or reference leaves this package.

Outcomes, each request exactly one of them at the checkpoint::

    rejected    a ``legal.rejected`` entry (by a reviewer, or by Meridian when nothing was in scope)
    narrowed    a ``legal.applied`` entry with outcome ``narrowed`` (only people in scope touched)
    applied     a ``legal.applied`` entry with outcome ``applied``
    pending     neither yet

The report is computed in :mod:`meridian.reports.compute`, rendered in
:mod:`meridian.reports.render` (JSON, CSV) and :mod:`meridian.reports.html`, read back in
:mod:`meridian.reports.readback` and checked against an export in :mod:`meridian.reports.verify`.
"""

from __future__ import annotations

import base64
import re
from dataclasses import dataclass
from datetime import UTC, date, datetime
from typing import Any, Literal, Protocol

from ..errors import InputError, shown
from ..legal.model import ACTIONS, LEGAL_TYPES

__all__ = [
    "ACTIONS",
    "FORMAT",
    "FORMATS",
    "LEGAL_TYPES",
    "OUTCOMES",
    "CheckpointLike",
    "EntryProof",
    "Period",
    "ReportFormat",
    "RequestEntries",
    "SignedLike",
    "StatedCheckpoint",
    "TransparencyReport",
    "media_type",
    "parse_day",
    "parse_format",
]

#: The identifier every rendering carries, so a reader knows which layout it holds.
FORMAT = "meridian-transparency/1"

ReportFormat = Literal["json", "csv", "html"]
FORMATS: tuple[ReportFormat, ...] = ("json", "csv", "html")

#: The vocabularies of the lawful-request workflow (its legal types and actions, from
#: ``meridian.legal.model``), in the order the report lists them. Each is listed whole (zero
#: counts included) so two reports always have the same rows; a value the log holds outside a
#: vocabulary is listed after it, sorted.
OUTCOMES = ("rejected", "narrowed", "applied", "pending")

_MEDIA_TYPES: dict[ReportFormat, str] = {
    "json": "application/json",
    "csv": "text/csv; charset=utf-8",
    "html": "text/html; charset=utf-8",
}
_DAY = re.compile(r"\d{4}-\d{2}-\d{2}")

# -- inputs --------------------------------------------------------------------------------


class CheckpointLike(Protocol):
    """What a parsed checkpoint gives: ``meridian.audit.note.Checkpoint`` is one."""

    @property
    def origin(self) -> str: ...
    @property
    def size(self) -> int: ...
    @property
    def root(self) -> bytes: ...
    @property
    def time(self) -> datetime: ...


class SignedLike(Protocol):
    """A signed checkpoint: the note text and what it says (``meridian.audit.log.Signed``)."""

    @property
    def note(self) -> str: ...
    @property
    def checkpoint(self) -> CheckpointLike: ...


@dataclass(frozen=True, slots=True)
class StatedCheckpoint:
    """The checkpoint a report is computed at, as the report states it: values and signed note."""

    origin: str
    size: int
    root: bytes
    time: datetime
    note: str

    @classmethod
    def of(cls, checkpoint: CheckpointLike, note: str) -> StatedCheckpoint:
        """``checkpoint`` (a parsed note) together with the note text it was parsed from."""
        return cls(checkpoint.origin, checkpoint.size, checkpoint.root, checkpoint.time, note)

    @property
    def root_b64(self) -> str:
        return base64.b64encode(self.root).decode("ascii")

    @property
    def time_text(self) -> str:
        return _instant_text(self.time)

    def matches(self, checkpoint: CheckpointLike) -> bool:
        """Whether this states ``checkpoint``: same origin, size, root and time."""
        return (self.origin, self.size, self.root, self.time) == (
            checkpoint.origin,
            checkpoint.size,
            checkpoint.root,
            checkpoint.time,
        )

    def to_dict(self) -> dict[str, Any]:
        return {
            "note": self.note,
            "origin": self.origin,
            "root": self.root_b64,
            "size": self.size,
            "time": self.time_text,
        }


@dataclass(frozen=True, slots=True)
class Period:
    """Dates from ``start`` to ``end``, both inclusive, in UTC."""

    start: date
    end: date

    def __post_init__(self) -> None:
        if self.start > self.end:
            raise InputError(
                f"the period starts `{self.start.isoformat()}` after it ends `{self.end.isoformat()}`: the start must not be after the end"
            )

    def __contains__(self, day: object) -> bool:
        return isinstance(day, date) and self.start <= day <= self.end


def parse_day(text: str, what: str) -> date:
    """A calendar date ``YYYY-MM-DD``, or an :class:`InputError` naming ``what``."""
    if _DAY.fullmatch(text):
        try:
            return date.fromisoformat(text)
        except ValueError:
            pass
    raise InputError(
        f"invalid date `{shown(text)}` for `{what}`: expected YYYY-MM-DD, such as `2020-05-01`"
    )


def parse_format(text: str, what: str = "--format") -> ReportFormat:
    """One of :data:`FORMATS`, or an :class:`InputError` naming ``what``."""
    for fmt in FORMATS:
        if text == fmt:
            return fmt
    raise InputError(
        f"unknown report format `{shown(text)}` for `{what}`: expected `json`, `csv` or `html`"
    )


def media_type(fmt: ReportFormat) -> str:
    """The ``Content-Type`` a report in ``fmt`` is served with."""
    return _MEDIA_TYPES[fmt]


# -- the report ----------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class EntryProof:
    """One log entry of a counted request: its position, leaf hash and inclusion proof against
    the report's checkpoint (RFC 9162). The entry itself is not in the report: it names people."""

    index: int
    leaf: bytes
    proof: tuple[bytes, ...]

    def to_dict(self) -> dict[str, Any]:
        return {
            "index": self.index,
            "leaf": base64.b64encode(self.leaf).decode("ascii"),
            "proof": [base64.b64encode(h).decode("ascii") for h in self.proof],
        }


@dataclass(frozen=True, slots=True)
class RequestEntries:
    """A counted request's entries, the request named by its number in the report (1, 2, …, in
    the order of its first entry in the log), never by its id."""

    number: int
    entries: tuple[EntryProof, ...]

    def to_dict(self) -> dict[str, Any]:
        return {"request": self.number, "entries": [e.to_dict() for e in self.entries]}


@dataclass(frozen=True, slots=True)
class TransparencyReport:
    """Counts of the requests received in ``period``, as of ``checkpoint``.

    Each breakdown is a tuple of ``(key, count)`` in the order the report lists it.
    ``accounts``, ``participants`` and ``meetings_ended`` are distinct counts over the
    ``legal.applied`` entries of those requests; ``notice_delayed`` counts requests applied with
    notice delayed, and ``notice_delayed_then_notified`` those of them notified by the checkpoint.

    ``sought_outside`` counts the requests that sought to affect people outside the requesting
    jurisdiction (their ``legal.scoped`` entry found an account or participant out of scope),
    and ``people_outside`` those people, distinct: what the 2020 promise says a request may
    never touch. ``evidence`` gives each counted request's entries with inclusion proofs.
    """

    checkpoint: StatedCheckpoint
    period: Period
    requests: int
    by_jurisdiction: tuple[tuple[str, int], ...]
    by_legal_type: tuple[tuple[str, int], ...]
    by_action: tuple[tuple[str, int], ...]
    by_outcome: tuple[tuple[str, int], ...]
    accounts: int
    participants: int
    meetings_ended: int
    disclosures_content: int
    disclosures_non_content: int
    notice_delayed: int
    notice_delayed_then_notified: int
    sought_outside: int = 0
    people_outside: int = 0
    evidence: tuple[RequestEntries, ...] = ()

    def to_dict(self) -> dict[str, Any]:
        """The report as the JSON rendering holds it."""
        return {
            "affected": {
                "accounts": self.accounts,
                "meetings_ended": self.meetings_ended,
                "participants": self.participants,
            },
            "checkpoint": self.checkpoint.to_dict(),
            "disclosures": {
                "content": self.disclosures_content,
                "non_content": self.disclosures_non_content,
            },
            "entries": [r.to_dict() for r in self.evidence],
            "format": FORMAT,
            "headline": {
                "notices_delayed": self.notice_delayed,
                "notices_delayed_not_yet_given": self.notice_delayed
                - self.notice_delayed_then_notified,
                "requests": self.requests,
                "sought_outside_jurisdiction": self.sought_outside,
                "people_outside_jurisdiction": self.people_outside,
            },
            "notice": {
                "delayed": self.notice_delayed,
                "delayed_then_notified": self.notice_delayed_then_notified,
            },
            "period": {"from": self.period.start.isoformat(), "to": self.period.end.isoformat()},
            "requests": {
                "by_action": dict(self.by_action),
                "by_jurisdiction": dict(self.by_jurisdiction),
                "by_legal_type": dict(self.by_legal_type),
                "by_outcome": dict(self.by_outcome),
                "total": self.requests,
            },
        }


def _instant_text(instant: datetime) -> str:
    return instant.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
