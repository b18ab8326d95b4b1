"""What the meeting timer finds due, on both databases: warnings and ends by plan minutes, and
empty meetings (the timer's own loop and its messages are in test_lifecycle.py)."""

from __future__ import annotations

from datetime import timedelta

import pytest
from tests.conftest import _instant

from meridian.identity.accounts import register
from meridian.identity.tokens import Caller
from meridian.meetings.lifecycle import due_meetings
from meridian.meetings.placement import Occupancy
from meridian.meetings.regions import region_table
from meridian.meetings.service import admit, create_meeting, leave

pytestmark = pytest.mark.storage

OPERATOR = Caller("tok_test", "operator")
EMPTY = timedelta(minutes=10)
WARN = timedelta(minutes=5)


def meeting(runtime) -> str:
    account = register(runtime, caller=OPERATOR, type="organization", name="A", country="US")
    made, _, _ = create_meeting(
        runtime,
        caller=OPERATOR,
        host_account_id=account.account.id,
        topic="t",
        countries=None,
        client_ip=None,
    )
    return made.id


def due(runtime, at: str) -> tuple[list[tuple[str, str]], list[tuple[str, str]]]:
    warn, end = due_meetings(runtime, _instant(at), empty_after=EMPTY, warn_before=WARN)
    # meetings created at the same instant come in id order (random ids): compared as sorted
    return sorted((d.meeting, d.kind) for d in warn), sorted((d.meeting, d.kind) for d in end)


def test_the_timer_finds_the_free_plans_minutes_and_empty_meetings(runtime, clock):
    clock.set("2021-03-01T10:00:00Z")
    full, empty = meeting(runtime), meeting(runtime)  # free plan: 40 minutes
    admission = admit(
        runtime,
        meeting_id=full,
        name="a",
        caller=None,
        client_ip="8.8.8.8",
        occupancy=Occupancy(region_table(runtime.engine.bundle)),
        uses={},
    )
    assert admission.participation is not None
    assert due(runtime, "2021-03-01T10:09:59Z") == ([], [])
    # `empty` was never joined: it is due ten minutes after its creation; `full` is not empty
    assert due(runtime, "2021-03-01T10:10:00Z") == ([], [(empty, "empty")])
    assert due(runtime, "2021-03-01T10:35:00Z") == (
        sorted([(full, "time_limit"), (empty, "time_limit")]),
        [(empty, "empty")],
    )
    # the participant leaves at 10:36: empty from then on
    clock.set("2021-03-01T10:36:00Z")
    leave(runtime, participation_id=admission.participation.id)
    warn, end = due_meetings(
        runtime, _instant("2021-03-01T10:38:00Z"), empty_after=EMPTY, warn_before=WARN
    )
    assert [(d.meeting, d.kind) for d in end] == [(empty, "empty")]
    assert warn[0].reason == (
        "this meeting ends in 2 minutes (at 10:40 UTC): "
        "the `free` plan allows 40 minutes per meeting"
    )
    assert due(runtime, "2021-03-01T10:40:00Z") == (
        [],
        sorted([(full, "time_limit"), (empty, "time_limit")]),
    )
