"""Reading an instant an operator types: a full ISO 8601 instant, or a date meaning local midnight."""

from __future__ import annotations

from datetime import date, datetime, time
from zoneinfo import ZoneInfo

from ..clock import parse_instant
from ..errors import InputError, shown
from ..policy.engine import Engine

__all__ = ["local_instant"]


def local_instant(engine: Engine, jurisdiction: str, text: str, what: str = "at") -> datetime:
    """``2020-08-23`` is midnight in ``jurisdiction``'s zone (from the bundle; UTC if it names none)."""
    text = text.strip()
    if len(text) == 10:
        try:
            day = date.fromisoformat(text)
        except ValueError:
            raise InputError(
                f"invalid date `{shown(text)}` for `{what}`: expected YYYY-MM-DD or an ISO 8601 instant"
            ) from None
        info = engine.bundle.document.jurisdictions.get(jurisdiction)
        zone = ZoneInfo(info.zone) if info is not None else ZoneInfo("UTC")
        return datetime.combine(day, time(), zone)
    return parse_instant(text, what)
