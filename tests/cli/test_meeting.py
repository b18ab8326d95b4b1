"""``meridian meeting end``: a host ends a meeting through the API, with its token."""

from __future__ import annotations

from typing import Any

import pytest
from typer.testing import CliRunner

from meridian.cli.app import app

pytestmark = pytest.mark.storage

runner = CliRunner()


def host_meeting(live: Any) -> tuple[str, str]:
    ops = live.client("operator")
    body = {"type": "organization", "name": "Host", "country": "US"}
    account = ops.post("/v1/accounts", json=body).json()["account"]["id"]
    token = live.token(account, role="user", account_id=account)
    r = live.client(account).post("/v1/meetings", json={"topic": "Board"})
    assert r.status_code == 201, r.text
    return token, str(r.json()["meeting"]["id"])


def end(live: Any, meeting: str, token: str | None) -> Any:
    env = {"MERIDIAN_CONTROL_URL": live.url}
    if token is not None:
        env["MERIDIAN_TOKEN"] = token
    return runner.invoke(app, ["meeting", "end", meeting], env=env)


def test_the_host_ends_a_meeting_from_the_command_line(live):
    token, meeting = host_meeting(live)
    result = end(live, meeting, token)
    assert result.exit_code == 0, result.output
    assert result.output.startswith(f"meeting `{meeting}` ended at ")
    got = live.client("operator").get(f"/v1/meetings/{meeting}").json()
    assert got["status"] == "ended"
    records = (
        live.client("operator")
        .get("/v1/records", params={"action": "meeting.end", "subject": meeting})
        .json()["data"]
    )
    assert [r["actor"].split(":")[0] for r in records] == ["user"]
    # again: one line, exit 1 (a conflict)
    again = end(live, meeting, token)
    assert again.exit_code == 1
    assert again.output.strip() == f"error: meeting `{meeting}` has already ended"


def test_ending_needs_a_token_and_a_meeting_the_token_may_see(live):
    token, meeting = host_meeting(live)
    other, _ = host_meeting(live)
    missing = end(live, meeting, None)
    assert missing.exit_code == 2
    assert "MERIDIAN_TOKEN" in missing.output
    foreign = end(live, meeting, other)
    assert foreign.exit_code == 1
    assert foreign.output.strip() == f"error: no meeting `{meeting}`"
    bad = end(live, meeting, "not-a-token")
    assert bad.exit_code == 77
    assert live.client("operator").get(f"/v1/meetings/{meeting}").json()["status"] == "live"
    assert end(live, meeting, token).exit_code == 0
