"""IP address to country, offline.

Locators sit behind one seam (:class:`IpLocator`, a single method):

* :class:`EmbeddedLocator` — the default: IPv4 from :class:`Ip3CountryLocator` (the
  ``ip3country`` package's bundled IPv4 table), IPv6 from :class:`RirLocator` (the ``iptocc``
  package's tables, built from the five Regional Internet Registries' delegated files).
* :class:`MaxMindLocator` — a MaxMind ``.mmdb`` database the operator configures (IPv4 and IPv6).

A locator may also say where an answer came from (``source(ip)``: the data set and its date),
which the IP evidence of a decision carries (none for a non-global address: nothing is looked
up for it).

INVARIANT: private, loopback, reserved and otherwise non-global addresses resolve to ``None``
(unknown), never to a guess. So does any address a database does not cover.
"""

from __future__ import annotations

import ipaddress
from bisect import bisect_right
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import cached_property
from importlib import metadata
from pathlib import Path
from typing import Any, Protocol

from ..errors import ConfigurationError, InputError, shown
from .jurisdictions import ALL_JURISDICTIONS

__all__ = [
    "EmbeddedLocator",
    "Ip3CountryLocator",
    "IpAddress",
    "IpLocator",
    "MaxMindLocator",
    "RirLocator",
    "default_locator",
    "parse_ip",
]


@dataclass(frozen=True, slots=True)
class IpAddress:
    """A parsed IP address: its text, version, integer value, and whether it is globally routed.

    Parsing happens once, when a request is read, so that deciding never re-parses it.
    """

    text: str
    version: int
    value: int
    is_global: bool


def parse_ip(text: str) -> IpAddress:
    """Parse an IPv4 or IPv6 address, or raise :class:`InputError` naming it."""
    try:
        ip = ipaddress.ip_address(text)
    except ValueError:
        raise InputError(f"invalid ip address `{shown(text)}`: expected IPv4 or IPv6") from None
    # Multicast groups are "global" to the standard library but locate no one.
    return IpAddress(str(ip), ip.version, int(ip), ip.is_global and not ip.is_multicast)


class IpLocator(Protocol):
    """The seam: one method from an address to an ISO country code, or ``None`` for unknown."""

    def country(self, ip: IpAddress) -> str | None: ...


class Ip3CountryLocator:
    """IPv4 ranges from the ``ip3country`` package, searched with :func:`bisect.bisect_right`.

    The package's own lookup is a pure-Python binary search; ``bisect`` over the same table does
    the same in C, which the decision benchmark (``bench/decisions.py``) needs. The table is
    read on first use, not at import.
    """

    def __init__(self) -> None:
        self._ends: list[int] | None = None
        self._codes: list[str | None] = []

    def _load(self) -> list[int]:
        from ip3country import CountryLookup

        lookup = CountryLookup()
        self._codes = [c if c in ALL_JURISDICTIONS else None for c in lookup.countryCodes]
        self._ends = ends = list(lookup.ipRanges)
        return ends

    def country(self, ip: IpAddress) -> str | None:
        if ip.version != 4 or not ip.is_global:
            return None
        ends = self._ends
        if ends is None:
            ends = self._load()
        # ipRanges[i] is the exclusive end of range i: the address lies in the first range whose
        # end is greater than it, as in ip3country's own search.
        index = bisect_right(ends, ip.value)
        codes = self._codes
        return codes[index] if index < len(codes) else None

    def address_in(self, country: str) -> str | None:
        """A global IPv4 address the table places in ``country`` (an example), or ``None``."""
        ends = self._ends if self._ends is not None else self._load()
        for index, code in enumerate(self._codes):
            if code != country:
                continue
            start = ends[index - 1] if index > 0 else 0
            for value in (start, start + 1, (start + ends[index]) // 2):
                if value < ends[index]:
                    text = str(ipaddress.IPv4Address(value))
                    if parse_ip(text).is_global:
                        return text
        return None

    @cached_property
    def source_text(self) -> str:
        # ip3country does not say when its table was made: its version names the data
        return f"ip3country {_version('ip3country')}"

    def source(self, ip: IpAddress) -> str | None:
        return self.source_text if ip.is_global else None


class RirLocator:
    """IPv6 (and IPv4) ranges from the ``iptocc`` package: the five RIRs' delegated files.

    Each ``iptocc`` release is a nightly refresh of the registries' files; its SBOM's timestamp
    is when that release was built from them, the date the evidence names. RIR data is the
    country a block is *registered* to, which for IPv6 is what is known offline.
    """

    def country(self, ip: IpAddress) -> str | None:
        if not ip.is_global:
            return None
        from iptocc import country_code

        code = country_code(ip.text)
        return code if code in ALL_JURISDICTIONS else None

    @cached_property
    def source_text(self) -> str:
        return f"iptocc {_version('iptocc')} (RIR delegated files, {_iptocc_data_date()})"

    def source(self, ip: IpAddress) -> str | None:
        return self.source_text if ip.is_global else None


class EmbeddedLocator:
    """The default: IPv4 from ``ip3country``, IPv6 from ``iptocc``; both ship their data."""

    def __init__(self) -> None:
        self.v4 = Ip3CountryLocator()
        self.v6 = RirLocator()

    def country(self, ip: IpAddress) -> str | None:
        return self.v4.country(ip) if ip.version == 4 else self.v6.country(ip)

    def address_in(self, country: str) -> str | None:
        """An address placed in ``country``, for examples (the policy diff's)."""
        return self.v4.address_in(country)

    def source(self, ip: IpAddress) -> str | None:
        if not ip.is_global:
            return None  # nothing was looked up: a non-global address is unknown by rule
        return self.v4.source_text if ip.version == 4 else self.v6.source_text


def _version(package: str) -> str:
    try:
        return metadata.version(package)
    except metadata.PackageNotFoundError:
        return "(version unknown)"


def _iptocc_data_date() -> str:
    """When the installed ``iptocc`` was built from the RIR files (its CycloneDX SBOM's time)."""
    import json

    try:
        dist = metadata.distribution("iptocc")
        text = next(
            (
                f.read_text()
                for f in dist.files or ()
                if f.name.endswith(".cyclonedx.json") and "sboms" in f.parts
            ),
            None,
        )
        stamp = json.loads(text)["metadata"]["timestamp"] if text else None
        return datetime.fromisoformat(stamp[:19]).date().isoformat() if stamp else "date unknown"
    except (metadata.PackageNotFoundError, OSError, ValueError, KeyError, TypeError):
        return "date unknown"


class MaxMindLocator:
    """A MaxMind DB (``.mmdb``) file, read with ``maxminddb``: GeoLite2/GeoIP2 Country or City."""

    def __init__(self, path: str | Path) -> None:
        import maxminddb

        try:
            self._reader = maxminddb.open_database(str(path))
        except (OSError, ValueError, maxminddb.InvalidDatabaseError) as exc:
            raise ConfigurationError(f"cannot open geoip database `{path}`: {exc}") from None

    def country(self, ip: IpAddress) -> str | None:
        if not ip.is_global:
            return None
        record: Any = self._reader.get(ip.text)
        if not isinstance(record, dict):
            return None
        for key in ("country", "registered_country"):
            entry = record.get(key)
            if isinstance(entry, dict):
                code = entry.get("iso_code")
                if isinstance(code, str) and code in ALL_JURISDICTIONS:
                    return code
        return None

    @cached_property
    def source_text(self) -> str:
        meta = self._reader.metadata()
        built = datetime.fromtimestamp(meta.build_epoch, UTC).date().isoformat()
        return f"{meta.database_type} {built}"

    def source(self, ip: IpAddress) -> str | None:
        return self.source_text if ip.is_global else None

    def close(self) -> None:
        self._reader.close()


def default_locator(geoip_database: str | Path | None = None) -> IpLocator:
    """The configured MaxMind database if one is named, else the embedded tables."""
    if geoip_database:
        return MaxMindLocator(geoip_database)
    return EmbeddedLocator()
