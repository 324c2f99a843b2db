"""Which sine tone a phone heard: WAV recordings (baresip's sndfile dumps, PJSIP recorders)
read with :mod:`wave` and analysed with numpy's FFT.

Each test phone sends a sine of its own frequency, so the dominant frequency of what a phone
decoded names the phone whose audio reached it. A recording is cut into blocks (100 ms) and each
block that is not silence gets its dominant frequency: :func:`tone_seconds` counts how much of a
recording carried a given tone, :func:`tone_runs` shows which tones followed which (before and
after a transfer, say).
"""

from __future__ import annotations

import wave
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import numpy.typing as npt

BLOCK = 0.1
"""Seconds per analysed block: 10 Hz resolution, enough to tell test tones apart."""
SILENCE_RMS = 300.0
"""Blocks quieter than this (16-bit scale; the test sines are ~10,000) count as silence."""


@dataclass(frozen=True, slots=True)
class Recording:
    """Mono 16-bit samples and their rate."""

    samples: npt.NDArray[np.float64]
    rate: int

    @property
    def seconds(self) -> float:
        return len(self.samples) / self.rate

    def blocks(self, block: float = BLOCK) -> list[npt.NDArray[np.float64]]:
        size = int(self.rate * block)
        return [self.samples[i : i + size] for i in range(0, len(self.samples) - size + 1, size)]


def read_wav(path: Path) -> Recording:
    """A 16-bit PCM WAV file's first channel."""
    with wave.open(str(path), "rb") as wav:
        if wav.getsampwidth() != 2:
            raise ValueError(f"{path}: {8 * wav.getsampwidth()}-bit samples, expected 16")
        frames = wav.readframes(wav.getnframes())
        channels, rate = wav.getnchannels(), wav.getframerate()
    samples = np.frombuffer(frames, dtype="<i2").astype(np.float64)
    if channels > 1:
        samples = samples.reshape(-1, channels)[:, 0]
    return Recording(samples, rate)


def dominant_frequency(samples: npt.NDArray[np.float64], rate: int) -> float:
    """The frequency (Hz) of the strongest FFT bin (DC excluded), Hann-windowed."""
    if len(samples) < 2:
        raise ValueError("too few samples")
    windowed = (samples - samples.mean()) * np.hanning(len(samples))
    spectrum = np.abs(np.fft.rfft(windowed))
    spectrum[0] = 0.0
    freqs = np.fft.rfftfreq(len(samples), 1.0 / rate)
    return float(freqs[int(np.argmax(spectrum))])


def block_tones(recording: Recording, block: float = BLOCK) -> list[float | None]:
    """Per block, its dominant frequency, or None for silence."""
    tones: list[float | None] = []
    for chunk in recording.blocks(block):
        rms = float(np.sqrt(np.mean(chunk**2)))
        tones.append(dominant_frequency(chunk, recording.rate) if rms >= SILENCE_RMS else None)
    return tones


def tone_seconds(
    recording: Recording, freq: float, tolerance: float = 10.0, block: float = BLOCK
) -> float:
    """Seconds of the recording whose blocks carry `freq` (± `tolerance` Hz) as main tone."""
    hits = [
        t for t in block_tones(recording, block) if t is not None and abs(t - freq) <= tolerance
    ]
    return len(hits) * block


def tone_runs(
    recording: Recording,
    freqs: dict[str, float],
    tolerance: float = 10.0,
    block: float = BLOCK,
    min_blocks: int = 5,
) -> list[tuple[str, float]]:
    """Which named tone was heard when: consecutive blocks of one tone, as (name, seconds).

    Blocks with none of `freqs` (silence, glitches at a switch) are skipped, and runs shorter
    than `min_blocks` dropped, so `[("102", 3.2), ("103", 4.1)]` means "102's tone, then 103's".
    """
    runs: list[tuple[str, int]] = []
    for tone in block_tones(recording, block):
        name = next(
            (n for n, f in freqs.items() if tone is not None and abs(tone - f) <= tolerance),
            None,
        )
        if name is None:
            continue
        if runs and runs[-1][0] == name:
            runs[-1] = (name, runs[-1][1] + 1)
        else:
            runs.append((name, 1))
    merged: list[tuple[str, int]] = []
    for name, count in runs:
        if count < min_blocks:
            continue
        if merged and merged[-1][0] == name:
            merged[-1] = (name, merged[-1][1] + count)
        else:
            merged.append((name, count))
    return [(name, round(count * block, 1)) for name, count in merged]
