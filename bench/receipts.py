"""Verifying a meeting's residency receipt, against verifying the same entries' bare proofs.

Usage::

    .venv/bin/python bench/receipts.py                       # 100 participants, a log of 100,000
    .venv/bin/python bench/receipts.py --participants 1000 --log-size 1000000 --json

A receipt of a meeting of ``--participants`` people (a join each, a leave for half of them, the
create, the end and the seal with four region nodes' signed statements: bench/_receipts.py) among
``--log-size`` entries is made once. Then, in ``--rounds`` (5) interleaved rounds:

* *receipt*: :func:`meridian.meetings.residency.verify_receipt` — the checkpoint's signature,
  every entry's inclusion proof, every statement's signature, the summary recomputed and
  compared;
* *baseline*: the same entries' bare inclusion proofs only — leaf hash and
  :func:`~meridian.audit.merkle.verify_inclusion` against the same root, the checkpoint opened
  once — what checking "these entries are in the log" costs without saying where the meeting went.

Medians are printed, with the ratio receipt / baseline.
"""

from __future__ import annotations

import argparse
import base64
import json
import platform
import statistics
import time
from datetime import UTC, datetime

from _receipts import make_receipt
from meridian.audit.merkle import leaf_hash, verify_inclusion
from meridian.audit.note import NoteVerifier
from meridian.meetings.residency import verify_receipt


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--participants", type=int, default=100)
    parser.add_argument("--log-size", type=int, default=100_000)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()

    started = time.perf_counter()
    # the meeting's own entries: the create, a join each, a leave for half, the end, the seal
    own = 3 + args.participants + (args.participants + 1) // 2
    world = make_receipt(args.participants, filler=max(0, args.log_size - own))
    setup = time.perf_counter() - started
    receipt = world.receipt
    entries = receipt["entries"]

    def full() -> None:
        check = verify_receipt(receipt, log_key=world.log_key, node_keys=world.node_keys)
        assert check.participants == args.participants

    def bare() -> None:
        checkpoint = NoteVerifier.from_vkey(world.log_key).open(receipt["log"]["checkpoint"])
        for item in entries:
            proof = [base64.b64decode(h) for h in item["proof"]]
            verify_inclusion(
                leaf_hash(item["entry"].encode()),
                item["index"],
                checkpoint.size,
                proof,
                checkpoint.root,
            )

    times: dict[str, list[float]] = {"receipt": [], "baseline": []}
    full()
    bare()  # warm both before timing
    for _ in range(args.rounds):
        for name, run in (("receipt", full), ("baseline", bare)):
            t0 = time.perf_counter()
            run()
            times[name].append(time.perf_counter() - t0)
    receipt_s = statistics.median(times["receipt"])
    baseline_s = statistics.median(times["baseline"])
    result = {
        "date": datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "machine": f"{platform.machine()}, {platform.python_implementation()} "
        f"{platform.python_version()}",
        "participants": args.participants,
        "log_size": world.tree.size,
        "entries": len(entries),
        "receipt_bytes": len(json.dumps(receipt)),
        "receipt_ms": round(receipt_s * 1000, 2),
        "baseline_ms": round(baseline_s * 1000, 2),
        "ratio": round(receipt_s / baseline_s, 2),
        "setup_s": round(setup, 1),
    }
    if args.json:
        print(json.dumps(result))
        return
    print(
        f"receipt of {args.participants} participants: {len(entries)} entries in a log of "
        f"{world.tree.size}, {result['receipt_bytes']:,} bytes"
    )
    print(f"  verify_receipt        {result['receipt_ms']:8.2f} ms (median of {args.rounds})")
    print(f"  bare inclusion proofs {result['baseline_ms']:8.2f} ms (the same entries)")
    print(f"  ratio receipt/bare    {result['ratio']:8.2f}")


if __name__ == "__main__":
    main()
