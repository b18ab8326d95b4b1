"""Time as an input: the set clock replays a past instant; a bad instant is one clear error."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from meridian.clock import fixed_clock, parse_instant, set_clock, system_clock
from meridian.errors import InputError


def test_no_text_means_the_wall_clock() -> None:
    assert set_clock(None) is system_clock
    assert set_clock("") is system_clock
    assert system_clock().tzinfo is UTC


def test_a_set_clock_stays_on_its_instant_in_utc() -> None:
    clock = set_clock("2020-08-23T00:00:00+08:00")
    assert clock() == clock() == datetime(2020, 8, 22, 16, tzinfo=UTC)
    assert clock().tzinfo is UTC
    assert fixed_clock(datetime(2020, 5, 1, tzinfo=UTC))() == datetime(2020, 5, 1, tzinfo=UTC)


@pytest.mark.parametrize("text", ["yesterday", "2020-08-23T00:00:00", "2020-13-01T00:00:00Z"])
def test_a_bad_instant_is_one_line_naming_it(text: str) -> None:
    with pytest.raises(InputError) as caught:
        parse_instant(text, "MERIDIAN_CLOCK")
    message = str(caught.value)
    assert message.startswith(f"invalid instant `{text}` for `MERIDIAN_CLOCK`")
    assert "\n" not in message
