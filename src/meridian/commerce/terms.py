"""Subscription terms: a calendar month or a calendar year, in UTC."""

from __future__ import annotations

import calendar
from datetime import datetime
from typing import Literal

__all__ = ["TERMS", "Term", "add_term"]

Term = Literal["month", "year"]
TERMS: tuple[Term, ...] = ("month", "year")


def add_term(start: datetime, term: str) -> datetime:
    """The end of a term that starts at ``start``; the day is clamped (31 Jan + month = 28/29 Feb)."""
    months = 12 if term == "year" else 1
    month0 = start.month - 1 + months
    year, month = start.year + month0 // 12, month0 % 12 + 1
    day = min(start.day, calendar.monthrange(year, month)[1])
    return start.replace(year=year, month=month, day=day)
