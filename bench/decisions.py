"""Decision benchmark: the same rules and requests through Meridian, cedarpy, pycasbin and regorus.

Usage::

    .venv/bin/python bench/decisions.py                  # rich table
    .venv/bin/python bench/decisions.py --json           # one JSON object on stdout
    .venv/bin/python bench/decisions.py --requests 2000 --seed 7

While it runs, a bar on stderr follows its cases (one per engine), redrawn only between them: no
thread runs beside a timed section. It ends with one line on stderr, ``bench/decisions.py: 5
cases in …``.

What is measured
----------------

* ``meridian``: ``Engine.decide`` on the parsed request — location resolution from the request's
  signals, the rules, and the full :class:`~meridian.policy.Decision` with its reasons. The engine
  keeps an exact memo of per-jurisdiction verdicts; the warm-up uses a *different* seeded set of
  requests, so the timed requests were never seen before and the memo only helps where the
  workload itself repeats (its hit rate is reported). ``meridian-cold`` clears that memo before
  every timed request (outside the timing) to show the cost of a miss.
* ``cedarpy``: one ``is_authorized`` call per :class:`~meridian.policy.compiled.Facts` with the
  policies, schema and entities parsed once into handles. ``cedarpy-batch``: one
  ``is_authorized_batch`` call over every request, reported as amortised time per request.
* ``pycasbin``: an ABAC model generated from the compiled bundle (see ``bench/_engines.py``);
  all deciding rules are collected with repeated ``enforce_ex`` calls.
* ``regorus``: a Rego module generated from the compiled bundle, on the faster of regorus's two
  paths (the interpreter, ``Engine.set_input`` + ``eval_rule``, and the compiled RVM program,
  ``Rvm.set_input_json`` + ``execute``); the other path is reported too.

The other engines receive the facts Meridian's location resolution produced (one per
jurisdiction the subject is judged under), in their native form built before timing. A request
with several facts is one request for every engine. Each request is timed on its own with
``time.perf_counter_ns`` after a warm-up; ``median_us`` and ``p99_us`` are per request. ``agree``
is true when the engine's decision and set of deciding rule ids equal Meridian's for every
request.
"""

from __future__ import annotations

import argparse
import gc
import json
import math
import os
import platform
import statistics
import sys
import time
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from importlib import metadata
from itertools import pairwise
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _engines import (
    ADAPTERS,
    Adapter,
    Case,
    CedarAdapter,
    MeridianAdapter,
    Verdict,
    cases_for,
)
from _workload import build_workload
from meridian.cli.progress import CaseBar, bench_cases, summary
from meridian.policy import Engine, compile_bundle, load_bundle

DEFAULT_REQUESTS = 20_000
DEFAULT_SEED = 20200823
WARMUP = 2_000
SHOWN_DISAGREEMENTS = 5

#: The targets: Meridian's median, and how many times faster than an engine it must be.
TARGET_MEDIAN_US = 2.0
TARGET_RATIOS = {"cedarpy/meridian": 15.0, "regorus/meridian": 4.0}

Row = dict[str, Any]


# -- measuring ---------------------------------------------------------------------------------


def _percentile(sorted_values: Sequence[int], q: float) -> float:
    """The ``q`` quantile by the nearest-rank method."""
    rank = max(1, math.ceil(len(sorted_values) * q))
    return float(sorted_values[rank - 1])


def _summary(times_ns: list[int]) -> Row:
    ordered = sorted(times_ns)
    return {
        "median_us": round(statistics.median(ordered) / 1000, 3),
        "p99_us": round(_percentile(ordered, 0.99) / 1000, 3),
    }


def time_each(
    run: Callable[[Any], Any],
    natives: Sequence[Any],
    before: Callable[[], object] | None = None,
) -> tuple[list[int], list[Any]]:
    """Run every native input once, timing each call; ``before`` runs untimed before each."""
    clock = time.perf_counter_ns
    times: list[int] = [0] * len(natives)
    answers: list[Any] = [None] * len(natives)
    # Everything built before timing (engines, bundles, inputs) is moved out of the collector's
    # reach, as a long-running service does after start-up (gc.freeze); collections still run
    # for what the timed calls allocate, for every engine alike.
    gc.collect()
    gc.freeze()
    try:
        for i, native in enumerate(natives):
            if before is not None:
                before()
            start = clock()
            answer = run(native)
            end = clock()
            times[i] = end - start
            answers[i] = answer
    finally:
        gc.unfreeze()
    return times, answers


def timer_overhead_ns(samples: int = 20_000) -> float:
    """The median cost of the timing itself around a call that does nothing."""
    times, _ = time_each(lambda x: x, [None] * samples)
    return float(statistics.median(times))


def _disagreements(
    reference: Sequence[Verdict], verdicts: Sequence[Verdict], cases: Sequence[Case]
) -> list[str]:
    out = []
    for i, (want, got) in enumerate(zip(reference, verdicts, strict=True)):
        if want != got:
            case = cases[i]
            facts = [f.as_dict() for f in case.facts]
            out.append(
                f"request {i} ({case.action}, facts {facts}): meridian "
                f"{_show(want)}, engine {_show(got)}"
            )
    return out


def _show(verdict: Verdict) -> str:
    allowed, ids = verdict
    return f"{'allow' if allowed else 'deny'} {sorted(ids)}"


def _agreement(
    name: str, reference: Sequence[Verdict], verdicts: Sequence[Verdict], cases: Sequence[Case]
) -> Row:
    found = _disagreements(reference, verdicts, cases)
    for line in found[:SHOWN_DISAGREEMENTS]:
        print(f"disagreement [{name}]: {line}", file=sys.stderr)
    row: Row = {"agree": not found}
    if found:
        row["disagreements"] = len(found)
    return row


def measure(
    adapter: Adapter, cases: Sequence[Case], warm: Sequence[Case], reference: Sequence[Verdict]
) -> Row:
    """Warm ``adapter`` up on ``warm``, then time it on every case and check its answers."""
    natives = [adapter.prepare(c) for c in cases]
    for native in [adapter.prepare(c) for c in warm]:
        adapter.run(native)
    times, raws = time_each(adapter.run, natives)
    verdicts = [adapter.verdict(r) for r in raws]
    row = _summary(times)
    row.update(_agreement(adapter.name, reference, verdicts, cases))
    row["requests"] = len(cases)
    return row


def _memo_of(engine: Engine) -> dict[Any, Any] | None:
    """The engine's verdict memo, if it has one: a private detail, read only to report on it."""
    memo = getattr(engine, "_memo", None)
    return memo if isinstance(memo, dict) else None


def _hit_rate(sizes: Sequence[int], lookups: int) -> float:
    """The share of verdict look-ups the memo answered, from its size before each request.

    Each miss stores one verdict; a memo that was cleared (it is bounded) shrinks, and then only
    what the request stored after the clearing counts.
    """
    misses = sum(b - a if b >= a else b for a, b in pairwise(sizes))
    return round(1 - misses / lookups, 3)


def measure_meridian(
    engine: Engine, cases: Sequence[Case], warm: Sequence[Case]
) -> tuple[Row, Row | None, list[Verdict]]:
    """Meridian warm (its memo as it is) and, when it has a memo, cold (cleared every time).

    The cold run must give the same answers as the warm one: that checks the memo is exact.
    """
    adapter = MeridianAdapter(engine)
    requests = [c.request for c in cases]
    for case in warm:
        engine.decide(case.request)
    memo = _memo_of(engine)
    sizes: list[int] = []
    record = None if memo is None else (lambda: sizes.append(len(memo)))
    times, raws = time_each(engine.decide, requests, before=record)
    reference = [adapter.verdict(r) for r in raws]
    row = _summary(times) | {"agree": True, "requests": len(cases)}
    if memo is None:
        return row, None, reference
    sizes.append(len(memo))
    row["memo_hit_rate"] = _hit_rate(sizes, sum(len(c.facts) for c in cases))
    times, raws = time_each(engine.decide, requests, before=engine.forget)
    cold = _summary(times)
    cold.update(_agreement("meridian-cold", reference, [adapter.verdict(r) for r in raws], cases))
    cold["requests"] = len(cases)
    return row, cold, reference


def measure_batch(
    adapter: CedarAdapter,
    cases: Sequence[Case],
    warm: Sequence[Case],
    reference: Sequence[Verdict],
) -> Row:
    """One ``is_authorized_batch`` over every request; the time per request, amortised."""
    adapter.run_batch([adapter.prepare(c) for c in warm])
    natives = [adapter.prepare(c) for c in cases]
    gc.collect()
    start = time.perf_counter_ns()
    grouped = adapter.run_batch(natives)
    elapsed = time.perf_counter_ns() - start
    row: Row = {"amortised_us": round(elapsed / len(cases) / 1000, 3)}
    row.update(_agreement("cedarpy-batch", reference, [adapter.verdict(g) for g in grouped], cases))
    row["requests"] = len(cases)
    return row


def _unavailable(exc: BaseException) -> Row:
    return {"available": False, "error": f"{type(exc).__name__}: {exc}"}


# -- the run -----------------------------------------------------------------------------------


#: the cases of a run, in order (cold Meridian and cedarpy's batch are part of their engine's)
CASES = ("meridian", "cedarpy", "pycasbin", "regorus", "regorus-rvm")


def run_benchmark(requests: int, seed: int, bar: CaseBar | None = None) -> dict[str, Any]:
    """Build the workload, run every engine, and return the report (the ``--json`` object).

    ``bar`` follows the engines as they run (``main``'s, on stderr; none: nothing is drawn).
    """
    bar = bar or CaseBar("bench/decisions.py")
    bundle = compile_bundle(load_bundle())
    engine = Engine(bundle)
    workload = build_workload(bundle, requests, seed)
    warmup = build_workload(bundle, min(WARMUP, requests), seed + 1)
    cases = cases_for(engine, workload.parsed)
    warm = cases_for(engine, warmup.parsed)
    overhead = timer_overhead_ns()

    engines: dict[str, Row] = {}
    bar.start("meridian, warm and cold")
    engines["meridian"], cold, reference = measure_meridian(engine, cases, warm)
    if cold is not None:
        engines["meridian-cold"] = cold
    for name in ("cedarpy", "pycasbin"):
        bar.start(name)
        engines.update(_measure_named(name, bundle, cases, warm, reference))
    engines.update(_measure_regorus(bundle, cases, warm, reference, bar))
    return {
        "engines": engines,
        "ratios": ratios(engines),
        "machine": machine_info(overhead),
        "requests": requests,
    }


def _measure_named(
    name: str, bundle: Any, cases: Sequence[Case], warm: Sequence[Case], reference: list[Verdict]
) -> dict[str, Row]:
    try:
        adapter = ADAPTERS[name](bundle)
    except Exception as exc:  # noqa: BLE001 - a missing or broken engine is reported, never fatal
        rows = {name: _unavailable(exc)}
        if name == "cedarpy":
            rows["cedarpy-batch"] = _unavailable(exc)
        return rows
    rows = {name: measure(adapter, cases, warm, reference)}
    if isinstance(adapter, CedarAdapter):
        rows["cedarpy-batch"] = measure_batch(adapter, cases, warm, reference)
    return rows


def _measure_regorus(
    bundle: Any,
    cases: Sequence[Case],
    warm: Sequence[Case],
    reference: list[Verdict],
    bar: CaseBar,
) -> dict[str, Row]:
    """Both regorus paths; ``regorus`` is the faster by median, the other is named by its path."""
    measured: dict[str, Row] = {}
    for name in ("regorus", "regorus-rvm"):
        bar.start(name)
        try:
            adapter = ADAPTERS[name](bundle)
        except Exception as exc:  # noqa: BLE001 - a missing or broken engine is reported, never fatal
            measured[name] = _unavailable(exc)
            continue
        measured[name] = measure(adapter, cases, warm, reference) | {"path": adapter.path}
    interpreter, rvm = measured["regorus"], measured["regorus-rvm"]
    timed = [r for r in (interpreter, rvm) if "median_us" in r]
    if not timed:
        return {"regorus": interpreter}
    best = min(timed, key=lambda r: r["median_us"])
    other = rvm if best is interpreter else interpreter
    return {"regorus": best, f"regorus-{other.get('path', 'rvm')}": other}


def ratios(engines: dict[str, Row]) -> dict[str, float]:
    """Each engine's median (cedarpy-batch: amortised time) over Meridian's median."""
    out: dict[str, float] = {}
    for base in ("meridian", "meridian-cold"):
        reference = engines.get(base, {}).get("median_us")
        if not reference:
            continue
        for name in ("cedarpy", "cedarpy-batch", "pycasbin", "regorus"):
            row = engines.get(name, {})
            value = row.get("median_us", row.get("amortised_us"))
            if value is not None:
                out[f"{name}/{base}"] = round(value / reference, 2)
    return out


# -- the machine -------------------------------------------------------------------------------


def _cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def _ram_gb() -> float | None:
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                return round(int(line.split()[1]) / 1024 / 1024, 1)
    except OSError:
        pass
    return None


def _version(package: str) -> str | None:
    try:
        return metadata.version(package)
    except metadata.PackageNotFoundError:
        return None


def machine_info(overhead_ns: float) -> dict[str, Any]:
    """Where and with what the figures were measured."""
    return {
        "cpu": _cpu_model(),
        "cores": os.cpu_count(),
        "ram_gb": _ram_gb(),
        "python": platform.python_version(),
        "implementation": platform.python_implementation(),
        "platform": platform.platform(),
        "packages": {
            p: _version(p) for p in ("cedarpy", "pycasbin", "gordon-to-regorus", "meridian")
        },
        "timer_overhead_ns": overhead_ns,
        "date": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
    }


# -- output ------------------------------------------------------------------------------------


def _targets(report: dict[str, Any]) -> list[tuple[str, bool | None]]:
    engines, found = report["engines"], report["ratios"]
    median = engines["meridian"].get("median_us")
    checks: list[tuple[str, bool | None]] = [
        (
            f"meridian median ≤ {TARGET_MEDIAN_US:g} µs",
            None if median is None else median <= TARGET_MEDIAN_US,
        ),
    ]
    for key, floor in TARGET_RATIOS.items():
        value = found.get(key)
        checks.append((f"{key} ≥ {floor:g}×", None if value is None else value >= floor))
    return checks


def render_table(report: dict[str, Any]) -> None:
    """Print the report as a rich table, with the targets under it."""
    from rich.console import Console
    from rich.table import Table

    base = report["engines"]["meridian"].get("median_us")
    table = Table(title=f"Decisions: {report['requests']:,} requests, one at a time")
    for header in ("engine", "requests", "median µs", "p99 µs", "× meridian", "agree", "note"):
        table.add_column(header, justify="left" if header in ("engine", "note") else "right")
    for name, row in report["engines"].items():
        table.add_row(*_table_cells(name, row, base))
    console = Console(width=max(Console().width, 120))
    console.print(table)
    machine = report["machine"]
    console.print(
        f"{machine['cpu']}, {machine['cores']} cores, {machine['ram_gb']} GB, Python "
        f"{machine['python']}; timer overhead {machine['timer_overhead_ns']:.0f} ns per call"
    )
    for label, met in _targets(report):
        verdict = "n/a" if met is None else ("met" if met else "NOT met")
        console.print(f"target {label}: {verdict}")


def _table_cells(name: str, row: Row, base: float | None) -> list[str]:
    if row.get("available") is False:
        return [name, "", "", "", "", "", f"unavailable: {row['error']}"]
    median = row.get("median_us", row.get("amortised_us"))
    p99 = row.get("p99_us")
    note = []
    if "amortised_us" in row:
        note.append("one batch call, amortised")
    if "path" in row:
        note.append(f"path: {row['path']}")
    if "memo_hit_rate" in row:
        note.append(f"memo hit rate {row['memo_hit_rate']:.1%}")
    if name == "meridian-cold":
        note.append("both memos emptied before each request")
    if row.get("disagreements"):
        note.append(f"{row['disagreements']} disagreements")
    ratio = f"{median / base:.1f}" if base and median is not None else ""
    return [
        name,
        f"{row.get('requests', 0):,}",
        f"{median:.2f}" if median is not None else "",
        f"{p99:.2f}" if p99 is not None else "",
        ratio,
        "yes" if row.get("agree") else "NO",
        "; ".join(note),
    ]


def main(argv: Sequence[str] | None = None) -> int:
    """Run the benchmark and print a table (default) or the JSON report."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=DEFAULT_REQUESTS, help="how many requests")
    parser.add_argument("--seed", type=int, default=DEFAULT_SEED, help="seed of the workload")
    parser.add_argument("--json", action="store_true", help="print the report as JSON")
    args = parser.parse_args(argv)
    if args.requests < 1:
        parser.error("--requests must be at least 1")
    with bench_cases("bench/decisions.py", len(CASES)) as bar:
        report = run_benchmark(args.requests, args.seed, bar)
    if args.json:
        print(json.dumps(report))
    else:
        render_table(report)
    summary(bar.summary_line())
    return 0 if all(row.get("agree", True) for row in report["engines"].values()) else 1


if __name__ == "__main__":
    sys.exit(main())
