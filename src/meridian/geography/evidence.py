"""Location evidence: the signals a subject carries, and what country each one points to.

A person's jurisdiction is inferred, never known. Each signal yields one piece of
:class:`Evidence`; the bundle says, per action, which signals count and how conflicts resolve
(see :mod:`meridian.policy.engine`).
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from typing import TYPE_CHECKING

from .ipgeo import IpLocator

if TYPE_CHECKING:
    from ..policy.request import Subject

__all__ = ["Evidence", "Signal", "resolve_signal"]


class Signal(StrEnum):
    """A kind of location evidence a request may carry."""

    COUNTRY = "country"  # declared, billing or account country
    IP = "ip"  # country of the connection's IP address
    ORG_ID = "org_id"  # country implied by the organisation's registration number
    PHONE = "phone"  # country code of a verified phone number


@dataclass(frozen=True, slots=True)
class Evidence:
    """One signal's value and the country it points to (``None``: it points nowhere known)."""

    signal: Signal
    value: str
    country: str | None

    def to_dict(self) -> dict[str, str | None]:
        return {"signal": self.signal.value, "value": self.value, "country": self.country}


def resolve_signal(signal: Signal, subject: Subject, locator: IpLocator) -> Evidence | None:
    """The evidence ``signal`` gives for ``subject``, or ``None`` when the subject lacks it."""
    if signal is Signal.IP:
        if subject.ip is None:
            return None
        return Evidence(signal, subject.ip.text, locator.country(subject.ip))
    if signal is Signal.COUNTRY:
        if subject.country is None:
            return None
        return Evidence(signal, subject.country, subject.country)
    if signal is Signal.ORG_ID:
        if subject.org_id is None:
            return None
        return Evidence(signal, subject.org_id, subject.org_country)
    if subject.phone is None:
        return None
    return Evidence(signal, subject.phone, subject.phone_country)
