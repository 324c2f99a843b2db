"""Smoke run of bench/web: a small box, three dashboard loads in Chromium, figures sane, and
everything it started stopped."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.bench.smoke import assert_cleaned_up, run_quick


@pytest.mark.timeout(180)
def test_quick_web_bench(tmp_path: Path) -> None:
    stdout, figures = run_quick("web", tmp_path, timeout=150)
    assert "dashboard first paint: median" in stdout
    assert (figures["extensions"], figures["cdrs"], figures["loads"]) == (20, 500, 3)
    assert len(figures["first_paint_ms"]) == 3
    assert all(0 < ms < 10_000 for ms in figures["first_paint_ms"])
    assert figures["first_paint_median_ms"] <= figures["first_paint_max_ms"]
    for key in ("rss_start_mb", "rss_after_pages_mb", "rss_idle_mb"):
        assert 10 < figures[key] < 200, figures
    assert figures["machine"]["nproc"] >= 1
    assert_cleaned_up(stdout)
