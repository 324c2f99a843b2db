"""Smoke run of bench/web: a small box, three dashboard loads in Chromium, figures sane, and
everything it started stopped."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from tests.bench.leftovers import assert_cleaned_up

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
    assert_cleaned_up(proc.stdout)
