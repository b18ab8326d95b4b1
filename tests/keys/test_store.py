"""The master key store: made once with mode 0600, read back the same, never shown.

Everything runs on real files in ``tmp_path``.
"""

from __future__ import annotations

import os
import pickle
import stat
import threading
from pathlib import Path

import pytest

from meridian.errors import ConfigurationError
from meridian.keys.media import meeting_key_from_master
from meridian.keys.store import MasterKeyStore


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_first_open_creates_a_private_32_byte_key(tmp_path: Path) -> None:
    directory = tmp_path / "node" / "keys"
    store = MasterKeyStore.open(directory)
    path = directory / "master.key"
    assert store.path == path
    assert mode(path) == 0o600
    assert mode(directory) == 0o700
    assert len(path.read_bytes()) == 32
    # the temporary file it was written through is gone
    assert sorted(p.name for p in directory.iterdir()) == ["epochs.db", "master.key"]
    assert mode(directory / "epochs.db") == 0o600


def test_reopening_reads_the_same_key(tmp_path: Path) -> None:
    first = MasterKeyStore.open(tmp_path)
    on_disk = (tmp_path / "master.key").read_bytes()
    second = MasterKeyStore.open(tmp_path)
    assert (tmp_path / "master.key").read_bytes() == on_disk
    assert second.meeting_key("mtg_a", 0) == first.meeting_key("mtg_a", 0)
    assert first.meeting_key("mtg_a", 0) == meeting_key_from_master(on_disk, "mtg_a", 0)


def test_meeting_keys_differ_by_meeting_epoch_and_store(tmp_path: Path) -> None:
    a, b = MasterKeyStore.open(tmp_path / "a"), MasterKeyStore.open(tmp_path / "b")
    keys = {store.meeting_key(m, e) for store in (a, b) for m in ("m1", "m2") for e in (0, 1)}
    assert len(keys) == 8


def test_servers_starting_together_end_with_one_key(tmp_path: Path) -> None:
    """No store may keep a key in memory that another overwrote on disk."""
    barrier = threading.Barrier(8)
    stores: list[MasterKeyStore] = []

    def start() -> None:
        barrier.wait()
        stores.append(MasterKeyStore.open(tmp_path))

    threads = [threading.Thread(target=start) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    on_disk = meeting_key_from_master((tmp_path / "master.key").read_bytes(), "m", 0)
    assert [s.meeting_key("m", 0) for s in stores] == [on_disk] * 8
    assert sorted(p.name for p in tmp_path.iterdir()) == ["epochs.db", "master.key"]


def test_the_master_key_is_never_shown_or_pickled(tmp_path: Path) -> None:
    store = MasterKeyStore.open(tmp_path)
    master = (tmp_path / "master.key").read_bytes()
    for text in (repr(store), str(store), f"{store!r:}"):
        assert master.hex() not in text
        assert repr(master) not in text
        assert str(tmp_path) in text
    with pytest.raises(TypeError, match="cannot be pickled"):
        pickle.dumps(store)


def _write(path: Path, data: bytes, file_mode: int = 0o600) -> None:
    path.write_bytes(data)
    path.chmod(file_mode)


@pytest.mark.parametrize(
    ("data", "file_mode", "needle"),
    [
        (bytes(31), 0o600, "must be 32 bytes, not 31"),
        (bytes(33), 0o600, "must be 32 bytes, not 33"),
        (b"", 0o600, "must be 32 bytes, not 0"),
        (bytes(32), 0o644, "is open to other users (mode 0644): it must be mode 0600"),
        (bytes(32), 0o640, "(mode 0640)"),
    ],
    ids=["short", "long", "empty", "world-readable", "group-readable"],
)
def test_an_unusable_key_file_is_a_configuration_error(
    tmp_path: Path, data: bytes, file_mode: int, needle: str
) -> None:
    _write(tmp_path / "master.key", data, file_mode)
    with pytest.raises(ConfigurationError) as caught:
        MasterKeyStore.open(tmp_path)
    assert needle in str(caught.value)
    assert f"`{tmp_path / 'master.key'}`" in str(caught.value)
    # the operator's file is left as it was: the store never replaces a key
    assert (tmp_path / "master.key").read_bytes() == data


def test_a_read_only_key_is_accepted(tmp_path: Path) -> None:
    _write(tmp_path / "master.key", bytes(range(32)), 0o400)
    store = MasterKeyStore.open(tmp_path)
    assert store.meeting_key("m", 0) == meeting_key_from_master(bytes(range(32)), "m", 0)


def test_a_symlinked_key_is_followed(tmp_path: Path) -> None:
    _write(tmp_path / "secret", bytes(range(32)))
    (tmp_path / "store").mkdir()
    (tmp_path / "store" / "master.key").symlink_to(tmp_path / "secret")
    store = MasterKeyStore.open(tmp_path / "store")
    assert store.meeting_key("m", 0) == meeting_key_from_master(bytes(range(32)), "m", 0)


def test_a_dangling_symlink_is_not_replaced(tmp_path: Path) -> None:
    (tmp_path / "master.key").symlink_to(tmp_path / "missing")
    with pytest.raises(ConfigurationError, match="cannot be read: no such file"):
        MasterKeyStore.open(tmp_path)
    assert not (tmp_path / "missing").exists()


def test_a_directory_in_place_of_the_key_is_a_configuration_error(tmp_path: Path) -> None:
    (tmp_path / "master.key").mkdir()
    with pytest.raises(ConfigurationError, match="is not a regular file"):
        MasterKeyStore.open(tmp_path)


def test_a_store_that_cannot_be_created_is_a_configuration_error(tmp_path: Path) -> None:
    (tmp_path / "file").write_text("not a directory")
    with pytest.raises(ConfigurationError, match=r"key store `.*` cannot be created"):
        MasterKeyStore.open(tmp_path / "file" / "keys")


@pytest.mark.skipif(os.geteuid() == 0, reason="root reads and writes whatever the mode")
def test_an_unreadable_key_or_unwritable_store_is_a_configuration_error(tmp_path: Path) -> None:
    _write(tmp_path / "master.key", bytes(32), 0o000)
    with pytest.raises(ConfigurationError, match="cannot be read: permission denied"):
        MasterKeyStore.open(tmp_path)
    locked = tmp_path / "locked"
    locked.mkdir(mode=0o500)
    with pytest.raises(ConfigurationError, match="cannot be created: permission denied"):
        MasterKeyStore.open(locked)


def test_a_store_is_built_only_from_a_32_byte_key(tmp_path: Path) -> None:
    with pytest.raises(ConfigurationError, match="must be 32 bytes"):
        MasterKeyStore(tmp_path / "master.key", bytes(16))
