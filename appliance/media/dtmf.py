"""DTMF: RFC 4733 telephone-event payloads, and in-band tones (ITU-T Q.23) generated and
detected in 16-bit PCM, with the detector's checks in the manner of ITU-T Q.24.

numpy is imported only when an `InbandDtmfDetector` is made: the core process imports this
module for RFC 4733 events and must not pay numpy's memory unless it listens for tones.
"""

from __future__ import annotations

import array
import math
import struct
import sys
from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import numpy as np
    import numpy.typing as npt

__all__ = [
    "EVENT_DIGITS",
    "DtmfError",
    "InbandDtmfDetector",
    "TelephoneEvent",
    "digit_of",
    "dtmf_tone",
    "event_of",
]

EVENT_DIGITS = "0123456789*#ABCD"
"""The DTMF digit of RFC 4733 events 0-15 (§3.2), by index."""

ROW_HZ = (697, 770, 852, 941)
COLUMN_HZ = (1209, 1336, 1477, 1633)
KEYPAD = ("123A", "456B", "789C", "*0#D")
"""The key at each row (low group) and column (high group) frequency (ITU-T Q.23)."""

_EVENT = struct.Struct("!BBH")


class DtmfError(ValueError):
    """A telephone-event payload of the wrong size or with fields out of range, or a character
    that is not a DTMF digit. `str()` is the reason."""


def digit_of(event: int) -> str | None:
    """The digit of an RFC 4733 event code; None for the non-DTMF events (16 and up)."""
    return EVENT_DIGITS[event] if 0 <= event < len(EVENT_DIGITS) else None


def event_of(digit: str) -> int:
    """The RFC 4733 event code of a DTMF digit (`0`-`9`, `*`, `#`, `A`-`D`, any case)."""
    event = EVENT_DIGITS.find(digit.upper()) if len(digit) == 1 else -1
    if event < 0:
        raise DtmfError(f"not a DTMF digit: {digit!r}")
    return event


@dataclass(slots=True)
class TelephoneEvent:
    """An RFC 4733 §2.3 named-event payload: `volume` is the power level in -dBm0 (0-63),
    `duration` in timestamp units since the event began. `reserved` is the R bit, which
    receivers ignore; it is kept so that every payload prints back as it came."""

    event: int
    end: bool = False
    volume: int = 10
    duration: int = 0
    reserved: bool = False

    SIZE = 4

    @classmethod
    def parse(cls, data: bytes) -> TelephoneEvent:
        if len(data) != cls.SIZE:
            raise DtmfError(f"telephone-event payload is {len(data)} bytes, expected {cls.SIZE}")
        event, flags, duration = _EVENT.unpack(data)
        return cls(event, bool(flags & 0x80), flags & 0x3F, duration, bool(flags & 0x40))

    def __bytes__(self) -> bytes:
        if not 0 <= self.event <= 255:
            raise DtmfError(f"telephone-event code {self.event} out of range 0-255")
        if not 0 <= self.volume <= 63:
            raise DtmfError(f"telephone-event volume {self.volume} out of range 0-63")
        if not 0 <= self.duration <= 0xFFFF:
            raise DtmfError(f"telephone-event duration {self.duration} out of range 0-65535")
        flags = self.end << 7 | self.reserved << 6 | self.volume
        return _EVENT.pack(self.event, flags, self.duration)

    @property
    def digit(self) -> str | None:
        return digit_of(self.event)


def _frequencies(digit: str) -> tuple[int, int]:
    key = digit.upper() if len(digit) == 1 else ""
    for row, keys in enumerate(KEYPAD):
        column = keys.find(key) if key else -1
        if column >= 0:
            return ROW_HZ[row], COLUMN_HZ[column]
    raise DtmfError(f"not a DTMF digit: {digit!r}")


def dtmf_tone(digit: str, ms: int, sample_rate: int = 8000, amplitude: float = 0.3) -> bytes:
    """`ms` milliseconds of `digit`'s two tones as 16-bit little-endian PCM. `amplitude` is the
    peak of the sum as a fraction of full scale; each tone has half of it, the same level."""
    low, high = _frequencies(digit)
    peak = 32767 * amplitude / 2
    step_low = 2 * math.pi * low / sample_rate
    step_high = 2 * math.pi * high / sample_rate
    samples = array.array(
        "h",
        (
            round(peak * (math.sin(step_low * n) + math.sin(step_high * n)))
            for n in range(sample_rate * ms // 1000)
        ),
    )
    if sys.byteorder == "big":
        samples.byteswap()
    return samples.tobytes()


# Detector parameters, for 8 kHz; the window and the hop scale with the sample rate.
WINDOW_8K = 205
"""Samples a frame is measured over (25.6 ms): 39 Hz bins, fine enough for 73 Hz apart rows."""
HOP_8K = 40
"""Frames start every 5 ms, so that tone and pause durations are measured to 5 ms."""
MIN_TONE_MS = 40
"""A tone counts once present this long (Q.24: accept tones of 40 ms); 25 ms never counts."""
MIN_PAUSE_MS = 40
"""The same digit counts again only after a pause this long (Q.24: 40 ms)."""
MIN_LEVEL_DBFS = -45.0
"""The weakest tone accepted: each of the two frequencies at least this peak level."""
MAX_NORMAL_TWIST_DB = 9.0
"""How much weaker the high-group tone may be than the low-group one: Q.24's 8 dB must pass,
with a decibel for the other tone's leakage into the measure (10 dB is rejected)."""
MAX_REVERSE_TWIST_DB = 5.0
"""How much stronger the high-group tone may be than the low-group one: 4 dB must pass, 6 dB
is rejected."""
MIN_RELATIVE_PEAK_DB = 10.0
"""How far each winning tone must stand above the other frequencies of its group."""
MIN_TONE_SHARE = 0.75
"""What part of the frame's power the two tones must carry: speech, music and noise spread
theirs over many frequencies."""
MAX_OFFSET = 0.025
"""How far a tone may be from its nominal frequency, as a fraction of it (Q.24: +/-1.5 % must
be accepted, +/-3.5 % rejected). A 25.6 ms frame cannot tell these apart by bin power alone
(its bins are 39 Hz wide), so the frequency is measured from the phase the bin turns through
between one frame and the next."""


class InbandDtmfDetector:
    """DTMF digits in a stream of 16-bit little-endian mono PCM, fed in chunks of any size.

    Every 5 ms, a 25.6 ms frame is measured at the eight DTMF frequencies (the Goertzel single-
    bin DFT, computed for all frames of a chunk as one numpy matrix product). A frame holds a
    digit when the strongest row and column tones are both loud enough, within the twist limits,
    well above the other tones of their group, and carry most of the frame's power. A digit is
    reported once, in the chunk where it has lasted `MIN_TONE_MS`; the same digit is reported
    again only after a pause of `MIN_PAUSE_MS`.
    """

    def __init__(self, sample_rate: int = 8000) -> None:
        import numpy as np

        self._np = np
        self.sample_rate = sample_rate
        self._window = round(WINDOW_8K * sample_rate / 8000)
        self._hop = round(HOP_8K * sample_rate / 8000)
        hop_ms = 1000 * self._hop / sample_rate
        window_ms = 1000 * self._window / sample_rate
        # A tone T ms long fills at least MIN_TONE_SHARE of about (T - window/2) / hop frames,
        # a pause P ms long leaves about (P + window/2) / hop frames without it; one frame less
        # than that is asked for, so that 40 ms always counts whatever the alignment, while
        # tones of 25 ms and less, and drop-outs of 25 ms and less, never do (measured in tests).
        self._on_frames = max(1, math.floor((MIN_TONE_MS - window_ms / 2) / hop_ms) - 1)
        self._off_frames = max(1, math.floor((MIN_PAUSE_MS + window_ms / 2) / hop_ms) - 1)
        n = np.arange(self._window)
        omegas = 2 * np.pi * np.array(ROW_HZ + COLUMN_HZ) / sample_rate
        phase = np.outer(n, omegas)
        self._basis: npt.NDArray[np.float64] = np.hstack((np.cos(phase), np.sin(phase)))
        # A sine of peak A over N samples gives |X|**2 = (A * N / 2)**2 in its bin and a sum of
        # squares of A**2 * N / 2; the thresholds are scaled to these raw measures.
        size = self._window
        min_peak = 32768 * 10 ** (MIN_LEVEL_DBFS / 20)
        self._min_bin = (min_peak * size / 2) ** 2
        self._share = MIN_TONE_SHARE * size / 2
        self._normal_twist = 10 ** (-MAX_NORMAL_TWIST_DB / 10)
        self._reverse_twist = 10 ** (MAX_REVERSE_TWIST_DB / 10)
        self._relative_peak = 10 ** (MIN_RELATIVE_PEAK_DB / 10)
        self._n = n
        self._last: npt.NDArray[np.complex128] = np.zeros((1, 8), dtype=complex)
        self._pending: npt.NDArray[np.float64] = np.zeros(0)
        self._odd = b""
        self._candidate: str | None = None
        self._run = 0
        self._current: str | None = None  # the digit last reported, until a pause
        self._gap = 0

    def feed(self, pcm: bytes) -> list[str]:
        """The digits that reached `MIN_TONE_MS` in this chunk of PCM."""
        np = self._np
        data = self._odd + pcm if self._odd else pcm
        count = len(data) // 2
        self._odd = data[2 * count :]
        pending = self._pending
        buf = np.empty(len(pending) + count)
        buf[: len(pending)] = pending
        buf[len(pending) :] = np.frombuffer(data, dtype="<i2", count=count)
        frames = (len(buf) - self._window) // self._hop + 1
        if frames <= 0:
            self._pending = buf
            return []
        # Frame k is buf[k * hop : k * hop + window]: a strided view, nothing copied.
        view = np.ndarray((frames, self._window), buffer=buf, strides=(8 * self._hop, 8))
        self._pending = buf[frames * self._hop :]
        digits = []
        for digit in self._classify(view):
            found = self._step(digit)
            if found is not None:
                digits.append(found)
        return digits

    def _classify(self, frames: npt.NDArray[np.float64]) -> list[str | None]:
        """The digit each frame holds, or None."""
        np = self._np
        bins = frames @ self._basis
        spectra = bins[:, :8] - 1j * bins[:, 8:]
        previous = np.vstack((self._last, spectra[:-1]))
        self._last = spectra[-1:]
        powers = (spectra.real**2 + spectra.imag**2).tolist()
        totals = np.einsum("ij,ij->i", frames, frames).tolist()
        found: list[str | None] = []
        for index, (power, total) in enumerate(zip(powers, totals, strict=True)):
            pair = self._pair(power)
            found.append(
                None
                if pair is None
                else self._check(pair, frames[index], total, spectra[index], previous[index])
            )
        return found

    def _pair(self, power: list[float]) -> tuple[int, int] | None:
        """The strongest row and column of one frame, if each stands clear of its group and is
        not far below the weakest level (the bins of an off-frequency tone read low)."""
        rows, columns = power[:4], power[4:]
        low, high = max(rows), max(columns)
        if low < self._min_bin / 8 or high < self._min_bin / 8:
            return None  # too quiet, even for a tone 3 % off its bin
        row, column = rows.index(low), columns.index(high)
        rows[row] = columns[column] = 0.0
        if max(rows) * self._relative_peak > low or max(columns) * self._relative_peak > high:
            return None  # another tone of the same group too close
        return row, column

    def _check(
        self,
        pair: tuple[int, int],
        frame: npt.NDArray[np.float64],
        total: float,
        spectrum: npt.NDArray[np.complex128],
        previous: npt.NDArray[np.complex128],
    ) -> str | None:
        """The digit of a frame whose strongest tones are `pair`, if their frequencies, levels,
        twist and share of the frame's power all pass."""
        np = self._np
        row, column = pair
        measured = []
        for index in (row, 4 + column):
            nominal = (ROW_HZ + COLUMN_HZ)[index]
            turn = np.angle(spectrum[index] * np.conj(previous[index]))
            expected = 2 * np.pi * nominal * self._hop / self.sample_rate
            error = (turn - expected + np.pi) % (2 * np.pi) - np.pi
            hz = nominal + error * self.sample_rate / (2 * np.pi * self._hop)
            if abs(hz - nominal) > MAX_OFFSET * nominal:
                return None  # off frequency (or no steady tone across the two frames)
            phase = 2 * np.pi * hz / self.sample_rate * self._n
            measured.append(
                float(np.dot(frame, np.cos(phase)) ** 2 + np.dot(frame, np.sin(phase)) ** 2)
            )
        low, high = measured
        if low < self._min_bin or high < self._min_bin:
            return None  # too quiet
        if not low * self._normal_twist <= high <= low * self._reverse_twist:
            return None  # twist
        if low + high < self._share * total:
            return None  # the power is mostly elsewhere: speech, music, noise
        return KEYPAD[row][column]

    def _step(self, digit: str | None) -> str | None:
        """Advance the tone/pause state by one frame; the digit to report, if any."""
        if digit is not None and digit == self._current:
            self._gap = 0  # the tone goes on (or came back before a full pause)
            self._candidate, self._run = None, 0
            return None
        if self._current is not None:
            self._gap += 1
            if self._gap >= self._off_frames:
                self._current = None
        if digit is None:
            self._candidate, self._run = None, 0
            return None
        if digit == self._candidate:
            self._run += 1
        else:
            self._candidate, self._run = digit, 1
        if self._run < self._on_frames:
            return None
        self._current, self._gap = digit, 0
        self._candidate, self._run = None, 0
        return digit
