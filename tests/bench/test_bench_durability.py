"""Smoke run of bench/durability: commit latency both ways, start-up and recovery to READY."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.bench.smoke import assert_cleaned_up, run_quick


@pytest.mark.timeout(120)
def test_quick_durability_bench(tmp_path: Path) -> None:
    stdout, figures = run_quick("durability", tmp_path, timeout=100)
    assert "pbx run to READY closing 10 interrupted calls" in stdout
    for mode in ("FULL", "NORMAL"):
        for kind in ("cdr_insert", "binding_upsert"):
            timing = figures["commit"][mode][kind]
            assert 0 < timing["median_ms"] <= timing["p99_ms"], (mode, kind, timing)
    for part in ("start_to_ready", "recovery_to_ready"):
        assert 0 < figures[part]["median_ms"] < 30_000, figures[part]
    assert figures["recovery_to_ready"]["live_calls"] == 10
    assert_cleaned_up(stdout)
