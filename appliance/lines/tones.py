"""Call-progress tones, ring cadences and line timing per country, as data (ITU-T E.180
Supplement 2, "Various tones used in national networks"), with a generator of 16-bit PCM at
8 kHz for the FXS ports and a detector of the dial and busy tone of a country for the FXO port.

A cadence is a tuple of seconds, on and off alternately, repeated; an empty cadence is a
continuous tone. Where E.180 lists no tone (howler, recall dial in some countries) the value
used by that country's exchanges and ATAs is given, and the comment says so.
"""

from __future__ import annotations

import enum
import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType

import numpy as np
import numpy.typing as npt

from appliance.lines.callerid import CallerIdStandard

__all__ = [
    "PLANS",
    "CountryPlan",
    "FlashWindow",
    "PulseTiming",
    "Tone",
    "ToneDetector",
    "ToneGenerator",
    "ToneKind",
    "plan_for",
]

SAMPLE_RATE = 8000
DBM0_PEAK = 32767 * 10 ** (-3.17 / 20)
"""The peak of a 0 dBm0 sine in 16-bit PCM (G.711: full scale is +3.17 dBm0)."""


class ToneKind(enum.StrEnum):
    DIAL = "dial"
    RECALL_DIAL = "recall_dial"
    RINGBACK = "ringback"
    BUSY = "busy"
    CONGESTION = "congestion"
    HOWLER = "howler"
    CALL_WAITING = "call_waiting"


@dataclass(frozen=True, slots=True)
class Tone:
    """A tone: its frequencies (summed, each at `level_dbm0`), its repeated cadence, and an
    `intro` cadence played once before it (the stutter of a recall dial tone)."""

    frequencies: tuple[float, ...]
    cadence: tuple[float, ...] = ()
    intro: tuple[float, ...] = ()
    level_dbm0: float = -13.0

    def __post_init__(self) -> None:
        for name, cadence in (("cadence", self.cadence), ("intro", self.intro)):
            if len(cadence) % 2 or any(part <= 0 for part in cadence):
                raise ValueError(f"{name} must be positive on/off pairs, not {cadence}")

    @property
    def period(self) -> float:
        """The length of one repetition of the cadence in seconds; 0 for a continuous tone."""
        return sum(self.cadence)

    def pcm(self, seconds: float) -> npt.NDArray[np.int16]:
        """The first `seconds` of the tone, from its start."""
        return ToneGenerator(self).samples(round(seconds * SAMPLE_RATE))


class ToneGenerator:
    """Plays a `Tone` as consecutive frames (one port's 20 ms frames), continuous in phase and
    cadence across frames. The cadence's on/off gates are computed from the sample count, so
    long calls do not drift."""

    def __init__(self, tone: Tone) -> None:
        self.tone = tone
        self._n = 0
        self._peak = DBM0_PEAK * 10 ** (tone.level_dbm0 / 20)
        self._omegas = np.array(tone.frequencies, dtype=np.float64) * 2 * np.pi / SAMPLE_RATE
        self._intro = round(sum(tone.intro) * SAMPLE_RATE)
        self._intro_edges = np.round(np.cumsum(tone.intro) * SAMPLE_RATE).astype(np.int64)
        self._period = round(tone.period * SAMPLE_RATE)
        self._edges = np.round(np.cumsum(tone.cadence) * SAMPLE_RATE).astype(np.int64)

    def samples(self, count: int) -> npt.NDArray[np.int16]:
        n = np.arange(self._n, self._n + count, dtype=np.int64)
        self._n += count
        wave = np.sin(np.outer(n, self._omegas)).sum(axis=1) * self._peak
        wave = np.clip(np.round(wave * self._gate(n)), -32768, 32767)  # never wrap around
        out: npt.NDArray[np.int16] = wave.astype(np.int16)
        return out

    def frame(self, count: int = 160) -> bytes:
        """The next `count` samples as 16-bit little-endian PCM."""
        return self.samples(count).astype("<i2").tobytes()

    def _gate(self, n: npt.NDArray[np.int64]) -> npt.NDArray[np.float64]:
        gate = np.ones(len(n))
        if self._intro:
            inside = n < self._intro
            slot = np.searchsorted(self._intro_edges, n[inside], side="right")
            gate[inside] = (slot % 2 == 0).astype(np.float64)
        if self._period:
            after = n >= self._intro
            phase = (n[after] - self._intro) % self._period
            slot = np.searchsorted(self._edges, phase, side="right")
            gate[after] = (slot % 2 == 0).astype(np.float64)
        return gate


@dataclass(frozen=True, slots=True)
class FlashWindow:
    """How long a break of the loop (on-hook) is a hook flash (register recall), in ms; a break
    longer than `max_ms` is a hang-up, one shorter than `min_ms` is a pulse or a bounce."""

    min_ms: float
    max_ms: float


@dataclass(frozen=True, slots=True)
class PulseTiming:
    """Loop-disconnect dialling (ITU-T Q.23 Annex / national specifications: 10 pps nominal,
    8-12 accepted; break 60-67 % of a period). A break between `min_break_ms` and
    `max_break_ms` is a pulse; a make longer than `digit_gap_ms` ends a digit (dialled
    inter-digit pauses are at least 300 ms); breaks shorter than `min_break_ms` are bounces."""

    min_break_ms: float = 20.0
    max_break_ms: float = 88.0
    max_make_ms: float = 100.0
    digit_gap_ms: float = 200.0
    zero_pulses: int = 10
    """Pulses for the digit 0 (10 everywhere here; New Zealand and Sweden differ)."""


@dataclass(frozen=True, slots=True)
class CountryPlan:
    """Everything an analog line of one country sounds and times like."""

    country: str
    tones: Mapping[ToneKind, Tone]
    ring: tuple[float, ...]
    """The ring cadence sent to a handset, seconds on/off."""
    flash: FlashWindow
    pulse: PulseTiming = field(default_factory=PulseTiming)
    caller_id: CallerIdStandard = CallerIdStandard.ETSI_FSK

    def tone(self, kind: ToneKind | str) -> Tone:
        return self.tones[ToneKind(kind)]


def _plan(country: str, ring: tuple[float, ...], flash: FlashWindow, caller_id: CallerIdStandard,
          **tones: Tone) -> CountryPlan:  # fmt: skip
    return CountryPlan(country, MappingProxyType({ToneKind(k): v for k, v in tones.items()}),
                       ring, flash, PulseTiming(), caller_id)  # fmt: skip


BELL_HOWLER = Tone((1400.0, 2060.0, 2450.0, 2600.0), (0.1, 0.1), level_dbm0=-10.0)
"""Receiver off-hook tone (Telcordia GR-506): four frequencies, 0.1/0.1 s, loud (-10 dBm0 each,
the most four can have without clipping 16-bit PCM). E.180 lists none for RU and DE; their
exchanges' howlers vary, and this one is used for both."""

PLANS: Mapping[str, CountryPlan] = MappingProxyType({
    "RU": _plan(
        "RU", ring=(1.0, 4.0), flash=FlashWindow(100, 600), caller_id=CallerIdStandard.DTMF,
        dial=Tone((425.0,)),
        recall_dial=Tone((425.0,), intro=(0.1, 0.1) * 3),  # stutter, then dial tone
        ringback=Tone((425.0,), (0.8, 3.2)),
        busy=Tone((425.0,), (0.4, 0.4)),
        congestion=Tone((425.0,), (0.2, 0.2)),
        howler=BELL_HOWLER,
        call_waiting=Tone((425.0,), (0.2, 5.0)),
    ),
    "US": _plan(
        "US", ring=(2.0, 4.0), flash=FlashWindow(300, 1100), caller_id=CallerIdStandard.BELL202,
        dial=Tone((350.0, 440.0)),
        recall_dial=Tone((350.0, 440.0), intro=(0.1, 0.1) * 10),  # "stutter" dial tone
        ringback=Tone((440.0, 480.0), (2.0, 4.0), level_dbm0=-19.0),
        busy=Tone((480.0, 620.0), (0.5, 0.5), level_dbm0=-24.0),
        congestion=Tone((480.0, 620.0), (0.25, 0.25), level_dbm0=-24.0),  # reorder
        howler=BELL_HOWLER,
        call_waiting=Tone((440.0,), (0.3, 9.7)),
    ),
    "DE": _plan(
        "DE", ring=(1.0, 4.0), flash=FlashWindow(90, 300), caller_id=CallerIdStandard.ETSI_FSK,
        dial=Tone((425.0,)),
        recall_dial=Tone((400.0, 425.0)),  # E.180: "special dial tone" 425+400 continuous
        ringback=Tone((425.0,), (1.0, 4.0)),
        busy=Tone((425.0,), (0.48, 0.48)),
        congestion=Tone((425.0,), (0.24, 0.24)),
        howler=BELL_HOWLER,
        call_waiting=Tone((425.0,), (0.2, 0.2, 0.2, 5.0)),
    ),
    "UK": _plan(
        "UK", ring=(0.4, 0.2, 0.4, 2.0), flash=FlashWindow(90, 300),
        caller_id=CallerIdStandard.ETSI_FSK,
        dial=Tone((350.0, 450.0)),
        recall_dial=Tone((350.0, 450.0), (0.75, 0.75)),  # BT special dial tone
        ringback=Tone((400.0, 450.0), (0.4, 0.2, 0.4, 2.0), level_dbm0=-19.0),
        busy=Tone((400.0,), (0.375, 0.375)),
        congestion=Tone((400.0,), (0.4, 0.35, 0.225, 0.525)),
        howler=Tone((1400.0, 2040.0), (0.1, 0.1), level_dbm0=-3.0),
        call_waiting=Tone((400.0,), (0.1, 3.0)),
    ),
})  # fmt: skip
"""The country plans by ISO 3166 code (UK rather than GB, as telephony lists write it)."""


def plan_for(country: str) -> CountryPlan:
    """The plan of `country` (any case); `LookupError` naming the known ones otherwise."""
    try:
        return PLANS[country.upper()]
    except KeyError:
        known = ", ".join(sorted(PLANS))
        raise LookupError(f"no tone plan for country {country!r}; known: {known}") from None


# --- detection on the FXO line -------------------------------------------------------------------

BLOCK = 160
"""Samples per detector step (20 ms, the port's frame): the on/off resolution of cadences."""
WINDOW = 320
"""Samples each step is measured over (40 ms, the step and the one before): 25 Hz resolution,
so that 425 Hz is told from 440 Hz (RU dial tone from a US tone)."""
MAX_IMBALANCE_DB = 6.0
"""How much the frequencies of a dual tone may differ in level."""
MIN_LEVEL_DBM0 = -40.0
"""The weakest tone accepted, per frequency."""
MIN_SHARE = 0.5
"""What part of a block's power the tone's frequencies must carry: speech and noise spread
theirs across the band."""
CADENCE_TOLERANCE = 0.15
"""How far a measured on or off time may differ from the plan, as a fraction, plus one 20 ms
block."""
DIAL_SECONDS = 1.0
"""A dial tone is recognised after this long without a break, or 0.3 s longer than the longest
burst of the country's other tones on the same frequencies (US ringback: 2 s), if longer."""
BUSY_CYCLES = 2
"""A busy tone is recognised after this many on/off cycles of the right lengths."""


class ToneDetector:
    """Recognises a country's dial tone and busy (and congestion) tone in FXO line audio fed in
    chunks of any size. Each 20 ms block is measured at the tone frequencies (Goertzel, as one
    numpy product); a block is "on" when they are loud enough and carry most of its power. The
    on/off run lengths are compared with the plan's cadences."""

    def __init__(self, plan: CountryPlan, kinds: tuple[ToneKind, ...] = (
            ToneKind.DIAL, ToneKind.BUSY, ToneKind.CONGESTION)) -> None:  # fmt: skip
        self.plan = plan
        self._kinds = kinds
        self._tones = [plan.tone(kind) for kind in kinds]
        freqs = sorted({f for tone in self._tones for f in tone.frequencies})
        self._freqs = freqs
        n = np.arange(WINDOW)
        phase = np.outer(n, 2 * np.pi * np.array(freqs) / SAMPLE_RATE)
        self._basis = np.hstack((np.cos(phase), np.sin(phase)))
        peak = DBM0_PEAK * 10 ** (MIN_LEVEL_DBM0 / 20)
        self._min_bin = (peak * WINDOW / 2) ** 2
        self._imbalance = 10 ** (MAX_IMBALANCE_DB / 10)
        longest = [max(tone.cadence[::2]) for tone in plan.tones.values() if tone.cadence]
        self._dial_blocks = math.ceil(max(DIAL_SECONDS, max(longest) + 0.3) * SAMPLE_RATE / BLOCK)
        self._pending = np.zeros(WINDOW - BLOCK)
        self._odd = b""
        self._runs: list[list[tuple[bool, int]]] = [[] for _ in kinds]  # (on, blocks)
        self._count = [0 for _ in kinds]  # runs seen; the first one may have begun unheard
        self.detected: ToneKind | None = None

    def feed(self, pcm: bytes) -> ToneKind | None:
        """The tone recognised so far (it stays recognised), or None."""
        data = self._odd + pcm
        count = len(data) // 2
        self._odd = data[2 * count :]
        buf = np.concatenate((self._pending, np.frombuffer(data, "<i2", count).astype(float)))
        blocks = (len(buf) - WINDOW) // BLOCK + 1
        if blocks <= 0 or self.detected is not None:
            self._pending = buf if blocks <= 0 else buf[len(buf) - (WINDOW - BLOCK) :]
            return self.detected
        self._pending = buf[blocks * BLOCK :]
        # Window k is buf[k * BLOCK : k * BLOCK + WINDOW]: a strided view, nothing copied.
        frames = np.lib.stride_tricks.as_strided(
            buf, (blocks, WINDOW), (8 * BLOCK, 8), writeable=False)  # fmt: skip
        bins = frames @ self._basis
        k = len(self._freqs)
        power = bins[:, :k] ** 2 + bins[:, k:] ** 2
        totals = np.einsum("ij,ij->i", frames, frames) * WINDOW / 2
        for index, tone in enumerate(self._tones):
            cols = [self._freqs.index(f) for f in tone.frequencies]
            ours = power[:, cols]
            weakest, strongest = ours.min(axis=1), ours.max(axis=1)
            on = (
                (weakest >= self._min_bin)
                & (strongest <= weakest * self._imbalance)
                & (ours.sum(axis=1) >= MIN_SHARE * totals)
            )
            for state in on.tolist():
                self._advance(index, bool(state))
                if self.detected is not None:
                    return self.detected
        return None

    def _advance(self, index: int, on: bool) -> None:
        runs = self._runs[index]
        if runs and runs[-1][0] == on:
            runs[-1] = (on, runs[-1][1] + 1)
        else:
            runs.append((on, 1))
            del runs[: -2 * (BUSY_CYCLES + 2)]
            self._count[index] += 1
        tone = self._tones[index]
        if not tone.cadence:
            if on and runs[-1][1] >= self._dial_blocks:
                self.detected = self._kinds[index]
            return
        # The last completed runs, ending with the one just closed, against the cadence.
        completed = runs[:-1]
        want = 2 * BUSY_CYCLES
        whole = min(len(completed), self._count[index] - 2)  # not the first, not the last
        if whole < want or not runs[-1][0] or runs[-1][1] != 1:
            return  # judged once, when a tone burst starts after a full pause
        measured = [blocks * BLOCK / SAMPLE_RATE for _, blocks in completed[-want:]]
        planned = list(tone.cadence) * (want // len(tone.cadence) + 1)
        for offset in range(0, len(tone.cadence), 2):
            expected = planned[offset : offset + want]
            if all(abs(m - e) <= CADENCE_TOLERANCE * e + 0.02 for m, e in
                   zip(measured, expected, strict=True)):  # fmt: skip
                self.detected = self._kinds[index]
                return
