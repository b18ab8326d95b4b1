"""Key and token files: created 0600 from the first byte; one open to others refused in production."""

from __future__ import annotations

import io
import os
import stat

import pytest

from meridian.errors import ConfigurationError
from meridian.keyfiles import load_or_create_ed25519, load_or_create_secret, write_private


@pytest.fixture
def loose_umask():
    old = os.umask(0o022)
    yield
    os.umask(old)


def _mode(path) -> int:
    return stat.S_IMODE(os.stat(path).st_mode)


def test_keys_are_created_0600(tmp_path, loose_umask):
    load_or_create_ed25519(tmp_path / "log.key", create=True, what="log key", setting="X")
    load_or_create_secret(tmp_path / "session.key", create=True, what="session key", setting="Y")
    assert _mode(tmp_path / "log.key") == 0o600
    assert _mode(tmp_path / "session.key") == 0o600


def test_a_secret_file_is_created_private_and_replaces_an_open_one(tmp_path, loose_umask):
    path = tmp_path / "operator.token"
    path.write_text("old\n")
    os.chmod(path, 0o644)
    elsewhere = tmp_path / "copy"
    os.link(path, elsewhere)  # another name for the old, readable file
    write_private(path, b"mrd_secret\n")
    assert path.read_bytes() == b"mrd_secret\n"
    assert _mode(path) == 0o600
    # a new file took the name: the secret never went into the old, readable one
    assert elsewhere.read_bytes() == b"old\n"


@pytest.mark.parametrize("mode", [0o644, 0o640, 0o604], ids=["world", "group", "other"])
def test_production_refuses_a_key_file_open_to_others(tmp_path, loose_umask, mode):
    key = tmp_path / "log.key"
    load_or_create_ed25519(key, create=True, what="log signing key", setting="MERIDIAN_LOG_KEY")
    os.chmod(key, mode)
    with pytest.raises(ConfigurationError) as refused:
        load_or_create_ed25519(key, create=False, what="log signing key", setting="MERIDIAN_LOG_KEY")
    message = str(refused.value)
    assert message == (
        f"log signing key `{key}` is open to other users (mode {mode:04o}): "
        f"`chmod 600 {key}`"
    )
    secret = tmp_path / "session.key"
    load_or_create_secret(secret, create=True, what="session key", setting="MERIDIAN_SESSION_KEY")
    os.chmod(secret, mode)
    with pytest.raises(ConfigurationError, match="is open to other users"):
        load_or_create_secret(secret, create=False, what="session key", setting="S")
    # development (where keys are created) still starts, and says so in the log
    assert load_or_create_secret(secret, create=True, what="session key", setting="S")


@pytest.mark.storage
def test_the_demo_token_files_are_0600(runtime, tmp_path, monkeypatch, loose_umask):
    from rich.console import Console

    from meridian.cli.service import _demo

    monkeypatch.chdir(tmp_path)
    _demo(runtime, Console(file=io.StringIO()))
    tokens = sorted((tmp_path / "var").glob("*.token"))
    assert tokens
    for path in tokens:
        assert _mode(path) == 0o600, path.name
