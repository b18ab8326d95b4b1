"""The transparency report on government requests, computed from the log and nothing else.

A report covers the lawful requests *received* in a period (the ``at`` of each request's
``legal.received`` entry, dates inclusive, in UTC) and what had become of them at one signed
checkpoint: only the log's first ``checkpoint.size`` entries are read, and the report states
that checkpoint (origin, size, root, time and the signed note itself). Anyone holding an export
of the log can therefore recompute the report and compare it byte for byte
(:func:`verify_report`).

It holds counts only: jurisdictions, legal types, actions, outcomes and totals. No account id,
participation id, meeting id, name, authority or reference leaves this module.

Outcomes, each request exactly one of them at the checkpoint::

    rejected    a ``legal.rejected`` entry (by a reviewer, or by Meridian when nothing was in scope)
    narrowed    a ``legal.applied`` entry with outcome ``narrowed`` (only people in scope touched)
    applied     a ``legal.applied`` entry with outcome ``applied``
    pending     neither yet

Three renderings, each deterministic (the same report gives the same bytes): canonical JSON
(sorted keys, ``,``/``:`` separators, UTF-8, one trailing newline), CSV in a long format
(:func:`render_csv`) and one self-contained HTML page (:mod:`meridian.reports.html`).
"""

from __future__ import annotations

import base64
import csv
import io
import json
import re
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any, Literal, Protocol

from ..errors import InputError, LogIntegrityError, ProofError, shown
from ..legal.model import ACTIONS, LEGAL_TYPES

__all__ = [
    "ACTIONS",
    "FORMAT",
    "FORMATS",
    "LEGAL_TYPES",
    "OUTCOMES",
    "CheckpointLike",
    "ExportSource",
    "LiveLog",
    "Mismatch",
    "Period",
    "ReportFormat",
    "SignedLike",
    "StatedCheckpoint",
    "StatedParameters",
    "TransparencyReport",
    "compute_report",
    "csv_rows",
    "default_period",
    "first_difference",
    "format_for",
    "media_type",
    "open_verified_export",
    "parse_day",
    "parse_format",
    "recompute_report",
    "render",
    "render_csv",
    "render_json",
    "report_from_export",
    "report_from_log",
    "stated_parameters",
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


class LiveLog(Protocol):
    """The live service's log as the report reads it (``Runtime.log``)."""

    def checkpoint(self, *, force: bool = False) -> SignedLike: ...
    def latest(self) -> SignedLike | None: ...
    def entries(self, start: int, end: int) -> Iterator[tuple[int, bytes]]: ...
    def guard(self) -> None: ...


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


def format_for(filename: str) -> ReportFormat | None:
    """The format a file's extension names (``.json``, ``.csv``, ``.html``/``.htm``), if any."""
    suffix = filename.rsplit(".", 1)[-1].lower() if "." in filename else ""
    if suffix == "htm":
        return "html"
    return next((fmt for fmt in FORMATS if fmt == suffix), None)


def media_type(fmt: ReportFormat) -> str:
    """The ``Content-Type`` a report in ``fmt`` is served with."""
    return _MEDIA_TYPES[fmt]


# -- the report ----------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class TransparencyReport:
    """Counts of the requests received in ``period``, as of ``checkpoint``.

    Each breakdown is a tuple of ``(key, count)`` in the order the report lists it.
    ``accounts``, ``participants`` and ``meetings_ended`` are distinct counts over the
    ``legal.applied`` entries of those requests; ``notice_delayed`` counts requests applied with
    notice delayed, and ``notice_delayed_then_notified`` those of them notified by the checkpoint.
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
            "format": FORMAT,
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


@dataclass(slots=True)
class _Request:
    """What the log says about one request, gathered entry by entry."""

    received: date | None = None
    jurisdiction: str = ""
    legal_type: str = ""
    action: str = ""
    outcome: str = "pending"
    accounts: frozenset[str] = frozenset()
    participants: frozenset[str] = frozenset()
    meetings_ended: frozenset[str] = frozenset()
    content: int = 0
    non_content: int = 0
    notice_delayed: bool = False
    notified: bool = False
    _seen: set[str] = field(default_factory=set)


def _numbered(entries: Iterable[bytes | tuple[int, bytes]]) -> Iterator[tuple[int, bytes]]:
    for position, item in enumerate(entries):
        yield (position, item) if isinstance(item, bytes | bytearray) else item


#: every ``legal.*`` entry holds these bytes (entries are canonical JSON, ``separators=(",", ":")``)
_LEGAL = b'"action":"legal.'


def _entry(index: int, raw: bytes) -> dict[str, Any]:
    try:
        value = json.loads(raw)
    except (UnicodeDecodeError, ValueError):
        raise InputError(f"log entry {index} is not json") from None
    if not isinstance(value, dict):
        raise InputError(f"log entry {index} is not a json object")
    return value


def _field(index: int, where: dict[str, Any], key: str, kind: type | tuple[type, ...]) -> Any:
    value = where.get(key)
    if not isinstance(value, kind):
        raise InputError(f"log entry {index}: `{key}` is missing or malformed")
    return value


def _day(index: int, text: object) -> date:
    if isinstance(text, str):
        try:
            instant = datetime.fromisoformat(text)
        except ValueError:
            instant = None
        if instant is not None and instant.tzinfo is not None:
            return instant.astimezone(UTC).date()
    raise InputError(f"log entry {index}: `at` `{shown(text)}` is not an instant with a zone")


def _ids(index: int, details: dict[str, Any], key: str) -> frozenset[str]:
    values = details.get(key, [])
    if not isinstance(values, list) or not all(isinstance(v, str) for v in values):
        raise InputError(f"log entry {index}: `{key}` is not a list of ids")
    return frozenset(values)


def _gather(
    entries: Iterable[bytes | tuple[int, bytes]], size: int
) -> tuple[dict[str, _Request], int]:
    """Each request's facts from the first ``size`` entries; also how many entries were read."""
    requests: dict[str, _Request] = {}
    read = 0
    for index, raw in _numbered(entries):
        if index >= size:
            continue  # INVARIANT: a report reads nothing its checkpoint does not commit to
        if index != read:
            raise InputError(f"log entry {read} is missing: entry {index} came next")
        read += 1
        if _LEGAL not in raw:
            continue  # not a request's step: an entry's canonical bytes always hold its action so
        entry = _entry(index, raw)
        action = entry.get("action")
        subject = entry.get("subject")
        if not (isinstance(action, str) and action.startswith("legal.")):
            continue
        if not isinstance(subject, dict) or subject.get("kind") != "legal_request":
            continue
        request_id = _field(index, subject, "id", str)
        details = _field(index, entry, "details", dict)
        req = requests.setdefault(request_id, _Request())
        _apply(index, req, action, entry, details)
    return requests, read


def _apply(
    index: int, req: _Request, action: str, entry: dict[str, Any], details: dict[str, Any]
) -> None:
    """Fold one ``legal.*`` entry into what is known of its request."""
    if action in req._seen and action in ("legal.received", "legal.applied", "legal.rejected"):
        raise InputError(f"log entry {index}: a second `{action}` for the same request")
    req._seen.add(action)
    match action:
        case "legal.received":
            request = _field(index, details, "request", dict)
            req.received = _day(index, entry.get("at"))
            req.jurisdiction = _field(index, request, "jurisdiction", str)
            req.legal_type = _field(index, request, "legal_type", str)
            req.action = _field(index, request, "action", str)
        case "legal.rejected":
            # a request is applied or rejected, never both: the first decision stands
            if req.outcome == "pending":
                req.outcome = "rejected"
        case "legal.applied":
            outcome = _field(index, details, "outcome", str)
            if outcome not in ("applied", "narrowed"):
                raise InputError(
                    f"log entry {index}: unknown outcome `{shown(outcome)}`: expected `applied` or `narrowed`"
                )
            if req.outcome == "pending":
                req.outcome = outcome
            req.accounts = _ids(index, details, "accounts")
            req.participants = _ids(index, details, "participants")
            req.meetings_ended = _ids(index, details, "meetings_ended")
            disclosures = details.get("disclosures") or {}
            if not isinstance(disclosures, dict):
                raise InputError(f"log entry {index}: `disclosures` is malformed")
            req.content = _count(index, disclosures, "content")
            req.non_content = _count(index, disclosures, "non_content")
            req.notice_delayed = details.get("notice") == "delayed"
        case "legal.notified":
            req.notified = True
        case _:
            pass  # legal.scoped, legal.approved: steps on the way, not outcomes


def _count(index: int, where: dict[str, Any], key: str) -> int:
    value = where.get(key, 0)
    if not isinstance(value, int) or isinstance(value, bool) or value < 0:
        raise InputError(f"log entry {index}: `{key}` is not a count")
    return value


def _breakdown(values: Iterable[str], vocabulary: Sequence[str]) -> tuple[tuple[str, int], ...]:
    counts: dict[str, int] = dict.fromkeys(vocabulary, 0)
    others: dict[str, int] = {}
    for value in values:
        if value in counts:
            counts[value] += 1
        else:
            others[value] = others.get(value, 0) + 1
    return (*counts.items(), *sorted(others.items()))


def _period(
    requests: dict[str, _Request],
    checkpoint: StatedCheckpoint,
    start: date | None,
    end: date | None,
) -> Period:
    days = sorted(r.received for r in requests.values() if r.received is not None)
    fallback = checkpoint.time.astimezone(UTC).date()
    return Period(
        start if start is not None else (days[0] if days else fallback),
        end if end is not None else (days[-1] if days else fallback),
    )


def default_period(
    entries: Iterable[bytes | tuple[int, bytes]],
    checkpoint: StatedCheckpoint,
    start: date | None = None,
    end: date | None = None,
) -> Period:
    """``start``/``end``, each defaulting to the day of the first/last request in the log.

    With no request in the log up to the checkpoint, a missing bound is the checkpoint's day.
    """
    if start is not None and end is not None:
        return Period(start, end)
    return _period(_gather(entries, checkpoint.size)[0], checkpoint, start, end)


def compute_report(
    entries: Iterable[bytes | tuple[int, bytes]],
    checkpoint: StatedCheckpoint,
    period: Period | None = None,
    *,
    start: date | None = None,
    end: date | None = None,
) -> TransparencyReport:
    """The report on requests received in ``period``, from the log up to ``checkpoint``.

    ``entries`` are the log's entries from index 0, as bytes or ``(index, bytes)``; those at or
    past ``checkpoint.size`` are ignored. Without ``period`` it is ``start`` to ``end``, either
    one missing defaulting as in :func:`default_period`. The entries are not checked against
    the checkpoint's root: verify the log first (:func:`meridian.audit.verify.verify_export`).
    """
    requests, read = _gather(entries, checkpoint.size)
    if read < checkpoint.size:
        raise InputError(
            f"the log ends at {read} entries: the checkpoint commits to {checkpoint.size}"
        )
    if period is None:
        period = _period(requests, checkpoint, start, end)
    chosen = [r for r in requests.values() if r.received in period]
    delayed = [r for r in chosen if r.outcome in ("applied", "narrowed") and r.notice_delayed]
    return TransparencyReport(
        checkpoint=checkpoint,
        period=period,
        requests=len(chosen),
        by_jurisdiction=_breakdown((r.jurisdiction for r in chosen), ()),
        by_legal_type=_breakdown((r.legal_type for r in chosen), LEGAL_TYPES),
        by_action=_breakdown((r.action for r in chosen), ACTIONS),
        by_outcome=_breakdown((r.outcome for r in chosen), OUTCOMES),
        accounts=len(frozenset().union(*(r.accounts for r in chosen))),
        participants=len(frozenset().union(*(r.participants for r in chosen))),
        meetings_ended=len(frozenset().union(*(r.meetings_ended for r in chosen))),
        disclosures_content=sum(r.content for r in chosen),
        disclosures_non_content=sum(r.non_content for r in chosen),
        notice_delayed=len(delayed),
        notice_delayed_then_notified=sum(1 for r in delayed if r.notified),
    )


# -- renderings ----------------------------------------------------------------------------


def _instant_text(instant: datetime) -> str:
    return instant.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def render_json(report: TransparencyReport) -> bytes:
    """Canonical JSON: sorted keys, ``,``/``:`` separators, UTF-8, one trailing newline."""
    text = json.dumps(report.to_dict(), sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return (text + "\n").encode("utf-8")


def csv_rows(report: TransparencyReport) -> list[tuple[str, str, str]]:
    """The CSV rendering's rows after its header, in order (see :func:`render_csv`)."""
    cp = report.checkpoint
    rows: list[tuple[str, str, str]] = [
        ("report", "format", FORMAT),
        ("period", "from", report.period.start.isoformat()),
        ("period", "to", report.period.end.isoformat()),
        ("checkpoint", "origin", cp.origin),
        ("checkpoint", "size", str(cp.size)),
        ("checkpoint", "root", cp.root_b64),
        ("checkpoint", "time", cp.time_text),
        ("checkpoint", "note", cp.note),
        ("requests", "total", str(report.requests)),
    ]
    for dimension, breakdown in (
        ("jurisdiction", report.by_jurisdiction),
        ("legal_type", report.by_legal_type),
        ("action", report.by_action),
        ("outcome", report.by_outcome),
    ):
        rows.extend((dimension, key, str(count)) for key, count in breakdown)
    rows += [
        ("affected", "accounts", str(report.accounts)),
        ("affected", "participants", str(report.participants)),
        ("affected", "meetings_ended", str(report.meetings_ended)),
        ("disclosures", "content", str(report.disclosures_content)),
        ("disclosures", "non_content", str(report.disclosures_non_content)),
        ("notice", "delayed", str(report.notice_delayed)),
        ("notice", "delayed_then_notified", str(report.notice_delayed_then_notified)),
    ]
    return rows


def render_csv(report: TransparencyReport) -> bytes:
    """Long-format CSV: a header ``dimension,key,value``, then one row per fact, ``\\n`` endings.

    Row order: ``report,format``; ``period`` ``from``, ``to``; ``checkpoint`` ``origin``,
    ``size``, ``root`` (base64), ``time``, ``note`` (the signed note, a quoted multi-line value);
    ``requests,total``; then the counts: ``jurisdiction`` (by code), ``legal_type``, ``action``
    and ``outcome`` (each in its vocabulary's order, zeros included), ``affected`` (``accounts``,
    ``participants``, ``meetings_ended``), ``disclosures`` (``content``, ``non_content``) and
    ``notice`` (``delayed``, ``delayed_then_notified``). Only the first nine rows hold text;
    every other ``value`` is a count.
    """
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(("dimension", "key", "value"))
    writer.writerows(csv_rows(report))
    return out.getvalue().encode("utf-8")


def render(report: TransparencyReport, fmt: ReportFormat) -> bytes:
    """The report in ``fmt``: the same report always gives the same bytes."""
    if fmt == "json":
        return render_json(report)
    if fmt == "csv":
        return render_csv(report)
    from .html import render_html

    return render_html(report)


# -- reading a report back -----------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class StatedParameters:
    """What a rendered report says it was computed from: enough to recompute it."""

    size: int
    time: str
    period: Period


def stated_parameters(data: bytes, fmt: ReportFormat) -> StatedParameters:
    """The checkpoint size and time and the period a rendered report states.

    Raises :class:`InputError` when the report does not state them in the layout of ``fmt``.
    """
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        raise InputError("the report is not utf-8 text") from None
    fields: dict[str, str] = {}
    if fmt == "json":
        try:
            doc = json.loads(text)
            fields = {
                "size": str(doc["checkpoint"]["size"]),
                "time": doc["checkpoint"]["time"],
                "from": doc["period"]["from"],
                "to": doc["period"]["to"],
            }
        except (ValueError, KeyError, TypeError):
            fields = {}
    elif fmt == "csv":
        names = {("checkpoint", "size"), ("checkpoint", "time"), ("period", "from")}
        names.add(("period", "to"))
        for row in csv.reader(io.StringIO(text, newline="")):
            if len(row) == 3 and (row[0], row[1]) in names:
                fields.setdefault(row[1], row[2])
    else:
        from .html import stated_fields

        fields = stated_fields(text)
    missing = [k for k in ("size", "time", "from", "to") if not isinstance(fields.get(k), str)]
    if missing or not fields["size"].isdigit():
        raise InputError(
            f"the report does not state its checkpoint and period as a {fmt} transparency report does"
        )
    return StatedParameters(
        size=int(fields["size"]),
        time=fields["time"],
        period=Period(
            parse_day(fields["from"], "period from"), parse_day(fields["to"], "period to")
        ),
    )


@dataclass(frozen=True, slots=True)
class Mismatch:
    """Where a report differs from its recomputation: line and column (from 1), and both texts.

    ``expected`` and ``found`` are the two versions of that line, cut to a few dozen characters
    around the column (a JSON report is one long line).
    """

    line: int
    column: int
    expected: str
    found: str

    def __str__(self) -> str:
        return (
            f"differs at line {self.line}, column {self.column}: "
            f"expected `{shown(self.expected, 80)}`, found `{shown(self.found, 80)}`"
        )


_CONTEXT = 30


def _excerpt(line: str | None, column: int) -> str:
    if line is None:
        return "(end of file)"
    start = max(0, column - _CONTEXT)
    end = column + _CONTEXT
    return ("…" if start else "") + line[start:end] + ("…" if end < len(line) else "")


def first_difference(expected: bytes, found: bytes) -> Mismatch | None:
    """The first place ``found`` differs from ``expected``, or ``None`` if they are equal."""
    if expected == found:
        return None
    want = expected.decode("utf-8", "replace").split("\n")
    got = found.decode("utf-8", "replace").split("\n")
    for number in range(max(len(want), len(got))):
        a = want[number] if number < len(want) else None
        b = got[number] if number < len(got) else None
        if a != b:
            column = 0
            if a is not None and b is not None:
                column = next(
                    (i for i, (x, y) in enumerate(zip(a, b, strict=False)) if x != y),
                    min(len(a), len(b)),
                )
            return Mismatch(number + 1, column + 1, _excerpt(a, column), _excerpt(b, column))
    # the same text from different bytes: bytes that are not UTF-8, replaced alike
    return Mismatch(1, 1, "(utf-8 text)", "(bytes that are not utf-8)")


# -- from the live service -----------------------------------------------------------------


def report_from_log(
    log: LiveLog, *, start: date | None = None, end: date | None = None, fresh: bool = True
) -> TransparencyReport:
    """The report at the live log's latest checkpoint.

    With ``fresh`` one is signed first if the log grew; without, the latest issued is used (the
    public endpoint: an anonymous caller never makes the service sign, and the schedule keeps
    checkpoints recent). The live log checks every entry it gives against its leaf and the tree
    against the checkpoint, and a log that failed its self-check gives no report at all
    (:class:`~meridian.errors.LogTamperedError`, naming the entry).
    """
    log.guard()
    signed = (None if fresh else log.latest()) or log.checkpoint()
    stated = StatedCheckpoint.of(signed.checkpoint, signed.note)
    return compute_report(log.entries(0, stated.size), stated, start=start, end=end)


# -- from an export ------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class ExportSource:
    """A verified export: its entries and its signed checkpoints, each opened with the key."""

    entries: tuple[tuple[int, bytes], ...]
    checkpoints: tuple[StatedCheckpoint, ...]
    latest: StatedCheckpoint


def open_verified_export(
    source: Path | bytes, vkey: str, *, progress: Callable[[int], None] | None = None
) -> ExportSource:
    """The export at ``source`` once it verifies against ``vkey`` (every problem, else).

    Raises :class:`LogIntegrityError` listing what :func:`meridian.audit.verify.verify_export`
    found, and :class:`InputError` for a malformed key or an export with no checkpoint.
    ``progress`` is verification's: called with the entries checked so far, every 65,536
    entries and once at the end.
    """
    from ..audit.export import read_export
    from ..audit.note import NoteVerifier
    from ..audit.verify import verify_export

    verifier = NoteVerifier.from_vkey(vkey)
    result = verify_export(source, vkey, progress=progress)
    if not result.ok:
        raise LogIntegrityError(list(result.problems))
    export = read_export(source)
    stated = tuple(StatedCheckpoint.of(verifier.open(note), note) for note in export.checkpoints)
    if result.latest is None or not stated:
        raise InputError("the export holds no signed checkpoint to report at")
    latest = next((s for s in reversed(stated) if s.matches(result.latest)), stated[-1])
    entries = tuple((item.index, item.entry) for item in export.entries)
    return ExportSource(entries=entries, checkpoints=stated, latest=latest)


def report_from_export(
    source: ExportSource, *, start: date | None = None, end: date | None = None
) -> TransparencyReport:
    """The report at the export's latest checkpoint (verify it first: :func:`open_verified_export`)."""
    return compute_report(source.entries, source.latest, start=start, end=end)


def recompute_report(source: ExportSource, data: bytes, fmt: ReportFormat) -> TransparencyReport:
    """The report ``data`` (in ``fmt``) should be, recomputed from a verified export.

    The checkpoint is the one the report states: one of the export's, at the size the report
    states (the one with the stated time if several share that size). A size the export has no
    checkpoint for is a :class:`ProofError`.
    """
    stated = stated_parameters(data, fmt)
    same_size = [c for c in source.checkpoints if c.size == stated.size]
    if not same_size:
        sizes = ", ".join(str(c.size) for c in source.checkpoints)
        raise ProofError(
            f"the report is computed at checkpoint size `{stated.size}`, "
            f"which is not one of the export's checkpoints (sizes {sizes})"
        )
    checkpoint = next((c for c in same_size if c.time_text == stated.time), same_size[-1])
    return compute_report(source.entries, checkpoint, stated.period)
