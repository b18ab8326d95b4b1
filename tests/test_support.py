"""The polling helpers fail at their deadline, saying what they last saw."""

from __future__ import annotations

import asyncio
import itertools
import threading

import pytest
from tests.support import aeventually, aeventually_in_thread, eventually


def test_eventually_returns_the_first_true_value():
    counter = itertools.count()
    assert eventually(lambda: next(counter) >= 3 and "done", interval=0) == "done"


def test_eventually_fails_at_its_deadline_with_what_it_last_saw():
    with pytest.raises(AssertionError, match=r"not within 0.1 s: the count; last seen: 0"):
        eventually(lambda: 0, timeout=0.1, what="the count")


def test_an_assertion_inside_the_check_is_shown_when_time_runs_out():
    def check() -> bool:
        raise AssertionError("two of three")

    with pytest.raises(
        AssertionError, match=r"not within 0.1 s: check; last seen: assertion: two of three"
    ):
        eventually(check, timeout=0.1)


def test_aeventually_fails_at_its_deadline_too():
    async def never() -> list[str]:
        return []

    with pytest.raises(AssertionError, match=r"not within 0.1 s: the roster; last seen: \[\]"):
        asyncio.run(aeventually(never, timeout=0.1, what="the roster"))


def test_aeventually_in_thread_runs_a_blocking_check_off_the_loop_and_names_it():
    loop_thread = threading.get_ident()
    threads: list[int] = []

    def blocking_count() -> int:
        threads.append(threading.get_ident())
        return len(threads) >= 3 and len(threads)

    assert asyncio.run(aeventually_in_thread(blocking_count, interval=0.01)) == 3
    assert loop_thread not in threads

    def never() -> int:
        return 0

    with pytest.raises(AssertionError, match=r"not within 0.1 s: never; last seen: 0"):
        asyncio.run(aeventually_in_thread(never, timeout=0.1))
