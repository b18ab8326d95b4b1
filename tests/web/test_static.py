"""The pages' scripts speak the wire as :mod:`meridian.wire` names it."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from meridian.wire import Close

SCRIPTS = Path(__file__).parents[2] / "src" / "meridian" / "web" / "static" / "js"

#: ``const CLOSE_REMOVED = 4451;``: a close code a script reads, named as in :class:`Close`
_CLOSE = re.compile(r"\bconst\s+CLOSE_([A-Z_]+)\s*=\s*(\d+)\s*;")


def _close_constants() -> list[tuple[str, str, int]]:
    return [
        (script.name, name, int(value))
        for script in sorted(SCRIPTS.glob("*.js"))
        for name, value in _CLOSE.findall(script.read_text(encoding="utf-8"))
    ]


def test_the_meeting_page_reads_close_codes() -> None:
    assert {name for script, name, _ in _close_constants() if script == "meeting.js"} >= {
        "REMOVED",
        "ENDED",
    }


@pytest.mark.parametrize(("script", "name", "value"), _close_constants())
def test_a_scripts_close_code_is_the_one_wire_names(script: str, name: str, value: int) -> None:
    assert name in Close.__members__, f"{script}: CLOSE_{name} is no close code in meridian.wire"
    assert value == Close[name], (
        f"{script}: CLOSE_{name} is {value}, meridian.wire says {Close[name].value}"
    )
