"""Keys kept in files: the grant key and the log's checkpoint key (Ed25519), the session secret.

A key is PEM (PKCS#8, unencrypted) in a file only its owner can read. In development mode a
missing key is created; in production a missing key is a configuration error, so a service never
starts signing with a key nobody configured.

Files are created mode 0600 from their first byte (``os.open`` with the mode, into a new file
renamed into place: never ``chmod`` after writing). A key file with group or world permission
bits is refused in production (``create=False``, the mode that never creates keys) with one line
naming the file, its mode and the fix; in development it is used and a warning logged.
"""

from __future__ import annotations

import logging
import os
import stat
from pathlib import Path

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from .errors import ConfigurationError

__all__ = ["load_or_create_ed25519", "load_or_create_secret", "read_private", "write_private"]

log = logging.getLogger("meridian.keys")


def load_or_create_ed25519(
    path: Path, *, create: bool, what: str, setting: str
) -> Ed25519PrivateKey:
    """The Ed25519 key in ``path``; with ``create``, a new one written there if it is missing.

    ``what`` names the key in messages ("log signing key"); ``setting`` is the environment
    variable that points at it.
    """
    if path.exists():
        data = read_private(path, what=what, strict=not create)
        try:
            key = serialization.load_pem_private_key(data, password=None)
        except (ValueError, TypeError) as exc:
            raise ConfigurationError(f"{what} `{path}` is not a PEM private key") from exc
        if not isinstance(key, Ed25519PrivateKey):
            raise ConfigurationError(f"{what} `{path}` is not an Ed25519 key")
        return key
    if not create:
        raise ConfigurationError(f"{what} `{path}` does not exist: set {setting} to an Ed25519 PEM")
    key = Ed25519PrivateKey.generate()
    write_private(
        path,
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        ),
    )
    return key


def load_or_create_secret(path: Path, *, create: bool, what: str, setting: str) -> bytes:
    """The 32 random bytes in ``path`` (kept as 64 hex digits); created with ``create``."""
    if path.exists():
        text = read_private(path, what=what, strict=not create).decode("ascii", "replace").strip()
        try:
            secret = bytes.fromhex(text)
        except ValueError:
            secret = b""
        if len(secret) != 32:
            raise ConfigurationError(f"{what} `{path}` must hold 64 hex digits (32 random bytes)")
        return secret
    if not create:
        raise ConfigurationError(
            f"{what} `{path}` does not exist: set {setting} to a file of 64 hex digits"
        )
    secret = os.urandom(32)
    write_private(path, secret.hex().encode("ascii") + b"\n")
    return secret


def read_private(path: Path, *, what: str, strict: bool) -> bytes:
    """The bytes of the key file ``path``; refused when others may read it and ``strict``.

    The mode is read from the opened file (``fstat``), so it is the file whose bytes are used.
    """
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError as exc:
        reason = (exc.strerror or type(exc).__name__).lower()
        raise ConfigurationError(f"{what} `{path}` cannot be read: {reason}") from None
    with os.fdopen(fd, "rb") as stream:
        mode = stat.S_IMODE(os.fstat(stream.fileno()).st_mode)
        if mode & 0o077:
            message = (
                f"{what} `{path}` is open to other users (mode {mode:04o}): `chmod 600 {path}`"
            )
            if strict:
                raise ConfigurationError(message)
            log.warning("%s", message)
        return stream.read(1 << 20)


def write_private(path: Path, data: bytes) -> None:
    """Write ``data`` to ``path`` as a new file, mode 0600 from its first byte, then rename it.

    A file already at ``path`` is replaced, never written into: whatever mode or other names it
    had, the secret never goes into it.
    """
    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    tmp.unlink(missing_ok=True)
    # Created 0600 from the start: the key is never readable by others, not even for a moment.
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        with os.fdopen(fd, "wb") as out:
            out.write(data)
            out.flush()
            os.fsync(out.fileno())
        tmp.replace(path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
