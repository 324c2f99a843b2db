"""Smoke run of bench/ban: a banned source's flood is dropped, and what it cost the core."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.bench.smoke import assert_cleaned_up, run_quick


@pytest.mark.timeout(120)
def test_quick_ban_bench(tmp_path: Path) -> None:
    stdout, figures = run_quick("ban", tmp_path, timeout=100)
    banned, stranger = figures["floods"]
    assert banned["source"] == "127.0.0.50" and banned["answered"] == 0, banned
    assert banned["dropped_banned"] > 0.5 * banned["sent"], banned  # the rest: a full socket
    assert banned["core_us_per_datagram"] > 0, banned
    assert stranger["dropped_rate_limited"] > 0 and stranger["dropped_banned"] == 0, stranger
    assert_cleaned_up(stdout)
