"""Tests of `appliance.lines.pulse`: pulse digits at 8, 10 and 12 pps with 33/67 and 40/60
make/break ratios, 0 as ten pulses, 300 ms inter-digit pauses; hook flash against hang-up by
each country's window; bounces ignored. Hook timelines are built the way a rotary dial makes
them, with the decoder polled every 20 ms as the gateway's clock does."""

from __future__ import annotations

import numpy as np
import pytest

from appliance.lines.pulse import Digit, Flash, HookDecoder, HookSignal, OffHook, OnHook
from appliance.lines.tones import PLANS, plan_for

Timeline = list[tuple[float, bool]]  # (at_ms, on_hook)


def dial(number: str, pps: float, make_ratio: float, start_ms: float,
         pause_ms: float = 300.0) -> tuple[Timeline, float]:  # fmt: skip
    """The hook transitions of `number` dialled at `pps` with `make_ratio` of each period made,
    digits `pause_ms` apart; and the time the last make began."""
    period = 1000.0 / pps
    brk, make = period * (1 - make_ratio), period * make_ratio
    events: Timeline = []
    at = start_ms
    for digit in number:
        for _ in range(10 if digit == "0" else int(digit)):
            events.append((at, True))
            at += brk
            events.append((at, False))
            at += make
        at += pause_ms - make
    return events, at


def run(events: Timeline, until_ms: float, decoder: HookDecoder) -> list[HookSignal]:
    """Feed `events` to `decoder`, polling every 20 ms up to `until_ms`."""
    signals: list[HookSignal] = []
    pending = sorted(events)
    now = 0.0
    for _ in range(int(until_ms / 20) + 2):  # bounded
        while pending and pending[0][0] <= now:
            at, on_hook = pending.pop(0)
            signals += decoder.hook(on_hook, at)
        signals += decoder.poll(now)
        now += 20.0
        if now > until_ms and not pending:
            break
    return signals


@pytest.mark.parametrize("pps", [8.0, 10.0, 12.0])
@pytest.mark.parametrize("make_ratio", [1 / 3, 0.4])
@pytest.mark.parametrize("country", sorted(PLANS))
def test_pulse_digits(pps: float, make_ratio: float, country: str) -> None:
    plan = plan_for(country)
    number = "1234567890"
    events, end = dial(number, pps, make_ratio, start_ms=500.0)
    events.insert(0, (100.0, False))  # off-hook; the line starts on-hook
    signals = run(events, end + 500, HookDecoder(plan.flash, plan.pulse))
    assert signals[0] == OffHook(100.0)
    digits = [s for s in signals[1:] if isinstance(s, Digit)]
    assert "".join(d.digit for d in digits) == number
    assert [d.pulses for d in digits] == [int(c) or 10 for c in number]
    assert len(signals) == 1 + len(number), signals  # no flash, no hang-up among them
    assert digits[0].at_ms == 500.0


def test_digits_come_at_the_inter_digit_pause_not_before() -> None:
    plan = plan_for("RU")
    decoder = HookDecoder(plan.flash, plan.pulse)
    assert decoder.hook(False, 0.0) == [OffHook(0.0)]
    events, _ = dial("3", 10.0, 1 / 3, start_ms=1000.0)
    for at, on_hook in events:
        assert decoder.hook(on_hook, at) == []
    last_make = events[-1][0]
    assert decoder.deadline() == last_make + plan.pulse.digit_gap_ms
    assert decoder.poll(last_make + plan.pulse.digit_gap_ms - 1) == []
    assert decoder.poll(last_make + plan.pulse.digit_gap_ms) == [Digit("3", 1000.0, 3)]
    assert decoder.deadline() is None


def test_more_than_ten_pulses_is_no_digit() -> None:
    plan = plan_for("DE")
    timeline: Timeline = [(100.0, False)]
    for k in range(11):  # eleven pulses at 10 pps, 60 ms break, 40 ms make
        timeline += [(500.0 + 100 * k, True), (560.0 + 100 * k, False)]
    signals = run(timeline, 2500.0, HookDecoder(plan.flash, plan.pulse))
    assert signals == [OffHook(100.0)]


def test_bounces_are_ignored() -> None:
    plan = plan_for("UK")
    events, end = dial("2", 10.0, 1 / 3, start_ms=500.0)
    # A 5 ms contact bounce in the middle of the first make.
    events += [(586.0, True), (591.0, False)]
    signals = run([(100.0, False), *events], end + 500, HookDecoder(plan.flash, plan.pulse))
    assert [s for s in signals if isinstance(s, Digit)] == [Digit("2", 500.0, 2)]


@pytest.mark.parametrize(
    ("country", "flash_ms", "hang_up_ms"),
    [("RU", 100, 650), ("RU", 600, 1000), ("US", 300, 1200), ("US", 1100, 1500),
     ("DE", 90, 320), ("DE", 300, 600), ("UK", 150, 400)],
)  # fmt: skip
def test_flash_against_hang_up_by_country(country: str, flash_ms: float, hang_up_ms: float) -> None:
    plan = plan_for(country)
    decoder = HookDecoder(plan.flash, plan.pulse)
    timeline: Timeline = [(0.0, False), (1000.0, True), (1000.0 + flash_ms, False)]
    timeline += [(3000.0, True), (3000.0 + hang_up_ms, False)]
    signals = run(timeline, 5000.0, decoder)
    assert signals == [
        OffHook(0.0),
        Flash(1000.0, flash_ms),
        OnHook(3000.0),
        OffHook(3000.0 + hang_up_ms),
    ]


def test_hang_up_is_known_once_the_flash_window_has_passed() -> None:
    plan = plan_for("US")
    decoder = HookDecoder(plan.flash, plan.pulse)
    decoder.hook(False, 0.0)
    assert decoder.hook(True, 1000.0) == []
    assert decoder.poll(1000.0 + plan.flash.max_ms) == []
    assert decoder.poll(1000.0 + plan.flash.max_ms + 1) == [OnHook(1000.0)]
    assert decoder.poll(5000.0) == []


def test_breaks_too_long_for_a_pulse_and_too_short_for_a_flash_mean_nothing() -> None:
    plan = plan_for("US")  # pulses up to 88 ms, flash from 300 ms
    signals = run([(0.0, False), (1000.0, True), (1150.0, False)], 2000.0,
                  HookDecoder(plan.flash, plan.pulse))  # fmt: skip
    assert signals == [OffHook(0.0)]


def test_flash_during_dialling_ends_the_digit_first() -> None:
    plan = plan_for("RU")
    events, _ = dial("2", 10.0, 1 / 3, start_ms=500.0, pause_ms=0.0)
    # The flash's break begins right after the second pulse's make (under the 200 ms gap).
    last_make = events[-1][0]
    timeline = [(100.0, False), *events, (last_make + 60, True), (last_make + 60 + 250, False)]
    signals = run(timeline, last_make + 1000, HookDecoder(plan.flash, plan.pulse))
    assert signals == [OffHook(100.0), Digit("2", 500.0, 2), Flash(last_make + 60, 250.0)]


def test_repeated_states_are_ignored() -> None:
    plan = plan_for("RU")
    decoder = HookDecoder(plan.flash, plan.pulse)
    assert decoder.hook(True, 0.0) == []  # already on-hook
    assert decoder.hook(False, 10.0) == [OffHook(10.0)]
    assert decoder.hook(False, 20.0) == []


@pytest.mark.parametrize("seed", range(5))
def test_pulse_digits_with_timing_jitter(seed: int) -> None:
    """A worn dial and a sampled hook pin: each transition up to 3 ms off, speeds 8-12 pps
    (at 8 pps and 67 % break a break is 83 ms, 5 ms under the longest pulse the decoder takes)."""
    rng = np.random.default_rng(seed)
    plan = plan_for("RU")
    number = "".join(str(d) for d in rng.integers(0, 10, 8))
    timeline: Timeline = [(100.0, False)]
    at = 500.0
    for digit in number:
        pps = float(rng.uniform(8, 12))
        make_ratio = float(rng.uniform(1 / 3, 0.4))
        period = 1000 / pps
        for _ in range(int(digit) or 10):
            timeline.append((at + float(rng.uniform(-3, 3)), True))
            at += period * (1 - make_ratio)
            timeline.append((at + float(rng.uniform(-3, 3)), False))
            at += period * make_ratio
        at += float(rng.uniform(300, 800))
    signals = run(timeline, at + 500, HookDecoder(plan.flash, plan.pulse))
    assert "".join(s.digit for s in signals if isinstance(s, Digit)) == number
    assert not [s for s in signals if isinstance(s, Flash | OnHook)]
