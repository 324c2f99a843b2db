"""Hook events of an FXS port turned into what the subscriber meant: going off-hook, pulse
(loop-disconnect) digits, a hook flash (register recall), hanging up.

The board reports raw hook transitions with timestamps (the direct-GPIO driver samples the
SLIC's hook pin; a microcontroller board may classify itself and send pulse/flash events,
which then bypass this). A break of the loop is classified by its length: a pulse (a few tens
of ms), a flash (the country's window), or a hang-up (longer). Pulses are counted until the
loop stays made longer than any make within a digit.
"""

from __future__ import annotations

from dataclasses import dataclass

from appliance.lines.tones import FlashWindow, PulseTiming

__all__ = ["Digit", "Flash", "HookDecoder", "HookSignal", "OffHook", "OnHook"]


@dataclass(frozen=True, slots=True)
class OffHook:
    at_ms: float


@dataclass(frozen=True, slots=True)
class OnHook:
    """The handset was hung up; `at_ms` is when the loop broke, not when that became sure."""

    at_ms: float


@dataclass(frozen=True, slots=True)
class Flash:
    at_ms: float
    duration_ms: float


@dataclass(frozen=True, slots=True)
class Digit:
    digit: str
    at_ms: float
    pulses: int


HookSignal = OffHook | OnHook | Flash | Digit


class HookDecoder:
    """Feed `hook(on_hook, at_ms)` on every transition and `poll(now_ms)` at least every
    20 ms (or at `deadline()`): a digit ends, and a hang-up becomes sure, only by time passing.

    The line starts on-hook. Timestamps are milliseconds from any monotonic clock.
    """

    def __init__(self, flash: FlashWindow, timing: PulseTiming | None = None) -> None:
        self.flash = flash
        self.timing = timing or PulseTiming()
        self.on_hook = True
        self._since = 0.0  # when the loop last changed
        self._pulses = 0
        self._digit_start = 0.0
        self._hung_up = True  # the OnHook signal has been given for this break

    def hook(self, on_hook: bool, at_ms: float) -> list[HookSignal]:
        """A hook transition; repeated states (contact bounce seen twice) are ignored."""
        if on_hook == self.on_hook:
            return []
        signals = self.poll(at_ms)
        length = at_ms - self._since
        self.on_hook, self._since = on_hook, at_ms
        if on_hook:
            return signals  # a break begins; its meaning is known when it ends
        if self._hung_up:
            self._hung_up = False
            self._pulses = 0
            signals.append(OffHook(at_ms))
            return signals
        timing = self.timing
        if timing.min_break_ms <= length <= timing.max_break_ms:
            if not self._pulses:
                self._digit_start = at_ms - length
            self._pulses += 1
        elif self.flash.min_ms <= length <= self.flash.max_ms:
            signals.extend(self._end_digit())
            signals.append(Flash(at_ms - length, length))
        # else: a bounce, or a break between a pulse and a flash, which means nothing
        return signals

    def poll(self, now_ms: float) -> list[HookSignal]:
        """What time passing has decided by `now_ms`."""
        if self.on_hook:
            if not self._hung_up and now_ms - self._since > self.flash.max_ms:
                self._hung_up = True
                self._pulses = 0  # a digit broken off by hanging up is dropped
                return [OnHook(self._since)]
            return []
        if self._pulses and now_ms - self._since >= self.timing.digit_gap_ms:
            return self._end_digit()
        return []

    def deadline(self) -> float | None:
        """When `poll` may next have something to say; None while nothing is pending."""
        if self.on_hook:
            return None if self._hung_up else self._since + self.flash.max_ms + 1
        if self._pulses:
            return self._since + self.timing.digit_gap_ms
        return None

    def _end_digit(self) -> list[HookSignal]:
        pulses, self._pulses = self._pulses, 0
        if pulses == self.timing.zero_pulses:
            return [Digit("0", self._digit_start, pulses)]
        if 1 <= pulses <= 9:
            return [Digit(str(pulses), self._digit_start, pulses)]
        return []  # more than ten pulses: no digit
