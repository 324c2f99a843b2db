"""Smoke run of bench/lines: the analog signal processing of a port fits the CPU bar, and the
gateway part measured a real gateway with both FXS ports in calls carrying audio each way."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.bench.smoke import run_quick


@pytest.mark.timeout(120)
def test_quick_lines_bench(tmp_path: Path) -> None:
    stdout, figures = run_quick("lines", tmp_path, timeout=100)
    kinds = {port["kind"]: port for port in figures["ports"]}
    assert set(kinds) == {"fxs", "fxo"}, figures
    for port in kinds.values():
        assert port["frames"] == 1000 and port["us_per_frame"] > 0, port
        # The bar: 2 % of one core per active port (a loaded machine still makes it).
        assert port["core_pct_per_port"] <= 2.0, port
    assert kinds["fxo"]["us_per_frame"] > kinds["fxs"]["us_per_frame"] * 0.8, kinds
    assert 0 < figures["callerid"]["decode_ms"] < 50, figures
    assert "% of one core per active port" in stdout
    gateway = figures["gateway"]
    in_call = gateway["in_call"]
    assert in_call["states_after"] == ["in-call", "in-call"], in_call
    assert 0 < in_call["core_pct"] < 50, in_call
    assert all(rate > 40 for rate in in_call["rtp_packets_per_s_at_far_phones"]), in_call
    assert all(rate > 40 for rate in in_call["earpiece_frames_per_s"]), in_call
    for way in ("alsa_to_rtp", "rtp_to_alsa"):
        assert gateway["latency"][way]["gateway"]["n"] > 0, gateway["latency"][way]
