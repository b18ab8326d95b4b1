"""Time as an input: the wall clock, or a clock set to a fixed instant to replay a past day."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime

from pydantic import AwareDatetime, TypeAdapter, ValidationError

from .errors import InputError, shown

__all__ = ["Clock", "fixed_clock", "parse_instant", "set_clock", "system_clock"]

#: Anything that says what time it is, as an aware datetime.
Clock = Callable[[], datetime]

_INSTANT: TypeAdapter[datetime] = TypeAdapter(AwareDatetime)


def system_clock() -> datetime:
    """The wall clock, in UTC."""
    return datetime.now(UTC)


def parse_instant(text: str, what: str = "--clock") -> datetime:
    """An ISO 8601 instant with a zone, or an :class:`InputError` naming it."""
    try:
        return _INSTANT.validate_python(text)
    except ValidationError:
        raise InputError(
            f"invalid instant `{shown(text)}` for `{what}`: expected ISO 8601 with a zone, such as `2020-08-23T09:00:00+08:00`"
        ) from None


def fixed_clock(instant: datetime) -> Clock:
    """A clock stopped at ``instant``."""
    at = instant.astimezone(UTC)
    return lambda: at


def set_clock(text: str | None) -> Clock:
    """The system clock when ``text`` is empty, else a clock stopped at the instant it names."""
    return system_clock if not text else fixed_clock(parse_instant(text))
