"""The README's worked example prints what the README shows."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from typer.testing import CliRunner

from meridian.cli.app import app

README = Path(__file__).resolve().parents[1] / "README.md"


def test_the_worked_example_gives_the_shown_output() -> None:
    text = README.read_text(encoding="utf-8")
    command = re.search(r"echo '(\{[^']*?\})' \| \.venv/bin/meridian decide", text, re.S)
    assert command is not None, "the README's example command moved"
    shown = re.search(r"```json\n(.*?)```", text, re.S)
    assert shown is not None
    result = CliRunner().invoke(app, ["decide"], input=command.group(1))
    assert result.exit_code == 0
    assert json.loads(result.stdout) == json.loads(shown.group(1))


def _shown(script: str) -> list[str]:
    """The output a README block shows: its ``# `` lines that are not numbered step titles."""
    return [
        line[2:]
        for line in script.splitlines()
        if line.startswith("# ") and not re.match(r"# \d+\. ", line)
    ]


def _free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.mark.slow  # thirteen region nodes and a service, started as the README says
def test_the_service_walkthrough_prints_what_the_readme_shows(tmp_path: Path) -> None:
    """Serve the demo world as `make run` does, run the README's walkthrough, compare its output."""
    import os
    import subprocess
    import sys
    import time

    import httpx

    text = README.read_text(encoding="utf-8")
    block = re.search(r"<!-- walkthrough -->\n```sh\n(.*?)```", text, re.S)
    assert block is not None, "the README's walkthrough moved"
    script = block.group(1)
    expected = _shown(script)
    meetings_block = re.search(r"<!-- meetings -->\n```sh\n(.*?)```", text, re.S)
    assert meetings_block is not None, "the README's meetings walkthrough moved"
    meetings_script = meetings_block.group(1)
    legal_block = re.search(r"<!-- legal -->\n```sh\n(.*?)```", text, re.S)
    assert legal_block is not None, "the README's government-request walkthrough moved"
    legal_script = legal_block.group(1)
    repo = README.parent
    (tmp_path / ".venv").symlink_to(repo / ".venv")
    port = _free_port()
    env = {
        **os.environ,
        "MERIDIAN_PORT": str(port),
        "MERIDIAN_URL": f"http://127.0.0.1:{port}",
        "COLUMNS": "200",
    }
    env.pop("MERIDIAN_DATABASE_URL", None)
    env.pop("MERIDIAN_CLOCK", None)
    server = subprocess.Popen(
        [sys.executable, "-m", "meridian", "serve", "--demo"],
        cwd=tmp_path,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )
    try:
        deadline = time.monotonic() + 120  # thirteen region nodes start first
        while True:
            try:
                if httpx.get(f"http://127.0.0.1:{port}/v1/health").status_code == 200:
                    break
            except httpx.TransportError:
                pass
            assert server.poll() is None, server.stdout.read().decode() if server.stdout else ""
            assert time.monotonic() < deadline, "the service did not start"
            time.sleep(0.1)
        result, meetings, legal = (
            subprocess.run(
                ["bash", "-euo", "pipefail", "-c", block],
                cwd=tmp_path,
                env=env,
                capture_output=True,
                text=True,
                timeout=180,
                check=False,
            )
            for block in (script, meetings_script, legal_script)
        )
    finally:
        server.terminate()
        server.wait(timeout=30)
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert lines[: len(expected)] == expected
    rest = "\n".join(lines[len(expected) :])
    assert "subscriptions to move to a partner" in rest
    assert "cn-direct-sales-end" in rest
    # the meetings walkthrough: three real participants through real region nodes, twice
    assert meetings.returncode == 0, meetings.stderr
    assert meetings.stdout.splitlines() == _shown(meetings_script)
    # the government-request walkthrough: live participants, two operators, the report, the log
    assert legal.returncode == 0, legal.stderr
    assert legal.stdout.splitlines() == _shown(legal_script)
