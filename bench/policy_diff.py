"""The exact policy diff against deciding the same request classes one by one (issue 19).

Usage::

    .venv/bin/python bench/policy_diff.py            # one JSON object on stdout
    .venv/bin/python bench/policy_diff.py --runs 7

The pair is the built-in bundle and a copy with one changed date (the CN direct-sales end moved
from 2020-08-23 to 2020-08-30) and one new partner (authorised in CN from 2020-09-01). The diff
(:func:`meridian.policy.diff.diff_bundles`) is timed whole, bundles already compiled and the
embedded IP table already read (both are paid once per process; the first run is reported too).
The baseline, in the same run, walks every elementary request class of the same domain
(:func:`meridian.policy.diff.domain`) and decides each one through ``Engine.decide`` under both
bundles, comparing the two answers. Both find the same number of differing classes (checked).
The invariant check of the built-in bundle's invariants is timed as well.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
import time
from datetime import UTC, datetime

MOVED = ("effective: {from: 2020-08-23}", "effective: {from: 2020-08-30}")
PARTNER = (
    "  systec-umeet:\n    name: Systec Umeet\n    jurisdictions: [CN]\n",
    "  systec-umeet:\n    name: Systec Umeet\n    jurisdictions: [CN]\n"
    "  newco:\n    name: Newco\n    jurisdictions: [CN]\n    effective: {from: 2020-09-01}\n",
)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args(argv)

    from meridian.errors import RequestError
    from meridian.geography.ipgeo import default_locator
    from meridian.policy import Engine, compile_bundle, load_bundle, load_bundle_text
    from meridian.policy.diff import diff_bundles, domain, side_of
    from meridian.policy.invariants import builtin_invariants, check_invariants
    from meridian.policy.loader import default_bundle_path

    text = default_bundle_path().read_text(encoding="utf-8")
    for old, new in (MOVED, PARTNER):
        assert old in text
        text = text.replace(old, new)
    before = compile_bundle(load_bundle())
    after = compile_bundle(load_bundle_text(text, "changed.yaml"))
    locator = default_locator()

    start = time.perf_counter()
    first = diff_bundles(before, after, locator=locator)
    first_run = time.perf_counter() - start
    diff_times = []
    for _ in range(args.runs):
        start = time.perf_counter()
        diff = diff_bundles(before, after, locator=locator)
        diff_times.append(time.perf_counter() - start)
    assert diff.digest == first.digest

    def side(engine: Engine, wire: dict[str, object]) -> object:
        try:
            return side_of(engine.decide(wire))
        except RequestError:
            return "malformed"

    baseline_times = []
    differing = examined = 0
    for _ in range(max(1, args.runs // 2)):
        engines = Engine(before, locator=locator), Engine(after, locator=locator)
        start = time.perf_counter()
        differing = examined = 0
        for wire in domain(before, after, locator=locator):
            examined += 1
            if side(engines[0], wire) != side(engines[1], wire):
                differing += 1
        baseline_times.append(time.perf_counter() - start)
    assert (examined, differing) == (diff.examined, diff.differing), (examined, differing)

    invariants = builtin_invariants()
    start = time.perf_counter()
    report = check_invariants(before, invariants, locator=locator)
    check_time = time.perf_counter() - start
    assert report.ok

    diff_median = statistics.median(diff_times)
    baseline_median = statistics.median(baseline_times)
    print(
        json.dumps(
            {
                "bench": "policy_diff",
                "date_utc": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
                "machine": {
                    "cpus": os.cpu_count(),
                    "python": sys.version.split()[0],
                    "platform": platform.platform(),
                },
                "classes_differing": len(diff.classes),
                "elementary_classes": diff.examined,
                "elementary_differing": diff.differing,
                "diff_s": {
                    "first_run": round(first_run, 4),
                    "median": round(diff_median, 4),
                    "runs": [round(t, 4) for t in diff_times],
                },
                "baseline_decide_one_by_one_s": {
                    "median": round(baseline_median, 4),
                    "runs": [round(t, 4) for t in baseline_times],
                },
                "speedup": round(baseline_median / diff_median, 1),
                "target_diff_s": 1.0,
                "invariants_check_s": round(check_time, 4),
                "invariants": len(report.results),
            },
            indent=2,
        )
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
