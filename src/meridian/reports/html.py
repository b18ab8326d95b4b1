"""The transparency report as one self-contained HTML page.

Everything is inline: the CSS, and a bar chart per breakdown drawn as SVG by this module. The
page runs no script, loads nothing (no URL, no font) and carries no date but the checkpoint's,
so the same report always gives the same bytes. Each chart has a table with the same counts
and a caption, for readers who do not see it; every value from the log is escaped.

The page states what it was computed from twice: for people, in its last section, and for
:func:`meridian.reports.readback.stated_parameters`, in ``<meta name="meridian-…">`` tags.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from html import escape, unescape

from .model import FORMAT, TransparencyReport

__all__ = ["render_html", "stated_fields"]

_CSS = """\
body{margin:0;color:#1a1a1a;background:#fff;font:16px/1.5 system-ui,-apple-system,"Segoe UI",Roboto,sans-serif}
header,main,footer{max-width:46rem;margin:0 auto;padding:0 1rem}
h1{font-size:1.7rem;margin:1.5rem 0 .5rem}
h2{font-size:1.3rem;margin:2rem 0 .5rem;border-bottom:1px solid #767676}
table{border-collapse:collapse;margin:.75rem 0 1.25rem;min-width:20rem}
caption{text-align:left;font-weight:600;padding-bottom:.25rem}
th,td{border:1px solid #767676;padding:.25rem .6rem;text-align:left}
td.n{text-align:right;font-variant-numeric:tabular-nums}
svg{display:block;max-width:100%;height:auto}
svg text{font:13px system-ui,sans-serif;fill:#1a1a1a}
svg rect{fill:#1f4e79}
dl{display:grid;grid-template-columns:max-content 1fr;gap:.25rem 1rem}
dt{font-weight:600}
dd{margin:0;overflow-wrap:anywhere}
pre{white-space:pre-wrap;overflow-wrap:anywhere;background:#f3f3f3;padding:.75rem;border:1px solid #767676}
code,pre{font-family:ui-monospace,Menlo,Consolas,monospace;font-size:.9rem}
"""

_CHART_WIDTH = 560
_LABEL_WIDTH = 190
_BAR_SPACE = 300
_ROW = 28
_BAR = 18


def _label(key: str) -> str:
    return key.replace("_", " ")


def _bar_width(count: int, top: int) -> int:
    if count <= 0 or top <= 0:
        return 0
    return max(2, (count * _BAR_SPACE + top // 2) // top)


def _chart(name: str, title: str, rows: Sequence[tuple[str, int]]) -> str:
    """A horizontal bar chart of ``rows`` as inline SVG, with its name for assistive technology."""
    title_id = f"chart-{name}-title"
    if not rows:
        height = _ROW + 8
        body = f'<text x="0" y="{_ROW - 8}">No requests in this period.</text>'
    else:
        height = len(rows) * _ROW + 8
        top = max(count for _, count in rows)
        parts = []
        for i, (key, count) in enumerate(rows):
            y = i * _ROW + 4
            width = _bar_width(count, top)
            middle = y + _BAR // 2 + 5
            parts.append(
                f'<text x="{_LABEL_WIDTH - 8}" y="{middle}" text-anchor="end">{escape(_label(key))}</text>'
                f'<rect x="{_LABEL_WIDTH}" y="{y}" width="{width}" height="{_BAR}"></rect>'
                f'<text x="{_LABEL_WIDTH + width + 6}" y="{middle}">{count}</text>'
            )
        body = "\n".join(parts)
    return (
        f'<svg role="img" aria-labelledby="{title_id}" width="{_CHART_WIDTH}" height="{height}" '
        f'viewBox="0 0 {_CHART_WIDTH} {height}">\n'
        f'<title id="{title_id}">{escape(title)}: bar chart (the table below has the same counts)</title>\n'
        f"{body}\n</svg>"
    )


def _table(caption: str, head: tuple[str, str], rows: Sequence[tuple[str, int]]) -> str:
    lines = [
        "<table>",
        f"<caption>{escape(caption)}</caption>",
        f'<thead><tr><th scope="col">{escape(head[0])}</th><th scope="col">{escape(head[1])}</th></tr></thead>',
        "<tbody>",
    ]
    if not rows:
        lines.append('<tr><td colspan="2">No requests in this period.</td></tr>')
    lines.extend(
        f'<tr><th scope="row">{escape(_label(key))}</th><td class="n">{count}</td></tr>'
        for key, count in rows
    )
    lines += ["</tbody>", "</table>"]
    return "\n".join(lines)


def _breakdown(name: str, heading: str, column: str, rows: Sequence[tuple[str, int]]) -> str:
    return "\n".join(
        [
            f'<section aria-labelledby="{name}">',
            f'<h2 id="{name}">{escape(heading)}</h2>',
            _chart(name, heading, rows),
            _table(heading, (column, "Requests"), rows),
            "</section>",
        ]
    )


def _evidence(report: TransparencyReport) -> str:
    """Each counted request's entries: positions, leaf hashes and inclusion proofs, inline."""
    size = report.checkpoint.size
    lines = [
        '<section aria-labelledby="entries">',
        '<h2 id="entries">Each request in the log</h2>',
        f"<p>Every request counted above, numbered in the order it entered the log, with the "
        f"position of each of its entries, the entry's leaf hash and its inclusion proof in the "
        f"tree of {size} entries (RFC 9162; hashes in base64). Check one against the root below, "
        f"or ask the log: <code>GET /v1/log/proof/inclusion?index=I&amp;size={size}</code>. The "
        "entries themselves name people and are not in this report.</p>",
    ]
    if not report.evidence:
        lines.append("<p>No requests in this period.</p>")
    for request in report.evidence:
        lines += [
            "<table>",
            f"<caption>Request {request.number}</caption>",
            '<thead><tr><th scope="col">Entry</th><th scope="col">Leaf hash</th>'
            '<th scope="col">Inclusion proof</th></tr></thead>',
            "<tbody>",
        ]
        for e in request.entries:
            d = e.to_dict()
            proof = " ".join(f"<code>{escape(h)}</code>" for h in d["proof"]) or "(none)"
            lines.append(
                f'<tr><th scope="row">{e.index}</th><td><code>{escape(d["leaf"])}</code></td>'
                f"<td>{proof}</td></tr>"
            )
        lines += ["</tbody>", "</table>"]
    lines.append("</section>")
    return "\n".join(lines)


def _meta(name: str, value: str) -> str:
    return f'<meta name="meridian-{name}" content="{escape(value)}">'


def render_html(report: TransparencyReport) -> bytes:
    """The page for ``report``: the same report always gives the same bytes."""
    cp = report.checkpoint
    start, end = report.period.start.isoformat(), report.period.end.isoformat()
    title = f"Government requests transparency report, {start} to {end}"
    summary: list[tuple[str, int]] = [
        ("Requests received", report.requests),
        ("Accounts affected", report.accounts),
        ("Participants affected", report.participants),
        ("Meetings ended", report.meetings_ended),
        ("Disclosures of content", report.disclosures_content),
        ("Disclosures of non-content data", report.disclosures_non_content),
        ("Requests applied with notice to users delayed", report.notice_delayed),
        ("of which the users have since been notified", report.notice_delayed_then_notified),
    ]
    parts = [
        "<!DOCTYPE html>",
        '<html lang="en">',
        "<head>",
        '<meta charset="utf-8">',
        '<meta name="viewport" content="width=device-width, initial-scale=1">',
        f"<title>{escape(title)}</title>",
        _meta("report", FORMAT),
        _meta("period-from", start),
        _meta("period-to", end),
        _meta("checkpoint-origin", cp.origin),
        _meta("checkpoint-size", str(cp.size)),
        _meta("checkpoint-root", cp.root_b64),
        _meta("checkpoint-time", cp.time_text),
        f"<style>\n{_CSS}</style>",
        "</head>",
        "<body>",
        "<header>",
        "<h1>Government requests: transparency report</h1>",
        f"<p>Requests received from {escape(start)} to {escape(end)} inclusive (dates in UTC), "
        f"and what had become of each by entry {cp.size} of the log "
        f"<code>{escape(cp.origin)}</code>. Counts only: no one is named.</p>",
        "</header>",
        "<main>",
        '<section aria-labelledby="promise">',
        '<h2 id="promise">Requests that reached outside their jurisdiction, and delayed notices</h2>',
        "<table>",
        "<caption>What a request may never do, and what users were not told at once</caption>",
        '<thead><tr><th scope="col">What</th><th scope="col">Count</th></tr></thead>',
        "<tbody>",
        *(
            f'<tr><th scope="row">{escape(what)}</th><td class="n">{count}</td></tr>'
            for what, count in (
                (
                    "Requests that sought to affect people outside the requesting jurisdiction",
                    report.sought_outside,
                ),
                ("People outside the requesting jurisdiction they named", report.people_outside),
                ("Requests applied with notice to users delayed", report.notice_delayed),
                (
                    "of which the users have not been notified yet",
                    report.notice_delayed - report.notice_delayed_then_notified,
                ),
            )
        ),
        "</tbody>",
        "</table>",
        "<p>A request from one jurisdiction may only affect people located in or subject to it: "
        "people outside it were left out of what was applied (the request was narrowed or "
        "rejected), and each such request is counted here.</p>",
        "</section>",
        '<section aria-labelledby="summary">',
        '<h2 id="summary">Summary</h2>',
        "<table>",
        "<caption>Requests received in the period and their effects</caption>",
        '<thead><tr><th scope="col">What</th><th scope="col">Count</th></tr></thead>',
        "<tbody>",
        *(
            f'<tr><th scope="row">{escape(what)}</th><td class="n">{count}</td></tr>'
            for what, count in summary
        ),
        "</tbody>",
        "</table>",
        "<p>Accounts, participants and meetings are counted once each, however many requests "
        "touched them. A request is pending while it has been neither rejected nor applied; "
        "narrowed means it was applied only to people in the requesting jurisdiction.</p>",
        "</section>",
        _breakdown(
            "by-jurisdiction",
            "Requests by requesting jurisdiction",
            "Jurisdiction",
            report.by_jurisdiction,
        ),
        _breakdown("by-legal-type", "Requests by legal type", "Legal type", report.by_legal_type),
        _breakdown("by-action", "Requests by action requested", "Action", report.by_action),
        _breakdown("by-outcome", "Requests by outcome", "Outcome", report.by_outcome),
        _evidence(report),
        '<section aria-labelledby="checkpoint">',
        '<h2 id="checkpoint">What this report is computed from</h2>',
        "<p>Only the log entries this signed checkpoint commits to were read. Anyone with an "
        "export of the log can recompute this page and compare it byte for byte: "
        "<code>meridian report transparency --verify REPORT --log EXPORT --key VKEY</code>.</p>",
        "<dl>",
        f"<dt>Log</dt><dd><code>{escape(cp.origin)}</code></dd>",
        f"<dt>Entries</dt><dd>{cp.size}</dd>",
        f"<dt>Root hash (base64)</dt><dd><code>{escape(cp.root_b64)}</code></dd>",
        f"<dt>Signed at</dt><dd>{escape(cp.time_text)}</dd>",
        "</dl>",
        "<h3>Signed checkpoint</h3>",
        f"<pre>{escape(cp.note)}</pre>",
        "</section>",
        "</main>",
        "</body>",
        "</html>",
        "",
    ]
    return "\n".join(parts).encode("utf-8")


_META = re.compile(r'<meta name="meridian-([a-z-]+)" content="([^"]*)">')
_STATED = {"checkpoint-size": "size", "checkpoint-time": "time", "period-from": "from"}
_STATED["period-to"] = "to"


def stated_fields(page: str) -> dict[str, str]:
    """The checkpoint size and time and the period a page's ``meta`` tags state."""
    fields: dict[str, str] = {}
    for name, value in _META.findall(page):
        if name in _STATED:
            fields.setdefault(_STATED[name], unescape(value))
    return fields
