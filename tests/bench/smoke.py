"""Smoke runs of the benchmarks: run `bench/NAME --quick`, read its figures, and check that it
removed its data and stopped its processes."""

from __future__ import annotations

import json
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

BENCH = Path(__file__).resolve().parents[2] / "bench"


def run_quick(name: str, workdir: Path, timeout: float) -> tuple[str, dict[str, Any]]:
    """Run `bench/NAME --quick` in `workdir`; return what it printed and its JSON figures."""
    out = workdir / "figures.json"
    proc = subprocess.run(
        [sys.executable, str(BENCH / name), "--quick", "--json", str(out)],
        capture_output=True, text=True, timeout=timeout, check=False, cwd=workdir,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stdout + proc.stderr
    return proc.stdout, json.loads(out.read_text())


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
