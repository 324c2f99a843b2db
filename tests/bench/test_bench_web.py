"""Smoke run of bench/web: a small box, three dashboard loads in Chromium, figures sane, and
everything it started stopped."""

from __future__ import annotations

import json
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
SCRIPT = ROOT / "bench" / "web"


@pytest.mark.timeout(180)
def test_quick_web_bench(tmp_path: Path) -> None:
    out = tmp_path / "figures.json"
    proc = subprocess.run(
        [sys.executable, str(SCRIPT), "--quick", "--json", str(out)],
        capture_output=True, text=True, timeout=150, check=False, cwd=tmp_path,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "dashboard first paint: median" in proc.stdout
    figures = json.loads(out.read_text())
    assert (figures["extensions"], figures["cdrs"], figures["loads"]) == (20, 500, 3)
    assert len(figures["first_paint_ms"]) == 3
    assert all(0 < ms < 10_000 for ms in figures["first_paint_ms"])
    assert figures["first_paint_median_ms"] <= figures["first_paint_max_ms"]
    for key in ("rss_start_mb", "rss_after_pages_mb", "rss_idle_mb"):
        assert 10 < figures[key] < 200, figures
    assert figures["machine"]["nproc"] >= 1
    work = proc.stdout.split("data in ", 1)[1].split()[0]
    assert work.startswith(tempfile.gettempdir()) and not Path(work).exists()
    assert not any(work in cmdline for cmdline in _cmdlines()), "a service was left running"


def _cmdlines() -> list[str]:
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                found.append((entry / "cmdline").read_bytes().replace(b"\0", b" ").decode())
            except OSError:
                continue
    return found
