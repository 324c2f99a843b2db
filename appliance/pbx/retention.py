"""Storage rules for call recordings: delete what is past its retention, what is over the
quota, and whatever it takes to keep the free-space floor, oldest first; and, at start, finish
the `.part` files a crash left behind.

The sweep is plain synchronous work on a store connection (file deletions, a few rows): the
core runs it on the store's writer thread (`Writer.submit`), never on the event loop, at start
and every `INTERVAL` seconds. When the quota or the floor forced deletions, or the disk is
below the floor with nothing left to delete, it says so on the dashboard through the outbox
(`recording.space`)."""

from __future__ import annotations

import asyncio
import logging
import shutil
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from appliance.store import events, recordings
from appliance.store.database import Database
from appliance.store.db import Writer

logger = logging.getLogger(__name__)

INTERVAL = 300.0
"""Seconds between sweeps: a call-hour of recording is ~8 MB, so five minutes cannot eat a
floor of any sensible size."""
BATCH = 200
"""Most recordings one step of a sweep looks at; it goes on while something was deleted."""
MAX_ROUNDS = 1000
"""Bound on the batches of one sweep (200 000 deletions)."""

Usage = Callable[[Path], int]
"""Free bytes of the file system holding a folder (`shutil.disk_usage(...).free`)."""


def free_bytes(folder: Path) -> int:
    return shutil.disk_usage(folder).free


@dataclass(slots=True)
class Sweep:
    """What one sweep did, by reason."""

    deleted: dict[str, list[int]] = field(default_factory=dict)
    freed: int = 0
    below_floor: bool = False
    """The disk is still below the floor: nothing recorded was left to delete."""

    def count(self, reason: str) -> int:
        return len(self.deleted.get(reason, []))


def _remove(db: Database, data_dir: Path, rec: recordings.Recording, reason: str,
            done: Sweep) -> int:  # fmt: skip
    """Delete one recording's file and mark its row; the bytes it gave back."""
    path = rec.file(data_dir)
    try:
        size = path.stat().st_size
    except FileNotFoundError:
        size = 0
    path.unlink(missing_ok=True)
    if recordings.mark_deleted(db, rec.id, reason):
        done.deleted.setdefault(reason, []).append(rec.id)
        done.freed += size
        logger.info("deleted recording %s (%s, %d bytes): %s", rec.id, rec.path, size, reason)
    return size


def sweep(
    db: Database, data_dir: Path, now: float | None = None, usage: Usage = free_bytes
) -> Sweep:
    """Apply the storage rules once: retention, then the quota, then the free-space floor.

    The floor is measured on the file system that holds the recordings (after each deletion,
    so a file the kernel has not yet given back is not counted twice)."""
    now = time.time() if now is None else now
    storage = recordings.Storage.read(db)
    folder = data_dir / recordings.FOLDER
    folder.mkdir(parents=True, exist_ok=True)
    done = Sweep()
    for _ in range(MAX_ROUNDS):
        batch = recordings.expired(db, storage.retention_days, now, BATCH)
        for rec in batch:
            _remove(db, data_dir, rec, "retention", done)
        if len(batch) < BATCH:
            break
    if storage.quota_bytes:
        kept = recordings.kept_bytes(db)
        for _ in range(MAX_ROUNDS):
            if kept <= storage.quota_bytes:
                break
            batch = recordings.oldest(db, BATCH)
            if not batch:
                break
            for rec in batch:
                if kept <= storage.quota_bytes:
                    break
                _remove(db, data_dir, rec, "quota", done)
                kept -= rec.bytes
    if storage.floor_bytes:
        for _ in range(MAX_ROUNDS):
            if usage(folder) >= storage.floor_bytes:
                break
            batch = recordings.oldest(db, BATCH)
            if not batch:
                done.below_floor = True
                break
            for rec in batch:
                if usage(folder) >= storage.floor_bytes:
                    break
                _remove(db, data_dir, rec, "floor", done)
    forced = done.count("quota") + done.count("floor")
    if forced or done.below_floor:
        events.write(db, [events.Event(
            "recording.space", "recordings",
            {"quota": done.count("quota"), "floor": done.count("floor"),
             "below_floor": done.below_floor, "freed": done.freed},
        )])  # fmt: skip
    return done


MARGIN = 10 * recordings.MIB
"""Space above the floor a new recording needs to start: one call-hour at the default format,
so one recording cannot push the disk under the floor between two sweeps."""


def room_to_record(db: Database, data_dir: Path, usage: Usage = free_bytes) -> bool:
    """Whether a new recording may start: the disk is above the floor by `MARGIN`."""
    floor = recordings.get_int(db, "recording.floor_mib") * recordings.MIB
    folder = data_dir / recordings.FOLDER
    folder.mkdir(parents=True, exist_ok=True)
    return usage(folder) >= floor + MARGIN


def recover_parts(
    db: Database, data_dir: Path, recover: Callable[[Path], Path] | None = None
) -> list[recordings.Recording]:
    """At start, before any call: every `*.part` a crash left under the recordings folder is
    made into a finished file (`appliance.media.recorder.recover`: a truncated Ogg stays
    playable) and gets its row, with the seconds the file really holds; so does a finished
    file whose row was never written. The call id comes from the file's name
    (`CALLID-N.ext[.part]`)."""
    import soundfile

    from appliance.media.errors import MediaError

    if recover is None:
        from appliance.media.recorder import recover as recover_part

        recover = recover_part

    found: list[recordings.Recording] = []
    folder = data_dir / recordings.FOLDER
    if not folder.is_dir():
        return found
    for part in sorted(folder.rglob("*.part")):
        try:
            finished = recover(part)
            info = soundfile.info(str(finished))
        except (MediaError, OSError, RuntimeError) as exc:  # soundfile's errors are RuntimeErrors
            logger.error("recording %s left by a crash cannot be recovered: %s", part, exc)
            continue
        relative = finished.relative_to(data_dir).as_posix()
        call_id = finished.stem.rsplit("-", 1)[0]
        stat = finished.stat()
        seconds = float(info.frames) / float(info.samplerate) if info.samplerate else 0.0
        started = stat.st_mtime - seconds
        rec = recordings.add(db, call_id, relative, started, seconds, stat.st_size)
        logger.warning("recovered recording %s (%.1f s) left by a crash", relative, seconds)
        found.append(rec)
    for path in sorted(folder.rglob("*")):
        if path.suffix not in recordings.MIMETYPES or not path.is_file():
            continue
        relative = path.relative_to(data_dir).as_posix()
        if recordings.by_path(db, relative) is not None:
            continue
        try:  # finished, but its row was never written (the core stopped right then)
            info = soundfile.info(str(path))
        except RuntimeError as exc:
            logger.error("recording %s has no row and cannot be read: %s", relative, exc)
            continue
        seconds = float(info.frames) / float(info.samplerate) if info.samplerate else 0.0
        stat = path.stat()
        call_id = path.stem.rsplit("-", 1)[0]
        found.append(recordings.add(db, call_id, relative, stat.st_mtime - seconds, seconds,
                                    stat.st_size))  # fmt: skip
        logger.warning("recording %s had no row: added (%.1f s)", relative, seconds)
    return found


class Keeper:
    """Runs the storage rules for the core: crash recovery and a sweep at start, then a sweep
    every `interval` seconds, each on the store's writer thread."""

    def __init__(self, data_dir: Path, writer: Writer, interval: float = INTERVAL) -> None:
        self.data_dir = data_dir
        self.writer = writer
        self.interval = interval
        self.sweeps = 0

    def start(self) -> None:
        """Queue crash recovery and the first sweep (before the first call is taken, since
        the writer runs in order)."""
        self.writer.submit("recordings: crash recovery", self._recover)
        self.writer.submit("recordings: storage rules", self._sweep)

    def _recover(self, db: Database) -> None:
        recover_parts(db, self.data_dir)

    def _sweep(self, db: Database) -> None:
        sweep(db, self.data_dir)
        self.sweeps += 1

    async def run(self) -> None:
        """Sweep every `interval` seconds until cancelled."""
        while True:
            await asyncio.sleep(self.interval)
            self.writer.submit("recordings: storage rules", self._sweep)
