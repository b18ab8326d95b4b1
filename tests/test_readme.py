"""The README's worked example prints what the README shows."""

from __future__ import annotations

import json
import re
from pathlib import Path

from typer.testing import CliRunner

from meridian.cli.app import app

README = Path(__file__).resolve().parents[1] / "README.md"


def test_the_worked_example_gives_the_shown_output() -> None:
    text = README.read_text(encoding="utf-8")
    command = re.search(r"echo '(\{.*?\})' \| \.venv/bin/meridian decide", text, re.S)
    assert command is not None, "the README's example command moved"
    shown = re.search(r"```json\n(.*?)```", text, re.S)
    assert shown is not None
    result = CliRunner().invoke(app, ["decide"], input=command.group(1))
    assert result.exit_code == 0
    assert json.loads(result.stdout) == json.loads(shown.group(1))
