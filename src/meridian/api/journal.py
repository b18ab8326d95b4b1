"""The record of advisory decisions (``/v1/decisions``), written in batches off the request path.

An advisory decision changes nothing, so it has no transaction of its own to join. Writing one
row per answer synchronously would cost the endpoint a database commit each time; instead each
call's decisions go on a queue as one compact entry (action, decision, deciding rules, country
per request) and a writer thread commits what has gathered every :data:`FLUSH_SECONDS`.

The trade, stated: an advisory decision's record can lag its answer by up to
:data:`FLUSH_SECONDS` and is lost if the process dies inside that window. Every decision that
gates a change (sign-up, checkout, renewal, take-over) is recorded in the same transaction as the
change, never here.
"""

from __future__ import annotations

import logging
import queue
import threading
from datetime import datetime
from typing import Any

from ..audit import Actor, record
from ..policy.decision import Decision
from ..runtime import Runtime

__all__ = ["FLUSH_SECONDS", "DecisionJournal"]

FLUSH_SECONDS = 0.2
log = logging.getLogger("meridian.journal")


def summary(decision: Decision) -> list[Any]:
    """The compact form kept per advisory decision."""
    return [decision.action, decision.decision, list(decision.rule_ids), decision.location.country]


class DecisionJournal:
    """A queue of advisory decisions and the thread that records them."""

    def __init__(self, rt: Runtime) -> None:
        self.rt = rt
        self._queue: queue.SimpleQueue[tuple[Actor, datetime, str, list[list[Any]]] | None] = (
            queue.SimpleQueue()
        )
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name="meridian-journal", daemon=True)
        self._thread.start()

    def add(self, actor: Actor, at: datetime, digest: str, decisions: list[list[Any]]) -> None:
        self._queue.put((actor, at, digest, decisions))

    def stop(self) -> None:
        if self._thread is not None:
            self._queue.put(None)
            self._thread.join(timeout=10)
            self._thread = None

    def _run(self) -> None:
        stopping = False
        while not stopping:
            batch = []
            try:
                item = self._queue.get(timeout=FLUSH_SECONDS)
                while True:
                    if item is None:
                        stopping = True
                        break
                    batch.append(item)
                    if len(batch) >= 1000:
                        break
                    item = self._queue.get_nowait()
            except queue.Empty:
                pass
            if batch:
                self._write(batch)

    def _write(self, batch: list[tuple[Actor, datetime, str, list[list[Any]]]]) -> None:
        try:
            with self.rt.db.write() as session:
                for actor, at, digest, decisions in batch:
                    record(
                        session,
                        actor=actor,
                        action="decision.advisory",
                        subject_kind="decisions",
                        subject_id=None,
                        at=at,
                        bundle_digest=digest,
                        details={"count": len(decisions), "decisions": decisions},
                    )
        except Exception:
            log.exception("could not record %d advisory decision batches", len(batch))
