"""Data-centre regions, and the home region an account gets from its country.

The region codes are the platform's own (AU, LA, CA, CN, DE, HK, IN, IE, TY, MX, NL, SG, US;
``LA`` is Latin America, ``TY`` Tokyo). The home region is where an account's data rests by
default; it never depends on where a request came from.

INVARIANT: only a mainland China (``CN``) account is homed in the CN region.
"""

from __future__ import annotations

__all__ = ["REGIONS", "home_region"]

REGIONS: tuple[str, ...] = (
    "AU",
    "LA",
    "CA",
    "CN",
    "DE",
    "HK",
    "IN",
    "IE",
    "TY",
    "MX",
    "NL",
    "SG",
    "US",
)

_BY_REGION: dict[str, str] = {
    "AU": "AU NZ PG FJ SB VU NC PF WS TO",
    "LA": "AR BO BR CL CO EC GY PE PY SR UY VE GF FK",
    "CA": "CA",
    "CN": "CN",
    "DE": "DE AT CH PL CZ SK HU SI HR RO BG GR RS BA ME MK AL XK LI DK NO SE FI EE LV LT "
    "UA BY MD RU TR CY IL JO LB SY IQ IR SA AE QA KW BH OM YE EG LY TN DZ MA",
    "HK": "HK MO TW PH KR KP MN",
    "IN": "IN PK BD LK NP BT MV AF",
    "IE": "IE GB IS FO IM JE GG PT ES AD GI FR MC IT SM VA MT",
    "TY": "JP",
    "MX": "MX GT BZ SV HN NI CR PA CU JM HT DO PR BS BB TT",
    "NL": "NL BE LU",
    "SG": "SG MY ID TH VN KH LA MM BN TL",
    "US": "US",
}
_HOME: dict[str, str] = {c: region for region, codes in _BY_REGION.items() for c in codes.split()}


def home_region(country: str) -> str:
    """The region an account in ``country`` is homed in.

    Countries not listed (most of Africa, Central Asia, the Pacific islands) are homed in the
    nearest large region by continent where listed, else ``US``: a home region is a default for
    latency, never a permission, and CN is never a fallback.
    """
    return _HOME.get(country, "US")
