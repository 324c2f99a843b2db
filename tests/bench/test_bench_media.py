"""bench/media: a smoke run (`bench/media --quick`) through real sockets and a real box
process. It checks that the figures are sane and complete, not that they meet the issue's bars:
benchmarks measure, tests don't time."""

from __future__ import annotations

from pathlib import Path

from tests.bench.smoke import assert_cleaned_up, run_quick


def test_quick_run_measures_every_case_and_misses_no_digit(tmp_path: Path) -> None:
    stdout, result = run_quick("media", tmp_path, timeout=240)
    figures = result["cases"]
    assert [f["case"] for f in figures] == ["relay", "record", "prompt"]
    for f in figures:
        assert f["calls"] == 5 and f["window_s"] > 1.5
        assert 0 < f["cpu_per_call_second"] < 0.2  # measured, and not absurd
        assert f["packets_to_phones"] > 0
    relay, record, prompt = figures
    # every relayed and recorded call delivers ~50 packets a second to each of its 2 phones
    assert relay["packets_to_phones"] > 0.8 * 5 * 2 * 50 * relay["window_s"]
    assert 1e6 < record["recording_bytes_per_call_hour"] < 20e6  # a real Opus file was made
    assert prompt["digits_keyed"] == 20 and prompt["digits_missed"] == 0
    assert "digits missed 0 of 20" in stdout
    assert_cleaned_up(stdout)
