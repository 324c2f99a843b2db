"""Factory reset: the box forgets everything it was told and starts as new.

On the appliance the data partition (`/var`: the database, recordings, prompts, voicemail,
certificates, logs) is made again from the copy of a new box's `/var` in the image: a request
file in the data directory (`request`) is seen by `pbx-factory-reset.path`, whose service
(root) reboots the box, and early at boot, before anything mounts `/var`,
`pbx-data-reset.service` reformats the partition when the request is on it. A request comes
from `pbx factory-reset`, the System page or the board's reset button held for 10 s (the
analog gateway). Nothing is wiped by a process of the PBX itself, so a crash half-way can
never leave half a database.

Elsewhere (a development checkout, where no such unit is installed) `pbx factory-reset`
empties the data directory itself, and only while no service of the PBX is running.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

from appliance.store.files import write_atomic

REQUEST = "factory-reset"
"""The request's file name in the data directory (its content says who asked, and when)."""
RESET_UNIT = Path("/usr/lib/systemd/system/pbx-factory-reset.path")
"""Installed only on the appliance: the unit that carries a request out."""
CONFIRMATION = "RESET"
"""What a person types to confirm (the same word in every language: it is shown to copy)."""


def on_appliance() -> bool:
    """Whether a request is carried out by the image's units (a reboot that reformats /var)."""
    return Path(os.environ.get("PBX_FACTORY_RESET_UNIT", RESET_UNIT)).exists()


def request(data_dir: Path, source: str) -> Path:
    """Ask for a factory reset (`source`: who asked, for the log); the path of the request."""
    path = data_dir / REQUEST
    write_atomic(path, f"{source}\n".encode())
    return path


def pending(data_dir: Path) -> bool:
    return (data_dir / REQUEST).exists()


def wipe(data_dir: Path) -> int:
    """Empty the data directory (its own entries, the directory itself stays): the number of
    entries removed. Only for a checkout, with every service of the PBX stopped."""
    removed = 0
    if not data_dir.is_dir():
        return 0
    for entry in data_dir.iterdir():
        if entry.is_dir() and not entry.is_symlink():
            shutil.rmtree(entry)
        else:
            entry.unlink()
        removed += 1
    return removed
