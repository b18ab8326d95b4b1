"""The transparency report computed from the log: its first ``checkpoint.size`` entries only.

The entries are not checked against the checkpoint's root here: verify the log first
(:func:`meridian.audit.verify.verify_export`, or the live log's own checks).
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from typing import Any, Protocol

from ..audit.merkle import Tree, leaf_hash
from ..errors import InputError, shown
from .model import (
    ACTIONS,
    LEGAL_TYPES,
    OUTCOMES,
    EntryProof,
    Period,
    RequestEntries,
    SignedLike,
    StatedCheckpoint,
    TransparencyReport,
)

__all__ = ["LiveLog", "compute_report", "default_period", "report_from_log"]


class LiveLog(Protocol):
    """The live service's log as the report reads it (``Runtime.log``)."""

    def checkpoint(self, *, force: bool = False) -> SignedLike: ...
    def latest(self) -> SignedLike | None: ...
    def entries(self, start: int, end: int) -> Iterator[tuple[int, bytes]]: ...
    def guard(self) -> None: ...


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
    #: the people (accounts, participants) its scope found outside its jurisdiction
    outside: frozenset[str] = frozenset()
    #: the positions of its entries in the log, in log order
    positions: list[int] = field(default_factory=list)
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
    entries: Iterable[bytes | tuple[int, bytes]], size: int, tree: Tree | None = None
) -> tuple[dict[str, _Request], int]:
    """Each request's facts from the first ``size`` entries; also how many entries were read.

    With ``tree``, every entry read is added to it (its leaf hash), so the report can give each
    request's entries with their inclusion proofs.
    """
    requests: dict[str, _Request] = {}
    read = 0
    for index, raw in _numbered(entries):
        if index >= size:
            continue  # INVARIANT: a report reads nothing its checkpoint does not commit to
        if index != read:
            raise InputError(f"log entry {read} is missing: entry {index} came next")
        read += 1
        if tree is not None:
            tree.append(leaf_hash(raw))
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
        req.positions.append(index)
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
        case "legal.scoped":
            effects = details.get("effects", [])
            if not isinstance(effects, list):
                raise InputError(f"log entry {index}: `effects` is not a list")
            req.outside = frozenset(
                f"{e.get('kind')} {e.get('id')}"
                for e in effects
                if isinstance(e, dict) and e.get("kind") in _PEOPLE and e.get("in_scope") is False
            )
        case "legal.notified":
            req.notified = True
        case _:
            pass  # legal.scoped, legal.approved: steps on the way, not outcomes


#: the entities of a request's scope that are people (a meeting is not one)
_PEOPLE = ("account", "participant")


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
    tree = Tree()
    requests, read = _gather(entries, checkpoint.size, tree)
    if read < checkpoint.size:
        raise InputError(
            f"the log ends at {read} entries: the checkpoint commits to {checkpoint.size}"
        )
    if period is None:
        period = _period(requests, checkpoint, start, end)
    chosen = [r for r in requests.values() if r.received in period]
    delayed = [r for r in chosen if r.outcome in ("applied", "narrowed") and r.notice_delayed]
    size = checkpoint.size
    # each counted request in log order, by its first entry; named by its number, never its id
    ordered = sorted(chosen, key=lambda r: r.positions[0] if r.positions else -1)
    evidence = tuple(
        RequestEntries(
            number,
            tuple(
                EntryProof(i, tree.leaf(i), tuple(tree.inclusion_proof(i, size)))
                for i in r.positions
            ),
        )
        for number, r in enumerate(ordered, 1)
    )
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
        sought_outside=sum(1 for r in chosen if r.outside),
        people_outside=len(frozenset().union(*(r.outside for r in chosen))),
        evidence=evidence,
    )


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
