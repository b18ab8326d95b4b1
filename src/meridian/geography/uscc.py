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

__all__ = [
    "ALPHABET",
    "OrgForm",
    "UsccStatus",
    "classify_uscc",
    "normalise_uscc",
    "org_form",
    "uscc_check_character",
    "uscc_status",
]

ALPHABET = "0123456789ABCDEFGHJKLMNPQRTUWXY"
_VALUE = {c: i for i, c in enumerate(ALPHABET)}
_WEIGHTS = tuple(pow(3, i, 31) for i in range(17))


class UsccStatus(StrEnum):
    """What a presented organisation code turned out to be, under a bundle's pilot divisions."""

    ABSENT = "absent"  # no code was presented
    VALID = "valid"  # well-formed and the check character matches
    PILOT = "pilot"  # well-formed pilot-era code whose check fails: needs manual review
    INVALID = "invalid"  # anything else


class OrgForm(StrEnum):
    """The form of a code on its own, before any bundle says which divisions were pilots."""

    ABSENT = "absent"
    VALID = "valid"
    CHECKFAIL = "checkfail"  # well-formed, but the check character does not match
    MALFORMED = "malformed"  # not 18 characters over the USCC alphabet with a 6-digit division


def normalise_uscc(code: str) -> str:
    """Upper-case and strip spaces and hyphens, the forms people type codes in."""
    return code.strip().upper().replace(" ", "").replace("-", "")


def uscc_check_character(first17: str) -> str:
    """The check character for the first 17 characters of a code."""
    total = sum(_VALUE[c] * w for c, w in zip(first17, _WEIGHTS, strict=True))
    return ALPHABET[(31 - total % 31) % 31]


def org_form(code: str | None) -> OrgForm:
    """The form of a normalised code."""
    if not code:
        return OrgForm.ABSENT
    well_formed = (
        len(code) == 18
        and all(c in _VALUE for c in code)
        # Positions 3-8 are an administrative division code: six digits. The authority and
        # category (positions 1-2) are not checked against a table: the standard's tables have
        # grown since 2015 and refusing a lawful code is worse than sending it to review.
        and code[2:8].isdigit()
    )
    if not well_formed:
        return OrgForm.MALFORMED
    return OrgForm.VALID if uscc_check_character(code[:17]) == code[17] else OrgForm.CHECKFAIL


def uscc_status(form: OrgForm, code: str | None, pilot_divisions: Collection[str]) -> UsccStatus:
    """A code's status: a code that fails only its check is pilot-era when it was issued in a
    division the bundle lists as an early pilot region (six-digit prefixes or shorter ones)."""
    if form is OrgForm.VALID:
        return UsccStatus.VALID
    if form is OrgForm.ABSENT or code is None:
        return UsccStatus.ABSENT
    if form is OrgForm.CHECKFAIL and any(code[2:8].startswith(p) for p in pilot_divisions):
        return UsccStatus.PILOT
    return UsccStatus.INVALID


def classify_uscc(code: str | None, pilot_divisions: Collection[str] = ()) -> UsccStatus:
    """Classify a code as typed: valid, pilot-era (send to review), invalid, or absent."""
    if code is None or not code.strip():
        return UsccStatus.ABSENT
    code = normalise_uscc(code)
    return uscc_status(org_form(code), code, pilot_divisions)
