"""Smoke run of bench/register: two short steps against a real `pbx run`, figures sane."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.bench.smoke import assert_cleaned_up, run_quick


@pytest.mark.timeout(180)
def test_quick_register_bench(tmp_path: Path) -> None:
    stdout, figures = run_quick("register", tmp_path, timeout=150)
    assert "highest rate with < 1% failures" in stdout

    steps = figures["steps"]
    assert [s["offered_rate"] for s in steps] == [200, 500]
    for step in steps:
        assert step["achieved_rate"] > 0
        assert 0 <= step["failures_pct"] <= 100
        assert step["core_cpu_pct"] > 0
        assert step["successful"] <= step["count"]
    first = steps[0]
    assert first["failures_pct"] < 1.0, first
    assert first["achieved_rate"] > 100, first  # 200/s offered for 3 s
    assert figures["max_rate_under_1pct"] >= 200
    assert figures["core_cpu_pct_at_max"] > 0
    assert 0 < figures["idle_rss_mb"] < 1024
    machine = figures["machine"]
    assert machine["nproc"] >= 2 and machine["kernel"] and machine["python"]
    # The core it started is stopped and its temporary directory removed.
    assert_cleaned_up(stdout)
