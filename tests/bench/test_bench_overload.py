"""Smoke run of bench/overload: short steps, a short flood, figures sane."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.bench.smoke import assert_cleaned_up, run_quick


@pytest.mark.timeout(300)
def test_quick_overload_bench(tmp_path: Path) -> None:
    stdout, figures = run_quick("overload", tmp_path, timeout=270)
    assert "maximum REGISTER rate" in stdout and "flood:" in stdout

    steps = figures["register_steps"]
    assert [s["offered_rate"] for s in steps][:1] == [200]
    assert figures["max_register_rate"] > 100, steps  # 200/s offered for 2 s passed
    assert figures["max_call_rate"] > 0, figures["call_steps"]
    flood = figures["flood"]
    assert flood["offered_rate"] == pytest.approx(3 * figures["max_register_rate"])
    assert flood["answered"] > 0 and flood["answered_rate"] > 0
    assert (
        flood["answered"] + flood["refused"] + sum(flood["other_failures"].values())
        <= (flood["count"])
    )
    assert flood["box_refused"] >= flood["refused"] * 0.99
    for side in ("caller", "callee"):
        assert flood["relayed_packets"][side] > 0, flood  # the held call's RTP was captured
        assert 0 < flood["relayed_gap_ms"][side] < 3000 * 1.1
    assert flood["call_survived"], flood
    assert 0 < figures["idle_rss_mb"] <= figures["peak_rss_mb"] < 1024
    assert len(figures["rss_after_mb"]) == 5
    assert_cleaned_up(stdout)
