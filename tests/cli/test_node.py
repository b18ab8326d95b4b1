"""``meridian scrape-token``: a long-lived admin credential for the nodes' counters."""

from __future__ import annotations

import time
from pathlib import Path

import pytest
from typer.testing import CliRunner

from meridian.cli.app import app
from meridian.errors import GrantError
from meridian.keys.grants import GrantVerifier, load_or_create_signing_key


@pytest.fixture
def key(tmp_path: Path) -> Path:
    path = tmp_path / "grant.key"
    load_or_create_signing_key(path, create=True)
    return path


def test_scrape_token_is_an_admin_credential_for_the_days_asked(key: Path) -> None:
    result = CliRunner().invoke(app, ["scrape-token", "--days", "7", "--grant-key", str(key)])
    assert result.exit_code == 0, result.output
    public = load_or_create_signing_key(key, create=False).public_key()
    grant = GrantVerifier(public, "US").verify(result.output.strip(), typ="admin")
    assert grant.dc == "*"
    assert abs(grant.expires - (time.time() + 7 * 86400)) < 60
    # it is no relay grant, nor any other kind
    with pytest.raises(GrantError):
        GrantVerifier(public, "US").verify(result.output.strip(), typ="relay")


def test_scrape_token_for_one_region_opens_only_that_node(key: Path) -> None:
    result = CliRunner().invoke(app, ["scrape-token", "-r", "de", "--grant-key", str(key)])
    public = load_or_create_signing_key(key, create=False).public_key()
    assert GrantVerifier(public, "DE").verify(result.output.strip(), typ="admin").dc == "DE"
    with pytest.raises(GrantError, match="grant for region `DE` presented to region `US`"):
        GrantVerifier(public, "US").verify(result.output.strip(), typ="admin")


@pytest.mark.parametrize(
    ("args", "code", "message"),
    [
        (["--region", "XX"], 2, "error: unknown region `XX`"),
        (["--days", "0"], 2, ""),
        (["--grant-key", "/nonexistent/grant.key"], 78, "error: grant signing key"),
    ],
    ids=["region", "days", "no-key"],
)
def test_scrape_token_refuses_with_one_line(key: Path, args, code, message) -> None:
    extra = [] if "--grant-key" in args else ["--grant-key", str(key)]
    result = CliRunner().invoke(app, ["scrape-token", *args, *extra])
    assert result.exit_code == code
    assert message in result.output
