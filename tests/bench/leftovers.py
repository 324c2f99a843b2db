"""What every benchmark smoke run checks last: it removed its data and stopped its processes."""

from __future__ import annotations

import tempfile
from pathlib import Path


def assert_cleaned_up(stdout: str) -> None:
    """The bench printed `data in DIR`: DIR is gone and no process names it any more."""
    work = stdout.split("data in ", 1)[1].split(maxsplit=1)[0]
    assert work.startswith(tempfile.gettempdir()) and not Path(work).exists()
    assert not any(work in cmdline for cmdline in cmdlines()), "a process was left running"


def cmdlines() -> list[str]:
    found = []
    for path in Path("/proc").glob("[0-9]*/cmdline"):
        try:
            found.append(path.read_bytes().decode(errors="replace"))
        except OSError:
            pass  # exited meanwhile
    return found
