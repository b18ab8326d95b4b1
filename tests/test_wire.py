"""The wire's vocabularies: each close code and error code written once, in ``meridian.wire``."""

from __future__ import annotations

import ast
import contextlib
import io
import re
import tokenize
from pathlib import Path

import meridian
from meridian.wire import Close, ErrorCode

SRC = Path(meridian.__file__).parent
#: a close code written as a number next to a socket's close or a drop order's code
_CLOSE_CONTEXT = re.compile(r"close|code|disconnect", re.IGNORECASE)


#: the same words in other vocabularies: a US-CC claim, a count in the decision journal
_OTHER_WORDS = {
    ("geography/uscc.py", "invalid"),
    ("policy/loader.py", "invalid"),
    ("http/journal.py", "denied"),
}


def _sources() -> list[Path]:
    return sorted(p for p in SRC.rglob("*.py") if p.name != "wire.py")


def _numbers(path: Path) -> list[tuple[int, int, str]]:
    """Each integer literal of a module (not in its comments or strings), with its line."""
    out = []
    text = path.read_text()
    lines = text.splitlines()
    for tok in tokenize.generate_tokens(io.StringIO(text).readline):
        if tok.type == tokenize.NUMBER and tok.string.isdigit():
            out.append((int(tok.string), tok.start[0], lines[tok.start[0] - 1]))
    return out


def _strings(path: Path) -> list[tuple[object, int, str]]:
    """Each plain string literal of a module, with its line."""
    out = []
    text = path.read_text()
    lines = text.splitlines()
    for tok in tokenize.generate_tokens(io.StringIO(text).readline):
        if tok.type == tokenize.STRING:
            with contextlib.suppress(ValueError, SyntaxError):
                out.append((ast.literal_eval(tok.string), tok.start[0], lines[tok.start[0] - 1]))
    return out


def test_the_values_are_unique() -> None:
    assert len({m.value for m in Close}) == len(Close.__members__)
    assert len({m.value for m in ErrorCode}) == len(ErrorCode.__members__)


def test_the_codes_keep_their_values() -> None:
    assert (Close.REMOVED, Close.ENDED, Close.REGION_DOWN, Close.TOO_SLOW) == (4451, 4410, 4503, 1013)
    assert (ErrorCode.DENIED, ErrorCode.NOT_FOUND, ErrorCode.INVALID) == (
        "denied",
        "not_found",
        "invalid",
    )


def test_no_close_code_is_written_as_a_number_outside_wire() -> None:
    ours = {int(c) for c in Close if c >= 4000}
    common = {int(c) for c in Close if c < 4000}  # 1000 is also a plain limit elsewhere
    found = []
    for path in _sources():
        for value, line, text in _numbers(path):
            if value in ours or (value in common and _CLOSE_CONTEXT.search(text)):
                found.append(f"{path.relative_to(SRC)}:{line}: {text.strip()}")
    assert found == []


def test_no_error_code_is_written_as_a_string_outside_wire() -> None:
    codes = {c.value for c in ErrorCode} - {"error"}  # "error" is also the body's own key
    found = []
    for path in _sources():
        name = str(path.relative_to(SRC))
        for value, line, text in _strings(path):
            if value in codes and (name, value) not in _OTHER_WORDS:
                found.append(f"{name}:{line}: {text.strip()}")
    assert found == []
