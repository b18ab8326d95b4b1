"""Jurisdictions: ISO 3166-1 alpha-2 codes, and the word for "we do not know".

INVARIANT: a jurisdiction is a country code, never a subdivision. ``CN`` is mainland China alone;
``HK``, ``MO`` and ``TW`` are jurisdictions of their own even though ISO 3166-2 also lists
``CN-HK``, ``CN-MO`` and ``CN-TW``. Nothing here widens ``CN`` through subdivisions.
"""

from __future__ import annotations

from collections.abc import Iterator
from functools import cache

import pycountry

from ..errors import InputError, shown

__all__ = ["ALL_JURISDICTIONS", "UNKNOWN", "check_jurisdiction", "jurisdiction_name"]

#: The jurisdiction of a subject whose location no evidence establishes.
UNKNOWN = "unknown"


@cache
def _all_codes() -> frozenset[str]:
    return frozenset(c.alpha_2 for c in pycountry.countries)


class _AllJurisdictions:
    """Lazy view of every ISO 3166-1 alpha-2 code (pycountry is read on first use, not import)."""

    def __contains__(self, code: object) -> bool:
        return code in _all_codes()

    def __iter__(self) -> Iterator[str]:
        return iter(sorted(_all_codes()))

    def __len__(self) -> int:
        return len(_all_codes())


ALL_JURISDICTIONS = _AllJurisdictions()


def check_jurisdiction(code: object, *, allow_unknown: bool = False) -> str:
    """Return ``code`` if it names a jurisdiction, else raise :class:`InputError`."""
    if isinstance(code, str):
        if code in _all_codes():
            return code
        if allow_unknown and code == UNKNOWN:
            return code
    raise InputError(f"unknown jurisdiction `{shown(code)}`: expected an ISO 3166-1 alpha-2 code")


def jurisdiction_name(code: str) -> str:
    """A person's name for a jurisdiction: ``CN`` is "mainland China", not "China"."""
    if code == "CN":
        return "mainland China"
    if code == UNKNOWN:
        return "an unknown location"
    country = pycountry.countries.get(alpha_2=code)
    if country is None:
        return code
    return str(getattr(country, "common_name", None) or country.name)
