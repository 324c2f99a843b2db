"""`store.files`: a file written whole or not at all, with its mode from the start; its bytes
fsynced before the rename and its directory after it (os.fsync observed)."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest

from appliance.store import files


def test_write_atomic_replaces_the_file_whole_with_its_mode(tmp_path: Path) -> None:
    target = tmp_path / "key.pem"
    target.write_bytes(b"old")
    files.write_atomic(target, b"new contents", mode=0o600)
    assert target.read_bytes() == b"new contents"
    assert stat.S_IMODE(target.stat().st_mode) == 0o600
    assert [p.name for p in tmp_path.iterdir()] == ["key.pem"]  # no temporary left


def test_a_failed_write_leaves_the_old_file_and_no_temporary(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    target = tmp_path / "backup.json"
    target.write_bytes(b"old")

    def no_space(_fd: int) -> None:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(os, "fsync", no_space)
    with pytest.raises(OSError, match="No space"):
        files.write_atomic(target, b"new")
    assert target.read_bytes() == b"old"
    assert [p.name for p in tmp_path.iterdir()] == ["backup.json"]


def test_the_file_and_its_directory_are_fsynced_before_and_after_the_rename(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    synced: list[tuple[str, bool]] = []
    real = os.fsync

    def fsync(fd: int) -> None:
        path = os.readlink(f"/proc/self/fd/{fd}")
        synced.append((Path(path).name, (tmp_path / "prompt.wav").exists()))
        real(fd)

    monkeypatch.setattr(os, "fsync", fsync)
    files.write_atomic(tmp_path / "prompt.wav", b"RIFF")
    (temporary, before), (folder, after) = synced
    assert temporary.startswith(".prompt.wav.") and not before  # the data, before the name
    assert (folder, after) == (tmp_path.name, True)  # the directory, after the rename

    synced.clear()
    work = tmp_path / "work"
    work.mkdir()
    (work / "cert.pem").write_bytes(b"made by openssl")
    files.publish(work / "cert.pem", tmp_path / "cert.pem")
    assert (tmp_path / "cert.pem").read_bytes() == b"made by openssl"
    assert [name for name, _ in synced] == ["cert.pem", tmp_path.name, "work"]
