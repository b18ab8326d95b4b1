"""The transparency report's HTML page: self-contained, escaped, accessible, the same bytes twice."""

from __future__ import annotations

import json
import re
from collections import Counter
from datetime import UTC, date, datetime
from html.parser import HTMLParser

import pytest

from meridian.reports.compute import compute_report
from meridian.reports.html import render_html
from meridian.reports.model import Period, StatedCheckpoint, TransparencyReport
from meridian.reports.readback import stated_parameters

CHARTS = ["by-jurisdiction", "by-legal-type", "by-action", "by-outcome"]
VOID = {"meta", "br", "img", "input", "link", "hr"}


def _entry(rid: str, at: str, jurisdiction: str, outcome: str | None) -> list[bytes]:
    def one(action: str, details: dict[str, object]) -> bytes:
        value = {
            "action": action,
            "at": at,
            "details": details,
            "subject": {"id": rid, "kind": "legal_request"},
        }
        return json.dumps(value, sort_keys=True, separators=(",", ":")).encode()

    request = {"jurisdiction": jurisdiction, "legal_type": "warrant", "action": "end_meeting"}
    out = [one("legal.received", {"request": request})]
    if outcome == "rejected":
        out.append(one("legal.rejected", {"by": "system:meridian"}))
    elif outcome is not None:
        out.append(one("legal.applied", {"outcome": outcome, "meetings_ended": ["mtg_1"]}))
    return out


def report(*jurisdictions: str, note: str = "meridian.test/log\n3\n…\n") -> TransparencyReport:
    log: list[bytes] = []
    for n, code in enumerate(jurisdictions):
        log += _entry(f"lr_{n}", f"2020-06-0{n % 9 + 1}T10:00:00Z", code, "applied")
    checkpoint = StatedCheckpoint(
        "meridian.test/log", len(log), b"\x07" * 32, datetime(2020, 12, 18, tzinfo=UTC), note
    )
    return compute_report(log, checkpoint, Period(date(2020, 5, 1), date(2020, 12, 12)))


class Outline(HTMLParser):
    """Tags as they nest, headings in order, ids, and text: enough to check the page's shape."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.stack: list[str] = []
        self.errors: list[str] = []
        self.headings: list[int] = []
        self.ids: list[str] = []
        self.tags: Counter[str] = Counter()
        self.attrs: list[tuple[str, dict[str, str | None]]] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags[tag] += 1
        values = dict(attrs)
        self.attrs.append((tag, values))
        if values.get("id"):
            self.ids.append(str(values["id"]))
        if re.fullmatch(r"h[1-6]", tag):
            self.headings.append(int(tag[1]))
        if tag not in VOID:
            self.stack.append(tag)

    def handle_endtag(self, tag: str) -> None:
        if not self.stack or self.stack[-1] != tag:
            self.errors.append(f"</{tag}> closes {self.stack[-1:] or 'nothing'}")
            return
        self.stack.pop()


def outline(page: bytes) -> Outline:
    parser = Outline()
    parser.feed(page.decode("utf-8"))
    parser.close()
    assert not parser.errors
    assert not parser.stack
    return parser


def test_same_report_same_bytes() -> None:
    assert render_html(report("CN", "US", "CN")) == render_html(report("CN", "US", "CN"))
    assert render_html(report("CN")) != render_html(report("US"))


def test_the_page_loads_nothing_and_runs_nothing() -> None:
    page = render_html(report("CN", "US")).decode()
    for needle in ("<script", "http://", "https://", "src=", "href=", "url(", "@import", "on"):
        if needle == "on":
            assert not re.search(r"\son[a-z]+=", page)  # no event handler attributes
        else:
            assert needle not in page.lower(), needle


def test_one_chart_and_one_table_per_breakdown() -> None:
    page = render_html(report("CN", "US", "HK"))
    shape = outline(page)
    assert shape.tags["svg"] == len(CHARTS)
    # and the summary, the promise's counts, and one table of entries per request
    assert shape.tags["table"] == len(CHARTS) + 2 + 3
    assert shape.tags["caption"] == shape.tags["table"]
    text = page.decode()
    for name in CHARTS:
        section = text.split(f'<section aria-labelledby="{name}">', 1)[1].split("</section>", 1)[0]
        assert section.count("<svg") == 1
        assert section.count("<table>") == 1
        assert section.count("<caption>") == 1


def test_charts_are_named_and_bars_follow_the_counts() -> None:
    page = render_html(report("CN", "CN", "US"))
    shape = outline(page)
    for tag, attrs in shape.attrs:
        if tag == "svg":
            assert attrs["role"] == "img"
            assert attrs["aria-labelledby"] in shape.ids
    text = page.decode()
    chart = text.split('<section aria-labelledby="by-jurisdiction">', 1)[1].split("</svg>", 1)[0]
    widths = [int(w) for w in re.findall(r'<rect [^>]*width="(\d+)"', chart)]
    assert widths == [300, 150]  # CN 2, US 1: the longest bar is the largest count


def test_semantics_language_title_headings_and_unique_ids() -> None:
    page = render_html(report("CN"))
    text = page.decode()
    assert text.startswith('<!DOCTYPE html>\n<html lang="en">')
    assert (
        "<title>Government requests transparency report, 2020-05-01 to 2020-12-12</title>" in text
    )
    shape = outline(page)
    assert shape.headings[0] == 1
    assert shape.headings.count(1) == 1
    for before, after in zip(shape.headings, shape.headings[1:], strict=False):
        assert after <= before + 1  # no level skipped
    assert len(shape.ids) == len(set(shape.ids))
    assert shape.tags["main"] == 1
    for tag, attrs in shape.attrs:
        if tag == "th":
            assert attrs.get("scope") in ("col", "row")


def test_values_from_the_log_are_escaped() -> None:
    hostile = '<img src=x onerror="alert(1)">&'
    page = render_html(report(hostile, note='o\n<script>alert("x")</script>\n'))
    text = page.decode()
    assert "<img" not in text
    assert "<script" not in text
    assert "&lt;img src=x onerror=&quot;alert(1)&quot;&gt;&amp;" in text
    outline(page)


def test_no_requests_still_gives_a_chart_and_a_table() -> None:
    page = render_html(report())
    shape = outline(page)
    assert shape.tags["svg"] == len(CHARTS)
    assert "No requests in this period." in page.decode()


@pytest.mark.parametrize("codes", [("CN",), ("CN", "US", "HK", "MO", "TW")])
def test_the_page_states_what_it_was_computed_from(codes: tuple[str, ...]) -> None:
    r = report(*codes)
    params = stated_parameters(render_html(r), "html")
    assert (params.size, params.time, params.period) == (
        r.checkpoint.size,
        "2020-12-18T00:00:00Z",
        r.period,
    )
