"""Checkpoint thinning: every checkpoint of the last day, one an hour for a week, one a day
after; listed by page; the database keeps them all."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from meridian.audit import Actor, record
from meridian.audit.log import AuditLog
from meridian.audit.note import NoteSigner, load_or_create_log_key
from meridian.audit.thinning import Thinning

NOW = datetime(2026, 12, 3, 12, 0, tzinfo=UTC)


def _rows(ages: list[timedelta]) -> list[tuple[int, int, datetime]]:
    # oldest first: id and size grow with time
    ordered = sorted(ages, reverse=True)
    return [(i, i * 10, NOW - age) for i, age in enumerate(ordered, 1)]


def test_every_recent_checkpoint_is_kept_then_one_an_hour_then_one_a_day() -> None:
    minutes = [timedelta(minutes=m) for m in range(0, 24 * 60, 10)]  # the last day: 144
    hours = [timedelta(days=1, minutes=m) for m in range(5, 6 * 24 * 60, 20)]  # days 1–7
    days = [timedelta(days=7, hours=h) for h in range(1, 30 * 24, 3)]  # a month more
    rows = _rows(minutes + hours + days)
    kept = Thinning().kept(rows, NOW)
    at = {i: t for i, _, t in rows}
    assert kept == sorted(kept, reverse=True)  # newest first
    recent = [i for i in kept if NOW - at[i] < timedelta(days=1)]
    assert len(recent) == len(minutes)
    hourly = [at[i] for i in kept if timedelta(days=1) <= NOW - at[i] < timedelta(days=7)]
    buckets = {t.replace(minute=0, second=0) for t in hourly}
    assert len(buckets) == len(hourly)  # one an hour
    assert 6 * 24 - 2 <= len(hourly) <= 6 * 24 + 1
    daily = [at[i] for i in kept if NOW - at[i] >= timedelta(days=7)]
    assert len({t.date() for t in daily}) == len(daily)
    assert 29 <= len(daily) <= 31
    # the one kept of an hour is its newest
    for t in hourly:
        hour = t.replace(minute=0, second=0)
        same = [x for x in at.values() if x.replace(minute=0, second=0) == hour]
        assert t == max(same)


def test_the_newest_is_kept_however_old() -> None:
    rows = _rows([timedelta(days=40), timedelta(days=40, minutes=5)])
    assert Thinning().kept(rows, NOW) == [2]


def test_the_windows_are_configurable() -> None:
    rows = _rows([timedelta(minutes=m) for m in range(0, 180, 10)])
    assert len(Thinning(keep_all=timedelta(0), keep_hourly=timedelta(0)).kept(rows, NOW)) <= 2
    assert len(Thinning(keep_all=timedelta(hours=3)).kept(rows, NOW)) == 18


def test_the_log_lists_the_kept_checkpoints_by_page(db, tmp_path) -> None:
    now = [NOW - timedelta(days=10)]
    key = load_or_create_log_key(tmp_path / "log.key", create=True)
    log = AuditLog(db, NoteSigner("test.example/log", key), clock=lambda: now[0])
    for step in range(10 * 24):  # one checkpoint an hour for ten days
        with db.write() as session:
            record(
                session,
                actor=Actor("test", "thin"),
                action="test.write",
                subject_kind="counter",
                subject_id=str(step),
                at=now[0],
                bundle_digest="sha256:" + "0" * 64,
            )
        log.checkpoint()
        now[0] += timedelta(hours=1)
    now[0] -= timedelta(hours=1)
    thinning = Thinning()
    first, count = log.thinned(thinning, limit=50)
    # 24 of the last day, 6 × 24 hourly, 3 days at one each (the day of the 7-day edge shared)
    assert 24 + 6 * 24 <= count <= 24 + 6 * 24 + 4
    assert len(first) == 50
    sizes = [s.checkpoint.size for s in first]
    assert sizes == sorted(sizes, reverse=True)
    assert sizes[0] == 240
    pages = [first]
    offset = 50
    while offset < count:
        page, _ = log.thinned(thinning, offset=offset, limit=50)
        pages.append(page)
        offset += 50
    listed = [s.checkpoint.size for page in pages for s in page]
    assert len(listed) == len(set(listed)) == count
    # the first day (checkpoints of sizes 1–12, from 12:00 to 23:00) keeps its newest
    assert listed[-1] == 12
    # the database keeps them all
    assert len(log.checkpoints()) == 240
