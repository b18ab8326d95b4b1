"""The service's commands on a real database: policy load, create-token, renew, transition."""

from __future__ import annotations

import json

import pytest
from typer.testing import CliRunner

from meridian.cli.app import app
from meridian.policy.loader import default_bundle_path

pytestmark = pytest.mark.storage

runner = CliRunner()


def run(database_url: str, *args: str, clock: str | None = None):
    env = {"MERIDIAN_DATABASE_URL": database_url}
    if clock:
        env["MERIDIAN_CLOCK"] = clock
    return runner.invoke(app, list(args), env=env)


@pytest.fixture
def seeded(runtime, clock):
    """The demo world, replayed on the test's database."""
    from meridian.demo import seed_demo

    clock.set("2020-08-01T00:00:00Z")
    assert seed_demo(runtime)
    assert not seed_demo(runtime)  # once only
    return runtime


def test_create_token_prints_it_once_and_stores_only_its_hash(database_url):
    made = run(database_url, "admin", "add-operator", "CI")
    person = made.stderr.split("operator `CI` ")[1].split(",")[0]
    result = run(
        database_url,
        "admin",
        "create-token",
        "--role",
        "operator",
        "--operator",
        person,
        "--name",
        "ci",
    )
    assert result.exit_code == 0, result.stderr
    secret = result.stdout.strip()
    assert secret.startswith("mrd_operator_")
    assert "created operator token tok_" in result.stderr
    bad = run(database_url, "admin", "create-token", "--role", "partner", "--partner", "nobody")
    assert bad.exit_code == 1
    assert bad.stderr.strip() == "error: no partner `nobody`"
    role = run(database_url, "admin", "create-token", "--role", "root")
    assert role.exit_code == 2
    assert "unknown role `root`" in role.stderr


def test_policy_load_refuses_an_invalid_bundle_whole_and_loads_a_valid_one(database_url, tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text("bundle: x\nversion: '1'\nrules: [{id: 1}]\n", encoding="utf-8")
    refused = run(database_url, "policy", "load", str(bad))
    assert refused.exit_code == 2
    assert refused.stderr.startswith(f"error: {bad}:")
    text = default_bundle_path().read_text(encoding="utf-8")
    good = tmp_path / "good.yaml"
    good.write_text(text.replace('version: "2020.12.18"', 'version: "2026.1"'), encoding="utf-8")
    loaded = run(database_url, "policy", "load", str(good))
    assert loaded.exit_code == 0, loaded.stderr
    assert "version `2026.1` now in force" in loaded.stdout
    again = run(database_url, "policy", "load", str(good))
    assert "already in force" in again.stdout
    missing = run(database_url, "policy", "load", str(tmp_path / "nope.yaml"))
    assert missing.exit_code == 1


def test_a_running_service_picks_up_a_loaded_bundle(runtime, tmp_path, database_url):
    before = runtime.digest
    text = (
        default_bundle_path()
        .read_text(encoding="utf-8")
        .replace('version: "2020.12.18"', 'version: "2026.2"')
    )
    path = tmp_path / "b.yaml"
    path.write_text(text, encoding="utf-8")
    assert run(database_url, "policy", "load", str(path)).exit_code == 0
    assert runtime.refresh() is True
    assert runtime.digest != before
    assert runtime.engine.bundle.ref.version == "2026.2"
    assert runtime.refresh() is False


def test_transition_dry_run_then_apply(seeded, database_url):
    dry = run(
        database_url,
        "commerce",
        "transition",
        "--jurisdiction",
        "cn",
        "--at",
        "2020-08-23",
        "--json",
    )
    assert dry.exit_code == 0, dry.stderr
    report = json.loads(dry.stdout)
    assert report["counts"]["subscription_transfer"] == 1
    assert report["applied"] is False
    table = run(database_url, "commerce", "transition", "-j", "CN", "--at", "2020-08-23")
    assert "subscriptions to move to a partner" in table.stdout
    assert "dry run: nothing changed" in table.stdout
    applied = run(
        database_url,
        "commerce",
        "transition",
        "-j",
        "CN",
        "--at",
        "2020-08-23",
        "--apply",
        "--json",
    )
    assert json.loads(applied.stdout)["items"][0]["applied"] is True
    bad = run(database_url, "commerce", "transition", "-j", "XX", "--at", "2020-08-23")
    assert bad.exit_code == 2
    assert "unknown jurisdiction `XX`" in bad.stderr
    bad_at = run(database_url, "commerce", "transition", "-j", "CN", "--at", "2020-13-45")
    assert bad_at.exit_code == 2
    assert "invalid date `2020-13-45`" in bad_at.stderr


def test_renew_moves_the_cn_direct_subscription_and_renews_the_rest(seeded, database_url):
    result = run(database_url, "commerce", "renew", "--at", "2021-08-01T00:00:00Z", "--json")
    assert result.exit_code == 0, result.stderr
    summary = json.loads(result.stdout)
    # HK pro (online, year from 2020-06-01) and US enterprise (direct, year from 2020-02-03) renew;
    # the CN direct business year (from 2020-07-15) falls due after the cutover and must move.
    # (and the two hosts of the June 2020 meetings, pro online yearly from May 2020)
    assert (summary["renewed"], summary["transfer_required"]) == (4, 1)
    again = run(database_url, "commerce", "renew", "--at", "2021-08-01T00:00:00Z")
    assert "0 renewed" in again.stdout


def test_commands_explain_bad_databases(tmp_path):
    result = runner.invoke(app, ["commerce", "renew"], env={"MERIDIAN_DATABASE_URL": "mysql://x/y"})
    assert result.exit_code == 78
    assert "not a supported database url" in result.stderr
    assert "Traceback" not in result.stderr + result.stdout


def test_help_lists_the_service_commands():
    result = runner.invoke(app, ["--help"])
    for name in ("serve", "admin", "commerce", "policy"):
        assert name in result.stdout


def test_revoke_token(database_url):
    made = run(database_url, "admin", "add-operator", "Ops")
    token_id = made.stderr.split("first token ")[-1].strip()
    revoked = run(database_url, "admin", "revoke-token", token_id)
    assert revoked.exit_code == 0, revoked.stderr
    assert revoked.stdout.startswith(f"revoked {token_id} at ")
    missing = run(database_url, "admin", "revoke-token", "tok_nope")
    assert missing.exit_code == 1
    assert missing.stderr.strip() == "error: no token `tok_nope`"


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
def test_grant_key_is_made_in_development_and_required_in_production(tmp_path, database_url):
    from meridian.keys.grants import load_or_create_signing_key, public_key_b64

    key_path = tmp_path / "grant.key"
    made = runner.invoke(app, ["admin", "grant-key"], env={"MERIDIAN_GRANT_KEY": str(key_path)})
    assert made.exit_code == 0, made.stderr
    key = load_or_create_signing_key(key_path, create=False)
    assert made.stdout.strip() == public_key_b64(key.public_key())
    missing = runner.invoke(
        app,
        ["admin", "grant-key"],
        env={"MERIDIAN_GRANT_KEY": str(tmp_path / "none.key"), "MERIDIAN_MODE": "production"},
    )
    assert missing.exit_code == 78
    assert "does not exist" in missing.stderr


def test_add_operator_prints_the_first_token_once_and_refuses_a_second_of_the_name(database_url):
    made = run(database_url, "admin", "add-operator", "Alex Chen", "--email", "alex@example.org")
    assert made.exit_code == 0, made.stderr
    secret = made.stdout.strip()
    assert secret.startswith("mrd_operator_")
    assert "added operator `Alex Chen` psn_" in made.stderr
    person = made.stderr.split("operator `Alex Chen` ")[1].split(",")[0]
    again = run(database_url, "admin", "add-operator", "alex chen")
    assert again.exit_code == 1
    assert again.stderr.startswith("error: operator `alex chen` exists already")
    # a second token for the same person, out of band; an operator token needs its person
    second = run(database_url, "admin", "create-token", "--role", "operator", "--operator", person)
    assert second.exit_code == 0, second.stderr
    assert f"for operator {person}" in second.stderr
    orphan = run(database_url, "admin", "create-token", "--role", "operator")
    assert orphan.exit_code == 2
    assert "an operator token needs `person`" in orphan.stderr
    listed = run(database_url, "admin", "list-operators")
    assert listed.exit_code == 0, listed.stderr
    assert f"{person}  Alex Chen <alex@example.org>  2 tokens" in listed.stdout
    removed = run(database_url, "admin", "remove-operator", person)
    assert removed.exit_code == 0, removed.stderr
    assert removed.stdout.strip() == f"removed operator {person} (`Alex Chen`): 2 tokens revoked"


def test_create_token_can_set_an_expiry(database_url):
    made = run(database_url, "admin", "add-operator", "Ops")
    person = made.stderr.split("operator `Ops` ")[1].split(",")[0]
    result = run(
        database_url,
        "admin",
        "create-token",
        "--role",
        "operator",
        "--operator",
        person,
        "--expires-at",
        "2999-01-01T00:00:00Z",
    )
    assert result.exit_code == 0, result.stderr
    assert "expires 2999-01-01T00:00:00+00:00" in result.stderr
    past = run(
        database_url,
        "admin",
        "create-token",
        "--role",
        "operator",
        "--operator",
        person,
        "--expires-at",
        "2000-01-01T00:00:00Z",
    )
    assert past.exit_code == 2
    assert "is not after now" in past.stderr


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
def test_serve_demo_is_refused_in_production(database_url, tmp_path):
    result = runner.invoke(
        app,
        ["serve", "--demo"],
        env={
            "MERIDIAN_DATABASE_URL": database_url,
            "MERIDIAN_MODE": "production",
            "MERIDIAN_NODES": "none",
        },
    )
    assert result.exit_code == 78
    assert result.stderr.strip() == (
        "error: `--demo` is refused in production (MERIDIAN_MODE=production): "
        "the demo seeds accounts and prints operator tokens"
    )
    assert result.stdout == ""


def test_a_demo_restart_revokes_the_earlier_demo_tokens(runtime, clock, tmp_path, monkeypatch):
    from rich.console import Console

    from meridian.cli.service import _demo
    from meridian.errors import AuthenticationError
    from meridian.http.deps import TokenCache

    def caller(secret):
        return TokenCache().get(runtime, secret)  # a fresh cache: the database's answer

    def tokens():
        return {p.stem: p.read_text().strip() for p in (tmp_path / "var").glob("*.token")}

    monkeypatch.chdir(tmp_path)
    clock.set("2020-08-01T00:00:00Z")
    console = Console(file=open(tmp_path / "out.txt", "w"))  # noqa: SIM115
    _demo(runtime, console)
    first = tokens()
    assert {"operator", "operator2", "bizconf", "us-host"} <= set(first)
    _demo(runtime, console)  # the next `make run`
    second = tokens()
    assert set(second) == set(first)
    for secret in first.values():
        with pytest.raises(AuthenticationError, match="invalid or revoked api token"):
            caller(secret)
    callers = {name: caller(secret) for name, secret in second.items()}
    # the two demo operators are two people, the same two on every start
    assert callers["operator"].person_id != callers["operator2"].person_id
    _demo(runtime, console)
    assert caller(tokens()["operator"]).person_id == callers["operator"].person_id


def test_create_token_refuses_a_name_with_a_bidi_override(database_url):
    result = run(database_url, "admin", "create-token", "--role", "operator", "--name", "ops\u202eevil")
    assert result.exit_code == 2, result.stdout
    assert result.stderr.startswith("error: invalid token name `ops")
    assert "U+202E" in result.stderr
    assert "Traceback" not in result.stderr
