"""How many decisions Meridian took, minute by minute, and which rules refused: read from the log.

Every decision Meridian takes is in the log, in one of two shapes:

* a decision that gated a change (a sign-up, a checkout, a join...) is the ``decision`` of the
  entry that records the change: one entry, one decision;
* advisory decisions (``POST /v1/decisions``, ``/v1/decisions:batch``, the console's what-if) are
  journaled in ``decision.advisory`` entries that hold up to a thousand decisions each, as a
  tally (counts per action, answer, deciding rules, country and minute; see
  :func:`meridian.http.journal.tally`), or in entries written before issue 14 as one compact
  summary per decision: each decision counts, not the entry.

A decision is placed at the instant it was judged at (the service clock's "now" for a live
request; the named instant for a replay or a what-if). Only the log's latest :data:`TAIL_ENTRIES`
entries are read, by position (the primary key), so the cost is bounded whatever the log's size
and nothing is added to the write path: an index on the instant cost 30 % of the appends at
1,000 entries per transaction in ``bench/audit.py`` (SQLite, 2026-11-28). When the oldest entry
read is still inside the window, :attr:`DecisionStats.partial` says the count may be short.

INVARIANT: an advisory entry's instant is its last decision's. A batch whose decisions were
judged at different instants is found by that last one: a decision in the window whose entry ends
outside it is not counted. Live traffic, whose decisions are all judged "now", is counted whole.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import orjson
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from ..storage.models import Record

__all__ = ["ADVISORY", "TAIL_ENTRIES", "DecisionStats", "Minute", "decision_stats"]

#: the action of a journal entry holding advisory decisions
ADVISORY = "decision.advisory"
_MINUTE = timedelta(minutes=1)
#: how many of the log's latest entries the statistics read at most
TAIL_ENTRIES = 200_000


@dataclass(frozen=True, slots=True)
class Minute:
    """The decisions judged in one minute: ``[start, start + 1 min)``."""

    start: datetime
    allowed: int = 0
    denied: int = 0

    @property
    def total(self) -> int:
        return self.allowed + self.denied


@dataclass(frozen=True, slots=True)
class DecisionStats:
    """Decisions per minute over a window, and the rules behind its denials."""

    #: the first minute's start and the last minute's end (exclusive), in UTC
    start: datetime
    end: datetime
    minutes: tuple[Minute, ...]
    #: ``(rule id, denials it took part in)``, most first; ``None`` is the default deny (no
    #: rule permitted). A denial by two forbid rules counts under each.
    denials: tuple[tuple[str | None, int], ...]
    #: log entries read (the latest ones, up to :data:`TAIL_ENTRIES`)
    scanned: int = 0
    #: the window reaches further back than the entries read: the counts may be short
    partial: bool = False

    @property
    def allowed(self) -> int:
        return sum(m.allowed for m in self.minutes)

    @property
    def denied(self) -> int:
        return sum(m.denied for m in self.minutes)

    @property
    def total(self) -> int:
        return self.allowed + self.denied

    @property
    def peak(self) -> int:
        """The most decisions in one minute of the window (0 when there were none)."""
        return max((m.total for m in self.minutes), default=0)


def _instant(text: str) -> datetime | None:
    try:
        at = datetime.fromisoformat(text)
    except ValueError:
        return None
    return at if at.tzinfo is not None else None


def decision_stats(
    session: Session, *, now: datetime, minutes: int = 60, tail: int = TAIL_ENTRIES
) -> DecisionStats:
    """The decisions judged in the ``minutes`` whole minutes up to and including ``now``'s,
    among the log's latest ``tail`` entries.

    The last minute is the one ``now`` falls in, so a decision taken "now" is always counted.
    """
    if minutes < 1:
        raise ValueError("a window needs at least one minute")
    last = now.astimezone(UTC).replace(second=0, microsecond=0)
    start = last - (minutes - 1) * _MINUTE
    end = last + _MINUTE
    allowed = [0] * minutes
    denied = [0] * minutes
    rules: dict[str | None, int] = {}
    # the minute of each instant as written in a summary: a journal entry's decisions mostly
    # share a handful of instants, so each is parsed once (a window may hold millions)
    slots: dict[str, int | None] = {}

    def slot_of(at: datetime) -> int | None:
        return (at - start) // _MINUTE if start <= at < end else None

    def count(
        slot: int | None, answer: str, deciding: list[str] | tuple[str, ...], n: int = 1
    ) -> None:
        if slot is None:
            return
        if answer == "allow":
            allowed[slot] += n
            return
        denied[slot] += n
        for rule in deciding or (None,):
            rules[rule] = rules.get(rule, 0) + n

    newest = session.scalar(select(func.max(Record.seq)))
    first = 0 if newest is None else max(0, newest - tail + 1)
    scanned = 0 if newest is None else newest - first + 1
    oldest_read = session.scalar(select(Record.at).where(Record.seq == first)) if first else None
    partial = oldest_read is not None and _aware(oldest_read) >= start
    rows = session.execute(
        select(Record.action, Record.at, Record.entry).where(
            Record.seq >= first, Record.at >= start, Record.at < end
        )
    )
    for action, at, data in rows:
        entry: dict[str, Any] = orjson.loads(data)
        if action == ADVISORY:
            details = entry["details"]
            # a tally (since issue 14): counts per group, at the group's minute; the decisions
            # past its groups at the entry's own instant (see meridian.http.journal.tally)
            for group in details.get("tally", ()):
                _action, answer, deciding, _country, minute, n = group
                if minute in slots:
                    slot = slots[minute]
                else:
                    judged = _instant(minute)
                    slot = slots[minute] = None if judged is None else slot_of(judged)
                count(slot, answer, deciding, n)
            for answer, deciding, n in details.get("untallied", ()):
                count(slot_of(at), answer, deciding, n)
            # the earlier form: every decision's summary
            for summary in details.get("decisions", ()):
                # (action, decision, rules, country, instant): see meridian.http.journal.summary
                when = summary[4]
                if when in slots:
                    slot = slots[when]
                else:
                    judged = _instant(when)
                    slot = slots[when] = None if judged is None else slot_of(judged)
                if slot is not None:
                    count(slot, summary[1], summary[2])
            continue
        decision = entry.get("decision")
        if decision is not None:
            deciding = list(dict.fromkeys(r["rule"] for r in decision.get("reasons", ())))
            count(slot_of(at), decision["decision"], deciding)
    window = tuple(Minute(start + i * _MINUTE, allowed[i], denied[i]) for i in range(minutes))
    ranked = sorted(rules.items(), key=lambda item: (-item[1], item[0] or ""))
    return DecisionStats(
        start=start,
        end=end,
        minutes=window,
        denials=tuple(ranked),
        scanned=scanned,
        partial=partial,
    )


def _aware(at: datetime) -> datetime:
    # SQLite gives back naive datetimes; every instant in the log is UTC
    return at if at.tzinfo is not None else at.replace(tzinfo=UTC)
