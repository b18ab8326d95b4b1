"""Which checkpoints a listing or an export keeps: all recent ones, then fewer as they age.

A log that signs a checkpoint a minute keeps half a million a year; an auditor needs every recent
one (to compare with what they were shown today) and a sparse trail of older ones (any two
checkpoints are enough to check the log only grew between them). :class:`Thinning` keeps every
checkpoint issued within ``keep_all`` of now, then the newest of each hour until ``keep_hourly``,
then the newest of each day. The newest checkpoint of all is always kept. Nothing is deleted:
the database keeps every checkpoint (the self-check uses them to locate a change); only what is
listed and exported is thinned.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

__all__ = ["Thinning"]


@dataclass(frozen=True, slots=True)
class Thinning:
    """Keep everything younger than ``keep_all``, one an hour until ``keep_hourly``, then one a day."""

    keep_all: timedelta = timedelta(days=1)
    keep_hourly: timedelta = timedelta(days=7)

    def kept(self, rows: Sequence[tuple[int, int, datetime]], now: datetime) -> list[int]:
        """The ids kept of ``rows`` — ``(id, size, issued_at)`` each — newest first.

        Within an hour or a day the checkpoint kept is the newest (largest size, then id): it
        covers every entry the others do.
        """
        ordered = sorted(rows, key=lambda row: (row[1], row[0]), reverse=True)
        kept: list[int] = []
        seen: set[tuple[str, datetime]] = set()
        for number, (row_id, _, issued) in enumerate(ordered):
            age = now - issued
            if age < self.keep_hourly:
                bucket = ("hour", issued.replace(minute=0, second=0, microsecond=0))
            else:
                bucket = ("day", issued.replace(hour=0, minute=0, second=0, microsecond=0))
            # a kept checkpoint stands for its hour (or day): older ones there are not needed
            if number == 0 or age < self.keep_all or bucket not in seen:
                seen.add(bucket)
                kept.append(row_id)
        return kept
