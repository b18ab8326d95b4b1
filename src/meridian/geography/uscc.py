"""China's Unified Social Credit Code (GB 32100-2015), the registration number of a CN organisation.

Structure: 18 characters over a 31-symbol alphabet (no I, O, S, V, Z). Position 1 is the
registration authority, 2 the entity category, 3-8 a six-digit administrative division, 9-17
the organisation code, and 18 a check character: with weights ``3**i mod 31`` the check is
``alphabet[(31 - sum mod 31) mod 31]``.

``python-stdnum`` has a checker, but it requires the first eight characters to be digits and so
refuses valid codes whose registration authority is ``Y``; the check is a dozen lines, so it is
written here.
"""

from __future__ import annotations

from collections.abc import Collection
from enum import StrEnum

__all__ = ["ALPHABET", "UsccStatus", "classify_uscc", "normalise_uscc", "uscc_check_character"]

ALPHABET = "0123456789ABCDEFGHJKLMNPQRTUWXY"
_VALUE = {c: i for i, c in enumerate(ALPHABET)}
_WEIGHTS = tuple(pow(3, i, 31) for i in range(17))


class UsccStatus(StrEnum):
    """What a presented organisation code turned out to be."""

    ABSENT = "absent"  # no code was presented
    VALID = "valid"  # well-formed and the check character matches
    PILOT = "pilot"  # well-formed pilot-era code whose check fails: needs manual review
    INVALID = "invalid"  # anything else


def normalise_uscc(code: str) -> str:
    """Upper-case and strip spaces and hyphens, the forms people type codes in."""
    return code.strip().upper().replace(" ", "").replace("-", "")


def uscc_check_character(first17: str) -> str:
    """The check character for the first 17 characters of a code."""
    total = sum(_VALUE[c] * w for c, w in zip(first17, _WEIGHTS, strict=True))
    return ALPHABET[(31 - total % 31) % 31]


def _well_formed(code: str) -> bool:
    return (
        len(code) == 18
        and all(c in _VALUE for c in code)
        # Positions 3-8 are an administrative division code: six digits. The authority and
        # category (positions 1-2) are not checked against a table: the standard's tables have
        # grown since 2015 and refusing a lawful code is worse than sending it to review.
        and code[2:8].isdigit()
    )


def classify_uscc(code: str | None, pilot_divisions: Collection[str] = ()) -> UsccStatus:
    """Classify a code: valid, pilot-era (send to review), invalid, or absent.

    A pilot-era code is one that is well-formed, fails only its check character, and was issued in
    a division the bundle lists as an early pilot region (``pilot_divisions``, six-digit prefixes
    or shorter ones).
    """
    if code is None or not code.strip():
        return UsccStatus.ABSENT
    code = normalise_uscc(code)
    if not _well_formed(code):
        return UsccStatus.INVALID
    if uscc_check_character(code[:17]) == code[17]:
        return UsccStatus.VALID
    division = code[2:8]
    if any(division.startswith(p) for p in pilot_divisions):
        return UsccStatus.PILOT
    return UsccStatus.INVALID
