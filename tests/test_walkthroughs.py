"""The documented examples print what the documentation shows: the worked decision in
docs/decisions.md, and the walkthroughs in docs/walkthroughs.md against the demo world."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from typer.testing import CliRunner

from meridian.cli.app import app

ROOT = Path(__file__).resolve().parents[1]
DECISIONS = ROOT / "docs" / "decisions.md"
WALKTHROUGHS = ROOT / "docs" / "walkthroughs.md"


def test_the_worked_example_gives_the_shown_output() -> None:
    text = DECISIONS.read_text(encoding="utf-8")
    command = re.search(r"echo '(\{[^']*?\})' \| \.venv/bin/meridian decide", text, re.S)
    assert command is not None, "the worked example's command moved out of docs/decisions.md"
    shown = re.search(r"```json\n(.*?)```", text, re.S)
    assert shown is not None
    result = CliRunner().invoke(app, ["decide"], input=command.group(1))
    assert result.exit_code == 0
    assert json.loads(result.stdout) == json.loads(shown.group(1))


def _shown(script: str) -> list[str]:
    """The output a walkthrough block shows: its ``# `` lines that are not numbered step titles."""
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


@pytest.mark.slow  # about three minutes here: the demo world and thirteen region nodes
def test_the_service_walkthrough_prints_what_the_docs_show(tmp_path: Path) -> None:
    """Serve the demo world as `make run` does, run the walkthroughs, compare their output."""
    import os
    import subprocess
    import sys
    import time

    import httpx

    text = WALKTHROUGHS.read_text(encoding="utf-8")
    block = re.search(r"<!-- walkthrough -->\n```sh\n(.*?)```", text, re.S)
    assert block is not None, "the service walkthrough moved out of docs/walkthroughs.md"
    script = block.group(1)
    expected = _shown(script)
    meetings_block = re.search(r"<!-- meetings -->\n```sh\n(.*?)```", text, re.S)
    assert meetings_block is not None, "the meetings walkthrough moved out of docs/walkthroughs.md"
    meetings_script = meetings_block.group(1)
    legal_block = re.search(r"<!-- legal -->\n```sh\n(.*?)```", text, re.S)
    assert legal_block is not None, "the legal walkthrough moved out of docs/walkthroughs.md"
    legal_script = legal_block.group(1)
    repo = ROOT
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


@pytest.mark.slow  # a demo world on a set clock, no region nodes: about half a minute here
def test_the_policy_change_walkthrough_prints_what_the_docs_show(tmp_path: Path) -> None:
    """Propose moving the CN cutover by a week, read its diff and replay, approve it as a second
    operator, see it come into force at its instant: on a service whose clock is set."""
    import os
    import subprocess
    import sys
    import time

    import httpx

    text = WALKTHROUGHS.read_text(encoding="utf-8")
    block = re.search(r"<!-- policy-change -->\n```sh\n(.*?)```", text, re.S)
    assert block is not None, "the policy-change walkthrough moved out of docs/walkthroughs.md"
    script = block.group(1)
    (tmp_path / ".venv").symlink_to(ROOT / ".venv")
    (tmp_path / "src").symlink_to(ROOT / "src")
    port = _free_port()
    env = {
        **os.environ,
        "MERIDIAN_PORT": str(port),
        "MERIDIAN_URL": f"http://127.0.0.1:{port}",
        "MERIDIAN_CLOCK": "2020-08-25T10:00:00+08:00",
        "MERIDIAN_NODES": "none",
        "MERIDIAN_POLICY_POLL_INTERVAL": "0.2",
        "COLUMNS": "200",
    }
    env.pop("MERIDIAN_DATABASE_URL", None)
    env.pop("MERIDIAN_TOKEN", None)
    server = subprocess.Popen(
        [sys.executable, "-m", "meridian", "serve", "--demo"],
        cwd=tmp_path,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )
    try:
        deadline = time.monotonic() + 120
        while True:
            try:
                if httpx.get(f"http://127.0.0.1:{port}/v1/health").status_code == 200:
                    break
            except httpx.TransportError:
                pass
            assert server.poll() is None, server.stdout.read().decode() if server.stdout else ""
            assert time.monotonic() < deadline, "the service did not start"
            time.sleep(0.1)
        # the commands name their own clock; the service's is the environment's
        commands = {k: v for k, v in env.items() if k != "MERIDIAN_CLOCK"}
        result = subprocess.run(
            ["bash", "-euo", "pipefail", "-c", script],
            cwd=tmp_path,
            env=commands,
            capture_output=True,
            text=True,
            timeout=300,
            check=False,
        )
    finally:
        server.terminate()
        server.wait(timeout=30)
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines() == _shown(script)
