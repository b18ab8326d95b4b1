"""The transparency report: what it counts, from which entries, and its JSON and CSV bytes."""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from typing import Any

import httpx
import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from fastapi import FastAPI
from tests.conftest import serve

from meridian.api.routes import reports as report_routes
from meridian.audit.log import Signed
from meridian.audit.merkle import RootBuilder, leaf_hash
from meridian.audit.note import Checkpoint, NoteSigner
from meridian.errors import InputError
from meridian.http.errors import install_error_handlers
from meridian.reports import model as t
from meridian.reports.compute import compute_report, default_period
from meridian.reports.model import Period, StatedCheckpoint
from meridian.reports.readback import stated_parameters
from meridian.reports.render import render, render_csv, render_json
from meridian.reports.verify import first_difference

ORIGIN = "meridian.test/log"

# -- building a log ----------------------------------------------------------------------------


def entry(action: str, subject_id: str | None, at: str, details: dict[str, Any]) -> bytes:
    """One log entry's bytes, as the lawful-request workflow writes them."""
    kind = "legal_request" if action.startswith("legal.") else "account"
    value = {
        "action": action,
        "actor": "operator:tok_reviewer",
        "at": at,
        "bundle": "sha256:" + "0" * 64,
        "decision": None,
        "details": details,
        "recorded_at": at,
        "subject": {"id": subject_id, "kind": kind},
        "v": 1,
    }
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()


def request(
    rid: str,
    at: str,
    *,
    outcome: str,
    jurisdiction: str = "CN",
    legal_type: str = "court_order",
    action: str = "end_meeting",
    accounts: tuple[str, ...] = (),
    participants: tuple[str, ...] = (),
    meetings: tuple[str, ...] = (),
    content: int = 0,
    non_content: int = 0,
    notice: str = "sent",
    notified: bool = False,
) -> list[bytes]:
    """The entries one request leaves in the log, up to ``outcome``."""
    entries = [
        entry(
            "legal.received",
            rid,
            at,
            {
                "recorded_by": "operator:tok_intake",
                "request": {
                    "action": action,
                    "authority": "Beijing Municipal Public Security Bureau",
                    "documents": ["order.pdf"],
                    "jurisdiction": jurisdiction,
                    "legal_type": legal_type,
                    "notice_delay_until": None,
                    "reference": "REF-SECRET-42",
                    "target": {"id": "mtg_june4", "kind": "meeting"},
                },
            },
        ),
        entry(
            "legal.scoped",
            rid,
            at,
            {
                "effects": [
                    {
                        "country": "HK",
                        "effect": "none",
                        "id": "acct_hk_host",
                        "in_scope": False,
                        "kind": "account",
                        "why": "outside CN",
                    }
                ],
                "jurisdiction": jurisdiction,
                "outcome": "none" if outcome == "rejected" else "full",
                "requested": action,
            },
        ),
    ]
    if outcome == "pending":
        return entries
    if outcome == "rejected":
        return [
            *entries,
            entry("legal.rejected", rid, at, {"by": "system:meridian", "reason": "x"}),
        ]
    entries.append(entry("legal.approved", rid, at, {"by": "operator:tok_second"}))
    entries.append(
        entry(
            "legal.applied",
            rid,
            at,
            {
                "accounts": list(accounts),
                "disclosures": {"content": content, "non_content": non_content},
                "meetings_ended": list(meetings),
                "notice": notice,
                "notice_delay_until": "2021-01-01T00:00:00Z" if notice == "delayed" else None,
                "outcome": outcome,
                "participants": list(participants),
            },
        )
    )
    if notified:
        entries.append(
            entry("legal.notified", rid, at, {"accounts": list(accounts), "delayed": True})
        )
    return entries


def june_2020() -> list[bytes]:
    """Requests around June 2020, with other entries between them."""
    noise = entry("account.created", "acct_x", "2020-05-02T00:00:00Z", {"name": "Wang Dan"})
    return [
        noise,
        *request("lr_before", "2020-04-30T23:59:59Z", outcome="applied", accounts=("acct_old",)),
        *request("lr_first", "2020-05-01T00:00:00Z", outcome="rejected", legal_type="subpoena"),
        *request(
            "lr_june4",
            "2020-06-03T09:00:00Z",
            outcome="narrowed",
            participants=("ptc_1", "ptc_2"),
            meetings=(),
            action="end_meeting",
        ),
        noise,
        *request(
            "lr_end",
            "2020-06-04T09:00:00Z",
            outcome="applied",
            meetings=("mtg_june4",),
            participants=("ptc_2", "ptc_3"),
            accounts=("acct_cn_host",),
        ),
        *request(
            "lr_warrant",
            "2020-06-05T07:00:00+08:00",
            outcome="applied",
            legal_type="warrant",
            action="disclose_content",
            accounts=("acct_cn_host", "acct_cn_2"),
            content=3,
            notice="delayed",
            notified=True,
        ),
        *request(
            "lr_subpoena",
            "2020-07-01T00:00:00Z",
            outcome="applied",
            legal_type="subpoena",
            action="disclose_non_content",
            accounts=("acct_cn_3",),
            non_content=2,
            notice="delayed",
        ),
        *request(
            "lr_us",
            "2020-12-12T23:59:59Z",
            outcome="pending",
            jurisdiction="US",
            legal_type="emergency",
            action="suspend_account",
        ),
        *request("lr_after", "2020-12-13T00:00:00Z", outcome="rejected", jurisdiction="US"),
    ]


def stated(size: int, at: str = "2020-12-18T00:00:00Z") -> StatedCheckpoint:
    time = datetime.fromisoformat(at)
    return StatedCheckpoint(ORIGIN, size, bytes(range(32)), time, f"{ORIGIN}\n{size}\n…\n")


PERIOD = Period(date(2020, 5, 1), date(2020, 12, 12))


def counts(pairs: tuple[tuple[str, int], ...]) -> dict[str, int]:
    return {k: v for k, v in pairs if v}


# -- what is counted ---------------------------------------------------------------------------


def test_counts_by_jurisdiction_type_action_and_outcome() -> None:
    log = june_2020()
    report = compute_report(log, stated(len(log)), PERIOD)
    assert report.requests == 6
    assert counts(report.by_jurisdiction) == {"CN": 5, "US": 1}
    assert counts(report.by_legal_type) == {
        "subpoena": 2,
        "warrant": 1,
        "court_order": 2,
        "emergency": 1,
    }
    assert counts(report.by_action) == {
        "end_meeting": 3,
        "disclose_content": 1,
        "disclose_non_content": 1,
        "suspend_account": 1,
    }
    assert dict(report.by_outcome) == {"rejected": 1, "narrowed": 1, "applied": 3, "pending": 1}


def test_distinct_people_disclosures_and_delayed_notice() -> None:
    log = june_2020()
    report = compute_report(log, stated(len(log)), PERIOD)
    # acct_cn_host is in two requests, ptc_2 in two: each counted once; acct_old is out of period
    assert (report.accounts, report.participants, report.meetings_ended) == (3, 3, 1)
    assert (report.disclosures_content, report.disclosures_non_content) == (3, 2)
    assert (report.notice_delayed, report.notice_delayed_then_notified) == (2, 1)


@pytest.mark.parametrize(
    ("start", "end", "expected"),
    [
        (date(2020, 5, 1), date(2020, 5, 1), 1),  # 2020-05-01T00:00:00Z is in, 04-30 23:59:59 not
        (date(2020, 4, 30), date(2020, 4, 30), 1),
        (date(2020, 12, 12), date(2020, 12, 12), 1),  # 23:59:59 on the last day is in
        (date(2020, 12, 13), date(2020, 12, 13), 1),
        (date(2020, 6, 4), date(2020, 6, 4), 2),  # 07:00+08:00 on the 5th is the 4th in UTC
        (date(2020, 6, 6), date(2020, 6, 30), 0),
    ],
    ids=["first-day", "day-before", "last-day", "day-after", "utc-day", "empty"],
)
def test_period_is_inclusive_dates_in_utc(start: date, end: date, expected: int) -> None:
    log = june_2020()
    assert compute_report(log, stated(len(log)), Period(start, end)).requests == expected


def test_entries_past_the_checkpoint_are_not_read() -> None:
    log = june_2020()
    received_us = next(i for i, e in enumerate(log) if b'"lr_us"' in e)
    # the checkpoint ends just after lr_us was received: lr_after and anything later are unseen
    cut = received_us + 1
    extra = request("lr_late", "2020-06-10T00:00:00Z", outcome="applied", accounts=("acct_z",))
    report = compute_report([*log, *extra], stated(cut), PERIOD)
    assert report.requests == 6
    assert report.accounts == 3
    # a decision written after the checkpoint does not count either: the request is pending
    applied = next(i for i, e in enumerate(log) if b"legal.applied" in e and b"lr_subpoena" in e)
    report = compute_report(log, stated(applied), PERIOD)
    assert report.requests == 5  # lr_us was received after this checkpoint
    assert dict(report.by_outcome)["pending"] == 1
    assert report.disclosures_non_content == 0


def test_indexed_entries_are_read_as_positions() -> None:
    log = june_2020()
    numbered = list(enumerate(log))
    assert compute_report(numbered, stated(len(log)), PERIOD) == compute_report(
        log, stated(len(log)), PERIOD
    )
    with pytest.raises(InputError, match="log entry 1 is missing"):
        compute_report([numbered[0], *numbered[2:]], stated(len(log)), PERIOD)


def test_a_log_shorter_than_its_checkpoint_is_refused() -> None:
    log = june_2020()
    with pytest.raises(InputError, match=f"the log ends at {len(log)} entries"):
        compute_report(log, stated(len(log) + 1), PERIOD)


def test_malformed_legal_entries_are_refused_with_their_index() -> None:
    bad = entry("legal.applied", "lr_1", "2020-06-01T00:00:00Z", {"outcome": "done"})
    with pytest.raises(InputError, match="log entry 0: unknown outcome `done`"):
        compute_report([bad], stated(1), PERIOD)
    with pytest.raises(InputError, match="log entry 0 is not json"):
        compute_report([b'{"action":"legal.applied", nope'], stated(1), PERIOD)
    # entries that are not a request's steps are not read at all (the export's verification
    # vouches for them)
    assert compute_report([b"{nope"], stated(1), PERIOD).requests == 0


def test_default_period_runs_from_the_first_to_the_last_request() -> None:
    log = june_2020()
    period = default_period(log, stated(len(log)))
    assert period == Period(date(2020, 4, 30), date(2020, 12, 13))
    assert default_period(log, stated(len(log)), start=date(2020, 6, 1)).end == date(2020, 12, 13)
    # no request yet: the checkpoint's day
    empty = default_period([], stated(0, "2020-05-09T12:00:00Z"))
    assert empty == Period(date(2020, 5, 9), date(2020, 5, 9))


def test_inputs_are_refused_in_one_line() -> None:
    with pytest.raises(InputError, match=r"^invalid date `2020-13-01` for `--from`: expected"):
        t.parse_day("2020-13-01", "--from")
    with pytest.raises(InputError, match="invalid date `20200501`"):
        t.parse_day("20200501", "--to")
    with pytest.raises(InputError, match="unknown report format `pdf`"):
        t.parse_format("pdf")
    with pytest.raises(InputError, match="starts `2020-12-12` after it ends `2020-05-01`"):
        Period(date(2020, 12, 12), date(2020, 5, 1))


# -- renderings --------------------------------------------------------------------------------


PRIVATE = [
    "acct_",
    "ptc_",
    "mtg_",
    "lr_",
    "tok_",
    "Wang Dan",
    "Beijing",
    "REF-SECRET",
    "order.pdf",
]


@pytest.mark.parametrize("fmt", ["json", "csv", "html"])
def test_each_format_is_deterministic_and_names_no_one(fmt: t.ReportFormat) -> None:
    log = june_2020()
    first = render(compute_report(log, stated(len(log)), PERIOD), fmt)
    again = render(compute_report(list(log), stated(len(log)), PERIOD), fmt)
    assert first == again
    text = first.decode("utf-8")
    for word in PRIVATE:
        assert word not in text, word


def test_json_is_canonical_and_states_its_checkpoint() -> None:
    log = june_2020()
    data = render_json(compute_report(log, stated(len(log)), PERIOD))
    doc = json.loads(data)
    assert (
        data
        == (
            json.dumps(doc, sort_keys=True, separators=(",", ":"), ensure_ascii=False) + "\n"
        ).encode()
    )
    assert doc["format"] == "meridian-transparency/1"
    assert doc["period"] == {"from": "2020-05-01", "to": "2020-12-12"}
    assert doc["checkpoint"] == {
        "note": f"{ORIGIN}\n{len(log)}\n…\n",
        "origin": ORIGIN,
        "root": "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=",
        "size": len(log),
        "time": "2020-12-18T00:00:00Z",
    }
    assert doc["requests"]["by_outcome"] == {
        "applied": 3,
        "narrowed": 1,
        "pending": 1,
        "rejected": 1,
    }
    assert doc["notice"] == {"delayed": 2, "delayed_then_notified": 1}


def test_csv_is_long_format_in_a_fixed_order() -> None:
    log = june_2020()
    data = render_csv(compute_report(log, stated(len(log)), PERIOD))
    assert b"\r" not in data
    assert data.endswith(b"\n")
    rows = list(csv.reader(io.StringIO(data.decode(), newline="")))
    assert rows[0] == ["dimension", "key", "value"]
    assert [r[:2] for r in rows[1:10]] == [
        ["report", "format"],
        ["period", "from"],
        ["period", "to"],
        ["checkpoint", "origin"],
        ["checkpoint", "size"],
        ["checkpoint", "root"],
        ["checkpoint", "time"],
        ["checkpoint", "note"],
        ["requests", "total"],
    ]
    assert rows[8][2] == f"{ORIGIN}\n{len(log)}\n…\n"  # the note survives, newlines and all
    dimensions = [r[0] for r in rows[10:]]
    assert dimensions == sorted(dimensions, key=dimensions.index)  # each dimension in one run
    assert list(dict.fromkeys(dimensions)) == [
        "jurisdiction",
        "legal_type",
        "action",
        "outcome",
        "affected",
        "disclosures",
        "notice",
        "outside_jurisdiction",
        "entries",
    ]
    table = {(r[0], r[1]): r[2] for r in rows[1:]}
    assert table["jurisdiction", "CN"] == "5"
    assert table["legal_type", "preservation"] == "0"  # zero rows are listed
    assert table["outcome", "pending"] == "1"
    assert all(r[2].isdigit() for r in rows[10:] if r[0] != "entries")
    # each counted request's entries are positions in the log
    assert all(all(p.isdigit() for p in r[2].split()) for r in rows[10:] if r[0] == "entries")


@pytest.mark.parametrize("fmt", ["json", "csv", "html"])
def test_a_report_states_what_to_recompute_it_from(fmt: t.ReportFormat) -> None:
    log = june_2020()
    data = render(compute_report(log, stated(len(log)), PERIOD), fmt)
    params = stated_parameters(data, fmt)
    assert (params.size, params.time, params.period) == (
        len(log),
        "2020-12-18T00:00:00Z",
        PERIOD,
    )
    with pytest.raises(InputError, match="does not state its checkpoint and period"):
        stated_parameters(b"dimension,key,value\n", fmt)


def test_first_difference_names_the_line_and_column() -> None:
    assert first_difference(b"a\nb\nc\n", b"a\nb\nc\n") is None
    mismatch = first_difference(b"a\nbcd\nc\n", b"a\nbCd\nc\n")
    assert mismatch is not None
    assert str(mismatch) == "differs at line 2, column 2: expected `bcd`, found `bCd`"
    short = first_difference(b"a\nb\n", b"a\n")
    assert short is not None
    assert (short.line, short.column, short.expected, short.found) == (2, 1, "b", "")
    longer = first_difference(b"a\n", b"a\n\nx")
    assert longer is not None
    assert (longer.line, longer.expected) == (3, "(end of file)")
    # a long line (JSON is one) is shown around the difference
    wide = first_difference(b"x" * 100 + b"1" + b"y" * 100, b"x" * 100 + b"2" + b"y" * 100)
    assert wide is not None
    assert (wide.line, wide.column) == (1, 101)
    assert wide.expected == "…" + "x" * 30 + "1" + "y" * 29 + "…"


# -- over HTTP ---------------------------------------------------------------------------------


@dataclass
class FakeLog:
    """A live log over a list of entries, with real signed checkpoints."""

    log: list[bytes]
    signer: NoteSigner = field(
        default_factory=lambda: NoteSigner(ORIGIN, Ed25519PrivateKey.generate())
    )
    issued: int = 0
    last: Signed | None = None

    def checkpoint(self, *, force: bool = False) -> Signed:
        builder = RootBuilder()
        for item in self.log:
            builder.push(leaf_hash(item))
        cp = Checkpoint(ORIGIN, len(self.log), builder.root(), datetime(2020, 12, 18, tzinfo=UTC))
        self.issued += 1
        self.last = Signed(self.signer.sign(cp), cp)
        return self.last

    def latest(self) -> Signed | None:
        return self.last

    def entries(self, start: int, end: int) -> Any:
        return iter(list(enumerate(self.log))[start:end])

    def guard(self) -> None:
        """Nothing to refuse: this log is only ever what the test wrote."""


@dataclass
class FakeRuntime:
    log: FakeLog


@pytest.fixture
def api() -> Iterator[tuple[httpx.Client, FakeLog]]:
    """The reports router on a real server on loopback, over a fake live log."""
    app = FastAPI()
    install_error_handlers(app)
    app.include_router(report_routes.router)
    fake = FakeLog(june_2020())
    app.state.runtime = FakeRuntime(fake)
    url, stop = serve(app)
    try:
        with httpx.Client(base_url=url, timeout=30) as client:
            yield client, fake
    finally:
        stop()


@pytest.mark.parametrize(
    ("fmt", "content_type"),
    [
        ("json", "application/json"),
        ("csv", "text/csv; charset=utf-8"),
        ("html", "text/html; charset=utf-8"),
    ],
)
def test_api_serves_each_format_with_its_type_and_the_same_bytes(
    api: tuple[httpx.Client, FakeLog], fmt: t.ReportFormat, content_type: str
) -> None:
    client, fake = api
    response = client.get(
        "/v1/reports/transparency", params={"from": "2020-05-01", "to": "2020-12-12", "format": fmt}
    )
    assert response.status_code == 200
    assert response.headers["content-type"] == content_type
    signed = fake.checkpoint()
    expected = compute_report(fake.log, StatedCheckpoint.of(signed.checkpoint, signed.note), PERIOD)
    assert response.content == render(expected, fmt)


def test_api_defaults_to_json_over_every_request(api: tuple[httpx.Client, FakeLog]) -> None:
    client, _ = api
    doc = client.get("/v1/reports/transparency").json()
    assert doc["period"] == {"from": "2020-04-30", "to": "2020-12-13"}
    assert doc["requests"]["total"] == 8


@pytest.mark.parametrize(
    ("params", "message"),
    [
        ({"from": "2020-5-1"}, "invalid date `2020-5-1` for `from`: expected YYYY-MM-DD"),
        ({"to": "tomorrow"}, "invalid date `tomorrow` for `to`"),
        ({"format": "pdf"}, "unknown report format `pdf` for `format`"),
        (
            {"from": "2020-12-12", "to": "2020-05-01"},
            "the period starts `2020-12-12` after it ends `2020-05-01`",
        ),
    ],
    ids=["from", "to", "format", "reversed"],
)
def test_api_refuses_bad_dates_and_formats_in_one_line(
    api: tuple[httpx.Client, FakeLog], params: dict[str, str], message: str
) -> None:
    client, _ = api
    response = client.get("/v1/reports/transparency", params=params)
    assert response.status_code == 422
    error = response.json()["error"]
    assert error["code"] == "invalid"
    assert error["message"].startswith(message)
    assert "\n" not in error["message"]
