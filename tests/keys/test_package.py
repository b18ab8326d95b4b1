"""The public surface of ``meridian.keys``: exactly the intended names, nothing done at import."""

from __future__ import annotations

import subprocess
import sys

import meridian.keys


def test_the_package_exports_exactly_the_intended_names() -> None:
    assert sorted(meridian.keys.__all__) == [
        "DropReason",
        "FrameDroppedError",
        "FrameHeader",
        "FrameKind",
        "IssuedKey",
        "KeyContext",
        "KeyServer",
        "MasterKeyStore",
        "RosterError",
        "RosterMember",
        "SenderKeys",
        "SenderRoster",
        "SignedRoster",
        "WrappedKey",
        "b64url",
        "from_b64url",
        "meeting_key_from_master",
        "open_frame",
        "parse_header",
        "public_bytes",
        "seal_frame",
        "sender_key",
        "sign_roster",
        "signing_public_bytes",
        "unwrap_key",
        "verify_frame",
        "verify_roster",
        "wrap_key",
    ]
    # its own names, and its two errors, which live in the one hierarchy (meridian.errors)
    own = {"FrameDroppedError": "meridian.errors", "RosterError": "meridian.errors"}
    for name in meridian.keys.__all__:
        module = getattr(meridian.keys, name).__module__
        assert module == own.get(name) or module.startswith("meridian.keys."), name


def test_importing_the_package_reads_and_writes_nothing(tmp_path: object) -> None:
    code = "import os, meridian.keys; print(sorted(os.listdir('.')))"
    proc = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=False, cwd=str(tmp_path)
    )
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == "[]"
