"""The transparency report's renderings, each deterministic (the same report gives the same bytes).

Canonical JSON (sorted keys, ``,``/``:`` separators, UTF-8, one trailing newline), CSV in a long
format (:func:`render_csv`) and one self-contained HTML page (:mod:`meridian.reports.html`).
"""

from __future__ import annotations

import csv
import io
import json

from .html import render_html
from .model import FORMAT, ReportFormat, TransparencyReport

__all__ = ["csv_rows", "render", "render_csv", "render_json"]


def render_json(report: TransparencyReport) -> bytes:
    """Canonical JSON: sorted keys, ``,``/``:`` separators, UTF-8, one trailing newline."""
    text = json.dumps(report.to_dict(), sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return (text + "\n").encode("utf-8")


def csv_rows(report: TransparencyReport) -> list[tuple[str, str, str]]:
    """The CSV rendering's rows after its header, in order (see :func:`render_csv`)."""
    cp = report.checkpoint
    rows: list[tuple[str, str, str]] = [
        ("report", "format", FORMAT),
        ("period", "from", report.period.start.isoformat()),
        ("period", "to", report.period.end.isoformat()),
        ("checkpoint", "origin", cp.origin),
        ("checkpoint", "size", str(cp.size)),
        ("checkpoint", "root", cp.root_b64),
        ("checkpoint", "time", cp.time_text),
        ("checkpoint", "note", cp.note),
        ("requests", "total", str(report.requests)),
    ]
    for dimension, breakdown in (
        ("jurisdiction", report.by_jurisdiction),
        ("legal_type", report.by_legal_type),
        ("action", report.by_action),
        ("outcome", report.by_outcome),
    ):
        rows.extend((dimension, key, str(count)) for key, count in breakdown)
    rows += [
        ("affected", "accounts", str(report.accounts)),
        ("affected", "participants", str(report.participants)),
        ("affected", "meetings_ended", str(report.meetings_ended)),
        ("disclosures", "content", str(report.disclosures_content)),
        ("disclosures", "non_content", str(report.disclosures_non_content)),
        ("notice", "delayed", str(report.notice_delayed)),
        ("notice", "delayed_then_notified", str(report.notice_delayed_then_notified)),
        ("outside_jurisdiction", "requests", str(report.sought_outside)),
        ("outside_jurisdiction", "people", str(report.people_outside)),
    ]
    rows.extend(
        ("entries", f"request {r.number}", " ".join(str(e.index) for e in r.entries))
        for r in report.evidence
    )
    return rows


def render_csv(report: TransparencyReport) -> bytes:
    """Long-format CSV: a header ``dimension,key,value``, then one row per fact, ``\\n`` endings.

    Row order: ``report,format``; ``period`` ``from``, ``to``; ``checkpoint`` ``origin``,
    ``size``, ``root`` (base64), ``time``, ``note`` (the signed note, a quoted multi-line value);
    ``requests,total``; then the counts: ``jurisdiction`` (by code), ``legal_type``, ``action``
    and ``outcome`` (each in its vocabulary's order, zeros included), ``affected`` (``accounts``,
    ``participants``, ``meetings_ended``), ``disclosures`` (``content``, ``non_content``) and
    ``notice`` (``delayed``, ``delayed_then_notified``), ``outside_jurisdiction`` (``requests``
    that sought to affect people outside the requesting jurisdiction, and those ``people``);
    then ``entries``, one row per counted request (``request 1``, …) whose value is the
    positions of its log entries, space-separated (their proofs are in the JSON and HTML
    renderings). Only the first nine rows and the ``entries`` rows hold text; every other
    ``value`` is a count.
    """
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(("dimension", "key", "value"))
    writer.writerows(csv_rows(report))
    return out.getvalue().encode("utf-8")


def render(report: TransparencyReport, fmt: ReportFormat) -> bytes:
    """The report in ``fmt``: the same report always gives the same bytes."""
    if fmt == "json":
        return render_json(report)
    if fmt == "csv":
        return render_csv(report)
    return render_html(report)
