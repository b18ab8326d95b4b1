"""A key server's master key: 32 random bytes in ``<store>/master.key``, mode 0600.

The master key is made on the key server's first start and read on every later one. Meeting
keys are derived from it (:func:`~meridian.keys.media.meeting_key_from_master`), so it is the
only secret the store holds, and it never leaves the process: not in a repr, not in a pickle.
"""

from __future__ import annotations

import contextlib
import os
import secrets
import stat
from pathlib import Path
from typing import NoReturn

from ..errors import ConfigurationError
from ._checks import KEY_BYTES
from .media import meeting_key_from_master

__all__ = ["MASTER_KEY_FILE", "MasterKeyStore"]

MASTER_KEY_FILE = "master.key"


class MasterKeyStore:
    """The master key of one key server, and the meeting keys derived from it."""

    __slots__ = ("_master", "path")

    def __init__(self, path: Path, master: bytes) -> None:
        if not isinstance(master, bytes) or len(master) != KEY_BYTES:
            raise ConfigurationError(f"master key `{path}` must be {KEY_BYTES} bytes")
        self.path = path
        self._master = master

    @classmethod
    def open(cls, directory: Path) -> MasterKeyStore:
        """The store in ``directory``, creating the directory and its master key on first use.

        :class:`ConfigurationError` if the key cannot be made or read, is not 32 bytes, or is
        readable by other users than the key server's.
        """
        path = directory / MASTER_KEY_FILE
        try:
            directory.mkdir(mode=0o700, parents=True, exist_ok=True)
        except OSError as exc:
            raise ConfigurationError(
                f"key store `{directory}` cannot be created: {_why(exc)}"
            ) from exc
        if not os.path.lexists(path):
            _create(path)
        return cls(path, _read(path))

    def meeting_key(self, meeting: str, epoch: int) -> bytes:
        """The meeting key of ``meeting`` at ``epoch`` (derived, never stored)."""
        return meeting_key_from_master(self._master, meeting, epoch)

    def __repr__(self) -> str:
        return f"MasterKeyStore(path={str(self.path)!r})"

    def __reduce__(self) -> NoReturn:
        # pickling would copy the master key out of the process
        raise TypeError("a master key store cannot be pickled")


def _why(exc: OSError) -> str:
    return (exc.strerror or type(exc).__name__).lower()


def _create(path: Path) -> None:
    """Write a new master key to ``path`` unless another process has just done so."""
    tmp = path.with_name(f".{path.name}.{os.getpid()}.{secrets.token_hex(4)}.tmp")
    try:
        # the mode is set as the file is created, so the key is never readable by others
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        try:
            os.write(fd, secrets.token_bytes(KEY_BYTES))
            os.fsync(fd)
        finally:
            os.close(fd)
        # a hard link, not a rename: two servers starting at once must not each keep a key
        # in memory while one of them is overwritten on disk; the loser reads the winner's
        with contextlib.suppress(FileExistsError):
            os.link(tmp, path)
        _fsync_directory(path.parent)
    except OSError as exc:
        raise ConfigurationError(f"master key `{path}` cannot be created: {_why(exc)}") from exc
    finally:
        tmp.unlink(missing_ok=True)


def _fsync_directory(directory: Path) -> None:
    # the new name is durable only once the directory itself is synced
    fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _read(path: Path) -> bytes:
    try:
        # a symlink is followed: secret mounts (Kubernetes, say) are made of them
        fd = os.open(path, os.O_RDONLY)
        try:
            info = os.fstat(fd)
            data = os.read(fd, KEY_BYTES + 1) if stat.S_ISREG(info.st_mode) else b""
        finally:
            os.close(fd)
    except OSError as exc:
        raise ConfigurationError(f"master key `{path}` cannot be read: {_why(exc)}") from exc
    if not stat.S_ISREG(info.st_mode):
        raise ConfigurationError(f"master key `{path}` is not a regular file")
    if info.st_mode & 0o077:
        raise ConfigurationError(
            f"master key `{path}` is open to other users (mode {stat.S_IMODE(info.st_mode):04o}): "
            "it must be mode 0600"
        )
    if len(data) != KEY_BYTES:
        raise ConfigurationError(
            f"master key `{path}` must be {KEY_BYTES} bytes, not {info.st_size}"
        )
    return data
