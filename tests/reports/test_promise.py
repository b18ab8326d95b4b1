"""The transparency report's first-class counts — requests that sought to affect people outside
the requesting jurisdiction, delayed notices — and each counted request's entries with inclusion
proofs that verify against the report's own checkpoint; a report with either changed fails
``--verify``."""

from __future__ import annotations

import base64
import json
from pathlib import Path

from tests.cli.test_report import FROM_TO, Export, report
from tests.reports.test_transparency import ORIGIN, PERIOD, entry, june_2020, request

from meridian.audit.merkle import RootBuilder, leaf_hash, verify_inclusion
from meridian.reports.compute import compute_report
from meridian.reports.model import StatedCheckpoint
from meridian.reports.render import render_html, render_json


def scoped(rid: str, at: str, *effects: tuple[str, str, bool]) -> bytes:
    """A ``legal.scoped`` entry naming ``(kind, country, in_scope)`` entities."""
    return entry(
        "legal.scoped",
        rid,
        at,
        {
            "effects": [
                {
                    "country": c,
                    "effect": "end" if inside else "none",
                    "id": f"{k}_{c}_{n}",
                    "in_scope": inside,
                    "kind": k,
                    "why": "x",
                }
                for n, (k, c, inside) in enumerate(effects)
            ],
            "jurisdiction": "CN",
            "outcome": "narrowed",
            "requested": "end_meeting",
        },
    )


def mixed_log() -> list[bytes]:
    """Three CN requests: one only about people in CN, one also naming an HK participant and a
    US account, one naming only a meeting outside (a meeting is not a person)."""
    at = "2020-06-03T09:00:00Z"
    log: list[bytes] = []
    for rid, effects in (
        ("lr_inside", [("participant", "CN", True)]),
        (
            "lr_reach",
            [("participant", "CN", True), ("participant", "HK", False), ("account", "US", False)],
        ),
        ("lr_meeting", [("meeting", "US", False), ("participant", "CN", True)]),
    ):
        received, _ = request(rid, at, outcome="pending")
        log += [received, scoped(rid, at, *effects)]
    return log


def at_real_root(log: list[bytes]) -> StatedCheckpoint:
    builder = RootBuilder()
    for item in log:
        builder.push(leaf_hash(item))
    from datetime import UTC, datetime

    when = datetime(2020, 12, 18, tzinfo=UTC)
    return StatedCheckpoint(ORIGIN, len(log), builder.root(), when, f"{ORIGIN}\n{len(log)}\n…\n")


def test_requests_that_reached_outside_their_jurisdiction_are_counted() -> None:
    log = mixed_log()
    doc = json.loads(render_json(compute_report(log, at_real_root(log), PERIOD)))
    assert doc["headline"]["requests"] == 3
    assert doc["headline"]["sought_outside_jurisdiction"] == 1
    assert doc["headline"]["people_outside_jurisdiction"] == 2


def test_delayed_notices_are_a_headline_count() -> None:
    log = june_2020()
    doc = json.loads(render_json(compute_report(log, at_real_root(log), PERIOD)))
    # two requests applied with notice delayed; one of them has been notified since
    assert doc["headline"]["notices_delayed"] == 2
    assert doc["headline"]["notices_delayed_not_yet_given"] == 1
    assert doc["notice"] == {"delayed": 2, "delayed_then_notified": 1}


def test_each_counted_request_links_to_its_entries_with_proofs_that_verify() -> None:
    log = june_2020()
    checkpoint = at_real_root(log)
    made = compute_report(log, checkpoint, PERIOD)
    doc = json.loads(render_json(made))
    assert [r["request"] for r in doc["entries"]] == list(range(1, made.requests + 1))
    seen = []
    for counted in doc["entries"]:
        for item in counted["entries"]:
            leaf = base64.b64decode(item["leaf"])
            assert leaf == leaf_hash(log[item["index"]])
            proof = [base64.b64decode(h) for h in item["proof"]]
            verify_inclusion(leaf, item["index"], checkpoint.size, proof, checkpoint.root)
            seen.append(item["index"])
    # exactly the legal entries of the requests received in the period, and nothing else
    wanted = []
    for index, raw in enumerate(log):
        value = json.loads(raw)
        if value["action"].startswith("legal.") and value["subject"]["id"] not in (
            "lr_before",
            "lr_after",
        ):
            wanted.append(index)
    assert sorted(seen) == wanted
    page = render_html(made).decode()
    assert "Requests that sought to affect people outside the requesting jurisdiction" in page
    assert doc["entries"][0]["entries"][0]["leaf"] in page
    assert "REF-SECRET-42" not in json.dumps(doc)
    assert "lr_june4" not in page


def test_a_report_with_a_changed_promise_count_or_proof_fails_verify(tmp_path: Path) -> None:
    made = Export(tmp_path, june_2020(), middle=5)
    target = tmp_path / "report.json"
    assert report(*FROM_TO, *made.args(), "-o", str(target))[0] == 0
    doc = json.loads(target.read_text(encoding="utf-8"))
    for change in ("count", "proof"):
        changed = json.loads(json.dumps(doc))
        if change == "count":
            changed["headline"]["sought_outside_jurisdiction"] = 0
        else:
            first = changed["entries"][0]["entries"][0]
            first["proof"][0] = base64.b64encode(b"\0" * 32).decode()
        bad = tmp_path / f"{change}.json"
        text = json.dumps(changed, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
        bad.write_text(text + "\n", encoding="utf-8")
        code, _, err = report("--verify", str(bad), *made.args())
        assert code == 1, change
        assert "differs at line 1" in err, err
