"""The decision benchmark's translations agree with Meridian (a guard, not a timing).

``bench/decisions.py`` compares engines only if each one decides exactly as Meridian does. These
tests put a couple of hundred seeded benchmark requests through every adapter in
``bench/_engines.py`` — the built-in bundle, and a small bundle exercising what the built-in one
does not (``any``, ``not``, windows with an end, a partner whose authorisation ends, a suspended
partner, a group) — and require the same decision and the same deciding rule ids for each. An
engine is skipped only when its package is not installed.
"""

from __future__ import annotations

import importlib.util
import sys
from functools import cache
from pathlib import Path
from typing import Any

import pytest

from meridian.policy import CompiledBundle, Engine, compile_bundle, load_bundle, load_bundle_text

# bench/ is a directory of scripts, not a package: its modules are imported from its path.
sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "bench"))

import _engines
import _workload
import decisions

pytestmark = pytest.mark.slow  # every engine of the benchmark, differentially: half a minute

REQUESTS = 200

#: The Python module each engine needs.
PACKAGES = {
    "cedarpy": "cedarpy",
    "pycasbin": "casbin",
    "regorus": "regorus",
    "regorus-rvm": "regorus",
}

_SMALL_BUNDLE = """
bundle: bench-small
version: "1"
jurisdictions:
  CN: {zone: Asia/Shanghai}
  HK: {zone: Asia/Hong_Kong}
  MO: {zone: Asia/Macau}
  TW: {zone: Asia/Taipei}
  US: {zone: America/New_York}
  DE: {zone: Europe/Berlin}
groups:
  greater-china: {include: [CN, HK, MO, TW]}
  not-china: {all_except: [CN]}
channels:
  direct: {name: Direct}
  online: {name: Online}
  partner: {name: Partner}
plans:
  free: {name: Free, paid: false, max_participants: 100}
  pro: {name: Pro, paid: true, max_participants: 100}
  business: {name: Business, paid: true, max_participants: 300}
  enterprise: {name: Enterprise, paid: true, max_participants: 500}
partners:
  bizconf:
    name: Bizconf
    jurisdictions: [CN, HK]
    effective: {from: 2020-03-01, until: 2021-07-01}
  suirui-zhumu:
    name: Suirui
    jurisdictions: [CN]
    effective: {until: 2020-09-15T12:00:00}
  systec-umeet:
    name: Systec
    jurisdictions: [CN]
    status: suspended
location:
  register: {signals: [org_id, country, ip], resolve: strictest}
  purchase: {signals: [country, ip], resolve: strictest}
  renew: {signals: [ip, country], resolve: first}
  host: {signals: [country, ip], resolve: strictest}
  join: {signals: [ip, country], resolve: first}
rules:
  - id: nowhere
    description: unknown location
    message: refused
    effect: forbid
    actions: [register, purchase, renew, host, join]
    jurisdictions: [unknown]
  - id: open
    description: open
    message: open in {jurisdiction}
    effect: permit
    actions: [register, host, join]
    jurisdictions: [everywhere]
  - id: sales
    description: sales unless partner-only and unauthorised
    message: sales
    effect: permit
    actions: [purchase, renew]
    jurisdictions: [not-china, CN]
    when:
      any:
        - {attribute: resource.channel, in: [direct, online]}
        - all:
            - {attribute: resource.channel, in: [partner]}
            - {partner_authorised: true}
  - id: partner-gone
    description: an unauthorised partner
    message: "`{partner}` may not sell in {jurisdiction}"
    effect: forbid
    actions: [purchase, renew]
    jurisdictions: [everywhere]
    when:
      all:
        - {attribute: resource.channel, in: [partner]}
        - {not: {partner_authorised: true}}
  - id: china-paid-hosts
    description: paid plans only, for a while
    message: paid plans only
    effect: forbid
    actions: [host]
    jurisdictions: [greater-china]
    effective: {from: 2020-05-20, until: 2022-01-01}
    when: {not: {attribute: subject.plan, in: [pro, business, enterprise]}}
  - id: review-pilot
    description: pilot codes
    message: "`{org_id}` waits for review"
    effect: permit
    actions: [register]
    jurisdictions: [CN]
    when: {any: [{attribute: subject.uscc, in: [pilot]}, {any: []}]}
  - id: orgs-only
    description: organisations only
    message: organisations only
    effect: forbid
    actions: [register]
    jurisdictions: [CN, HK]
    effective: {from: 2020-05-01T08:30:00}
    when:
      not:
        any:
          - {attribute: subject.type, in: [organization]}
          - {any: []}
          - {not: {all: []}}
  - id: eu-closed
    description: a closed window
    message: closed
    effect: forbid
    actions: [join]
    jurisdictions: [DE]
    effective: {from: 2019-06-01, until: 2019-09-01}
"""


@cache
def _bundle(name: str) -> CompiledBundle:
    if name == "default":
        return compile_bundle(load_bundle())
    return compile_bundle(load_bundle_text(_SMALL_BUNDLE, "<bench-small>"))


@cache
def _cases(name: str) -> tuple[Engine, tuple[_engines.Case, ...]]:
    bundle = _bundle(name)
    engine = Engine(bundle)
    workload = _workload.build_workload(bundle, REQUESTS, seed=11)
    return engine, tuple(_engines.cases_for(engine, workload.parsed))


def _reference(name: str) -> list[_engines.Verdict]:
    engine, cases = _cases(name)
    meridian = _engines.MeridianAdapter(engine)
    return [meridian.verdict(meridian.run(meridian.prepare(c))) for c in cases]


def _adapter(engine: str, bundle: CompiledBundle) -> Any:
    module = PACKAGES[engine]
    if importlib.util.find_spec(module) is None:
        pytest.skip(f"{module} is not installed")
    return _engines.ADAPTERS[engine](bundle)


@pytest.mark.parametrize("bundle", ["default", "small"])
@pytest.mark.parametrize("engine", sorted(_engines.ADAPTERS))
def test_engine_agrees_with_meridian(engine: str, bundle: str) -> None:
    adapter = _adapter(engine, _bundle(bundle))
    _, cases = _cases(bundle)
    got = [adapter.verdict(adapter.run(adapter.prepare(c))) for c in cases]
    wrong = [
        (i, cases[i].action, [f.as_dict() for f in cases[i].facts], want, have)
        for i, (want, have) in enumerate(zip(_reference(bundle), got, strict=True))
        if want != have
    ]
    assert not wrong, wrong[:3]


@pytest.mark.parametrize("bundle", ["default", "small"])
def test_cedarpy_batch_agrees_with_meridian(bundle: str) -> None:
    adapter = _adapter("cedarpy", _bundle(bundle))
    _, cases = _cases(bundle)
    grouped = adapter.run_batch([adapter.prepare(c) for c in cases])
    assert [adapter.verdict(g) for g in grouped] == _reference(bundle)


@pytest.mark.parametrize("bundle", ["default", "small"])
def test_workload_is_varied(bundle: str) -> None:
    """The sample reaches every action, both decisions, conflicting evidence and unknowns."""
    _, cases = _cases(bundle)
    verdicts = _reference(bundle)
    assert {c.action for c in cases} == {"register", "purchase", "renew", "host", "join"}
    assert {allowed for allowed, _ in verdicts} == {True, False}
    assert any(len(c.facts) > 1 for c in cases)
    assert any(f.jurisdiction == "unknown" for c in cases for f in c.facts)
    assert len({ids for _, ids in verdicts}) >= 6


def test_combine_is_meridians_rule() -> None:
    allow_a = (True, frozenset({"a"}))
    allow_b = (True, frozenset({"b"}))
    deny_c = (False, frozenset({"c"}))
    default_deny = (False, frozenset[str]())
    assert _engines.combine([allow_a, allow_b]) == (True, frozenset({"a", "b"}))
    assert _engines.combine([allow_a, deny_c, default_deny]) == (False, frozenset({"c"}))
    assert _engines.combine([allow_a, default_deny]) == (False, frozenset())


def test_report_has_the_promised_shape() -> None:
    report = decisions.run_benchmark(40, seed=3)
    assert set(report) == {"engines", "ratios", "machine", "requests"}
    assert report["requests"] == 40
    for name, row in report["engines"].items():
        if row.get("available") is False:  # only a missing package excuses an engine
            module = PACKAGES.get(name) or PACKAGES[name.split("-")[0]]
            assert importlib.util.find_spec(module) is None, (name, row)
            continue
        assert row["agree"] is True, (name, row)
    meridian = report["engines"]["meridian"]
    assert meridian["median_us"] > 0
    assert meridian["p99_us"] >= meridian["median_us"]
    assert {"cpu", "cores", "python"} <= set(report["machine"])
