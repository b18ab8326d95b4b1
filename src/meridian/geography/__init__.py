"""Where things are: jurisdictions, IP geolocation, organisation codes and location evidence."""

from .evidence import Evidence, Signal, resolve_signal
from .ipgeo import Ip3CountryLocator, IpLocator, MaxMindLocator, default_locator
from .jurisdictions import ALL_JURISDICTIONS, UNKNOWN, check_jurisdiction
from .uscc import UsccStatus, classify_uscc, uscc_check_character

__all__ = [
    "ALL_JURISDICTIONS",
    "UNKNOWN",
    "Evidence",
    "Ip3CountryLocator",
    "IpLocator",
    "MaxMindLocator",
    "Signal",
    "UsccStatus",
    "check_jurisdiction",
    "classify_uscc",
    "default_locator",
    "resolve_signal",
    "uscc_check_character",
]
