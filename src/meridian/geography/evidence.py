"""Location evidence: the signals a subject carries, and what country each one points to.

A person's jurisdiction is inferred, never known. Each signal yields one piece of
:class:`Evidence`; the bundle says, per action, which signals count and how conflicts resolve
(see :mod:`meridian.policy.engine`).
"""

from __future__ import annotations

from collections.abc import Callable
from enum import StrEnum
from typing import Any, NamedTuple, Protocol

from .ipgeo import IpAddress, IpLocator

__all__ = ["RESOLVERS", "Evidence", "Signal", "Subject", "resolve_signal"]


class Subject(Protocol):
    """What the resolvers read of a subject (``policy.request.Subject`` is one)."""

    @property
    def country(self) -> str | None: ...
    @property
    def ip(self) -> IpAddress | None: ...
    @property
    def org_id(self) -> str | None: ...
    @property
    def org_country(self) -> str | None: ...
    @property
    def phone(self) -> str | None: ...
    @property
    def phone_country(self) -> str | None: ...


class Signal(StrEnum):
    """A kind of location evidence a request may carry."""

    COUNTRY = "country"  # declared, billing or account country
    IP = "ip"  # country of the connection's IP address
    ORG_ID = "org_id"  # country implied by the organisation's registration number
    PHONE = "phone"  # country code of a verified phone number


class Evidence(NamedTuple):
    """One signal's value and the country it points to (``None``: it points nowhere known).

    ``source`` names the data an IP address was located with and its date (e.g. ``iptocc
    3.3.170 (RIR delegated files, 2026-10-27)``), when the locator says.
    """

    signal: Signal
    value: str
    country: str | None
    source: str | None = None

    def to_dict(self) -> dict[str, str | None]:
        out = {"signal": self.signal.value, "value": self.value, "country": self.country}
        if self.source is not None:
            out["source"] = self.source
        return out


# The resolvers run on every decision. They build each Evidence with ``tuple.__new__`` on a
# ready tuple, skipping the named tuple's Python-level ``__new__`` (about 200 ns against 90 ns
# here; see bench/decisions.py), and read the Signal members from module constants.
_new: Any = tuple.__new__
_IP, _COUNTRY, _ORG_ID, _PHONE = Signal.IP, Signal.COUNTRY, Signal.ORG_ID, Signal.PHONE
_DECLARED: dict[str, Evidence] = {}


def _ip(subject: Subject, locator: IpLocator) -> Evidence | None:
    ip = subject.ip
    if ip is None:
        return None
    # the seam's one required method is ``country``; a locator may also name its data
    source = getattr(locator, "source", None)
    found: Evidence = _new(
        Evidence, (_IP, ip.text, locator.country(ip), source(ip) if source is not None else None)
    )
    return found


def _country(subject: Subject, locator: IpLocator) -> Evidence | None:
    country = subject.country
    if country is None:
        return None
    # A declared country's evidence depends on the code alone: build each one once.
    found = _DECLARED.get(country)
    if found is None:
        found = _DECLARED[country] = Evidence(_COUNTRY, country, country)
    return found


def _org_id(subject: Subject, locator: IpLocator) -> Evidence | None:
    org_id = subject.org_id
    return None if org_id is None else Evidence(_ORG_ID, org_id, subject.org_country)


def _phone(subject: Subject, locator: IpLocator) -> Evidence | None:
    phone = subject.phone
    return None if phone is None else Evidence(_PHONE, phone, subject.phone_country)


Resolver = Callable[["Subject", IpLocator], "Evidence | None"]

#: How each signal is read from a subject: a function each, so that deciding calls them directly.
RESOLVERS: dict[Signal, Resolver] = {
    Signal.IP: _ip,
    Signal.COUNTRY: _country,
    Signal.ORG_ID: _org_id,
    Signal.PHONE: _phone,
}


def resolve_signal(signal: Signal, subject: Subject, locator: IpLocator) -> Evidence | None:
    """The evidence ``signal`` gives for ``subject``, or ``None`` when the subject lacks it."""
    return RESOLVERS[signal](subject, locator)
