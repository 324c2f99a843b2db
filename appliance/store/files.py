"""Files that must survive a power cut: written whole under a temporary name, fsynced, renamed.

A file written in place and cut off half way (a crash, the power) is worse than no file: a
truncated certificate, recording or prompt. POSIX `rename` replaces a name atomically, so a
reader sees the old file or the new one, never a mix; but only an fsync of the file before the
rename makes its bytes durable, and only an fsync of the directory after it makes the new name
durable (ext4 with `data=ordered` mostly gets this right without them; FAT on an SD card's boot
partition, or `data=writeback`, does not). Every file the appliance writes that matters goes
through `write_atomic`, or through `publish` when another program (openssl, libsndfile) wrote
the temporary file.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path


def write_atomic(path: Path, data: bytes, mode: int = 0o644) -> None:
    """Make `path` hold exactly `data` (with permissions `mode`), or leave it as it was.

    The temporary file is made in the same directory (a rename does not cross file systems),
    with `mode` from the start (a key is never readable by others, even for an instant)."""
    folder = path.parent
    fd, name = tempfile.mkstemp(dir=folder, prefix=f".{path.name}.", suffix=".tmp")
    tmp = Path(name)
    try:
        os.fchmod(fd, mode)
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        tmp.rename(path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    fsync_directory(folder)


def publish(tmp: Path, path: Path) -> None:
    """Give a complete file written by someone else (`tmp`, in `path`'s file system) the name
    `path`: fsync it, rename it, fsync the directory. A rename into another directory fsyncs
    both."""
    fsync_file(tmp)
    tmp.rename(path)
    fsync_directory(path.parent)
    if tmp.parent.resolve() != path.parent.resolve():
        fsync_directory(tmp.parent)


def fsync_file(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def fsync_directory(folder: Path) -> None:
    """Make the names in `folder` (a file just created or renamed there) durable."""
    fd = os.open(folder, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
