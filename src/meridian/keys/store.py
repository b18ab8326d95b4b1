"""A key server's store: its master key and one random salt per meeting epoch, mode 0600.

The master key (32 random bytes in ``<store>/master.key``) is made on the key server's first
start and read on every later one; it never leaves the process: not in a repr, not in a pickle.

Each (meeting, epoch, session) the key server is asked for gets 32 fresh random bytes of salt,
kept in ``<store>/epochs.db`` (SQLite, mode 0600), and its meeting key is
``HKDF-SHA256(master, salt, "meridian meeting key v2|<meeting>|<epoch>")``
(:func:`salted_meeting_key`): everyone in one epoch of one session gets the same key, also after
a restart, while no two epochs or sessions share one even if an epoch number comes again. The
store also answers the highest epoch issued per meeting, which the key server never goes below.
"""

from __future__ import annotations

import contextlib
import os
import secrets
import sqlite3
import stat
import threading
from pathlib import Path
from typing import NoReturn

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from ..errors import ConfigurationError
from ._checks import KEY_BYTES, check_epoch, check_key, utf8
from .media import meeting_key_from_master

__all__ = ["EPOCHS_FILE", "MASTER_KEY_FILE", "EpochSalts", "MasterKeyStore", "salted_meeting_key"]

MASTER_KEY_FILE = "master.key"
EPOCHS_FILE = "epochs.db"


def salted_meeting_key(master: bytes, salt: bytes, meeting: str, epoch: int) -> bytes:
    """The meeting key of one epoch: the master key and that epoch's own random salt."""
    check_key(master, "master key")
    check_key(salt, "epoch salt")
    utf8(meeting, "meeting id")
    # INVARIANT: the epoch is a decimal integer after the last "|" (as in v1's label)
    info = f"meridian meeting key v2|{meeting}|{check_epoch(epoch)}".encode()
    return HKDF(algorithm=hashes.SHA256(), length=KEY_BYTES, salt=salt, info=info).derive(master)


class EpochSalts:
    """The salts of every epoch a key server issued, and the highest epoch per meeting.

    One SQLite file, created mode 0600 (its journal takes the same mode); every write is
    committed and synced before a key derived from it leaves the process.
    """

    __slots__ = ("_db", "_lock", "path")

    def __init__(self, path: Path) -> None:
        self.path = path
        if not os.path.lexists(path):
            try:
                os.close(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600))
            except FileExistsError:
                pass  # another process made it a moment ago
            except OSError as exc:
                raise ConfigurationError(
                    f"epoch salts `{path}` cannot be created: {_why(exc)}"
                ) from exc
        _check_private(path, "epoch salts")
        try:
            self._db = sqlite3.connect(path, check_same_thread=False, isolation_level=None)
            self._db.execute("PRAGMA synchronous=FULL")
            self._db.execute(
                "CREATE TABLE IF NOT EXISTS salts (meeting TEXT NOT NULL, epoch INTEGER NOT NULL,"
                " session TEXT NOT NULL, salt BLOB NOT NULL, PRIMARY KEY (meeting, epoch, session))"
            )
        except sqlite3.Error as exc:
            raise ConfigurationError(f"epoch salts `{path}` cannot be opened: {exc}") from exc
        self._lock = threading.Lock()

    def highest(self, meeting: str) -> int | None:
        """The highest epoch issued for ``meeting``, or ``None`` if none was."""
        with self._lock:
            row = self._db.execute(
                "SELECT MAX(epoch) FROM salts WHERE meeting = ?", (meeting,)
            ).fetchone()
        return None if row is None or row[0] is None else int(row[0])

    def salt(self, meeting: str, epoch: int, session: str) -> tuple[bytes, int | None]:
        """The salt of (``meeting``, ``epoch``, ``session``), made now if new, and the highest
        epoch issued before this call (the caller refuses, and nothing is written, when
        ``epoch`` is below it)."""
        with self._lock:
            self._db.execute("BEGIN IMMEDIATE")
            try:
                row = self._db.execute(
                    "SELECT MAX(epoch) FROM salts WHERE meeting = ?", (meeting,)
                ).fetchone()
                highest = None if row is None or row[0] is None else int(row[0])
                if highest is not None and epoch < highest:
                    self._db.execute("ROLLBACK")
                    return b"", highest
                found = self._db.execute(
                    "SELECT salt FROM salts WHERE meeting = ? AND epoch = ? AND session = ?",
                    (meeting, epoch, session),
                ).fetchone()
                if found is not None:
                    self._db.execute("COMMIT")
                    return bytes(found[0]), highest
                salt = secrets.token_bytes(KEY_BYTES)
                self._db.execute(
                    "INSERT INTO salts (meeting, epoch, session, salt) VALUES (?, ?, ?, ?)",
                    (meeting, epoch, session, salt),
                )
                self._db.execute("COMMIT")
                return salt, highest
            except BaseException:
                if self._db.in_transaction:
                    self._db.execute("ROLLBACK")
                raise

    def close(self) -> None:
        self._db.close()

    def __repr__(self) -> str:
        return f"EpochSalts(path={str(self.path)!r})"

    def __reduce__(self) -> NoReturn:
        raise TypeError("epoch salts cannot be pickled")


class MasterKeyStore:
    """The master key of one key server, its epoch salts, and the meeting keys derived."""

    __slots__ = ("_master", "_salts", "path")

    def __init__(self, path: Path, master: bytes, salts: EpochSalts | None = None) -> None:
        if not isinstance(master, bytes) or len(master) != KEY_BYTES:
            raise ConfigurationError(f"master key `{path}` must be {KEY_BYTES} bytes")
        self.path = path
        self._master = master
        self._salts = salts or EpochSalts(path.with_name(EPOCHS_FILE))

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
        return cls(path, _read(path), EpochSalts(directory / EPOCHS_FILE))

    def meeting_key(self, meeting: str, epoch: int) -> bytes:
        """The unsalted (v1) key of ``meeting`` at ``epoch``: the key server no longer hands it
        out (:meth:`epoch_key` does), kept for the derivation's own tests."""
        return meeting_key_from_master(self._master, meeting, epoch)

    def epoch_key(self, meeting: str, epoch: int, session: str) -> tuple[bytes | None, int | None]:
        """The key of ``epoch`` of ``meeting`` in ``session`` with its salt (made now if new),
        and the highest epoch issued before; ``None`` for the key when ``epoch`` is below that
        highest one (the key server refuses it)."""
        check_epoch(epoch)
        utf8(meeting, "meeting id")
        salt, highest = self._salts.salt(meeting, epoch, session)
        if not salt:
            return None, highest
        return salted_meeting_key(self._master, salt, meeting, epoch), highest

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


def _check_private(path: Path, what: str) -> None:
    try:
        info = os.stat(path)
    except OSError as exc:
        raise ConfigurationError(f"{what} `{path}` cannot be read: {_why(exc)}") from exc
    if not stat.S_ISREG(info.st_mode):
        raise ConfigurationError(f"{what} `{path}` is not a regular file")
    if info.st_mode & 0o077:
        raise ConfigurationError(
            f"{what} `{path}` is open to other users (mode {stat.S_IMODE(info.st_mode):04o}): "
            "it must be mode 0600"
        )


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
