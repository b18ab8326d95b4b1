"""The record of advisory decisions (``/v1/decisions``), written in batches off the request path.

An advisory decision changes nothing, so it has no transaction of its own to join. Writing one
row per answer synchronously would cost the endpoint a database commit each time; instead each
call puts its decisions on a queue and a writer thread commits what has gathered every
:data:`FLUSH_SECONDS`.

What gathered is written as few entries as it can: one per caller and bundle digest, holding up
to :data:`MAX_PER_ENTRY` decisions (a call's decisions always stay in one entry). An entry does
not list its decisions: it holds their **tally** (:func:`tally`) — how many were allowed and
denied, a SHA-256 digest of their compact summaries (:func:`summary`: action, decision, deciding
rules, country and the instant judged at, in order), and counts per group of action, decision,
rules, country and minute judged at, at most :data:`TALLY_GROUPS` groups; decisions past that
many groups are counted per decision and rules only (a set the bundle bounds, not the caller),
at the entry's instant. The entry's ``at`` is the instant of its last decision.

So what one caller adds to the permanent log is bounded whatever it asks: about 0.3 KB for
1,000 decisions alike and at most about 3 KB for 1,000 decisions each as different as the
contract allows (measured: tests/api/test_journal.py, docs/security.md "Limits"), against
60–90 KB when every decision was listed; and at most one entry per caller and bundle every
:data:`FLUSH_SECONDS`. The rate limit on decisions (``rate_decisions``) bounds the rest. A caller
that kept its answers can check them against the log: the digest is SHA-256 over the JSON array
of their summaries (:func:`digest`).

The trade, stated: an advisory decision's record can lag its answer by up to
:data:`FLUSH_SECONDS` and is lost if the process dies inside that window. Every decision that
gates a change (sign-up, checkout, renewal, take-over) is recorded in the same transaction as the
change, never here.
"""

from __future__ import annotations

import hashlib
import logging
import queue
import threading
from collections.abc import Sequence
from datetime import datetime
from typing import Any

import orjson

from ..audit import Actor, record
from ..policy.decision import Decision
from ..runtime import Runtime

__all__ = [
    "FLUSH_SECONDS",
    "MAX_PER_ENTRY",
    "TALLY_GROUPS",
    "DecisionJournal",
    "Summary",
    "digest",
    "entries",
    "summary",
    "tally",
]

FLUSH_SECONDS = 0.2
#: the most decisions one entry of the record holds (a batch call's limit)
MAX_PER_ENTRY = 1000
#: the most calls gathered into one write transaction
_MAX_CALLS_PER_WRITE = 5000
#: the most groups (action, decision, rules, country, minute) one entry's tally counts apart
TALLY_GROUPS = 32
log = logging.getLogger("meridian.journal")

#: one advisory decision as recorded: action, decision, deciding rules, country, instant
Summary = tuple[str, str, tuple[str, ...], str, str]
#: one call's decisions: the caller, the bundle digest, the last decision's instant, summaries
_Call = tuple[Actor, str, datetime, list[Summary]]


def summary(decision: Decision) -> Summary:
    """The compact form kept per advisory decision: action, decision, rules, country, instant.

    The rules are ``decision.rule_ids`` and the instant is ``decision.at`` in ISO 8601 with
    ``Z``, both written out here: this runs for every advisory decision. It is a tuple of
    strings, which the garbage collector stops tracking, and not the decision itself, so the
    decisions waiting to be written (up to :data:`FLUSH_SECONDS` of them) cost no collections.
    """
    reasons = decision.reasons
    if len(reasons) == 1:
        rules: tuple[str, ...] = (reasons[0].rule,)
    else:
        rules = tuple(dict.fromkeys([r.rule for r in reasons]))
    at = decision.at.isoformat()
    if at.endswith("+00:00"):
        at = at[:-6] + "Z"
    return (decision.action, decision.decision, rules, decision.location.country, at)


def digest(summaries: Sequence[Summary]) -> str:
    """``sha256:`` and the hex SHA-256 of the JSON array of ``summaries`` (compact, in order).

    Each summary is ``[action, decision, [rules...], country, instant]``, the instant in ISO 8601
    as the decision gave it (``Z`` for UTC).
    """
    return "sha256:" + hashlib.sha256(orjson.dumps(summaries)).hexdigest()


def _minute(at: str) -> str:
    """The minute an ISO 8601 instant falls in, keeping its offset: ``…T09:41:07.5+08:00`` →
    ``…T09:41:00+08:00``."""
    rest = at[19:]
    if rest.startswith("."):
        rest = rest.lstrip(".0123456789")
    return at[:16] + ":00" + rest


def tally(summaries: Sequence[Summary]) -> dict[str, Any]:
    """The details an advisory entry keeps for ``summaries``: counts and a digest, bounded.

    ``{"count", "allowed", "denied", "digest", "tally": [[action, decision, [rules], country,
    minute, n], ...]}`` with at most :data:`TALLY_GROUPS` groups, in order of first appearance;
    and, when more groups came, ``"untallied": [[decision, [rules], n], ...]`` for the rest.
    """
    groups: dict[tuple[str, str, tuple[str, ...], str, str], int] = {}
    rest: dict[tuple[str, tuple[str, ...]], int] = {}
    allowed = 0
    for action, answer, rules, country, at in summaries:
        if answer == "allow":
            allowed += 1
        key = (action, answer, rules, country, _minute(at))
        if key in groups:
            groups[key] += 1
        elif len(groups) < TALLY_GROUPS:
            groups[key] = 1
        else:
            rest[(answer, rules)] = rest.get((answer, rules), 0) + 1
    details: dict[str, Any] = {
        "count": len(summaries),
        "allowed": allowed,
        "denied": len(summaries) - allowed,
        "digest": digest(summaries),
        "tally": [[a, d, list(r), c, m, n] for (a, d, r, c, m), n in groups.items()],
    }
    if rest:
        details["untallied"] = [[d, list(r), n] for (d, r), n in rest.items()]
    return details


def entries(calls: Sequence[_Call]) -> list[tuple[Actor, str, datetime, list[Summary]]]:
    """``calls`` gathered into entries: one per caller and digest, each ≤ :data:`MAX_PER_ENTRY`.

    Decisions keep their order within an entry; entries come in the order of their first call;
    an entry's instant is that of its last call.
    """
    out: list[list[Any]] = []
    open_entry: dict[tuple[Actor, str], list[Any]] = {}
    for actor, digest, at, summaries in calls:
        if not summaries:
            continue
        key = (actor, digest)
        current = open_entry.get(key)
        if current is None or len(current[3]) + len(summaries) > MAX_PER_ENTRY:
            current = [actor, digest, at, []]
            open_entry[key] = current
            out.append(current)
        current[2] = at
        current[3].extend(summaries)
    return [(actor, digest, at, summaries) for actor, digest, at, summaries in out]


class DecisionJournal:
    """A queue of advisory decisions and the thread that records them."""

    def __init__(self, rt: Runtime) -> None:
        self.rt = rt
        self._queue: queue.SimpleQueue[_Call] = queue.SimpleQueue()
        self._stopping = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        self._stopping.clear()
        self._thread = threading.Thread(target=self._run, name="meridian-journal", daemon=True)
        self._thread.start()

    def add(self, actor: Actor, digest: str, decisions: Sequence[Decision]) -> None:
        """Record ``decisions`` (decided under the bundle ``digest``) for ``actor``, soon."""
        if decisions:
            self._queue.put((actor, digest, decisions[-1].at, [summary(d) for d in decisions]))

    def stop(self) -> None:
        """Write what is queued and stop the writer."""
        if self._thread is not None:
            self._stopping.set()
            self._thread.join(timeout=10)
            self._thread = None

    def _run(self) -> None:
        # The writer sleeps between flushes instead of waiting on the queue: a thread woken by
        # every call would take the interpreter lock from the request loop thousands of times a
        # second (measured: about 15 µs of every call's throughput, bench/api.py).
        stopping = False
        while not stopping:
            stopping = self._stopping.wait(FLUSH_SECONDS)
            while True:
                batch = self._drain()
                if not batch:
                    break
                self._write(batch)
                if len(batch) < _MAX_CALLS_PER_WRITE:
                    break

    def _drain(self) -> list[_Call]:
        batch: list[_Call] = []
        get = self._queue.get_nowait
        try:
            while len(batch) < _MAX_CALLS_PER_WRITE:
                batch.append(get())
        except queue.Empty:
            pass
        return batch

    def _write(self, batch: list[_Call]) -> None:
        try:
            with self.rt.db.write() as session:
                for actor, digest, at, summaries in entries(batch):
                    record(
                        session,
                        actor=actor,
                        action="decision.advisory",
                        subject_kind="decisions",
                        subject_id=None,
                        at=at,
                        bundle_digest=digest,
                        details=tally(summaries),
                    )
        except Exception:
            log.exception("could not record %d advisory decision calls", len(batch))
