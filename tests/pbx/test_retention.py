"""The storage rules for recordings over real files and a real SQLite file: retention per rule,
the quota (oldest first), and the free-space floor on a real size-limited file system (a tmpfs
of 8 MiB mounted by the test), with the dashboard's alert; and crash recovery of a `.part`
file cut off mid-write."""

from __future__ import annotations

import subprocess
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
import soundfile

from appliance.pbx import retention
from appliance.store import events, recordings
from appliance.store.database import Database
from appliance.store.db import open_db

NOW = 1_800_000_000.0
DAY = 86_400.0
MIB = 1 << 20


def wav(path: Path, seconds: float) -> int:
    """A real stereo 8 kHz WAV (440 Hz left, 1 kHz right): 32 000 bytes a second."""
    path.parent.mkdir(parents=True, exist_ok=True)
    t = np.arange(int(seconds * 8000)) / 8000
    audio = np.stack([np.sin(2 * np.pi * 440 * t), np.sin(2 * np.pi * 1000 * t)], axis=1) * 0.3
    soundfile.write(str(path), audio, 8000, subtype="PCM_16")
    return path.stat().st_size


def recorded(db: Database, data: Path, call: str, age_days: float, seconds: float,
             rule: int | None = None) -> recordings.Recording:  # fmt: skip
    started = NOW - age_days * DAY
    rel = recordings.relative_path(call, started, 1, "wav")
    size = wav(data / rel, seconds)
    return recordings.add(db, call, rel, started, seconds, size, rule)


@pytest.fixture
def data(tmp_path: Path) -> Path:
    return tmp_path / "var"


@pytest.fixture
def db(data: Path) -> Iterator[Database]:
    handle = open_db(data)
    yield handle
    handle.conn.close()


def kept(db: Database) -> list[str]:
    return [r.call_id for r in sorted(recordings.listing(db, limit=1000), key=lambda r: r.id)]


def test_retention_per_rule_then_quota_oldest_first(db: Database, data: Path) -> None:
    year = recordings.add_rule(db, "extension", "101", retention_days=365)
    recordings.set_setting(db, "recording.retention_days", "30")
    recordings.set_setting(db, "recording.floor_mib", "0")
    old = recorded(db, data, "old", 40, 1.0)  # past the default 30 days
    ruled = recorded(db, data, "ruled", 200, 1.0, year.id)  # its rule keeps it a year
    recorded(db, data, "mid", 20, 1.0)
    recorded(db, data, "new", 10, 1.0)
    done = retention.sweep(db, data, NOW)
    assert done.deleted == {"retention": [old.id]}
    assert not old.file(data).exists() and ruled.file(data).exists()
    assert kept(db) == ["ruled", "mid", "new"]
    assert events.alerts(db) == []  # retention alone is no alarm

    # a quota of 2 of the 3 remaining files: the oldest (the ruled one, 200 days) goes first
    recordings.set_setting(db, "recording.quota_mib", "1")
    for name in ("a", "b", "c", "d", "e"):  # 5 more, 5 and 4 days old... past 1 MiB in all
        recorded(db, data, name, 5 - "abcde".index(name) * 0.1, 8.0)
    assert recordings.kept_bytes(db) > MIB
    done = retention.sweep(db, data, NOW)
    assert done.count("quota") >= 3
    assert recordings.kept_bytes(db) <= MIB
    gone = [r.call_id for r in recordings.listing(db, include_deleted=True, limit=100)
            if r.deleted_reason == "quota"]  # fmt: skip
    survivors = kept(db)
    order = ["ruled", "mid", "new", "a", "b", "c", "d", "e"]
    # exactly a prefix of the oldest-first order went, and the rest stayed
    assert sorted(gone, key=order.index) == order[: len(gone)]
    assert survivors == order[len(gone) :]
    for rec in recordings.listing(db, include_deleted=True, limit=100):
        assert rec.file(data).exists() == (rec.deleted_at is None)
    (alert,) = events.alerts(db)
    assert alert.kind == "recording.space" and alert.data["quota"] == len(gone)


@pytest.fixture
def small_disk(data: Path) -> Iterator[Path]:
    """The recordings folder on a tmpfs of 8 MiB (the database stays outside it)."""
    folder = data / recordings.FOLDER
    folder.mkdir(parents=True)
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=8m", "tmpfs", str(folder)], check=True)
    try:
        yield folder
    finally:
        subprocess.run(["umount", str(folder)], check=True)


def test_the_free_space_floor_holds_on_a_full_disk(
    db: Database, data: Path, small_disk: Path
) -> None:
    recordings.set_setting(db, "recording.quota_mib", "0")
    recordings.set_setting(db, "recording.retention_days", "0")
    recordings.set_setting(db, "recording.floor_mib", "3")
    assert retention.free_bytes(small_disk) == 8 * MIB
    rows = [recorded(db, data, f"call{n}", 10 - n * 0.01, 16.0) for n in range(8)]  # 4 MiB
    assert retention.room_to_record(db, data) is False  # 4 MiB free < floor 3 + 10 MiB margin
    # something else fills the disk: a log, an upload
    (small_disk / "filler").write_bytes(b"\0" * (3 * MIB))
    before = retention.free_bytes(small_disk)
    assert before < 3 * MIB
    done = retention.sweep(db, data, NOW)
    after = retention.free_bytes(small_disk)
    assert after >= 3 * MIB
    deleted = done.deleted["floor"]
    # the oldest went first, and no more than needed: without the last one, still below
    assert deleted == [r.id for r in rows[: len(deleted)]]
    assert after - rows[len(deleted) - 1].bytes < 3 * MIB
    assert [r.id for r in recordings.listing(db, limit=100)][::-1] == [
        r.id for r in rows[len(deleted) :]
    ]
    (alert,) = events.alerts(db)
    assert alert.data == {"quota": 0, "floor": len(deleted), "below_floor": False,
                          "freed": done.freed}  # fmt: skip

    # the disk fills beyond what recordings can give back: all go, and the alert says so
    (small_disk / "filler2").write_bytes(b"\0" * (after - MIB))
    done = retention.sweep(db, data, NOW)
    assert done.below_floor and recordings.listing(db) == []
    assert sorted(p.name for p in small_disk.rglob("*") if p.is_file()) == ["filler", "filler2"]
    assert events.alerts(db)[0].data["below_floor"] is True


def test_a_part_file_left_by_a_crash_gets_its_row(db: Database, data: Path) -> None:
    rel = recordings.relative_path("crashed", NOW, 1, "opus")
    final = data / rel
    final.parent.mkdir(parents=True)
    t = np.arange(8000 * 6) / 8000
    audio = np.stack([np.sin(2 * np.pi * 440 * t), np.sin(2 * np.pi * 1000 * t)], axis=1) * 0.3
    part = final.with_name(final.name + ".part")
    soundfile.write(str(part), audio, 8000, format="OGG", subtype="OPUS")
    with part.open("r+b") as f:  # cut off as a kill -9 leaves it: the end never written
        f.truncate(part.stat().st_size * 2 // 3)

    junk = final.with_name("junk-1.ogg.part")  # not a sound file: left alone, no row
    junk.write_bytes(b"not audio")
    (rec,) = retention.recover_parts(db, data)  # with the recorder's own recover()
    assert (rec.call_id, rec.path) == ("crashed", rel)
    assert 2.0 < rec.seconds <= 6.0
    assert rec.bytes == final.stat().st_size and not part.exists()
    assert retention.recover_parts(db, data) == []  # nothing left but the junk
    assert junk.exists()
